#!/usr/bin/env bash
# The PyFlink environment (deploy/bootstrap/envs/flink/.venv), synced from its own committed uv.lock: apache-flink
# pins apache-beam 2.61 (protobuf<6, numpy<2.2, pyarrow<17), which the project environment cannot hold. It runs the
# local Flink session cluster (the wheel's pyflink/bin and jars) and the jobs' Python drivers (stream_processors/).
# Idempotent: a sync of an up-to-date environment changes nothing.
set -euo pipefail
exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/sync.sh" flink "the PyFlink environment from its uv.lock"
