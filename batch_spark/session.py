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


def spark_conf(settings: SparkJobSettings, gcs: GcsSettings) -> dict[str, str]:
    """The session's Spark configuration."""
    conf = {
        "spark.jars": ",".join(part.strip() for part in settings.jars.split(",") if part.strip()),
        "spark.driver.host": settings.driver_host,
        "spark.driver.bindAddress": settings.driver_host,
        "spark.driver.memory": settings.driver_memory,
        "spark.driver.extraJavaOptions": driver_java_options(settings),
        "spark.executor.extraJavaOptions": UTC_JVM,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    if settings.extra_class_path:
        # on the JVM's own class path, so ahead of spark.jars (loaded by a child class loader, parent first): a
        # resource there (the GCS connector's trust store) wins over the same path inside a jar
        conf["spark.driver.extraClassPath"] = settings.extra_class_path
        conf["spark.executor.extraClassPath"] = settings.extra_class_path
    conf.update({f"spark.hadoop.{key}": value for key, value in gcs_options(gcs).items()})
    return conf


def spark_session(settings: SparkJobSettings, gcs: GcsSettings, app_name: str) -> Any:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name).master(settings.master)
    for key, value in spark_conf(settings, gcs).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
