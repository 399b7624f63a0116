"""The stack's Flink session cluster: a JobManager and a TaskManager, each its own supervised process.

Both run from the apache-flink wheel of the PyFlink environment (``deploy/bootstrap/envs/flink``, created by setup)
with ``pyflink/bin/jobmanager.sh`` / ``taskmanager.sh start-foreground`` (which compute the memory options and exec
``flink-console.sh``: the daemon in the foreground).
The stack gives them:

- ``FLINK_CONF_DIR`` = ``config/flink``: a generated ``config.yaml`` (loopback addresses, the REST port of
  ``FREIGHTLINE_FLINK_PORT``, bounded process memory, slots, restart strategy, checkpoint and savepoint
  directories under ``data/flink``, the Prometheus reporter) and the wheel's log4j files;
- ``FLINK_LIB_DIR`` = ``jars/flink-lib``: the wheel's own ``lib`` jars plus the connectors resolved from Maven
  Central by setup (``poms/flink.xml``: Kafka, the Confluent-registry Avro format, JDBC and PostgreSQL's driver),
  so the cluster and the client that submits jobs (``deploy/flink_jobs.py``) see the same classes;
- ``FLINK_LOG_DIR`` = ``logs/flink`` (the daemons' own log files; their console goes to ``logs/<component>.log``).

Jobs are submitted with Flink's own CLI (``freightline flink submit``); listing, cancelling and savepoints go
through the REST API (``FLINK_REST_URL`` in ``stack.env``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import yaml

from deploy.local.components import Component, Program
from deploy.local.context import REPO_ROOT, StackContext
from deploy.local.jars import jar_dir
from services.common.settings import LOCAL_HOST

FLINK_ENV = REPO_ROOT / "deploy" / "bootstrap" / "envs" / "flink"
FLINK_VENV = FLINK_ENV / ".venv"
PROMETHEUS_REPORTER = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"


def flink_home() -> Path:
    """The ``pyflink`` folder of the PyFlink environment: Flink's distribution (bin, lib, opt, plugins, conf)."""
    homes = sorted(FLINK_VENV.glob("lib/python3*/site-packages/pyflink"))
    if not homes or not (homes[0] / "bin" / "flink-console.sh").exists():
        raise RuntimeError(f"no PyFlink environment at {FLINK_VENV}: run deploy/bootstrap/setup.sh (make setup)")
    return homes[0]


def flink_python() -> Path:
    return FLINK_VENV / "bin" / "python"


def conf_dir(ctx: StackContext) -> Path:
    return ctx.paths.config / "flink"


def lib_dir(ctx: StackContext) -> Path:
    return ctx.paths.jars / "flink-lib"


def log_dir(ctx: StackContext) -> Path:
    return ctx.paths.logs / "flink"


def state_dir(ctx: StackContext) -> Path:
    return ctx.paths.data / "flink"


def assemble_lib(ctx: StackContext) -> Path:
    """``FLINK_LIB_DIR``: links to the wheel's lib jars and to the connector jars (idempotent)."""
    connectors = sorted(jar_dir(ctx.paths, "flink").glob("*.jar"))
    if not connectors:
        raise RuntimeError(f"no Flink connector jars in {jar_dir(ctx.paths, 'flink')}: run `freightline setup`")
    target = lib_dir(ctx)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for jar in [*sorted((flink_home() / "lib").glob("*.jar")), *connectors]:
        (target / jar.name).symlink_to(jar)
    return target


def client_environment(ctx: StackContext) -> dict[str, str]:
    """What Flink's scripts and CLI need to find this stack's configuration, jars and log folder."""
    return {
        "FLINK_CONF_DIR": str(conf_dir(ctx)),
        "FLINK_LIB_DIR": str(lib_dir(ctx)),
        "FLINK_LOG_DIR": str(log_dir(ctx)),
        "FLINK_PID_DIR": str(ctx.paths.run),
    }


def rest_url(ctx: StackContext) -> str:
    return f"http://{LOCAL_HOST}:{ctx.settings.flink_port}"


# What a cluster running the window jobs needs whatever runs it (this stack, compose, the Flink Kubernetes Operator):
# window state on the heap (hashmap backend: the windows' state is small, managed memory only serves batch operators
# here), a failed task restarts its region with an exponential back-off, the last checkpoints kept and retained on
# cancellation (a restart or an upgrade resumes from them). ``deploy/manifests`` writes the same into the deployments.
JOB_CLUSTER_CONFIG: dict[str, str | int | float] = {
    "jobmanager.execution.failover-strategy": "region",
    "taskmanager.memory.managed.fraction": 0.1,
    "state.backend.type": "hashmap",
    "execution.checkpointing.num-retained": 2,
    "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
    "restart-strategy.type": "exponential-delay",
    "restart-strategy.exponential-delay.initial-backoff": "1 s",
    "restart-strategy.exponential-delay.max-backoff": "30 s",
    "restart-strategy.exponential-delay.attempts-before-reset-backoff": 20,
    "metrics.reporter.prom.factory.class": PROMETHEUS_REPORTER,
}


def cluster_config(ctx: StackContext, java_opts: str) -> dict[str, object]:
    """The session cluster's ``config.yaml`` (flattened keys, which Flink 2 reads as they are)."""
    s = ctx.settings
    state = state_dir(ctx)
    return {
        "env.java.opts.all": java_opts,
        "jobmanager.rpc.address": LOCAL_HOST,
        "jobmanager.rpc.port": s.flink_rpc_port,
        "jobmanager.bind-host": LOCAL_HOST,
        "jobmanager.memory.process.size": s.flink_jobmanager_memory,
        "taskmanager.host": LOCAL_HOST,
        "taskmanager.bind-host": LOCAL_HOST,
        "taskmanager.numberOfTaskSlots": s.flink_taskmanager_slots,
        "taskmanager.memory.process.size": s.flink_taskmanager_memory,
        "parallelism.default": 1,
        "rest.address": LOCAL_HOST,
        "rest.bind-address": LOCAL_HOST,
        "rest.port": s.flink_port,
        "web.upload.dir": str(state / "uploads"),
        "io.tmp.dirs": str(state / "tmp"),
        "execution.checkpointing.dir": (state / "checkpoints").as_uri(),
        "execution.checkpointing.savepoint-dir": (state / "savepoints").as_uri(),
        **JOB_CLUSTER_CONFIG,
        "metrics.reporter.prom.host": LOCAL_HOST,
        "pekko.ask.timeout": "30 s",
        # a lost TaskManager is noticed within seconds (loopback: no network hiccups to ride out)
        "heartbeat.interval": 2000,
        "heartbeat.timeout": 20000,
    }


class _FlinkProcess(Component):
    """What the JobManager and the TaskManager share: the distribution, the configuration, the readiness probe."""

    script: str

    def setup(self, ctx: StackContext, progress: Callable[[str], None]) -> None:
        """Link ``FLINK_LIB_DIR`` and write ``FLINK_CONF_DIR``: a client submitting jobs needs both too."""
        flink_home()  # a clear error when the PyFlink environment is missing
        assemble_lib(ctx)
        self.prepare(ctx)

    def prepare(self, ctx: StackContext) -> None:
        home = flink_home()
        conf = conf_dir(ctx)
        conf.mkdir(parents=True, exist_ok=True)
        for name in ("log4j-console.properties", "log4j-cli.properties", "log4j.properties"):
            shutil.copyfile(home / "conf" / name, conf / name)
        wheel_config = yaml.safe_load((home / "conf" / "config.yaml").read_text())
        java_opts = wheel_config["env"]["java"]["opts"]["all"]
        (conf / "config.yaml").write_text(yaml.safe_dump(cluster_config(ctx, java_opts), sort_keys=False))
        for path in (log_dir(ctx), state_dir(ctx) / "uploads", state_dir(ctx) / "tmp"):
            path.mkdir(parents=True, exist_ok=True)

    def metrics_port(self, ctx: StackContext) -> int:
        raise NotImplementedError

    def program(self, ctx: StackContext) -> Program:
        # ``<script> start-foreground`` computes the process's memory (heap, direct, metaspace) from the
        # configuration, then execs ``flink-console.sh`` (the daemon in the foreground, as supervisord wants it)
        script = flink_home() / "bin" / self.script
        return Program(
            command=[
                str(script),
                "start-foreground",
                "-D",
                f"metrics.reporter.prom.port={self.metrics_port(ctx)}",
            ],
            environment=client_environment(ctx),
        )

    def _get(self, ctx: StackContext, path: str) -> dict[str, object] | None:
        import httpx

        try:
            response = httpx.get(f"{rest_url(ctx)}{path}", timeout=2)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None


class FlinkJobManager(_FlinkProcess):
    name = "flink_jobmanager"
    script = "jobmanager.sh"

    def ports(self, ctx: StackContext) -> dict[str, int]:
        s = ctx.settings
        return {"rest": s.flink_port, "rpc": s.flink_rpc_port, "metrics": s.flink_jobmanager_metrics_port}

    def metrics_port(self, ctx: StackContext) -> int:
        return ctx.settings.flink_jobmanager_metrics_port

    def ready(self, ctx: StackContext) -> bool:
        return self._get(ctx, "/config") is not None

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {"FLINK_REST_URL": rest_url(ctx)}


class FlinkTaskManager(_FlinkProcess):
    name = "flink_taskmanager"
    script = "taskmanager.sh"
    depends_on = ("flink_jobmanager",)

    def ports(self, ctx: StackContext) -> dict[str, int]:
        return {"metrics": ctx.settings.flink_taskmanager_metrics_port}

    def metrics_port(self, ctx: StackContext) -> int:
        return ctx.settings.flink_taskmanager_metrics_port

    def ready(self, ctx: StackContext) -> bool:
        """Registered with the JobManager (the REST API lists it with its slots)."""
        overview = self._get(ctx, "/taskmanagers")
        return bool(overview and overview.get("taskmanagers"))

    def exports(self, ctx: StackContext) -> dict[str, str]:
        return {}


def flink_components() -> list[Component]:
    return [FlinkJobManager(), FlinkTaskManager()]
