"""How each Freightline service is deployed: its image, metrics/health port, profile, the endpoints and secrets its
settings need in a cluster, the topics it reads and writes (Kafka ACLs) and how it scales.

The ports come from ``deploy.metrics_targets`` (the one list Prometheus scrapes), the topics from the catalogue's
constants; nothing else here is a second source of a fact the code already holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from deploy.metrics_targets import SERVICES as METRICS_SERVICES
from schemas import topics
from services.enricher.settings import EnricherSettings

IMAGE_REGISTRY = "ghcr.io/freightline"
VERSION = "0.1.0"
"""The tag every Freightline image of this checkout carries (the project's version in pyproject.toml)."""

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"


def image(name: str) -> str:
    """The pinned image reference of a Freightline image (a service's name, or flink-jobs, spark-jobs, airflow)."""
    return f"{IMAGE_REGISTRY}/{name.replace('_', '-')}:{VERSION}"


@dataclass(frozen=True)
class SecretRef:
    """An environment variable whose value comes from a Secret's key (Kubernetes) or the compose ``.env``."""

    secret: str
    key: str


@dataclass(frozen=True)
class DeployedService:
    name: str
    """The Python package under ``services/`` (and the ``service`` label of its metrics)."""
    profile: str
    """The compose profile that starts it."""
    endpoints: tuple[str, ...]
    """Which cluster endpoints its settings need (keys of ``ENDPOINTS``)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Further settings every deployment sets (cluster-independent)."""
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    """Consumer groups on the local cluster (Kafka ACLs)."""
    remote_reads: tuple[str, ...] = ()
    remote_writes: tuple[str, ...] = ()
    remote_groups: tuple[str, ...] = ()
    internal_prefix: str | None = None
    """Topics and groups a framework of the service creates and uses under this prefix (Faust's internal topics and
    groups: ``<app id>-...``): its KafkaUser may create and use them."""
    scale_topic: str | None = None
    """The topic whose consumer lag scales the service (None: a fixed replica count)."""
    scale_group: str | None = None
    max_replicas: int = 1
    """Never more than the partitions of what it consumes (an extra consumer of a group would idle)."""
    data_dir: str | None = None
    """A writable directory the service needs (an emptyDir; the root filesystem is read-only)."""
    cpu: str = "250m"
    memory: str = "512Mi"

    @property
    def k8s_name(self) -> str:
        return self.name.replace("_", "-")

    @property
    def port(self) -> int:
        return next(t.metrics_port for t in METRICS_SERVICES if t.name == self.name)

    @property
    def module(self) -> str:
        return f"services.{self.name}"

    @property
    def consumes(self) -> bool:
        return bool(self.groups or self.remote_groups)


RAW = (topics.CLICKSTREAM, topics.ORDERS, topics.SHIPMENT_EVENTS, topics.SUPPLIER_INVOICES, topics.SUPPLIER_PAYMENTS)
REFERENCE = (
    topics.REFERENCE_PRODUCTS,
    topics.REFERENCE_CUSTOMERS,
    topics.REFERENCE_STORES,
    topics.REFERENCE_SUPPLIERS,
    topics.REFERENCE_WAREHOUSES,
)
ENRICHED = (
    topics.ENRICHED_PRODUCT_VIEWS,
    topics.ENRICHED_CLICKSTREAM,
    topics.ENRICHED_ORDERS,
    topics.ENRICHED_SHIPMENT_EVENTS,
)


DETECTOR_SOURCES = (
    topics.PRODUCT_VIEWS,
    topics.CLICKSTREAM,
    topics.SHIPMENT_EVENTS,
    topics.SUPPLIER_INVOICES,
    topics.SUPPLIER_PAYMENTS,
    topics.DETECTOR_INPUT,
)
"""What the anomaly detector's two stages consume (the raw families, then its own repartition topic)."""


def dlq(*sources: str) -> tuple[str, ...]:
    return tuple(f"{source}.dlq" for source in sources)


SERVICES: tuple[DeployedService, ...] = (
    DeployedService(
        "schema_registry",
        "core",
        ("registry_database",),
        env={"SCHEMA_REGISTRY_SERVER_HOST": "0.0.0.0", "SCHEMA_REGISTRY_SERVER_PORT": "8081"},
        max_replicas=3,
    ),
    DeployedService(
        "generator",
        "core",
        ("kafka", "remote_kafka", "registry"),
        env={"GENERATOR_PACE": "true"},
        writes=(*RAW, *REFERENCE, topics.ANOMALY_LABELS),
        remote_writes=(topics.UPSTREAM_PRODUCT_VIEWS,),
    ),
    DeployedService(
        "mirror",
        "core",
        ("kafka", "remote_kafka", "registry"),
        # the source positions: written in each copy's transaction, read back at partition assignment
        reads=(topics.MIRROR_SOURCE_OFFSETS,),
        writes=(topics.PRODUCT_VIEWS, topics.MIRROR_SOURCE_OFFSETS, *dlq(topics.UPSTREAM_PRODUCT_VIEWS)),
        remote_reads=(topics.UPSTREAM_PRODUCT_VIEWS,),
        remote_groups=("freightline-mirror",),
        max_replicas=3,
    ),
    DeployedService(
        "enricher",
        "stream",
        ("kafka", "registry"),
        env={"ENRICHER_DATA_DIR": "/data/enricher"},
        reads=(topics.PRODUCT_VIEWS, topics.CLICKSTREAM, topics.ORDERS, topics.SHIPMENT_EVENTS, *REFERENCE),
        writes=(*ENRICHED, *dlq(topics.PRODUCT_VIEWS, topics.CLICKSTREAM, topics.ORDERS, topics.SHIPMENT_EVENTS)),
        groups=("freightline-enricher",),
        internal_prefix=EnricherSettings.model_fields["app_id"].default,
        scale_topic=topics.CLICKSTREAM,
        scale_group="freightline-enricher",
        max_replicas=3,
        data_dir="/data/enricher",
        memory="768Mi",
    ),
    DeployedService(
        "anomaly_detector",
        "stream",
        ("kafka", "registry"),
        reads=DETECTOR_SOURCES,
        writes=(topics.DETECTOR_INPUT, topics.ANOMALIES, *dlq(*DETECTOR_SOURCES)),
        groups=("freightline-anomaly-detector", "freightline-anomaly-detector-repartition"),
        scale_topic=topics.DETECTOR_INPUT,
        scale_group="freightline-anomaly-detector",
        max_replicas=6,
    ),
    DeployedService(
        "sink_mongodb",
        "lake",
        ("kafka", "registry", "mongodb"),
        reads=(topics.PRODUCT_VIEWS,),
        writes=dlq(topics.PRODUCT_VIEWS),
        groups=("sink-mongodb",),
        scale_topic=topics.PRODUCT_VIEWS,
        scale_group="sink-mongodb",
        max_replicas=3,
    ),
    DeployedService(
        "sink_hdfs",
        "lake",
        ("kafka", "registry", "hdfs"),
        reads=(topics.CLICKSTREAM, topics.ORDERS, topics.SHIPMENT_EVENTS, topics.PRODUCT_VIEWS),
        writes=dlq(topics.CLICKSTREAM, topics.ORDERS, topics.SHIPMENT_EVENTS, topics.PRODUCT_VIEWS),
        groups=("sink-hdfs",),
        scale_topic=topics.CLICKSTREAM,
        scale_group="sink-hdfs",
        max_replicas=3,
        memory="768Mi",
    ),
    DeployedService(
        "sink_gcs",
        "lake",
        ("kafka", "registry", "gcs"),
        reads=(topics.SUPPLIER_INVOICES, topics.SUPPLIER_PAYMENTS),
        writes=dlq(topics.SUPPLIER_INVOICES, topics.SUPPLIER_PAYMENTS),
        groups=("sink-gcs",),
        scale_topic=topics.SUPPLIER_INVOICES,
        scale_group="sink-gcs",
        max_replicas=3,
        memory="768Mi",
    ),
)


def by_name(name: str) -> DeployedService:
    for service in SERVICES:
        if service.name == name:
            return service
    raise KeyError(name)


# Kubernetes: what each endpoint of ENDPOINTS means inside the cluster (Strimzi's bootstrap services, the
# registry's Service, the databases' Services or managed endpoints). Kafka clients authenticate with the SCRAM
# credentials of their KafkaUser (Strimzi writes them into a Secret named after the user, key `password`).
KAFKA_CLUSTER = "freightline"
KAFKA_PORT = 9092
"""Strimzi's SCRAM listener inside the cluster. Plain TCP: the services' Kafka settings have no CA setting yet, so
a TLS listener with Strimzi's own CA is not reachable from them (a CA in the images' trust store would be)."""
STATSD_PORT = 9125
"""Where statsd_exporter receives StatsD lines (UDP and TCP), in compose and on Kubernetes."""
STATSD_IMAGE = "prom/statsd-exporter:v0.31.0"
"""The exporter's image, the version the local stack builds from its Go module (deploy/local/launchers)."""
STATSD_MAPPING_DIR = "/etc/statsd"
AIRFLOW_POD_LABELS = {"tier": "airflow"}
"""The label Airflow's official chart gives every pod it runs (scheduler, API server, workers, ...)."""
K8S_ENDPOINTS: dict[str, dict[str, str | SecretRef]] = {
    "kafka": {
        "KAFKA_BOOTSTRAP_SERVERS": f"{KAFKA_CLUSTER}-kafka-bootstrap:{KAFKA_PORT}",
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_TOPIC_REPLICATION_FACTOR": "3",
        "KAFKA_TOPIC_MIN_INSYNC_REPLICAS": "2",
    },
    "remote_kafka": {
        "REMOTE_KAFKA_BOOTSTRAP_SERVERS": "upstream-kafka.example.com:9094",
        "REMOTE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "REMOTE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "REMOTE_KAFKA_SASL_USERNAME": "freightline",
        "REMOTE_KAFKA_SASL_PASSWORD": SecretRef("freightline-remote-kafka", "password"),
    },
    "registry": {"SCHEMA_REGISTRY_URL": "http://schema-registry:8081"},
    "registry_database": {
        "SCHEMA_REGISTRY_SERVER_DATABASE_DSN": "postgresql://freightline@postgres:5432/freightline",
        "PGPASSWORD": SecretRef("freightline-postgres", "password"),
    },
    "mongodb": {
        "MONGODB_URI": "mongodb://mongodb:27017",
        "MONGODB_USERNAME": "freightline",
        "MONGODB_PASSWORD": SecretRef("freightline-mongodb", "password"),
    },
    "hdfs": {
        "HDFS_WEBHDFS_URL": "http://hdfs-namenode:9870",
        "HDFS_NAMENODE_URI": "hdfs://hdfs-namenode:8020",
        "HDFS_USER": "freightline",
    },
    "gcs": {"GCS_PROJECT": "freightline", "GCS_BUCKET": "freightline-raw"},
}

LIBRARY_VARIABLES = frozenset(
    {
        "PGPASSWORD",  # libpq: the registry's database password, never in the DSN
        "FREIGHTLINE_SERVICE",  # the image's entrypoint: which services.<name> to run
        "HEALTH_PORT",  # the image's HEALTHCHECK port
        "OTEL_EXPORTER_OTLP_ENDPOINT",  # OpenTelemetry's own exporter settings (with OTEL_EXPORTER=otlp)
        "OTEL_SERVICE_NAME",
        "GOOGLE_APPLICATION_CREDENTIALS",  # google-cloud-storage's credentials file (the GCS sink outside GKE)
        "STORAGE_EMULATOR_HOST",  # google-cloud-storage's emulator switch (compose's fake-gcs-server)
        "FLINK_PROPERTIES",  # the official Flink image's entrypoint: the cluster's configuration (compose)
    }
)
"""Variables a deployment may set that no settings class of ours reads: the libraries read them."""
