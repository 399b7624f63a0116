"""Settings every sink shares; each sink subclasses them with its own environment prefix."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import ConsumerGroupSettings

# Default rotation interval of the file sinks (HDFS, GCS): a batch, and so a file per topic partition and hour,
# is closed after this long at the latest. Shorter means fresher files but more of them, and small files are a
# cost (NameNode memory and RPCs per file, one listing and one open per file for every reader, object-store
# requests): see services/common/sinks/README.md.
FILE_ROTATION_INTERVAL_S = 10.0


class SinkSettings(ConsumerGroupSettings):
    """Consumption, batching and retry knobs (the env prefix is the sink's, e.g. ``SINK_HDFS_``)."""

    topics: str = Field(description="Comma-separated source topics.")
    group_id: str = Field(description="Consumer group id (offsets committed after each durable write).")
    batch_size: int = Field(default=5000, gt=0, description="Records per write (rotation by record count).")
    batch_timeout_s: float = Field(
        default=0.5,
        gt=0,
        description="Longest a batch gathers records once its first one arrived (file sinks: the rotation interval).",
    )
    retry_backoff_s: float = Field(default=0.5, gt=0, description="First back-off after a failed write.")
    max_retry_backoff_s: float = Field(default=10.0, gt=0, description="Longest back-off between write attempts.")
    health_interval_s: float = Field(
        default=1.0, gt=0, description="Seconds between probes of a target that is down (and of readiness probes)."
    )
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


class FileSinkSettings(SinkSettings):
    """The file sinks (HDFS, GCS): a batch is a set of files, closed by size or by the rotation interval only."""

    batch_timeout_s: float = Field(
        default=FILE_ROTATION_INTERVAL_S,
        gt=0,
        description="<PREFIX>BATCH_TIMEOUT_S: the rotation interval, the longest a batch (its files) gathers records.",
    )
    batch_idle_s: float | None = Field(
        default=None, ge=0, description="<PREFIX>BATCH_IDLE_S: unset, files rotate by size or interval only."
    )
