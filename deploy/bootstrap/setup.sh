#!/usr/bin/env bash
# One idempotent setup step for a fresh machine: OS packages (apt), the Python environments (uv, from the
# committed locks: the project's and PyFlink's) and the stack's jars (Maven Central, Flink's connectors
# included). Both README commands run it first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
STATE="${FREIGHTLINE_HOME:-$ROOT/.freightline}"
case "$STATE" in /*) ;; *) STATE="$ROOT/$STATE" ;; esac
UV_VERSION="0.13.8"
BOOTSTRAP="$STATE/bootstrap"

say() { printf '\033[2m%s\033[0m setup: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- OS packages ------------------------------------------------------------------------------------
apt_packages=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || apt_packages+=(postgresql-15)
command -v java >/dev/null || apt_packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || apt_packages+=(maven)
command -v wrk >/dev/null || apt_packages+=(wrk)
command -v git >/dev/null || apt_packages+=(git)
command -v prometheus >/dev/null && command -v promtool >/dev/null || apt_packages+=(prometheus)
command -v prometheus-alertmanager >/dev/null || apt_packages+=(prometheus-alertmanager)
command -v prometheus-postgres-exporter >/dev/null || apt_packages+=(prometheus-postgres-exporter)
id -u postgres >/dev/null 2>&1 || apt_packages+=(postgresql-common)
if [ "${#apt_packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing OS packages (${apt_packages[*]}); install them with apt-get as root" >&2
    exit 1
  fi
  say "installing OS packages: ${apt_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
  # Debian starts a system cluster on install; the stack runs its own private one.
  if command -v pg_ctlcluster >/dev/null; then pg_ctlcluster 15 main stop >/dev/null 2>&1 || true; fi
  # Likewise Prometheus, Alertmanager and the PostgreSQL exporter: the stack runs the binaries itself, on its own
  # ports and data.
  for service in prometheus prometheus-alertmanager prometheus-postgres-exporter; do
    if [ -d /run/systemd/system ]; then systemctl disable --now "$service" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$service" ]; then invoke-rc.d "$service" stop >/dev/null 2>&1 || true; fi
  done
fi

# --- Go: the stack builds its Go programs (GCS emulator, MongoDB-wire server, Jaeger, Toxiproxy) from the Go module proxy
if ! command -v go >/dev/null; then
  echo "setup: the Go toolchain (1.24 or newer) is required to build the local stack's GCS and MongoDB servers" >&2
  exit 1
fi
go_version="$(go env GOVERSION | sed 's/^go//')"
if [ "$(printf '%s\n' "1.24" "$go_version" | sort -V | head -n 1)" != "1.24" ]; then
  echo "setup: Go $go_version found; 1.24 or newer is required (deploy/local/launchers/ferretdb/go.mod)" >&2
  exit 1
fi

# --- Python: uv in a private bootstrap environment, then the locked project environment ----------------
mkdir -p "$STATE"
if [ ! -x "$BOOTSTRAP/bin/uv" ] || [ "$("$BOOTSTRAP/bin/uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  say "installing uv $UV_VERSION"
  python3 -m venv "$BOOTSTRAP"
  "$BOOTSTRAP/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
export UV_CACHE_DIR="${UV_CACHE_DIR:-$HOME/.cache/uv}"
say "syncing the Python environment from uv.lock"
"$BOOTSTRAP/bin/uv" sync --frozen --quiet
# the PyFlink environment (apache-flink pins packages the project environment cannot hold): the local Flink
# cluster and the jobs' Python drivers run from it
UV="$BOOTSTRAP/bin/uv" bash "$ROOT/deploy/bootstrap/envs/flink/setup.sh"
# The Spark batch jobs' own locked environment (pyspark; the jobs run in it as separate processes).
UV="$BOOTSTRAP/bin/uv" bash "$ROOT/deploy/bootstrap/envs/sync.sh" spark
# The dbt project's own locked environment (dbt-core, dbt-postgres, sqlfluff); Airflow runs its dbt executable.
UV="$BOOTSTRAP/bin/uv" bash "$ROOT/deploy/bootstrap/envs/sync.sh" dbt
# Airflow's own locked environment (its scheduler, API server and DAG processor run from it; dags/).
UV="$BOOTSTRAP/bin/uv" bash "$ROOT/deploy/bootstrap/envs/sync.sh" airflow "the Airflow environment"

# --- Java runtimes of the local stack and the Spark jobs' jars (Maven Central) ------------------------------
"$ROOT/.venv/bin/freightline" setup
# --- the deployment manifests' offline validators: kustomize (Go module) and the operators' CRD schemas -------
"$ROOT/.venv/bin/python" -m deploy.manifests.tools
say "ready"
