"""The splicing encoder writes exactly the full encoding, and splices only the embedded writer schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from schemas.catalogue import example, load_catalogue, load_schema
from services.common.serde import AvroSerde
from services.enricher import join
from services.enricher.codec import SplicingEncoder
from services.enricher.settings import OUTPUT_TOPICS, SOURCE_TOPICS
from tests.unit.common.test_serde import InMemoryRegistry

EMPTY = join.Lookups.from_mappings({}, {}, {}, {})


def _setup(kind: str) -> tuple[AvroSerde, SplicingEncoder, dict[str, Any], str]:
    catalogue = load_catalogue()
    serde = AvroSerde(InMemoryRegistry())
    enriched = load_schema(catalogue.topic(OUTPUT_TOPICS[kind]).value_schema)
    source_name = catalogue.topic(SOURCE_TOPICS[kind]).value_schema
    splicer = SplicingEncoder(serde, serde.encoder("out-value", enriched), enriched, load_schema(source_name))
    return serde, splicer, load_schema(source_name), source_name


@pytest.mark.parametrize("kind", join.EVENT_KINDS)
def test_spliced_bytes_equal_the_full_encoding(kind: str) -> None:
    serde, splicer, source_schema, source_name = _setup(kind)
    payload = serde.encoder("in-value", source_schema).encode(example(source_name))
    record = join.enrich(kind, serde.decode(payload), EMPTY, 1_800_000_000_000).record
    assert splicer.splicing and splicer.splices(payload) is None
    first = splicer.encode(record, payload)  # encoded both ways, compared
    assert splicer.splices(payload) is True
    assert splicer.encode(record, payload) == first == splicer.encoder.encode(record)


def test_another_writer_schema_is_fully_encoded() -> None:
    serde, splicer, source_schema, source_name = _setup(join.PRODUCT_VIEWS)
    evolved = copy.deepcopy(source_schema)
    evolved["fields"].append({"name": "campaign", "type": ["null", "string"], "default": None})
    payload = serde.encoder("in-value", evolved).encode({**example(source_name), "campaign": "autumn"})
    record = join.enrich(join.PRODUCT_VIEWS, serde.decode(payload), EMPTY, 0).record
    record["event"].pop("campaign")  # the enriched contract embeds the current event schema
    assert splicer.encode(record, payload) == splicer.encoder.encode(record)
    assert splicer.splices(payload) is False
