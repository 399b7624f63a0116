"""``python -m batch_spark.load_reference``: the reference data (compacted topics ``reference.*.v1``) into
``raw.reference_<entity>``, one row per key with its latest value.

Spark's Kafka source reads each topic from its earliest to its latest offsets (a bounded batch read); values are
Confluent-framed Avro (magic byte, 4-byte schema id, Avro body), decoded with ``from_avro`` against the catalogue's
value schema after the 5-byte frame. Per key the record with the greatest offset wins (one key lives in one
partition, so the offset orders its versions); a key whose latest record is a tombstone is gone. Columns follow the
contract as in ``raw.<family>`` (envelope flattened, nested values as JSON), plus ``updated_at``: the record's
Kafka timestamp (the producer sets it to the event time, when the version became effective). The whole table is
swapped in one transaction, so a run leaves exactly the topic's current state and a failed run the previous one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from batch_spark.contract import DAY_COLUMN, Column, columns_of
from batch_spark.warehouse import create_stage, ensure, jdbc_target
from schemas import topics
from schemas.catalogue import load_catalogue, load_schema
from services.common.entrypoint import run_entrypoint
from services.common.settings import GcsSettings, KafkaSettings, PostgresSettings

UPDATED_AT = "updated_at"
# the consumer groups of Spark's Kafka source (one per read, never committed): a prefix of ours, so that a secure
# cluster's ACLs can grant the batch's principal exactly these groups
GROUP_ID_PREFIX = "freightline-reference-load"
CONFLUENT_FRAME = 5  # magic byte + schema id before the Avro body


@dataclass(frozen=True)
class Entity:
    name: str  # raw.reference_<name>
    topic: str
    key: str  # the entity id field (the topic's key)

    @property
    def table(self) -> str:
        return f"raw.reference_{self.name}"

    def schema(self) -> dict[str, Any]:
        return load_schema(load_catalogue().topic(self.topic).value_schema)

    def columns(self) -> tuple[Column, ...]:
        """The contract's columns (as in ``raw.<family>``, without the day), then ``updated_at``."""
        found = tuple(c for c in columns_of(self.schema()) if c.name != DAY_COLUMN)
        return (*found, Column(UPDATED_AT, "timestamptz", UPDATED_AT, False))

    def create_table_sql(self) -> str:
        lines = [f'"{c.name}" {c.pg_type}{"" if c.nullable else " NOT NULL"}' for c in self.columns()]
        lines.append(f'PRIMARY KEY ("{self.key}")')
        return f"CREATE TABLE IF NOT EXISTS {self.table} (\n  " + ",\n  ".join(lines) + "\n)"


ENTITIES = (
    Entity("customers", topics.REFERENCE_CUSTOMERS, "customer_id"),
    Entity("products", topics.REFERENCE_PRODUCTS, "product_id"),
    Entity("stores", topics.REFERENCE_STORES, "store_id"),
    Entity("suppliers", topics.REFERENCE_SUPPLIERS, "supplier_id"),
)


def kafka_options(kafka: KafkaSettings, topic: str) -> dict[str, str]:
    """Options of Spark's Kafka source for a bounded read of the whole topic."""
    options = {
        "kafka.bootstrap.servers": kafka.bootstrap_servers,
        "subscribe": topic,
        "startingOffsets": "earliest",
        "endingOffsets": "latest",
        "failOnDataLoss": "true",
        "includeHeaders": "false",
        "groupIdPrefix": GROUP_ID_PREFIX,
    }
    # the login and, over TLS, the CA as a PEM trust store (the JVM's own does not know a private CA)
    options.update({f"kafka.{key}": value for key, value in kafka.java_client_properties().items()})
    return options


def replace_all(dsn: str, table: str, stage: str) -> int:
    """In one transaction: empty ``table``, insert the staged rows, drop the stage. Returns the rows inserted."""
    schema, _, name = table.partition(".")
    stage_schema, _, stage_name = stage.partition(".")
    target, staged = sql.Identifier(schema, name), sql.Identifier(stage_schema, stage_name)
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute(sql.SQL("DELETE FROM {}").format(target))
        inserted = conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(target, staged)).rowcount
        conn.execute(sql.SQL("DROP TABLE {}").format(staged))
    return inserted


def load_entity(spark: Any, entity: Entity, kafka: KafkaSettings, prefix: str, dsn: str) -> dict[str, int]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    records = spark.read.format("kafka").options(**kafka_options(kafka, f"{prefix}{entity.topic}")).load()
    latest = Window.partitionBy("key").orderBy(F.col("offset").desc())
    newest = records.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1").cache()
    body = F.expr(f"substring(value, {CONFLUENT_FRAME + 1})")
    current = newest.where("value IS NOT NULL").select(
        from_avro(body, json.dumps(entity.schema())).alias("v"), F.col("timestamp").alias(UPDATED_AT)
    )
    rows = current.select("v.*", UPDATED_AT).select(*(F.expr(c.expression).alias(c.name) for c in entity.columns()))
    url, properties = jdbc_target(dsn)
    stage = f"raw._stage_reference_{entity.name}"
    create_stage(dsn, entity.table, stage)
    rows.write.jdbc(url, stage, mode="append", properties=properties)
    loaded = replace_all(dsn, entity.table, stage)
    result = {"records": records.count(), "keys": newest.count(), "loaded": loaded}
    newest.unpersist()
    result["deleted"] = result["keys"] - loaded  # keys whose latest record is a tombstone
    return result


def main() -> int:
    def body() -> int:
        from batch_spark.session import spark_session
        from batch_spark.settings import SparkJobSettings

        settings, kafka, dsn = SparkJobSettings(), KafkaSettings(), PostgresSettings().dsn
        started = time.monotonic()
        ensure(dsn, [entity.create_table_sql() for entity in ENTITIES])
        spark = spark_session(settings, GcsSettings(), "freightline-load_reference")
        try:
            tables = {e.table: load_entity(spark, e, kafka, settings.topic_prefix, dsn) for e in ENTITIES}
        finally:
            spark.stop()
        report = {"job": "load_reference", "tables": tables, "duration_s": round(time.monotonic() - started, 3)}
        print(json.dumps(report, sort_keys=True), flush=True)
        return 0

    return run_entrypoint(body)


if __name__ == "__main__":
    raise SystemExit(main())
