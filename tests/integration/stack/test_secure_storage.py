"""``FREIGHTLINE_SECURE``: the storage targets serve TLS only, with server certificates of the stack's private CA, and
their clients trust that CA through a setting and check the server's name. MongoDB (the FerretDB launcher's wire
proxy: ``tls=true&tlsCAFile=`` in ``MONGODB_URI``), WebHDFS on the NameNode and the DataNode it redirects to (HTTPS
only; ``HDFS_SSL_CA_LOCATION``) and the GCS emulator (``GCS_SSL_CA_LOCATION``). A client of another CA is refused
with a certificate error, a client without TLS gets nothing. A PostgreSQL (under FerretDB) and the storage components
of the test's own (free ports, a temporary state directory), started once for the module."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import psutil
import pytest
import requests
from pymongo.errors import ServerSelectionTimeoutError

from deploy.local.components import Postgres
from deploy.local.context import StackContext
from deploy.local.stack import Stack
from deploy.local.storage_components import MongoServer, storage_components
from deploy.local.tls import PrivateCA
from services.common.endpoints import UnreachableEndpoint, require_reachable
from services.common.mongodb import mongo_client
from services.common.settings import GcsSettings, HdfsSettings, MongoSettings
from services.sink_gcs.store import GcsStore, gcs_client
from services.sink_gcs.target import gcs_endpoint
from services.sink_hdfs.store import WebHdfsStore
from services.sink_hdfs.target import hdfs_endpoint, store_for
from services.sink_mongodb.target import mongodb_endpoint
from tests.integration.stack.support import running_secure_stack

pytestmark = pytest.mark.integration

PORTS = ("postgres_port", "mongodb_port", "hdfs_namenode_port", "hdfs_webhdfs_port", "gcs_port")
VERIFY_FAILED = "CERTIFICATE_VERIFY_FAILED"


@pytest.fixture(scope="module")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, dict[str, str]]]:
    with running_secure_stack(
        tmp_path_factory.mktemp("secure-storage"), PORTS, [Postgres(), *storage_components()]
    ) as up:
        yield up


@pytest.fixture(scope="module")
def env(secure_stack: tuple[Stack, dict[str, str]]) -> dict[str, str]:
    return secure_stack[1]


@pytest.fixture(scope="module")
def ctx(secure_stack: tuple[Stack, dict[str, str]]) -> StackContext:
    return secure_stack[0].ctx


@pytest.fixture
def untrusted_ca(tmp_path: Path) -> str:
    """Another CA's certificate: it signed nothing the servers present."""
    return str(PrivateCA(tmp_path / "other-ca").ensure())


def _with_ca(url: str, ca: str) -> str:
    """A MongoDB URI with ``tlsCAFile`` replaced."""
    return url.replace(parse_qs(urlsplit(url).query)["tlsCAFile"][0], ca)


def test_the_stack_exports_tls_endpoints_and_the_ca(ctx: StackContext, env: dict[str, str]) -> None:
    ca = str(ctx.tls.cert)
    assert parse_qs(urlsplit(env["MONGODB_URI"]).query) == {"tls": ["true"], "tlsCAFile": [ca]}
    assert env["HDFS_WEBHDFS_URL"].startswith("https://") and env["HDFS_SSL_CA_LOCATION"] == ca
    assert env["GCS_ENDPOINT"].startswith("https://") and env["GCS_SSL_CA_LOCATION"] == ca
    assert env["STORAGE_EMULATOR_HOST"] == env["GCS_ENDPOINT"]
    assert env["HDFS_NAMENODE_URI"].startswith("hdfs://")  # RPC: plain (Hadoop encrypts it only under Kerberos)


def test_mongodb_over_tls_with_the_ca(env: dict[str, str], unique_name: Callable[[str], str]) -> None:
    settings = MongoSettings.from_mapping(env)
    client = mongo_client(settings)
    db = client[unique_name("tls").replace("-", "_")]
    try:
        db.views.insert_many([{"_id": f"e{i}", "n": i} for i in range(100)])
        assert db.views.count_documents({"n": {"$lt": 10}}) == 10  # the proxy's count rewrite, over TLS
        assert db.views.find_one({"_id": "e42"}) == {"_id": "e42", "n": 42}
    finally:
        client.drop_database(db.name)
        client.close()
    require_reachable([mongodb_endpoint(settings)], 10)  # the sink's start-up probe


def test_mongodb_refuses_another_ca_and_plaintext(env: dict[str, str], untrusted_ca: str) -> None:
    for uri, error in (
        (_with_ca(env["MONGODB_URI"], untrusted_ca), "certificate verify failed"),
        (env["MONGODB_URI"].split("?", 1)[0] + "?tls=true", "certificate verify failed"),  # the system's CAs
    ):
        client = mongo_client(MongoSettings(uri=uri), timeout_ms=3000)
        with pytest.raises(ServerSelectionTimeoutError, match=error):
            client.admin.command("ping")
        client.close()
    plain = mongo_client(MongoSettings(uri=env["MONGODB_URI"].split("/?", 1)[0]), timeout_ms=3000)
    with pytest.raises(ServerSelectionTimeoutError):
        plain.admin.command("ping")
    plain.close()
    with pytest.raises(UnreachableEndpoint) as unreachable:
        require_reachable([mongodb_endpoint(MongoSettings(uri=_with_ca(env["MONGODB_URI"], untrusted_ca)))], 3)
    assert str(unreachable.value).startswith("unreachable endpoint: MONGODB_URI (mongodb://127.0.0.1:")


def test_mongodb_has_no_other_way_in(secure_stack: tuple[Stack, dict[str, str]]) -> None:
    stack, _ = secure_stack
    (row,) = [row for row in stack.status() if row.name == "mongodb"]
    assert row.pid is not None
    listening = {
        conn.laddr.port for conn in psutil.Process(row.pid).net_connections("tcp") if conn.status == psutil.CONN_LISTEN
    }
    assert listening == {stack.ctx.settings.mongodb_port}  # FerretDB itself: a Unix socket in a private folder
    socket = MongoServer().socket(stack.ctx)
    assert stat.S_ISSOCK(socket.stat().st_mode)
    assert stat.S_IMODE(socket.parent.stat().st_mode) == 0o700


def test_webhdfs_over_https_with_the_ca(env: dict[str, str], unique_name: Callable[[str], str]) -> None:
    hdfs = HdfsSettings.from_mapping(env)
    store = store_for(hdfs)
    base = f"tests/{unique_name('https')}"
    store.write(f"{base}/tmp/a", b"first")  # the NameNode redirects the write to the DataNode: https too
    assert store.move(f"{base}/tmp/a", f"{base}/final/a")
    assert store.read(f"{base}/final/a") == b"first"
    assert store.list_files(base) == [(f"{base}/final/a", 5)]
    created = requests.put(
        f"{hdfs.webhdfs_url}/webhdfs/v1/{base}/b",
        params={"op": "CREATE", "user.name": hdfs.user},
        allow_redirects=False,
        verify=hdfs.ssl_ca_location,
        timeout=10,
    )
    assert created.status_code == 307 and created.headers["Location"].startswith("https://127.0.0.1:")
    store.remove_tree(base)
    require_reachable([hdfs_endpoint(hdfs)], 10)  # the sink's start-up probe


def test_webhdfs_refuses_another_ca_and_plaintext(env: dict[str, str], untrusted_ca: str) -> None:
    url = env["HDFS_WEBHDFS_URL"]
    with pytest.raises(requests.exceptions.SSLError, match=VERIFY_FAILED):
        WebHdfsStore(url, "freightline", ca_location=untrusted_ca).exists("/")
    with pytest.raises(requests.exceptions.SSLError, match=VERIFY_FAILED):
        WebHdfsStore(url, "freightline").exists("/")  # the system's CAs
    plain = url.replace("https://", "http://", 1)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/webhdfs/v1/?op=GETFILESTATUS&user.name=freightline", timeout=10).raise_for_status()
    hdfs = HdfsSettings(webhdfs_url=url, ssl_ca_location=untrusted_ca)
    with pytest.raises(UnreachableEndpoint, match=VERIFY_FAILED):
        require_reachable([hdfs_endpoint(hdfs)], 5)


def test_gcs_over_https_with_the_ca(env: dict[str, str], unique_name: Callable[[str], str]) -> None:
    gcs = GcsSettings.from_mapping(env)
    store = GcsStore(gcs_client(gcs), unique_name("bucket"))
    store.ensure_bucket()
    store.write("tmp/a", b"first")
    assert store.move("tmp/a", "final/a")
    assert store.read("final/a") == b"first"
    assert store.list_files("final") == [("final/a", 5)]
    require_reachable([gcs_endpoint(gcs)], 10)  # the sink's start-up probe


def test_gcs_refuses_another_ca_and_plaintext(env: dict[str, str], untrusted_ca: str) -> None:
    gcs = GcsSettings.from_mapping(env)
    untrusted = gcs.model_copy(update={"ssl_ca_location": untrusted_ca})
    with pytest.raises(requests.exceptions.SSLError, match=VERIFY_FAILED):
        GcsStore(gcs_client(untrusted), gcs.bucket).exists("x")
    with pytest.raises(requests.exceptions.SSLError, match=VERIFY_FAILED):
        GcsStore(gcs_client(gcs.model_copy(update={"ssl_ca_location": None})), gcs.bucket).exists("x")
    assert gcs.endpoint is not None
    plain = httpx.get(f"{gcs.endpoint.replace('https://', 'http://', 1)}/storage/v1/b", timeout=10)
    assert plain.status_code == 400 and "HTTP request to an HTTPS server" in plain.text
    with pytest.raises(UnreachableEndpoint, match=VERIFY_FAILED):
        require_reachable([gcs_endpoint(untrusted)], 5)
