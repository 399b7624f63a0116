from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from bson.decimal128 import Decimal128

from services.common.sinks.records import event_id_of, event_time_of, hour_partition
from services.sink_mongodb.settings import MongoSinkSettings
from services.sink_mongodb.target import to_bson


def test_event_id_and_time_fall_back_to_kafka_coordinates() -> None:
    event = uuid.uuid4()
    when = dt.datetime(2026, 11, 2, 8, 15, tzinfo=dt.UTC)
    value = {"metadata": {"event_id": event, "event_time": when}}
    assert event_id_of(value, "t", 1, 5) == str(event)
    assert event_time_of(value, None) == when
    assert event_id_of({}, "t", 1, 5) == "t+1+5"
    assert event_time_of({}, 1_793_607_300_000) == dt.datetime.fromtimestamp(1_793_607_300, tz=dt.UTC)
    assert hour_partition(when) == ("dt=2026-11-02", "hour=08")


def test_bson_conversion_keeps_decimals_exact() -> None:
    doc = to_bson({"amount": Decimal("259.80"), "day": dt.date(2026, 11, 2), "id": uuid.UUID(int=1), "xs": [1]})
    assert doc == {
        "amount": Decimal128("259.80"),
        "day": "2026-11-02",
        "id": "00000000-0000-0000-0000-000000000001",
        "xs": [1],
    }


def test_collections_per_topic() -> None:
    settings = MongoSinkSettings(topics="a.b.v1,c.v1", collections="a.b.v1=views")
    assert settings.topic_list() == ["a.b.v1", "c.v1"]
    assert settings.collection_for("a.b.v1") == "views"
    assert settings.collection_for("c.v1") == "c_v1"
