"""The platform's services as processes on one test's unique topics (``deploy.processes.ServiceProcess`` with the
stack's environment), for the tests that watch them through the monitoring."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka.admin import AdminClient

from deploy.local.airflow import AIRFLOW_ENV
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


# What Airflow 3 sends over StatsD (its scheduler loop, DAG runs, the LocalExecutor, failed tasks), sent by Airflow's
# own metrics module configured by the environment it is given: the same names and tags as Airflow's own calls.
AIRFLOW_STATSD = """
import datetime as dt
import sys
from airflow._shared.observability.metrics import stats
from airflow.configuration import conf
from airflow.observability.metrics import stats_utils

dag_id = sys.argv[1]
legacy = conf.getboolean("metrics", "legacy_names_on")
stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=legacy)
stats.incr("scheduler_heartbeat", 1, 1)
stats.timing("dagrun.duration.failed", dt.timedelta(seconds=42), tags={"dag_id": dag_id, "run_type": "manual"})
executor = {"executor_class_name": "LocalExecutor"}
stats.gauge("executor.open_slots", 2, tags={"status": "open", **executor})
stats.gauge("executor.running_tasks", 0, tags={"status": "running", **executor})
stats.gauge("executor.queued_tasks", 0, tags={"status": "queued", **executor})
stats.incr("ti_failures", tags={"dag_id": dag_id, "task_id": "aggregate"})
stats.incr("some.unmapped_metric")
"""


@contextmanager
def sending_airflow_metrics(airflow_env: Mapping[str, str], dag_id: str) -> Iterator[None]:
    """Send, while the block runs (Airflow's import takes seconds of CPU: the block's waiting overlaps it), through
    Airflow's own metrics module in Airflow's environment configured by ``airflow_env`` (its ``[metrics]``
    settings and ``AIRFLOW_HOME``): a scheduler heartbeat, a failed run of ``dag_id`` (42 s), the executor's slots
    and tasks and a failed task ``aggregate`` of it. Sent when the block ends."""
    python = AIRFLOW_ENV / ".venv" / "bin" / "python"
    with subprocess.Popen(
        [str(python), "-c", AIRFLOW_STATSD, dag_id],
        env={**os.environ, **airflow_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as sender:
        try:
            yield
        finally:
            _, errors = sender.communicate(timeout=120)
    assert sender.returncode == 0, errors
