#!/usr/bin/env bash
# Start the whole cloud in one process (nova-all) in the foreground.
# Usage: tools/run.sh [nova.conf]   (default: the embedded default, no file)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
args=()
[ -n "${1:-}" ] && args=(--config "$1")
"$BIN/nova-manage" "${args[@]}" db sync
"$BIN/nova-manage" "${args[@]}" demo setup --clouds-yaml clouds.yaml
exec "$BIN/twistd" --pidfile= -n nova-all "${args[@]}"
