"""The HDFS sink's target: the shared exactly-once file protocol over WebHDFS."""

from __future__ import annotations

from collections.abc import Callable

from services.common.endpoints import Endpoint, http_endpoint
from services.common.settings import HdfsSettings
from services.common.sinks.files import FileSinkTarget
from services.common.sinks.runner import SinkContext
from services.sink_hdfs.settings import HdfsSinkSettings
from services.sink_hdfs.store import WebHdfsStore


def store_for(hdfs: HdfsSettings) -> WebHdfsStore:
    return WebHdfsStore(hdfs.webhdfs_url, hdfs.user, ca_location=hdfs.ssl_ca_location)


def hdfs_endpoint(hdfs: HdfsSettings) -> Endpoint:
    """The NameNode's WebHDFS API: reachable once it answers a status request for the root."""
    return http_endpoint(
        "HDFS_WEBHDFS_URL",
        hdfs.webhdfs_url,
        f"/webhdfs/v1/?op=GETFILESTATUS&user.name={hdfs.user}",
        ca_location=hdfs.ssl_ca_location,
    )


def target_factory(settings: HdfsSinkSettings, hdfs: HdfsSettings) -> Callable[[SinkContext], FileSinkTarget]:
    def make(ctx: SinkContext) -> FileSinkTarget:
        return FileSinkTarget(
            store_for(hdfs),
            ctx,
            root=settings.root,
            codec=settings.codec,
            max_file_records=settings.max_file_records,
            max_file_bytes=settings.max_file_bytes,
        )

    return make
