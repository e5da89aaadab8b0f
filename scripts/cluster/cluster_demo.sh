#!/usr/bin/env bash
# make cluster-demo: start the private single-node Slurm, run both workflows locally and on Slurm, compare,
# stop the daemons by PID (also on failure or timeout). Work folder: $1 (default ./cluster-demo, replaced).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=scripts/cluster
WORK=${1:-cluster-demo}
PY=${PYTHON:-.venv/bin/python}
trap '"$HERE"/slurm_down.sh' EXIT
eval "$("$HERE"/slurm_up.sh)"
export SLURM_CONF
rm -rf "$WORK"
timeout -s KILL "${CXQ_CLUSTER_TIMEOUT:-900}" "$PY" "$HERE"/cluster_demo.py "$WORK"
