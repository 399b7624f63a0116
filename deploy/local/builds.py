"""Idempotent build steps of the local stack (``freightline setup``): a stamp file holds what a step's output was
last built from (a hash of its sources, a version), and a step's command either succeeds or raises with the end of
its output."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

OUTPUT_TAIL = 4000  # characters of a failed command's stdout and of its stderr kept in the error


def digest(*paths: Path, extra: str = "") -> str:
    """SHA-256 of ``extra`` followed by the files' bytes."""
    hashed = hashlib.sha256(extra.encode())
    for path in paths:
        hashed.update(path.read_bytes())
    return hashed.hexdigest()


def is_current(stamp: Path, built_from: str) -> bool:
    """Whether the stamp says the output was built from ``built_from`` (write it with ``stamp.write_text``)."""
    return stamp.exists() and stamp.read_text() == built_from


def require_tool(tool: str, message: str) -> None:
    if shutil.which(tool) is None:
        raise RuntimeError(message)


def run_step(
    command: Sequence[str], what: str, *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> None:
    """Run a build command; raises ``RuntimeError("<what> failed: <output>")`` when it fails."""
    result = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stdout[-OUTPUT_TAIL:]}{result.stderr[-OUTPUT_TAIL:]}")


def go_version() -> str:
    """``go version``'s output (part of what a Go build's stamp holds); raises when Go is missing."""
    require_tool(
        "go",
        "go is required to build the stack's Go programs (FerretDB, fake-gcs, Jaeger, statsd_exporter, Toxiproxy)",
    )
    return subprocess.run(["go", "version"], capture_output=True, text=True, check=True).stdout


def go_build(
    binary: Path,
    source: Path,
    package: str,
    what: str,
    progress: Callable[[str], None],
    *,
    sources: Sequence[str] = ("go.mod", "go.sum"),
    tags: Sequence[str] = (),
) -> None:
    """Build ``package`` of the Go module in ``source`` into ``binary`` (static, the module's pinned versions), unless
    its stamp says it was built from the same ``sources`` with the same Go; idempotent."""
    stamp = binary.with_name(f".{binary.name}.stamp")
    built_from = digest(*(source / name for name in sources), extra=go_version())
    if binary.exists() and is_current(stamp, built_from):
        return
    progress(f"building {what} (launchers/{source.name}) with go build")
    binary.parent.mkdir(parents=True, exist_ok=True)
    run_step(
        ["go", "build", *(["-tags", ",".join(tags)] if tags else []), "-trimpath", "-o", str(binary), package],
        f"building {what}",
        cwd=source,
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"},
    )
    stamp.write_text(built_from)
