"""How each Freightline service is deployed: its image, metrics/health port, profile, the endpoints and secrets its
settings need in a cluster and how it scales.

The ports come from ``deploy.metrics_targets`` (the one list Prometheus scrapes), the topics from the catalogue's
constants, what each service may do on Kafka from the ACL table (``deploy/local/kafka_acls.py``); nothing else here
is a second source of a fact the code already holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from deploy.metrics_targets import SERVICES as METRICS_SERVICES
from schemas import topics

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
    groups: tuple[str, ...] = ()
    """Consumer groups on the local cluster (what its KafkaUser may use is the ACL table's, ``kafka_acls``)."""
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


SERVICES: tuple[DeployedService, ...] = (
    DeployedService(
        "schema_registry",
        "core",
        ("registry_database", "registry_server"),
        env={"SCHEMA_REGISTRY_SERVER_HOST": "0.0.0.0", "SCHEMA_REGISTRY_SERVER_PORT": "8081"},
        max_replicas=3,
    ),
    DeployedService(
        "generator",
        "core",
        ("kafka", "remote_kafka", "registry"),
        env={"GENERATOR_PACE": "true"},
    ),
    DeployedService(
        "mirror",
        "core",
        ("kafka", "remote_kafka", "registry"),
        max_replicas=3,
    ),
    DeployedService(
        "enricher",
        "stream",
        ("kafka", "registry"),
        env={"ENRICHER_DATA_DIR": "/data/enricher"},
        groups=("freightline-enricher",),
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
        groups=("freightline-anomaly-detector", "freightline-anomaly-detector-repartition"),
        scale_topic=topics.DETECTOR_INPUT,
        scale_group="freightline-anomaly-detector",
        max_replicas=6,
    ),
    DeployedService(
        "sink_mongodb",
        "lake",
        ("kafka", "registry", "mongodb"),
        groups=("sink-mongodb",),
        scale_topic=topics.PRODUCT_VIEWS,
        scale_group="sink-mongodb",
        max_replicas=3,
    ),
    DeployedService(
        "sink_hdfs",
        "lake",
        ("kafka", "registry", "hdfs"),
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
# credentials of their KafkaUser (Strimzi writes them into a Secret named after the user, key `password`) over TLS,
# checked against Strimzi's cluster CA.
KAFKA_CLUSTER = "freightline"
KAFKA_PORT = 9093
"""Strimzi's listener inside the cluster: TLS, SCRAM-SHA-512 (the local stack's secure mode: SASL_SSL)."""


@dataclass(frozen=True)
class SecretFiles:
    """Files a container reads from a Secret, mounted as its chosen keys only (``items``: a CA certificate is mounted
    without the private key its Secret may also hold): the volume's name, the Secret, the keys, the folder."""

    volume: str
    secret: str
    keys: tuple[str, ...]
    folder: str

    def path(self, key: str | None = None) -> str:
        """Where the container finds ``key`` (the first key by default)."""
        return f"{self.folder}/{key or self.keys[0]}"


KAFKA_CA = SecretFiles("kafka-ca", f"{KAFKA_CLUSTER}-cluster-ca-cert", ("ca.crt",), "/etc/freightline/kafka-ca")
"""Strimzi's cluster CA certificate (the Secret ``<cluster>-cluster-ca-cert`` its Cluster Operator keeps)."""
REGISTRY_TLS_SECRET = "schema-registry-tls"  # pragma: allowlist secret
"""cert-manager's Secret of the registry's ``Certificate`` (``tls.crt``, ``tls.key``, ``ca.crt``)."""
REGISTRY_CA = SecretFiles("registry-ca", REGISTRY_TLS_SECRET, ("ca.crt",), "/etc/freightline/registry-ca")
"""The CA that signed the registry's certificate: the only key of that Secret a client mounts."""
REGISTRY_SERVER_TLS = SecretFiles(
    "registry-tls", REGISTRY_TLS_SECRET, ("tls.crt", "tls.key"), "/etc/freightline/registry-tls"
)
REGISTRY_USERS_SECRET = "freightline-schema-registry"  # pragma: allowlist secret
"""The registry's two roles: keys ``admin`` and ``reader``, each ``user:password`` (the server's user lists too)."""
POSTGRES_CA = SecretFiles("postgres-ca", "freightline-postgres-ca", ("ca.crt",), "/etc/freightline/postgres-ca")
"""The CA of the PostgreSQL server's certificate, for ``sslmode=verify-full``."""
POSTGRES_TLS = f"sslmode=verify-full&sslrootcert={POSTGRES_CA.path()}"
"""What every PostgreSQL DSN on Kubernetes ends with: TLS, the server's certificate checked against its CA and name."""
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
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SSL_CA_LOCATION": KAFKA_CA.path(),
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
    # the services only look schemas up, as the read-only user: a Job registers the contracts as the admin first
    "registry": {
        "SCHEMA_REGISTRY_URL": "https://schema-registry:8081",
        "SCHEMA_REGISTRY_SSL_CA_LOCATION": REGISTRY_CA.path(),
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": SecretRef(REGISTRY_USERS_SECRET, "reader"),
        "SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS": "false",
    },
    "registry_server": {
        "SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS": SecretRef(REGISTRY_USERS_SECRET, "admin"),
        "SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS": SecretRef(REGISTRY_USERS_SECRET, "reader"),
        "SCHEMA_REGISTRY_SERVER_SSL_CERTFILE": REGISTRY_SERVER_TLS.path("tls.crt"),
        "SCHEMA_REGISTRY_SERVER_SSL_KEYFILE": REGISTRY_SERVER_TLS.path("tls.key"),
    },
    "registry_database": {
        "SCHEMA_REGISTRY_SERVER_DATABASE_DSN": f"postgresql://freightline@postgres:5432/freightline?{POSTGRES_TLS}",
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

ENDPOINT_FILES: dict[str, tuple[SecretFiles, ...]] = {
    "kafka": (KAFKA_CA,),
    "registry": (REGISTRY_CA,),
    "registry_server": (REGISTRY_SERVER_TLS,),
    "registry_database": (POSTGRES_CA,),
}
"""The files a container of a service using each endpoint mounts (the CAs it checks servers against, the registry's
own certificate and key)."""

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
