#!/usr/bin/env bash
# The Quix Streams environment of the enricher benchmark (deploy/bootstrap/envs/quix/.venv), synced from its own
# committed uv.lock: quixstreams pins a confluent-kafka release other than the project's, so it cannot share
# the project environment.
set -euo pipefail
exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../sync.sh" quix
