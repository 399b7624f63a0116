"""The stack's storage targets: a MongoDB-wire-protocol server, HDFS with WebHDFS, and a GCS emulator.

- ``mongodb``: FerretDB v1 (the Go module, embedded in a small ``main`` of ours: launchers/ferretdb, go.sum
  committed), reporting MongoDB 7.0. It stores each collection as a table of jsonb documents in its own database
  (``FREIGHTLINE_MONGODB_DATABASE``, default ``ferretdb``) on the stack's PostgreSQL, so memory stays bounded
  whatever the document count and an acknowledged write is a committed PostgreSQL transaction (fsync and
  synchronous_commit on). The launcher serves the port with a small wire proxy (launchers/ferretdb/countproxy.go)
  that answers ``count_documents``' aggregate with FerretDB's streaming ``count``. ``after_ready`` creates the
  database and an event trigger that gives each single-field index FerretDB builds a GIN companion, so ``_id``
  lookups and indexed equality queries are index scans.
- ``hdfs``: a NameNode and a DataNode in one JVM (Hadoop's MiniDFSCluster, launchers/hdfs), formatted on the
  first start only, WebHDFS on the NameNode's HTTP port.
- ``gcs``: fake-gcs-server (built with ``go install``) speaking the GCS JSON API over http, filesystem backend;
  it honours generation preconditions.

With ``FREIGHTLINE_SECURE`` each serves TLS only, with a server certificate of the stack's CA, and exports what its
clients need to check it (the CA, the server's name): the MongoDB wire proxy (``tls=true&tlsCAFile=`` in
``MONGODB_URI``; FerretDB itself then listens on a Unix socket in a folder only the server's user enters, so the proxy
is the only way in), WebHDFS on both HDFS daemons (``dfs.http.policy=HTTPS_ONLY``, a PKCS#12 key store;
``HDFS_SSL_CA_LOCATION``) and the GCS emulator (``-scheme https``; ``GCS_SSL_CA_LOCATION``, and for Spark's GCS
connector, which reads only the trust store it bundles, a class-path folder with that store plus the CA:
``SPARK_JOBS_EXTRA_CLASS_PATH``). HDFS's RPC (``hdfs://``,
Spark's and Flink's way in) stays plain: Hadoop encrypts it (``hadoop.rpc.protection=privacy``) only under Kerberos.

HDFS and the GCS emulator keep their data under the state directory's ``data/<name>``, MongoDB in PostgreSQL
(itself under ``data/postgres``), so data persists between runs and ``freightline up --fresh`` wipes it all.
``setup`` (run by ``freightline setup`` and ``up``) compiles the launchers and builds FerretDB and the emulator
once; it is idempotent (stamps of the sources' hashes).
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from deploy.local.builds import digest, go_build, is_current, require_tool, run_step
from deploy.local.components import Component, Postgres, Program
from deploy.local.context import StackContext
from deploy.local.jars import classpath, jar_dir
from deploy.local.tls import gcs_connector_trust_overlay, pkcs12_keystore, write_file
from services.common.settings import LOCAL_HOST

LAUNCHERS = Path(__file__).resolve().parent / "launchers"
FERRETDB_SOURCE = LAUNCHERS / "ferretdb"
FAKE_GCS_MODULE = "github.com/fsouza/fake-gcs-server"
FAKE_GCS_VERSION = "v1.56.1"

Progress = Callable[[str], None]
MAX_SOCKET_PATH = 107  # bytes of a Unix socket's path on Linux (sun_path, 108 with its terminating NUL)

# Java 17 closes internals that Hadoop still reaches into.
_ADD_OPENS = [
    f"--add-opens=java.base/{package}=ALL-UNNAMED"
    for package in ("java.lang", "java.nio", "sun.nio.ch", "java.util", "java.lang.reflect", "java.net", "java.io")
]

_HADOOP_LOG4J = """log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit=WARN
log4j.logger.org.apache.hadoop.security.authentication.server.AuthenticationFilter=ERROR
"""


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection((LOCAL_HOST, port), timeout=1):
            return True
    except OSError:
        return False


def compile_launcher(ctx: StackContext, name: str, runtime: str) -> Path:
    """Compile ``launchers/<name>/*.java`` against the ``runtime`` jars into the state dir (idempotent)."""
    sources = sorted((LAUNCHERS / name).glob("*.java"))
    target = ctx.paths.home / "launchers" / name
    stamp = target / ".stamp"
    cp = classpath(ctx.paths, runtime)
    built_from = digest(*sources, extra=cp)
    if is_current(stamp, built_from):
        return target
    require_tool("javac", "javac (a JDK 17) is required to compile the stack's launchers")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    run_step(["javac", "-nowarn", "-d", str(target), "-cp", cp, *map(str, sources)], f"compiling the {name} launcher")
    stamp.write_text(built_from)
    return target


class MongoServer(Component):
    """FerretDB (built from launchers/ferretdb) speaking the MongoDB wire protocol over the stack's PostgreSQL."""

    name = "mongodb"
    depends_on = ("postgres",)

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"mongo": ctx.settings.mongodb_port}

    def binary(self, ctx: StackContext) -> Path:
        return ctx.paths.home / "bin" / "freightline-ferretdb"

    def setup(self, ctx: StackContext, progress: Progress) -> None:
        go_build(
            self.binary(ctx),
            FERRETDB_SOURCE,
            ".",
            "FerretDB",
            progress,
            sources=("main.go", "countproxy.go", "go.mod", "go.sum"),
            tags=("ferretdb_no_sqlite",),
        )

    def socket(self, ctx: StackContext) -> Path:
        """Where FerretDB listens on a secure stack (behind the TLS proxy): a Unix socket in a folder of its own."""
        return ctx.paths.run / self.name / "ferretdb.sock"

    def prepare(self, ctx: StackContext) -> None:
        if not self.binary(ctx).exists():
            self.setup(ctx, lambda _: None)
        if ctx.settings.secure:
            socket = self.socket(ctx)
            if len(os.fsencode(socket)) > MAX_SOCKET_PATH:
                raise RuntimeError(
                    f"mongodb: {socket} is longer than a Unix socket's path may be ({MAX_SOCKET_PATH} bytes); "
                    "give FREIGHTLINE_HOME a shorter path"
                )
            socket.parent.mkdir(parents=True, exist_ok=True)
            socket.parent.chmod(0o700)

    def program(self, ctx: StackContext) -> Program:
        command = [
            str(self.binary(ctx)),
            "-listen",
            f"{LOCAL_HOST}:{ctx.settings.mongodb_port}",
            "-postgresql-url",
            Postgres().dsn(
                ctx,
                ctx.settings.mongodb_database,
                **({} if ctx.settings.secure else {"sslmode": "disable"}),
                pool_max_conns="100",
            ),
            "-log-level",
            ctx.settings.mongodb_log_level,
        ]
        if ctx.settings.secure:
            files = ctx.tls.server(self.name)
            command += ["-tls-cert", str(files.cert), "-tls-key", str(files.key), "-socket", str(self.socket(ctx))]
        return Program(command=command, environment={"GOMEMLIMIT": ctx.settings.mongodb_memory_limit})

    def uri(self, ctx: StackContext) -> str:
        """The wire proxy's address; on a secure stack with TLS, checked against the stack's CA (and the name)."""
        address = f"mongodb://{LOCAL_HOST}:{ctx.settings.mongodb_port}"
        if not ctx.settings.secure:
            return address
        return f"{address}/?{urlencode({'tls': 'true', 'tlsCAFile': str(ctx.tls.ensure())}, safe='/')}"

    def _answers(self, ctx: StackContext, command: str) -> bool:
        import pymongo
        from pymongo.errors import PyMongoError

        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            self.uri(ctx), serverSelectionTimeoutMS=2000, connectTimeoutMS=2000
        )
        try:
            client.admin.command(command)
        except PyMongoError:
            return False
        finally:
            client.close()
        return True

    def ready(self, ctx: StackContext) -> bool:
        """The wire protocol answers (``ping`` also needs the database, which ``after_ready`` creates)."""
        return _port_answers(ctx.settings.mongodb_port) and self._answers(ctx, "hello")

    def after_ready(self, ctx: StackContext) -> None:
        """Create FerretDB's database with its companion-index triggers (idempotent), then wait for ``ping``."""
        setup_sql = (FERRETDB_SOURCE / "containment_indexes.sql").read_text()
        Postgres().ensure_database(ctx, ctx.settings.mongodb_database, setup_sql)
        deadline = time.monotonic() + ctx.settings.start_timeout_s
        while not self._answers(ctx, "ping"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"mongodb: FerretDB does not answer ping; see {ctx.paths.log(self.name)}")
            time.sleep(0.5)

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {"MONGODB_URI": self.uri(ctx)}


class Hdfs(Component):
    """A NameNode and a DataNode (MiniDFSCluster) with WebHDFS, data persisting under the state dir."""

    name = "hdfs"
    main_class = "FreightlineHdfs"

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"namenode": ctx.settings.hdfs_namenode_port, "webhdfs": ctx.settings.hdfs_webhdfs_port}

    def setup(self, ctx: StackContext, progress: Progress) -> None:
        progress("compiling the hdfs launcher")
        compile_launcher(ctx, "hdfs", "hadoop")

    def tls_dir(self, ctx: StackContext) -> Path:
        """On a secure stack: the daemons' key store and ``ssl-server.xml`` (on their class path, for Hadoop)."""
        return ctx.paths.config / "hdfs-tls"

    def _write_tls(self, ctx: StackContext) -> None:
        folder = self.tls_dir(ctx)
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        password = ctx.secret("hdfs-keystore-password")
        keystore = folder / "hdfs.p12"
        write_file(keystore, pkcs12_keystore(ctx.tls.server(self.name), password), 0o600)
        properties = {
            "ssl.server.keystore.type": "pkcs12",
            "ssl.server.keystore.location": str(keystore),
            "ssl.server.keystore.password": password,
            "ssl.server.keystore.keypassword": password,
        }
        xml = "".join(
            f"<property><name>{name}</name><value>{escape(value)}</value></property>\n"
            for name, value in properties.items()
        )
        document = f'<?xml version="1.0"?>\n<configuration>\n{xml}</configuration>\n'
        write_file(folder / "ssl-server.xml", document.encode(), 0o600)

    def prepare(self, ctx: StackContext) -> None:
        compile_launcher(ctx, "hdfs", "hadoop")
        (ctx.paths.data / self.name).mkdir(parents=True, exist_ok=True)
        ctx.paths.config.mkdir(parents=True, exist_ok=True)
        (ctx.paths.config / "hdfs-log4j.properties").write_text(_HADOOP_LOG4J)
        if ctx.settings.secure:
            self._write_tls(ctx)

    def program(self, ctx: StackContext) -> Program:
        classes = ctx.paths.home / "launchers" / "hdfs"
        tls = [str(self.tls_dir(ctx))] if ctx.settings.secure else []
        return Program(
            command=[
                "java",
                f"-Xmx{ctx.settings.hdfs_heap}",
                "-XX:+UseSerialGC",
                "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{ctx.paths.config / 'hdfs-log4j.properties'}",
                f"-Dhadoop.tmp.dir={ctx.paths.data / self.name / 'tmp'}",
                *_ADD_OPENS,
                "-cp",
                ":".join([*tls, str(classes), classpath(ctx.paths, "hadoop")]),
                self.main_class,
                str(ctx.paths.data / self.name),
                str(ctx.settings.hdfs_namenode_port),
                str(ctx.settings.hdfs_webhdfs_port),
                *(["https"] if ctx.settings.secure else []),
            ],
            environment={"HADOOP_USER_NAME": "freightline"},
        )

    def webhdfs_url(self, ctx: StackContext) -> str:
        return f"{ctx.http_scheme}://{LOCAL_HOST}:{ctx.settings.hdfs_webhdfs_port}"

    def ready(self, ctx: StackContext) -> bool:
        import httpx

        base = self.webhdfs_url(ctx)
        client = httpx.Client(timeout=2, verify=ctx.https_verify())
        try:
            jmx = client.get(f"{base}/jmx", params={"qry": "Hadoop:service=NameNode,name=FSNamesystemState"})
            if jmx.status_code != 200:
                return False
            beans = jmx.json().get("beans", [])
            if not beans or int(beans[0].get("NumLiveDataNodes", 0)) < 1 or beans[0].get("FSState") != "Operational":
                return False
            info = client.get(f"{base}/jmx", params={"qry": "Hadoop:service=NameNode,name=NameNodeInfo"})
            info_beans = info.json().get("beans", [])
            if not info_beans or info_beans[0].get("Safemode"):
                return False
            listing = client.get(f"{base}/webhdfs/v1/", params={"op": "LISTSTATUS", "user.name": "freightline"})
        except (httpx.HTTPError, ValueError):
            return False
        finally:
            client.close()
        return listing.status_code == 200

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {
            "HDFS_WEBHDFS_URL": self.webhdfs_url(ctx),
            "HDFS_NAMENODE_URI": f"hdfs://{LOCAL_HOST}:{ctx.settings.hdfs_namenode_port}",
            **_ca_export(ctx, "HDFS_SSL_CA_LOCATION"),
        }


def _ca_export(ctx: StackContext, variable: str) -> dict[str, str]:
    """``variable`` = the stack's CA certificate on a secure stack (how its clients check the server), else nothing."""
    return {variable: str(ctx.tls.ensure())} if ctx.settings.secure else {}


class GcsEmulator(Component):
    """fake-gcs-server over http (https on a secure stack) with a filesystem backend; anonymous access."""

    name = "gcs"

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"http": ctx.settings.gcs_port}

    def binary(self, ctx: StackContext) -> Path:
        return ctx.paths.home / "bin" / "fake-gcs-server"

    def setup(self, ctx: StackContext, progress: Progress) -> None:
        binary = self.binary(ctx)
        stamp = binary.with_name(".fake-gcs-server.version")
        if binary.exists() and is_current(stamp, FAKE_GCS_VERSION):
            return
        require_tool("go", "go is required to build the GCS emulator (fake-gcs-server)")
        progress(f"building fake-gcs-server {FAKE_GCS_VERSION} with go install")
        binary.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOBIN": str(binary.parent), "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
        run_step(["go", "install", f"{FAKE_GCS_MODULE}@{FAKE_GCS_VERSION}"], "building fake-gcs-server", env=env)
        stamp.write_text(FAKE_GCS_VERSION)

    def prepare(self, ctx: StackContext) -> None:
        if not self.binary(ctx).exists():
            self.setup(ctx, lambda _: None)
        (ctx.paths.data / self.name).mkdir(parents=True, exist_ok=True)
        if ctx.settings.secure:
            self._write_spark_trust(ctx)

    def spark_trust_dir(self, ctx: StackContext) -> Path:
        """On a secure stack: the class-path folder that makes Spark's GCS connector trust the CA (its bundled Google
        roots plus the CA, where the connector loads its trust store from); the stack exports it as
        ``SPARK_JOBS_EXTRA_CLASS_PATH``, which the Spark jobs put ahead of the connector's jar."""
        return ctx.paths.config / "spark-gcs-trust"

    def _write_spark_trust(self, ctx: StackContext) -> None:
        connectors = sorted(jar_dir(ctx.paths, "spark").glob("gcs-connector-*.jar"))
        if not connectors:
            raise RuntimeError(f"no GCS connector in {jar_dir(ctx.paths, 'spark')}: run `freightline setup` first")
        gcs_connector_trust_overlay(connectors[-1], ctx.tls.ensure(), self.spark_trust_dir(ctx))

    def url(self, ctx: StackContext) -> str:
        return f"{ctx.http_scheme}://{LOCAL_HOST}:{ctx.settings.gcs_port}"

    def program(self, ctx: StackContext) -> Program:
        tls: list[str] = []
        if ctx.settings.secure:
            files = ctx.tls.server(self.name)
            tls = ["-cert-location", str(files.cert), "-private-key-location", str(files.key)]
        return Program(
            command=[
                str(self.binary(ctx)),
                "-scheme",
                ctx.http_scheme,
                *tls,
                "-host",
                LOCAL_HOST,
                "-port",
                str(ctx.settings.gcs_port),
                "-backend",
                "filesystem",
                "-filesystem-root",
                str(ctx.paths.data / self.name),
                "-external-url",
                self.url(ctx),
                "-public-host",
                f"{LOCAL_HOST}:{ctx.settings.gcs_port}",
                "-log-level",
                "warn",
            ]
        )

    def ready(self, ctx: StackContext) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url(ctx)}/storage/v1/b", timeout=2, verify=ctx.https_verify()).status_code == 200
        except httpx.HTTPError:
            return False

    def after_ready(self, ctx: StackContext) -> None:
        import httpx

        bucket = ctx.settings.gcs_bucket
        base = self.url(ctx)
        with httpx.Client(timeout=5, verify=ctx.https_verify()) as client:
            if client.get(f"{base}/storage/v1/b/{bucket}").status_code == 200:
                return
            response = client.post(f"{base}/storage/v1/b", params={"project": "freightline"}, json={"name": bucket})
        if response.status_code not in (200, 409):
            raise RuntimeError(f"gcs: creating bucket {bucket} failed: {response.status_code} {response.text}")

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {
            "STORAGE_EMULATOR_HOST": self.url(ctx),
            "GCS_ENDPOINT": self.url(ctx),
            "GCS_BUCKET": ctx.settings.gcs_bucket,
            **_ca_export(ctx, "GCS_SSL_CA_LOCATION"),
            **({"SPARK_JOBS_EXTRA_CLASS_PATH": str(self.spark_trust_dir(ctx))} if ctx.settings.secure else {}),
        }


def storage_components() -> list[Component]:
    return [MongoServer(), Hdfs(), GcsEmulator()]
