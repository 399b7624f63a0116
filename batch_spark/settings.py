"""Settings of the Spark batch jobs (env prefix ``SPARK_JOBS_``); HDFS, GCS and PostgreSQL come from ``HDFS_*``,
``GCS_*`` and ``POSTGRES_*`` (``services.common.settings``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import (
    GCS_LAKE_PREFIX,
    HDFS_ANALYTICS_ROOT,
    HDFS_LAKE_ROOT,
    LOCAL_HOST,
    MONGODB_PRODUCT_VIEWS_COLLECTION,
)

JVM_SIZE = r"^[1-9][0-9]*[kKmMgG]$"  # a JVM memory size: 512m, 1g


def _jvm_size(default: str, description: str) -> Any:
    """A JVM memory size setting (``512m``, ``1g``): a size the JVM would refuse is a bad setting at start."""
    return Field(default=default, pattern=JVM_SIZE, description=description)


class SparkJobSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPARK_JOBS_", extra="ignore", case_sensitive=False)

    master: str = Field(default="local[2]", description="SPARK_JOBS_MASTER: local[N] or a cluster's master URL.")
    jars: str = Field(
        default="",
        description="SPARK_JOBS_JARS: comma-separated jar paths passed as spark.jars (spark-avro, PostgreSQL JDBC); "
        "`freightline spark` sets them from the jars setup resolved.",
    )
    extra_class_path: str | None = Field(
        default=None,
        description="SPARK_JOBS_EXTRA_CLASS_PATH: folders or jars put ahead of the jars on the driver's and the "
        "executors' class path (spark.driver/executor.extraClassPath); a secure local stack sets it to the folder "
        "that makes the GCS connector trust the stack's CA (its bundled Google roots plus the CA).",
    )
    lake_root: str = Field(default=HDFS_LAKE_ROOT, description="SPARK_JOBS_LAKE_ROOT: raw <topic>/dt=/hour= files.")
    analytics_root: str = Field(
        default=HDFS_ANALYTICS_ROOT, description="SPARK_JOBS_ANALYTICS_ROOT: Parquet daily tables, <table>/ds=."
    )
    gcs_prefix: str = Field(
        default=GCS_LAKE_PREFIX, description="SPARK_JOBS_GCS_PREFIX: object prefix of the finance files in GCS_BUCKET."
    )
    product_views_source: Literal["hdfs", "mongodb"] = Field(
        default="hdfs",
        description="SPARK_JOBS_PRODUCT_VIEWS_SOURCE: read the product views from the lake (hdfs) or from MongoDB "
        "(seed 004's path; MONGODB_* settings).",
    )
    mongodb_collection: str = Field(
        default=MONGODB_PRODUCT_VIEWS_COLLECTION, description="SPARK_JOBS_MONGODB_COLLECTION: the product views."
    )
    topic_prefix: str = Field(default="", description="SPARK_JOBS_TOPIC_PREFIX: prefix of the lake's topic folders.")
    driver_host: str = Field(default=LOCAL_HOST, description="SPARK_JOBS_DRIVER_HOST: the driver's bind address.")
    driver_memory: str = _jvm_size(
        "1g",
        "SPARK_JOBS_DRIVER_MEMORY: the driver JVM's heap (-Xmx; in local[N] the tasks run in it too).",
    )
    driver_max_direct_memory: str = _jvm_size(
        "256m",
        "SPARK_JOBS_DRIVER_MAX_DIRECT_MEMORY: -XX:MaxDirectMemorySize of the driver (NIO/Netty buffers).",
    )
    driver_max_metaspace: str = _jvm_size(
        "256m",
        "SPARK_JOBS_DRIVER_MAX_METASPACE: -XX:MaxMetaspaceSize of the driver (classes, generated code).",
    )
    driver_code_cache: str = _jvm_size(
        "128m",
        "SPARK_JOBS_DRIVER_CODE_CACHE: -XX:ReservedCodeCacheSize of the driver (JIT-compiled code).",
    )
    driver_gc: Literal["parallel", "g1", "serial"] = Field(
        default="parallel",
        description="SPARK_JOBS_DRIVER_GC: the driver's garbage collector (parallel: the least native bookkeeping "
        "of the throughput collectors for a small heap on few cores).",
    )
    shuffle_partitions: int = Field(default=4, gt=0, description="SPARK_JOBS_SHUFFLE_PARTITIONS.")

    @field_validator("jars")
    @classmethod
    def _jars(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("no jars given: the jobs need spark-avro and the PostgreSQL JDBC driver")
        return value
