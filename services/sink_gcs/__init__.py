"""Raw events into Google Cloud Storage as exactly-once, hour-prefixed Avro objects."""
