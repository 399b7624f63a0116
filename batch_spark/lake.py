"""One day of a raw family from the lake: read, checked against the contract, deduplicated by event id.

``read_day`` returns the clean rows (nested, as in the Avro files), the rejected ones (with their reason and source
file) and the counts that account for every row read: ``read == clean + rejected + duplicates``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from batch_spark.contract import DAY_COLUMN, HDFS, Family
from batch_spark.settings import SparkJobSettings
from services.common.settings import GcsSettings, HdfsSettings, MongoSettings

SOURCE_FILE = "_source_file"
PRODUCT_VIEWS = "product_views"
UNREADABLE = "unreadable Avro file"
REASON = "_reason"


@dataclass
class Day:
    clean: Any  # DataFrame
    rejected: Any  # DataFrame (raw.rejected's columns)
    read: int
    rejected_count: int
    duplicates: int
    unreadable_files: int = 0  # non-empty files of the day that yielded no row (each one row of ``rejected``)

    @property
    def clean_count(self) -> int:
        return self.read - self.rejected_count - self.duplicates


@dataclass(frozen=True)
class Lake:
    """Where the families' files are: ``<root>/<topic prefix><topic>/dt=D/hour=H/*.avro`` in HDFS or GCS."""

    hdfs_root: str  # hdfs://namenode/lake-root
    gcs_root: str  # gs://bucket/prefix
    topic_prefix: str = ""
    views_from: MongoSettings | None = None  # read the product views from MongoDB instead
    views_collection: str = ""

    @classmethod
    def of(cls, settings: SparkJobSettings, hdfs: HdfsSettings, gcs: GcsSettings, mongo: MongoSettings) -> Lake:
        return cls(
            f"{hdfs.namenode_uri.rstrip('/')}/{settings.lake_root.strip('/')}",
            f"gs://{gcs.bucket}/{settings.gcs_prefix.strip('/')}",
            settings.topic_prefix,
            mongo if settings.product_views_source == "mongodb" else None,
            settings.mongodb_collection,
        )

    def day_path(self, fam: Family, day: dt.date) -> str:
        root = self.hdfs_root if fam.store == HDFS else self.gcs_root
        return f"{root}/{self.topic_prefix}{fam.topic}/dt={day}"


def _filesystem(spark: Any, path: str) -> tuple[Any, Any]:
    hadoop_path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def _exists(spark: Any, path: str) -> bool:
    filesystem, hadoop_path = _filesystem(spark, path)
    return bool(filesystem.exists(hadoop_path))


def _files(spark: Any, path: str) -> list[str]:
    """The non-empty data files under ``path`` (Spark skips names starting with ``_`` or ``.``, and so does this)."""
    filesystem, hadoop_path = _filesystem(spark, path)
    found, listing = [], filesystem.listFiles(hadoop_path, True)
    while listing.hasNext():
        status = listing.next()
        name = status.getPath().getName()
        if status.getLen() > 0 and not name.startswith(("_", ".")):
            found.append(str(status.getPath().toString()))
    return found


def delete(spark: Any, path: str) -> None:
    """Remove ``path`` (recursively) when it exists."""
    filesystem, hadoop_path = _filesystem(spark, path)
    filesystem.delete(hadoop_path, True)


def _reason(fam: Family) -> str:
    def literal(text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    cases = " ".join(f"WHEN coalesce({rule.violated}, false) THEN {literal(rule.reason)}" for rule in fam.rules)
    return f"CASE {cases} END"


def _from_mongodb(spark: Any, mongo: MongoSettings, collection: str, day: dt.date, schema: Any) -> Any:
    """The day's product views from MongoDB (the MongoDB sink's documents, ``_id`` = event id), read by the driver
    with pymongo: no MongoDB Spark connector for Spark 4 is served, and the local stand-in (FerretDB) lacks the
    ``$sample`` its partitioner needs. Fine for a day of views; a real ``mongod`` at scale wants the connector."""
    from services.common.mongodb import mongo_client

    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    window = {"metadata.event_time": {"$gte": start, "$lt": start + dt.timedelta(days=1)}}
    client = mongo_client(mongo)
    try:
        documents = list(client[mongo.database][collection].find(window, {"_id": 0}))
    finally:
        client.close()
    return spark.createDataFrame(documents, schema)


def read_day(spark: Any, lake: Lake, fam: Family, day: dt.date) -> Day:
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    path = lake.day_path(fam, day)
    shape = spark.createDataFrame([], "value binary").select(from_avro(F.col("value"), fam.avro_schema).alias("row"))
    source = F.input_file_name()
    listed: list[str] = []
    if fam.name == PRODUCT_VIEWS and lake.views_from is not None:
        files = _from_mongodb(spark, lake.views_from, lake.views_collection, day, shape.select("row.*").schema)
        source = F.lit(f"mongodb:{lake.views_from.database}.{lake.views_collection}")
    elif _exists(spark, path):
        listed = _files(spark, path)
        # a file Spark cannot read is skipped here and reported below (rejected with its path), not fatal
        files = spark.read.format("avro").option("ignoreCorruptFiles", "true").load(path).drop("hour")
    else:  # no file that day: no rows, in the contract's shape
        files = shape.select("row.*")
    rows = files.withColumn(SOURCE_FILE, source).withColumn(DAY_COLUMN, F.lit(day).cast("date"))
    fields = [c for c in rows.columns if c not in (SOURCE_FILE, DAY_COLUMN)]
    checked = rows.withColumn(REASON, F.expr(_reason(fam))).persist()
    rejected = checked.where(F.col(REASON).isNotNull()).select(
        F.lit(fam.name).alias("family"),
        F.col(DAY_COLUMN),
        F.col("metadata.event_id").alias("event_id"),
        F.col(REASON).alias("reason"),
        F.col(SOURCE_FILE).alias("source_file"),
        F.to_json(F.struct(*fields)).alias("record"),
    )
    first = Window.partitionBy("metadata.event_id").orderBy(F.col("metadata.ingest_time"), F.col(SOURCE_FILE))
    clean = (
        checked.where(F.col(REASON).isNull())
        .withColumn("_n", F.row_number().over(first))
        .where("_n = 1")
        .drop("_n", REASON)
        .persist()
    )
    # one pass for the figures: rows read, rejected, and distinct event ids among the rest (the clean rows)
    figures = checked.agg(
        F.count(F.lit(1)).alias("read"),
        F.count(F.col(REASON)).alias("rejected"),
        F.countDistinct(F.when(F.col(REASON).isNull(), F.col("metadata.event_id"))).alias("clean"),
        F.collect_set(F.col(SOURCE_FILE)).alias("files"),
    ).first()
    read, rejected_count = int(figures["read"]), int(figures["rejected"])
    unreadable = sorted(set(listed) - set(figures["files"]))
    if unreadable:
        rejected = rejected.unionByName(
            spark.createDataFrame(
                [(fam.name, day, None, UNREADABLE, path, None) for path in unreadable], rejected.schema
            )
        )
    duplicates = read - rejected_count - int(figures["clean"])
    return Day(clean, rejected, read, rejected_count, duplicates, len(unreadable))
