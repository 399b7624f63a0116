"""Both overlays render offline and validate: the Kubernetes kinds with ``kubernetes-validate --strict`` against a
pinned Kubernetes version, the operators' custom resources against the CRD schemas setup fetched from registries
(``deploy/manifests/tools.py`` says which; Strimzi's and KEDA's are not obtainable and are covered by the
consistency tests)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy.manifests import tools

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
Docs = list[dict[str, Any]]
CORE_GROUPS = {"", "apps", "batch", "policy", "networking.k8s.io", "rbac.authorization.k8s.io"}


def crd_validator(doc: dict[str, Any]) -> jsonschema.protocols.Validator | None:
    group, _, version = doc["apiVersion"].rpartition("/")
    schema = tools.crd_schema(group, doc["kind"], version)
    if schema is None:
        return None
    if doc["kind"] == "FlinkDeployment":
        # The newest operator API jar Maven Central serves (1.10.0) predates Flink 2.0: its schema lists flinkVersion
        # up to v1_20. Everything else of the resource is checked as published.
        enum = schema["properties"]["spec"]["properties"]["flinkVersion"]["enum"]
        schema = copy.deepcopy(schema)
        schema["properties"]["spec"]["properties"]["flinkVersion"]["enum"] = [*enum, "v2_0"]
    return jsonschema.Draft7Validator(schema)


def kubernetes_validate(docs: Docs, path: Path) -> subprocess.CompletedProcess[str]:
    """``kubernetes-validate --strict`` at the pinned Kubernetes version over ``docs`` written to ``path``."""
    path.write_text(yaml.safe_dump_all(docs))
    return subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", "-k", tools.KUBERNETES_VERSION, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def core(docs: Docs) -> Docs:
    return [d for d in docs if d["apiVersion"].rpartition("/")[0] in CORE_GROUPS]


@pytest.mark.parametrize("overlay", tools.OVERLAYS)
def test_overlay_validates_strictly_against_kubernetes(overlay: str, rendered: dict[str, Docs], tmp_path: Path) -> None:
    docs = core(rendered[overlay])
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy"} <= {
        d["kind"] for d in docs
    }
    result = kubernetes_validate(docs, tmp_path / f"{overlay}.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_rejects_an_unknown_field(rendered: dict[str, Docs], tmp_path: Path) -> None:
    deployment = copy.deepcopy(next(d for d in rendered["dev"] if d["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    result = kubernetes_validate([deployment], tmp_path / "bad.yaml")
    assert result.returncode != 0 and "livenessprobe" in result.stdout + result.stderr


@pytest.mark.parametrize("overlay", tools.OVERLAYS)
def test_custom_resources_match_the_operators_crd_schemas(overlay: str, rendered: dict[str, Docs]) -> None:
    checked: set[str] = set()
    for doc in rendered[overlay]:
        validator = crd_validator(doc)
        if validator is None:
            continue
        errors = [f"{doc['kind']}/{doc['metadata']['name']}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == []
        checked.add(doc["kind"])
    assert checked == {
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "FlinkDeployment",
        "ScaledObject",
        "TriggerAuthentication",
        "Kafka",
        "KafkaNodePool",
        "KafkaTopic",
        "KafkaUser",
        "Certificate",
        "Issuer",
    }


def test_a_custom_resource_off_its_schema_is_rejected(rendered: dict[str, Docs]) -> None:
    monitor = copy.deepcopy(next(d for d in rendered["dev"] if d["kind"] == "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["interval"] = 15
    flink = copy.deepcopy(next(d for d in rendered["dev"] if d["kind"] == "FlinkDeployment"))
    flink["spec"]["job"]["upgradeMode"] = "sometimes"
    scaled = copy.deepcopy(next(d for d in rendered["dev"] if d["kind"] == "ScaledObject"))
    scaled["spec"]["maxReplicaCount"] = "three"
    topic = copy.deepcopy(next(d for d in rendered["dev"] if d["kind"] == "KafkaTopic"))
    topic["spec"]["partiton"] = topic["spec"].pop("partitions")  # misspelt: the API server would drop it
    certificate = copy.deepcopy(
        next(d for d in rendered["dev"] if d["kind"] == "Certificate" and not d["spec"].get("isCA"))
    )
    certificate["spec"]["dnsName"] = certificate["spec"].pop("dnsNames")
    for doc in (monitor, flink, scaled, topic, certificate):
        validator = crd_validator(doc)
        assert validator is not None
        assert list(validator.iter_errors(doc)), doc["kind"]


def test_prometheus_rules_are_the_observability_rules(rendered: dict[str, Docs]) -> None:
    rules = {d["metadata"]["name"]: d["spec"]["groups"] for d in rendered["prod"] if d["kind"] == "PrometheusRule"}
    files = sorted((ROOT / "observability" / "prometheus").glob("*.rules.yml"))
    assert len(rules) == len(files) >= 3
    for path in files:
        assert (
            rules["freightline-" + path.name.removesuffix(".rules.yml")] == yaml.safe_load(path.read_text())["groups"]
        )
