"""``python -m deploy.manifests [--check]``: write the generated Kubernetes manifests, or fail (exit 1, naming the
files) when the committed ones differ from what the generator writes."""

from __future__ import annotations

import argparse
import sys

from deploy.manifests.kubernetes import ROOT, generated_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.manifests", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for relative, content in generated_files().items():
        path = ROOT / relative
        if args.check:
            if not path.exists() or path.read_text() != content:
                stale.append(str(relative))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    if stale:
        print("stale generated manifests (run python -m deploy.manifests): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
