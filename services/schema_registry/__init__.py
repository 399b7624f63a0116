"""Freightline's Schema Registry: Confluent's REST API over PostgreSQL."""
