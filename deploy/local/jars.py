"""Java runtimes of the local stack, resolved from Maven Central with ``mvn``.

Each ``poms/<name>.xml`` lists one runtime's artifacts; ``fetch`` copies its dependency closure into
``<state>/jars/<name>/`` once (a stamp of the pom's hash makes it idempotent).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from deploy.local.context import StackPaths

POMS = Path(__file__).resolve().parent / "poms"


def runtimes() -> list[str]:
    return sorted(p.stem for p in POMS.glob("*.xml"))


def jar_dir(paths: StackPaths, name: str) -> Path:
    return paths.jars / name


def classpath(paths: StackPaths, name: str) -> str:
    directory = jar_dir(paths, name)
    if not any(directory.glob("*.jar")):
        raise RuntimeError(f"no jars for {name} in {directory}: run `freightline setup` first")
    return f"{directory}/*"


def fetch(paths: StackPaths, name: str) -> bool:
    """Resolve one runtime; returns False when it was already up to date."""
    pom = POMS / f"{name}.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    target = jar_dir(paths, name)
    stamp = target / ".stamp"
    if stamp.exists() and stamp.read_text() == digest:
        return False
    if shutil.which("mvn") is None:
        raise RuntimeError("mvn (Maven) is required to resolve the stack's jars from Maven Central")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={target}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"resolving {name} jars failed:\n{result.stdout[-4000:]}{result.stderr[-4000:]}")
    stamp.write_text(digest)
    return True
