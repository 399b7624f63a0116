"""Anomaly detector settings (environment prefix ``ANOMALY_DETECTOR_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas import topics
from services.common.settings import ConsumerGroupSettings, TopicNamingSettings

VIEWS = topics.PRODUCT_VIEWS
CLICKSTREAM = topics.CLICKSTREAM
SHIPMENTS = topics.SHIPMENT_EVENTS
INVOICES = topics.SUPPLIER_INVOICES
PAYMENTS = topics.SUPPLIER_PAYMENTS
ANOMALIES = topics.ANOMALIES
LABELS = topics.ANOMALY_LABELS
DETECTOR_INPUT = topics.DETECTOR_INPUT  # the repartition topic between the two stages
INPUT_TOPICS = (VIEWS, CLICKSTREAM, SHIPMENTS, INVOICES, PAYMENTS)
ALL_TOPICS = (*INPUT_TOPICS, DETECTOR_INPUT, ANOMALIES, LABELS)


class DetectorSettings(ConsumerGroupSettings, TopicNamingSettings):
    """Topics, consumer group, batching and the detection thresholds."""

    CATALOGUE_TOPICS = ALL_TOPICS
    TOPICS_USE = "the detector uses"

    model_config = SettingsConfigDict(env_prefix="ANOMALY_DETECTOR_", extra="ignore", case_sensitive=False)

    group_id: str = Field(
        default="freightline-anomaly-detector",
        description="ANOMALY_DETECTOR_GROUP_ID: consumer group of the detection stage (the repartition topic); the "
        "repartition stage (the raw topics) uses the group '<GROUP_ID>-repartition'.",
    )
    batch_size: int = Field(default=2000, ge=1, description="ANOMALY_DETECTOR_BATCH_SIZE: records per commit.")
    batch_timeout_s: float = Field(
        default=0.1, gt=0, description="ANOMALY_DETECTOR_BATCH_TIMEOUT_S: longest a batch gathers records."
    )
    idle_flush_s: float = Field(
        default=10.0, gt=0, description="ANOMALY_DETECTOR_IDLE_FLUSH_S: close open windows after this long idle."
    )
    idle_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="ANOMALY_DETECTOR_IDLE_TIMEOUT_S: a partition without records this long (processing time) is "
        "left out of the event-time watermark, so windows still close.",
    )
    lateness_s: float = Field(default=35.0, ge=0, description="ANOMALY_DETECTOR_LATENESS_S: allowed lateness.")
    spike_min_views: int = Field(default=60, ge=1, description="Views of one product from one referrer per window.")
    error_threshold: float = Field(default=5.0, gt=0, description="Robust z-score threshold of error bursts.")
    delay_min_days: int = Field(default=4, ge=1, description="Days past the promise that count as a late delivery.")
    delay_min_shipments: int = Field(default=2, ge=1, description="Late deliveries on one route within 15 minutes.")
    payment_min_ratio: float = Field(default=3.0, gt=1, description="Payment / invoice ratio that is anomalous.")
    create_topics: bool = Field(default=True, description="Create the repartition, anomalies and dead-letter topics.")

    @property
    def repartition_group_id(self) -> str:
        """Consumer group of stage 1 (raw topics -> repartition topic)."""
        return f"{self.group_id}-repartition"
