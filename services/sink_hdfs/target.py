"""The HDFS sink's target: the shared exactly-once file protocol over WebHDFS."""

from __future__ import annotations

from collections.abc import Callable

from services.common.settings import HdfsSettings
from services.common.sinks.files import FileSinkTarget
from services.common.sinks.runner import SinkContext
from services.sink_hdfs.settings import HdfsSinkSettings
from services.sink_hdfs.store import WebHdfsStore


def store_for(hdfs: HdfsSettings) -> WebHdfsStore:
    return WebHdfsStore(hdfs.webhdfs_url, hdfs.user)


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
