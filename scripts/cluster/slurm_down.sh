#!/usr/bin/env bash
# Stop the private Slurm started by slurm_up.sh: cancel its jobs, then stop slurmd, slurmctld and munged
# by the PIDs recorded in $CXQ_SLURM_DIR/started.pids (never by name). Safe to call twice or when
# nothing runs; a PID is only signalled while it still belongs to the daemon it was recorded for.
set -uo pipefail
RUN=${CXQ_SLURM_DIR:-/run/cxq-slurm}
PIDS="$RUN/started.pids"
log() { echo "slurm_down: $*" >&2; }
[ -s "$PIDS" ] || { log "nothing recorded in $PIDS"; exit 0; }
if [ -f "$RUN/slurm.conf" ]; then SLURM_CONF="$RUN/slurm.conf" timeout 10 scancel --full --quiet --user=root 2>/dev/null || true; fi

alive() { [ -r "/proc/$2/comm" ] && [ "$(cat "/proc/$2/comm")" = "$1" ]; }
stop() {  # name pid
  alive "$1" "$2" || return 0
  kill -TERM "$2" 2>/dev/null
  for _ in $(seq 40); do alive "$1" "$2" || { log "stopped $1 ($2)"; return 0; }; sleep 0.25; done
  log "$1 ($2) ignored SIGTERM; SIGKILL"; kill -KILL "$2" 2>/dev/null; sleep 0.2
}
# reverse start order: slurmd, slurmctld, munged
tac "$PIDS" | while read -r name pid; do stop "$name" "$pid"; done
rm -f "$PIDS"
[ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$RUN/slurm.conf" ] && rm -f /etc/slurm/slurm.conf
exit 0
