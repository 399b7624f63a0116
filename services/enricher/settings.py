"""Enricher settings (environment prefix ``ENRICHER_``)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from schemas import topics
from services.common.settings import ConsumerGroupSettings, TopicNamingSettings
from services.enricher import join

# Catalogue topics the enricher reads and writes, by role.
SOURCE_TOPICS: dict[str, str] = {
    join.PRODUCT_VIEWS: topics.PRODUCT_VIEWS,
    join.CLICKSTREAM: topics.CLICKSTREAM,
    join.ORDERS: topics.ORDERS,
    join.SHIPMENT_EVENTS: topics.SHIPMENT_EVENTS,
}
OUTPUT_TOPICS: dict[str, str] = {
    join.PRODUCT_VIEWS: topics.ENRICHED_PRODUCT_VIEWS,
    join.CLICKSTREAM: topics.ENRICHED_CLICKSTREAM,
    join.ORDERS: topics.ENRICHED_ORDERS,
    join.SHIPMENT_EVENTS: topics.ENRICHED_SHIPMENT_EVENTS,
}
REFERENCE_TOPICS: dict[str, str] = {
    join.PRODUCT: topics.REFERENCE_PRODUCTS,
    join.CUSTOMER: topics.REFERENCE_CUSTOMERS,
    join.STORE: topics.REFERENCE_STORES,
    join.WAREHOUSE: topics.REFERENCE_WAREHOUSES,
}
ALL_TOPICS = (*SOURCE_TOPICS.values(), *OUTPUT_TOPICS.values(), *REFERENCE_TOPICS.values())


class EnricherSettings(ConsumerGroupSettings, TopicNamingSettings):
    """Topics, state store and batching of the enricher."""

    CATALOGUE_TOPICS = ALL_TOPICS
    TOPICS_USE = "the enricher uses"

    model_config = SettingsConfigDict(env_prefix="ENRICHER_", extra="ignore", case_sensitive=False)

    app_id: str = Field(
        default="freightline-enricher",
        description="ENRICHER_APP_ID: consumer group of the sources (the reference topics are read without a group).",
    )
    store: str = Field(
        default="memory://",
        description="ENRICHER_STORE: reference table store, memory:// or rocksdb:// (rocksdict, under DATA_DIR).",
    )
    data_dir: str = Field(
        default=".freightline/enricher", description="ENRICHER_DATA_DIR: Faust's and the RocksDB tables' directory."
    )
    batch_size: int = Field(default=2000, ge=1, description="ENRICHER_BATCH_SIZE: events per source batch.")
    batch_within_s: float = Field(
        default=0.1, gt=0, description="ENRICHER_BATCH_WITHIN_S: longest a batch gathers events (latency bound)."
    )
    agent_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="ENRICHER_AGENT_TIMEOUT_S: a batch the agent did not answer by then is retried.",
    )
    flush_timeout_s: float = Field(
        default=60.0, gt=0, description="ENRICHER_FLUSH_TIMEOUT_S: bound on waiting for a batch's deliveries."
    )
    create_topics: bool = Field(default=True, description="ENRICHER_CREATE_TOPICS: create outputs and DLQs.")
    producer_name: str = Field(default="enricher", description="metadata.producer of the enriched records.")

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        if not value.startswith(("memory://", "rocksdb://")):
            raise ValueError("ENRICHER_STORE must be memory:// or rocksdb://")
        return value

    def source(self, kind: str) -> str:
        return self.topic(SOURCE_TOPICS[kind])

    def output(self, kind: str) -> str:
        return self.topic(OUTPUT_TOPICS[kind])

    def reference(self, kind: str) -> str:
        return self.topic(REFERENCE_TOPICS[kind])
