"""What the GCS sink landed: ``summary(settings)`` -> objects, bytes and records per topic."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from services.common.settings import GcsSettings
from services.common.sinks.files import committed_paths as files_committed
from services.common.sinks.files import summary as files_summary
from services.sink_gcs.settings import GcsSinkSettings
from services.sink_gcs.target import store_for


def summary(
    settings: GcsSinkSettings | None = None, gcs: GcsSettings | None = None, known: AbstractSet[str] = frozenset()
) -> dict[str, Any]:
    """Files, bytes and records per topic; files in ``known`` (see ``committed``) are left out."""
    settings = settings or GcsSinkSettings()
    gcs = gcs or GcsSettings()
    result = files_summary(store_for(settings, gcs), settings.prefix, settings.topic_list(), known=known)
    result["target"] = f"gs://{settings.bucket}"
    return result


def committed(settings: GcsSinkSettings | None = None, gcs: GcsSettings | None = None) -> set[str]:
    """Paths of every committed file, to summarise later only what landed since."""
    settings = settings or GcsSinkSettings()
    gcs = gcs or GcsSettings()
    return files_committed(store_for(settings, gcs), settings.prefix, settings.topic_list())
