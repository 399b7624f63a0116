"""The mirror keeps its promises through a stop and a crash: SIGTERM mid-batch copies, flushes, commits and exits 0
(the restart copies every remote record once: nothing committed again, nothing lost), and a poison record's dead
letter survives a SIGKILL after it, on the local cluster, with the original record and where it came from."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from services.common.serde import HEADER, MAGIC_BYTE
from services.mirror.mirror import SERVICE
from tests.integration.crash import tally
from tests.integration.lifecycle import (
    ServiceCase,
    check_dead_letters,
    crash_after_poison,
    interrupt_in_flight,
    produce_poison,
    run_to_end,
)
from tests.integration.mirror.conftest import produce_sequence, remote_config, sequence_id
from tests.integration.processes import read_topic, topic_size

pytestmark = pytest.mark.integration

UNKNOWN_SCHEMA_ID = 2**31 - 1


def _case(
    env: dict[str, str], registry_url: str, name: Callable[[str], str], log: Path, batch_size: int
) -> ServiceCase:
    """The mirror from a remote topic of its own to a local one, in batches of ``batch_size`` records."""
    source, destination, group = name("src"), name("dst"), name("grp")
    local = {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}
    settings = {
        "SCHEMA_REGISTRY_URL": registry_url,
        "LOG_LEVEL": "INFO",
        "MIRROR_TOPICS": source,
        "MIRROR_RENAME": json.dumps({source: destination}),
        "MIRROR_GROUP_ID": group,
        "MIRROR_BATCH_SIZE": str(batch_size),
        "MIRROR_STATS_INTERVAL_MS": "200",  # /readyz follows the remote connection: ready soon after the start
    }

    def landed() -> list[str]:
        """The ``seq`` header of every local copy (unique per produced record)."""
        return [sequence_id(m) for m in read_topic(local, destination)]

    return ServiceCase(
        SERVICE,
        {**env, **settings},
        group,
        [source],
        landed,
        log,
        source=remote_config(env),
        started=lambda: topic_size(local, destination) > 0,
    )


def test_sigterm_mid_batch_copies_commits_exits_0_and_the_restart_copies_each_record_once(
    stack_env: dict[str, str], mirror_registry_url: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    # large batches: the mirror spends its time copying and flushing them, so the signal lands mid-batch
    case = _case(stack_env, mirror_registry_url, unique_name, tmp_path / "mirror.log", 5000)
    (source,) = case.topics
    total = 100_000
    produce_sequence(case.source_config, mirror_registry_url, source, partitions=3, count=total)
    stopped = interrupt_in_flight(case, signal.SIGTERM)
    assert stopped.lag_at_signal > 0, "the SIGTERM hit a drained consumer"
    assert stopped.returncode == 0, case.log.read_text()[-3000:]
    # what was committed is exactly what the local cluster holds: nothing copied beyond the commit
    assert len(stopped.landed) == len(set(stopped.landed)) == stopped.committed < total
    finished = run_to_end(case, total)
    print(f"\nmirror SIGTERM: {stopped.lag_at_signal} uncommitted at the signal, {stopped.committed} committed")
    ids = tally((str(n) for n in range(total)), finished.landed)
    assert (ids.missing, ids.unexpected, ids.duplicates) == (0, 0, 0), ids
    # the restart consumed exactly what was not committed at the stop
    assert finished.consumed == Counter({source: total - stopped.committed})


def test_poison_then_sigkill_leaves_the_dead_letter_and_the_stream_goes_on(
    stack_env: dict[str, str], mirror_registry_url: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    # small batches: the records after the poison are still being copied when its dead letter appears
    case = _case(stack_env, mirror_registry_url, unique_name, tmp_path / "mirror.log", 20)
    (source,) = case.topics
    remote = case.source_config
    produce_sequence(remote, mirror_registry_url, source, partitions=1, count=300)
    # A value the mirror cannot translate: wire format, but a schema id no registry knows (values that are not in
    # the wire format at all are copied as they are, by design).
    poison = produce_poison(remote, source, HEADER.pack(MAGIC_BYTE, UNKNOWN_SCHEMA_ID) + os.urandom(40))
    # the stream after the poison: enough to be in flight at the kill
    produce_sequence(remote, mirror_registry_url, source, partitions=1, count=20_000, start=300)
    report = crash_after_poison(case, poison, 20_300)
    print(f"\nmirror poison: {len(report.envelopes)} dead letter(s), {report.lag_at_kill} uncommitted at the kill")
    check_dead_letters(report, poison, SERVICE)
    assert {e["error_type"] for e in report.envelopes} == {"unknown_schema"}
    # the records after the poison were copied; a record copied twice was in flight at the kill
    ids = tally((str(n) for n in range(20_300)), report.landed)
    assert (ids.missing, ids.unexpected) == (0, 0) and ids.duplicates <= report.lag_at_kill, ids
