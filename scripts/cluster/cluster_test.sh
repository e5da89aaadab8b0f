#!/usr/bin/env bash
# make test-cluster: start the private single-node Slurm, run tests/cluster against it, stop it.
# The daemons are stopped by PID on every exit path (trap), including a test failure or the hard
# timeout (SIGKILL of pytest and every snakemake under it: Snakemake ignores SIGTERM while it waits on
# Slurm). CXQ_CLUSTER_TIMEOUT (seconds, default 600) bounds the whole cluster part.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=scripts/cluster
LIMIT=${CXQ_CLUSTER_TIMEOUT:-600}
PY=${PYTHON:-.venv/bin/python}
trap '"$HERE"/slurm_down.sh' EXIT
started=$(date +%s)
eval "$("$HERE"/slurm_up.sh)"
export SLURM_CONF CXQ_CLUSTER_TESTS=1
rc=0
timeout -s KILL "$LIMIT" "$PY" -m pytest -q -ra -p no:cacheprovider tests/cluster "$@" || rc=$?
[ "$rc" = 137 ] && echo "test-cluster: killed after the hard limit of ${LIMIT}s" >&2
echo "test-cluster: exit $rc after $(( $(date +%s) - started ))s (Slurm install/start included)" >&2
exit "$rc"
