"""The Flink image can use the ``hdfs://`` directories the Flink manifests give it: Hadoop's client of the stack's
HDFS release is among the jars its Dockerfile copies into Flink's lib folder. Shown failing on copies of the
Dockerfile, the image's pom and the manifests."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from deploy.manifests.consistency import (
    FLINK_DOCKERFILE,
    ROOT,
    dockerfile_poms,
    flink_configurations,
    flink_hdfs_problems,
    hadoop_images,
    stack_hadoop_version,
)

Docs = list[dict[str, Any]]
HADOOP_POM = "deploy/images/poms/flink-hadoop.xml"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_flink_image_carries_the_hadoop_client_its_manifests_need(
    overlay: str, compose: dict[str, Any], rendered: dict[str, Docs]
) -> None:
    configurations = flink_configurations(compose, rendered[overlay])
    storage = configurations["FlinkDeployment window-jobs"]
    # the check has something to check: the Kubernetes deployment keeps its state on HDFS
    assert storage["high-availability.storageDir"].startswith("hdfs://")
    assert storage["execution.checkpointing.dir"].startswith("hdfs://")
    images = hadoop_images(compose, rendered[overlay])
    assert images  # compose runs HDFS from the apache/hadoop image
    assert flink_hdfs_problems(configurations, FLINK_DOCKERFILE.read_text(), stack_hadoop_version(), images) == []


def test_an_image_without_the_hadoop_client_or_of_another_release_is_reported(
    tmp_path: Path, compose: dict[str, Any], rendered: dict[str, Docs]
) -> None:
    configurations = flink_configurations(compose, rendered["prod"])
    version = stack_hadoop_version()
    dockerfile = FLINK_DOCKERFILE.read_text()
    for pom in dockerfile_poms(dockerfile):
        copied = tmp_path / pom.relative_to(ROOT)
        copied.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pom, copied)
    assert flink_hdfs_problems(configurations, dockerfile, version, root=tmp_path) == []

    without = "\n".join(line for line in dockerfile.splitlines() if HADOOP_POM not in line)
    k8s = "FlinkDeployment window-jobs"
    assert flink_hdfs_problems(configurations, without, version, root=tmp_path) == [
        f"flink image: {k8s} (execution.checkpointing.dir, execution.checkpointing.savepoint-dir, "
        "high-availability.storageDir) on hdfs://, but the image's jars ['deploy/local/poms/flink.xml'] lack "
        "['org.apache.hadoop:hadoop-client-api', 'org.apache.hadoop:hadoop-client-runtime']"
    ]
    # compose on HDFS too: named with the keys it keeps there
    on_hdfs = copy.deepcopy(configurations)
    on_hdfs["compose flink-jobmanager"]["execution.checkpointing.dir"] = "hdfs://hdfs-namenode:8020/flink/c"
    assert flink_hdfs_problems(on_hdfs, without, version, root=tmp_path)[0].startswith(
        f"flink image: {k8s} (execution.checkpointing.dir, execution.checkpointing.savepoint-dir, "
        "high-availability.storageDir); compose flink-jobmanager (execution.checkpointing.dir) on hdfs://"
    )
    # no manifest on HDFS: the image needs no Hadoop client
    on_files = {where: {k: v.replace("hdfs://", "file://") for k, v in c.items()} for where, c in on_hdfs.items()}
    assert flink_hdfs_problems(on_files, without, version, root=tmp_path) == []

    pom = tmp_path / HADOOP_POM
    line = ".".join(version.split(".")[:2])
    pom.write_text(pom.read_text().replace(f"<version>{version}</version>", "<version>3.3.6</version>", 1))
    assert flink_hdfs_problems(configurations, dockerfile, version, ["apache/hadoop:3.3.6"], root=tmp_path) == [
        f"flink image: org.apache.hadoop:hadoop-client-api 3.3.6, the stack's HDFS runs Hadoop {version}",
        f"HDFS image apache/hadoop:3.3.6: not Hadoop {line}.x, the Flink image's client is {version}",
    ]
