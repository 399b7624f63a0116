"""Generator -> Kafka -> detector service (both stages) -> scorer on unique topics: precision, recall and
detections per matched incident per anomaly type, on seeds the detectors were not tuned on (1 and 5 were), and
the same detections from three instances in one group as from one instance."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from schemas.catalogue import load_catalogue
from services.anomaly_detector.score import score
from services.anomaly_detector.settings import ANOMALIES, DETECTOR_INPUT, INPUT_TOPICS, DetectorSettings
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings
from tests.integration.anomaly_detector import support as detector_support
from tests.integration.anomaly_detector.support import start_detector
from tests.integration.crash import kill_in_flight, tally
from tests.integration.enricher import support

pytestmark = pytest.mark.integration

# The main job's volume at the generator's default rates (3 anomalies per minute of event time).
EVENTS = 100_000
TYPES = {"PRODUCT_VIEW_SPIKE", "SHIPMENT_DELAY_SURGE", "ERROR_RATE_SPIKE", "OTHER"}


def wait_drained(
    stack_env: Mapping[str, str], settings: DetectorSettings, procs: list[subprocess.Popen[bytes]]
) -> None:
    """Stage 1 committed the raw topics (so its records are durable), then stage 2 the repartition topic."""
    raw = [settings.topic(t) for t in INPUT_TOPICS]
    for process in procs:
        assert support.wait_caught_up(stack_env, settings.repartition_group_id, raw, 300, process)
    assert support.wait_caught_up(stack_env, settings.group_id, [settings.topic(DETECTOR_INPUT)], 300, procs[0])


def check_score(result: dict[str, Any]) -> None:
    assert result["undecodable"] == dict.fromkeys(result["undecodable"], 0)
    per_type = result["per_type"]
    assert set(per_type) == TYPES
    for kind, item in per_type.items():
        assert item["precision"] is not None and item["precision"] >= 0.9, (kind, item)
        assert item["recall"] is not None and item["recall"] >= 0.9, (kind, item)
        assert item["detections_per_incident"] <= 1.5, (kind, item)


def detections(stack_env: Mapping[str, str], topic: str) -> set[tuple[str, str, int, int]]:
    serde = support.serde_for(stack_env)
    found = set()
    for record in support.decoded(stack_env, topic, serde):
        start, end = record["window_start"], record["window_end"]
        found.add((record["anomaly_type"], record["entity_key"], _ms(start), _ms(end)))
    return found


def _ms(value: Any) -> int:
    return value if isinstance(value, int) else int(value.timestamp() * 1000)


@pytest.mark.parametrize("seed", [3])
def test_precision_and_recall_per_type(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path, seed: int
) -> None:
    prefix = unique_name("det") + "-"
    summary = support.run_generator(stack_env, prefix, EVENTS, seed)
    assert summary["anomalies_total"] >= 10
    settings = DetectorSettings(topic_prefix=prefix, group_id=f"{prefix}detector")
    process = start_detector(
        stack_env, tmp_path / "detector.log", TOPIC_PREFIX=prefix, GROUP_ID=settings.group_id, IDLE_FLUSH_S="2"
    )
    try:
        wait_drained(stack_env, settings, [process])
    finally:
        code = support.stop(process)  # SIGTERM: open windows are flushed before exit
    assert code == 0, (tmp_path / "detector.log").read_text()[-3000:]
    result = score(stack_env, f"{prefix}analytics.anomaly_labels.v1", settings.topic(ANOMALIES))
    print(summary["seed"], summary["start"], result)
    check_score(result)


def test_three_instances_detect_what_one_instance_does(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    """One instance in one group and three in another, all started before the data flows, read the same raw
    topics (each deployment with its own repartition and anomalies topics): the same detections (type, entity,
    window), and they score like one instance."""
    prefix = unique_name("scale") + "-"
    catalogue = load_catalogue()
    raw = [(prefix + t, catalogue.topic(t).partitions, catalogue.topic(t).topic_config()) for t in INPUT_TOPICS]
    ensure_topics(KafkaSettings(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"]), raw)
    repartitions = catalogue.topic(DETECTOR_INPUT).partitions
    deployments: dict[int, tuple[DetectorSettings, list[subprocess.Popen[bytes]]]] = {}
    try:
        for instances in (1, 3):
            topics = {DETECTOR_INPUT: f"{prefix}{instances}-input", ANOMALIES: f"{prefix}{instances}-anomalies"}
            settings = DetectorSettings(topic_prefix=prefix, group_id=f"{prefix}{instances}-detector", topics=topics)
            # Processing-time flushes off: the windows close on event time and at the final SIGTERM only.
            env = {
                "TOPIC_PREFIX": prefix,
                "GROUP_ID": settings.group_id,
                "TOPICS": json.dumps(topics),
                "IDLE_FLUSH_S": "3600",
                "IDLE_TIMEOUT_S": "3600",
            }
            # Each instance its own static member id: one shared id would fence the others out of the group.
            procs = [
                start_detector(
                    stack_env, tmp_path / f"detector-{instances}-{i}.log", INSTANCE_ID=f"{prefix}{instances}-{i}", **env
                )
                for i in range(instances)
            ]
            deployments[instances] = (settings, procs)
        for instances, (settings, _procs) in deployments.items():
            group = settings.repartition_group_id
            assert support.wait_assigned(stack_env, group, instances, len(INPUT_TOPICS) * 3, 120), group
            assert support.wait_assigned(stack_env, settings.group_id, instances, repartitions, 120), settings.group_id
        summary = support.run_generator(stack_env, prefix, EVENTS, 8)
        for settings, procs in deployments.values():
            wait_drained(stack_env, settings, procs)
    finally:
        everyone = [p for _settings, procs in deployments.values() for p in procs]
        for process in everyone:
            if process.poll() is None:
                process.terminate()  # all at once: no partition moves to a member still running
        codes = [process.wait(60) for process in everyone]  # one SIGTERM each: a second may hit the exit
    logs = "\n".join(path.read_text()[-1500:] for path in sorted(tmp_path.glob("detector-*.log")))
    assert codes == [0] * len(codes), logs
    one, three = (detections(stack_env, deployments[n][0].topic(ANOMALIES)) for n in (1, 3))
    assert {kind for kind, *_ in one} == TYPES, one
    assert three == one, (sorted(three - one), sorted(one - three))
    result = score(stack_env, f"{prefix}analytics.anomaly_labels.v1", deployments[3][0].topic(ANOMALIES))
    print(summary["seed"], summary["start"], result)
    check_score(result)


def test_sigkill_mid_stream_then_restart_forwards_every_event_and_scores(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    """SIGKILL while stage 1 holds uncommitted raw events: after the restart every raw event is on the repartition
    topic (by its source topic, partition and offset), each repeat counted and no more than were in flight, and
    each anomaly id is emitted for one incident only."""
    prefix = unique_name("det-kill") + "-"
    support.run_generator(stack_env, prefix, EVENTS, 3)
    settings = DetectorSettings(topic_prefix=prefix, group_id=f"{prefix}detector")
    raw = [settings.topic(t) for t in INPUT_TOPICS]
    repartition = settings.topic(DETECTOR_INPUT)
    kafka = {"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}
    total = support.topic_size(stack_env, raw)
    env = {"TOPIC_PREFIX": prefix, "GROUP_ID": settings.group_id, "IDLE_FLUSH_S": "2", "BATCH_SIZE": "500"}
    log = tmp_path / "detector.log"
    process = start_detector(stack_env, log, **env)
    try:
        support.wait_for_size(stack_env, [repartition], total // 4, 180, process)
    finally:
        lag = kill_in_flight(lambda: support.stop(process, signal.SIGKILL), kafka, settings.repartition_group_id, raw)
    assert 0 < lag < total, f"the kill hit no work in flight (lag {lag})"
    process = start_detector(stack_env, log, **env)
    try:
        wait_drained(stack_env, settings, [process])
    finally:
        assert support.stop(process) == 0, log.read_text()[-3000:]
    serde = support.serde_for(stack_env)
    # The raw events stage 1 forwards (those its detectors use), by source topic, partition and offset.
    inputs = [item.identity for item in detector_support.forwardable(stack_env, settings, serde)]
    forwarded = detector_support.forwarded(stack_env, settings, serde)
    ids = tally(inputs, forwarded)
    print(f"detector sigkill: {ids}, {lag} in flight at the kill")
    assert ids.inputs > total // 2 and (ids.missing, ids.unexpected) == (0, 0), ids
    assert ids.outputs == ids.inputs + ids.duplicates and ids.duplicates <= lag, ids
    anomalies = support.decoded(stack_env, settings.topic(ANOMALIES), serde)
    incidents: dict[str, set[tuple[str, str, int]]] = {}
    for record in anomalies:
        incidents.setdefault(str(record["anomaly_id"]), set()).add(
            (record["anomaly_type"], record["entity_key"], _ms(record["window_start"]))
        )
    assert anomalies and all(len(found) == 1 for found in incidents.values()), incidents
