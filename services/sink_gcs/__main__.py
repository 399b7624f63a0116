"""Entrypoint: ``python -m services.sink_gcs`` runs until SIGTERM (then writes, commits and exits 0)."""

from __future__ import annotations

import sys

from services.common.entrypoint import run_entrypoint
from services.common.settings import GcsSettings
from services.common.sinks.runner import run_sink
from services.sink_gcs.settings import SERVICE, GcsSinkSettings
from services.sink_gcs.target import gcs_endpoint, target_factory


def main() -> int:
    settings, gcs = GcsSinkSettings(), GcsSettings()
    return run_sink(SERVICE, settings, target_factory(settings, gcs), gcs_endpoint(gcs), gcs)


if __name__ == "__main__":
    sys.exit(run_entrypoint(main))
