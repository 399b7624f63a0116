"""Mirror settings (environment prefix ``MIRROR_``); cluster and registry endpoints come from the shared ones."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from schemas import topics as topic_names
from services.common.settings import ConsumerGroupSettings, SchemaRegistrySettings


class MirrorSettings(ConsumerGroupSettings):
    """What to copy from the remote cluster, under which names, and how."""

    model_config = SettingsConfigDict(env_prefix="MIRROR_", extra="ignore", case_sensitive=False)

    topics: str = Field(
        default=topic_names.UPSTREAM_PRODUCT_VIEWS, description="MIRROR_TOPICS: comma-separated source topics."
    )
    topic_regex: str | None = Field(
        default=None, description="MIRROR_TOPIC_REGEX: mirror every source topic matching it (overrides TOPICS)."
    )
    rename: dict[str, str] = Field(
        default_factory=lambda: {topic_names.UPSTREAM_PRODUCT_VIEWS: topic_names.PRODUCT_VIEWS},
        description="MIRROR_RENAME: JSON map source topic -> destination topic.",
    )
    destination_prefix: str = Field(
        default="", description="MIRROR_DESTINATION_PREFIX for topics without an explicit rename."
    )
    group_id: str = Field(default="freightline-mirror", description="MIRROR_GROUP_ID on the remote cluster.")
    batch_size: int = Field(default=5000, ge=1, description="MIRROR_BATCH_SIZE: records per commit.")
    batch_timeout_s: float = Field(
        default=0.1, gt=0, description="MIRROR_BATCH_TIMEOUT_S: longest a batch gathers records (latency bound)."
    )
    create_topics: bool = Field(default=True, description="Create destination topics like their sources.")
    exactly_once: bool = Field(
        default=True,
        description="MIRROR_EXACTLY_ONCE: copy each batch in one transaction on the local cluster with its source "
        "positions (kept on OFFSETS_TOPIC); false: at least once, the remote group's offsets committed after the "
        "local acknowledgement.",
    )
    offsets_topic: str = Field(
        default=topic_names.MIRROR_SOURCE_OFFSETS,
        description="MIRROR_OFFSETS_TOPIC: the local topic of the source positions (exactly once).",
    )
    source_schema_registry_url: str | None = Field(
        default=None,
        description="MIRROR_SOURCE_SCHEMA_REGISTRY_URL: registry of the remote cluster (default: the same "
        "registry as SCHEMA_REGISTRY_URL, ids pass through).",
    )
    source_schema_registry_basic_auth_user_info: SecretStr | None = Field(
        default=None, description="MIRROR_SOURCE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO (secret)."
    )
    register_destination_subjects: bool = Field(
        default=True,
        description="With one registry, also register each writer schema under '<destination topic>-value'.",
    )
    stats_interval_ms: int = Field(default=5000, ge=100, description="Connection probe interval (librdkafka).")
    lag_interval_s: float = Field(default=10.0, gt=0, description="How often the consumer lag is measured.")

    @field_validator("topic_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value:
            re.compile(value)
        return value or None

    def source_topics(self) -> list[str]:
        """Subscription: explicit topics, or one regex subscription (librdkafka's '^' form)."""
        if self.topic_regex:
            return [self.topic_regex if self.topic_regex.startswith("^") else f"^{self.topic_regex}"]
        topics = [t.strip() for t in self.topics.split(",") if t.strip()]
        if not topics:
            raise ValueError("MIRROR_TOPICS names no topic and MIRROR_TOPIC_REGEX is not set")
        return topics

    def destination(self, source_topic: str) -> str:
        return self.rename.get(source_topic) or f"{self.destination_prefix}{source_topic}"

    def source_registry(self, destination: SchemaRegistrySettings) -> SchemaRegistrySettings | None:
        """Settings of a distinct source registry, or None when source and destination are the same."""
        url = self.source_schema_registry_url
        if not url or url.rstrip("/") == destination.url.rstrip("/"):
            return None
        return SchemaRegistrySettings(url=url, basic_auth_user_info=self.source_schema_registry_basic_auth_user_info)
