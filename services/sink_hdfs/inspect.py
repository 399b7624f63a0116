"""What the HDFS sink landed: ``summary(settings)`` -> files, bytes and records per topic."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from services.common.settings import HdfsSettings
from services.common.sinks.files import committed_paths as files_committed
from services.common.sinks.files import summary as files_summary
from services.sink_hdfs.settings import HdfsSinkSettings
from services.sink_hdfs.target import store_for


def summary(
    settings: HdfsSinkSettings | None = None, hdfs: HdfsSettings | None = None, known: AbstractSet[str] = frozenset()
) -> dict[str, Any]:
    """Files, bytes and records per topic; files in ``known`` (see ``committed``) are left out."""
    settings = settings or HdfsSinkSettings()
    hdfs = hdfs or HdfsSettings()
    result = files_summary(store_for(hdfs), settings.root, settings.topic_list(), known=known)
    result["target"] = hdfs.webhdfs_url
    return result


def committed(settings: HdfsSinkSettings | None = None, hdfs: HdfsSettings | None = None) -> set[str]:
    """Paths of every committed file, to summarise later only what landed since."""
    settings = settings or HdfsSinkSettings()
    hdfs = hdfs or HdfsSettings()
    return files_committed(store_for(hdfs), settings.root, settings.topic_list())
