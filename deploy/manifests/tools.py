"""The offline validators' inputs, fetched from registries at setup (``python -m deploy.manifests.tools``):

- ``kustomize`` built from its Go module (``sigs.k8s.io/kustomize/kustomize/v5``) into ``<home>/bin``;
- the operators' CRD schemas into ``<home>/crds/<group>/<kind>.<version>.json`` (the ``openAPIV3Schema`` of each
  served version): the Prometheus Operator's (``ServiceMonitor``, ``PodMonitor``, ``PrometheusRule``) from its Go
  module's ``example/prometheus-operator-crd/``, KEDA's (``ScaledObject``, ``TriggerAuthentication``) from its Go
  module's ``config/crd/bases/`` (v2.17.2), cert-manager's (``Certificate``, ``Issuer``) from its Go module's
  ``deploy/crds/``, the Flink Kubernetes Operator's (``FlinkDeployment``) from its API
  jar on Maven Central (``poms/crds.xml``), Strimzi's (``Kafka``, ``KafkaNodePool``, ``KafkaTopic``, ``KafkaUser``)
  generated from its API model by its own CRD generator, both on Maven Central (``poms/strimzi-crds.xml``; its
  ``io.strimzi:api`` jar carries the model classes, no CRD files).

Not obtainable from a reachable registry (so checked by the consistency tests instead): the Spark operator's (the Go
module proxy refuses ``github.com/kubeflow/spark-operator``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

from deploy.local.builds import is_current, require_tool, run_step

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.34.0"
"""The Kubernetes version ``kubernetes-validate --strict`` checks the rendered overlays against."""
OVERLAYS = ("dev", "prod")
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.7.1"
PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
KEDA_MODULE = "github.com/kedacore/keda/v2"
KEDA_VERSION = "v2.17.2"
"""The newest KEDA release whose go.mod the machine's Go (1.26) accepts (2.18 and later ask for a newer Go)."""
CERT_MANAGER_MODULE = "github.com/cert-manager/cert-manager"
CERT_MANAGER_VERSION = "v1.19.1"
FLINK_OPERATOR_VERSION = "1.10.0"
STRIMZI_VERSION = "0.45.0"
STRIMZI_KINDS = {
    "io.strimzi.api.kafka.model.kafka.Kafka": "kafka",
    "io.strimzi.api.kafka.model.nodepool.KafkaNodePool": "kafkanodepool",
    "io.strimzi.api.kafka.model.topic.KafkaTopic": "kafkatopic",
    "io.strimzi.api.kafka.model.user.KafkaUser": "kafkauser",
}
CRD_SOURCES = (
    f"{PROMETHEUS_OPERATOR_MODULE}@{PROMETHEUS_OPERATOR_VERSION} {KEDA_MODULE}@{KEDA_VERSION} "
    f"{CERT_MANAGER_MODULE}@{CERT_MANAGER_VERSION} "
    f"flink-kubernetes-operator-api:{FLINK_OPERATOR_VERSION} strimzi:{STRIMZI_VERSION}"
)
GO_CRDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        f"{PROMETHEUS_OPERATOR_MODULE}@{PROMETHEUS_OPERATOR_VERSION}",
        "example/prometheus-operator-crd",
        (
            "monitoring.coreos.com_servicemonitors.yaml",
            "monitoring.coreos.com_podmonitors.yaml",
            "monitoring.coreos.com_prometheusrules.yaml",
        ),
    ),
    (
        f"{KEDA_MODULE}@{KEDA_VERSION}",
        "config/crd/bases",
        ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"),
    ),
    (
        f"{CERT_MANAGER_MODULE}@{CERT_MANAGER_VERSION}",
        "deploy/crds",
        ("cert-manager.io_certificates.yaml", "cert-manager.io_issuers.yaml"),
    ),
)
"""(module@version, folder of its CRDs, the CRD files) of the operators whose Go modules carry their CRDs."""


def home() -> Path:
    return ROOT / os.environ.get("FREIGHTLINE_HOME", ".freightline")


def kustomize_path(state: Path | None = None) -> Path:
    return (state or home()) / "bin" / "kustomize"


def crds_dir(state: Path | None = None) -> Path:
    return (state or home()) / "crds"


def build_kustomize(state: Path) -> Path:
    binary = kustomize_path(state)
    stamp = binary.with_name(".kustomize.version")
    if binary.exists() and is_current(stamp, KUSTOMIZE_VERSION):
        return binary
    require_tool("go", "go is required to build kustomize")
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(binary.parent), "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    run_step(["go", "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"], "building kustomize", env=env)
    stamp.write_text(KUSTOMIZE_VERSION)
    return binary


def write_schemas(crd: dict[str, Any], target: Path) -> None:
    """One JSON schema per served version of a CustomResourceDefinition."""
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        schema = version.get("schema", {}).get("openAPIV3Schema")
        if schema is None:
            continue
        path = target / group / f"{kind}.{version['name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, sort_keys=True))


def fetch_crds(state: Path) -> Path:
    target = crds_dir(state)
    stamp = target / ".sources"
    if is_current(stamp, CRD_SOURCES):
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    require_tool("go", "go is required to download the operators' Go modules (their CRDs)")
    for module, folder, files in GO_CRDS:
        result = subprocess.run(
            ["go", "mod", "download", "-json", module],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"},
        )
        if result.returncode != 0:
            raise RuntimeError(f"downloading {module} failed:\n{result.stdout}{result.stderr}")
        module_dir = Path(json.loads(result.stdout)["Dir"])
        for name in files:
            write_schemas(yaml.safe_load((module_dir / folder / name).read_text()), target)
    require_tool("mvn", "mvn (Maven) is required to download the Flink Kubernetes Operator's CRDs")
    with tempfile.TemporaryDirectory() as tmp:
        run_step(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(Path(__file__).parent / "poms" / "crds.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={tmp}",
            ],
            "downloading the Flink Kubernetes Operator's API jar",
        )
        for jar in Path(tmp).glob("*.jar"):
            with zipfile.ZipFile(jar) as archive:
                for entry in archive.namelist():
                    if entry.startswith("META-INF/fabric8/flinkdeployments.") and entry.endswith(".yml"):
                        write_schemas(yaml.safe_load(archive.read(entry)), target)
    generate_strimzi_crds(target)
    stamp.write_text(CRD_SOURCES)
    return target


def generate_strimzi_crds(target: Path) -> None:
    """Strimzi's CRDs from its API model by its own generator (``poms/strimzi-crds.xml``, Maven Central)."""
    require_tool("java", "java is required to generate Strimzi's CRDs")
    with tempfile.TemporaryDirectory() as tmp:
        lib, out = Path(tmp) / "lib", Path(tmp) / "out"
        out.mkdir()
        run_step(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(Path(__file__).parent / "poms" / "strimzi-crds.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={lib}",
            ],
            "downloading Strimzi's API model and CRD generator",
        )
        run_step(
            [
                "java",
                "-cp",
                f"{lib}/*",
                "io.strimzi.crdgenerator.CrdGenerator",
                "--yaml",
                "--api-versions",
                "v1beta2",
                "--storage-version",
                "v1beta2",
                *(f"{cls}={out / name}.yaml" for cls, name in STRIMZI_KINDS.items()),
            ],
            "generating Strimzi's CRDs",
        )
        for name in STRIMZI_KINDS.values():
            write_schemas(yaml.safe_load((out / f"{name}.yaml").read_text()), target)


def render(overlay: str, state: Path | None = None) -> str:
    """``kustomize build deploy/k8s/overlays/<overlay>`` (offline)."""
    result = subprocess.run(
        [str(kustomize_path(state)), "build", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kustomize build {overlay} failed: {result.stderr}")
    return result.stdout


def crd_schema(group: str, kind: str, version: str, state: Path | None = None) -> dict[str, Any] | None:
    """A custom resource's schema, strict: the API server prunes fields a structural schema does not declare, and
    here such a field is an error (a misspelt field would otherwise vanish silently)."""
    path = crds_dir(state) / group / f"{kind}.{version}.json"
    return strict(json.loads(path.read_text())) if path.exists() else None


def strict(schema: dict[str, Any], *, root: bool = True) -> dict[str, Any]:
    """``additionalProperties: false`` on every object schema that declares its properties and neither allows
    other ones nor preserves unknown fields (at the root, ``apiVersion``, ``kind`` and ``metadata`` are allowed)."""
    result = dict(schema)
    if "properties" in result:
        result["properties"] = {name: strict(sub, root=False) for name, sub in result["properties"].items()}
        if root:
            result["properties"] = {"apiVersion": {}, "kind": {}, "metadata": {}} | result["properties"]
    for keyword in ("items", "additionalProperties", "not"):
        if isinstance(result.get(keyword), dict):
            result[keyword] = strict(result[keyword], root=False)
    for keyword in ("allOf", "anyOf", "oneOf"):
        if keyword in result:
            result[keyword] = [strict(sub, root=False) for sub in result[keyword]]
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


def main() -> int:
    state = home()
    try:
        build_kustomize(state)
        fetch_crds(state)
    except RuntimeError as error:
        print(f"setup of the manifest validators failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
