"""Settings of the embedded local stack (``freightline up``): its ports, state directory and credentials.

They belong to the stack, not to the services: a service only ever sees the endpoints the stack exports to
``stack.env``. The ports default to the same loopback ports the client settings in ``services.common.settings``
default to, so a process started without configuration talks to the local stack.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import (
    FLINK_REST_PORT,
    GCS_EMULATOR_PORT,
    GCS_LOCAL_BUCKET,
    HDFS_NAMENODE_PORT,
    HDFS_WEBHDFS_PORT,
    LOCAL_HOST,
    LOCAL_KAFKA_CONTROLLER_PORT,
    LOCAL_KAFKA_PORT,
    MONGODB_PORT,
    POSTGRES_PORT,
    REMOTE_KAFKA_CONTROLLER_PORT,
    REMOTE_KAFKA_PORT,
    SCHEMA_REGISTRY_PORT,
)

# Loopback ports of the stack's monitoring servers (nothing but the stack and its tests talks to them).
PROMETHEUS_PORT = 19090
ALERTMANAGER_PORT = 19095
ALERT_WEBHOOK_PORT = 19096
# Jaeger's (its defaults are 16686, 4318, 4317, 16685).
JAEGER_UI_PORT = 19686
JAEGER_OTLP_HTTP_PORT = 19318
JAEGER_OTLP_GRPC_PORT = 19317
JAEGER_QUERY_GRPC_PORT = 19685
# The brokers' JMX exporter agents and the PostgreSQL exporter (deployed: 7071 and 9187).
KAFKA_METRICS_PORT = 19071
REMOTE_KAFKA_METRICS_PORT = 19072
POSTGRES_EXPORTER_PORT = 19187
STATSD_PORT = 19125
STATSD_EXPORTER_PORT = 19102
# Airflow's API server (REST API and UI).
AIRFLOW_API_PORT = 18280


class StackSettings(BaseSettings):
    """The embedded local stack started by ``freightline up`` (ports, state directory, credentials)."""

    model_config = SettingsConfigDict(env_prefix="FREIGHTLINE_", extra="ignore", case_sensitive=False)

    home: str = Field(default=".freightline", description="FREIGHTLINE_HOME: state, logs, jars, data.")
    secure: bool = Field(
        default=False,
        description="FREIGHTLINE_SECURE: encryption and authentication on every hop (brokers on SASL_SSL, the "
        "registry on HTTPS, PostgreSQL with TLS), certificates from the stack's private CA (deploy/local/tls.py).",
    )
    kafka_port: int = Field(default=LOCAL_KAFKA_PORT, description="FREIGHTLINE_KAFKA_PORT.")
    kafka_controller_port: int = Field(default=LOCAL_KAFKA_CONTROLLER_PORT)
    remote_kafka_port: int = Field(default=REMOTE_KAFKA_PORT, description="FREIGHTLINE_REMOTE_KAFKA_PORT.")
    remote_kafka_controller_port: int = Field(default=REMOTE_KAFKA_CONTROLLER_PORT)
    postgres_port: int = Field(default=POSTGRES_PORT, description="FREIGHTLINE_POSTGRES_PORT.")
    schema_registry_port: int = Field(default=SCHEMA_REGISTRY_PORT)
    kafka_heap: str = Field(default="1g", description="FREIGHTLINE_KAFKA_HEAP: -Xmx of each broker.")
    mongodb_port: int = Field(default=MONGODB_PORT, description="FREIGHTLINE_MONGODB_PORT.")
    mongodb_database: str = Field(
        default="ferretdb",
        description="FREIGHTLINE_MONGODB_DATABASE: the PostgreSQL database (on the stack's PostgreSQL) that holds "
        "the MongoDB server's documents.",
    )
    mongodb_memory_limit: str = Field(
        default="384MiB", description="FREIGHTLINE_MONGODB_MEMORY_LIMIT: GOMEMLIMIT of the MongoDB server (FerretDB)."
    )
    mongodb_log_level: Literal["debug", "info", "warn", "error"] = Field(
        default="error",
        description="FREIGHTLINE_MONGODB_LOG_LEVEL: debug, info, warn or error (debug also logs each count_documents "
        "the server answers with its count command).",
    )
    hdfs_namenode_port: int = Field(default=HDFS_NAMENODE_PORT, description="FREIGHTLINE_HDFS_NAMENODE_PORT.")
    hdfs_webhdfs_port: int = Field(default=HDFS_WEBHDFS_PORT, description="FREIGHTLINE_HDFS_WEBHDFS_PORT.")
    hdfs_heap: str = Field(default="384m", description="FREIGHTLINE_HDFS_HEAP: -Xmx of the HDFS JVM.")
    gcs_port: int = Field(default=GCS_EMULATOR_PORT, description="FREIGHTLINE_GCS_PORT: the GCS emulator.")
    gcs_bucket: str = Field(default=GCS_LOCAL_BUCKET, description="FREIGHTLINE_GCS_BUCKET: created on start.")
    remote_sasl_username: str = Field(default="mirror", description="FREIGHTLINE_REMOTE_SASL_USERNAME.")
    remote_sasl_password: SecretStr | None = Field(
        default=None,
        description="FREIGHTLINE_REMOTE_SASL_PASSWORD; when unset, a random one is generated on first "
        "start and kept in the state directory (never in the repository).",
    )
    prometheus_port: int = Field(default=PROMETHEUS_PORT, description="FREIGHTLINE_PROMETHEUS_PORT.")
    prometheus_scrape_interval_s: int = Field(
        default=5, ge=1, description="FREIGHTLINE_PROMETHEUS_SCRAPE_INTERVAL_S: scrape and rule evaluation interval."
    )
    prometheus_retention: str = Field(
        default="2d", description="FREIGHTLINE_PROMETHEUS_RETENTION: how long the local Prometheus keeps samples."
    )
    alertmanager_port: int = Field(default=ALERTMANAGER_PORT, description="FREIGHTLINE_ALERTMANAGER_PORT.")
    alert_webhook_url: str = Field(
        default=f"http://{LOCAL_HOST}:{ALERT_WEBHOOK_PORT}/alerts",
        description="FREIGHTLINE_ALERT_WEBHOOK_URL: where the local Alertmanager posts every notification (the "
        "receivers of observability/alertmanager/alertmanager.yml); nothing listens there unless you do.",
    )
    kafka_metrics_port: int = Field(
        default=KAFKA_METRICS_PORT, description="FREIGHTLINE_KAFKA_METRICS_PORT: the local broker's JMX exporter."
    )
    remote_kafka_metrics_port: int = Field(
        default=REMOTE_KAFKA_METRICS_PORT,
        description="FREIGHTLINE_REMOTE_KAFKA_METRICS_PORT: the remote broker's JMX exporter.",
    )
    postgres_exporter_port: int = Field(
        default=POSTGRES_EXPORTER_PORT, description="FREIGHTLINE_POSTGRES_EXPORTER_PORT: PostgreSQL's exporter."
    )
    statsd_port: int = Field(
        default=STATSD_PORT,
        description="FREIGHTLINE_STATSD_PORT: the StatsD receiver (UDP and TCP) of statsd_exporter, where Airflow "
        "sends its metrics.",
    )
    statsd_exporter_port: int = Field(
        default=STATSD_EXPORTER_PORT, description="FREIGHTLINE_STATSD_EXPORTER_PORT: statsd_exporter's /metrics."
    )
    jaeger_ui_port: int = Field(
        default=JAEGER_UI_PORT, description="FREIGHTLINE_JAEGER_UI_PORT: Jaeger's UI and query API (/api/traces)."
    )
    jaeger_otlp_http_port: int = Field(
        default=JAEGER_OTLP_HTTP_PORT, description="FREIGHTLINE_JAEGER_OTLP_HTTP_PORT: Jaeger's OTLP/HTTP receiver."
    )
    jaeger_otlp_grpc_port: int = Field(
        default=JAEGER_OTLP_GRPC_PORT, description="FREIGHTLINE_JAEGER_OTLP_GRPC_PORT: Jaeger's OTLP/gRPC receiver."
    )
    jaeger_query_grpc_port: int = Field(
        default=JAEGER_QUERY_GRPC_PORT, description="FREIGHTLINE_JAEGER_QUERY_GRPC_PORT: Jaeger's query API over gRPC."
    )
    jaeger_max_traces: int = Field(
        default=50_000, gt=0, description="FREIGHTLINE_JAEGER_MAX_TRACES: traces Jaeger's memory storage keeps."
    )
    flink_port: int = Field(default=FLINK_REST_PORT, description="FREIGHTLINE_FLINK_PORT: REST API and web UI.")
    flink_rpc_port: int = Field(default=16123, description="FREIGHTLINE_FLINK_RPC_PORT: the JobManager's RPC.")
    flink_jobmanager_metrics_port: int = Field(
        default=19249, description="FREIGHTLINE_FLINK_JOBMANAGER_METRICS_PORT: the JobManager's Prometheus reporter."
    )
    flink_taskmanager_metrics_port: int = Field(
        default=19250, description="FREIGHTLINE_FLINK_TASKMANAGER_METRICS_PORT: the TaskManager's Prometheus reporter."
    )
    flink_jobmanager_memory: str = Field(
        default="768m", description="FREIGHTLINE_FLINK_JOBMANAGER_MEMORY: the JobManager's total process memory."
    )
    flink_taskmanager_memory: str = Field(
        default="1536m", description="FREIGHTLINE_FLINK_TASKMANAGER_MEMORY: the TaskManager's total process memory."
    )
    flink_taskmanager_slots: int = Field(default=2, description="FREIGHTLINE_FLINK_TASKMANAGER_SLOTS.")
    airflow_port: int = Field(default=AIRFLOW_API_PORT, description="FREIGHTLINE_AIRFLOW_PORT: REST API and UI.")
    airflow_log_server_port: int = Field(
        default=18793, description="FREIGHTLINE_AIRFLOW_LOG_SERVER_PORT: the scheduler's task-log server."
    )
    airflow_database: str = Field(
        default="airflow",
        description="FREIGHTLINE_AIRFLOW_DATABASE: Airflow's metadata database on the stack's PostgreSQL.",
    )
    airflow_parallelism: int = Field(
        default=2, ge=1, description="FREIGHTLINE_AIRFLOW_PARALLELISM: task processes of the LocalExecutor."
    )
    airflow_admin_password: SecretStr | None = Field(
        default=None,
        description="FREIGHTLINE_AIRFLOW_ADMIN_PASSWORD of the UI's and REST API's `admin` user; when unset, a "
        "random one is generated on first start and kept in the state directory (never in the repository).",
    )
    airflow_dags_start_date: str | None = Field(
        default=None,
        description="FREIGHTLINE_AIRFLOW_DAGS_START_DATE (YYYY-MM-DD): the first day the daily DAGs catch up "
        "from; when unset, the day the stack's Airflow was first prepared (kept in the state directory).",
    )
    stop_timeout_s: int = Field(default=30, description="Seconds between SIGTERM and SIGKILL on down.")
    start_timeout_s: int = Field(default=120, description="Seconds a component may take to answer.")
