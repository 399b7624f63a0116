"""Read a running service's ``/metrics``."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families


def metric_of(url: str, name: str, labels: Mapping[str, str] | None = None, *, default: float | None = None) -> float:
    """The sum of the samples of ``name`` at ``url`` whose labels include ``labels`` (0 when there are none);
    ``default`` while the endpoint does not answer (None: the error is raised)."""
    try:
        text = httpx.get(url, timeout=30).text
    except httpx.TransportError:
        if default is None:
            raise
        return default
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()):
                total += sample.value
    return total
