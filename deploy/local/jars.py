"""Java runtimes of the local stack, resolved from Maven Central with ``mvn``.

Each ``poms/<name>.xml`` lists one runtime's artifacts; ``fetch`` copies its dependency closure into
``<state>/jars/<name>/`` once (a stamp of the pom's hash makes it idempotent).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from deploy.local.builds import digest, is_current, require_tool, run_step
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
    built_from = digest(pom)
    target = jar_dir(paths, name)
    stamp = target / ".stamp"
    if is_current(stamp, built_from):
        return False
    require_tool("mvn", "mvn (Maven) is required to resolve the stack's jars from Maven Central")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    command = ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={target}"]
    run_step([*command, "-DincludeScope=runtime"], f"resolving {name} jars")
    stamp.write_text(built_from)
    return True
