"""The enricher end to end on unique topics: enrichment on a known world, restart, SIGKILL mid-stream."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.catalogue import load_catalogue, load_schema
from services.common.kafka import Producer, producer_config
from services.common.serde import subject_for
from services.common.settings import KafkaSettings
from services.enricher import join
from tests.integration.crash import kill_in_flight, tally
from tests.integration.enricher import support

pytestmark = pytest.mark.integration

REFERENCE_TOPICS = {
    "product": "reference.products.v1",
    "customer": "reference.customers.v1",
    "store": "reference.stores.v1",
    "warehouse": "reference.warehouses.v1",
}


def _references(stack_env: dict[str, str], prefix: str, serde: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """The latest record per key of each reference topic, projected like the enricher does."""
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, topic in REFERENCE_TOPICS.items():
        table: dict[str, dict[str, Any]] = {}
        for record in support.decoded(stack_env, prefix + topic, serde):
            table[join.reference_key(kind, record)] = join.project_reference(kind, record)
        tables[kind] = table
    return tables


def _outputs(stack_env: dict[str, str], prefix: str, serde: Any) -> dict[str, list[dict[str, Any]]]:
    return {kind: support.decoded(stack_env, topic, serde) for kind, topic in support.output_topics(prefix).items()}


def _check_attributes(attributes: dict[str, Any], reference: dict[str, Any] | None, id_field: str) -> None:
    if attributes[id_field] is None:
        assert attributes["status"] == "NOT_APPLICABLE"
        return
    assert reference is not None, attributes
    assert attributes["status"] == "KNOWN", attributes
    for name, value in reference.items():
        expected = value if name != "price" else (None if value is None else __import__("decimal").Decimal(value))
        assert attributes[name] == expected, (name, attributes, reference)


def test_every_event_is_enriched_with_its_references(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique_name("enr") + "-"
    summary = support.run_generator(
        stack_env, prefix, 20_000, 21, GENERATOR_ANOMALIES_PER_MINUTE="0", GENERATOR_RATE_REFERENCE_UPDATES="0"
    )
    expected = support.expected_event_count(summary, prefix)
    process = support.start_enricher(stack_env, prefix, tmp_path / "data", tmp_path / "enricher.log")
    try:
        outputs = list(support.output_topics(prefix).values())
        size = support.wait_for_size(stack_env, outputs, expected, 240, process)
    finally:
        code = support.stop(process)
    assert code == 0, (tmp_path / "enricher.log").read_text()[-3000:]
    assert size >= expected

    serde = support.serde_for(stack_env)
    references = _references(stack_env, prefix, serde)
    enriched = _outputs(stack_env, prefix, serde)
    for kind, source in support.source_topics(prefix).items():
        inputs = support.decoded(stack_env, source, serde)
        produced = {str(r["event"]["metadata"]["event_id"]): r for r in enriched[kind]}
        missing = [e for e in inputs if str(e["metadata"]["event_id"]) not in produced]
        assert not missing, f"{len(missing)} {kind} events without an enriched record"
        for event in inputs[:: max(len(inputs) // 200, 1)]:  # every field on a sample
            record = produced[str(event["metadata"]["event_id"])]
            assert record["event"] == event
            metadata = record["metadata"]
            assert str(metadata["event_id"]) == join.enriched_event_id(kind, str(event["metadata"]["event_id"]))
            assert metadata["event_time"] == event["metadata"]["event_time"]
            assert metadata["ingest_time"] >= metadata["event_time"] and metadata["producer"] == "enricher"
            if kind == join.PRODUCT_VIEWS:
                _check_attributes(record["product"], references["product"].get(event["product_id"]), "product_id")
                _check_attributes(record["store"], references["store"].get(event["store_id"]), "store_id")
            elif kind == join.CLICKSTREAM:
                _check_attributes(record["product"], references["product"].get(event["product_id"] or ""), "product_id")
                _check_attributes(record["customer"], references["customer"].get(event["user_id"] or ""), "customer_id")
            elif kind == join.ORDERS:
                _check_attributes(record["customer"], references["customer"].get(event["customer_id"]), "customer_id")
                _check_attributes(record["store"], references["store"].get(event["store_id"]), "store_id")
                assert len(record["products"]) == len(event["line_items"])
                for line, attributes in zip(event["line_items"], record["products"], strict=True):
                    _check_attributes(attributes, references["product"].get(line["product_id"]), "product_id")
            else:
                _check_attributes(record["customer"], references["customer"].get(event["customer_id"]), "customer_id")
                _check_attributes(
                    record["warehouse"], references["warehouse"].get(event["warehouse_id"]), "warehouse_id"
                )


def _produce_views(stack_env: dict[str, str], prefix: str, serde: Any, count: int) -> list[str]:
    """New product views (fresh ids) of products and stores that exist in the reference data."""
    base = support.decoded(stack_env, prefix + "web.product_views.v1", serde)[:count]
    topic = prefix + "web.product_views.v1"
    encoder = serde.encoder(subject_for(topic), load_schema(load_catalogue().topic(topic[len(prefix) :]).value_schema))
    producer = Producer(producer_config(KafkaSettings(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"]), "test"))
    ids = []
    for view in base:
        view["metadata"]["event_id"] = str(uuid.uuid4())
        ids.append(view["metadata"]["event_id"])
        producer.produce(topic, encoder.encode(view), view["product_id"])
    producer.flush(30)
    return ids


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_restart_restores_reference_tables_without_reproducing_them(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path, store: str
) -> None:
    prefix = unique_name("enr-restart") + "-"
    summary = support.run_generator(stack_env, prefix, 3_000, 22, GENERATOR_ANOMALIES_PER_MINUTE="0")
    expected = support.expected_event_count(summary, prefix)
    outputs = list(support.output_topics(prefix).values())
    process = support.start_enricher(
        stack_env, prefix, tmp_path / "data", tmp_path / "enricher.log", ENRICHER_STORE=store
    )
    try:
        assert support.wait_for_size(stack_env, outputs, expected, 180, process) >= expected
    finally:
        assert support.stop(process) == 0
    references = {t: support.topic_size(stack_env, [prefix + t]) for t in REFERENCE_TOPICS.values()}

    serde = support.serde_for(stack_env)
    new_ids = _produce_views(stack_env, prefix, serde, 200)
    process = support.start_enricher(
        stack_env, prefix, tmp_path / "data", tmp_path / "enricher.log", ENRICHER_STORE=store
    )
    try:
        assert support.wait_for_size(stack_env, outputs, expected + len(new_ids), 180, process) >= expected + 200
    finally:
        assert support.stop(process) == 0
    # Nothing was re-produced to the reference topics between the runs.
    assert references == {t: support.topic_size(stack_env, [prefix + t]) for t in REFERENCE_TOPICS.values()}
    records = support.decoded(stack_env, prefix + "enriched.product_views.v1", serde)
    new = [r for r in records if str(r["event"]["metadata"]["event_id"]) in set(new_ids)]
    assert len({str(r["event"]["metadata"]["event_id"]) for r in new}) == len(new_ids)
    assert all(r["product"]["status"] == "KNOWN" and r["store"]["status"] == "KNOWN" for r in new)


def test_sigkill_mid_stream_loses_no_event(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique_name("enr-kill") + "-"
    summary = support.run_generator(stack_env, prefix, 30_000, 23, GENERATOR_ANOMALIES_PER_MINUTE="0")
    expected = support.expected_event_count(summary, prefix)
    outputs = list(support.output_topics(prefix).values())
    log = tmp_path / "enricher.log"
    sources = list(support.source_topics(prefix).values())
    kafka = {"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}
    process = support.start_enricher(stack_env, prefix, tmp_path / "data", log, ENRICHER_BATCH_SIZE="500")
    try:
        support.wait_for_size(stack_env, outputs, expected // 3, 180, process)
    finally:
        lag_at_kill = kill_in_flight(lambda: support.stop(process, signal.SIGKILL), kafka, f"{prefix}enricher", sources)
    assert 0 < lag_at_kill < expected, f"the kill hit no work in flight (lag {lag_at_kill})"
    assert support.topic_size(stack_env, outputs) < expected, "the kill came too late to test anything"
    process = support.start_enricher(stack_env, prefix, tmp_path / "data", log)
    try:
        assert support.wait_caught_up(stack_env, f"{prefix}enricher", sources, 240, process)
    finally:
        assert support.stop(process) == 0
    serde = support.serde_for(stack_env)
    enriched = _outputs(stack_env, prefix, serde)
    duplicates = 0
    for kind, source in support.source_topics(prefix).items():
        inputs = [str(r["metadata"]["event_id"]) for r in support.decoded(stack_env, source, serde)]
        ids = tally(inputs, (str(r["event"]["metadata"]["event_id"]) for r in enriched[kind]))
        # Every source event enriched, nothing else; each repeat counted (only uncommitted work is replayed).
        assert (ids.missing, ids.unexpected, ids.outputs) == (0, 0, ids.inputs + ids.duplicates), (kind, ids)
        assert len({str(r["metadata"]["event_id"]) for r in enriched[kind]}) == ids.inputs, kind
        duplicates += ids.duplicates
    print(f"sigkill: {expected} events enriched, {duplicates} duplicates (replayed), {lag_at_kill} in flight")
    assert sum(len(records) for records in enriched.values()) == expected + duplicates
    assert duplicates <= lag_at_kill


def test_poison_records_are_dead_lettered_once_and_unknown_references_marked(
    stack_env: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique_name("enr-poison") + "-"
    summary = support.run_generator(stack_env, prefix, 2_000, 24, GENERATOR_ANOMALIES_PER_MINUTE="0")
    expected = support.expected_event_count(summary, prefix)
    serde = support.serde_for(stack_env)
    topic = prefix + "web.product_views.v1"
    view = support.decoded(stack_env, topic, serde)[0]
    view["metadata"]["event_id"] = str(uuid.uuid4())
    view["product_id"] = "P-NOT-IN-REFERENCE-DATA"
    schema = load_schema(load_catalogue().topic("web.product_views.v1").value_schema)
    encoder = serde.encoder(subject_for(topic), schema)
    valid = encoder.encode(view)
    poison = [b"\x00not avro at all", valid[:-7]]  # garbage, then a truncated body behind a valid header
    producer = Producer(producer_config(KafkaSettings(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"]), "test"))
    for value in [poison[0], valid, poison[1]]:
        producer.produce(topic, value, b"poison-test")
    producer.flush(30)

    outputs = list(support.output_topics(prefix).values())
    process = support.start_enricher(stack_env, prefix, tmp_path / "data", tmp_path / "enricher.log")
    try:
        assert support.wait_for_size(stack_env, outputs, expected + 1, 180, process) >= expected + 1
        assert support.wait_for_size(stack_env, [topic + ".dlq"], 2, 60, process) == 2
        assert support.wait_caught_up(stack_env, f"{prefix}enricher", [topic], 60, process)
    finally:
        assert support.stop(process) == 0
    letters = support.decoded(stack_env, topic + ".dlq", serde)
    assert sorted(letter["original_value"] for letter in letters) == sorted(poison)
    assert all(letter["error_type"] and letter["error_message"] for letter in letters)
    records = support.decoded(stack_env, prefix + "enriched.product_views.v1", serde)
    marked = [r for r in records if str(r["event"]["metadata"]["event_id"]) == view["metadata"]["event_id"]]
    assert len(marked) == 1 and marked[0]["product"]["status"] == "UNKNOWN"
    assert marked[0]["product"]["product_id"] == "P-NOT-IN-REFERENCE-DATA" and marked[0]["product"]["name"] is None
    assert support.topic_size(stack_env, outputs) == expected + 1
