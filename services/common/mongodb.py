"""The MongoDB client every MongoDB user of the platform opens (the sink, the Spark jobs' reader, tests)."""

from __future__ import annotations

from typing import Any

import pymongo

from services.common.settings import MongoSettings

Document = dict[str, Any]


def mongo_client(
    mongo: MongoSettings, timeout_ms: int = 5000, socket_timeout_ms: int = 60_000
) -> pymongo.MongoClient[Document]:
    """A client of ``mongo`` (credentials from the settings; datetimes read back time-zone aware, in UTC)."""
    kwargs: dict[str, Any] = {
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
        "socketTimeoutMS": socket_timeout_ms,
        "tz_aware": True,
    }
    if mongo.username:
        kwargs["username"] = mongo.username
    if mongo.password is not None:
        kwargs["password"] = mongo.password.get_secret_value()
    return pymongo.MongoClient(mongo.uri, **kwargs)
