"""The local stack's private certificate authority: one CA made once in the secrets folder, a server certificate per
component signed by it (PEM: what Kafka, PostgreSQL, the registry and the Python clients all read).

The same code makes compose's certificates (``deploy/compose/compose.yaml``, its ``tls`` one-shot service), run as a
script (it imports nothing but ``cryptography``, which every service image carries)::

    python tls.py AUTHORITY --publish CA_DIR --server NAME=HOST[,HOST...]@UID:DIR ...

``AUTHORITY`` keeps the CA's key and every certificate (only this step mounts it); ``CA_DIR`` gets the CA certificate
alone (what clients mount); each server's ``DIR`` gets its certificate, key and bundle, owned by ``UID`` (the server
process's user) with the key readable by it alone, and the CA certificate. A later run replaces the files (renamed
over the old ones), so it needs no more than the right to change owners."""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825
DEFAULT_HOSTS = ("127.0.0.1", "localhost")
# The GCS connector's trust store: its shaded google-api-client (GoogleUtils.getCertificateTrustStore) loads this
# resource beside its class, and nothing else (javax.net.ssl.trustStore is not read), with this password. The
# password guards nothing: the store holds public certificates only; it is the one the library opens it with.
GCS_CONNECTOR_TRUST_STORE = "com/google/cloud/hadoop/repackaged/gcs/com/google/api/client/googleapis/google.p12"
GCS_CONNECTOR_TRUST_STORE_PASSWORD = "notasecret"  # pragma: allowlist secret


@dataclass(frozen=True)
class ServerCertificate:
    """PEM files of one component: its certificate, its private key (PKCS#8), both in one bundle, and the CA."""

    cert: Path
    key: Path
    bundle: Path
    ca: Path


class PrivateCA:
    """A certificate authority kept in ``directory`` (mode 0700, keys 0600); nothing leaves the machine."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def key(self) -> Path:
        return self.directory / "ca.key"

    def ensure(self) -> Path:
        """The CA certificate, made on first use."""
        if self.cert.exists() and self.key.exists():
            return self.cert
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Freightline local CA")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        write_file(self.key, _private_pem(key), 0o600)
        write_file(self.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return self.cert

    def server(self, name: str, hosts: Sequence[str] = DEFAULT_HOSTS) -> ServerCertificate:
        """The certificate of component ``name`` for ``hosts`` (IP addresses or DNS names), made when missing or
        when the CA changed since."""
        ca_path = self.ensure()
        files = ServerCertificate(
            cert=self.directory / f"{name}.crt",
            key=self.directory / f"{name}.key",
            bundle=self.directory / f"{name}.pem",
            ca=ca_path,
        )
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        if files.cert.exists() and files.key.exists() and files.bundle.exists():
            existing = x509.load_pem_x509_certificate(files.cert.read_bytes())
            if _signed_by(existing, ca_cert) and _names(existing) == set(hosts):
                return files
        ca_key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self.key}: not the CA's elliptic-curve key")
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = _private_pem(key)
        write_file(files.key, key_pem, 0o600)
        write_file(files.cert, cert_pem, 0o644)
        write_file(files.bundle, key_pem + cert_pem, 0o600)
        return files


def pkcs12_keystore(files: ServerCertificate, password: str) -> bytes:
    """A server's key and certificate (with the CA's in its chain) as a PKCS#12 key store protected by ``password``:
    what Hadoop's web servers take."""
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{files.key}: not an elliptic-curve key")
    return pkcs12.serialize_key_and_certificates(
        files.cert.stem.encode(),
        key,
        x509.load_pem_x509_certificate(files.cert.read_bytes()),
        [x509.load_pem_x509_certificate(files.ca.read_bytes())],
        _pkcs12_encryption(password),
    )


def gcs_connector_trust_overlay(connector_jar: Path, ca: Path, folder: Path) -> Path:
    """``folder`` made a class-path entry holding the GCS connector's trust store (``GCS_CONNECTOR_TRUST_STORE``)
    with the CA ``ca`` added to the Google roots the connector bundles. Ahead of the connector's jar on a JVM's class
    path, it is the store the connector loads: the connector then trusts servers with certificates of ``ca`` (a
    secure local stack's GCS emulator) as well as Google's. Replaced whole (a JVM reading it never sees half)."""
    with zipfile.ZipFile(connector_jar) as jar:
        bundled = jar.read(GCS_CONNECTOR_TRUST_STORE)
    password = GCS_CONNECTOR_TRUST_STORE_PASSWORD.encode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)  # an old Google root's negative serial
        roots = pkcs12.load_pkcs12(bundled, password).additional_certs
    ours = pkcs12.PKCS12Certificate(x509.load_pem_x509_certificate(ca.read_bytes()), b"freightline-local-ca")
    target = folder / GCS_CONNECTOR_TRUST_STORE
    target.parent.mkdir(parents=True, exist_ok=True)
    store = pkcs12.serialize_java_truststore([*roots, ours], _pkcs12_encryption(GCS_CONNECTOR_TRUST_STORE_PASSWORD))
    _replace(target, store, 0o644, None)
    return folder


def _pkcs12_encryption(password: str) -> serialization.KeySerializationEncryption:
    """PBES2 with AES and an HMAC-SHA256: what Java 17 reads."""
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _names(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` never readable by others while it is written, then give it ``mode``."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)
    path.chmod(mode)


@dataclass(frozen=True)
class Published:
    """Where ``publish`` puts one server's files, and for whom: ``NAME=HOST[,HOST...]@UID:DIR``."""

    name: str
    hosts: tuple[str, ...]
    uid: int
    directory: Path

    @classmethod
    def parse(cls, text: str) -> Published:
        try:
            name, rest = text.split("=", 1)
            hosts, rest = rest.split("@", 1)
            uid, directory = rest.split(":", 1)
            return cls(name, tuple(h for h in hosts.split(",") if h), int(uid), Path(directory))
        except ValueError:
            raise ValueError(f"{text!r} is not NAME=HOST[,HOST...]@UID:DIR") from None


def publish(ca: PrivateCA, ca_dir: Path, servers: Sequence[Published]) -> None:
    """The CA certificate into ``ca_dir`` (readable by all); each server's certificate, key and bundle (and the CA)
    into its directory, owned by its user, the key and bundle readable by that user only."""
    ca_dir.mkdir(parents=True, exist_ok=True)
    _replace(ca_dir / "ca.crt", ca.ensure().read_bytes(), 0o644, None)
    for server in servers:
        files = ca.server(server.name, server.hosts)
        server.directory.mkdir(parents=True, exist_ok=True)
        for source, mode in ((files.cert, 0o644), (files.key, 0o600), (files.bundle, 0o600), (files.ca, 0o644)):
            _replace(server.directory / source.name, source.read_bytes(), mode, server.uid)


def _replace(target: Path, data: bytes, mode: int, uid: int | None) -> None:
    """``target`` becomes a new file (written beside it, given its owner, then renamed over it): a later run replaces
    a file another user owns without needing to open or change it."""
    temporary = target.with_name(f".{target.name}.new")
    temporary.unlink(missing_ok=True)
    write_file(temporary, data, mode)
    if uid is not None:
        os.chown(temporary, uid, uid)
    os.replace(temporary, target)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make the CA and the servers' certificates; publish them.")
    parser.add_argument("authority", type=Path, help="the CA's folder (its key and every certificate)")
    parser.add_argument("--publish", type=Path, required=True, help="folder that gets the CA certificate alone")
    parser.add_argument("--server", action="append", default=[], help="NAME=HOST[,HOST...]@UID:DIR (repeatable)")
    args = parser.parse_args(argv)
    try:
        servers = [Published.parse(text) for text in args.server]
    except ValueError as error:
        parser.error(str(error))
    publish(PrivateCA(args.authority), args.publish, servers)
    for server in servers:
        print(f"{server.name}: {', '.join(server.hosts)} -> {server.directory} (uid {server.uid})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
