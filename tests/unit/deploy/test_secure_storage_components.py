"""What the stack's storage components (MongoDB, HDFS, the GCS emulator) configure and export with and without
FREIGHTLINE_SECURE: TLS on each client-facing port with a certificate of the stack's CA, and the CA for the clients;
the plain stack exactly as before."""

from __future__ import annotations

import stat
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from deploy.chaos import _netloc, _via
from deploy.local.context import StackContext
from deploy.local.settings import StackSettings
from deploy.local.storage_components import GcsEmulator, Hdfs, MongoServer
from deploy.local.tls import GCS_CONNECTOR_TRUST_STORE, GCS_CONNECTOR_TRUST_STORE_PASSWORD, PrivateCA
from services.common.settings import GcsSettings, HdfsSettings, MongoSettings


def _ctx(tmp_path: Path, *, secure: bool) -> StackContext:
    ports = {"mongodb_port": 17999, "hdfs_namenode_port": 18999, "hdfs_webhdfs_port": 18998, "gcs_port": 14999}
    ctx = StackContext.create(StackSettings.model_validate({"home": str(tmp_path / "home"), "secure": secure, **ports}))
    ctx.paths.ensure()
    (ctx.paths.jars / "hadoop").mkdir()
    (ctx.paths.jars / "hadoop" / "hadoop-common.jar").touch()  # what HDFS's class path lists
    return ctx


def _option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_without_secure_the_storage_endpoints_are_plain_as_before(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, secure=False)
    assert MongoServer().exports(ctx) == {"MONGODB_URI": "mongodb://127.0.0.1:17999"}
    assert Hdfs().exports(ctx) == {
        "HDFS_WEBHDFS_URL": "http://127.0.0.1:18998",
        "HDFS_NAMENODE_URI": "hdfs://127.0.0.1:18999",
    }
    assert GcsEmulator().exports(ctx) == {
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:14999",
        "GCS_ENDPOINT": "http://127.0.0.1:14999",
        "GCS_BUCKET": "freightline-raw",
    }
    mongo = MongoServer().program(ctx).command
    assert not {"-tls-cert", "-tls-key", "-socket"} & set(mongo)
    hdfs = Hdfs().program(ctx).command
    assert hdfs[-3:] == [str(ctx.paths.data / "hdfs"), "18999", "18998"]
    assert "hdfs-tls" not in _option(hdfs, "-cp")
    gcs = GcsEmulator().program(ctx).command
    assert _option(gcs, "-scheme") == "http" and "-cert-location" not in gcs


def test_with_secure_mongodb_serves_tls_and_its_uri_checks_the_ca(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, secure=True)
    uri = MongoServer().exports(ctx)["MONGODB_URI"]
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc, parts.path) == ("mongodb", "127.0.0.1:17999", "/")
    assert parse_qs(parts.query) == {"tls": ["true"], "tlsCAFile": [str(ctx.tls.cert)]}
    assert MongoSettings(uri=uri).uri == uri  # the clients' settings take it
    mongo = MongoServer()
    mongo.binary(ctx).parent.mkdir(parents=True)
    mongo.binary(ctx).touch()  # built already: prepare builds nothing
    mongo.prepare(ctx)
    command = mongo.program(ctx).command
    cert = x509.load_pem_x509_certificate(Path(_option(command, "-tls-cert")).read_bytes())
    assert cert.issuer == x509.load_pem_x509_certificate(ctx.tls.cert.read_bytes()).subject
    assert Path(_option(command, "-tls-key")).stat().st_mode & 0o077 == 0
    socket = Path(_option(command, "-socket"))
    assert socket == mongo.socket(ctx) and socket.parent.is_relative_to(ctx.paths.run)
    assert stat.S_IMODE(socket.parent.stat().st_mode) == 0o700  # only the server's user enters: the proxy is the way in


def test_with_secure_webhdfs_serves_https_from_a_pkcs12_key_store(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, secure=True)
    hdfs = Hdfs()
    env = hdfs.exports(ctx)
    assert env == {
        "HDFS_WEBHDFS_URL": "https://127.0.0.1:18998",
        "HDFS_NAMENODE_URI": "hdfs://127.0.0.1:18999",  # RPC stays plain: Hadoop encrypts it only under Kerberos
        "HDFS_SSL_CA_LOCATION": str(ctx.tls.cert),
    }
    assert HdfsSettings.from_mapping(env).ssl_ca_location == str(ctx.tls.cert)
    hdfs._write_tls(ctx)
    folder = hdfs.tls_dir(ctx)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    properties = {
        prop.findtext("name"): prop.findtext("value")
        for prop in ET.parse(folder / "ssl-server.xml").getroot().iter("property")
    }
    password = ctx.paths.stored_secret("hdfs-keystore-password")
    assert properties == {
        "ssl.server.keystore.type": "pkcs12",
        "ssl.server.keystore.location": str(folder / "hdfs.p12"),
        "ssl.server.keystore.password": password,
        "ssl.server.keystore.keypassword": password,
    }
    for name in ("hdfs.p12", "ssl-server.xml"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    key, cert, chain = pkcs12.load_key_and_certificates((folder / "hdfs.p12").read_bytes(), password.encode())
    files = ctx.tls.server("hdfs")
    assert cert == x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert key is not None and chain == [x509.load_pem_x509_certificate(ctx.tls.cert.read_bytes())]
    command = hdfs.program(ctx).command
    assert command[-1] == "https"
    assert _option(command, "-cp").split(":")[0] == str(folder)  # where Hadoop looks for ssl-server.xml


def test_with_secure_the_gcs_emulator_serves_https(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, secure=True)
    env = GcsEmulator().exports(ctx)
    assert env == {
        "STORAGE_EMULATOR_HOST": "https://127.0.0.1:14999",
        "GCS_ENDPOINT": "https://127.0.0.1:14999",
        "GCS_BUCKET": "freightline-raw",
        "GCS_SSL_CA_LOCATION": str(ctx.tls.cert),
        "SPARK_JOBS_EXTRA_CLASS_PATH": str(ctx.paths.config / "spark-gcs-trust"),
    }
    assert GcsSettings.from_mapping(env).ssl_ca_location == str(ctx.tls.cert)
    command = GcsEmulator().program(ctx).command
    assert _option(command, "-scheme") == "https"
    assert _option(command, "-external-url") == "https://127.0.0.1:14999"
    files = ctx.tls.server("gcs")
    assert (_option(command, "-cert-location"), _option(command, "-private-key-location")) == (
        str(files.cert),
        str(files.key),
    )


def _connector_jar(path: Path, root: x509.Certificate) -> Path:
    """A stand-in for the GCS connector's jar: its trust store (one "Google root") where the real one keeps it."""
    store = pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(root, b"google-root")],
        BestAvailableEncryption(GCS_CONNECTOR_TRUST_STORE_PASSWORD.encode()),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr("com/google/cloud/hadoop/fs/gcs/GoogleHadoopFileSystem.class", b"")
        jar.writestr(GCS_CONNECTOR_TRUST_STORE, store)
    return path


def test_with_secure_spark_gets_the_connectors_trust_store_with_the_ca_added(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, secure=True)
    root = x509.load_pem_x509_certificate(PrivateCA(tmp_path / "google").ensure().read_bytes())
    _connector_jar(ctx.paths.jars / "spark" / "gcs-connector-3.1.3-shaded.jar", root)
    gcs = GcsEmulator()
    gcs._write_spark_trust(ctx)
    folder = Path(gcs.exports(ctx)["SPARK_JOBS_EXTRA_CLASS_PATH"])
    # the resource path the connector loads its store from, opened with the password it uses
    store = pkcs12.load_pkcs12((folder / GCS_CONNECTOR_TRUST_STORE).read_bytes(), b"notasecret")
    assert store.key is None and store.cert is None  # public certificates only
    ca = x509.load_pem_x509_certificate(ctx.tls.cert.read_bytes())
    assert {(c.friendly_name, c.certificate) for c in store.additional_certs} == {
        (b"google-root", root),  # the roots it bundles still trusted: real GCS unaffected
        (b"freightline-local-ca", ca),
    }
    assert [p.name for p in folder.iterdir()] == ["com"]  # nothing else on the class path


def test_with_secure_and_no_gcs_connector_the_stack_says_to_run_setup(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"no GCS connector.*freightline setup"):
        GcsEmulator()._write_spark_trust(_ctx(tmp_path, secure=True))


def test_the_chaos_proxies_keep_the_storage_urls_tls_options() -> None:
    uri = "mongodb://127.0.0.1:17017/?tls=true&tlsCAFile=/s/ca.crt"
    assert _netloc(uri) == "127.0.0.1:17017"
    assert _via(uri, "127.0.0.1:4000") == "mongodb://127.0.0.1:4000/?tls=true&tlsCAFile=/s/ca.crt"
    assert _via("https://127.0.0.1:14443", "127.0.0.1:4001") == "https://127.0.0.1:4001"
