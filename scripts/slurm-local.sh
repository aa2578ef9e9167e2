#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for the sweep's job-array test and for
# trying docs/cluster.md without a cluster:
#
#   scripts/slurm-local.sh start     # installs Debian's slurm-wlm and munge if missing (as root),
#                                    # writes a config under /tmp/saliency-slurm, starts munged,
#                                    # slurmctld and slurmd, waits until the node is idle
#   scripts/slurm-local.sh status    # sinfo
#   scripts/slurm-local.sh stop      # stops the daemons (the config stays for the next start)
#
# Needs root (the daemons run as root, SlurmUser=root), as on the CI machine. One node named
# after this host with all its CPUs, one partition `debug`, no accounting.
set -euo pipefail
base=/tmp/saliency-slurm
conf="$base/slurm.conf"

need_root() {
  [ "$(id -u)" = 0 ] || { echo "slurm-local: run as root (the daemons and apt-get need it)" >&2; exit 1; }
}

install() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return
  echo "slurm-local: installing slurm-wlm and munge (Debian packages) ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null 2>&1 || {
    apt-get update >/dev/null
    apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null
  }
}

write_config() {
  local host cpus mem
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
  mkdir -p "$base"/{state,spool,log}
  cat >"$conf" <<EOF
ClusterName=saliency-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$base/state
SlurmdSpoolDir=$base/spool
SlurmctldPidFile=$base/slurmctld.pid
SlurmdPidFile=$base/slurmd.pid
SlurmctldLogFile=$base/log/slurmctld.log
SlurmdLogFile=$base/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  # The client commands read /etc/slurm/slurm.conf unless SLURM_CONF says otherwise.
  mkdir -p /etc/slurm
  ln -sf "$conf" /etc/slurm/slurm.conf
}

start() {
  need_root
  install
  write_config
  export SLURM_CONF="$conf"
  if ! pgrep -x munged >/dev/null; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    [ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    chmod 0400 /etc/munge/munge.key
    munged --force
  fi
  pgrep -x slurmctld >/dev/null || slurmctld -f "$conf"
  pgrep -x slurmd >/dev/null || slurmd -f "$conf"
  for _ in $(seq 1 60); do
    if sinfo -h -o "%t" 2>/dev/null | grep -qE "^(idle|mix|alloc)"; then
      echo "slurm-local: up ($(sinfo -h -o '%D node(s), %c CPUs, partition %P' | head -1))" >&2
      return 0
    fi
    # A node that comes back from an earlier run may need to be told it is fine.
    scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    sleep 1
  done
  echo "slurm-local: the node did not become idle; logs in $base/log" >&2
  sinfo >&2 || true
  return 1
}

stop() {
  need_root
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
  echo "slurm-local: stopped" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) SLURM_CONF="$conf" sinfo ;;
  *) echo "usage: scripts/slurm-local.sh start|stop|status" >&2; exit 2 ;;
esac
