#!/usr/bin/env bash
# The Docker-style path, confined as it is by default, beside the others'
# equivalents, in one run: `run --rm --network none --rootfs R /bin/true`
# (our default seccomp profile, the CVE-2019-5736 protection, the default
# devices, masked paths) against
#   - podman run --rm --network none --rootfs R /bin/true (its default
#     seccomp profile; runc, as crun refuses this hybrid host; cgroupfs,
#     file events, a private store and containers.conf),
#   - runc run and crun run of a bundle that runs /bin/true on R with the
#     seccomp profile our `run` compiles (bench/bundle.sh, SECCOMP=default;
#     crun in a private mount namespace without /sys/fs/cgroup/unified, as
#     compare.sh runs it).
# Each gets its own copy of the rootfs (podman and run write mount points
# and files into theirs). The four are alternated in ROUNDS rounds of N/ROUNDS
# runs each; per run: the median and p10-p90 wall time (date +%s%N around
# each), and the CPU (user+sys of the process tree, GNU time around each
# round's loop, less the same loop of /bin/true). Everything goes on exit:
# containers, podman's store (system reset), our cgroups, the work dir.
# Usage: bench/docker-run.sh [N] [ROUNDS]   (as root; needs podman, runc,
#        crun, GNU time)
set -euo pipefail
shopt -s inherit_errexit
N=${1:-50}
ROUNDS=${2:-5}
[ "$ROUNDS" -le "$N" ] || ROUNDS=$N
per=$(( N / ROUNDS ))
here=$(cd "$(dirname "$0")/.." && pwd)
MC=${MINICONTAINER:-$here/.build/release/minicontainer}
ROOTFS=${ROOTFS:-/var/lib/minicontainer/rootfs/busybox}
[ -x "$ROOTFS/bin/busybox" ] || "$here/scripts/mkrootfs.sh" "$ROOTFS"
for t in podman runc crun /usr/bin/time; do command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 1; }; done
work=$(mktemp -d /tmp/mcdr.XXXXXX)   # podman's runroot must be under 50 characters
had_parent=$(ls -d /sys/fs/cgroup/*/minicontainer/ 2>/dev/null || true)
P=(podman --root "$work/podman/root" --runroot "$work/prun" --storage-driver vfs)
cleanup() {
  set +e
  for d in "$work"/root-runc/*/; do [ -d "$d" ] && runc --root "$work/root-runc" delete --force "$(basename "$d")" >/dev/null 2>&1; done
  for d in "$work"/root-crun/*/; do
    [ -d "$d" ] && unshare -m bash -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' in-ns \
      crun --root "$work/root-crun" delete --force "$(basename "$d")" >/dev/null 2>&1
  done
  CONTAINERS_CONF=$work/containers.conf "${P[@]}" system reset -f >/dev/null 2>&1
  for d in /sys/fs/cgroup/*/mcdr-*/ /sys/fs/cgroup/*/minicontainer/mcdr-*/; do
    [ -d "$d" ] || continue
    for id in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$id" 2>/dev/null; done
    rmdir "$d" 2>/dev/null
  done
  for d in /sys/fs/cgroup/*/minicontainer/; do
    case $had_parent in *"$d"*) ;; *) rmdir "$d" 2>/dev/null ;; esac
  done
  # podman's cgroupfs parent, made by its runs (and its conmon child), when
  # it was not there before.
  [ -n "${had_libpod:-}" ] || for d in /sys/fs/cgroup/*/libpod_parent; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  # Mounts podman may have left under the work dir.
  awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do umount "$m" || umount -l "$m"; done
  rm -rf "$work"
}
had_libpod=$(ls -d /sys/fs/cgroup/*/libpod_parent/ 2>/dev/null || true)
trap cleanup EXIT
trap 'exit 130' INT TERM

for r in mc podman bundle; do mkdir -p "$work/rootfs-$r"; cp -a "$ROOTFS/." "$work/rootfs-$r/"; done
export MINICONTAINER=$MC
ROOTFS=$work/rootfs-bundle . "$here/bench/bundle.sh"
SECCOMP=default ROOTFS=$work/rootfs-bundle make_true_bundle "$work/bundle"
. "$here/bench/podman.sh"
podman_conf > "$work/containers.conf"

# one NAME I -> runs container I of NAME once
one() {
  case $1 in
    minicontainer) MINICONTAINER_DATA=$work/data "$MC" --root "$work/root-mc" run --rm --network none --rootfs "$work/rootfs-mc" /bin/true ;;
    podman) CONTAINERS_CONF=$work/containers.conf "${P[@]}" run --rm --network none --rootfs "$work/rootfs-podman" /bin/true ;;
    runc) runc --root "$work/root-runc" run --bundle "$work/bundle" "mcdr-runc-$2" ;;
    crun) unshare -m bash -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' in-ns \
            crun --root "$work/root-crun" run --bundle "$work/bundle" "mcdr-crun-$2" ;;
    base) /bin/true ;;
  esac
}
NAMES="minicontainer podman runc crun"
for n in $NAMES; do one "$n" warm >/dev/null; done   # podman's first run sets up its store
declare -A WALL=() CPU=()
for round in $(seq 1 "$ROUNDS"); do
  for n in $NAMES base; do
    t=$work/time.$n
    /usr/bin/time -f '%U %S' -o "$t" bash -c '
      . /dev/stdin
      for i in $(seq 1 '"$per"'); do
        s=$(date +%s%N); one '"$n"' r'"$round"'-$i >/dev/null; e=$(date +%s%N)
        echo $(( (e - s) / 1000 )) >> '"$work/wall.$n"'
      done' <<EOF
$(declare -f one); work=$work; MC=$MC; P=(${P[*]})
EOF
    CPU[$n]+="$(awk '{ print $1 + $2 }' "$t") "
  done
done
stats() {  # file -> "median p10 p90" in ms
  sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%.2f %.2f %.2f", v[int((NR + 1) / 2)] / 1000, v[int(NR * 0.1) + 1] / 1000, v[int(NR * 0.9)] / 1000 }'
}
base_cpu=$(tr ' ' '\n' <<<"${CPU[base]}" | awk 'NF { s += $1 } END { print s }')
echo "run --rm /bin/true, Docker-style and confined (seccomp on), $N runs each in $ROUNDS rounds"
printf '%-44s %10s %16s %10s %12s %9s\n' "" "wall ms" "p10-p90" "x podman" "CPU ms/run" "x crun"
read -r pm _ <<<"$(stats "$work/wall.podman")"
crun_cpu=$(tr ' ' '\n' <<<"${CPU[crun]}" | awk -v b="$base_cpu" -v n="$N" 'NF { s += $1 } END { printf "%.2f", (s - b) * 1000 / n }')
for n in $NAMES; do
  read -r m lo hi <<<"$(stats "$work/wall.$n")"
  cpu=$(tr ' ' '\n' <<<"${CPU[$n]}" | awk -v b="$base_cpu" -v n="$N" 'NF { s += $1 } END { printf "%.2f", (s - b) * 1000 / n }')
  case $n in
    minicontainer) what="minicontainer run --rm --rootfs R" ;;
    podman) what="podman run --rm --rootfs R (runc)" ;;
    *) what="$n run of the equivalent bundle" ;;
  esac
  printf '%-44s %10s %16s %10s %12s %9s\n' "$what" "$m" "$lo-$hi" \
    "$(awk -v a="$m" -v b="$pm" 'BEGIN { printf "%.2f", a / b }')" "$cpu" \
    "$(awk -v a="$cpu" -v b="$crun_cpu" 'BEGIN { printf "%.2f", a / b }')"
done
