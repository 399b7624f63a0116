"""The secret scan of the test command: detect-secrets over every file git knows (tracked, and untracked files
that are not ignored), compared with the committed baseline ``.secrets.baseline``.

The baseline holds the known false positives (test passwords such as ``wrong``, example hashes, base64 examples),
each audited (``is_secret: false``). A finding that is not in it (same file, same secret, same detector; line
numbers do not matter, so edits elsewhere in a file never need a new baseline) fails the scan with its file, line
and detector, never its value. Run ``python -m deploy.secret_scan --update`` after auditing a new false positive:
it rewrites the baseline from a fresh scan, keeping the audit marks of the findings it already held.

The baseline is read and written only here; the scan never modifies it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from detect_secrets.core import baseline
from detect_secrets.core.secrets_collection import SecretsCollection

REPO_ROOT = Path(__file__).resolve().parents[1]
BASELINE = ".secrets.baseline"


def files_to_scan(root: Path) -> list[str]:
    """Every file git knows in ``root``: tracked ones and untracked ones not ignored (relative paths)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return sorted({name for name in listed.split("\0") if name and (root / name).is_file() and name != BASELINE})


def scan(files: list[str], baseline_path: Path) -> tuple[SecretsCollection, SecretsCollection]:
    """(what the committed baseline holds, what a scan of ``files`` finds now), with the baseline's settings;
    paths relative to the working directory, as the baseline names them."""
    known = baseline.load(baseline.load_from_file(str(baseline_path)), str(baseline_path))
    found = SecretsCollection()
    found.scan_files(*files)
    return known, found


def new_findings(known: SecretsCollection, found: SecretsCollection) -> list[tuple[str, int, str]]:
    """(file, line, detector) of each finding the baseline does not hold."""
    rows = []
    for filename, secret in found - known:
        rows.append((filename, int(secret.line_number or 0), secret.type))
    return sorted(rows)


def updated_baseline(known: SecretsCollection, found: SecretsCollection) -> dict[str, Any]:
    """The baseline a fresh scan gives, with the audit marks (``is_secret``) of the findings already known."""
    audited = {(name, s.secret_hash, s.type): s.is_secret for name, s in known}
    for filename, secret in found:
        secret.is_secret = audited.get((filename, secret.secret_hash, secret.type))
    output = baseline.format_for_output(found)
    output.pop("generated_at", None)
    # The scan never reads the baseline as a source file (``files_to_scan`` leaves it out): no filter naming it.
    output["filters_used"] = [f for f in output["filters_used"] if not f["path"].endswith(".is_baseline_file")]
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.secret_scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the repository to scan")
    parser.add_argument("--update", action="store_true", help="rewrite the baseline from a fresh scan")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    baseline_path = root / BASELINE
    os.chdir(root)
    files = files_to_scan(root)
    known, found = scan(files, baseline_path)
    if args.update:
        baseline_path.write_text(json.dumps(updated_baseline(known, found), indent=2) + "\n")
        print(f"{BASELINE}: {len(list(found))} findings written")
        return 0
    unaudited = [(name, s.line_number, s.type) for name, s in known if s.is_secret is not False]
    new = new_findings(known, found)
    for filename, line, kind in new:
        print(f"possible secret: {filename}:{line}: {kind}", file=sys.stderr)
    for filename, line, kind in unaudited:
        print(f"baseline entry not audited as a false positive: {filename}:{line}: {kind}", file=sys.stderr)
    if new or unaudited:
        print(
            f"secret scan: {len(new)} new finding(s), {len(unaudited)} unaudited; remove the secret, or mark a false "
            "positive with `# pragma: allowlist secret` or audit it into the baseline",
            file=sys.stderr,
        )
        return 1
    print(f"secret scan: {len(files)} files, no secret outside the audited baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
