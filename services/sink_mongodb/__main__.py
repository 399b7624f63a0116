"""Entrypoint: ``python -m services.sink_mongodb`` runs until SIGTERM (then writes, commits and exits 0)."""

from __future__ import annotations

import sys

from services.common.entrypoint import run_entrypoint
from services.common.settings import MongoSettings
from services.common.sinks.runner import run_sink
from services.sink_mongodb.settings import SERVICE, MongoSinkSettings
from services.sink_mongodb.target import mongodb_endpoint, target_factory


def main() -> int:
    settings, mongo = MongoSinkSettings(), MongoSettings()
    return run_sink(SERVICE, settings, target_factory(settings, mongo), mongodb_endpoint(mongo), mongo)


if __name__ == "__main__":
    sys.exit(run_entrypoint(main))
