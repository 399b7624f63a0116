"""Every service started with a bad setting exits non-zero with one clear line naming it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deploy.local.context import REPO_ROOT
from services.common.entrypoint import UNREACHABLE_ENDPOINT
from tests.integration.processes import free_port

pytestmark = pytest.mark.integration

# (service module, variable, bad value): a malformed value of the service's own settings
MALFORMED = [
    ("schema_registry", "SCHEMA_REGISTRY_SERVER_PORT", "not-a-port"),
    ("generator", "GENERATOR_SEED", "not-a-number"),
    ("mirror", "MIRROR_BATCH_SIZE", "0"),
    ("enricher", "ENRICHER_BATCH_SIZE", "-3"),
    ("anomaly_detector", "ANOMALY_DETECTOR_BATCH_SIZE", "lots"),
    ("sink_mongodb", "SINK_MONGODB_BATCH_SIZE", "0"),
    ("sink_hdfs", "SINK_HDFS_BATCH_SIZE", "many"),
    ("sink_gcs", "SINK_GCS_BATCH_SIZE", "-1"),
]
SERVICES = [service for service, _, _ in MALFORMED]


def _run(service: str, env: dict[str, str], **changes: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        env={**os.environ, **env, "METRICS_PORT": "0", **changes},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,  # a hang guard, not a timed assertion
    )


def _assert_one_line_naming(result: subprocess.CompletedProcess[str], variable: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stderr
    assert len(lines) == 1, result.stderr
    assert variable in lines[0], lines[0]


@pytest.mark.parametrize(("service", "variable", "value"), MALFORMED, ids=SERVICES)
def test_a_malformed_setting_is_named_in_one_line(
    stack_env: dict[str, str], service: str, variable: str, value: str
) -> None:
    _assert_one_line_naming(_run(service, stack_env, **{variable: value}), variable)


@pytest.mark.parametrize("service", SERVICES[1:])
def test_an_empty_kafka_bootstrap_setting_is_named_in_one_line(stack_env: dict[str, str], service: str) -> None:
    _assert_one_line_naming(_run(service, stack_env, KAFKA_BOOTSTRAP_SERVERS=" "), "KAFKA_BOOTSTRAP_SERVERS")


def test_the_mirror_without_the_remote_password_names_it_in_one_line(stack_env: dict[str, str]) -> None:
    env = {k: v for k, v in stack_env.items() if k != "REMOTE_KAFKA_SASL_PASSWORD"}
    _assert_one_line_naming(_run("mirror", env, REMOTE_KAFKA_SASL_PASSWORD=""), "REMOTE_KAFKA_SASL_PASSWORD")


# (service, the setting that points at an endpoint it depends on): each is pointed at a port nobody listens on
KAFKA_CLIENTS = ["generator", "mirror", "enricher", "anomaly_detector", "sink_mongodb", "sink_hdfs", "sink_gcs"]
UNREACHABLE = [
    ("schema_registry", "SCHEMA_REGISTRY_SERVER_DATABASE_DSN"),
    *[(service, "KAFKA_BOOTSTRAP_SERVERS") for service in KAFKA_CLIENTS],
    *[(service, "SCHEMA_REGISTRY_URL") for service in KAFKA_CLIENTS],
    ("generator", "REMOTE_KAFKA_BOOTSTRAP_SERVERS"),
    ("mirror", "REMOTE_KAFKA_BOOTSTRAP_SERVERS"),
    ("sink_mongodb", "MONGODB_URI"),
    ("sink_hdfs", "HDFS_WEBHDFS_URL"),
    ("sink_gcs", "GCS_ENDPOINT"),
]


def _nowhere(variable: str, address: str) -> str:
    """A value of ``variable`` in its own form that points at ``address``."""
    if variable.endswith("BOOTSTRAP_SERVERS"):
        return address
    if variable == "MONGODB_URI":
        return f"mongodb://{address}"
    if variable.endswith("_DSN"):
        return f"postgresql://freightline@{address}/freightline"
    return f"http://{address}"


@pytest.mark.parametrize(("service", "variable"), UNREACHABLE, ids=[f"{s}-{v}" for s, v in UNREACHABLE])
def test_an_unreachable_endpoint_is_named_in_one_line(stack_env: dict[str, str], service: str, variable: str) -> None:
    """Every other endpoint answers: the one line names exactly the setting whose endpoint does not, and its
    address (the process logs nothing before it)."""
    address = f"127.0.0.1:{free_port()}"  # a loopback port with nothing behind it
    timeouts = {"STARTUP_TIMEOUT_S": "3", "SCHEMA_REGISTRY_SERVER_STARTUP_TIMEOUT_S": "3"}
    result = _run(service, stack_env, **{variable: _nowhere(variable, address)}, **timeouts)
    _assert_one_line_naming(result, variable)
    assert address in result.stderr, result.stderr
    assert result.returncode == UNREACHABLE_ENDPOINT, result.stderr
