"""The MongoDB sink's target: one unordered bulk of upserts per batch, ``_id`` = the event id.

Re-writing a record replaces its document with the same content, so replays after a crash or a failed write
leave exactly one document per event. Documents the server refuses for what they are (not for an outage) are
dead-lettered; any other failure rewinds the batch.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pymongo
from bson.decimal128 import Decimal128
from confluent_kafka import Message
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError, PyMongoError

from services.common.settings import MongoSettings
from services.common.sinks.records import SinkRecord, plain
from services.common.sinks.runner import SinkContext, TopicPartitionKey
from services.sink_mongodb.settings import MongoSinkSettings

log = logging.getLogger(__name__)

Document = dict[str, Any]

# Server error codes that describe the document, not the server's health: dead-letter these.
DOCUMENT_ERRORS = frozenset({2, 9, 10334, 17419, 17280, 52, 55, 56, 57, 14, 121})


def to_bson(value: Any) -> Any:
    """A decoded Avro value in types BSON can hold (decimals as Decimal128, dates as ISO strings)."""
    value = plain(value)
    return _bson(value)


def _bson(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bson(v) for v in value]
    if isinstance(value, Decimal):
        return Decimal128(value)
    if isinstance(value, dt.datetime):
        return value
    return value


def document(record: SinkRecord) -> Document:
    doc: Document = to_bson(record.value)
    doc["_id"] = record.event_id
    doc["_kafka"] = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    return doc


def mongo_client(mongo: MongoSettings, timeout_ms: int = 5000) -> pymongo.MongoClient[Document]:
    kwargs: dict[str, Any] = {
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
        "socketTimeoutMS": 60_000,
        "tz_aware": True,
    }
    if mongo.username:
        kwargs["username"] = mongo.username
    if mongo.password is not None:
        kwargs["password"] = mongo.password.get_secret_value()
    return pymongo.MongoClient(mongo.uri, **kwargs)


class MongoTarget:
    def __init__(self, ctx: SinkContext, settings: MongoSinkSettings, mongo: MongoSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.client = mongo_client(mongo)
        self.db = self.client[settings.database or mongo.database]

    def open(self) -> None:
        self.client.admin.command("ping")
        for topic in self.settings.topic_list():
            collection = self.db[self.settings.collection_for(topic)]
            for name in self.settings.index_fields():
                collection.create_index([(name, pymongo.ASCENDING)])

    def healthy(self) -> bool:
        try:
            self.client.admin.command("ping")
        except PyMongoError:
            return False
        return True

    def revoked(self, partitions: list[TopicPartitionKey]) -> None:
        return None

    def close(self) -> None:
        self.client.close()

    def write(self, records: list[SinkRecord], batch: list[Message]) -> None:
        by_collection: dict[str, list[tuple[SinkRecord, ReplaceOne[Document]]]] = {}
        messages = {(m.topic(), m.partition(), m.offset()): m for m in batch}
        for record in records:
            try:
                op = ReplaceOne({"_id": record.event_id}, document(record), upsert=True)
            except (TypeError, ValueError) as error:  # a value BSON cannot hold
                self.ctx.dead_letter(messages[(record.topic, record.partition, record.offset)], error, "invalid_value")
                continue
            by_collection.setdefault(self.settings.collection_for(record.topic), []).append((record, op))
        for name, items in by_collection.items():
            self._bulk(name, items, messages)
        for name, items in by_collection.items():
            topic = items[0][0].topic
            self.ctx.metrics.files_committed.labels(topic).inc()
            for record, _ in items:
                self.ctx.metrics.records_written.labels(record.topic).inc()
                self.ctx.metrics.bytes_written.labels(record.topic).inc(record.size)
            log.debug("upserted %d documents into %s", len(items), name)

    def _bulk(
        self,
        name: str,
        items: list[tuple[SinkRecord, ReplaceOne[Document]]],
        messages: dict[tuple[str | None, int | None, int | None], Message],
    ) -> None:
        try:
            self.db[name].bulk_write([op for _, op in items], ordered=False)
        except BulkWriteError as error:
            details = error.details or {}
            if details.get("writeConcernErrors"):
                raise
            failed = details.get("writeErrors", [])
            transient = [e for e in failed if e.get("code") not in DOCUMENT_ERRORS]
            if transient:
                raise
            for item in failed:
                record = items[item["index"]][0]
                self.ctx.dead_letter(
                    messages[(record.topic, record.partition, record.offset)],
                    f"MongoDB refused the document: {item.get('errmsg')}",
                    "invalid_document",
                )


def target_factory(settings: MongoSinkSettings, mongo: MongoSettings) -> Callable[[SinkContext], MongoTarget]:
    def make(ctx: SinkContext) -> MongoTarget:
        return MongoTarget(ctx, settings, mongo)

    return make
