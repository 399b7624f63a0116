"""Settings of the HDFS sink (env prefix ``SINK_HDFS_``; the cluster itself comes from ``HDFS_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas import topics as topic_names
from services.common.settings import HDFS_LAKE_ROOT
from services.common.sinks.settings import FileSinkSettings

SERVICE = "sink_hdfs"


class HdfsSinkSettings(FileSinkSettings):
    model_config = SettingsConfigDict(env_prefix="SINK_HDFS_", extra="ignore", case_sensitive=False)

    # The lake's raw families (finance lands in GCS): the Spark batch jobs read them by event date and hour.
    topics: str = Field(
        default=",".join(
            (topic_names.CLICKSTREAM, topic_names.ORDERS, topic_names.SHIPMENT_EVENTS, topic_names.PRODUCT_VIEWS)
        ),
        description="SINK_HDFS_TOPICS: comma-separated topics.",
    )
    batch_size: int = Field(
        default=20_000, gt=0, description="SINK_HDFS_BATCH_SIZE: records per batch (files per partition and hour)."
    )
    group_id: str = Field(default="sink-hdfs", description="SINK_HDFS_GROUP_ID.")
    root: str = Field(default=HDFS_LAKE_ROOT, description="SINK_HDFS_ROOT: directory holding <topic>/dt=/hour=.")
    codec: str = Field(default="null", description="SINK_HDFS_CODEC: Avro block codec, null or deflate.")
    max_file_records: int = Field(default=100_000, gt=0, description="SINK_HDFS_MAX_FILE_RECORDS.")
    max_file_bytes: int = Field(default=128 * 1024 * 1024, gt=0, description="SINK_HDFS_MAX_FILE_BYTES.")
