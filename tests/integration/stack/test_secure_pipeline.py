"""The main job's service pipeline entirely on a secure stack (``FREIGHTLINE_SECURE``): both brokers on SASL_SSL with
SCRAM-SHA-512 and the ACL table's least privilege, the registry on HTTPS with roles, PostgreSQL TLS-only (under
FerretDB), the sinks' targets over TLS (MongoDB's wire proxy, WebHDFS, the GCS emulator: each checked against the
stack's CA), each service process logged in as its own Kafka principal and the registry's read-only user.

A stack of the test's own with exactly the components the services need (no Flink, Spark, Airflow or monitoring),
free ports and a temporary state directory, started once for the module; the main job's stages contracts ->
shared-library pipeline -> generator -> mirror -> enrichment and detection -> sinks run over it once, with a small
seeded world, and every stage's count must match exactly, as on the plain stack (``tests/e2e/test_main_job.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from rich.console import Console

from deploy import processes
from deploy.local import kafka_acls
from deploy.local.components import kafka_user_password
from deploy.local.context import StackContext
from deploy.pipeline import LABELS, Report, execute
from services.sink_gcs.settings import SERVICE as SINK_GCS
from services.sink_hdfs.settings import SERVICE as SINK_HDFS
from services.sink_mongodb.settings import SERVICE as SINK_MONGODB
from tests.integration.stack.support import SMALL_WORLD, secure_service_stack, stop_and_wipe
from tests.pipeline_counts import check_service_stages

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

EVENTS = 6_000
SEED = 20261206
STAGES = ("contracts", "shared-library pipeline", "generator", "mirror", "enrichment and detection", "sinks")
# the Kafka principal each service process of the stages must log in as (deploy/local/kafka_acls.py)
PRINCIPALS = {
    "services.generator": kafka_acls.GENERATOR,
    "services.mirror": kafka_acls.MIRROR,
    "services.enricher": kafka_acls.ENRICHER,
    "services.anomaly_detector": kafka_acls.ANOMALY_DETECTOR,
    "services.sink_mongodb": SINK_MONGODB,
    "services.sink_hdfs": SINK_HDFS,
    "services.sink_gcs": SINK_GCS,
}


@dataclass
class SecureRun:
    ctx: StackContext
    env: dict[str, str]
    report: Report
    started: dict[str, dict[str, str]]  # module -> the environment its process was started with


@pytest.fixture(scope="module")
def secure_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRun]:
    stack = secure_service_stack(tmp_path_factory.mktemp("secure-pipeline"))
    started: dict[str, dict[str, str]] = {}
    original = processes.ServiceProcess.start

    def recording_start(self: processes.ServiceProcess, **kwargs: Any) -> processes.ServiceProcess:
        started[self.module] = dict(self.env)
        return original(self, **kwargs)

    try:
        env = stack.up()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(processes.ServiceProcess, "start", recording_start)
            report = execute(stack, {**env, **SMALL_WORLD}, events=EVENTS, seed=SEED, stages=STAGES)
        report.render(Console(stderr=True, width=160))  # shown when a test fails
        yield SecureRun(stack.ctx, env, report, started)
    finally:
        stop_and_wipe(stack)


def test_the_stack_is_secure_end_to_end(secure_run: SecureRun) -> None:
    env = secure_run.env
    assert env["KAFKA_SECURITY_PROTOCOL"] == env["REMOTE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["KAFKA_SASL_MECHANISM"] == env["REMOTE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["SCHEMA_REGISTRY_URL"].startswith("https://")
    assert "sslmode=verify-full" in env["POSTGRES_DSN"]
    ca = str(secure_run.ctx.tls.cert)
    assert f"/?tls=true&tlsCAFile={ca}" in env["MONGODB_URI"]
    assert env["HDFS_WEBHDFS_URL"].startswith("https://") and env["HDFS_SSL_CA_LOCATION"] == ca
    assert env["GCS_ENDPOINT"].startswith("https://") and env["GCS_SSL_CA_LOCATION"] == ca
    # each sink was started with its target's TLS endpoint and the CA (and counted exactly below)
    for module, variables in (
        ("services.sink_mongodb", ("MONGODB_URI",)),
        ("services.sink_hdfs", ("HDFS_WEBHDFS_URL", "HDFS_SSL_CA_LOCATION")),
        ("services.sink_gcs", ("GCS_ENDPOINT", "GCS_SSL_CA_LOCATION")),
    ):
        started = secure_run.started[module]
        assert (module, {v: started[v] for v in variables}) == (module, {v: env[v] for v in variables})


def test_every_stage_counts_exactly_over_tls_and_sasl(secure_run: SecureRun) -> None:
    report = secure_run.report
    figures = report.figures
    assert report.problems == [], report.problems
    assert figures.smoke_consumed == EVENTS
    assert figures.leftover and set(figures.leftover.values()) == {0}, figures.leftover
    assert all(count > 0 for count in figures.generated.values()), figures.generated

    check_service_stages(figures)
    assert sum(item["labels"] for item in figures.detection.values()) == figures.generated[LABELS] > 0


def test_each_service_ran_as_its_own_principal(secure_run: SecureRun) -> None:
    assert set(secure_run.started) == set(PRINCIPALS)
    for module, principal in PRINCIPALS.items():
        env = secure_run.started[module]
        users = (env["KAFKA_SASL_USERNAME"], env["REMOTE_KAFKA_SASL_USERNAME"])
        assert (module, users) == (module, (principal, principal))
        password = kafka_user_password(secure_run.ctx, principal)
        own = env["KAFKA_SASL_PASSWORD"] == env["REMOTE_KAFKA_SASL_PASSWORD"] == password
        assert (module, own) == (module, True)  # compared, never shown
        # the registry's read-only user, no admin credentials in the URL, no auto-registration
        assert "@" not in env["SCHEMA_REGISTRY_URL"], module
        reader = env["SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"] == secure_run.env["SCHEMA_REGISTRY_READ_ONLY_USER_INFO"]
        assert (module, reader) == (module, True)
        assert env["SCHEMA_REGISTRY_AUTO_REGISTER_SCHEMAS"] == "false"
