"""The window jobs' PostgreSQL tables under a second computation of the same window, on the stack's PostgreSQL.

The Flink JDBC sink writes each window result row as ``INSERT ... ON CONFLICT (<primary key>) DO UPDATE`` (its
PostgreSQL dialect's upsert); the primary key is the job's ``upsert_key`` (``stream_processors/flink_sql.py``). When
the same window is computed again over other events (a main job run on a used stack whose world overlaps the last
one's windows), the table must hold one consistent result per window: for the Top-N, one ranking, each rank once and
each product once, never the earlier ranking's products beside the later one's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from stream_processors.category_top_products import JOB as TOP_PRODUCTS
from stream_processors.category_top_products import TOP
from stream_processors.flink_sql import WindowJob

pytestmark = pytest.mark.integration

WINDOW_START = dt.datetime(2026, 12, 6, 8, 20)
WINDOW_END = WINDOW_START + dt.timedelta(minutes=10)


@pytest.fixture
def schema(postgres_dsn: str, unique_name: Callable[[str], str]) -> Iterator[str]:
    name = unique_name("wk").replace("-", "_").lower()
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def upsert(conn: psycopg.Connection[Any], job: WindowJob, table: str, rows: list[dict[str, Any]]) -> None:
    """The rows written as Flink's JDBC sink writes them: an upsert on the job's primary key."""
    columns = [column.name for column in job.warehouse]
    key = job.upsert_key
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}").format(
        sql.SQL(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        sql.SQL(", ").join(map(sql.Identifier, key)),
        sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in columns if c not in key
        ),
    )
    with conn.cursor() as cursor:
        cursor.executemany(statement, [[row[c] for c in columns] for row in rows])


def ranking(products: list[str]) -> list[dict[str, Any]]:
    """One window's ranking of ``products`` in one category, most viewed first."""
    return [
        {
            "window_start": WINDOW_START,
            "window_end": WINDOW_END,
            "category": "garden",
            "product_id": product,
            "rank": rank,
            "view_count": 100 - rank,
            "unique_visitors": 50 - rank,
        }
        for rank, product in enumerate(products, start=1)
    ]


def test_a_second_computation_of_a_window_replaces_its_top_n_ranking(postgres_dsn: str, schema: str) -> None:
    table = f"{schema}.category_rankings_10m"
    first = [f"p-{n:03d}" for n in range(TOP)]
    # the same window over other events: partly the same products, in other places, partly new ones
    second = [f"p-{n:03d}" for n in range(5, 5 + TOP)]
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(TOP_PRODUCTS.postgres_ddl(table).encode())
        upsert(conn, TOP_PRODUCTS, table, ranking(first))
        upsert(conn, TOP_PRODUCTS, table, ranking(second))
        rows = conn.execute(
            sql.SQL("SELECT rank, product_id FROM {} WHERE category = 'garden' ORDER BY rank").format(sql.SQL(table))
        ).fetchall()
    assert rows == list(enumerate(second, start=1)), "the window holds one ranking: the later computation's"
