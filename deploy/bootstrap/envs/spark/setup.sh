#!/usr/bin/env bash
# The Spark batch jobs' environment (deploy/bootstrap/envs/spark/.venv), synced from its own committed uv.lock:
# pyspark is a large distribution the services never import, and the jobs run as their own processes. The jobs'
# jars (spark-avro, the PostgreSQL JDBC driver) come from deploy/local/poms/spark.xml via `freightline setup`.
# Idempotent: a sync of an up-to-date environment changes nothing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../../.." && pwd)"
STATE="${FREIGHTLINE_HOME:-$ROOT/.freightline}"
case "$STATE" in /*) ;; *) STATE="$ROOT/$STATE" ;; esac

UV="${UV:-}"
if [ -z "$UV" ]; then
  if [ -x "$STATE/bootstrap/bin/uv" ]; then
    UV="$STATE/bootstrap/bin/uv"
  elif command -v uv >/dev/null; then
    UV="$(command -v uv)"
  else
    echo "spark setup: uv not found (run deploy/bootstrap/setup.sh first or set UV)" >&2
    exit 1
  fi
fi
export UV_CACHE_DIR="${UV_CACHE_DIR:-$HOME/.cache/uv}"
printf '\033[2m%s\033[0m setup: syncing the Spark environment\n' "$(date +%H:%M:%S)" >&2
"$UV" sync --frozen --quiet --project "$HERE"
