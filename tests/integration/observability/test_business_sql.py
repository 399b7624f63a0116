"""The business dashboard's SQL panels against PostgreSQL, over tables of the shape their contracts give.

The stream processors upsert ``streaming.product_views_1m``, ``streaming.store_order_revenue_5m`` and
``streaming.route_shipment_delays_5m``, one column per field of their Avro records (without the metadata
envelope, ``observability.dashboards.dashboards.BUSINESS_TABLES``). Until those jobs run in the stack, this test
builds the three tables from the contracts in a scratch schema, writes one window into each and runs every SQL
query of the dashboard there (Grafana's ``$__timeFilter`` as a six-hour range): each must run and return rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from observability.dashboards.dashboards import BUSINESS_TABLES
from schemas.catalogue import AVRO_DIR
from tests.unit.observability.dashboard_queries import queries

pytestmark = pytest.mark.integration

TIME_FILTER = re.compile(r"\$__timeFilter\((\w+)\)")


def _column(field: dict[str, Any]) -> tuple[str, str, str]:
    """(name, PostgreSQL type, a literal of that type) for one Avro field."""
    kind = field["type"]
    logical = kind.get("logicalType") if isinstance(kind, dict) else None
    if logical == "timestamp-millis":
        return field["name"], "timestamptz", "now() - interval '10 minutes'"
    if logical == "decimal":
        return field["name"], f"numeric({kind['precision']}, {kind['scale']})", "12.34"
    if isinstance(kind, dict) and kind["type"] == "map":
        return field["name"], "jsonb", "'{}'"
    types = {"string": ("text", "'X'"), "long": ("bigint", "3"), "int": ("integer", "3"), "double": ("float8", "0.5")}
    sql_type, literal = types[kind]
    return field["name"], sql_type, literal


@pytest.fixture
def scratch_schema(postgres_dsn: str, unique_name: Callable[[str], str]) -> Iterator[str]:
    schema = unique_name("dash").replace("-", "_")
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
        try:
            for table, contract in BUSINESS_TABLES.items():
                fields = json.loads((AVRO_DIR / contract).read_text())["fields"]
                columns = [_column(f) for f in fields if f["name"] != "metadata"]
                name = f"{schema}.{table.split('.', 1)[1]}"
                connection.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t, _ in columns)})")
                connection.execute(f"INSERT INTO {name} VALUES ({', '.join(v for _, _, v in columns)})")
            yield schema
        finally:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


def test_every_sql_panel_runs_and_returns_rows_over_the_contracts_tables(
    postgres_dsn: str, scratch_schema: str
) -> None:
    sql = [query for query in queries() if query.datasource == "grafana-postgresql-datasource"]
    assert len(sql) == 6
    with psycopg.connect(postgres_dsn) as connection:
        for query in sql:
            text = TIME_FILTER.sub(r"\1 BETWEEN now() - interval '6 hours' AND now()", query.text)
            for table in BUSINESS_TABLES:
                text = text.replace(table, f"{scratch_schema}.{table.split('.', 1)[1]}")
            assert "streaming." not in text and "$" not in text, text
            rows = connection.execute(text).fetchall()  # type: ignore[call-overload]
            assert rows, f"{query}: no rows"
