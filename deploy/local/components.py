"""The servers of the local stack, one small declaration each.

A component says which ports it binds, how to prepare its data once (format, initdb), the command that
runs it (supervised by supervisord), how to tell that it answers, and which ``KEY=VALUE`` endpoints it
exports to ``stack.env``. Adding a server to the stack means adding one subclass to ``COMPONENTS``.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.context import POSTGRES_OS_USER, REPO_ROOT, StackContext
from deploy.local.jars import classpath, jar_dir
from services.common.settings import LOCAL_HOST, POSTGRES_DB, POSTGRES_USER


@dataclass
class Program:
    """How supervisord runs a component."""

    command: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    stop_signal: str = "TERM"
    directory: Path = REPO_ROOT


class Component(ABC):
    name: str
    depends_on: tuple[str, ...] = ()
    extra_start_s: float = 0.0  # seconds it may take beyond the stack's start timeout (a first start's migrations)

    @abstractmethod
    def ports(self, ctx: StackContext) -> dict[str, int]:
        """Role -> loopback port; each must be free before the component starts."""

    def prepare(self, ctx: StackContext) -> None:  # noqa: B027 - optional hook
        """One-time, idempotent initialisation of the component's data."""

    @abstractmethod
    def program(self, ctx: StackContext) -> Program: ...

    @abstractmethod
    def ready(self, ctx: StackContext) -> bool:
        """True once the component answers its protocol."""

    def after_ready(self, ctx: StackContext) -> None:  # noqa: B027 - optional hook
        """Idempotent set-up that needs the running server (databases, users)."""

    @abstractmethod
    def exports(self, ctx: StackContext) -> dict[str, str]:
        """Endpoints written to stack.env."""


def port_is_free(port: int, host: str = LOCAL_HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding (what ``kafka-storage random-uuid`` prints)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _java(heap: str, cp: str, log_config: Path, main: str, *args: str) -> list[str]:
    return [
        "java",
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{log_config}",
        "-cp",
        cp,
        main,
        *args,
    ]


_LOG4J = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.coordinator=WARN
"""


JMX_EXPORTER_RULES = REPO_ROOT / "observability" / "kafka" / "jmx-exporter.yml"


class KafkaBroker(Component):
    """A single-node KRaft broker (broker + controller in one JVM)."""

    def __init__(self, name: str, *, sasl: bool) -> None:
        self.name = name
        self.sasl = sasl

    def ports(self, ctx: StackContext) -> dict[str, int]:
        s = ctx.settings
        if self.sasl:
            return {
                "client": s.remote_kafka_port,
                "controller": s.remote_kafka_controller_port,
                "metrics": s.remote_kafka_metrics_port,
            }
        return {"client": s.kafka_port, "controller": s.kafka_controller_port, "metrics": s.kafka_metrics_port}

    def metrics_address(self, ctx: StackContext) -> str:
        """Where the broker's JMX exporter agent serves ``/metrics``."""
        return f"{LOCAL_HOST}:{self.ports(ctx)['metrics']}"

    def _dirs(self, ctx: StackContext) -> tuple[Path, Path, Path]:
        data = ctx.paths.data / self.name
        props = ctx.paths.config / f"{self.name}.properties"
        log_config = ctx.paths.config / f"{self.name}-log4j.properties"
        return data, props, log_config

    def credentials(self, ctx: StackContext) -> dict[str, str]:
        s = ctx.settings
        configured = s.remote_sasl_password.get_secret_value() if s.remote_sasl_password else None
        return {
            "broker": ctx.secret(f"{self.name}-broker-password"),
            s.remote_sasl_username: ctx.secret(f"{self.name}-client-password", configured),
        }

    def _properties(self, ctx: StackContext, data: Path) -> str:
        ports = self.ports(ctx)
        client, controller = ports["client"], ports["controller"]
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{LOCAL_HOST}:{controller}",
            "controller.listener.names=CONTROLLER",
            f"log.dirs={data}",
            "num.partitions=3",
            "default.replication.factor=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=5",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.retention.hours=168",
            "log.cleaner.min.compaction.lag.ms=0",
        ]
        if self.sasl:
            broker_password = self.credentials(ctx)["broker"]
            lines += [
                f"listeners=SASL_PLAINTEXT://{LOCAL_HOST}:{client},CONTROLLER://{LOCAL_HOST}:{controller}",
                f"advertised.listeners=SASL_PLAINTEXT://{LOCAL_HOST}:{client}",
                "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=SASL_PLAINTEXT",
                "sasl.enabled.mechanisms=SCRAM-SHA-256",
                "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256",
                "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="broker" password="{broker_password}";',
            ]
        else:
            lines += [
                f"listeners=PLAINTEXT://{LOCAL_HOST}:{client},CONTROLLER://{LOCAL_HOST}:{controller}",
                f"advertised.listeners=PLAINTEXT://{LOCAL_HOST}:{client}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
            ]
        return "\n".join(lines) + "\n"

    def prepare(self, ctx: StackContext) -> None:
        data, props, log_config = self._dirs(ctx)
        data.mkdir(parents=True, exist_ok=True)
        props.write_text(self._properties(ctx, data))
        props.chmod(0o600)
        log_config.write_text(_LOG4J)
        if (data / "meta.properties").exists():
            return
        self.format_storage(ctx, new_cluster_id())

    def format_storage(self, ctx: StackContext, cluster_id: str) -> None:
        """Format the KRaft log directory once (``--ignore-formatted``), with SCRAM users on the SASL broker."""
        _, props, log_config = self._dirs(ctx)
        # ``--cluster-id=ID`` in one argument: a base64url id may begin with "-" and would read as an option.
        args = ["format", f"--cluster-id={cluster_id}", "-c", str(props), "--ignore-formatted"]
        if self.sasl:
            for user, password in self.credentials(ctx).items():
                args += ["--add-scram", f"SCRAM-SHA-256=[name={user},password={password}]"]
        command = _java("256m", classpath(ctx.paths, "kafka"), log_config, "kafka.tools.StorageTool", *args)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{self.name}: formatting KRaft storage failed:\n{result.stdout}{result.stderr}")

    def program(self, ctx: StackContext) -> Program:
        _, props, log_config = self._dirs(ctx)
        cp = classpath(ctx.paths, "kafka")
        command = _java(ctx.settings.kafka_heap, cp, log_config, "kafka.Kafka", str(props))
        # The JMX exporter agent: the broker's metrics for Prometheus, named by the rules in observability/kafka.
        agent = next(jar_dir(ctx.paths, "jmx-exporter").glob("jmx_prometheus_javaagent-*.jar"))
        command.insert(1, f"-javaagent:{agent}={self.metrics_address(ctx)}:{JMX_EXPORTER_RULES}")
        return Program(command=command)

    def client_config(self, ctx: StackContext) -> dict[str, str]:
        config = {"bootstrap.servers": f"{LOCAL_HOST}:{self.ports(ctx)['client']}"}
        if self.sasl:
            user = ctx.settings.remote_sasl_username
            config.update(
                {
                    "security.protocol": "SASL_PLAINTEXT",
                    "sasl.mechanism": "SCRAM-SHA-256",
                    "sasl.username": user,
                    "sasl.password": self.credentials(ctx)[user],
                }
            )
        return config

    def ready(self, ctx: StackContext) -> bool:
        from confluent_kafka.admin import AdminClient

        if port_is_free(self.ports(ctx)["client"]):
            return False
        admin = AdminClient({**self.client_config(ctx), "socket.timeout.ms": 2000})
        try:
            metadata = admin.list_topics(timeout=2)
        except Exception:
            return False
        return bool(metadata.brokers)

    def after_ready(self, ctx: StackContext) -> None:
        """Wait until the group coordinator answers (a new cluster first creates its offsets topic)."""
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        consumer = Consumer({**self.client_config(ctx), "group.id": "freightline-stack-probe"})
        try:
            deadline = time.monotonic() + ctx.settings.start_timeout_s
            while True:
                try:
                    consumer.committed([TopicPartition("freightline-stack-probe", 0)], timeout=5)
                    return
                except KafkaException:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        finally:
            consumer.close()

    def exports(self, ctx: StackContext) -> dict[str, str]:
        config = self.client_config(ctx)
        if not self.sasl:
            return {"KAFKA_BOOTSTRAP_SERVERS": config["bootstrap.servers"]}
        return {
            "REMOTE_KAFKA_BOOTSTRAP_SERVERS": config["bootstrap.servers"],
            "REMOTE_KAFKA_SECURITY_PROTOCOL": config["security.protocol"],
            "REMOTE_KAFKA_SASL_MECHANISM": config["sasl.mechanism"],
            "REMOTE_KAFKA_SASL_USERNAME": config["sasl.username"],
            "REMOTE_KAFKA_SASL_PASSWORD": config["sasl.password"],
        }


class Postgres(Component):
    """A private PostgreSQL cluster under the state directory (Debian's server binaries)."""

    name = "postgres"
    bin_dir = Path("/usr/lib/postgresql/15/bin")

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"sql": ctx.settings.postgres_port}

    def _data(self, ctx: StackContext) -> Path:
        return ctx.private_dir("postgres", POSTGRES_OS_USER)

    def prepare(self, ctx: StackContext) -> None:
        data = self._data(ctx)
        if (data / "PG_VERSION").exists():
            return
        command = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            POSTGRES_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]
        result = subprocess.run(
            ["runuser", "-u", POSTGRES_OS_USER, "--", *command], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"postgres: initdb failed:\n{result.stdout}{result.stderr}")

    def program(self, ctx: StackContext) -> Program:
        data = self._data(ctx)
        return Program(
            command=[
                str(self.bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(ctx.settings.postgres_port),
                "-c",
                f"listen_addresses={LOCAL_HOST}",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=128MB",
                "-c",  # acknowledged commits are on disk (the defaults, stated: FerretDB's durability rests on them)
                "fsync=on",
                "-c",
                "synchronous_commit=on",
            ],
            user=POSTGRES_OS_USER,
            stop_signal="INT",  # fast shutdown: SIGTERM would wait for every client to leave
            directory=data,
        )

    def dsn(self, ctx: StackContext, db: str) -> str:
        return f"postgresql://{POSTGRES_USER}@{LOCAL_HOST}:{ctx.settings.postgres_port}/{db}"

    def ready(self, ctx: StackContext) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.dsn(ctx, "postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def after_ready(self, ctx: StackContext) -> None:
        self.ensure_database(ctx, POSTGRES_DB)
        self.ensure_database(ctx, ctx.settings.airflow_database)  # Airflow's metadata (deploy/local/airflow.py)

    def ensure_database(self, ctx: StackContext, name: str, setup_sql: str = "") -> None:
        """Create database ``name`` unless it exists, then run ``setup_sql`` (idempotent statements) in it."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(ctx, "postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if setup_sql:
            with psycopg.connect(self.dsn(ctx, name), autocommit=True) as conn:
                conn.execute(setup_sql.encode())

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {"POSTGRES_DSN": self.dsn(ctx, POSTGRES_DB)}


class SchemaRegistry(Component):
    """Freightline's Confluent-compatible Schema Registry, backed by the stack's PostgreSQL."""

    name = "schema_registry"
    depends_on = ("postgres",)

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"http": ctx.settings.schema_registry_port}

    def _url(self, ctx: StackContext) -> str:
        return f"http://{LOCAL_HOST}:{ctx.settings.schema_registry_port}"

    def program(self, ctx: StackContext) -> Program:
        return Program(
            command=[sys.executable, "-m", "services.schema_registry"],
            environment={
                "SCHEMA_REGISTRY_SERVER_HOST": LOCAL_HOST,
                "SCHEMA_REGISTRY_SERVER_PORT": str(ctx.settings.schema_registry_port),
                "SCHEMA_REGISTRY_SERVER_DATABASE_DSN": Postgres().dsn(ctx, POSTGRES_DB),
                "SERVICE_NAME": "schema-registry",
            },
        )

    def ready(self, ctx: StackContext) -> bool:
        import httpx

        try:
            return httpx.get(f"{self._url(ctx)}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {"SCHEMA_REGISTRY_URL": self._url(ctx)}
