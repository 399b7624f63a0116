"""The enricher (a Faust app fed by the shared consumer loop) keeps its promises through a stop and a crash:
SIGTERM mid-batch enriches, delivers, commits and exits 0 (the restart enriches every source event once: nothing
committed again, nothing lost), and a poison record's dead letter survives a SIGKILL after it while the events
after it are enriched."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas import topics
from services.enricher.app import SERVICE
from tests.integration.crash import tally
from tests.integration.enricher import support
from tests.integration.lifecycle import (
    ServiceCase,
    check_dead_letters,
    crash_after_poison,
    interrupt_in_flight,
    produce_poison,
    run_to_end,
)

pytestmark = pytest.mark.integration


def _case(env: dict[str, str], prefix: str, tmp_path: Path, batch_size: int) -> ServiceCase:
    """The enricher on the topics of ``prefix``, in batches of ``batch_size`` events."""
    settings = {
        "LOG_LEVEL": "INFO",
        "ENRICHER_TOPIC_PREFIX": prefix,
        "ENRICHER_APP_ID": f"{prefix}enricher",
        "ENRICHER_DATA_DIR": str(tmp_path / "data"),
        "ENRICHER_BATCH_SIZE": str(batch_size),
    }
    serde = support.serde_for(env)
    outputs = list(support.output_topics(prefix).values())
    return ServiceCase(
        SERVICE,
        {**env, **settings},
        f"{prefix}enricher",
        list(support.source_topics(prefix).values()),
        lambda: support.enriched_event_ids(env, prefix, serde),
        tmp_path / "enricher.log",
        started=lambda: support.topic_size(env, outputs) > 0,
    )


def test_sigterm_mid_batch_delivers_commits_exits_0_and_the_restart_enriches_each_event_once(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique_name("enr-term") + "-"
    support.run_generator(stack_env, prefix, 30_000, 31, GENERATOR_ANOMALIES_PER_MINUTE="0")
    ids = support.source_event_ids(stack_env, prefix, support.serde_for(stack_env))
    case = _case(stack_env, prefix, tmp_path, 20)
    stopped = interrupt_in_flight(case, signal.SIGTERM)
    assert stopped.lag_at_signal > 0, "the SIGTERM hit a drained consumer"
    assert stopped.returncode == 0, case.log.read_text()[-3000:]
    # what was committed is exactly what was delivered: nothing enriched beyond the commit
    assert len(stopped.landed) == len(set(stopped.landed)) == stopped.committed < len(ids)
    finished = run_to_end(case, len(ids))
    print(f"\nenricher SIGTERM: {stopped.lag_at_signal} uncommitted at the signal, {stopped.committed} committed")
    found = tally(ids, finished.landed)
    assert (found.missing, found.unexpected, found.duplicates) == (0, 0, 0), found
    # the restart consumed exactly what was not committed at the stop
    assert sum(finished.consumed.values()) == len(ids) - stopped.committed
    assert set(finished.consumed) <= set(case.topics)


def test_poison_then_sigkill_leaves_the_dead_letter_and_the_stream_goes_on(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique_name("enr-poison") + "-"
    support.run_generator(stack_env, prefix, 2_000, 32, GENERATOR_ANOMALIES_PER_MINUTE="0")
    serde = support.serde_for(stack_env)
    before = set(support.source_event_ids(stack_env, prefix, serde))
    topic = prefix + topics.PRODUCT_VIEWS
    poison = produce_poison({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}, topic)
    # the stream after the poison: another seed's events (other ids), enough to be in flight at the kill
    support.run_generator(stack_env, prefix, 20_000, 33, GENERATOR_ANOMALIES_PER_MINUTE="0")
    ids = support.source_event_ids(stack_env, prefix, serde)
    later = set(ids) - before
    case = _case(stack_env, prefix, tmp_path, 100)
    report = crash_after_poison(case, poison, len(ids))
    print(f"\nenricher poison: {len(report.envelopes)} dead letter(s), {report.lag_at_kill} uncommitted at the kill")
    check_dead_letters(report, poison, SERVICE)
    # the events after the poison were enriched; an event enriched twice was in flight at the kill
    found = tally(ids, report.landed)
    assert (found.missing, found.unexpected) == (0, 0) and found.duplicates <= report.lag_at_kill, found
    assert later and later <= set(report.landed)
