"""The full test session as two pytest lanes over one local stack (``make test``, ``python -m tests.session``).

Most integration tests wait on servers far more than they compute, so the suite runs in two pytest processes at
once, against the same local stack (started here once, or the one ``FREIGHTLINE_STACK_ENV`` names):

- the **engine lane**: the tests that drive the heavy engines (Flink, Spark, Airflow, dbt), the observability
  tests (they submit a Flink job), the engine stages on a secure stack and the end-to-end main job, one after
  another, so the engines never run at once;
- the **service lane**: everything else (unit tests first, then the services' and sinks' integration tests), with
  its output shown live.

The engine lane's output is kept in ``<state>/test-engine-lane.log`` and printed when it ends. Every test names its
own topics, groups, buckets and databases, so the lanes do not see each other's data. The exit status is the
first non-zero of the two (pytest's "no tests collected" counts as a failure). Extra arguments run one plain
pytest session instead, with those arguments (``make test ARGS=...`` is not needed: call pytest directly).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ENGINE_LANE = (
    "tests/e2e",
    "tests/integration/flink",
    "tests/integration/batch_spark",
    "tests/integration/airflow",
    "tests/integration/dbt",
    "tests/integration/observability",
    "tests/integration/secure_engines",
)
NO_TESTS = 5  # pytest's exit status when nothing was collected


def _status(code: int) -> int:
    return 1 if code == NO_TESTS else code


def lanes(pytest: str, extra: list[str]) -> tuple[list[str], list[str]]:
    """The two lanes' command lines: the engine lane's paths, and the rest of ``tests/`` without them."""
    engine = [pytest, *ENGINE_LANE, "-p", "no:cacheprovider", *extra]
    service = [pytest, "tests", *(f"--ignore={path}" for path in ENGINE_LANE), *extra]
    return engine, service


def main(argv: list[str]) -> int:
    from deploy.local.context import StackContext
    from deploy.local.settings import StackSettings
    from deploy.local.stack import Stack, StackError

    pytest = str(Path(sys.executable).with_name("pytest"))
    if argv:
        return _status(subprocess.call([pytest, *argv]))
    stack = Stack(StackContext.create(StackSettings()))
    log = stack.ctx.paths.home / "test-engine-lane.log"
    configured = os.environ.get("FREIGHTLINE_STACK_ENV")
    if configured:
        return run_lanes(pytest, Path(configured), log)
    print("starting the local stack for the session", flush=True)
    try:
        with stack.running(keep=bool(os.environ.get("FREIGHTLINE_KEEP_STACK"))):
            return run_lanes(pytest, stack.ctx.paths.env_file, log)
    except StackError as error:
        print(f"the local stack failed: {error}", file=sys.stderr, flush=True)
        return 1


def run_lanes(pytest: str, env_file: Path, log: Path) -> int:
    """Both lanes against the stack ``env_file`` describes; the engine lane's output kept in ``log``."""
    env = {**os.environ, "FREIGHTLINE_STACK_ENV": str(env_file)}
    engine_cmd, service_cmd = lanes(pytest, [])
    started = time.monotonic()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        engine = subprocess.Popen(engine_cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        print(f"engine lane (pid {engine.pid}): {' '.join(ENGINE_LANE)}; its output: {log}", flush=True)
        service = subprocess.call(service_cmd, env=env)
        print(f"\nservice lane ended ({time.monotonic() - started:.0f} s); waiting for the engine lane", flush=True)
        engine_status = engine.wait()
    print(f"\n== engine lane ({time.monotonic() - started:.0f} s in all)\n{log.read_text()}", flush=True)
    return _status(service) or _status(engine_status)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
