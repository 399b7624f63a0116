"""What the GCS sink landed: ``summary(settings)`` -> objects, bytes and records per topic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.settings import GcsSettings
from services.common.sinks.files import summary as files_summary
from services.common.sinks.inspect import FileSinkInspector
from services.sink_gcs.settings import GcsSinkSettings
from services.sink_gcs.target import store_for


def summary(settings: GcsSinkSettings | None = None, gcs: GcsSettings | None = None) -> dict[str, Any]:
    settings = settings or GcsSinkSettings()
    gcs = gcs or GcsSettings()
    result = files_summary(store_for(settings, gcs), settings.prefix, settings.topic_list())
    result["target"] = f"gs://{settings.bucket}"
    return result


def inspector(env: Mapping[str, str]) -> FileSinkInspector:
    """The GCS sink's landed objects on the stack ``env`` describes."""
    gcs = GcsSettings.from_mapping(env)
    settings = GcsSinkSettings(bucket=gcs.bucket)
    target = f"gs://{settings.bucket}"
    return FileSinkInspector(store_for(settings, gcs), settings.prefix, settings, target, file_unit="objects")
