"""Bad input for a service's input topic, generated with hypothesis, and the tally of where each record went.

``fuzz_cases`` draws, for one contract, records of every kind a service must survive: random bytes, truncated
Avro, a schema id the registry does not know, a valid schema id of another contract, values that break the
contract's invariants, huge records (valid, and garbage), tombstones, and valid records with bad headers (a malformed
trace context, non-UTF-8 values, duplicated and huge headers), between valid records. Each case's key
(``fuzz-<kind>-<n>``) says what it is; ``expected`` is where it must end: a dead-letter reason, or ``LANDS``.
``tally`` compares what the dead-letter topic and the service's output hold with that, and prints the counts.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.common.dlq import read_dead_letters
from services.common.serde import AvroSerde, subject_for
from services.common.settings import KafkaSettings

LANDS = "lands"
ONCE = "lands or dead-lettered, once"  # what a service does with it is its choice; lost or doubled is not
NONE = "none"  # neither landed nor dead-lettered: lost, unless the service filters such records out by design
HUGE = 900_000  # bytes: near the producer's and the broker's 1 MB limit, with room for the dead-letter envelope


@dataclass(frozen=True)
class Case:
    kind: str
    key: bytes
    value: bytes | None
    expected: str
    headers: list[tuple[str, str | bytes | None]] = field(default_factory=list)
    event_id: str | None = None


def draw(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples of ``strategy`` (deterministic: the same run every time)."""
    found: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(example: Any) -> None:
        found.append(example)

    collect()
    return found[:count]


def _event_id_in(value: bytes) -> str:
    """The event id of a wire-format record whose schema starts with the metadata envelope."""
    from services.common.sinks.records import read_metadata_prefix

    return str(read_metadata_prefix(value, 5)[0])


def _with_event_id(template: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    record = copy.deepcopy(dict(template))
    event_id = uuid.uuid4()
    record["metadata"]["event_id"] = event_id
    return record, str(event_id)


def fuzz_cases(
    template: Mapping[str, Any],
    encode: Callable[[Mapping[str, Any]], bytes],
    *,
    other_contract: Callable[[], bytes] | None,
    invariant_breakers: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]],
    invariant_reason: str = ONCE,
    wrong_contract_reason: str = ONCE,
    huge_field: str,
    per_kind: int = 12,
    copier: bool = False,
    tombstone_reason: str = "tombstone",
) -> list[Case]:
    """Every kind of bad input for a topic of ``template``'s contract (``encode``: its wire format), and valid
    records between them. ``copier``: the service copies what it cannot decode as it is (the mirror), so only a
    schema id it cannot translate is dead-lettered."""
    undecodable = LANDS if copier else "undecodable"
    tombstone = LANDS if copier else tombstone_reason
    cases: list[Case] = []
    counters: Counter[str] = Counter()

    def add(kind: str, value: bytes | None, expected: str, headers: Iterable[Any] = (), event_id: str | None = None):
        counters[kind] += 1
        key = f"fuzz-{kind}-{counters[kind]}".encode()
        cases.append(Case(kind, key, value, expected, list(headers), event_id))

    def valid(kind: str = "valid", headers: Iterable[Any] = ()) -> None:
        record, event_id = _with_event_id(template)
        add(kind, encode(record), LANDS, headers, event_id)

    for noise in draw(st.binary(max_size=300), per_kind):
        add("random_bytes", bytes([1]) + noise, undecodable)  # any first byte but the magic 0
    valid_bytes = encode(_with_event_id(template)[0])
    for cut in draw(st.integers(min_value=5, max_value=len(valid_bytes) - 1), per_kind):
        add("truncated_avro", valid_bytes[:cut], undecodable)
    for schema_id in draw(st.integers(min_value=2**31 - 10_000, max_value=2**31 - 1), per_kind):
        add("unknown_schema_id", b"\x00" + schema_id.to_bytes(4, "big") + valid_bytes[5:], "unknown_schema")
    for _ in range(per_kind):
        if other_contract is None:
            break
        value = other_contract()
        add("wrong_contract", value, wrong_contract_reason, event_id=_event_id_in(value))
    for name, breaker in sorted(invariant_breakers.items()):
        for _ in range(max(per_kind // len(invariant_breakers), 1)):
            record, event_id = _with_event_id(template)
            add(f"invariant_{name}", encode(breaker(record)), invariant_reason, event_id=event_id)
    for _ in range(2):
        add("tombstone", None, tombstone)
        add("huge_garbage", bytes([7]) * HUGE, undecodable)
        record, event_id = _with_event_id(template)
        record[huge_field] = "x" * HUGE
        add("huge_valid", encode(record), LANDS, event_id=event_id)
    header_sets = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["traceparent", "tracestate", "x-note", ""]),
                st.one_of(st.none(), st.binary(max_size=64), st.just(b"00-zz-bad-trace-context-01")),
            ),
            max_size=4,
        ),
        per_kind,
    )
    for headers in header_sets:
        valid("bad_headers", headers)
    valid("bad_headers", [("traceparent", b"\xff\xfe\x00"), ("traceparent", b"00-" + b"f" * 200)])
    valid("bad_headers", [("x-big", b"h" * 20_000)])
    # Valid records between all of them: nothing good may be lost next to bad input.
    mixed: list[Case] = []
    for case in cases:
        mixed.append(case)
        record, event_id = _with_event_id(template)
        counters["valid"] += 1
        mixed.append(Case("valid", f"fuzz-valid-{counters['valid']}".encode(), encode(record), LANDS, [], event_id))
    return mixed


@dataclass
class Tally:
    rows: dict[str, Counter[str]]
    problems: list[str]

    def summary(self, cases: Iterable[Case]) -> str:
        expected = Counter(
            {LANDS: "to land", ONCE: "either", NONE: "to skip"}.get(c.expected, "to dead-letter") for c in cases
        )
        return ", ".join(f"{count} {what}" for what, count in sorted(expected.items()))

    def table(self) -> str:
        outcomes = sorted({outcome for row in self.rows.values() for outcome in row})
        lines = [f"{'kind':<32}{'sent':>6}  " + "  ".join(f"{o:>16}" for o in outcomes)]
        for kind, row in sorted(self.rows.items()):
            sent = sum(row.values())
            lines.append(f"{kind:<32}{sent:>6}  " + "  ".join(f"{row.get(o, 0):>16}" for o in outcomes))
        return "\n".join(lines)


def tally(
    cases: Iterable[Case],
    dead_letters: Mapping[bytes, list[str]],
    landed: Mapping[str, int] | None = None,
    landed_keys: Mapping[bytes, int] | None = None,
) -> Tally:
    """Where each case ended: ``dead_letters`` maps an original key to the reasons it was dead-lettered with,
    ``landed`` an event id (or ``landed_keys`` a record key: outputs that copy records) to how many times the
    output holds it. A case dead-lettered twice, landed twice, both, or neither, or with another outcome than
    expected, is a problem."""
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    problems = []
    for case in cases:
        reasons = list(dead_letters.get(case.key, []))
        if landed_keys is not None:
            times = landed_keys.get(case.key, 0)
        else:
            times = (landed or {}).get(case.event_id, 0) if case.event_id else 0
        outcome = NONE
        if reasons and not times:
            outcome = reasons[0] if len(reasons) == 1 else "dead-lettered twice"
        elif times and not reasons:
            outcome = LANDS if times == 1 else "landed twice"
        elif times and reasons:
            outcome = "landed and dead-lettered"
        rows[case.kind][outcome] += 1
        if outcome != case.expected and not (case.expected == ONCE and outcome not in (NONE, "landed twice")):
            problems.append(f"{case.key.decode()}: expected {case.expected}, got {outcome}")
    return Tally(dict(rows), problems)


PRODUCT_VIEW = "com.freightline.web.ProductView"
CLICK = "com.freightline.web.ClickstreamEvent"


def _ingest_before_event(record: dict[str, Any]) -> dict[str, Any]:
    record["metadata"]["ingest_time"] = record["metadata"]["event_time"].replace(year=1999)
    return record


def _empty_product_id(record: dict[str, Any]) -> dict[str, Any]:
    record["product_id"] = ""
    return record


def product_view_cases(serde: AvroSerde, topic: str, **options: Any) -> list[Case]:
    """``fuzz_cases`` for a topic of product views (registered under its subject); the other contract is the
    clickstream's (registered under a subject of its own), with its decimal purchase details (values a sink's
    target may refuse: the MongoDB sink's FerretDB closes the connection on a Decimal128)."""
    from schemas.catalogue import example, load_schema

    view = serde.encoder(subject_for(topic), load_schema(PRODUCT_VIEW))
    click = serde.encoder(subject_for(f"{topic}-clicks"), load_schema(CLICK))

    def a_click() -> bytes:
        record = copy.deepcopy(example(CLICK))
        record["metadata"]["event_id"] = uuid.uuid4()
        return click.encode(record)

    return fuzz_cases(
        example(PRODUCT_VIEW),
        view.encode,
        other_contract=a_click,
        invariant_breakers={"ingest_before_event": _ingest_before_event, "empty_product_id": _empty_product_id},
        huge_field="device_id",
        **options,
    )


def produce_cases(config: Mapping[str, Any], topic: str, cases: Iterable[Case]) -> None:
    producer = Producer({**config, "enable.idempotence": True, "message.max.bytes": 2_000_000})
    for case in cases:
        producer.produce(topic, case.value, case.key, headers=case.headers or None)
    assert producer.flush(60) == 0


def dead_letter_reasons(kafka: KafkaSettings, serde: AvroSerde, dlq_topic: str) -> dict[bytes, list[str]]:
    """Original key -> the reasons of its dead letters on ``dlq_topic``."""
    reasons: dict[bytes, list[str]] = defaultdict(list)
    for letter in read_dead_letters(kafka, serde, dlq_topic):
        reasons[bytes(letter.envelope["original_key"])].append(letter.reason)
    return reasons
