"""Entrypoint: ``python -m services.sink_hdfs`` runs until SIGTERM (then writes, commits and exits 0)."""

from __future__ import annotations

import sys

from services.common.entrypoint import run_entrypoint
from services.common.settings import HdfsSettings
from services.common.sinks.runner import run_sink
from services.sink_hdfs.settings import SERVICE, HdfsSinkSettings
from services.sink_hdfs.target import hdfs_endpoint, target_factory


def main() -> int:
    settings, hdfs = HdfsSinkSettings(), HdfsSettings()
    return run_sink(SERVICE, settings, target_factory(settings, hdfs), hdfs_endpoint(hdfs), hdfs)


if __name__ == "__main__":
    sys.exit(run_entrypoint(main))
