"""``FileStore`` over Google Cloud Storage: commits are copies guarded by ``ifGenerationMatch=0``."""

from __future__ import annotations

import contextlib

from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from services.common.https import TrustingSession
from services.common.settings import GcsSettings

TIMEOUT = (5.0, 60.0)


def gcs_client(settings: GcsSettings) -> storage.Client:
    """An emulator client with anonymous credentials when ``GCS_ENDPOINT`` is set (over https, the emulator's
    certificate checked against ``GCS_SSL_CA_LOCATION`` when set), else real GCS."""
    if settings.endpoint:
        return storage.Client(
            project=settings.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": settings.endpoint},
            _http=TrustingSession(settings.ssl_ca_location) if settings.ssl_ca_location else None,
        )
    return storage.Client(project=settings.project)


class GcsStore:
    def __init__(self, client: storage.Client, bucket: str, base: str = "") -> None:
        self.client = client
        self.bucket = client.bucket(bucket)
        self.base = base.strip("/")

    def _abs(self, path: str) -> str:
        return f"{self.base}/{path.strip('/')}" if self.base else path.strip("/")

    def _rel(self, name: str) -> str:
        return name[len(self.base) + 1 :] if self.base else name

    def write(self, path: str, data: bytes) -> None:
        self.bucket.blob(self._abs(path)).upload_from_string(
            data, content_type="application/avro", timeout=TIMEOUT, retry=None
        )

    def move(self, source: str, target: str) -> bool:
        blob = self.bucket.blob(self._abs(source))
        # Real GCS enforces ifGenerationMatch=0 on copies; the emulator only on uploads, hence the check first.
        if self.exists(target):
            self.delete(source)
            return False
        try:
            self.bucket.copy_blob(
                blob, self.bucket, self._abs(target), if_generation_match=0, timeout=TIMEOUT, retry=None
            )
            moved = True
        except exceptions.PreconditionFailed:
            moved = False
        self.delete(source)
        return moved

    def exists(self, path: str) -> bool:
        return bool(self.bucket.blob(self._abs(path)).exists(timeout=TIMEOUT, retry=None))

    def delete(self, path: str) -> None:
        with contextlib.suppress(exceptions.NotFound):
            self.bucket.blob(self._abs(path)).delete(timeout=TIMEOUT, retry=None)

    def list_files(self, prefix: str) -> list[tuple[str, int]]:
        name = self._abs(prefix).rstrip("/") + "/"
        return [
            (self._rel(blob.name), int(blob.size or 0))
            for blob in self.client.list_blobs(self.bucket, prefix=name, timeout=TIMEOUT, retry=None)
        ]

    def read(self, path: str) -> bytes:
        return bytes(self.bucket.blob(self._abs(path)).download_as_bytes(timeout=TIMEOUT, retry=None))

    def healthy(self) -> bool:
        try:
            return bool(self.bucket.exists(timeout=(2.0, 5.0), retry=None))
        except Exception:
            return False

    def ensure_bucket(self) -> None:
        if not self.bucket.exists(timeout=TIMEOUT, retry=None):
            with contextlib.suppress(exceptions.Conflict):
                self.client.create_bucket(self.bucket.name, timeout=TIMEOUT, retry=None)
