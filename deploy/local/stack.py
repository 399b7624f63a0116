"""The local stack: real servers on loopback, started and stopped as one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from deploy.local import jars
from deploy.local.airflow import airflow_components
from deploy.local.components import Component, KafkaBroker, Postgres, SchemaRegistry, port_is_free
from deploy.local.context import StackContext, wipe
from deploy.local.flink import flink_components
from deploy.local.observability_components import observability_components
from deploy.local.storage_components import storage_components
from deploy.local.supervision import Supervisor, render_config
from deploy.local.toxiproxy import build_toxiproxy


def default_components() -> list[Component]:
    """The stack, in start order (a component starts after everything it depends on answers)."""
    return [
        KafkaBroker("kafka", sasl=False),
        KafkaBroker("remote_kafka", sasl=True),
        Postgres(),
        SchemaRegistry(),
        *storage_components(),
        *observability_components(),
        *flink_components(),
        *airflow_components(),
    ]


class StackError(RuntimeError):
    """A clear, user-facing failure of the local stack."""


@dataclass
class ComponentStatus:
    name: str
    state: str
    pid: int | None
    ports: dict[str, int]
    ready: bool


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class Stack:
    def __init__(self, ctx: StackContext, components: Sequence[Component] | None = None) -> None:
        self.ctx = ctx
        self.components = list(components) if components is not None else default_components()
        self.supervisor = Supervisor(ctx)
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise StackError(f"duplicate component names in {names}")

    def component(self, name: str) -> Component:
        for component in self.components:
            if component.name == name:
                return component
        raise StackError(f"unknown component {name!r}; known: {[c.name for c in self.components]}")

    # -- lifecycle -------------------------------------------------------------------------------------
    def setup(self, progress: Progress = _quiet) -> None:
        """Resolve the Java runtimes (idempotent)."""
        self.ctx.paths.ensure()
        for name in jars.runtimes():
            progress(f"resolving {name} jars from Maven Central")
            jars.fetch(self.ctx.paths, name)
        for component in self.components:
            component_setup = getattr(component, "setup", None)
            if callable(component_setup):  # optional hook: build launchers and binaries (idempotent)
                component_setup(self.ctx, progress)
        build_toxiproxy(self.ctx, progress)  # the chaos harness's fault injector (not a component)

    def up(self, *, fresh: bool = False, progress: Progress = _quiet) -> dict[str, str]:
        if fresh:
            self.down(progress=progress)
            wipe(self.ctx.paths)
        self.setup(progress)
        running = {name for name, info in self.supervisor.info().items() if info["statename"] == "RUNNING"}
        self._check_ports(skip=running)
        for component in self.components:
            if component.name not in running:
                progress(f"preparing {component.name}")
                component.prepare(self.ctx)
        config = render_config(self.ctx, [(c, c.program(self.ctx)) for c in self.components])
        self.supervisor.start_daemon(config)
        # a running component whose program changed was stopped by the reload: start it again below
        running = {name for name, info in self.supervisor.info().items() if info["statename"] == "RUNNING"}

        started: set[str] = set()
        pending = list(self.components)
        while pending:
            wave = [c for c in pending if all(dep in started for dep in c.depends_on)]
            if not wave:
                raise StackError(f"unsatisfiable dependencies among {[c.name for c in pending]}")
            for component in wave:
                if component.name not in running:
                    progress(f"starting {component.name}")
                    self.supervisor.start(component.name)
            # each wave has the whole start timeout: a component may take that long once what it needs answers
            self._wait_ready(wave, time.monotonic() + self.ctx.settings.start_timeout_s, progress)
            for component in wave:
                component.after_ready(self.ctx)
                started.add(component.name)
                pending.remove(component)
        env = self.exports()
        self.ctx.paths.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        self.ctx.paths.env_file.chmod(0o600)
        return env

    def _check_ports(self, skip: set[str]) -> None:
        for component in self.components:
            if component.name in skip:
                continue
            for role, port in component.ports(self.ctx).items():
                if not port_is_free(port):
                    raise StackError(
                        f"port {port} ({component.name} {role}) is already in use: stop what holds it or "
                        f"choose another port in the FREIGHTLINE_* settings"
                    )

    def _wait_ready(self, wave: list[Component], deadline: float, progress: Progress) -> None:
        waiting = list(wave)
        while waiting:
            info = self.supervisor.info()
            for component in list(waiting):
                state = info.get(component.name, {}).get("statename")
                if state in {"EXITED", "FATAL", "BACKOFF"}:
                    log = self.ctx.paths.log(component.name)
                    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                    raise StackError(f"{component.name} exited during start-up ({state}); {log}:\n{tail}")
                if component.ready(self.ctx):
                    progress(f"{component.name} is ready")
                    waiting.remove(component)
            late = [c for c in waiting if time.monotonic() > deadline + c.extra_start_s]
            if late:
                names = ", ".join(c.name for c in late)
                raise StackError(f"timed out waiting for {names}; see {self.ctx.paths.logs}")
            if waiting:
                time.sleep(0.5)

    @contextmanager
    def running(self, *, keep: bool = False, progress: Progress = _quiet) -> Iterator[dict[str, str]]:
        """The stack up for the block (its endpoints): started when it was not running, and then stopped again
        at the end unless ``keep``; a stack that was already running is left running."""
        was_running = self.supervisor.running()
        try:
            yield self.up(progress=progress)
        finally:
            if not was_running and not keep:
                self.down(progress=progress)

    def down(self, progress: Progress = _quiet) -> None:
        if not self.supervisor.running():
            return
        for component in reversed(self.components):
            progress(f"stopping {component.name}")
            self.supervisor.stop(component.name)
        self.supervisor.shutdown()
        self.ctx.paths.env_file.unlink(missing_ok=True)

    # -- inspection ------------------------------------------------------------------------------------
    def exports(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for component in self.components:
            env.update(component.exports(self.ctx))
        return env

    def status(self) -> list[ComponentStatus]:
        info = self.supervisor.info()
        rows = []
        for component in self.components:
            item = info.get(component.name, {})
            state = item.get("statename", "STOPPED")
            rows.append(
                ComponentStatus(
                    name=component.name,
                    state=state,
                    pid=item.get("pid") or None,
                    ports=component.ports(self.ctx),
                    ready=state == "RUNNING" and component.ready(self.ctx),
                )
            )
        return rows

    def pids(self) -> list[int]:
        """Process ids of supervisord and every running component."""
        pids = [info["pid"] for info in self.supervisor.info().values() if info.get("pid")]
        daemon = self.supervisor.daemon_pid()
        return [*pids, daemon] if daemon else pids
