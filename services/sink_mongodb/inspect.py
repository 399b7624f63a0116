"""What the MongoDB sink landed: ``summary(settings)`` -> documents and distinct event ids per collection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.common.settings import MongoSettings
from services.common.sinks.inspect import Landed
from services.sink_mongodb.settings import MongoSinkSettings
from services.sink_mongodb.target import mongo_client

# Counting is exact but linear in the collection on the local server (FerretDB v1 streams every document through
# its count): 449 s at 5 million documents on a busy 2-core machine. Hence the long socket timeout here. FerretDB's
# collStats count is bounded (ANALYZE's sample, then pg_class.reltuples) but an estimate: the report needs exact
# counts (see the README's component table).
COUNT_TIMEOUT_MS = 30 * 60 * 1000


def summary(settings: MongoSinkSettings | None = None, mongo: MongoSettings | None = None) -> dict[str, Any]:
    settings = settings or MongoSinkSettings()
    mongo = mongo or MongoSettings()
    client = mongo_client(mongo, socket_timeout_ms=COUNT_TIMEOUT_MS)
    try:
        db = client[settings.database or mongo.database]
        collections: dict[str, Any] = {}
        for topic in settings.topic_list():
            name = settings.collection_for(topic)
            stats = db.command("collStats", name) if name in db.list_collection_names() else {}
            collections[name] = {
                "topic": topic,
                # the count command: exact on FerretDB, which streams it (count_documents' $group it holds in memory)
                "documents": db[name].estimated_document_count(),
                "bytes": int(stats.get("size", 0)),
            }
        return {"target": mongo.uri, "database": db.name, "collections": collections}
    finally:
        client.close()


@dataclass
class MongoSinkInspector:
    """The MongoDB sink's documents: the mark is the count of documents and bytes before the run."""

    settings: MongoSinkSettings
    mongo: MongoSettings
    unit: str = "documents"
    file_unit: str | None = None

    @property
    def target(self) -> str:
        return self.mongo.uri

    def _now(self) -> Landed:
        collections = summary(self.settings, self.mongo)["collections"].values()
        return Landed(records=sum(c["documents"] for c in collections), bytes=sum(c["bytes"] for c in collections))

    def mark(self) -> Landed:
        return self._now()

    def landed_since(self, mark: Any) -> Landed:
        now = self._now()
        return Landed(records=now.records - mark.records, bytes=now.bytes - mark.bytes)


def inspector(env: Mapping[str, str]) -> MongoSinkInspector:
    """The MongoDB sink's documents on the stack ``env`` describes."""
    return MongoSinkInspector(MongoSinkSettings(), MongoSettings.from_mapping(env))
