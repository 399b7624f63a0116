"""Raw events into HDFS as exactly-once, hour-partitioned Avro files."""
