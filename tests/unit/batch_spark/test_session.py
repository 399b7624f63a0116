"""The driver JVM's memory settings: typed, validated, and turned into the options Spark's launcher applies."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from batch_spark.session import driver_java_options, spark_conf
from batch_spark.settings import SparkJobSettings
from services.common.settings import GcsSettings

JARS = "/jars/spark-avro.jar"


def test_the_driver_options_bound_the_memory_outside_the_heap() -> None:
    options = driver_java_options(SparkJobSettings(jars=JARS)).split()
    assert options == [
        "-Duser.timezone=UTC",
        "-XX:+UseParallelGC",
        "-XX:MaxDirectMemorySize=256m",
        "-XX:MaxMetaspaceSize=256m",
        "-XX:ReservedCodeCacheSize=128m",
    ]
    assert not any(option.startswith(("-Xmx", "-Xms")) for option in options)  # the heap: spark.driver.memory


def test_a_cluster_sizes_the_driver_through_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SPARK_JOBS_JARS": JARS,
        "SPARK_JOBS_DRIVER_MEMORY": "4g",
        "SPARK_JOBS_DRIVER_MAX_DIRECT_MEMORY": "1g",
        "SPARK_JOBS_DRIVER_GC": "g1",
    }.items():
        monkeypatch.setenv(name, value)
    settings = SparkJobSettings()
    assert settings.driver_memory == "4g"
    options = driver_java_options(settings).split()
    assert "-XX:+UseG1GC" in options and "-XX:MaxDirectMemorySize=1g" in options


@pytest.mark.parametrize("size", ["", "1.5g", "0m", "lots", "-1g", "1gb"])
def test_a_memory_size_the_jvm_would_refuse_is_a_bad_setting(size: str) -> None:
    with pytest.raises(ValidationError, match="driver_max_metaspace"):
        SparkJobSettings(jars=JARS, driver_max_metaspace=size)


def test_an_extra_class_path_goes_ahead_of_the_jars_on_the_driver_and_the_executors() -> None:
    plain = spark_conf(SparkJobSettings(jars=JARS), GcsSettings())
    assert not {"spark.driver.extraClassPath", "spark.executor.extraClassPath"} & set(plain)
    secure = spark_conf(SparkJobSettings(jars=JARS, extra_class_path="/state/config/spark-gcs-trust"), GcsSettings())
    assert secure["spark.driver.extraClassPath"] == secure["spark.executor.extraClassPath"]
    assert secure["spark.driver.extraClassPath"] == "/state/config/spark-gcs-trust"
