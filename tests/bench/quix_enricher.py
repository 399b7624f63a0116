"""The enricher's enrichment written with Quix Streams: the peer of ``bench_enricher``.

Runs in the Quix Streams environment (``deploy/bootstrap/envs/quix``; quixstreams pins its own confluent-kafka)
with the repository on ``PYTHONPATH``: ``python tests/bench/quix_enricher.py CONFIG.json``. It does what the
Faust service does, the way a Quix Streams application is written: reference topics read into lookup dicts
first, then one ``StreamingDataFrame`` per source topic with Quix's registry-backed Avro deserializer, the same
pure enrichment (:mod:`services.enricher.join`, standard library only) and Quix's registry-backed Avro
serializer for the enriched topic, at least once, at Quix's default commit interval. Runs until SIGTERM.

CONFIG: ``{"bootstrap", "registry_url", "group", "state_dir", "references": {kind: topic},
"topics": {kind: [source, output]}, "schemas": {kind: enriched schema}}``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer as RegistryDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from quixstreams import Application
from quixstreams.models.serializers.avro import AvroDeserializer, AvroSerializer
from quixstreams.models.serializers.schema_registry import (
    SchemaRegistryClientConfig,
    SchemaRegistrySerializationConfig,
)

from services.enricher import join

KEY_FIELDS = {
    join.PRODUCT_VIEWS: "product_id",
    join.CLICKSTREAM: "session_id",
    join.ORDERS: "order_id",
    join.SHIPMENT_EVENTS: "shipment_id",
}


def load_references(config: dict[str, Any]) -> join.Lookups:
    """Every reference topic read to its end into ``id -> projected attributes``."""
    deserialize = RegistryDeserializer(SchemaRegistryClient({"url": config["registry_url"]}))
    tables: dict[str, dict[str, Any]] = {}
    for kind, topic in config["references"].items():
        consumer = Consumer({"bootstrap.servers": config["bootstrap"], "group.id": "quix-references"})
        table: dict[str, Any] = {}
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            ends = {}
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high > low:
                    ends[p] = high
            consumer.assign([TopicPartition(topic, p, 0) for p in ends])
            while ends:
                message = consumer.poll(1.0)
                if message is None or message.error():
                    continue
                context = SerializationContext(topic, MessageField.VALUE)
                record = deserialize(message.value(), context)
                table[join.reference_key(kind, record)] = join.project_reference(kind, record)
                partition, offset = message.partition() or 0, message.offset() or 0
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
        finally:
            consumer.close()
        tables[kind] = table
    return join.Lookups.from_mappings(tables["product"], tables["customer"], tables["store"], tables["warehouse"])


def application(config: dict[str, Any]) -> Application:
    """A Quix Streams application at its defaults (at least once, default commit interval), from the earliest."""
    return Application(
        broker_address=config["bootstrap"],
        consumer_group=config["group"],
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        state_dir=config["state_dir"],
        loglevel="WARNING",
    )


def main(path: str) -> None:
    with open(path) as file:
        config = json.load(file)
    lookups = load_references(config)
    registry = SchemaRegistryClientConfig(url=config["registry_url"])
    app = application(config)
    for kind, (source, output) in config["topics"].items():
        key_field = KEY_FIELDS[kind]
        deserializer = AvroDeserializer(schema_registry_client_config=registry)
        source_topic = app.topic(source, key_deserializer="bytes", value_deserializer=deserializer)
        output_topic = app.topic(
            output,
            key_serializer="string",
            value_serializer=AvroSerializer(
                config["schemas"][kind],
                schema_registry_client_config=registry,
                schema_registry_serialization_config=SchemaRegistrySerializationConfig(auto_register_schemas=True),
            ),
        )

        def enrich(value: dict[str, Any], kind: str = kind) -> dict[str, Any]:
            return join.enrich(kind, value, lookups, int(time.time() * 1000), "enricher-quix").record

        sdf = app.dataframe(source_topic).apply(enrich)
        sdf.to_topic(output_topic, key=lambda record, key_field=key_field: str(record["event"][key_field]))
    app.run()


if __name__ == "__main__":
    main(sys.argv[1])
