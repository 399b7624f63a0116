#!/usr/bin/env bash
# Sync one separate, locked Python environment (deploy/bootstrap/envs/<name>/.venv) from its own committed uv.lock.
# Usage: sync.sh <name> [<what it is, for the progress line>]. Idempotent: an up-to-date environment is left as it is.
set -euo pipefail

NAME="$1"
WHAT="${2:-the $NAME environment}"
ENVS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$ENVS/../../.." && pwd)"
STATE="${FREIGHTLINE_HOME:-$ROOT/.freightline}"
case "$STATE" in /*) ;; *) STATE="$ROOT/$STATE" ;; esac

UV="${UV:-}"
if [ -z "$UV" ]; then
  if [ -x "$STATE/bootstrap/bin/uv" ]; then
    UV="$STATE/bootstrap/bin/uv"
  elif command -v uv >/dev/null; then
    UV="$(command -v uv)"
  else
    echo "$NAME setup: uv not found (run deploy/bootstrap/setup.sh first or set UV)" >&2
    exit 1
  fi
fi
export UV_CACHE_DIR="${UV_CACHE_DIR:-$HOME/.cache/uv}"
printf '\033[2m%s\033[0m setup: syncing %s\n' "$(date +%H:%M:%S)" "$WHAT" >&2
"$UV" sync --frozen --quiet --project "$ENVS/$NAME"
