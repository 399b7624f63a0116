"""Settings of the MongoDB sink (env prefix ``SINK_MONGODB_``; the server itself comes from ``MONGODB_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas import topics as topic_names
from services.common.settings import MONGODB_PRODUCT_VIEWS_COLLECTION
from services.common.sinks.settings import SinkSettings

SERVICE = "sink_mongodb"


class MongoSinkSettings(SinkSettings):
    model_config = SettingsConfigDict(env_prefix="SINK_MONGODB_", extra="ignore", case_sensitive=False)

    topics: str = Field(default=topic_names.PRODUCT_VIEWS, description="SINK_MONGODB_TOPICS: comma-separated topics.")
    group_id: str = Field(default="sink-mongodb", description="SINK_MONGODB_GROUP_ID.")
    batch_size: int = Field(
        default=10_000, gt=0, description="SINK_MONGODB_BATCH_SIZE: records per batch (offsets committed after it)."
    )
    batch_timeout_s: float = Field(default=0.5, gt=0, description="SINK_MONGODB_BATCH_TIMEOUT_S.")
    chunk_size: int = Field(
        default=1000,
        gt=0,
        description="SINK_MONGODB_CHUNK_SIZE: documents per bulk write; a batch's chunks are decoded while the "
        "previous chunk is written.",
    )
    replace_chunk_size: int = Field(
        default=16,
        gt=0,
        description="SINK_MONGODB_REPLACE_CHUNK_SIZE: replacements (of replayed documents) per update command. "
        "FerretDB v1 holds a PostgreSQL connection for each update of a command until the command ends, so a large "
        "update command exhausts its connection pool and stalls the server.",
    )
    database: str | None = Field(default=None, description="SINK_MONGODB_DATABASE (default MONGODB_DATABASE).")
    collections: str = Field(
        default=f"{topic_names.PRODUCT_VIEWS}={MONGODB_PRODUCT_VIEWS_COLLECTION}",
        description="SINK_MONGODB_COLLECTIONS: topic=collection pairs, comma-separated; other topics use the "
        "topic name with dots replaced by underscores.",
    )
    indexes: str = Field(
        default="metadata.event_time",
        description="SINK_MONGODB_INDEXES: comma-separated fields indexed (ascending) in every collection.",
    )

    def collection_map(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.collections.split(",") if "=" in item)
        return {topic.strip(): name.strip() for topic, name in pairs}

    def collection_for(self, topic: str) -> str:
        return self.collection_map().get(topic, topic.replace(".", "_"))

    def index_fields(self) -> list[str]:
        return [f.strip() for f in self.indexes.split(",") if f.strip()]
