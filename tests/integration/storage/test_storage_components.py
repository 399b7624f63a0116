"""The stack's storage components answer real clients with the guarantees the sinks rely on."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from google.api_core import exceptions
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.common.settings import GcsSettings, MongoSettings
from services.sink_gcs.store import GcsStore, gcs_client
from services.sink_hdfs.store import WebHdfsStore
from services.sink_mongodb.target import mongo_client
from tests.integration.sinks.helpers import private_mongodb

pytestmark = pytest.mark.integration


def test_mongodb_reports_mongodb_7_and_persists_across_restarts(stack_env: dict[str, str], tmp_path: Path) -> None:
    with private_mongodb(stack_env, tmp_path / "home") as target:
        target.start()
        uri = target.exports()["MONGODB_URI"]
        client = mongo_client(MongoSettings(uri=uri))
        assert client.server_info()["version"].startswith("7.")
        db = client.freightline
        db.things.insert_one({"_id": "a", "n": 1})
        db.things.insert_many([{"_id": f"k{i}", "n": i} for i in range(10)], ordered=False)
        db.things.create_index("n")
        db.things.update_one({"_id": "k1"}, {"$set": {"n": 100}})
        db.things.replace_one({"_id": "k2"}, {"m": 2})
        db.things.delete_many({"n": {"$gte": 8, "$lt": 100}})
        db.other.insert_one({"_id": 1})
        db.other.rename("renamed")
        db.gone.insert_one({"_id": 1})
        db.gone.drop()
        client.close()
        target.stop()
        target.start()
        client = mongo_client(MongoSettings(uri=uri))
        db = client.freightline
        assert db.things.find_one({"_id": "a"}) == {"_id": "a", "n": 1}
        assert db.things.count_documents({}) == 9
        assert db.things.find_one({"_id": "k1"}) == {"_id": "k1", "n": 100}
        assert db.things.find_one({"_id": "k2"}) == {"_id": "k2", "m": 2}
        assert sorted(db.list_collection_names()) == ["renamed", "things"]
        assert "n_1" in db.things.index_information()
        with pytest.raises(DuplicateKeyError):
            db.things.insert_one({"_id": "k3"})
        client.close()


def test_mongodb_acknowledged_writes_survive_a_sigkill_of_the_server(stack_env: dict[str, str], tmp_path: Path) -> None:
    with private_mongodb(stack_env, tmp_path / "home") as target:
        target.start()
        uri = target.exports()["MONGODB_URI"]
        client = mongo_client(MongoSettings(uri=uri))
        things = client.freightline.things
        things.insert_many([{"_id": f"k{i}", "n": i} for i in range(2000)], ordered=False)
        # an unordered bulk with duplicates: the new documents are kept, the duplicates reported
        with pytest.raises(BulkWriteError) as raised:
            things.insert_many([{"_id": f"k{i}", "n": i} for i in range(1990, 2010)], ordered=False)
        assert len(raised.value.details["writeErrors"]) == 10
        things.update_one({"_id": "k1"}, {"$set": {"n": -1}})
        things.delete_one({"_id": "k2"})
        things.find_one_and_update({"_id": "k3"}, {"$set": {"n": -3}})
        things.bulk_write(
            [
                ReplaceOne({"_id": "k4"}, {"n": -4}, upsert=True),
                UpdateOne({"_id": "new"}, {"$set": {"n": 0}}, upsert=True),
                InsertOne({"_id": "last", "n": 1}),
                DeleteOne({"_id": "k5"}),
            ],
            ordered=False,
        )
        assert target.process is not None  # the FerretDB process, killed right after the last acknowledgement
        assert Path(psutil.Process(target.process.pid).exe()).name == "freightline-ferretdb"
        target.process.send_signal(signal.SIGKILL)
        target.process.wait(30)
        target.process = None
        client.close()
        target.start()
        client = mongo_client(MongoSettings(uri=uri))
        things = client.freightline.things
        assert things.count_documents({}) == 2010 - 2 + 2
        assert things.find_one({"_id": "k1"}) == {"_id": "k1", "n": -1}
        assert things.find_one({"_id": "k2"}) is None
        assert things.find_one({"_id": "k3"}) == {"_id": "k3", "n": -3}
        assert things.find_one({"_id": "k4"}) == {"_id": "k4", "n": -4}
        assert things.find_one({"_id": "k5"}) is None
        assert things.find_one({"_id": "new"}) == {"_id": "new", "n": 0}
        assert things.find_one({"_id": "last"}) == {"_id": "last", "n": 1}
        assert things.find_one({"_id": "k2009"}) == {"_id": "k2009", "n": 2009}
        client.close()


def test_mongodb_answers_count_documents_with_its_count_command(stack_env: dict[str, str], tmp_path: Path) -> None:
    """count_documents' aggregate is answered by FerretDB's streaming ``count`` (the launcher's proxy logs each one
    at debug level); the answers equal the truth and every other operation passes through the proxy unchanged."""
    with private_mongodb(stack_env, tmp_path / "home", mongodb_log_level="debug") as target:
        target.start()
        client = mongo_client(MongoSettings(uri=target.exports()["MONGODB_URI"]))
        things = client.freightline.things
        counts = 0

        def count(query: dict[str, Any], **options: Any) -> int:
            nonlocal counts
            counts += 1
            return things.count_documents(query, **options)

        assert count({}) == 0  # no collection yet
        client.freightline.create_collection("things")
        assert count({}) == 0
        docs = [{"_id": i, "k": i % 3, "v": f"v{i}"} for i in range(100)]
        things.insert_many(docs)
        things.create_index("k")
        result = things.bulk_write(
            [
                UpdateOne({"_id": 5}, {"$set": {"k": 0}}, upsert=True),
                UpdateOne({"_id": 200}, {"$set": {"k": 1}}, upsert=True),
                ReplaceOne({"_id": 201}, {"k": 1}, upsert=True),
            ]
        )
        assert (result.matched_count, result.upserted_count) == (1, 2)
        stored = {doc["_id"]: doc for doc in things.find()}
        assert len(stored) == 102 and stored[5]["k"] == 0
        by_k = {k: sorted(key for key, doc in stored.items() if doc["k"] == k) for k in range(3)}
        ones = by_k[1]
        assert count({}) == 102
        assert count({"k": 1}) == len(ones) == len(list(things.find({"k": 1})))
        assert count({"k": 1}, skip=5, limit=10) == len(ones[5:15])
        assert count({"k": 1}, skip=30) == len(ones[30:])
        assert count({}, limit=7) == 7
        assert count({"k": 9}) == 0
        assert count({"k": 1}, skip=500) == 0
        with client.start_session() as session:
            assert things.count_documents({"k": 0}, session=session) == len(by_k[0])
            counts += 1
        grouped = things.aggregate([{"$group": {"_id": "$k", "n": {"$sum": 1}}}])  # not count_documents' shape
        assert {row["_id"]: row["n"] for row in grouped} == {k: len(keys) for k, keys in by_k.items()}
        assert "k_1" in things.index_information()
        assert client.freightline.command("explain", {"find": "things", "filter": {"k": 1}})["ok"] == 1
        client.close()
        log = target.ctx.paths.log("mongodb").read_text()
        assert log.count("count_documents answered by count") == counts


def _plan_indexes(db: Database[dict[str, Any]], collection: str, query: dict[str, Any]) -> list[str]:
    """The PostgreSQL indexes in FerretDB's plan for ``find(query)`` (its explain carries PostgreSQL's plan)."""
    explained = db.command("explain", {"find": collection, "filter": query})
    assert explained["filterPushdown"] is True

    def names(node: dict[str, Any]) -> list[str]:
        own = [str(node["Index Name"])] if "Index Name" in node else []
        return own + [name for child in node.get("Plans", []) for name in names(child)]

    return names(explained["queryPlanner"]["Plan"])


def test_mongodb_builds_the_indexes_it_is_asked_for_and_queries_use_them(
    stack_env: dict[str, str], unique_name: Callable[[str], str]
) -> None:
    client = mongo_client(MongoSettings.from_mapping(stack_env))
    db = client[unique_name("db").replace("-", "_")]
    try:
        views = db.views
        views.insert_many(
            [{"_id": f"e{i}", "product_id": f"P-{i % 50}", "metadata": {"event_time": i}} for i in range(5000)]
        )
        views.create_index("product_id")
        views.create_index("metadata.event_time")
        assert {"_id_", "product_id_1", "metadata.event_time_1"} <= set(views.index_information())
        assert any(name.endswith("_contains") for name in _plan_indexes(db, "views", {"_id": "e42"}))
        assert any("product_id" in name for name in _plan_indexes(db, "views", {"product_id": "P-7"}))
        assert views.find_one({"_id": "e42"}) == {"_id": "e42", "product_id": "P-42", "metadata": {"event_time": 42}}
        assert views.count_documents({"product_id": "P-7"}) == 100
        assert _plan_indexes(db, "views", {"store_id": "DE"}) == []  # no index: a sequential scan
        views.drop_index("product_id_1")
        assert _plan_indexes(db, "views", {"product_id": "P-7"}) == []  # the companion went with its index
    finally:
        client.drop_database(db.name)
        client.close()


def test_hdfs_renames_are_atomic_and_never_overwrite(
    stack_env: dict[str, str], unique_name: Callable[[str], str]
) -> None:
    store = WebHdfsStore(stack_env["HDFS_WEBHDFS_URL"], "freightline")
    base = f"tests/{unique_name('hdfs')}"
    store.write(f"{base}/tmp/a", b"first")
    assert store.move(f"{base}/tmp/a", f"{base}/final/a")
    store.write(f"{base}/tmp/b", b"second")
    assert not store.move(f"{base}/tmp/b", f"{base}/final/a")
    assert store.read(f"{base}/final/a") == b"first"
    assert store.list_files(f"{base}/tmp") == []


def test_gcs_emulator_honours_generation_preconditions(
    stack_env: dict[str, str], unique_name: Callable[[str], str]
) -> None:
    client = gcs_client(GcsSettings.from_mapping(stack_env))
    store = GcsStore(client, unique_name("bucket"))
    store.ensure_bucket()
    blob = store.bucket.blob("x")
    blob.upload_from_string(b"one", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        blob.upload_from_string(b"two", if_generation_match=0)
    store.write("tmp/y", b"three")
    assert not store.move("tmp/y", "x")
    assert store.read("x") == b"one"
