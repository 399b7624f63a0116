"""The jobs' SparkSession: jars from the settings (resolved by setup, never fetched at start), UTC everywhere."""

from __future__ import annotations

from typing import Any

from batch_spark.settings import SparkJobSettings

UTC_JVM = "-Duser.timezone=UTC"


def spark_session(settings: SparkJobSettings, app_name: str) -> Any:
    from pyspark.sql import SparkSession

    jars = ",".join(part.strip() for part in settings.jars.split(",") if part.strip())
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.master)
        .config("spark.jars", jars)
        .config("spark.driver.host", settings.driver_host)
        .config("spark.driver.bindAddress", settings.driver_host)
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.driver.extraJavaOptions", UTC_JVM)
        .config("spark.executor.extraJavaOptions", UTC_JVM)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
