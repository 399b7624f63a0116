"""The stack's storage components answer real clients with the guarantees the sinks rely on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from google.api_core import exceptions

from deploy.local.storage_components import MongoServer
from services.common.settings import GcsSettings, MongoSettings
from services.sink_gcs.store import GcsStore, gcs_client
from services.sink_hdfs.store import WebHdfsStore
from services.sink_mongodb.target import mongo_client
from tests.integration.sinks.helpers import PrivateTarget, free_port

pytestmark = pytest.mark.integration


def test_mongodb_reports_wire_version_9_and_persists_across_restarts(tmp_path: Path) -> None:
    target = PrivateTarget(MongoServer(), tmp_path / "home", mongodb_port=free_port())
    target.start()
    try:
        uri = target.exports()["MONGODB_URI"]
        client = mongo_client(MongoSettings(uri=uri))
        assert client.admin.command("isMaster")["maxWireVersion"] >= 9
        client.freightline.things.insert_one({"_id": "a", "n": 1})
        client.close()
        target.stop()
        target.start()
        client = mongo_client(MongoSettings(uri=uri))
        assert client.freightline.things.find_one({"_id": "a"}) == {"_id": "a", "n": 1}
        client.close()
    finally:
        target.stop()


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
    client = gcs_client(GcsSettings(endpoint=stack_env["GCS_ENDPOINT"]))
    store = GcsStore(client, unique_name("bucket"))
    store.ensure_bucket()
    blob = store.bucket.blob("x")
    blob.upload_from_string(b"one", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        blob.upload_from_string(b"two", if_generation_match=0)
    store.write("tmp/y", b"three")
    assert not store.move("tmp/y", "x")
    assert store.read("x") == b"one"
