"""The product-views job's tumbling-window aggregation written with Quix Streams: the Python peer of ``bench_flink``.

Runs in the Quix Streams environment (``deploy/bootstrap/envs/quix``; quixstreams pins its own confluent-kafka):
``python tests/bench/quix_windows.py CONFIG.json``. Per product (the source is keyed by product id: Quix windows
group by the message key) and 1-minute event-time window (``metadata.event_time``, Quix's timestamp extractor, with
the out-of-orderness bound as grace): views, distinct devices and the latest view time, one ``Reduce`` (Quix has no
distinct count); each closed window (``final()``) goes to the output topic as a ``ProductViewsWindow`` through
Quix's registry-backed Avro serializer, with the envelope the Flink job writes, at Quix's defaults (at least once,
its default commit interval). Runs until SIGTERM.

CONFIG: ``{"bootstrap", "registry_url", "group", "state_dir", "source", "output", "schema", "grace_ms"}``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from typing import Any

from quixstreams.dataframe.windows.aggregations import Reduce
from quixstreams.models.serializers.avro import AvroDeserializer, AvroSerializer
from quixstreams.models.serializers.schema_registry import (
    SchemaRegistryClientConfig,
    SchemaRegistrySerializationConfig,
)

from tests.bench.quix_enricher import application

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def event_time_ms(value: dict[str, Any], *_: Any) -> int:
    return int((value["metadata"]["event_time"] - EPOCH).total_seconds() * 1000)


def initial(value: dict[str, Any]) -> dict[str, Any]:
    return {"views": 1, "devices": {value["device_id"]: 1}, "last": event_time_ms(value)}


def add(state: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    state["views"] += 1
    state["devices"][value["device_id"]] = 1
    state["last"] = max(state["last"], event_time_ms(value))
    return state


def window_record(product_id: str, window: dict[str, Any]) -> dict[str, Any]:
    """The ``ProductViewsWindow`` of a closed window (``{"start", "end", "window": state}``), its envelope as the
    Flink job's (event id from key and start)."""
    start, end, state = window["start"], window["end"], window["window"]
    start_time = EPOCH + dt.timedelta(milliseconds=start)
    digest = hashlib.md5(f"{product_id}|{start_time:%Y-%m-%d %H:%M:%S.%f}"[:-3].encode()).hexdigest()
    event_id = f"{digest[:8]}-{digest[8:12]}-3{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"
    return {
        "metadata": {
            "event_id": event_id,
            "event_time": EPOCH + dt.timedelta(milliseconds=end),
            "ingest_time": dt.datetime.now(dt.UTC),
            "producer": "quix-product-views",
            "trace_context": None,
        },
        "product_id": product_id,
        "window_start": start_time,
        "window_end": EPOCH + dt.timedelta(milliseconds=end),
        "view_count": state["views"],
        "unique_visitors": len(state["devices"]),
        "last_view_time": EPOCH + dt.timedelta(milliseconds=state["last"]),
    }


def main(path: str) -> None:
    with open(path) as file:
        config = json.load(file)
    registry = SchemaRegistryClientConfig(url=config["registry_url"])
    app = application(config)
    source = app.topic(
        config["source"],
        key_deserializer="str",
        value_deserializer=AvroDeserializer(schema_registry_client_config=registry),
        timestamp_extractor=event_time_ms,
    )
    output = app.topic(
        config["output"],
        key_serializer="string",
        value_serializer=AvroSerializer(
            config["schema"],
            schema_registry_client_config=registry,
            schema_registry_serialization_config=SchemaRegistrySerializationConfig(auto_register_schemas=True),
        ),
    )
    sdf = app.dataframe(source)
    sdf = sdf.tumbling_window(60_000, grace_ms=config["grace_ms"]).agg(window=Reduce(add, initial)).final()
    sdf = sdf.apply(lambda window, key, *_: window_record(key, window), metadata=True)
    sdf.to_topic(output, key=lambda record: record["product_id"])
    app.run()


if __name__ == "__main__":
    main(sys.argv[1])
