#!/usr/bin/env bash
# Rootless minicontainer beside rootless podman, in one run, as one dedicated
# unprivileged user, on one image (issue 18):
#   `run --rm busybox:latest /bin/true` with (a) --network none and (b) the
#   user-mode network (--network slirp4netns for both), N runs each, the
#   runtimes interleaved run by run (the first of a pair alternating) so drift
#   hits both alike. Prints median, p90 and the range of the wall time in ms,
#   and minicontainer / podman (medians). Then where podman's time goes: its
#   `create`, `start --attach` and `rm` apart, and `ps -aq` (a command that
#   only enters podman's user namespace and reads its database).
# The user: BENCH_USER (mcbench, uid/gid 23460, subordinate ids 400000:65536
# in /etc/subuid and /etc/subgid), home /tmp/mcbench-home, XDG_RUNTIME_DIR
# /run/user/23460, made here and removed on exit with everything it left:
# processes (podman's pause process, conmon), podman's storage and locks
# (/dev/shm/libpod_rootless_lock_UID), minicontainer's state and store, the
# lines in /etc/subuid and /etc/subgid. Commands run as the user through
# setpriv with a clean environment, as Tests/integration/userkit.py does.
# The image: scripts/mkimage.sh's docker-archive of the busybox rootfs (nothing
# downloaded), loaded by the user into both (`podman load -i`,
# `minicontainer load -i`).
# podman's configuration (the user's ~/.config/containers): runtime runc (crun
# refuses this hybrid cgroup host), cgroup_manager cgroupfs (rootless on cgroup
# v1: podman gives the runtime no cgroup path at all; `--cgroups disabled` is
# refused with runc), events_logger file (no systemd), default ulimits
# nofile=nproc=20000 (the hard open-files limit here), storage driver overlay
# (the kernel's own rootless overlay; no fuse-overlayfs), image copies under
# the user's home. Nothing of root's podman state is read or changed.
# slirp4netns opens /dev/net/tun inside the container's user namespace, as the
# user; where the node is not open to everyone (0600 on this host; 0666 is
# udev's default) the measuring runs in a private mount namespace with a tmpfs
# on /dev/net holding a 0666 tun node (the host's /dev is untouched), for both.
# Until minicontainer's rootless `load` and `run` work, its rows say
# 'not available' with the reason, and podman is measured alone.
# Usage: bench/rootless.sh [N]   (as root; N default 20; needs podman, runc,
#   slirp4netns, uidmap, umoci, skopeo)
set -euo pipefail
shopt -s inherit_errexit
N=${1:-20}
M=${M:-$N}                      # samples per podman phase
here=$(cd "$(dirname "$0")/.." && pwd)
MC=${MINICONTAINER:-$here/.build/release/minicontainer}
ROOTFS=${ROOTFS:-/var/lib/minicontainer/rootfs/busybox}
BENCH_USER=mcbench
BENCH_UID=23460
SUB_START=400000
SUB_COUNT=65536
HOMEDIR=/tmp/$BENCH_USER-home
RUNDIR=/run/user/$BENCH_UID
IMAGE=busybox:latest

[ "$(id -u)" = 0 ] || { echo "rootless.sh: run as root (it makes and removes the user $BENCH_USER)" >&2; exit 2; }
case $N in ''|*[!0-9]*|0) echo "rootless.sh: N must be a positive number" >&2; exit 2 ;; esac
for t in podman runc slirp4netns newuidmap newgidmap setpriv unshare umoci skopeo python3; do
  command -v "$t" >/dev/null || { echo "rootless.sh: $t is missing" >&2; exit 2; }
done
[ -x "$MC" ] || { echo "rootless.sh: no minicontainer at $MC (make build)" >&2; exit 2; }
# The uid must be free, or ours from an earlier run (same name, same home).
if owner=$(getent passwd "$BENCH_UID"); then
  case $owner in
    "$BENCH_USER:"*":$HOMEDIR:"*) ;;
    *) echo "rootless.sh: uid $BENCH_UID is taken: $owner" >&2; exit 2 ;;
  esac
fi
[ -x "$ROOTFS/bin/busybox" ] || "$here/scripts/mkrootfs.sh" "$ROOTFS"

# pids of the user's processes: real or effective uid the user's or one of
# its subordinate ids (a container's processes).
user_pids() {
  ps -e -o pid= -o ruid= -o euid= | awk -v u="$BENCH_UID" -v s=$SUB_START -v e=$((SUB_START + SUB_COUNT)) '
    { for (i = 2; i <= 3; i++) if ($i == u || ($i >= s && $i < e)) { print $1; break } }'
}
user_mounts() {  # mount points under the user's dirs, deepest first
  awk -v h="$HOMEDIR" -v r="$RUNDIR" 'index($5, h) == 1 || index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
strip_ids() {  # drop the user's lines from /etc/subuid and /etc/subgid
  local f
  for f in /etc/subuid /etc/subgid; do
    [ -f "$f" ] && grep -q "^$BENCH_USER:" "$f" && sed -i "/^$BENCH_USER:/d" "$f"
  done
  return 0
}
remove_user() {
  local pids m _
  for _ in $(seq 50); do
    pids=$(user_pids)
    [ -n "$pids" ] || break
    for p in $pids; do kill -KILL "$p" 2>/dev/null; done
    sleep 0.1
  done
  for m in $(user_mounts); do umount -l "$m" 2>/dev/null; done
  if getent passwd "$BENCH_USER" >/dev/null; then userdel "$BENCH_USER" >/dev/null 2>&1; fi
  if getent group "$BENCH_USER" >/dev/null; then groupdel "$BENCH_USER" >/dev/null 2>&1; fi
  strip_ids
  rm -rf "$HOMEDIR" "$RUNDIR"
  rm -f "/dev/shm/libpod_rootless_lock_$BENCH_UID"
}
inner=
cleanup() {
  set +e
  [ -z "$inner" ] || { kill -KILL "$inner"; wait "$inner"; } 2>/dev/null
  remove_user
  local left=()
  [ -z "$(user_pids)" ] || left+=("processes: $(user_pids | tr '\n' ' ')")
  [ -z "$(user_mounts)" ] || left+=("mounts: $(user_mounts | tr '\n' ' ')")
  getent passwd "$BENCH_USER" >/dev/null && left+=("the user $BENCH_USER")
  grep -qs "^$BENCH_USER:" /etc/subuid /etc/subgid && left+=("lines in /etc/subuid or /etc/subgid")
  local files
  files=$(find /tmp /var/tmp /dev/shm /run -xdev \( -uid "$BENCH_UID" -o -gid "$BENCH_UID" \) 2>/dev/null | head -5)
  [ -z "$files" ] || left+=("files: $files")
  if [ ${#left[@]} -gt 0 ]; then
    printf 'rootless.sh: left behind: %s\n' "${left[@]}" >&2
    exit 1
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the user ---------------------------------------------------------------
remove_user
groupadd -g "$BENCH_UID" "$BENCH_USER"
useradd -u "$BENCH_UID" -g "$BENCH_UID" -d "$HOMEDIR" -M -s /bin/sh "$BENCH_USER"
strip_ids
echo "$BENCH_USER:$SUB_START:$SUB_COUNT" >> /etc/subuid
echo "$BENCH_USER:$SUB_START:$SUB_COUNT" >> /etc/subgid
install -d -m 0700 -o "$BENCH_UID" -g "$BENCH_UID" "$HOMEDIR" "$HOMEDIR/bin" "$HOMEDIR/tmp" \
  "$HOMEDIR/.config" "$HOMEDIR/.config/containers" "$RUNDIR"
# The binary where the user can run it (the work tree may not be open to it).
install -m 0755 "$MC" "$HOMEDIR/bin/minicontainer"
cat > "$HOMEDIR/.config/containers/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
image_copy_tmp_dir = "$HOMEDIR/tmp"
EOF
cat > "$HOMEDIR/.config/containers/storage.conf" <<'EOF'
[storage]
driver = "overlay"
EOF
bash "$here/scripts/mkimage.sh" "$ROOTFS" "$HOMEDIR/busybox.tar" "$IMAGE"
chown -R "$BENCH_UID:$BENCH_UID" "$HOMEDIR"

# --- what the user runs (one session: podman's pause process and namespaces
# live in the private mount namespace and die with it) -----------------------
cat > "$HOMEDIR/bench.sh" <<'EOF'
set -u
export LC_ALL=C
N=$1 M=$2 IMAGE=$3
MC=$HOME/bin/minicontainer
cd "$HOME"
now() { local t=$EPOCHREALTIME; echo "${t/./}"; }   # microseconds, no fork
first_line() { grep -v '^time=.*level=warning' "$1" | grep -m1 . | cut -c1-240; }
# avail RT MODE -> "avail RT MODE yes" or "avail RT MODE no: REASON"
declare -A ok
try() {
  local rt=$1 mode=$2
  if cmd "$rt" "$mode" </dev/null >/dev/null 2>err; then ok[$rt:$mode]=1; echo "avail $rt $mode yes"
  else echo "avail $rt $mode no: $(first_line err)"; fi
}
cmd() {
  case $1 in
    podman) podman run --rm --network "$2" "$IMAGE" /bin/true ;;
    minicontainer) "$MC" run --rm --network "$2" "$IMAGE" /bin/true ;;
  esac
}
echo "version minicontainer $("$MC" --version 2>/dev/null | awk 'NR == 1 { v = $3 } /^commit:/ { c = substr($2, 1, 7) }
  END { printf "%s%s", v, (c == "" ? "" : " (" c ")") }')"
echo "version podman $(podman --version | awk '{ print $3 }')"
echo "version runc $(runc --version | head -1)"
echo "version slirp4netns $(slirp4netns --version | head -1)"
echo "info podman $(podman info --format '{{.Store.GraphDriverName}} {{.Host.CgroupManager}} {{.Host.CgroupsVersion}} {{.Host.OCIRuntime.Name}} {{.Host.EventLogger}}' 2>/dev/null)"
podman load -i busybox.tar >/dev/null 2>err || { echo "fatal podman load: $(first_line err)"; exit 1; }
if "$MC" load -i busybox.tar >/dev/null 2>err; then mcload=1; echo "avail minicontainer load yes"
else mcload=; echo "avail minicontainer load no: $(first_line err)"; fi
for mode in none slirp4netns; do
  try podman "$mode"
  if [ -n "$mcload" ]; then try minicontainer "$mode"
  else echo "avail minicontainer $mode no: load failed"; fi
done
# warm-up: two runs of each that works
for rt in minicontainer podman; do
  for mode in none slirp4netns; do
    [ -n "${ok[$rt:$mode]:-}" ] || continue
    cmd "$rt" "$mode" </dev/null >/dev/null 2>&1; cmd "$rt" "$mode" </dev/null >/dev/null 2>&1
  done
done
for i in $(seq "$N"); do
  if [ $((i % 2)) = 1 ]; then order="minicontainer podman"; else order="podman minicontainer"; fi
  for mode in none slirp4netns; do
    for rt in $order; do
      [ -n "${ok[$rt:$mode]:-}" ] || continue
      t0=$(now)
      cmd "$rt" "$mode" </dev/null >/dev/null 2>err || { echo "fatal $rt $mode run $i: $(first_line err)"; exit 1; }
      t1=$(now)
      echo "run $rt $mode $((t1 - t0))"
    done
  done
done
# where podman's time goes: the phases of one `run --rm`, and a command that
# does nothing but enter its user namespace and read its database
[ -n "${ok[podman:none]:-}" ] || exit 0
for i in $(seq "$M"); do
  t0=$(now); id=$(podman create --network none "$IMAGE" /bin/true 2>err) || { echo "fatal podman create: $(first_line err)"; exit 1; }
  t1=$(now); podman start --attach "$id" >/dev/null 2>err </dev/null || { echo "fatal podman start: $(first_line err)"; exit 1; }
  t2=$(now); podman rm "$id" >/dev/null 2>err || { echo "fatal podman rm: $(first_line err)"; exit 1; }
  t3=$(now); podman ps -aq >/dev/null 2>err || { echo "fatal podman ps: $(first_line err)"; exit 1; }
  t4=$(now)
  echo "phase create $((t1 - t0))"; echo "phase start $((t2 - t1))"; echo "phase rm $((t3 - t2))"; echo "phase ps $((t4 - t3))"
done
EOF
chown "$BENCH_UID:$BENCH_UID" "$HOMEDIR/bench.sh"

as_user=(setpriv "--reuid=$BENCH_UID" "--regid=$BENCH_UID" --init-groups --reset-env --
  env -i "HOME=$HOMEDIR" "USER=$BENCH_USER" "LOGNAME=$BENCH_USER" "TMPDIR=$HOMEDIR/tmp"
  "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" "XDG_RUNTIME_DIR=$RUNDIR"
  "XDG_DATA_HOME=$HOMEDIR/.local/share" "XDG_CONFIG_HOME=$HOMEDIR/.config")
results=$HOMEDIR/results
tun_mode=$(stat -c %a /dev/net/tun 2>/dev/null || echo none)
case $tun_mode in
  *6) tun_note="/dev/net/tun is $tun_mode" ; prep=: ;;
  *) tun_note="/dev/net/tun is $tun_mode here: a 0666 node on a private tmpfs /dev/net for the run"
     prep='mount -t tmpfs -o mode=0755,size=64k mcbench-tun /dev/net && mknod -m 0666 /dev/net/tun c 10 200' ;;
esac
# In the background and waited for, so that a signal to this script is taken
# at once (cleanup kills the user's processes).
( cd "$HOMEDIR" && exec unshare -m --propagation private sh -c "$prep"' && exec "$@"' sh \
    "${as_user[@]}" bash "$HOMEDIR/bench.sh" "$N" "$M" "$IMAGE" ) > "$results" &
inner=$!
wait "$inner" || true
inner=
# podman's pause process (and anything else of the user's) goes before the
# figures are printed, so a failure to clean up is not hidden by them.
if grep '^fatal' "$results" >&2; then exit 1; fi

# --- the table ----------------------------------------------------------------
python3 - "$results" "$N" "$M" "$tun_note" "$(uname -r)" "$(nproc)" "$(date -u +%F)" <<'PY'
import statistics, sys
path, n, m, tun, kernel, cpus, day = sys.argv[1:]
ver, info, avail, runs, phase = {}, "", {}, {}, {}
for line in open(path):
    w = line.rstrip("\n").split(" ", 3)
    if w[0] == "version": ver[w[1]] = " ".join(w[2:])
    elif w[0] == "info": info = " ".join(w[2:])
    elif w[0] == "avail": avail[(w[1], w[2])] = w[3]
    elif w[0] == "run": runs.setdefault((w[1], w[2]), []).append(int(w[3]) / 1000)
    elif w[0] == "phase": phase.setdefault(w[1], []).append(int(w[2]) / 1000)

def stats(t):
    if len(t) < 2: return None
    return statistics.median(t), statistics.quantiles(t, n=10, method="inclusive")[8], min(t), max(t)

drv = info.split() + ["?"] * 5
print(f"minicontainer {ver.get('minicontainer') or '?'}; podman {ver.get('podman', '?')} "
      f"(storage {drv[0]}, cgroup manager {drv[1]} on cgroup {drv[2]}, runtime {drv[3]}: {ver.get('runc', '?')}, "
      f"events {drv[4]}); {ver.get('slirp4netns', '?')}")
print(f"as an unprivileged user (uid 23460, subordinate ids 400000:65536); {tun}; {day}, kernel {kernel}, {cpus} CPUs")
if avail.get(("minicontainer", "load"), "yes") != "yes":
    print(f"minicontainer load -i: not available: {avail[('minicontainer', 'load')][4:]}")
print()
print(f"run --rm busybox:latest /bin/true, {n} runs each, the runtimes interleaved (wall ms)")
print(f"{'network':<13} {'runtime':<14} {'median':>8} {'p90':>8} {'min - max':>17} {'x podman':>9}")
for mode in ("none", "slirp4netns"):
    pod = stats(runs.get(("podman", mode), []))
    for rt in ("minicontainer", "podman"):
        s = stats(runs.get((rt, mode), []))
        if s is None:
            why = avail.get((rt, mode), "no: not measured")
            print(f"{mode:<13} {rt:<14} not available ({why[4:] if why.startswith('no: ') else why})")
            continue
        x = f"{s[0] / pod[0]:.2f}" if pod else "n/a"
        print(f"{mode:<13} {rt:<14} {s[0]:8.1f} {s[1]:8.1f} {s[2]:8.1f} - {s[3]:6.1f} {x:>9}")
if phase:
    print()
    print(f"where podman's time goes (--network none, {m} samples each, wall ms)")
    print(f"{'podman':<28} {'median':>8} {'p90':>8} {'min - max':>17}")
    names = {"create": "create", "start": "start --attach (run, wait)", "rm": "rm", "ps": "ps -aq (no container work)"}
    for k in ("create", "start", "rm", "ps"):
        s = stats(phase.get(k, []))
        if s: print(f"{names[k]:<28} {s[0]:8.1f} {s[1]:8.1f} {s[2]:8.1f} - {s[3]:6.1f}")
PY
