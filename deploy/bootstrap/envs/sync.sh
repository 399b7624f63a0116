#!/usr/bin/env bash
# Syncs one of the separate Python environments (deploy/bootstrap/envs/<name>/.venv) from its own committed
# uv.lock: `bash deploy/bootstrap/envs/sync.sh <name>`. Idempotent: a sync of an up-to-date environment changes
# nothing. Environments: quix (the enricher benchmark's peer; quixstreams pins its own confluent-kafka) and spark
# (the batch jobs; pyspark, which the services never import).
set -euo pipefail

NAME="${1:?usage: sync.sh <environment name>}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
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
printf '\033[2m%s\033[0m setup: syncing the %s environment\n' "$(date +%H:%M:%S)" "$NAME" >&2
"$UV" sync --frozen --quiet --project "$HERE/$NAME"
