"""Typed settings read from environment variables.

Every host, port and credential a Freightline process uses comes from one of these classes. The local
defaults (the embedded stack's loopback endpoints) live here and nowhere else. Secrets are ``SecretStr``
and never have a default: a process that needs one and does not get it fails with a clear error.

Nothing here reads the environment at import time: an entrypoint instantiates the class it needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit, urlunsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Loopback ports of the embedded local stack. The stack starts its servers on these ports and the client
# settings below default to them, so a process started without configuration talks to the local stack.
LOCAL_HOST = "127.0.0.1"
LOCAL_KAFKA_PORT = 19092
LOCAL_KAFKA_CONTROLLER_PORT = 19093
REMOTE_KAFKA_PORT = 29092
REMOTE_KAFKA_CONTROLLER_PORT = 29093
POSTGRES_PORT = 15432
SCHEMA_REGISTRY_PORT = 18081
POSTGRES_USER = "freightline"
POSTGRES_DB = "freightline"
MONGODB_PORT = 17017
HDFS_NAMENODE_PORT = 18020
HDFS_WEBHDFS_PORT = 18870
GCS_EMULATOR_PORT = 14443
GCS_LOCAL_BUCKET = "freightline-raw"
FLINK_REST_PORT = 18088
# The lake in HDFS: raw files (the HDFS sink writes, the Spark jobs read) and the daily tables as Parquet.
HDFS_LAKE_ROOT = "/freightline/raw"
HDFS_ANALYTICS_ROOT = "/freightline/analytics"
# The finance events' lake in GCS: <bucket>/<prefix>/<topic>/dt=/hour= (the GCS sink writes, the Spark jobs read).
GCS_LAKE_PREFIX = "raw"
# The product views' collection in MongoDB (the MongoDB sink writes, the Spark jobs can read it).
MONGODB_PRODUCT_VIEWS_COLLECTION = "product_views"


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI")

LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})


def log_level(value: str) -> str:
    """A log level setting's value, upper-cased; raises ``ValueError`` for an unknown one."""
    upper = value.upper()
    if upper not in LOG_LEVELS:
        raise ValueError(f"unknown log level {value!r}")
    return upper


def readable_file(path: str | None) -> str | None:
    """``path`` when it is unset or names a file this process can read (a certificate, a key); else ``ValueError``."""
    if path is not None and not os.access(path, os.R_OK):
        raise ValueError(f"no readable file at {path}")
    return path


ReadableFile = Annotated[str | None, AfterValidator(readable_file)]
"""A setting naming a file (a CA certificate) that must be readable when set."""


def one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    """``value`` upper-cased when it is one of ``allowed``; raises ``ValueError`` naming ``what`` otherwise."""
    upper = value.strip().upper()
    if upper not in allowed:
        raise ValueError(f"unknown {what} {value!r}; one of {', '.join(allowed)}")
    return upper


def redact(url: str) -> str:
    """``url`` without the password of its user info (a DSN or a MongoDB URI may carry one)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedactedSettings(BaseSettings):
    """Settings whose ``repr`` and ``str`` never show a credential: ``SecretStr`` fields show ``**********``
    (pydantic), and a URL-valued field (a DSN, a MongoDB URI, a registry URL) shows its password as ``***``.
    Every settings class of the platform derives from it."""

    def secret_values(self) -> set[str]:
        """Every credential these settings hold (``SecretStr`` values, URL passwords): what the logs mask."""
        found: set[str] = set()
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                found.add(value.get_secret_value())
            elif isinstance(value, str) and redact(value) != value:
                found.add(str(urlsplit(value).password))
        for text in list(found):
            found.update(part.partition(":")[2] for part in text.split(",") if ":" in part)  # user:password lists
        return {value for value in found if value}

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact(value) if isinstance(value, str) else value

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Self:
        """The settings a mapping of variables with this class's prefix describes (a stack's env file), the
        environment's (or the defaults) for what it does not name; its other keys are ignored."""
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        fields = {key[len(prefix) :].lower(): value for key, value in env.items() if key.upper().startswith(prefix)}
        return cls(**{name: value for name, value in fields.items() if name in cls.model_fields})


def secret_values(*settings: RedactedSettings | None) -> set[str]:
    """Every credential the given settings hold: what a process's logs mask (``configure_logging(secrets=...)``)."""
    return set().union(*(s.secret_values() for s in settings if s is not None))


def _settings_config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", case_sensitive=False)


class KafkaSettings(RedactedSettings):
    """The local Kafka cluster every service reads from and writes to."""

    model_config = _settings_config("KAFKA_")

    bootstrap_servers: str = Field(
        default=f"{LOCAL_HOST}:{LOCAL_KAFKA_PORT}",
        description="KAFKA_BOOTSTRAP_SERVERS: comma-separated host:port list.",
    )
    security_protocol: str = Field(default="PLAINTEXT", description="KAFKA_SECURITY_PROTOCOL.")
    sasl_mechanism: str | None = Field(default=None, description="KAFKA_SASL_MECHANISM, e.g. SCRAM-SHA-256.")
    sasl_username: str | None = Field(default=None, description="KAFKA_SASL_USERNAME.")
    sasl_password: SecretStr | None = Field(default=None, description="KAFKA_SASL_PASSWORD (secret).")
    ssl_ca_location: str | None = Field(
        default=None,
        description="KAFKA_SSL_CA_LOCATION: PEM file of the certificate authority the brokers' certificates are "
        "checked against (librdkafka's ssl.ca.location) with SSL or SASL_SSL; unset: the system's trust store.",
    )
    topic_replication_factor: int = Field(
        default=1,
        ge=1,
        description="KAFKA_TOPIC_REPLICATION_FACTOR: replicas of every topic a service creates (1 on the local "
        "single-node stack; 3 in production).",
    )
    topic_min_insync_replicas: int = Field(
        default=1,
        ge=1,
        description="KAFKA_TOPIC_MIN_INSYNC_REPLICAS: min.insync.replicas of the topics a service creates (acks=all "
        "then waits for this many replicas; 2 in production with 3 replicas). A catalogue topic's own "
        "`min.insync.replicas` wins.",
    )

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Self:
        """The settings a ``KAFKA_*`` mapping (a stack's env file, a process environment) describes."""
        return cls.model_validate({k[len("KAFKA_") :].lower(): v for k, v in env.items() if k.startswith("KAFKA_")})

    @classmethod
    def from_client_config(cls, config: Mapping[str, Any]) -> KafkaSettings:
        """The settings a librdkafka property map (``client_config``'s output) describes."""
        password = config.get("sasl.password")
        return cls(
            bootstrap_servers=str(config["bootstrap.servers"]),
            security_protocol=str(config.get("security.protocol", "PLAINTEXT")),
            sasl_mechanism=config.get("sasl.mechanism"),
            sasl_username=config.get("sasl.username"),
            sasl_password=SecretStr(str(password)) if password else None,
            ssl_ca_location=config.get("ssl.ca.location"),
        )

    @field_validator("security_protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        return one_of(value, SECURITY_PROTOCOLS, "security protocol")

    @field_validator("sasl_mechanism")
    @classmethod
    def _mechanism(cls, value: str | None) -> str | None:
        return one_of(value, SASL_MECHANISMS, "SASL mechanism") if value and value.strip() else None

    @field_validator("bootstrap_servers")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("bootstrap servers must not be empty")
        return value.strip()

    def client_config(self) -> dict[str, str]:
        """librdkafka connection properties (no secrets are logged: see ``masked``)."""
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.security_protocol.upper().startswith("SASL"):
            missing = [
                f"{self.model_config.get('env_prefix', '')}{name}".upper()
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if not getattr(self, name)
            ]
            if missing or not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
                raise ValueError(f"security protocol {self.security_protocol} needs {', '.join(missing)}")
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location and self.security_protocol.endswith("SSL"):
            if not Path(self.ssl_ca_location).is_file():
                name = f"{self.model_config.get('env_prefix', '')}SSL_CA_LOCATION".upper()
                raise ValueError(f"{name}: no such file {self.ssl_ca_location}")
            config["ssl.ca.location"] = self.ssl_ca_location
        return config

    def java_client_properties(self, shaded: str = "") -> dict[str, str]:
        """The Java Kafka client's security properties (Flink's and Spark's Kafka connectors, which prefix them with
        ``properties.`` and ``kafka.``): the protocol, the SASL login as a JAAS line (when the settings carry one),
        and the CA of ``ssl_ca_location`` as a PEM trust store (the file librdkafka reads; without it the JVM's own
        trust store, which does not know a private CA). ``shaded``: the package prefix of a connector that shades
        the Kafka client (its login module is only found under that name)."""
        properties = {"security.protocol": self.security_protocol}
        if self.sasl_mechanism and self.sasl_username and self.sasl_password:
            module = f"{shaded}org.apache.kafka.common.security.scram.ScramLoginModule"
            if self.sasl_mechanism == "PLAIN":
                module = f"{shaded}org.apache.kafka.common.security.plain.PlainLoginModule"
            password = self.sasl_password.get_secret_value().replace('"', '\\"')
            properties["sasl.mechanism"] = self.sasl_mechanism
            properties["sasl.jaas.config"] = f'{module} required username="{self.sasl_username}" password="{password}";'
        if self.ssl_ca_location and self.security_protocol.endswith("SSL"):
            properties["ssl.truststore.type"] = "PEM"
            properties["ssl.truststore.location"] = self.ssl_ca_location
        return properties

    def replication(self) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) for the topics created on this cluster."""
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError(
                f"{self.model_config.get('env_prefix', '')}TOPIC_MIN_INSYNC_REPLICAS "
                f"({self.topic_min_insync_replicas}) exceeds the replication factor ({self.topic_replication_factor})"
            )
        return self.topic_replication_factor, self.topic_min_insync_replicas

    def masked(self) -> dict[str, str]:
        return {k: ("***" if "password" in k else v) for k, v in self.client_config().items()}


class RemoteKafkaSettings(KafkaSettings):
    """The upstream ("remote") cluster: SASL/SCRAM, credentials only from the environment."""

    model_config = _settings_config("REMOTE_KAFKA_")

    bootstrap_servers: str = Field(
        default=f"{LOCAL_HOST}:{REMOTE_KAFKA_PORT}",
        description="REMOTE_KAFKA_BOOTSTRAP_SERVERS.",
    )
    security_protocol: str = Field(default="SASL_PLAINTEXT", description="REMOTE_KAFKA_SECURITY_PROTOCOL.")
    sasl_mechanism: str | None = Field(default="SCRAM-SHA-256", description="REMOTE_KAFKA_SASL_MECHANISM.")


class SchemaRegistrySettings(RedactedSettings):
    """How clients reach a Confluent-compatible Schema Registry."""

    model_config = _settings_config("SCHEMA_REGISTRY_")

    url: str = Field(
        default=f"http://{LOCAL_HOST}:{SCHEMA_REGISTRY_PORT}",
        description="SCHEMA_REGISTRY_URL: http(s)://[user:password@]host:port (credentials in the URL are the "
        "basic-auth user when SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO is unset).",
    )
    basic_auth_user_info: SecretStr | None = Field(
        default=None, description="SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO as user:password (secret)."
    )
    ssl_ca_location: ReadableFile = Field(
        default=None,
        description="SCHEMA_REGISTRY_SSL_CA_LOCATION: PEM file of the certificate authorities an https:// registry's "
        "certificate is checked against (unset: the system's); confluent-kafka's `ssl.ca.location`.",
    )
    auto_register_schemas: bool = Field(
        default=True,
        description="SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS: a producer registers the schema it writes (true) or "
        "only looks it up and fails when the subject lacks it (false: for read-only registry users, the schemas "
        "registered beforehand by a deploy step).",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        for url in value.split(","):
            parts = urlsplit(url.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("expected http(s)://host:port")
        return value.strip()

    def client_config(self) -> dict[str, str]:
        """confluent-kafka's ``SchemaRegistryClient`` configuration (the services' own client takes it too)."""
        config = {"url": self.url}
        if self.basic_auth_user_info is not None:
            config["basic.auth.user.info"] = self.basic_auth_user_info.get_secret_value()
        if self.ssl_ca_location is not None:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config


SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})


def check_libpq_tls(dsn: str) -> str:
    """``dsn`` (a libpq URL or ``key=value`` string) when its TLS parameters make sense: a known ``sslmode``, and an
    ``sslrootcert`` (the CA that signs the server's certificate, PEM) that names a readable file; else
    ``ValueError`` saying which."""
    if "://" in dsn:
        params = {key: values[-1] for key, values in parse_qs(urlsplit(dsn).query).items()}
    else:
        params = dict(part.partition("=")[::2] for part in dsn.split() if "=" in part)
    mode = params.get("sslmode")
    if mode is not None and mode not in SSL_MODES:
        raise ValueError(f"sslmode {mode!r} is not one of {', '.join(sorted(SSL_MODES))}")
    root = params.get("sslrootcert")
    if root is not None and root != "system" and not os.access(root, os.R_OK):
        raise ValueError(f"sslrootcert: no readable file at {root}")  # libpq's "system": the system's CAs
    return dsn


class PostgresSettings(RedactedSettings):
    model_config = _settings_config("POSTGRES_")

    dsn: str = Field(
        default=f"postgresql://{POSTGRES_USER}@{LOCAL_HOST}:{POSTGRES_PORT}/{POSTGRES_DB}",
        description="POSTGRES_DSN: libpq connection string; over TLS `?sslmode=verify-full&sslrootcert=<CA file>` "
        "(what the local stack exports with FREIGHTLINE_SECURE).",
    )

    @field_validator("dsn")
    @classmethod
    def _tls(cls, value: str) -> str:
        return check_libpq_tls(value)


class FlinkSettings(RedactedSettings):
    """How clients reach a Flink session cluster's REST API (job submission, listing, savepoints)."""

    model_config = _settings_config("FLINK_")

    rest_url: str = Field(default=f"http://{LOCAL_HOST}:{FLINK_REST_PORT}", description="FLINK_REST_URL.")


MONGODB_TRUE = frozenset({"true", "1", "yes"})  # how a MongoDB URI's boolean options say "on"


def check_mongodb_tls(uri: str) -> str:
    """``uri`` (a MongoDB connection string) when its TLS options make sense: ``tlsCAFile`` (the CA that signs the
    server's certificate, PEM) names a readable file and comes with ``tls=true``, and nothing switches the checks off
    (``tlsInsecure``, ``tlsAllowInvalidCertificates``, ``tlsAllowInvalidHostnames``); else ``ValueError`` saying
    which."""
    options = {key.lower(): values[-1] for key, values in parse_qs(urlsplit(uri).query).items()}
    tls = (options.get("tls") or options.get("ssl") or "").lower() in MONGODB_TRUE
    ca = options.get("tlscafile")
    if ca is not None:
        if not tls:
            raise ValueError("tlsCAFile is set but tls=true is not")
        if not os.access(ca, os.R_OK):
            raise ValueError(f"tlsCAFile: no readable file at {ca}")
    for unchecked in ("tlsinsecure", "tlsallowinvalidcertificates", "tlsallowinvalidhostnames"):
        if options.get(unchecked, "").lower() in MONGODB_TRUE:
            raise ValueError(f"{unchecked} turns the certificate checks off; give the server's CA in tlsCAFile")
    return uri


class MongoSettings(RedactedSettings):
    """How clients reach MongoDB (the local stack's wire-protocol server by default)."""

    model_config = _settings_config("MONGODB_")

    uri: str = Field(
        default=f"mongodb://{LOCAL_HOST}:{MONGODB_PORT}",
        description="MONGODB_URI (no credentials); over TLS `/?tls=true&tlsCAFile=<CA file>` (what the local stack "
        "exports with FREIGHTLINE_SECURE): the server's certificate and name are checked.",
    )
    username: str | None = Field(default=None, description="MONGODB_USERNAME.")
    password: SecretStr | None = Field(default=None, description="MONGODB_PASSWORD (secret).")
    database: str = Field(default="freightline", description="MONGODB_DATABASE.")

    @field_validator("uri")
    @classmethod
    def _tls(cls, value: str) -> str:
        return check_mongodb_tls(value)


class HdfsSettings(RedactedSettings):
    """How clients reach HDFS: WebHDFS for Python, the NameNode RPC URI for JVM readers (Spark)."""

    model_config = _settings_config("HDFS_")

    webhdfs_url: str = Field(
        default=f"http://{LOCAL_HOST}:{HDFS_WEBHDFS_PORT}",
        description="HDFS_WEBHDFS_URL: the NameNode's HTTP(S) address (https on the local stack with "
        "FREIGHTLINE_SECURE).",
    )
    namenode_uri: str = Field(default=f"hdfs://{LOCAL_HOST}:{HDFS_NAMENODE_PORT}", description="HDFS_NAMENODE_URI.")
    user: str = Field(default="freightline", description="HDFS_USER: the simple-auth user name.")
    ssl_ca_location: ReadableFile = Field(
        default=None,
        description="HDFS_SSL_CA_LOCATION: PEM file of the certificate authorities an https:// WebHDFS's certificates "
        "(the NameNode's and the DataNodes' it redirects to) are checked against; unset: the system's.",
    )


class GcsSettings(RedactedSettings):
    """How clients reach Google Cloud Storage; ``GCS_ENDPOINT`` set = an emulator with anonymous access."""

    model_config = _settings_config("GCS_")

    endpoint: str | None = Field(
        default=None, description="GCS_ENDPOINT: emulator URL; unset = real GCS with application default credentials."
    )
    project: str = Field(default="freightline", description="GCS_PROJECT.")
    bucket: str = Field(default=GCS_LOCAL_BUCKET, description="GCS_BUCKET: default bucket of raw data.")
    ssl_ca_location: ReadableFile = Field(
        default=None,
        description="GCS_SSL_CA_LOCATION: PEM file of the certificate authorities an https:// GCS_ENDPOINT's "
        "certificate is checked against (the local stack's emulator with FREIGHTLINE_SECURE); unset: the system's.",
    )


class ServiceSettings(RedactedSettings):
    """What every long-running service shares: its name, log level, metrics port, tracing."""

    model_config = _settings_config("")

    service_name: str = Field(default="freightline", description="SERVICE_NAME.")
    log_level: str = Field(default="INFO", description="LOG_LEVEL.")
    metrics_host: str = Field(default=LOCAL_HOST, description="METRICS_HOST.")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="METRICS_PORT (0 = any free port).")
    metrics_targets_dir: str | None = Field(
        default=None,
        description="METRICS_TARGETS_DIR: when set, the service announces its /metrics address to Prometheus's "
        "file-based service discovery in <dir>/<service>/<pid>.json while it runs (the local stack exports it).",
    )
    otel_exporter: str = Field(
        default="none",
        description="OTEL_EXPORTER: none | console | otlp; spans go over OTLP whenever OTEL_EXPORTER_OTLP_ENDPOINT "
        "is set.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="OTEL_EXPORTER_OTLP_ENDPOINT: the OTLP/HTTP collector (e.g. Jaeger's :4318) that receives the "
        "service's spans; unset = tracing off (no tracer provider: no cost on the hot paths).",
    )
    trace_sample_ratio: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="TRACE_SAMPLE_RATIO: the share of new traces kept (a generated record starts one); records "
        "that arrive in a sampled trace are always followed.",
    )
    shutdown_timeout_s: float = Field(default=30.0, gt=0, description="SHUTDOWN_TIMEOUT_S: drain deadline.")
    startup_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="STARTUP_TIMEOUT_S: how long each endpoint the service depends on may take to answer at start-up "
        "before the service exits naming it.",
    )

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        return log_level(value)


class TopicNamingSettings(RedactedSettings):
    """The name a service gives each catalogue topic it uses: ``<PREFIX>TOPICS`` (a JSON map catalogue topic ->
    topic to use instead) when it names the topic, else ``<PREFIX>TOPIC_PREFIX`` + the catalogue name. A service's
    settings class inherits them, and sets ``CATALOGUE_TOPICS`` (the only keys the map takes) and ``TOPICS_USE``
    (how the error about another key says what the service does with them)."""

    CATALOGUE_TOPICS: ClassVar[tuple[str, ...]] = ()
    TOPICS_USE: ClassVar[str] = "the service uses"

    topic_prefix: str = Field(default="", description="<PREFIX>TOPIC_PREFIX prepended to every topic name.")
    topics: dict[str, str] = Field(
        default_factory=dict, description="<PREFIX>TOPICS: JSON map catalogue topic -> topic to use instead."
    )

    @field_validator("topics")
    @classmethod
    def _known_topics(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(cls.CATALOGUE_TOPICS)
        if unknown:
            raise ValueError(f"unknown topics {sorted(unknown)}; {cls.TOPICS_USE} {list(cls.CATALOGUE_TOPICS)}")
        return value

    def topic(self, catalogue_name: str) -> str:
        """The topic to use for a catalogue topic (explicit mapping, else prefix + name)."""
        return self.topics.get(catalogue_name) or f"{self.topic_prefix}{catalogue_name}"


class ConsumerGroupSettings(RedactedSettings):
    """Hand-off and group membership of a service's consumer loop; a service's settings class inherits them and
    reads them under its own environment prefix (``MIRROR_BATCH_IDLE_S``, ``SINK_HDFS_INSTANCE_ID``, ...)."""

    batch_idle_s: float | None = Field(
        default=0.002,
        ge=0,
        description="<PREFIX>BATCH_IDLE_S: a batch is handed off once no record arrived for this long (or it is "
        "full, or BATCH_TIMEOUT_S old); unset: only by size or age.",
    )
    instance_id: str | None = Field(
        default=None,
        description="<PREFIX>INSTANCE_ID: static group member id (group.instance.id, KIP-345; default "
        "<service>-<host name>, empty for dynamic membership): a restart takes its partitions back at once.",
    )
