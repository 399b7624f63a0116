#!/usr/bin/env bash
# The full test suite: lint, types, contract governance, then unit, integration and end-to-end tests on the
# real local stack (started once for the whole session by tests/session.py).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.venv/bin"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "ruff"
"$BIN/ruff" check .
"$BIN/ruff" format --check .
step "mypy"
"$BIN/mypy" services schemas deploy tests stream_processors batch_spark
step "import contracts (layers, no cycles)"
"$BIN/lint-imports" --no-cache
step "deployment files (images, compose, Kubernetes manifests)"
"$BIN/hadolint" --failure-threshold info deploy/images/*.Dockerfile
"$BIN/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/compose.yaml
"$BIN/python" -m deploy.manifests --check
step "secret scan (detect-secrets against the audited .secrets.baseline)"
"$BIN/python" -m deploy.secret_scan
step "Go unit tests (the MongoDB server's launcher and its count proxy)"
(cd deploy/local/launchers/ferretdb && CGO_ENABLED=0 GOFLAGS=-mod=readonly go test -tags ferretdb_no_sqlite -count=1 .)
step "schema governance"
"$BIN/freightline" schemas check
step "pytest (two lanes over one local stack: tests/session.py)"
exec "$BIN/python" -m tests.session "$@"
