#!/usr/bin/env bash
# The /bin/true lifecycle beside runc and crun, in one run, on one bundle:
# N x `run` (create + start + wait + delete) per runtime, alternating the
# runtimes in rounds so drift hits all alike. Prints ms per container and the
# ratio to crun. crun refuses hybrid cgroup hosts, so its loop runs in a
# private mount namespace with /sys/fs/cgroup/unified unmounted (the host's
# mount is untouched).
# Usage: bench/lifecycle.sh [N] [ROUNDS]   (as root; needs runc and crun)
set -euo pipefail
N=${1:-100}
ROUNDS=${2:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
MC=${MINICONTAINER:-$here/.build/release/minicontainer}
ROOTFS=${ROOTFS:-/var/lib/minicontainer/rootfs/busybox}
work=$(mktemp -d /tmp/mc-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle"
. "$(dirname "$0")/bundle.sh"
make_true_bundle "$work/bundle"

loop() {  # runtime-command count prefix -> prints total nanoseconds
  local cmd=$1 n=$2 prefix=$3
  local script="start=\$(date +%s%N); for i in \$(seq $n); do $cmd run --bundle $work/bundle $prefix\$i >/dev/null || exit 1; done; echo \$(( \$(date +%s%N) - start ))"
  if [ "$prefix" = crun- ]; then
    unshare -m bash -c "umount /sys/fs/cgroup/unified 2>/dev/null; $script"
  else
    bash -c "$script"
  fi
}

declare -A total
for r in minicontainer runc crun; do total[$r]=0; done
per=$(( N / ROUNDS ))
for round in $(seq "$ROUNDS"); do
  total[minicontainer]=$(( total[minicontainer] + $(loop "$MC --root $work/mc" $per mc-) ))
  total[runc]=$(( total[runc] + $(loop "runc --root $work/runc" $per runc-) ))
  total[crun]=$(( total[crun] + $(loop "crun --root $work/crun" $per crun-) ))
done
n=$(( per * ROUNDS ))
printf '%s x run of /bin/true (create+start+wait+delete), %s rounds, %s, %s\n' "$n" "$ROUNDS" "$(date -u +%F)" "$(uname -r)"
printf '%-14s %12s %14s %10s\n' runtime "total (s)" "per run (ms)" "x crun"
for r in minicontainer runc crun; do
  awk -v r=$r -v t=${total[$r]} -v c=${total[crun]} -v n=$n \
    'BEGIN { printf "%-14s %12.2f %14.1f %10.2f\n", r, t/1e9, t/1e6/n, t/c }'
done
