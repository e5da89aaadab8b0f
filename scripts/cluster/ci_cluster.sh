#!/usr/bin/env bash
# The Slurm part of `make test`: runs `make test-cluster` when CI=true (CI runs as root) or CXQ_CLUSTER=1,
# else prints a note. It installs slurm-wlm + munge (apt-get) and starts daemons as root, so it is not run
# on a developer's machine unless asked. Bounded by a hard SIGKILL timeout (CXQ_CLUSTER_TIMEOUT, default
# 600 s inside cluster_test.sh, 900 s around it incl. apt-get); the daemons are stopped by PID either way.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${CI:-}" != "true" ] && [ "${CXQ_CLUSTER:-}" != "1" ]; then
  echo "make test: Slurm cluster test not run (CI=true or CXQ_CLUSTER=1 as root runs it; or: make test-cluster)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then echo "make test: the Slurm cluster test needs root (CI=true / CXQ_CLUSTER=1)" >&2; exit 1; fi
# the outer limit only fires if the inner one failed to; then the daemons are stopped here
timeout -s KILL 900 make --no-print-directory test-cluster || { rc=$?; scripts/cluster/slurm_down.sh; exit "$rc"; }
