"""``python -m deploy.manifests.secret_scan``: detect-secrets over every tracked file; exit 1 naming each potential
secret the committed, audited baseline (``.secrets.baseline``) does not hold.

Unlike ``detect-secrets-hook`` it never rewrites the baseline (the hook rewrites it, and fails, whenever a known
finding moves to another line); findings are compared by file, type and secret hash, not by line.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from detect_secrets.core import baseline
from detect_secrets.core.secrets_collection import SecretsCollection
from detect_secrets.settings import default_settings

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / ".secrets.baseline"


def new_secrets(files: Iterable[str], baseline_path: Path = BASELINE) -> list[str]:
    """``file:line type`` of each potential secret in ``files`` (paths relative to the working directory) that the
    baseline does not hold."""
    found = SecretsCollection()
    with default_settings():
        # loading the baseline also configures the scan as the baseline was made (plugins, filters, exclusions)
        known = baseline.load(baseline.load_from_file(str(baseline_path)), str(baseline_path))
        found.scan_files(*files, num_processors=2)
    return sorted(f"{name}:{secret.line_number} {secret.type}" for name, secret in found - known)


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [name for name in listed.stdout.split("\0") if name and name != BASELINE.name]


def main() -> int:
    problems = new_secrets(tracked_files())
    for problem in problems:
        print(f"potential secret not in .secrets.baseline: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
