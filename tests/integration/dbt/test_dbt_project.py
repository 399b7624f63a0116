"""The dbt project (dbt/) on a generated world (conftest.py, world.py): one dbt build, green; the reference data as
loaded by the Spark job; headline marts against a plain-Python oracle of the same events; docs and lint; source
freshness failing on a stale source; an incremental run after late arrivals equal to a full refresh."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
import pytest

from batch_spark.contract import family
from deploy.dbt import DBT_PROJECT, freshness_results, lint, summarize_build, summarize_freshness
from schemas.topics import REFERENCE_PRODUCTS
from tests.integration.batch_spark.support import raw_row
from tests.integration.dbt.conftest import Built
from tests.integration.dbt.world import REFERENCE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def rows(built: Built, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(built.env["POSTGRES_DSN"]) as conn:
        return list(conn.execute(query.encode()).fetchall())


def test_dbt_build_is_green_and_builds_every_model(built: Built) -> None:
    counts = summarize_build(built.build)
    assert built.build_code == 0, built.build_output[-5000:]
    assert {key for key in counts if key.split(":")[1] not in ("success", "pass", "no-op")} == set(), counts
    assert counts["exposure:no-op"] == 5
    assert counts["model:success"] == len(list((DBT_PROJECT / "models").rglob("*.sql")))
    assert counts["snapshot:success"] == 4
    assert counts["unit_test:pass"] == 2
    assert counts["test:pass"] > 100


def test_reference_tables_hold_the_latest_record_per_key(built: Built) -> None:
    latest: dict[str, dict[str, Any]] = defaultdict(dict)
    for record in built.world.reference:  # in produce order: the last record of a key is its current state
        latest[record.topic][record.key] = record
    for topic, key in REFERENCE.items():
        table = f"raw.reference_{topic.split('.')[1]}"
        found = {k: (str(e), u) for k, e, u in rows(built, f"SELECT {key}, event_id, updated_at FROM {table}")}
        expected = {
            k: (str(r.value["metadata"]["event_id"]), dt.datetime.fromtimestamp(r.event_time_ms / 1000, dt.UTC))
            for k, r in latest[topic].items()
        }
        assert found == expected, table
    prices = dict(rows(built, "SELECT product_id, price FROM raw.reference_products"))
    products = latest[REFERENCE_PRODUCTS]
    assert prices == {k: r.value["price"] for k, r in products.items()}
    changes = sum(1 for r in built.world.reference if r.topic == REFERENCE_PRODUCTS) - len(products)
    assert changes > 0  # price changes happened: the table holds the latest price, not the first


def test_revenue_per_store_per_day_equals_the_oracle(built: Built) -> None:
    placed: dict[str, dict[str, Any]] = {}
    for order in sorted(built.world.clean()["orders"], key=lambda o: o["metadata"]["event_time"]):
        if order["status"] == "PLACED":
            placed.setdefault(order["order_id"], order)  # an order's first PLACED event
    expected: dict[tuple[str, str, dt.date], list[Any]] = defaultdict(lambda: [0, 0, Decimal("0.00")])
    for order in placed.values():
        day = order["metadata"]["event_time"].astimezone(dt.UTC).date()
        figures = expected[(order["store_id"], order["currency"], day)]
        figures[0] += 1
        figures[1] += sum(line["quantity"] for line in order["line_items"])
        figures[2] += order["order_total"]
    found = rows(
        built,
        "SELECT store_id, currency, revenue_date, order_count, item_count, revenue "
        "FROM commerce.mart_store_revenue_daily",
    )
    assert {(s, c, d): [n, i, r] for s, c, d, n, i, r in found} == dict(expected)
    assert len(placed) > 100


def test_on_time_rate_per_route_and_carrier_equals_the_oracle(built: Built) -> None:
    shipments: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in built.world.clean()["shipment_events"]:
        shipments[event["shipment_id"]].append(event)
    per_route: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # shipments, delivered, on time
    for events in shipments.values():
        booking = min(events, key=lambda e: (e["sequence_number"], e["metadata"]["event_time"]))
        delivered = [e["actual_delivery_date"] for e in events if e["actual_delivery_date"] is not None]
        figures = per_route[(booking["route_id"], booking["carrier"])]
        figures[0] += 1
        if any(e["status"] == "DELIVERED" for e in events):
            figures[1] += 1
            figures[2] += max(delivered) <= booking["estimated_delivery_date"]
    expected = {
        route: (n, d, t, (Decimal(t) / d).quantize(Decimal("0.0001"), ROUND_HALF_UP) if d else None)
        for route, (n, d, t) in per_route.items()
    }
    found = rows(
        built,
        "SELECT route_id, carrier, shipment_count, delivered_count, on_time_count, on_time_rate "
        "FROM logistics.mart_delivery_performance",
    )
    assert {(r, c): (n, d, t, rate) for r, c, n, d, t, rate in found} == expected
    assert len({carrier for _, carrier in expected}) > 1  # several carriers, none unknown
    assert "UNKNOWN" not in {carrier for _, carrier in expected}
    assert sum(d for _, d, _, _ in expected.values()) > 50  # deliveries happened, on time and late
    assert 0 < sum(t for _, _, t, _ in expected.values()) < sum(d for _, d, _, _ in expected.values())


def test_customer_insights_cover_every_customer_once(built: Built) -> None:
    customers = {r.key for r in built.world.reference if r.topic.endswith("customers.v1")}
    ordered = {o["order_id"]: o["customer_id"] for o in built.world.clean()["orders"] if o["status"] == "PLACED"}
    found = rows(built, "SELECT customer_id, order_count FROM commerce.mart_customer_insights")
    assert {c for c, _ in found} == customers
    assert sum(n for _, n in found) == len(ordered)


def test_every_model_and_column_is_described_and_docs_generate_offline(built: Built) -> None:
    code, output = built.dbt("docs", "generate")
    assert code == 0, output[-3000:]
    manifest = json.loads((built.target / "manifest.json").read_text())
    catalog = json.loads((built.target / "catalog.json").read_text())
    assert (built.target / "index.html").exists()
    missing = []
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] not in ("model", "snapshot"):
            continue
        if not node["description"].strip():
            missing.append(unique_id)
        described = {name for name, column in node["columns"].items() if column["description"].strip()}
        built_columns = {c.lower() for c in catalog["nodes"][unique_id]["columns"]}
        if node["resource_type"] == "model":
            missing += [f"{unique_id}.{c}" for c in sorted(built_columns - described)]
    assert missing == []
    assert len(manifest["exposures"]) == 5


def test_sql_passes_sqlfluff_with_the_dbt_templater(built: Built) -> None:
    result = lint(built.env, built.target / "lint")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_freshness_passes_then_fails_on_a_stale_source(built: Built) -> None:
    code, output = built.dbt("source", "freshness")
    statuses = summarize_freshness(freshness_results(built.target))
    assert code == 0 and set(statuses.values()) == {"pass"}, output[-3000:]
    assert len(statuses) == 21  # every raw, analytics and streaming table
    shift = "UPDATE raw.orders SET ingest_time = ingest_time {} interval '3 days'"
    with psycopg.connect(built.env["POSTGRES_DSN"]) as conn:
        conn.execute(shift.format("-").encode())
    try:
        code, output = built.dbt("source", "freshness", "--select", "source:freightline.raw.orders")
        statuses = summarize_freshness(freshness_results(built.target))
    finally:
        with psycopg.connect(built.env["POSTGRES_DSN"]) as conn:
            conn.execute(shift.format("+").encode())
    assert code == 1, output[-3000:]
    assert statuses == {"raw.orders": "error"}


def test_incremental_run_after_late_arrivals_equals_a_full_refresh(built: Built) -> None:
    """Load the orders without a late part (the span's last quarter, and every tenth earlier event: events that
    arrive late), build fct_orders from scratch, land the late part, run it incrementally: the same rows as a
    full refresh over everything."""
    orders = sorted(built.world.clean()["orders"], key=lambda o: o["metadata"]["event_time"])
    cut = orders[len(orders) * 3 // 4]["metadata"]["event_time"]
    late = [o for i, o in enumerate(orders) if o["metadata"]["event_time"] >= cut or i % 10 == 0]
    late_ids = [str(o["metadata"]["event_id"]) for o in late]
    columns = family("orders").columns
    dump = "SELECT * FROM commerce.fct_orders ORDER BY order_id"
    with psycopg.connect(built.env["POSTGRES_DSN"]) as conn:
        conn.execute("DELETE FROM raw.orders WHERE event_id::text = ANY(%s)", [late_ids])
    code, output = built.dbt("run", "--select", "fct_orders", "--full-refresh")
    assert code == 0, output[-3000:]
    before = rows(built, dump)
    with (
        psycopg.connect(built.env["POSTGRES_DSN"]) as conn,
        conn.cursor().copy("COPY raw.orders ({}) FROM STDIN".format(", ".join(f'"{c.name}"' for c in columns))) as copy,
    ):
        for order in late:
            copy.write_row(raw_row(columns, order))
    code, output = built.dbt("run", "--select", "fct_orders")
    assert code == 0, output[-3000:]
    incremental = rows(built, dump)
    code, output = built.dbt("run", "--select", "fct_orders", "--full-refresh")
    assert code == 0, output[-3000:]
    full = rows(built, dump)
    assert incremental != before  # the late events changed orders
    assert incremental == full
