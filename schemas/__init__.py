"""Freightline's Avro contracts: schema files, topic catalogue, examples and their governance."""
