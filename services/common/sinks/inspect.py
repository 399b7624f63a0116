"""What a sink landed, the same way for every sink: take a mark, run the sink, ask what landed since the mark.

Each sink's ``inspect`` module offers ``inspector(env)`` (``env``: a stack's ``stack.env`` mapping) returning a
``SinkInspector``; the main job and the tests treat every sink alike through it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from services.common.sinks.files import FileStore, committed_paths, summary
from services.common.sinks.settings import SinkSettings


@dataclass(frozen=True)
class Landed:
    """Records (documents), bytes and, for file sinks, files that landed."""

    records: int
    bytes: int
    files: int | None = None


class SinkInspector(Protocol):
    settings: SinkSettings
    target: str  # where the sink writes, for people (a URI)
    unit: str  # what a record is called there ("documents", "records")
    file_unit: str | None  # what a file is called there ("files", "objects"), None for a database

    def mark(self) -> Any:
        """A point to count from (cheap: it must not read every record)."""

    def landed_since(self, mark: Any) -> Landed:
        """What landed after ``mark``."""


@dataclass
class FileSinkInspector:
    """A file sink's landed files: the mark is the set of committed files, so only new files are read."""

    store: FileStore
    root: str
    settings: SinkSettings
    target: str
    file_unit: str
    unit: str = "records"

    def _topics(self) -> Iterable[str]:
        return self.settings.topic_list()

    def mark(self) -> set[str]:
        return committed_paths(self.store, self.root, self._topics())

    def landed_since(self, mark: Any) -> Landed:
        topics = summary(self.store, self.root, self._topics(), known=mark)["topics"].values()
        return Landed(
            records=sum(t["records"] for t in topics),
            bytes=sum(t["bytes"] for t in topics),
            files=sum(t["files"] for t in topics),
        )
