"""Settings every sink shares; each sink subclasses them with its own environment prefix."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class SinkSettings(BaseSettings):
    """Consumption, batching and retry knobs (the env prefix is the sink's, e.g. ``SINK_HDFS_``)."""

    topics: str = Field(description="Comma-separated source topics.")
    group_id: str = Field(description="Consumer group id (offsets committed after each durable write).")
    batch_size: int = Field(default=5000, gt=0, description="Records per write (rotation by record count).")
    batch_timeout_s: float = Field(default=2.0, gt=0, description="Longest wait to fill a batch (rotation by time).")
    retry_backoff_s: float = Field(default=0.5, gt=0, description="First back-off after a failed write.")
    max_retry_backoff_s: float = Field(default=10.0, gt=0, description="Longest back-off between write attempts.")
    health_interval_s: float = Field(default=1.0, gt=0, description="Seconds between probes of a target that is down.")
    max_partition_fetch_bytes: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        description="Bytes fetched per partition and request (large batches fill in few fetch round trips).",
    )
    queued_max_kbytes: int = Field(
        default=65_536, gt=0, description="Bound of the consumer's prefetch queue in KiB (memory per sink)."
    )

    def consumer_overrides(self) -> dict[str, int]:
        """librdkafka consumer properties for batch-sized fetches."""
        return {
            "max.partition.fetch.bytes": self.max_partition_fetch_bytes,
            "fetch.max.bytes": max(self.max_partition_fetch_bytes * 4, 16 * 1024 * 1024),
            "queued.max.messages.kbytes": self.queued_max_kbytes,
        }

    def topic_list(self) -> list[str]:
        return [t.strip() for t in self.topics.split(",") if t.strip()]
