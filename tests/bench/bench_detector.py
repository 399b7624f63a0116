"""Anomaly detector throughput: raw events/s of one ``python -m services.anomaly_detector`` process (both stages)
over a generated backlog, timed by its consumer groups' commits.

The generator writes ``EVENTS`` events (its default mix and anomaly rate) to unique topics; the detector reads the
five raw topics its detectors use (stage 1, group ``<GROUP_ID>-repartition``), re-keys them onto its repartition
topic and detects there (stage 2, group ``GROUP_ID``). Timed from the first commit of stage 1 (group join and
start-up excluded) to the moment both groups have committed everything (stage 1 commits a batch only after its
repartition records are acknowledged, so stage 2's last commit is the end of the whole input): the raw events
committed in between over that time.

Baseline, measured in the same run over the same records: the per-event work alone in a plain loop without Kafka,
records in timestamp order: decode each raw event, build its ``DetectorInput`` (stage 1's
``topology.detector_input``) and encode it, decode that again and feed it to the detection tasks
(``topology.Tasks``, one per repartition partition, partitioned by the key's hash), encode the anomalies found and
those of the final flush; timed before and after the service, the better kept. Goal: >= 0.5x (as the enricher's).
``python -m tests.bench.bench_detector`` (stack env from FREIGHTLINE_STACK_ENV, default .freightline/stack.env).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

from deploy.processes import group_lag, wait_until
from schemas.catalogue import load_catalogue, load_schema
from services.anomaly_detector.settings import ANOMALIES, DETECTOR_INPUT, INPUT_TOPICS, DetectorSettings
from services.anomaly_detector.topology import Tasks, detector_input
from services.common.serde import subject_for
from tests.bench.rows import row, stack_env
from tests.integration.anomaly_detector.support import raw_records, start_detector
from tests.integration.enricher import support

EVENTS = 100_000
SEED = 37
WORK_GOAL = 0.5
TIMEOUT_S = 600  # hang guard
BOUND = (
    "one process runs both stages, each a consumer loop thread with its own producer in one interpreter: stage 1 "
    "decodes every raw event and produces the forwarded ones, stage 2 decodes those again, and each batch waits for "
    "its producer's flush before it is committed."
)


def _service_rate(env: dict[str, str], settings: DetectorSettings, raw_total: int, work: Path) -> float:
    """Raw events/s between stage 1's first commit and both stages' last."""
    client = {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}
    raw = [settings.topic(t) for t in INPUT_TOPICS]
    repartition = [settings.topic(DETECTOR_INPUT)]
    log = work / "detector.log"
    process = start_detector(
        env, log, TOPIC_PREFIX=settings.topic_prefix, GROUP_ID=settings.group_id, LOG_LEVEL="WARNING"
    )
    timing: dict[str, float] = {}

    def read() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the detector exited with {process.returncode}: {log.read_text()[-2000:]}")
        lag = group_lag(client, settings.repartition_group_id, raw)
        if lag < raw_total and "first" not in timing:
            timing.update(first=time.monotonic(), lag=lag)
        return lag == 0 and group_lag(client, settings.group_id, repartition) == 0

    try:
        if not wait_until(read, TIMEOUT_S, 0.1):
            raise RuntimeError(f"the detector did not commit its input within {TIMEOUT_S} s")
        done = time.monotonic()
    finally:
        support.stop(process)
    return timing["lag"] / max(done - timing["first"], 1e-9)  # the records committed after the first commit


def _raw_events(env: dict[str, str], settings: DetectorSettings) -> list[tuple[str, int, int, bytes]]:
    """(catalogue topic, partition, offset, value) of every raw record the detector reads, in event-time order
    (read and ordered once, outside the timed loop)."""
    serde = support.serde_for(env)
    found = [
        (serde.decode(value)["metadata"]["event_time"], name, partition, offset, value)
        for name in INPUT_TOPICS
        for partition, offset, value in raw_records(env, settings.topic(name))
    ]
    found.sort(key=lambda item: item[0])
    return [(name, partition, offset, value) for _time, name, partition, offset, value in found]


def _work_rate(env: dict[str, str], settings: DetectorSettings, events: list[tuple[str, int, int, bytes]]) -> float:
    """The same per-event work as both stages, in a plain loop without Kafka."""
    serde = support.serde_for(env)
    catalogue = load_catalogue()
    forward = serde.encoder(
        subject_for(settings.topic(DETECTOR_INPUT)), load_schema(catalogue.topic(DETECTOR_INPUT).value_schema)
    )
    emit = serde.encoder(subject_for(settings.topic(ANOMALIES)), load_schema(catalogue.topic(ANOMALIES).value_schema))
    partitions = catalogue.topic(DETECTOR_INPUT).partitions
    tasks = Tasks(settings, catalogue=catalogue)
    started = time.perf_counter()
    for name, partition, offset, value in events:
        record = detector_input(name, serde.decode(value), partition, offset)
        if record is None:
            continue
        repartitioned = serde.decode(forward.encode(record))
        for anomaly in tasks.observe(zlib.crc32(record["entity_key"].encode()) % partitions, repartitioned):
            emit.encode(anomaly)
    for anomaly in tasks.flush():
        emit.encode(anomaly)
    return len(events) / (time.perf_counter() - started)


def run(env: dict[str, str]) -> list[dict[str, Any]]:
    prefix = f"bench-det-{uuid.uuid4().hex[:8]}-"
    summary = support.run_generator(env, prefix, EVENTS, SEED)
    settings = DetectorSettings(topic_prefix=prefix, group_id=f"{prefix}detector")
    raw_total = sum(int(summary["topics"].get(settings.topic(name), 0)) for name in INPUT_TOPICS)
    # The per-event work is timed before and after the service and the better of the two kept: the machine's load
    # drifts between phases, and the higher ceiling is the stricter baseline.
    events = _raw_events(env, settings)
    ceiling = _work_rate(env, settings, events)
    with tempfile.TemporaryDirectory() as tmp:
        rate = _service_rate(env, settings, raw_total, Path(tmp))
    ceiling = max(ceiling, _work_rate(env, settings, events))
    return [
        row(
            "anomaly detector raw events/s (one process, both stages)",
            rate,
            "events/s",
            "same decode, re-key, encode, decode, detect in a plain loop, no Kafka",
            ceiling,
            WORK_GOAL,
            note=f"{raw_total:,} raw events of {EVENTS:,} generated, timed by the groups' commits.",
            bound=BOUND,
        )
    ]


if __name__ == "__main__":
    sys.stdout.write(json.dumps(run(stack_env()), indent=2) + "\n")
