"""Raw events into MongoDB: idempotent bulk upserts keyed by event id."""
