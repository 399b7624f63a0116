"""The offline validators' inputs, fetched from registries at setup (``python -m deploy.manifests.tools``):

- ``kustomize`` built from its Go module (``sigs.k8s.io/kustomize/kustomize/v5``) into ``<home>/bin``;
- the operators' CRD schemas into ``<home>/crds/<group>/<kind>.<version>.json`` (the ``openAPIV3Schema`` of each
  served version): the Prometheus Operator's (``ServiceMonitor``, ``PodMonitor``, ``PrometheusRule``) from its Go
  module's ``example/prometheus-operator-crd/``, the Flink Kubernetes Operator's (``FlinkDeployment``) from its API
  jar on Maven Central (``poms/crds.xml``).

Not obtainable from a reachable registry (so checked by the consistency tests instead): Strimzi's CRDs (its
``io.strimzi:api`` jar carries the model classes only), KEDA's (its Go module's releases that carry them need a
newer Go than the machine's), the Spark operator's (the Go module proxy refuses ``github.com/kubeflow/spark-operator``).
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
FLINK_OPERATOR_VERSION = "1.10.0"
CRD_SOURCES = (
    f"{PROMETHEUS_OPERATOR_MODULE}@{PROMETHEUS_OPERATOR_VERSION} flink-kubernetes-operator-api:{FLINK_OPERATOR_VERSION}"
)


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
    require_tool("go", "go is required to download the Prometheus Operator's CRDs")
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{PROMETHEUS_OPERATOR_MODULE}@{PROMETHEUS_OPERATOR_VERSION}"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"downloading {PROMETHEUS_OPERATOR_MODULE} failed:\n{result.stdout}{result.stderr}")
    module_dir = Path(json.loads(result.stdout)["Dir"])
    for name in ("servicemonitors", "podmonitors", "prometheusrules"):
        write_schemas(
            yaml.safe_load(
                (module_dir / "example/prometheus-operator-crd" / f"monitoring.coreos.com_{name}.yaml").read_text()
            ),
            target,
        )
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
    stamp.write_text(CRD_SOURCES)
    return target


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
    path = crds_dir(state) / group / f"{kind}.{version}.json"
    return json.loads(path.read_text()) if path.exists() else None


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
