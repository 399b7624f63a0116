"""The private CA: a server certificate it signs is trusted through the CA alone, for the names it was made for."""

from __future__ import annotations

import os
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from deploy.local import tls
from deploy.local.tls import PrivateCA


def _handshake(ca_file: Path, cert_file: Path, key_file: Path, server_hostname: str) -> str:
    """One TLS handshake over a loopback socket pair; returns the negotiated protocol version."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    client_context = ssl.create_default_context(cafile=str(ca_file))
    left, right = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_context.wrap_socket(right, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError) as error:
            errors.append(error)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_context.wrap_socket(left, server_hostname=server_hostname) as tls:
            version = tls.version() or ""
            tls.sendall(b"x")
    finally:
        thread.join(5)
    return version


def test_a_server_certificate_is_trusted_through_the_ca_for_its_names(tmp_path: Path) -> None:
    ca = PrivateCA(tmp_path / "tls")
    files = ca.server("kafka", ("127.0.0.1", "localhost"))
    assert _handshake(files.ca, files.cert, files.key, "localhost").startswith("TLS")
    assert _handshake(files.ca, files.cert, files.key, "127.0.0.1").startswith("TLS")
    # the bundle (Kafka's PEM keystore) holds the same key and certificate
    assert files.bundle.read_bytes() == files.key.read_bytes() + files.cert.read_bytes()
    assert (files.key.stat().st_mode & 0o777, files.bundle.stat().st_mode & 0o777) == (0o600, 0o600)
    assert ca.key.stat().st_mode & 0o777 == 0o600


def test_a_name_the_certificate_lacks_and_a_foreign_ca_are_refused(tmp_path: Path) -> None:
    files = PrivateCA(tmp_path / "ours").server("registry", ("127.0.0.1",))
    with pytest.raises(ssl.SSLCertVerificationError, match=r"match|mismatch"):
        _handshake(files.ca, files.cert, files.key, "localhost")
    foreign = PrivateCA(tmp_path / "theirs").ensure()
    with pytest.raises(ssl.SSLCertVerificationError, match=r"unable to get local issuer|self.signed|verify failed"):
        _handshake(foreign, files.cert, files.key, "127.0.0.1")


def test_certificates_are_kept_until_the_names_or_the_ca_change(tmp_path: Path) -> None:
    ca = PrivateCA(tmp_path / "tls")
    first = ca.server("postgres").cert.read_bytes()
    assert ca.server("postgres").cert.read_bytes() == first
    assert ca.server("postgres", ("127.0.0.1",)).cert.read_bytes() != first
    again = ca.server("postgres").cert.read_bytes()
    ca.cert.unlink()
    ca.key.unlink()
    assert ca.server("postgres").cert.read_bytes() != again


def test_publishing_gives_clients_the_ca_alone_and_each_server_its_own_files(tmp_path: Path) -> None:
    """compose's certificate step (``python tls.py AUTHORITY --publish CA_DIR --server ...``): the CA's key stays in
    the authority's folder, clients get the CA certificate only, a server its key readable by its user alone."""
    server = f"kafka=kafka,127.0.0.1@{os.getuid()}:{tmp_path / 'kafka'}"
    code = tls.main(
        [
            str(tmp_path / "authority"),
            "--publish",
            str(tmp_path / "ca"),
            "--server",
            server,
        ]
    )
    assert code == 0
    assert [p.name for p in (tmp_path / "ca").iterdir()] == ["ca.crt"]
    assert sorted(p.name for p in (tmp_path / "kafka").iterdir()) == ["ca.crt", "kafka.crt", "kafka.key", "kafka.pem"]
    assert (tmp_path / "kafka" / "kafka.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "ca" / "ca.crt").read_bytes() == (tmp_path / "authority" / "ca.crt").read_bytes()
    cert = x509.load_pem_x509_certificate((tmp_path / "kafka" / "kafka.crt").read_bytes())
    assert tls._names(cert) == {"kafka", "127.0.0.1"}
    assert not list((tmp_path / "ca").glob("*.key")) and not list((tmp_path / "kafka").glob("ca.key"))
    key = (tmp_path / "kafka" / "kafka.key").read_bytes()
    (tmp_path / "kafka" / "kafka.key").chmod(0o400)  # a later run replaces what it cannot write to
    assert tls.main([str(tmp_path / "authority"), "--publish", str(tmp_path / "ca"), "--server", server]) == 0
    assert (tmp_path / "kafka" / "kafka.key").read_bytes() == key  # the same certificate: nothing changed
    assert sorted(p.name for p in (tmp_path / "kafka").iterdir()) == ["ca.crt", "kafka.crt", "kafka.key", "kafka.pem"]
    with pytest.raises(SystemExit):
        tls.main([str(tmp_path / "authority"), "--publish", str(tmp_path / "ca"), "--server", "kafka-no-uid"])
