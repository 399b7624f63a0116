"""Process supervision for the local stack, delegated to supervisord.

supervisord owns the server processes: it starts them detached from the CLI, sends each its stop signal on
``down`` and SIGKILLs the whole process group after the stop timeout, and writes each component's output to
``logs/<component>.log``. This module only renders its configuration and talks to it over XML-RPC on a unix
socket.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

from deploy.local.components import Component, Program
from deploy.local.context import StackContext


def socket_path(ctx: StackContext) -> Path:
    path = ctx.paths.run / "supervisor.sock"
    if len(str(path)) > 100:  # unix socket paths are limited to ~108 bytes
        digest = hashlib.sha256(str(ctx.paths.home).encode()).hexdigest()[:12]
        path = Path("/tmp") / f"freightline-{digest}.sock"
    return path


def _quote_env(environment: dict[str, str]) -> str:
    return ",".join(f'{key}="{value}"' for key, value in environment.items())


def render_config(ctx: StackContext, programs: Iterable[tuple[Component, Program]]) -> str:
    paths = ctx.paths
    sections = [
        f"[unix_http_server]\nfile={socket_path(ctx)}\nchmod=0700\n",
        "[supervisord]\n"
        f"logfile={paths.log('supervisord')}\n"
        "logfile_maxbytes=10MB\nlogfile_backups=1\n"
        f"pidfile={paths.run / 'supervisord.pid'}\n"
        f"directory={paths.home}\n"
        "minfds=4096\n",
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
        f"[supervisorctl]\nserverurl=unix://{socket_path(ctx)}\n",
    ]
    for component, program in programs:
        lines = [
            f"[program:{component.name}]",
            f"command={shlex.join(program.command)}",
            f"directory={program.directory}",
            "autostart=false",
            "autorestart=false",
            "startsecs=0",
            "startretries=0",
            f"stopsignal={program.stop_signal}",
            f"stopwaitsecs={ctx.settings.stop_timeout_s}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={paths.log(component.name)}",
            "stdout_logfile_maxbytes=50MB",
            "stdout_logfile_backups=1",
        ]
        if program.user and os.geteuid() == 0:
            lines.append(f"user={program.user}")
        environment = {"PYTHONUNBUFFERED": "1", **program.environment}
        lines.append(f"environment={_quote_env(environment)}")
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


class Supervisor:
    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx
        self.config_path = ctx.paths.config / "supervisord.conf"
        self.pid_path = ctx.paths.run / "supervisord.pid"

    def _proxy(self) -> Any:
        transport = SupervisorTransport(None, None, serverurl=f"unix://{socket_path(self.ctx)}")
        return cast(Any, xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)).supervisor

    def daemon_pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def running(self) -> bool:
        if self.daemon_pid() is None:
            return False
        try:
            return cast(str, self._proxy().getState()["statename"]) == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def start_daemon(self, config: str) -> None:
        """Start supervisord with ``config``, or reload it when already running."""
        self.config_path.write_text(config)
        self.config_path.chmod(0o600)
        if self.running():
            proxy = self._proxy()
            added, changed, removed = proxy.reloadConfig()[0]
            for name in removed + changed:
                proxy.stopProcessGroup(name)
                proxy.removeProcessGroup(name)
            for name in changed + added:
                proxy.addProcessGroup(name)
            return
        socket_path(self.ctx).unlink(missing_ok=True)
        supervisord = Path(sys.executable).with_name("supervisord")
        subprocess.run([str(supervisord), "-c", str(self.config_path)], check=True)
        deadline = time.monotonic() + 15
        while not self.running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"supervisord did not start; see {self.ctx.paths.log('supervisord')}")
            time.sleep(0.1)

    def start(self, name: str) -> None:
        self._proxy().startProcess(name, False)

    def stop(self, name: str) -> None:
        """Stop a component's process; one not running, or unknown to the running daemon (a component added by an
        upgrade while an older stack runs: it was never started), has nothing to stop."""
        try:
            self._proxy().stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString and "BAD_NAME" not in fault.faultString:
                raise

    def info(self) -> dict[str, dict[str, Any]]:
        if not self.running():
            return {}
        return {item["name"]: item for item in self._proxy().getAllProcessInfo()}

    def shutdown(self) -> None:
        pid = self.daemon_pid()
        if pid is None:
            return
        try:
            self._proxy().shutdown()
        except (OSError, xmlrpc.client.Error):
            os.kill(pid, 15)
        deadline = time.monotonic() + self.ctx.settings.stop_timeout_s + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)
        socket_path(self.ctx).unlink(missing_ok=True)
