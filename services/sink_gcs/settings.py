"""Settings of the GCS sink (env prefix ``SINK_GCS_``; the endpoint and project come from ``GCS_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas import topics as topic_names
from services.common.settings import GCS_LAKE_PREFIX, GCS_LOCAL_BUCKET
from services.common.sinks.settings import FileSinkSettings

SERVICE = "sink_gcs"


class GcsSinkSettings(FileSinkSettings):
    model_config = SettingsConfigDict(env_prefix="SINK_GCS_", extra="ignore", case_sensitive=False)

    topics: str = Field(
        default=f"{topic_names.SUPPLIER_INVOICES},{topic_names.SUPPLIER_PAYMENTS}",
        description="SINK_GCS_TOPICS: comma-separated topics.",
    )
    batch_size: int = Field(
        default=20_000, gt=0, description="SINK_GCS_BATCH_SIZE: records per batch (files per partition and hour)."
    )
    group_id: str = Field(default="sink-gcs", description="SINK_GCS_GROUP_ID.")
    bucket: str = Field(default=GCS_LOCAL_BUCKET, description="SINK_GCS_BUCKET.")
    prefix: str = Field(
        default=GCS_LAKE_PREFIX, description="SINK_GCS_PREFIX: object prefix holding <topic>/dt=/hour=."
    )
    create_bucket: bool = Field(default=False, description="SINK_GCS_CREATE_BUCKET: create the bucket if missing.")
    codec: str = Field(default="null", description="SINK_GCS_CODEC: Avro block codec, null or deflate.")
    max_file_records: int = Field(default=100_000, gt=0, description="SINK_GCS_MAX_FILE_RECORDS.")
    max_file_bytes: int = Field(default=128 * 1024 * 1024, gt=0, description="SINK_GCS_MAX_FILE_BYTES.")
