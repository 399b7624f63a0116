"""What the HDFS sink landed: ``summary(settings)`` -> files, bytes and records per topic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.settings import HdfsSettings
from services.common.sinks.files import summary as files_summary
from services.common.sinks.inspect import FileSinkInspector
from services.sink_hdfs.settings import HdfsSinkSettings
from services.sink_hdfs.target import store_for


def summary(settings: HdfsSinkSettings | None = None, hdfs: HdfsSettings | None = None) -> dict[str, Any]:
    settings = settings or HdfsSinkSettings()
    hdfs = hdfs or HdfsSettings()
    result = files_summary(store_for(hdfs), settings.root, settings.topic_list())
    result["target"] = hdfs.webhdfs_url
    return result


def inspector(env: Mapping[str, str]) -> FileSinkInspector:
    """The HDFS sink's landed files on the stack ``env`` describes."""
    hdfs = HdfsSettings.from_mapping(env)
    settings = HdfsSinkSettings()
    return FileSinkInspector(store_for(hdfs), settings.root, settings, hdfs.webhdfs_url, file_unit="files")
