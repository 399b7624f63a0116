"""Entrypoint: ``python -m services.generator [--events N | --duration S] [--seed N] [--start ISO] [--no-pace]``.

Prints one JSON summary line on stdout at the end (seed, start, per-topic counts, anomalies injected) and exits
0; SIGTERM stops the run early, after flushing everything queued.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys

from services.common.endpoints import kafka_endpoint, registry_endpoint, require_reachable
from services.common.entrypoint import run_entrypoint
from services.common.kafka import DeliveryError
from services.common.lifecycle import Shutdown
from services.common.logging import configure_logging
from services.common.metrics import MetricsServer, ServiceMetrics
from services.common.serde import registry_client
from services.common.settings import (
    KafkaSettings,
    RemoteKafkaSettings,
    SchemaRegistrySettings,
    ServiceSettings,
    secret_values,
)
from services.generator.runner import SERVICE, GeneratorRunner
from services.generator.settings import GeneratorSettings

log = logging.getLogger("services.generator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.generator", description=__doc__.splitlines()[0])
    bound = parser.add_mutually_exclusive_group()
    bound.add_argument("--events", type=int, help="stop after N events (reference snapshot and labels extra)")
    bound.add_argument("--duration", type=float, help="stop after S seconds of wall-clock time")
    parser.add_argument("--seed", type=int, help="random seed (default GENERATOR_SEED)")
    parser.add_argument(
        "--start",
        "--start-time",
        dest="start_time",
        type=dt.datetime.fromisoformat,
        help="ISO 8601 start of simulated time, UTC unless an offset is given (default: derived from the seed)",
    )
    parser.add_argument("--topic-prefix", help="prefix for every topic name (default GENERATOR_TOPIC_PREFIX)")
    pacing = parser.add_mutually_exclusive_group()
    pacing.add_argument("--no-pace", dest="pace", action="store_false", default=None, help="produce at full speed")
    pacing.add_argument("--pace", dest="pace", action="store_true", help="follow the wall clock at the set rates")
    args = parser.parse_args(argv)
    if args.events is not None and args.events < 0:
        parser.error("--events must not be negative")
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    service = ServiceSettings(service_name=SERVICE)
    overrides = {
        key: value
        for key, value in {
            "seed": args.seed,
            "start_time": args.start_time,
            "topic_prefix": args.topic_prefix,
            "pace": args.pace,
        }.items()
        if value is not None
    }
    settings = GeneratorSettings(**overrides)
    local, remote, registry = KafkaSettings(), RemoteKafkaSettings(), SchemaRegistrySettings()
    require_reachable(
        [kafka_endpoint(local), kafka_endpoint(remote), registry_endpoint(registry)], service.startup_timeout_s
    )
    configure_logging(service.service_name, service.log_level, secrets=secret_values(local, remote, registry))
    shutdown = Shutdown().enforce(service.shutdown_timeout_s).install()
    metrics = ServiceMetrics(service.service_name)
    server = MetricsServer.for_service(metrics, service).start()
    runner = GeneratorRunner(
        settings,
        local,
        remote,
        registry_client(registry),
        shutdown=shutdown,
        metrics=metrics,
    )
    try:
        runner.setup()
        summary = runner.run(events=args.events, duration_s=args.duration)
    except DeliveryError as error:
        log.error("records were not acknowledged: %s", error)
        return 1
    finally:
        server.stop()
    log.info("generator finished", extra={"summary": summary.as_dict()})
    sys.stdout.write(json.dumps(summary.as_dict(), separators=(",", ":")) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(run_entrypoint(main))
