"""Each sink on a topic and a target of its own (a MongoDB database, an HDFS root, a GCS bucket) on the stack's
servers, reachable directly or through another address (a ``tests.integration.proxy.TcpProxy``): what a test
needs to run a sink and read back what landed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from services.common.settings import GcsSettings, HdfsSettings, MongoSettings
from services.common.sinks.files import committed_files
from services.sink_gcs.store import GcsStore, gcs_client
from services.sink_hdfs.store import WebHdfsStore
from tests.integration.processes import ServiceProcess, free_port, wait_for
from tests.integration.service_metrics import metric_of
from tests.integration.sinks.helpers import avro_event_ids, mongo_event_ids

SINKS = ["sink_mongodb", "sink_hdfs", "sink_gcs"]


def file_ids(store: WebHdfsStore | GcsStore, root: str, topic: str) -> list[str]:
    """The event ids in the committed files of ``topic`` under ``root``, one entry per record."""
    return [i for item in committed_files(store, root, topic) for i in avro_event_ids(store.read(item.path))]


@dataclass
class SinkUnderTest:
    """``module`` reading ``topic`` in group ``group`` into a target of its own.

    ``endpoint`` is the target server's ``host:port``; ``env(via)`` is the sink's environment with the target
    reached at ``via`` instead (default: directly). ``landed`` lists the event ids at the target (read directly),
    ``cleanup`` removes the target's data."""

    module: str
    topic: str
    group: str
    endpoint: str
    settings: dict[str, str]
    target_env: Callable[[str], dict[str, str]]
    landed: Callable[[], list[str]]
    cleanup: Callable[[], None]

    @property
    def upstream(self) -> tuple[str, int]:
        host, _, port = self.endpoint.rpartition(":")
        return host, int(port)

    def env(self, via: str | None = None, **settings: str) -> dict[str, str]:
        """The sink's environment; ``settings`` are more of its own (without the ``SINK_<NAME>_`` prefix)."""
        prefix = self.module.upper() + "_"
        own = {prefix + key: value for key, value in {**self.settings, **settings}.items()}
        return {**own, **self.target_env(via or self.endpoint)}


def sink_under_test(module: str, env: dict[str, str], topic: str, name: str) -> SinkUnderTest:
    """``module`` (one of ``SINKS``) with the stack's ``env`` reading ``topic`` into a target named after
    ``name`` (also its consumer group)."""
    settings = {"TOPICS": topic, "GROUP_ID": name}
    target_env: Callable[[str], dict[str, str]]
    if module == "sink_mongodb":
        database = name.replace("-", "_")
        settings |= {"DATABASE": database, "COLLECTIONS": f"{topic}=views"}
        uri = env["MONGODB_URI"]
        endpoint = str(urlsplit(uri).netloc)

        def target_env(address: str) -> dict[str, str]:
            return {**env, "MONGODB_URI": f"mongodb://{address}"}

        def landed() -> list[str]:
            return mongo_event_ids(uri, database)

        def cleanup() -> None:
            from services.sink_mongodb.target import mongo_client

            client = mongo_client(MongoSettings(uri=uri))
            try:
                client.drop_database(database)
            finally:
                client.close()

    elif module == "sink_hdfs":
        root = f"/tests/{name}"
        hdfs = HdfsSettings(webhdfs_url=env["HDFS_WEBHDFS_URL"])
        hdfs_store = WebHdfsStore(hdfs.webhdfs_url, hdfs.user)
        settings |= {"ROOT": root}
        endpoint = str(urlsplit(hdfs.webhdfs_url).netloc)

        def target_env(address: str) -> dict[str, str]:
            return {**env, "HDFS_WEBHDFS_URL": f"http://{address}"}

        def landed() -> list[str]:
            return file_ids(hdfs_store, root, topic)

        def cleanup() -> None:
            hdfs_store.client.delete(root, recursive=True)

    elif module == "sink_gcs":
        gcs_store = GcsStore(gcs_client(GcsSettings.from_mapping(env)), name)
        gcs_store.ensure_bucket()
        settings |= {"BUCKET": name, "PREFIX": "raw"}
        endpoint = str(urlsplit(env["GCS_ENDPOINT"]).netloc)

        def target_env(address: str) -> dict[str, str]:
            return {**env, "GCS_ENDPOINT": f"http://{address}", "STORAGE_EMULATOR_HOST": f"http://{address}"}

        def landed() -> list[str]:
            return file_ids(gcs_store, "raw", topic)

        def cleanup() -> None:
            for blob in gcs_store.client.list_blobs(gcs_store.bucket):
                with contextlib.suppress(Exception):
                    blob.delete()
            with contextlib.suppress(Exception):
                gcs_store.bucket.delete()

    else:
        raise ValueError(f"not a sink: {module}")
    return SinkUnderTest(module, topic, name, endpoint, settings, target_env, landed, cleanup)


class RunningSink:
    """A sink process with its metrics server on a known port: readiness, metrics, memory."""

    def __init__(self, module: str, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.process = ServiceProcess(module, {**env, "METRICS_PORT": str(self.port)}, log)

    def __enter__(self) -> RunningSink:
        """Start the sink and wait until ``/readyz`` says ready (its target open, its metrics served)."""
        self.process.start()
        try:
            wait_for(lambda: self.readyz() == 200, 120, interval=0.2, what=f"{self.process.module} ready")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.alive():
            assert self.process.process is not None
            self.process.process.kill()
            self.process.process.wait(30)

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def check_alive(self) -> None:
        if not self.process.alive():
            raise AssertionError(f"{self.process.module} exited:\n{self.process.log()}")

    def readyz(self) -> int:
        """The status of ``/readyz`` (0 while the server does not answer). The sink may probe its target to answer,
        hence the long timeout (a hang guard)."""
        self.check_alive()
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=30).status_code
        except httpx.TransportError:
            return 0

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 when there are none)."""
        self.check_alive()
        return metric_of(f"http://127.0.0.1:{self.port}/metrics", name, labels)

    def consumed(self, topic: str) -> int:
        """Records the sink's loop took from ``topic`` so far, whatever became of them (written, dead-lettered,
        rewound for a retry)."""
        return int(self.metric("freightline_records_consumed_total", topic=topic))

    def written(self, topic: str) -> int:
        """Records the sink wrote to its target (``<service>_records_written_total``)."""
        return int(self.metric(f"freightline_{self.process.module}_records_written_total", topic=topic))

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def stop(self) -> int:
        return self.process.stop()
