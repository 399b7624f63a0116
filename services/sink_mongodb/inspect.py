"""What the MongoDB sink landed: ``summary(settings)`` -> documents and distinct event ids per collection."""

from __future__ import annotations

from typing import Any

from services.common.settings import MongoSettings
from services.sink_mongodb.settings import MongoSinkSettings
from services.sink_mongodb.target import mongo_client


def summary(settings: MongoSinkSettings | None = None, mongo: MongoSettings | None = None) -> dict[str, Any]:
    settings = settings or MongoSinkSettings()
    mongo = mongo or MongoSettings()
    client = mongo_client(mongo)
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
