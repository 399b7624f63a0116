"""The reference reader on a real compacted topic: read to the end before anything is enriched, then followed;
the RocksDB store resumes from the offsets it kept."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from schemas.catalogue import example, load_schema
from services.common.serde import AvroSerde, registry_client, subject_for
from services.common.settings import KafkaSettings, SchemaRegistrySettings
from services.enricher import join, reference

PARTITIONS = 3


def _product(product_id: str, price: str) -> dict[str, Any]:
    record = example("com.freightline.reference.Product")
    record["product_id"], record["price"], record["name"] = product_id, Decimal(price), f"product {product_id}"
    return record


class World:
    """A compacted reference topic, what was produced to it, and what a table must hold."""

    def __init__(self, stack_env: dict[str, str], topic: str) -> None:
        self.kafka = KafkaSettings(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
        self.topic = topic
        self.serde = AvroSerde(registry_client(SchemaRegistrySettings(url=stack_env["SCHEMA_REGISTRY_URL"])))
        self.encoder = self.serde.encoder(subject_for(topic), load_schema("com.freightline.reference.Product"))
        self.producer = Producer({"bootstrap.servers": self.kafka.bootstrap_servers, "linger.ms": 0})
        self.expected: dict[str, dict[str, Any]] = {}
        self.errors: list[str] = []

    def put(self, product_id: str, price: str) -> None:
        record = _product(product_id, price)
        self.producer.produce(self.topic, self.encoder.encode(record), product_id.encode())
        self.expected[product_id] = join.project_reference(join.PRODUCT, record)

    def delete(self, product_id: str) -> None:
        self.producer.produce(self.topic, None, product_id.encode())
        self.expected.pop(product_id, None)

    def garbage(self, product_id: str) -> None:
        self.producer.produce(self.topic, b"\x07not the wire format", product_id.encode())
        self.expected.pop(product_id, None)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0

    def table(self, store: str, directory: Path) -> reference.ReferenceTable:
        project = reference.projector(join.PRODUCT, self.serde, lambda kind, error: self.errors.append(kind))
        return reference.open_table(store, directory, self.topic, project)

    def reader(self, table: reference.ReferenceTable) -> reference.ReferenceReader:
        return reference.ReferenceReader(self.kafka, {self.topic: table}, client_id=f"{self.topic}-reader")

    def holds(self, table: reference.ReferenceTable) -> dict[str, Any]:
        keys = set(self.expected) | {f"P-{i}" for i in range(400)}
        return {key: table.lookup(key) for key in keys if table.lookup(key) is not None}


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout  # a hang guard, not a timed assertion
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_recovery_reads_every_reference_to_the_end_then_follows_updates(
    stack_env: dict[str, str], new_topic: Callable[..., str], tmp_path: Path, store: str
) -> None:
    world = World(stack_env, new_topic("ref", PARTITIONS, **{"cleanup.policy": "compact"}))
    for i in range(300):
        world.put(f"P-{i}", f"{i}.50")
    for i in range(0, 300, 7):  # price changes: the latest value wins
        world.put(f"P-{i}", f"{i}.99")
    world.delete("P-3")  # a tombstone removes the entity
    world.garbage("P-5")  # undecodable: the entity stays unknown, counted
    world.flush()

    table = world.table(store, tmp_path)
    reader = world.reader(table)
    try:
        assert reader.recover() == 300 + 43 + 2
        # Everything is there as soon as recover returns: nothing is read in the background yet.
        assert world.holds(table) == world.expected
        assert len(table) == len(world.expected) == 298
        assert world.errors == [join.PRODUCT]

        reader.start()
        world.put("P-1", "1.01")
        world.put("P-300", "3.00")
        world.delete("P-2")
        world.flush()
        _wait_for(lambda: table.lookup("P-2") is None and table.lookup("P-300") is not None)
        assert world.holds(table) == world.expected
        assert len(table) == 298
    finally:
        reader.stop()


def test_the_rocksdb_store_resumes_from_the_offsets_it_kept(
    stack_env: dict[str, str], new_topic: Callable[..., str], tmp_path: Path
) -> None:
    world = World(stack_env, new_topic("ref", PARTITIONS, **{"cleanup.policy": "compact"}))
    for i in range(100):
        world.put(f"P-{i}", f"{i}.10")
    world.flush()
    reader = world.reader(world.table("rocksdb://", tmp_path))
    assert reader.recover() == 100
    reader.stop()

    world.put("P-0", "9.99")
    world.put("P-100", "1.00")
    world.delete("P-1")
    world.flush()
    table = world.table("rocksdb://", tmp_path)
    reader = world.reader(table)
    try:
        assert reader.recover() == 3  # only what arrived since the last run
        assert world.holds(table) == world.expected
        assert len(table) == 100
    finally:
        reader.stop()
