"""Shared library: the Avro serde against confluent-kafka's serializers, the producer against a raw loop."""

from __future__ import annotations

import copy
import time
import uuid
from decimal import Decimal
from typing import Any

from confluent_kafka import Producer as RawProducer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas.catalogue import example, load_schema
from services.common.kafka import Producer, ensure_topics, producer_config
from services.common.serde import AvroSerde, subject_for
from services.common.settings import KafkaSettings

# Two real contracts: the highest-volume event (a product view) and a money-heavy one (an order with lines).
VIEW = "com.freightline.web.ProductView"
ORDER = "com.freightline.commerce.Order"


def records(full_name: str, n: int) -> list[dict[str, Any]]:
    """``n`` distinct records of a contract, varied from its validated example."""
    base = example(full_name)
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        record = copy.deepcopy(base)
        record["metadata"]["event_id"] = str(uuid.UUID(int=i + 1))
        record["metadata"]["event_time"] = now + i
        record["metadata"]["ingest_time"] = now + i + 5
        if full_name == VIEW:
            record["product_id"] = f"P-{i % 5000:05d}"
            record["device_id"] = f"dev-{i % 100000:06x}"
        else:
            record["order_id"] = f"O-{i:09d}"
            for j, line in enumerate(record["line_items"]):
                line["quantity"] = 1 + (i + j) % 5
                line["price"] = Decimal(f"{1 + (i % 9000) / 100:.2f}")
                line["sales_amount"] = line["price"] * line["quantity"]
            record["order_total"] = sum(line["sales_amount"] for line in record["line_items"])
        out.append(record)
    return out


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _best_of(repeats: int, fn: Any) -> float:
    return min(_timed(fn) for _ in range(repeats))


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def serde_rows(env: dict[str, str], full_name: str, n: int = 50_000) -> list[dict[str, Any]]:
    import json

    topic = f"bench.serde.{uuid.uuid4().hex[:8]}"
    schema = load_schema(full_name)
    label = full_name.rsplit(".", 1)[-1]
    registry = SchemaRegistryClient({"url": env["SCHEMA_REGISTRY_URL"]})
    ours = AvroSerde(registry)
    encoder = ours.encoder(subject_for(topic), schema)
    theirs_ser = AvroSerializer(
        registry,
        json.dumps(schema),
        conf={"auto.register.schemas": True, "subject.name.strategy": lambda ctx, name: f"{ctx.topic}-value"},
    )
    theirs_de = AvroDeserializer(registry)
    ctx = SerializationContext(topic, MessageField.VALUE)
    data = records(full_name, n)
    encode = encoder.encode
    ours_encoded: list[bytes] = []
    theirs_encoded: list[bytes] = []

    def ours_enc() -> None:
        ours_encoded[:] = [encode(r) for r in data]

    def theirs_enc() -> None:
        theirs_encoded[:] = [theirs_ser(r, ctx) for r in data]  # type: ignore[misc]

    ours_enc()  # warm caches (registration, parsing)
    theirs_enc()
    t_ours_enc, t_theirs_enc = _best_of(3, ours_enc), _best_of(3, theirs_enc)
    decode = ours.decode

    def ours_dec() -> None:
        for b in theirs_encoded:
            decode(b)

    def theirs_dec() -> None:
        for b in ours_encoded:
            theirs_de(b, ctx)

    ours_dec()
    theirs_dec()
    t_ours_dec, t_theirs_dec = _best_of(3, ours_dec), _best_of(3, theirs_dec)
    assert ours.decode(theirs_encoded[0]) == theirs_de(ours_encoded[0], ctx)  # same bytes on the wire
    return [
        _row(
            f"serde.encode[{label}]",
            _rate(n, t_ours_enc),
            "confluent_kafka AvroSerializer",
            _rate(n, t_theirs_enc),
            "records/s",
            ">= 2x",
        ),
        _row(
            f"serde.decode[{label}]",
            _rate(n, t_ours_dec),
            "confluent_kafka AvroDeserializer",
            _rate(n, t_theirs_dec),
            "records/s",
            ">= 3x",
        ),
    ]


def producer_rows(env: dict[str, str], full_name: str, n: int = 200_000) -> list[dict[str, Any]]:
    kafka = KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])
    registry = SchemaRegistryClient({"url": env["SCHEMA_REGISTRY_URL"]})
    suffix = uuid.uuid4().hex[:8]
    ours_topic, raw_topic = f"bench.producer.{suffix}", f"bench.raw.{suffix}"
    ensure_topics(kafka.client_config(), [(ours_topic, 3, {}), (raw_topic, 3, {})])
    schema = load_schema(full_name)
    data = records(full_name, n)
    serde = AvroSerde(registry)
    raw_encoder = serde.encoder(subject_for(raw_topic), schema)
    pre_encoded = [raw_encoder.encode(r) for r in data]
    keys = [r["metadata"]["event_id"] for r in data]

    def ours() -> None:
        producer = Producer(producer_config(kafka, "bench-ours"), report_successes=False)
        encoder = serde.encoder(subject_for(ours_topic), schema)
        for record, key in zip(data, keys, strict=True):
            producer.produce(ours_topic, encoder.encode(record), key)
        producer.flush()
        assert producer.delivered == n

    def ours_pre_encoded() -> None:
        producer = Producer(producer_config(kafka, "bench-ours-bytes"), report_successes=False)
        for value, key in zip(pre_encoded, keys, strict=True):
            producer.produce(ours_topic, value, key)
        producer.flush()
        assert producer.delivered == n

    def raw() -> None:
        producer = RawProducer(producer_config(kafka, "bench-raw"))
        for value, key in zip(pre_encoded, keys, strict=True):
            while True:
                try:
                    producer.produce(raw_topic, value, key)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        assert producer.flush(60) == 0

    t_raw_first = _timed(raw)
    t_ours = _timed(ours)
    t_ours_bytes = _timed(ours_pre_encoded)
    t_raw = min(t_raw_first, _timed(raw))
    label = full_name.rsplit(".", 1)[-1]
    return [
        _row(
            f"producer.pre_encoded_throughput[{label}]",
            _rate(n, t_ours_bytes),
            "raw confluent_kafka loop, pre-encoded bytes",
            _rate(n, t_raw),
            "records/s",
            "wrapper overhead (no goal)",
        ),
        _row(
            f"producer.avro_throughput[{label}]",
            _rate(n, t_ours),
            "raw confluent_kafka loop, pre-encoded bytes",
            _rate(n, t_raw),
            "records/s",
            ">= 0.5x",
        ),
    ]


def _row(name: str, value: float, baseline_name: str, baseline: float, unit: str, goal: str) -> dict[str, Any]:
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline_name": baseline_name,
        "baseline_value": baseline,
        "ratio": value / baseline,
        "goal": goal,
    }


def run(env: dict[str, str]) -> list[dict[str, Any]]:
    return [
        *serde_rows(env, VIEW),
        *serde_rows(env, ORDER),
        *producer_rows(env, VIEW),
        *producer_rows(env, ORDER, n=100_000),
    ]


if __name__ == "__main__":
    from pathlib import Path

    from tests.conftest import _read_env

    for row in run(_read_env(Path(".freightline/stack.env"))):
        print(row)
