"""The servers of the local stack, one small declaration each.

A component says which ports it binds, how to prepare its data once (format, initdb), the command that
runs it (supervised by supervisord), how to tell that it answers, and which ``KEY=VALUE`` endpoints it
exports to ``stack.env``. Adding a server to the stack means adding one subclass to ``COMPONENTS``.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from deploy.local import kafka_acls
from deploy.local.context import POSTGRES_OS_USER, REPO_ROOT, StackContext
from deploy.local.jars import classpath, jar_dir
from deploy.local.tls import ServerCertificate, write_file
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


SECURE_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 4096  # what kafka-storage's --add-scram uses by default
SECURITY_MARK = "freightline-security"
"""A broker's data directory notes whether it was formatted for the secure stack (its users live in its metadata)."""
CONTROLLER_USER = "controller"
"""The controller listener's SASL/PLAIN user (the broker's connection to its own controller)."""

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

    @property
    def cluster(self) -> str:
        """Which cluster of the ACL table this broker is (``deploy.local.kafka_acls``)."""
        return kafka_acls.REMOTE if self.sasl else kafka_acls.LOCAL

    def credentials(self, ctx: StackContext) -> dict[str, str]:
        """The SCRAM users of this broker and their passwords: with ``FREIGHTLINE_SECURE``, the brokers' own user,
        ``admin`` and one user per service of the ACL table (a service has the same password on both clusters)."""
        s = ctx.settings
        if s.secure:
            users = {kafka_acls.BROKER: ctx.secret(f"{self.name}-broker-password")}
            for principal in (kafka_acls.ADMIN, *kafka_acls.principals(self.cluster)):
                users[principal] = kafka_user_password(ctx, principal)
            return users
        configured = s.remote_sasl_password.get_secret_value() if s.remote_sasl_password else None
        return {
            "broker": ctx.secret(f"{self.name}-broker-password"),
            s.remote_sasl_username: ctx.secret(f"{self.name}-client-password", configured),
        }

    def certificate(self, ctx: StackContext) -> ServerCertificate:
        """The client listener's certificate (secure stack), signed by the stack's CA."""
        return ctx.tls.server(self.name)

    def _secure_listeners(self, ctx: StackContext, client: int, controller: int) -> list[str]:
        """SASL_SSL with SCRAM-SHA-512 for clients and between brokers; the controller listener on loopback with
        SASL/PLAIN (KRaft keeps SCRAM credentials in the metadata the controller serves, so the controller cannot
        check them): every connection authenticates, the authorizer allows what the ACL table grants."""
        cert = self.certificate(ctx)
        broker_password = ctx.secret(f"{self.name}-broker-password")
        controller_password = ctx.secret(f"{self.name}-controller-password")
        return [
            f"listeners=SASL_SSL://{LOCAL_HOST}:{client},CONTROLLER://{LOCAL_HOST}:{controller}",
            f"advertised.listeners=SASL_SSL://{LOCAL_HOST}:{client}",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
            "inter.broker.listener.name=SASL_SSL",
            f"sasl.enabled.mechanisms={SECURE_MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={SECURE_MECHANISM}",
            f"listener.name.sasl_ssl.{SECURE_MECHANISM.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{kafka_acls.BROKER}" password="{broker_password}";',
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            "listener.name.controller.plain.sasl.jaas.config="
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{CONTROLLER_USER}" password="{controller_password}" '
            f'user_{CONTROLLER_USER}="{controller_password}";',
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={cert.bundle}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={cert.ca}",
            "ssl.client.auth=none",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            f"super.users=User:{kafka_acls.ADMIN};User:{kafka_acls.BROKER};User:{CONTROLLER_USER}",
        ]

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
        if ctx.settings.secure:
            lines += self._secure_listeners(ctx, client, controller)
        elif self.sasl:
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
        mark = data / SECURITY_MARK
        mode = "secure" if ctx.settings.secure else "plain"
        if (data / "meta.properties").exists():
            formatted = mark.read_text().strip() if mark.exists() else "plain"
            if formatted != mode:
                raise RuntimeError(
                    f"{self.name}: its data was made with FREIGHTLINE_SECURE={str(formatted == 'secure').lower()} "
                    f"(its listeners and users); start it with that setting, or start it over with "
                    f"`freightline up --fresh` (which wipes the stack's data)"
                )
            return
        self.format_storage(ctx, new_cluster_id())
        mark.write_text(mode)

    def format_storage(self, ctx: StackContext, cluster_id: str) -> None:
        """Format the KRaft log directory once (``--ignore-formatted``), with SCRAM users on the SASL broker."""
        _, props, log_config = self._dirs(ctx)
        # ``--cluster-id=ID`` in one argument: a base64url id may begin with "-" and would read as an option.
        args = ["format", f"--cluster-id={cluster_id}", "-c", str(props), "--ignore-formatted"]
        if self.sasl or ctx.settings.secure:
            mechanism = SECURE_MECHANISM if ctx.settings.secure else "SCRAM-SHA-256"
            for user, password in self.credentials(ctx).items():
                args += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
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
        """librdkafka settings of the stack's own clients: ``admin`` on a secure stack."""
        config = {"bootstrap.servers": f"{LOCAL_HOST}:{self.ports(ctx)['client']}"}
        if ctx.settings.secure:
            config.update(self.principal_config(ctx, kafka_acls.ADMIN))
        elif self.sasl:
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

    def sync_users(self, ctx: StackContext) -> None:
        """Set every service principal's SCRAM credentials from the secrets folder (as ``admin``): a principal added
        to the table after the storage was formatted gets its user, a changed password file takes effect."""
        from confluent_kafka.admin import (
            AdminClient,
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialAlteration,
            UserScramCredentialUpsertion,
        )

        admin = AdminClient({**self.client_config(ctx)})
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(principal, info, kafka_user_password(ctx, principal).encode())
            for principal in kafka_acls.principals(self.cluster)
        ]
        for future in admin.alter_user_scram_credentials(upserts).values():
            future.result()

    def principal_config(self, ctx: StackContext, principal: str) -> dict[str, str]:
        """The security settings of ``principal`` on this secure broker (SASL_SSL, SCRAM-SHA-512, the stack's CA)."""
        return {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": SECURE_MECHANISM,
            "sasl.username": principal,
            "sasl.password": kafka_user_password(ctx, principal),
            "ssl.ca.location": str(ctx.tls.ensure()),
        }

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
        """On a secure stack, make the broker's ACLs the table's; then wait until the group coordinator answers (a
        new cluster first creates its offsets topic)."""
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        if ctx.settings.secure:
            self.sync_users(ctx)
            kafka_acls.apply(self.client_config(ctx), self.cluster)

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
        prefix = "REMOTE_KAFKA_" if self.sasl else "KAFKA_"
        names = {
            "bootstrap.servers": "BOOTSTRAP_SERVERS",
            "security.protocol": "SECURITY_PROTOCOL",
            "sasl.mechanism": "SASL_MECHANISM",
            "sasl.username": "SASL_USERNAME",
            "sasl.password": "SASL_PASSWORD",  # pragma: allowlist secret
            "ssl.ca.location": "SSL_CA_LOCATION",
        }
        return {f"{prefix}{names[key]}": value for key, value in config.items()}


def service_kafka_env(ctx: StackContext, principal: str) -> dict[str, str]:
    """The Kafka credentials a service process is given on a secure stack: its own principal's on both clusters,
    in place of the ``admin`` ones of ``stack.env`` (a principal without a row on a cluster has no user there, so it
    cannot even log in). Empty when ``FREIGHTLINE_SECURE`` is off."""
    if not ctx.settings.secure:
        return {}
    password = kafka_user_password(ctx, principal)
    return {
        f"{prefix}{name}": value
        for prefix in ("KAFKA_", "REMOTE_KAFKA_")
        for name, value in (("SASL_USERNAME", principal), ("SASL_PASSWORD", password))
    }


def kafka_user_secret(principal: str) -> str:
    """The name of the file, in the secrets folder, holding the SCRAM password of a Kafka user of the secure stack."""
    return f"kafka-user-{principal}-password"


def kafka_user_password(ctx: StackContext, principal: str) -> str:
    """The SCRAM password of a Kafka user of the secure stack (generated once, kept in the secrets folder)."""
    return ctx.secret(kafka_user_secret(principal))


# With FREIGHTLINE_SECURE: the only client authentication rule (TCP with TLS from loopback); a connection without TLS
# matches no rule and is refused ("no pg_hba.conf entry ... no encryption").
SECURE_HBA = """hostssl all all 127.0.0.1/32 trust
hostssl all all ::1/128 trust
"""


class Postgres(Component):
    """A private PostgreSQL cluster under the state directory (Debian's server binaries); with ``secure``, TLS only
    (a server certificate of the stack's CA) and clients verify it (``sslmode=verify-full``)."""

    name = "postgres"
    bin_dir = Path("/usr/lib/postgresql/15/bin")

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"sql": ctx.settings.postgres_port}

    def _data(self, ctx: StackContext) -> Path:
        return ctx.private_dir("postgres", POSTGRES_OS_USER)

    def tls_dir(self, ctx: StackContext) -> Path:
        """The server's certificate, key and client rules, owned by the PostgreSQL user (it refuses a key another
        user can read)."""
        return ctx.private_dir("postgres-tls", POSTGRES_OS_USER)

    def _write_tls(self, ctx: StackContext) -> Path:
        files = ctx.tls.server(self.name)
        target = self.tls_dir(ctx)
        for name, data, mode in (
            ("server.crt", files.cert.read_bytes(), 0o644),
            ("server.key", files.key.read_bytes(), 0o600),
            ("pg_hba.conf", SECURE_HBA.encode(), 0o600),
        ):
            path = target / name
            write_file(path, data, mode)
            if os.geteuid() == 0:
                shutil.chown(path, user=POSTGRES_OS_USER, group=POSTGRES_OS_USER)
        return target

    def prepare(self, ctx: StackContext) -> None:
        if ctx.settings.secure:
            self._write_tls(ctx)
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
                *self.tls_options(ctx),
            ],
            user=POSTGRES_OS_USER,
            stop_signal="INT",  # fast shutdown: SIGTERM would wait for every client to leave
            directory=data,
        )

    def tls_options(self, ctx: StackContext) -> list[str]:
        if not ctx.settings.secure:
            return []
        tls = self.tls_dir(ctx)
        options = {
            "ssl": "on",
            "ssl_cert_file": tls / "server.crt",
            "ssl_key_file": tls / "server.key",
            "ssl_min_protocol_version": "TLSv1.2",
            "hba_file": tls / "pg_hba.conf",
        }
        return [item for key, value in options.items() for item in ("-c", f"{key}={value}")]

    def dsn(self, ctx: StackContext, db: str, **params: str) -> str:
        """The libpq URL of database ``db`` with the query ``params``; with ``secure``, TLS that checks the server's
        certificate against the stack's CA and its name (``sslmode=verify-full``, ``sslrootcert``)."""
        if ctx.settings.secure:
            params = {"sslmode": "verify-full", "sslrootcert": str(ctx.tls.ensure()), **params}
        query = f"?{urlencode(params, safe='/')}" if params else ""
        return f"postgresql://{POSTGRES_USER}@{LOCAL_HOST}:{ctx.settings.postgres_port}/{db}{query}"

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
    """Freightline's Confluent-compatible Schema Registry, backed by the stack's PostgreSQL, always with two users:
    ``ADMIN_USER`` (every operation) and ``READ_ONLY_USER`` (fetch and look up schemas; registering, changing
    compatibility and deleting answer 403), their passwords generated once in the secrets folder. With ``secure``
    it serves HTTPS only, with a server certificate of the stack's CA."""

    name = "schema_registry"
    depends_on = ("postgres",)
    ADMIN_USER = "admin"
    READ_ONLY_USER = "reader"

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"http": ctx.settings.schema_registry_port}

    def url(self, ctx: StackContext, user: str | None = None) -> str:
        """The registry's URL, with ``user``'s credentials when given."""
        credentials = f"{self.user_info(ctx, user)}@" if user else ""
        return f"{ctx.http_scheme}://{credentials}{LOCAL_HOST}:{ctx.settings.schema_registry_port}"

    def user_info(self, ctx: StackContext, user: str) -> str:
        """``user:password`` of one of the registry's two users (URL-safe: generated with ``token_urlsafe``)."""
        if user not in (self.ADMIN_USER, self.READ_ONLY_USER):
            raise ValueError(f"the stack's registry has no user {user!r}")
        return f"{user}:{ctx.secret(self.secret_name(user))}"

    @staticmethod
    def secret_name(user: str) -> str:
        """The file, in the secrets folder, holding the password of the registry's ``user``."""
        return f"schema-registry-{user}-password"

    def program(self, ctx: StackContext) -> Program:
        environment = {
            "SCHEMA_REGISTRY_SERVER_HOST": LOCAL_HOST,
            "SCHEMA_REGISTRY_SERVER_PORT": str(ctx.settings.schema_registry_port),
            "SCHEMA_REGISTRY_SERVER_DATABASE_DSN": Postgres().dsn(ctx, POSTGRES_DB),
            "SCHEMA_REGISTRY_SERVER_BASIC_AUTH_USERS": self.user_info(ctx, self.ADMIN_USER),
            "SCHEMA_REGISTRY_SERVER_READ_ONLY_USERS": self.user_info(ctx, self.READ_ONLY_USER),
            "SERVICE_NAME": "schema-registry",
        }
        if ctx.settings.secure:
            files = ctx.tls.server(self.name)
            environment["SCHEMA_REGISTRY_SERVER_SSL_CERTFILE"] = str(files.cert)
            environment["SCHEMA_REGISTRY_SERVER_SSL_KEYFILE"] = str(files.key)
        return Program(command=[sys.executable, "-m", "services.schema_registry"], environment=environment)

    def ready(self, ctx: StackContext) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url(ctx)}/healthz", timeout=2, verify=ctx.https_verify()).status_code == 200
        except httpx.HTTPError:
            return False

    def exports(self, ctx: StackContext) -> dict[str, str]:
        """The admin's credentials in ``SCHEMA_REGISTRY_URL`` (what the stack's tools and tests use), the read-only
        user's apart (what the main job gives the services), the CA when the registry serves HTTPS."""
        env = {
            "SCHEMA_REGISTRY_URL": self.url(ctx, self.ADMIN_USER),
            "SCHEMA_REGISTRY_READ_ONLY_USER_INFO": self.user_info(ctx, self.READ_ONLY_USER),
        }
        if ctx.settings.secure:
            env["SCHEMA_REGISTRY_SSL_CA_LOCATION"] = str(ctx.tls.ensure())
        return env
