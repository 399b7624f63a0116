"""The detector keeps its promises through a stop and a crash, both stages (raw topics -> repartition topic ->
detection): SIGTERM mid-batch forwards, flushes, commits and exits 0 (the restart forwards every raw event the
detectors use once and each stage consumes exactly what it had not committed), and a poison record's dead
letter survives a SIGKILL after it while the events after it are forwarded."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.processes import committed_offsets
from schemas import topics
from services.anomaly_detector.settings import DETECTOR_INPUT, INPUT_TOPICS, DetectorSettings
from services.anomaly_detector.topology import SERVICE
from tests.integration.anomaly_detector.support import forwardable, forwarded
from tests.integration.crash import tally
from tests.integration.enricher import support
from tests.integration.lifecycle import (
    ServiceCase,
    check_dead_letters,
    crash_after_poison,
    group_progress,
    interrupt_in_flight,
    produce_poison,
    run_to_end,
)

pytestmark = pytest.mark.integration


def _case(env: dict[str, str], settings: DetectorSettings, log: Path, batch_size: int) -> ServiceCase:
    """Both stages on the topics of ``settings``: stage 1's group reads the raw topics (the case's input), stage
    2's the repartition topic; what lands is what stage 1 forwarded, and the run is under way once stage 2 has
    committed something too."""
    repartition = settings.topic(DETECTOR_INPUT)
    serde = support.serde_for(env)
    local = {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}
    overrides = {
        "LOG_LEVEL": "INFO",
        "ANOMALY_DETECTOR_TOPIC_PREFIX": settings.topic_prefix,
        "ANOMALY_DETECTOR_GROUP_ID": settings.group_id,
        "ANOMALY_DETECTOR_BATCH_SIZE": str(batch_size),
        "ANOMALY_DETECTOR_IDLE_FLUSH_S": "2",
    }
    return ServiceCase(
        SERVICE,
        {**env, **overrides},
        settings.repartition_group_id,
        [settings.topic(t) for t in INPUT_TOPICS],
        lambda: forwarded(env, settings, serde),
        log,
        stages={settings.group_id: [repartition]},
        started=lambda: group_progress(local, settings.group_id, [repartition])[0] > 0,
    )


def test_sigterm_mid_batch_drains_both_stages_exits_0_and_the_restart_forwards_each_event_once(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique_name("det-term") + "-"
    support.run_generator(stack_env, prefix, 30_000, 36)
    settings = DetectorSettings(topic_prefix=prefix, group_id=f"{prefix}detector")
    local = {"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}
    repartition = settings.topic(DETECTOR_INPUT)
    inputs = forwardable(stack_env, settings, support.serde_for(stack_env))
    case = _case(stack_env, settings, tmp_path / "detector.log", 20)
    stopped = interrupt_in_flight(case, signal.SIGTERM)
    assert stopped.lag_at_signal > 0, "the SIGTERM hit a drained consumer"
    assert stopped.returncode == 0, case.log.read_text()[-3000:]
    # stage 1 forwarded exactly the events below its committed offsets: nothing forwarded beyond the commit
    positions = committed_offsets(local, case.group, list(case.topics))
    below = [i.identity for i in inputs if i.offset < positions.get((i.topic, i.partition), 0)]
    assert len(stopped.landed) == len(set(stopped.landed)) and Counter(stopped.landed) == Counter(below)
    detected, _ = group_progress(local, settings.group_id, [repartition])
    assert detected > 0 and len(below) < len(inputs)
    uncommitted: Counter[str] = Counter()
    for topic in case.topics:
        done, total = group_progress(local, case.group, [topic])
        uncommitted[topic] = total - done
    finished = run_to_end(case, len(inputs))
    print(
        f"\ndetector SIGTERM: {stopped.lag_at_signal} raw events uncommitted at the signal, {len(below)} forwarded, "
        f"{detected} detected before the stop"
    )
    found = tally((i.identity for i in inputs), finished.landed)
    assert (found.missing, found.unexpected, found.duplicates) == (0, 0, 0), found
    # each stage consumed after the restart exactly what it had not committed at the stop
    assert finished.consumed == uncommitted + Counter({repartition: len(inputs) - detected})


def test_poison_then_sigkill_leaves_the_dead_letter_and_the_stream_goes_on(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique_name("det-poison") + "-"
    settings = DetectorSettings(topic_prefix=prefix, group_id=f"{prefix}detector")
    serde = support.serde_for(stack_env)
    support.run_generator(stack_env, prefix, 2_000, 37)
    before = {i.identity for i in forwardable(stack_env, settings, serde)}
    poison = produce_poison({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}, prefix + topics.CLICKSTREAM)
    # the stream after the poison: another seed's events, enough to be in flight at the kill
    support.run_generator(stack_env, prefix, 20_000, 38)
    inputs = [i.identity for i in forwardable(stack_env, settings, serde)]
    later = set(inputs) - before
    case = _case(stack_env, settings, tmp_path / "detector.log", 20)
    report = crash_after_poison(case, poison, len(inputs))
    print(f"\ndetector poison: {len(report.envelopes)} dead letter(s), {report.lag_at_kill} uncommitted at the kill")
    check_dead_letters(report, poison, SERVICE)
    # the events after the poison were forwarded; an event forwarded twice was in flight at the kill
    found = tally(inputs, report.landed)
    assert (found.missing, found.unexpected) == (0, 0) and found.duplicates <= report.lag_at_kill, found
    assert later and later <= set(report.landed)
