"""The MongoDB sink's target: ``_id`` = the event id; each chunk of a batch is one unordered bulk insert, and the
documents already there (replays) are replaced in unordered bulks of at most ``replace_chunk_size``: an upsert per
document.

Re-writing a record replaces its document with the same content, so replays after a crash or a failed write
leave exactly one document per event. Documents the server refuses for what they are (not for an outage) are
dead-lettered; any other failure rewinds the batch.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pymongo
from bson.decimal128 import Decimal128
from confluent_kafka import Message
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError, PyMongoError

from services.common.avro_codegen import compile_reader
from services.common.endpoints import Endpoint, redact
from services.common.mongodb import mongo_client
from services.common.serde import HEADER, MAGIC_BYTE, SerdeError, UndecodableRecord
from services.common.settings import MongoSettings
from services.common.sinks.records import SinkRecord, event_id_of
from services.common.sinks.runner import SinkContext, TopicPartitionKey
from services.sink_mongodb.settings import MongoSinkSettings

log = logging.getLogger(__name__)

Document = dict[str, Any]

# Server error codes that describe the document, not the server's health: dead-letter these.
DOCUMENT_ERRORS = frozenset({2, 9, 10334, 17419, 17280, 52, 55, 56, 57, 14, 121})
DUPLICATE_KEY = frozenset({11000, 11001})


_SCALARS = frozenset({str, int, float, bool, type(None), bytes, dt.datetime})


def to_bson(value: Any) -> Any:
    """A decoded Avro value in types BSON can hold (decimals as Decimal128, UUIDs as strings, dates and times as
    ISO strings). Containers are converted in place (the decoded value belongs to the sink)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        for key, item in value.items():
            if type(item) not in _SCALARS:
                value[key] = to_bson(item)
        return value
    if kind is list:
        for index, item in enumerate(value):
            if type(item) not in _SCALARS:
                value[index] = to_bson(item)
        return value
    if isinstance(value, Decimal):
        return Decimal128(value)
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return to_bson(dict(value))
    if isinstance(value, list | tuple):
        return to_bson(list(value))
    return value


def mongodb_endpoint(mongo: MongoSettings) -> Endpoint:
    """The MongoDB server: reachable once it answers ``ping`` (after authenticating, with credentials)."""

    def probe(timeout_s: float) -> None:
        timeout_ms = max(1000, int(timeout_s * 1000))
        with mongo_client(mongo, timeout_ms=timeout_ms, socket_timeout_ms=timeout_ms) as client:
            client.admin.command("ping")

    return Endpoint("MONGODB_URI", redact(mongo.uri), probe)


class MongoTarget:
    # The runner reads only each record's metadata prefix; values are decoded here, chunk by chunk, overlapping
    # the writes of the previous chunk.
    needs_values = False

    def __init__(self, ctx: SinkContext, settings: MongoSinkSettings, mongo: MongoSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.client = mongo_client(mongo)
        self.db = self.client[settings.database or mongo.database]
        self.chunk_size = settings.chunk_size
        self._readers: dict[int, Callable[[bytes], Any]] = {}
        # one write in flight while the next chunk is decoded (the writes of a batch stay in order)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="mongo-writer")

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
        self._writer.shutdown(wait=True)
        self.client.close()

    def write(self, records: list[SinkRecord], batch: list[Message]) -> None:
        """Decode and convert the records chunk by chunk while the previous chunk is being written: the server's
        work overlaps the sink's. Returns once every chunk is acknowledged (or raises)."""
        lookup: dict[tuple[str | None, int | None, int | None], Message] = {}

        def message_of(record: SinkRecord) -> Message:
            if not lookup:
                lookup.update(_by_coordinates(batch))
            return lookup[(record.topic, record.partition, record.offset)]

        collection_for = self.settings.collection_for
        pending: list[Future[list[tuple[SinkRecord, str]]]] = []
        written: dict[str, list[SinkRecord]] = {}
        try:
            for start in range(0, len(records), self.chunk_size):
                by_collection: dict[str, tuple[list[SinkRecord], list[Document]]] = {}
                for record in records[start : start + self.chunk_size]:
                    try:
                        doc = self._document(record)
                    except SerdeError as error:
                        self.ctx.dead_letter(message_of(record), error)
                        continue
                    except (TypeError, ValueError) as error:  # a value BSON cannot hold
                        self.ctx.dead_letter(message_of(record), error, "invalid_value")
                        continue
                    items = by_collection.get(record.topic)
                    if items is None:
                        items = by_collection[record.topic] = ([], [])
                    items[0].append(record)
                    items[1].append(doc)
                for topic, (kept, docs) in by_collection.items():
                    pending.append(self._writer.submit(self._upsert, collection_for(topic), kept, docs))
                    written.setdefault(topic, []).extend(kept)
        finally:
            errors = [future.exception() for future in pending]  # waits for every write in flight
        for failure in errors:
            if failure is not None:
                raise failure
        for future in pending:
            for record, reason in future.result():
                self.ctx.dead_letter(message_of(record), f"MongoDB refused the document: {reason}", "invalid_document")
        for topic, kept in written.items():
            self.ctx.metrics.files_committed.labels(topic).inc()
            self.ctx.metrics.records_written.labels(topic).inc(len(kept))
            self.ctx.metrics.bytes_written.labels(topic).inc(sum(record.size for record in kept))
            log.debug("upserted %d documents into %s", len(kept), collection_for(topic))

    def _document(self, record: SinkRecord) -> Document:
        value = record.value
        if value is None:  # only the metadata prefix was read: decode the whole value now
            read = self._readers.get(record.schema_id)
            if read is None:
                read = self._readers[record.schema_id] = self._reader(record.schema_id)
            try:
                value = read(record.body)
            except SerdeError:
                raise
            except Exception as error:  # corrupt bodies fail in many ways
                raise UndecodableRecord(f"body does not decode with schema {record.schema_id}: {error!r}") from error
            if not isinstance(value, dict):
                raise UndecodableRecord(f"schema {record.schema_id} is not a record schema")
        doc: Document = to_bson(value)
        doc["_id"] = event_id_of(doc, record.topic, record.partition, record.offset)  # as decoded (canonical UUID)
        doc["_kafka"] = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        return doc

    def _reader(self, schema_id: int) -> Callable[[bytes], Any]:
        """A body decoder for one writer schema: its compiled reader, else the serde (fastavro)."""
        compiled = compile_reader(self.ctx.serde.writer_schema(schema_id))
        if compiled is not None:
            return compiled
        header = HEADER.pack(MAGIC_BYTE, schema_id)
        return lambda body: self.ctx.serde.decode(header + body)

    def _upsert(self, name: str, records: list[SinkRecord], docs: list[Document]) -> list[tuple[SinkRecord, str]]:
        """Insert the documents in one unordered bulk; the ones already there (replays) are replaced instead.

        Inserting is what the server does fastest and most documents are new; a replay finds its documents by
        ``_id`` (duplicate key errors) and replaces them with the same content, so the outcome is the same as an
        upsert of every document.
        """
        collection = self.db[name]
        failed: list[dict[str, Any]] = []
        try:
            collection.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            failed = self._refused(error)
        if not failed:
            return []
        existing = [item["index"] for item in failed if item.get("code") in DUPLICATE_KEY]
        refused = [item for item in failed if item.get("code") not in DUPLICATE_KEY]
        step = self.settings.replace_chunk_size
        for start in range(0, len(existing), step):  # bounded update commands (see the setting)
            chunk = existing[start : start + step]
            replacements = [ReplaceOne({"_id": docs[i]["_id"]}, docs[i], upsert=True) for i in chunk]
            try:
                collection.bulk_write(replacements, ordered=False)
            except BulkWriteError as error:
                refused.extend({**item, "index": chunk[item["index"]]} for item in self._refused(error))
        return [(records[item["index"]], str(item.get("errmsg"))) for item in refused]

    @staticmethod
    def _refused(error: BulkWriteError) -> list[dict[str, Any]]:
        """The write errors of a bulk; raises (the batch is retried) unless each is a duplicate or describes the
        document itself."""
        details = error.details or {}
        if details.get("writeConcernErrors"):
            raise error
        failed: list[dict[str, Any]] = details.get("writeErrors", [])
        if any(item.get("code") not in DOCUMENT_ERRORS and item.get("code") not in DUPLICATE_KEY for item in failed):
            raise error
        return failed


def _by_coordinates(batch: list[Message]) -> dict[tuple[str | None, int | None, int | None], Message]:
    return {(m.topic(), m.partition(), m.offset()): m for m in batch}


def target_factory(settings: MongoSinkSettings, mongo: MongoSettings) -> Callable[[SinkContext], MongoTarget]:
    def make(ctx: SinkContext) -> MongoTarget:
        return MongoTarget(ctx, settings, mongo)

    return make
