"""``FileStore`` over WebHDFS (HdfsCLI): renames are atomic and never overwrite."""

from __future__ import annotations

import posixpath

from hdfs import HdfsError, InsecureClient

from services.common.https import https_session


class WebHdfsStore:
    """Files under ``base`` of the WebHDFS at ``url``; over https the NameNode's and DataNodes' certificates are
    checked against ``ca_location`` (a PEM file of CAs; unset: the system's)."""

    def __init__(
        self, url: str, user: str, base: str = "/", timeout_s: float = 30.0, ca_location: str | None = None
    ) -> None:
        self.client = InsecureClient(url, user=user, timeout=(5, timeout_s), session=https_session(ca_location))
        self.base = "/" + base.strip("/")
        self._made: set[str] = set()

    def _abs(self, path: str) -> str:
        return posixpath.join(self.base, path.strip("/"))

    def _rel(self, absolute: str) -> str:
        return posixpath.relpath(absolute, self.base)

    def write(self, path: str, data: bytes) -> None:
        self.client.write(self._abs(path), data=data, overwrite=True)

    def _makedirs(self, directory: str) -> None:
        if directory not in self._made:
            self.client.makedirs(directory)
            self._made.add(directory)

    def move(self, source: str, target: str) -> bool:
        src, dst = self._abs(source), self._abs(target)
        self._makedirs(posixpath.dirname(dst))
        try:
            self.client.rename(src, dst)
            return True
        except HdfsError:
            if self.client.status(dst, strict=False) is not None:
                self.delete(source)
                return False
            if self.client.status(src, strict=False) is None:
                self._made.discard(posixpath.dirname(dst))
            raise

    def exists(self, path: str) -> bool:
        return self.client.status(self._abs(path), strict=False) is not None

    def delete(self, path: str) -> None:
        self.client.delete(self._abs(path))

    def remove_tree(self, path: str) -> None:
        """Remove a directory and everything below it (a missing one is no error)."""
        self.client.delete(self._abs(path), recursive=True)

    def list_files(self, prefix: str) -> list[tuple[str, int]]:
        """Every file below ``prefix``; a directory removed while it is being listed (a batch's emptied
        temporary directory, removed by the sink as the listing runs) is skipped, not an error."""
        files = []
        pending = [self._abs(prefix)]
        while pending:
            directory = pending.pop()
            try:
                entries = self.client.list(directory, status=True)
            except HdfsError as error:
                if error.exception == "FileNotFoundException":
                    continue
                raise
            for name, status in entries:
                path = posixpath.join(directory, name)
                if status["type"] == "DIRECTORY":
                    pending.append(path)
                else:
                    files.append((self._rel(path), int(status["length"])))
        return files

    def read(self, path: str) -> bytes:
        with self.client.read(self._abs(path)) as reader:
            return bytes(reader.read())

    def healthy(self) -> bool:
        try:
            self.client.status("/", strict=True)
        except Exception:
            return False
        return True
