"""The shutdown deadline: a drain that overruns ``SHUTDOWN_TIMEOUT_S`` ends the process with status 3."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

from services.common.lifecycle import SHUTDOWN_OVERRUN, Shutdown

# A process that installs the deadline, then ignores the stop flag: only the watchdog can end it.
HANGING_DRAIN = """
import sys, time
from services.common.lifecycle import Shutdown
Shutdown().enforce(float(sys.argv[1])).install()
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def test_an_overrunning_drain_exits_with_the_overrun_status() -> None:
    exited: list[int] = []
    called = threading.Event()

    def fake_exit(code: int) -> None:
        exited.append(code)
        called.set()

    shutdown = Shutdown(exit=fake_exit).enforce(0.01)
    shutdown.request("SIGTERM")
    assert called.wait(30)
    assert exited == [SHUTDOWN_OVERRUN]


def test_without_a_deadline_no_watchdog_runs() -> None:
    shutdown = Shutdown(exit=lambda code: None)
    shutdown.request("SIGTERM")
    assert shutdown.requested
    assert "shutdown-deadline" not in {thread.name for thread in threading.enumerate()}


def test_a_second_request_arms_no_second_watchdog() -> None:
    exited: list[int] = []
    shutdown = Shutdown(exit=exited.append).enforce(0.01)
    shutdown.request("SIGTERM")
    shutdown.request("SIGINT")
    assert shutdown.reason == "SIGTERM"
    watchdogs = [thread for thread in threading.enumerate() if thread.name == "shutdown-deadline"]
    assert len(watchdogs) <= 1
    for thread in watchdogs:
        thread.join(30)
    assert exited == [SHUTDOWN_OVERRUN]


def _terminate(code: str, *args: str) -> tuple[int, str]:
    """Run ``code`` until it prints ``ready``, send it SIGTERM, and return its exit status and stderr."""
    with subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        if process.stdout.readline().strip() == "ready":
            process.send_signal(signal.SIGTERM)
        else:
            process.kill()
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        return process.returncode, stderr


def test_sigterm_to_a_hanging_process_ends_it_with_one_line_naming_the_setting() -> None:
    returncode, stderr = _terminate(HANGING_DRAIN, "0.5")
    assert returncode == SHUTDOWN_OVERRUN, stderr
    lines = [line for line in stderr.splitlines() if "SHUTDOWN_TIMEOUT_S" in line]
    assert len(lines) == 1
    assert "SHUTDOWN_TIMEOUT_S=0.5s" in lines[0]


def test_sigterm_to_a_process_that_drains_in_time_exits_normally() -> None:
    code = (
        "import sys\n"
        "from services.common.lifecycle import Shutdown\n"
        "s = Shutdown().enforce(30).install()\n"
        "print('ready', flush=True)\n"
        "s.wait()\n"
        "sys.exit(0)\n"
    )
    returncode, stderr = _terminate(code)
    assert returncode == 0, stderr
