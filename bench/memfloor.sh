#!/usr/bin/env bash
# The memory floor: the smallest linux.resources.memory.limit under which
# `run` of /bin/true still succeeds (exit 0), for minicontainer, runc and crun,
# found by bisection to a page (4 KiB) on one busybox bundle made with
# `minicontainer spec`. Whatever is charged to the container's memory cgroup
# between the runtime placing its init there and /bin/true exiting counts.
# crun refuses hybrid cgroup hosts, so its runs happen in a private mount
# namespace (unshare -m) with /sys/fs/cgroup/unified unmounted there only;
# the host's mounts are never changed. Each container gets the cgroup
# /minicontainer-bench/<id>; everything is deleted at the end.
# Usage: [VERBOSE=1] bench/memfloor.sh [HIGH_KIB] [REPEAT]   (as root; needs runc and crun)
#   HIGH_KIB  the upper end of the search, which must succeed (default 65536)
#   REPEAT    runs per probe, all of which must succeed (default 2)
set -euo pipefail
HIGH=${1:-65536}
REPEAT=${2:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
MC=${MINICONTAINER:-$here/.build/release/minicontainer}
ROOTFS=${ROOTFS:-/var/lib/minicontainer/rootfs/busybox}
[ -x "$ROOTFS/bin/busybox" ] || "$here/scripts/mkrootfs.sh" "$ROOTFS"
work=$(mktemp -d /tmp/mc-memfloor.XXXXXX)
state=$work/state
cleanup() {
  for rt in minicontainer runc crun; do
    for d in "$state/$rt"/*/; do
      [ -d "$d" ] || continue
      id=$(basename "$d")
      case $rt in
        minicontainer) "$MC" --root "$state/$rt" delete --force "$id" >/dev/null 2>&1 || true ;;
        runc) runc --root "$state/$rt" delete --force "$id" >/dev/null 2>&1 || true ;;
        crun) unshare -m bash -c "umount /sys/fs/cgroup/unified 2>/dev/null; crun --root $state/$rt delete --force $id" >/dev/null 2>&1 || true ;;
      esac
    done
  done
  # Our own cgroups only: the per-container ones, then their parent.
  for d in /sys/fs/cgroup/*/minicontainer-bench/*/ /sys/fs/cgroup/*/minicontainer-bench/; do
    [ -d "$d" ] && rmdir "$d" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bundle" "$state"
. "$(dirname "$0")/bundle.sh"
make_true_bundle "$work/bundle"

seq_no=0
# probe RUNTIME KIB -> 0 if `run` of /bin/true exits 0 under a KIB KiB limit, REPEAT times.
probe() {
  local rt=$1 kib=$2 i id rc
  python3 - "$work/bundle/config.json" "$kib" <<'PY'
import json, sys
p, kib = sys.argv[1], int(sys.argv[2])
c = json.load(open(p))
c["linux"].setdefault("resources", {})["memory"] = {"limit": kib * 1024}
json.dump(c, open(p, "w"), indent=2)
PY
  for i in $(seq "$REPEAT"); do
    seq_no=$((seq_no + 1))
    id=mf$seq_no
    python3 - "$work/bundle/config.json" "$id" <<'PY'
import json, sys
p, cid = sys.argv[1], sys.argv[2]
c = json.load(open(p))
c["linux"]["cgroupsPath"] = "/minicontainer-bench/" + cid
json.dump(c, open(p, "w"), indent=2)
PY
    rc=0
    case $rt in
      minicontainer) timeout 30 "$MC" --root "$state/$rt" run --bundle "$work/bundle" "$id" </dev/null >/dev/null 2>&1 || rc=$? ;;
      runc) timeout 30 runc --root "$state/$rt" run --bundle "$work/bundle" "$id" </dev/null >/dev/null 2>&1 || rc=$? ;;
      crun) timeout 30 unshare -m bash -c "umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --root $state/$rt run --bundle $work/bundle $id" </dev/null >/dev/null 2>&1 || rc=$? ;;
    esac
    # A failed run may leave its container: remove it (and its cgroup) now.
    case $rt in
      minicontainer) "$MC" --root "$state/$rt" delete --force "$id" >/dev/null 2>&1 || true ;;
      runc) runc --root "$state/$rt" delete --force "$id" >/dev/null 2>&1 || true ;;
      crun) unshare -m bash -c "umount /sys/fs/cgroup/unified 2>/dev/null; crun --root $state/$rt delete --force $id" >/dev/null 2>&1 || true ;;
    esac
    for d in /sys/fs/cgroup/*/minicontainer-bench/"$id"/; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
    [ -n "${VERBOSE:-}" ] && echo "  $rt ${kib}KiB run $i: exit $rc" >&2
    [ "$rc" = 0 ] || return 1
  done
  return 0
}

# floor RUNTIME -> the smallest limit in KiB (a multiple of 4) that succeeds.
floor() {
  local rt=$1 lo=0 hi=$HIGH mid
  if ! probe "$rt" "$hi"; then echo "none<=${HIGH}KiB"; return; fi
  while [ $((hi - lo)) -gt 4 ]; do
    mid=$(( (lo + hi) / 2 / 4 * 4 ))
    [ "$mid" -le "$lo" ] && mid=$((lo + 4))
    if probe "$rt" "$mid"; then hi=$mid; else lo=$mid; fi
  done
  echo "$hi"
}

echo "memory floor of \`run\` /bin/true (busybox bundle from minicontainer spec; $REPEAT runs per probe)"
for rt in ${RUNTIMES:-minicontainer runc crun}; do
  f=$(floor "$rt")
  printf '%-14s %s KiB\n' "$rt" "$f"
done
