#!/usr/bin/env bash
# Start a private single-node Slurm (munged + slurmctld + slurmd) on this host, without systemd.
#
#   eval "$(scripts/cluster/slurm_up.sh)"     # prints `export SLURM_CONF=...` on stdout
#   ...  sbatch / squeue / snakemake --profile profiles/slurm ...
#   scripts/cluster/slurm_down.sh              # stops exactly the daemons this script started (by PID)
#
# Everything lives in CXQ_SLURM_DIR (default /run/cxq-slurm): its own slurm.conf, munge key and socket,
# spool, logs and PID files, on its own ports (CXQ_SLURM_PORT, +1 for slurmd). The one file outside it is
# a symlink /etc/slurm/slurm.conf -> our config, made only when no config exists there (a machine with
# its own Slurm is refused, never touched) and removed by slurm_down.sh.
# Needs root (apt-get install; the daemons run as root and munge).
# Installs Debian's slurm-wlm + munge when missing. Progress goes to stderr.
set -euo pipefail
RUN=${CXQ_SLURM_DIR:-/run/cxq-slurm}
PORT=${CXQ_SLURM_PORT:-16817}
PARTITION=${CXQ_SLURM_PARTITION:-debug}
log() { echo "slurm_up: $*" >&2; }

if [ "$(id -u)" != 0 ]; then log "must run as root (installs packages, starts munged/slurmctld/slurmd)"; exit 2; fi
for f in "$RUN/slurmctld.pid" "$RUN/slurmd.pid" "$RUN/munge/munged.pid"; do
  if [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
    log "already running (PID $(cat "$f") from $f); run scripts/cluster/slurm_down.sh first"; exit 3
  fi
done
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2 && apt-get install -y -q --no-install-recommends slurm-wlm munge >&2
fi

HOST=$(hostname -s)
# slurmd must resolve its own NodeName; single node = loopback.
getent hosts "$HOST" >/dev/null || { log "adding $HOST to /etc/hosts"; echo "127.0.0.1 $HOST" >> /etc/hosts; }
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
mkdir -p "$RUN"/{munge,spool/ctld,spool/d,log}
: > "$RUN/started.pids"

# munge: a private daemon with its own key and socket (owned by the munge user, as munged requires).
id munge >/dev/null 2>&1 || { log "user 'munge' missing (install the munge package)"; exit 2; }
[ -s "$RUN/munge/munge.key" ] || dd if=/dev/urandom of="$RUN/munge/munge.key" bs=1 count=1024 status=none
chown -R munge:munge "$RUN/munge"; chmod 0755 "$RUN/munge"  # clients need x on the socket dir; chmod 0400 "$RUN/munge/munge.key"
SOCK="$RUN/munge/munge.socket"
runuser -u munge -- /usr/sbin/munged --socket="$SOCK" --key-file="$RUN/munge/munge.key" \
  --pid-file="$RUN/munge/munged.pid" --log-file="$RUN/munge/munged.log" --seed-file="$RUN/munge/munged.seed"
for _ in $(seq 40); do munge -S "$SOCK" -n 2>/dev/null | unmunge -S "$SOCK" >/dev/null 2>&1 && break; sleep 0.25; done
munge -S "$SOCK" -n | unmunge -S "$SOCK" >/dev/null || { log "munged did not start: $(tail -5 "$RUN/munge/munged.log")"; exit 1; }
echo "munged $(cat "$RUN/munge/munged.pid")" >> "$RUN/started.pids"

cat > "$RUN/slurm.conf" <<CONF
# Written by scripts/cluster/slurm_up.sh: private single-node cluster for tests and the demo.
ClusterName=cxq
SlurmctldHost=${HOST}(127.0.0.1)
SlurmctldPort=${PORT}
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${SOCK}
SlurmUser=root
SlurmdUser=root
StateSaveLocation=${RUN}/spool/ctld
SlurmdSpoolDir=${RUN}/spool/d
SlurmctldPidFile=${RUN}/slurmctld.pid
SlurmdPidFile=${RUN}/slurmd.pid
SlurmctldLogFile=${RUN}/log/slurmctld.log
SlurmdLogFile=${RUN}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# No slurmdbd: Snakemake sees job states through squeue only, which lists finished jobs for MinJobAge s.
MinJobAge=600
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$RUN/slurm.conf"
# Snakemake's jobstep plugin strips SLURM_* (SLURM_CONF too) before its nested srun, which then reads
# /etc/slurm/slurm.conf: link ours there for the cluster's lifetime (slurm_down.sh removes the link).
# An existing config that is not our link is never replaced.
if [ -e /etc/slurm/slurm.conf ] || [ -L /etc/slurm/slurm.conf ]; then
  if [ "$(readlink /etc/slurm/slurm.conf)" != "$SLURM_CONF" ]; then
    log "/etc/slurm/slurm.conf exists and is not ours: this machine has a Slurm of its own, use it directly"; exit 3
  fi
else
  mkdir -p /etc/slurm && ln -s "$SLURM_CONF" /etc/slurm/slurm.conf
fi
slurmctld -f "$SLURM_CONF"
for _ in $(seq 40); do [ -s "$RUN/slurmctld.pid" ] && break; sleep 0.25; done
echo "slurmctld $(cat "$RUN/slurmctld.pid")" >> "$RUN/started.pids"
slurmd -f "$SLURM_CONF"
for _ in $(seq 40); do [ -s "$RUN/slurmd.pid" ] && break; sleep 0.25; done
echo "slurmd $(cat "$RUN/slurmd.pid")" >> "$RUN/started.pids"
for _ in $(seq 60); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 0.5; done
if ! sinfo -h -o %T | grep -q idle; then
  log "node did not become idle"; sinfo >&2 || true; tail -20 "$RUN/log/slurmctld.log" "$RUN/log/slurmd.log" >&2
  exit 1
fi
log "up: partition $PARTITION on $HOST ($CPUS CPUs, ${MEM} MB), PIDs: $(tr '\n' ' ' < "$RUN/started.pids")"
echo "export SLURM_CONF=$SLURM_CONF"
