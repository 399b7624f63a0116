"""The platform's services as processes on one test's unique topics (``deploy.processes.ServiceProcess`` with the
stack's environment), for the tests that watch them through the monitoring."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka.admin import AdminClient

from deploy.processes import ServiceProcess, local_client_config
from schemas import topics as topic_names
from services.generator.settings import GeneratorSettings
from services.sink_gcs.settings import GcsSinkSettings
from services.sink_hdfs.settings import HdfsSinkSettings
from services.sink_mongodb.settings import MongoSinkSettings
from tests.integration.processes import wait_for

SinkSettings = type[GcsSinkSettings | HdfsSinkSettings | MongoSinkSettings]


def prefixed(prefix: str, topics: str) -> str:
    return ",".join(prefix + topic for topic in topics.split(","))


def default_topics(settings: SinkSettings) -> str:
    return str(settings.model_fields["topics"].default)


def sink_process(
    env: dict[str, str],
    prefix: str,
    logs: Path,
    unique_name: Callable[[str], str],
    settings: SinkSettings,
    **target: str,
) -> ServiceProcess:
    """A sink on the prefixed versions of its default topics, with its own group, files rotated every 2 s."""
    env_prefix = str(settings.model_config.get("env_prefix"))
    service = env_prefix.removesuffix("_").lower()
    options = {
        "TOPICS": prefixed(prefix, default_topics(settings)),
        "GROUP_ID": unique_name(service),
        "BATCH_TIMEOUT_S": "2",
        **target,
    }
    return ServiceProcess(
        f"services.{service}",
        env,
        logs / f"{service}.log",
        **{env_prefix + name: value for name, value in options.items()},
    )


def mirror_process(env: dict[str, str], prefix: str, logs: Path, unique_name: Callable[[str], str]) -> ServiceProcess:
    """The mirror copying the prefixed upstream product views to the prefixed local topic, its own group."""
    upstream = prefix + topic_names.UPSTREAM_PRODUCT_VIEWS
    return ServiceProcess(
        "services.mirror",
        env,
        logs / "mirror.log",
        MIRROR_TOPICS=upstream,
        MIRROR_RENAME=json.dumps({upstream: prefix + topic_names.PRODUCT_VIEWS}),
        MIRROR_GROUP_ID=unique_name("mirror"),
        MIRROR_LAG_INTERVAL_S="2",
    )


def enricher_process(env: dict[str, str], prefix: str, logs: Path) -> ServiceProcess:
    """The enricher on the prefixed topics, its own application id and state directory."""
    return ServiceProcess(
        "services.enricher",
        env,
        logs / "enricher.log",
        ENRICHER_TOPIC_PREFIX=prefix,
        ENRICHER_APP_ID=f"{prefix}enricher",
        ENRICHER_DATA_DIR=str(logs / "enricher-data"),
    )


def run_generator(env: dict[str, str], prefix: str, events: int, seed: int, logs: Path, **overrides: str) -> None:
    """A full-speed generator run of ``events`` events on the prefixed topics, its simulated time ending now."""
    start = GeneratorSettings().backlog_start(events, int(time.time() * 1000)).isoformat()
    generator = ServiceProcess(
        "services.generator",
        env,
        logs / "generator.log",
        *("--events", str(events), "--no-pace", "--seed", str(seed), "--topic-prefix", prefix, "--start", start),
        **overrides,
    ).start(capture_stdout=True)
    code, _ = generator.wait(timeout=300)
    assert code == 0, f"generator exited {code}: {(logs / 'generator.log').read_text()[-3000:]}"


def wait_for_topic(env: dict[str, str], topic: str) -> None:
    """Wait until ``topic`` exists on the local cluster (the mirror creates its destination topics as it starts):
    a consumer subscribed to a topic that does not exist yet sees it only at its next metadata refresh, minutes
    later."""
    admin = AdminClient(dict[str, str | int | float | bool](local_client_config(env)))
    wait_for(lambda: topic in admin.list_topics(timeout=10).topics, 120, what=f"the mirror to create {topic}")
