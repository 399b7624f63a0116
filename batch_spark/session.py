"""The jobs' SparkSession: jars from the settings (resolved by setup, never fetched at start), UTC everywhere."""

from __future__ import annotations

from typing import Any

from batch_spark.settings import SparkJobSettings
from services.common.settings import GcsSettings

UTC_JVM = "-Duser.timezone=UTC"
GC_FLAGS = {"parallel": "-XX:+UseParallelGC", "g1": "-XX:+UseG1GC", "serial": "-XX:+UseSerialGC"}


def driver_java_options(settings: SparkJobSettings) -> str:
    """The driver JVM's options besides its heap (``spark.driver.memory``, which Spark's launcher turns into
    ``-Xmx``): bounds on the memory outside the heap, and the collector. Spark's launcher applies them when it
    starts the driver (client mode: the jobs' own process); a cluster's driver takes its sizing from the cluster's
    submission instead."""
    return " ".join(
        [
            UTC_JVM,
            GC_FLAGS[settings.driver_gc],
            f"-XX:MaxDirectMemorySize={settings.driver_max_direct_memory}",
            f"-XX:MaxMetaspaceSize={settings.driver_max_metaspace}",
            f"-XX:ReservedCodeCacheSize={settings.driver_code_cache}",
        ]
    )


def gcs_options(gcs: GcsSettings) -> dict[str, str]:
    """Hadoop options of the GCS connector (``gs://``): an emulator when ``GCS_ENDPOINT`` is set (anonymous),
    else real GCS with the application default credentials."""
    options = {
        "fs.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem",
        "fs.AbstractFileSystem.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS",
        "fs.gs.project.id": gcs.project,
    }
    if gcs.endpoint:
        options["fs.gs.storage.root.url"] = gcs.endpoint.rstrip("/") + "/"
        options["fs.gs.auth.type"] = "UNAUTHENTICATED"
    return options


def spark_session(settings: SparkJobSettings, gcs: GcsSettings, app_name: str) -> Any:
    from pyspark.sql import SparkSession

    jars = ",".join(part.strip() for part in settings.jars.split(",") if part.strip())
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.master)
        .config("spark.jars", jars)
        .config("spark.driver.host", settings.driver_host)
        .config("spark.driver.bindAddress", settings.driver_host)
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.driver.extraJavaOptions", driver_java_options(settings))
        .config("spark.executor.extraJavaOptions", UTC_JVM)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if settings.extra_class_path:
        # on the JVM's own class path, so ahead of spark.jars (loaded by a child class loader, parent first): a
        # resource there (the GCS connector's trust store) wins over the same path inside a jar
        builder = builder.config("spark.driver.extraClassPath", settings.extra_class_path)
        builder = builder.config("spark.executor.extraClassPath", settings.extra_class_path)
    for key, value in gcs_options(gcs).items():
        builder = builder.config(f"spark.hadoop.{key}", value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
