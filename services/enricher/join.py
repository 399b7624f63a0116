"""Pure enrichment: reference projections, lookups with explicit UNKNOWN markers, and the enriched records.

Nothing here touches a broker: the agents decode a source event, call ``enrich`` (the references joined into
each event kind: ``EVENT_JOINS``) with a :class:`Lookups` (the Faust tables in the service, plain dicts in tests)
and encode the result. Reference records
are projected to small JSON-safe dicts (:func:`project_reference`) before they are stored in a table, so a
table holds only what enrichment needs; decimals travel as strings and are rebuilt on lookup.

Every lookup yields a status: ``KNOWN`` (found), ``UNKNOWN`` (the event names an entity the reference data does
not hold: the explicit marker, never a dropped event) or ``NOT_APPLICABLE`` (the event names none).
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

KNOWN = "KNOWN"
UNKNOWN = "UNKNOWN"
NOT_APPLICABLE = "NOT_APPLICABLE"

# Reference kinds (table names, metric labels).
PRODUCT = "product"
CUSTOMER = "customer"
STORE = "store"
WAREHOUSE = "warehouse"
GEO = "geo"
REFERENCE_KINDS = (PRODUCT, CUSTOMER, STORE, WAREHOUSE)

# Event kinds: the source family of an enriched record.
PRODUCT_VIEWS = "product_views"
CLICKSTREAM = "clickstream"
ORDERS = "orders"
SHIPMENT_EVENTS = "shipment_events"
EVENT_KINDS = (PRODUCT_VIEWS, CLICKSTREAM, ORDERS, SHIPMENT_EVENTS)

# Namespace of the enriched records' event ids: uuid5(namespace, "<kind>:<source event id>") is stable across
# replays, so consumers downstream deduplicate replays on metadata.event_id.
ENRICHED_ID_NAMESPACE = uuid.UUID("6f1d2c1e-7d4b-5b8e-9a51-2f7e0c3d9b10")

Reference = Mapping[str, Any]
Lookup = Callable[[str], Reference | None]


ATTRIBUTE_CACHE_LIMIT = 200_000  # entries per reference kind (bounded memory)


@dataclass
class Lookups:
    """One lookup function per reference kind (``None`` when the key is not in the reference data).

    The attributes built for a known entity are cached while the lookup keeps returning the same reference
    object (a table update replaces it, which rebuilds them); records share the cached dicts, read only.
    """

    product: Lookup
    customer: Lookup
    store: Lookup
    warehouse: Lookup
    _cache: dict[str, dict[str, tuple[Reference, dict[str, Any]]]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_mappings(
        cls,
        products: Mapping[str, Reference],
        customers: Mapping[str, Reference],
        stores: Mapping[str, Reference],
        warehouses: Mapping[str, Reference],
    ) -> Lookups:
        return cls(products.get, customers.get, stores.get, warehouses.get)

    def cached(self, kind: str, entity_id: str, ref: Reference, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        cache = self._cache.get(kind)
        if cache is None:
            cache = self._cache[kind] = {}
        hit = cache.get(entity_id)
        if hit is not None and hit[0] is ref:
            return hit[1]
        attributes = build()
        if len(cache) >= ATTRIBUTE_CACHE_LIMIT:
            cache.clear()
        cache[entity_id] = (ref, attributes)
        return attributes


@dataclass
class Enriched:
    """An enriched record, its key, and the reference kinds that were UNKNOWN in it (one entry per miss)."""

    record: dict[str, Any]
    key: str
    unknown: list[str] = field(default_factory=list)


# -- reference projections ---------------------------------------------------------------------------------

_REFERENCE_FIELDS: dict[str, tuple[str, ...]] = {
    PRODUCT: ("name", "category", "subcategory", "brand", "price", "currency"),
    CUSTOMER: ("segment", "region", "country"),
    STORE: ("name", "country", "currency", "timezone"),
    WAREHOUSE: ("name", "country", "city"),
}
_KEY_FIELDS = {PRODUCT: "product_id", CUSTOMER: "customer_id", STORE: "store_id", WAREHOUSE: "warehouse_id"}


def reference_key(kind: str, record: Mapping[str, Any]) -> str:
    """The entity id of a decoded reference record."""
    return str(record[_KEY_FIELDS[kind]])


def project_reference(kind: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-safe attributes of a decoded reference record that enrichment needs (decimals as strings)."""
    projected: dict[str, Any] = {}
    for name in _REFERENCE_FIELDS[kind]:
        value = record[name]
        projected[name] = str(value) if isinstance(value, Decimal) else value
    return projected


# -- attributes --------------------------------------------------------------------------------------------


def _known_product(product_id: str, ref: Reference) -> dict[str, Any]:
    price = ref.get("price")
    return {
        "product_id": product_id,
        "status": KNOWN,
        "name": ref.get("name"),
        "category": ref.get("category"),
        "subcategory": ref.get("subcategory"),
        "brand": ref.get("brand"),
        "price": Decimal(price) if price is not None else None,
        "currency": ref.get("currency"),
    }


def _attributes(
    kind: str, id_field: str, entity_id: str | None, lookups: Lookups, unknown: list[str]
) -> dict[str, Any]:
    fields = _REFERENCE_FIELDS[kind]
    if entity_id is None:
        return {id_field: None, "status": NOT_APPLICABLE, **dict.fromkeys(fields)}
    ref = getattr(lookups, kind)(entity_id)
    if ref is None:
        unknown.append(kind)
        return {id_field: entity_id, "status": UNKNOWN, **dict.fromkeys(fields)}
    if kind == PRODUCT:
        return lookups.cached(kind, entity_id, ref, lambda: _known_product(entity_id, ref))
    return lookups.cached(
        kind, entity_id, ref, lambda: {id_field: entity_id, "status": KNOWN, **{name: ref.get(name) for name in fields}}
    )


def product_attributes(product_id: str | None, lookups: Lookups, unknown: list[str]) -> dict[str, Any]:
    return _attributes(PRODUCT, "product_id", product_id, lookups, unknown)


def customer_attributes(customer_id: str | None, lookups: Lookups, unknown: list[str]) -> dict[str, Any]:
    return _attributes(CUSTOMER, "customer_id", customer_id, lookups, unknown)


def store_attributes(store_id: str | None, lookups: Lookups, unknown: list[str]) -> dict[str, Any]:
    return _attributes(STORE, "store_id", store_id, lookups, unknown)


def warehouse_attributes(warehouse_id: str | None, lookups: Lookups, unknown: list[str]) -> dict[str, Any]:
    return _attributes(WAREHOUSE, "warehouse_id", warehouse_id, lookups, unknown)


# -- envelopes ---------------------------------------------------------------------------------------------


_NAMESPACE_BYTES = ENRICHED_ID_NAMESPACE.bytes


def enriched_event_id(kind: str, source_event_id: str) -> str:
    """Stable id of the enriched record of a source event (the same on every replay):
    ``str(uuid.uuid5(ENRICHED_ID_NAMESPACE, f"{kind}:{source_event_id}"))``, computed without the UUID object."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{kind}:{source_event_id}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def enriched_metadata(kind: str, source: Mapping[str, Any], now_ms: int, producer: str) -> dict[str, Any]:
    """Envelope of an enriched record: the source's event time, a derived id, the enrichment time as ingest time."""
    metadata = source["metadata"]
    event_time = _millis(metadata["event_time"])
    return {
        "event_id": enriched_event_id(kind, str(metadata["event_id"])),
        "event_time": event_time,
        "ingest_time": max(int(now_ms), event_time),
        "producer": producer,
        "trace_context": metadata.get("trace_context"),
    }


def _millis(value: Any) -> int:
    """Milliseconds of a timestamp-millis value (an int, or a datetime from readers that convert it)."""
    if isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)


# -- enrichment --------------------------------------------------------------------------------------------


Attributes = Callable[[str | None, Lookups, list[str]], dict[str, Any]]


@dataclass(frozen=True)
class Join:
    """One reference joined into an enriched record: its attributes function and the event field naming the
    entity; with ``items``, the event's list whose every item names one (the record field holds a list)."""

    attributes: Attributes
    id_field: str
    items: str | None = None


# Per event kind: the event field keying the enriched record, and the references joined into it by record field
# (in this order: the order of ``Enriched.unknown``).
EVENT_JOINS: dict[str, tuple[str, dict[str, Join]]] = {
    PRODUCT_VIEWS: (
        "product_id",
        {"product": Join(product_attributes, "product_id"), "store": Join(store_attributes, "store_id")},
    ),
    CLICKSTREAM: (
        "session_id",
        {"product": Join(product_attributes, "product_id"), "customer": Join(customer_attributes, "user_id")},
    ),
    ORDERS: (
        "order_id",
        {
            "customer": Join(customer_attributes, "customer_id"),
            "store": Join(store_attributes, "store_id"),
            "products": Join(product_attributes, "product_id", items="line_items"),
        },
    ),
    SHIPMENT_EVENTS: (
        "shipment_id",
        {"customer": Join(customer_attributes, "customer_id"), "warehouse": Join(warehouse_attributes, "warehouse_id")},
    ),
}


def enrich(kind: str, event: dict[str, Any], lookups: Lookups, now_ms: int, producer: str = "enricher") -> Enriched:
    """Enrich one decoded source event of ``kind`` (one of :data:`EVENT_KINDS`): its envelope, the event, and the
    attributes of every reference :data:`EVENT_JOINS` names for it (an id that is null: ``NOT_APPLICABLE``)."""
    key_field, joins = EVENT_JOINS[kind]
    unknown: list[str] = []
    record: dict[str, Any] = {"metadata": enriched_metadata(kind, event, now_ms, producer), "event": event}
    for name, join in joins.items():
        if join.items is None:
            record[name] = join.attributes(event.get(join.id_field), lookups, unknown)
        else:
            record[name] = [join.attributes(item.get(join.id_field), lookups, unknown) for item in event[join.items]]
    return Enriched(record, str(event[key_field]), unknown)


# -- geo lookup --------------------------------------------------------------------------------------------

# The packaged prefix table (a small sample: documentation and private ranges plus a few well-known blocks) is
# data, not code: deployments with a real geo database pass their own table through ``GeoLookup(prefixes)``.
GEO_PREFIXES_FILE = Path(__file__).with_name("geo_prefixes.csv")


def load_geo_prefixes(path: Path = GEO_PREFIXES_FILE) -> dict[str, str]:
    """``network -> country`` from a ``network,country`` CSV file (``#`` starts a comment line)."""
    table: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            network, country = (part.strip() for part in line.split(",", 1))
            table[network] = country
    return table


class GeoLookup:
    """Longest-prefix match of an IP address to an ISO 3166-1 alpha-2 country (``None`` when unknown)."""

    def __init__(self, prefixes: Mapping[str, str] | None = None) -> None:
        table = load_geo_prefixes() if prefixes is None else prefixes
        networks = [(ipaddress.ip_network(prefix), country) for prefix, country in table.items()]
        # Longest prefixes first, so the first match is the most specific one.
        self._networks = sorted(networks, key=lambda item: item[0].prefixlen, reverse=True)
        self._cache: dict[str, str | None] = {}

    def country(self, ip: str | None) -> str | None:
        if not ip:
            return None
        cached = self._cache.get(ip, "")
        if cached != "":
            return cached
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            result = None
        else:
            result = next((country for network, country in self._networks if address in network), None)
        if len(self._cache) < 100_000:
            self._cache[ip] = result
        return result
