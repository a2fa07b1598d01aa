#!/usr/bin/env bash
# minicontainer beside runc and crun, in one run, on one bundle (bundle.sh's
# /bin/true on the busybox rootfs). One table per figure, each also as a ratio
# to crun, then a summary:
#   1. N x `run` (create + start + wait + delete): wall time, the runtimes
#      alternated in ROUNDS rounds so drift hits all alike (as lifecycle.sh)
#   2. CPU per `run`: user+sys of the whole process tree (GNU time around the
#      loops of 1) less that of a loop running /bin/true directly as often
#   3. create, start, state (of a created container), delete (of a stopped
#      one), exec of /bin/true in a running container (one `sleep 1000` per
#      runtime, the same bundle otherwise): median and p10-p90 over M samples
#      each (hyperfine -N; --prepare or --setup puts the container in the
#      state the phase needs)
#   4. peak RSS of `run`: GNU time's %M (the largest process of the tree), the
#      maximum over R runs
#   5. the smallest memory limit `run` still works under: bench/memfloor.sh
#   6. parallel throughput: P loops of K runs at once, containers per second
#   7. `--version` start-up (hyperfine -N), mean over V runs
# Tables 1 and 2 and the summary also show the kernel floor: bench/floor.c
# (compiled here with gcc into the work dir) doing what a runtime minimally
# must per container (cgroups in every hierarchy, clone into new namespaces,
# pivot_root, /proc, exec /bin/true, wait, rmdir), alternated in the same
# rounds: `kernel floor` runs a round's containers in one process of it,
# `floor + exec` starts a fresh one per container, as the runtimes are
# started. It runs as minicontainer does, in the host's mount namespace (its
# mounts are all in the child's own one).
# crun refuses hybrid cgroup hosts, so everything crun runs in a private mount
# namespace (unshare -m) with /sys/fs/cgroup/unified unmounted there only; the
# host's mounts are never changed. Each runtime keeps its state under a private
# --root in a mktemp dir and names its containers mcb-<runtime>-...; on exit
# every container left is force-deleted, cgroups of ours are removed, and so is
# the work dir.
# MC_BEFORE=/path/to/an/older/minicontainer measures that binary too, as one
# more runtime `before` in the same run (alternated with the others like
# them): a `before` row in each table, with an `x before` column (after /
# before) on minicontainer's row, and `before` and `after x before` columns
# in the summary. Without it the output has neither.
# SECCOMP=default gives every runtime's bundle the seccomp profile a
# Docker-style `run` compiles (bundle.sh); the default is none.
# STATE_TMPFS=1 puts every runtime's --root on a tmpfs mounted over
# $work/root (unmounted on exit), as /run is on most hosts; here /run is on
# the root ext4, where each state file is a new inode.
# Usage: [M=30] [P=8] [K=10] [R=5] [V=100] [SKIP_MEMFLOOR=1] [MC_BEFORE=BIN]
#          [SECCOMP=none|default] [STATE_TMPFS=1]
#          bench/compare.sh [N] [ROUNDS]
#   (as root; needs runc, crun, hyperfine, GNU time and gcc). Quick try:
#   M=5 P=2 K=3 SKIP_MEMFLOOR=1 bench/compare.sh 10 2
set -euo pipefail
shopt -s inherit_errexit
N=${1:-100}
ROUNDS=${2:-5}
M=${M:-30}
P=${P:-8}
K=${K:-10}
R=${R:-5}
V=${V:-100}
[ "$ROUNDS" -le "$N" ] || ROUNDS=$N
here=$(cd "$(dirname "$0")/.." && pwd)
MC=${MINICONTAINER:-$here/.build/release/minicontainer}
ROOTFS=${ROOTFS:-/var/lib/minicontainer/rootfs/busybox}
export MINICONTAINER=$MC ROOTFS
export SECCOMP_FROM=$MC   # bundle.sh's profile (memfloor.sh runs `before` as MINICONTAINER too)
[ -x "$ROOTFS/bin/busybox" ] || "$here/scripts/mkrootfs.sh" "$ROOTFS"

RUNTIMES="minicontainer runc crun"
declare -A SHORT=([minicontainer]=mc [runc]=runc [crun]=crun)
work=$(mktemp -d /tmp/mc-compare.XXXXXX)
bundle=$work/bundle
sleep_bundle=$work/sleep-bundle   # the same, running sleep 1000 (for exec)
declare -A CMD=(
  [minicontainer]="$MC --root $work/root/mc"
  [runc]="runc --root $work/root/runc"
  [crun]="crun --root $work/root/crun"
)
MC_BEFORE=${MC_BEFORE:-}
if [ -n "$MC_BEFORE" ]; then
  [ -x "$MC_BEFORE" ] || { echo "MC_BEFORE=$MC_BEFORE: not an executable" >&2; rm -rf "$work"; exit 2; }
  MC_BEFORE=$(readlink -f "$MC_BEFORE")
  RUNTIMES="minicontainer before runc crun"
  SHORT[before]=before
  CMD[before]="$MC_BEFORE --root $work/root/before"
fi
# Hierarchies that already have minicontainer's parent cgroup keep it.
had_parent=$(ls -d /sys/fs/cgroup/*/minicontainer/ 2>/dev/null || true)

# in_ns RUNTIME CMD... -> runs CMD; for crun in a private mount namespace
# without the cgroup v2 mount.
in_ns() {
  local rt=$1; shift
  if [ "$rt" = crun ]; then
    unshare -m bash -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' in-ns "$@"
  else
    "$@"
  fi
}

cleanup() {
  set +e
  local rt d id
  for rt in $RUNTIMES; do
    for d in "$work/root/${SHORT[$rt]}"/*/; do
      [ -d "$d" ] || continue
      id=$(basename "$d")
      in_ns "$rt" ${CMD[$rt]} delete --force "$id" >/dev/null 2>&1
    done
  done
  # Our cgroups only: /<id> (runc, crun) or /minicontainer/<id>; anything
  # still in one is a container process of ours.
  for d in /sys/fs/cgroup/*/mcb-*/ /sys/fs/cgroup/*/minicontainer/mcb-*/; do
    [ -d "$d" ] || continue
    for id in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$id" 2>/dev/null; done
    for _ in 1 2 3 4 5; do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
  done
  for d in /sys/fs/cgroup/*/minicontainer/; do
    case $had_parent in *"$d"*) ;; *) rmdir "$d" 2>/dev/null ;; esac
  done
  mountpoint -q "$work/root" && umount "$work/root"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$(dirname "$0")/bundle.sh"
make_true_bundle "$bundle"
# Peak RSS counts the binary's pages mapped around each fault, and how many
# that is depends on how the file came into the page cache: a binary just
# copied or linked sits in large folios, mapped whole (+700 KiB for ours,
# measured). Every runtime's binary is dropped from the cache first (dd
# iflag=nocache count=0), so that all are read back the same way, by
# readahead at their first run.
# Dirty pages cannot be dropped: a binary linked or copied in the last half
# minute would keep its large folios, so write everything back first.
sync
for b in "$MC" "${MC_BEFORE:-}" "$(command -v runc)" "$(command -v crun)"; do
  [ -n "$b" ] && dd if="$b" iflag=nocache count=0 status=none 2>/dev/null || true
done
floor_bin=$work/floor
gcc -O2 -o "$floor_bin" "$here/bench/floor.c"
echo "seccomp profile in the bundle: ${SECCOMP:-none}"
mkdir -p "$sleep_bundle" "$work/root"
if [ "${STATE_TMPFS:-}" = 1 ]; then
  mount -t tmpfs -o mode=0700 mc-compare-state "$work/root"
  echo "state (--root) on a tmpfs"
fi
python3 - "$bundle/config.json" "$sleep_bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["/bin/sleep", "1000"]
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY

# ratio A B -> A/B to two places, or n/a
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a !~ /^-?[0-9.]+$/ || b !~ /^-?[0-9.]+$/ || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}

version() {  # RUNTIME -> "version (short commit)"
  in_ns "$1" ${CMD[$1]} --version | awk 'NR == 1 { v = $3 } /^commit:/ { c = $2 }
    END { if (c ~ /^[0-9a-f]+$/) c = substr(c, 1, 7); printf "%s%s", v, (c == "" ? "" : " (" c ")") }'
}
before_v=
[ -z "$MC_BEFORE" ] || before_v=", before $(version before) = $MC_BEFORE"
printf 'minicontainer %s%s, runc %s, crun %s; %s, kernel %s, %s CPUs\n\n' \
  "$(version minicontainer)" "$before_v" "$(version runc)" "$(version crun)" "$(date -u +%F)" "$(uname -r)" "$(nproc)"

declare -A VAL   # figure:runtime -> number, for the summary

# With MC_BEFORE: xb_head prints the `x before` column's heading, xb FIGURE
# RUNTIME its cell (after / before on minicontainer's row, else empty);
# without, both print nothing.
xb_head() { [ -z "$MC_BEFORE" ] || printf ' %9s' "x before"; }
xb() {
  [ -n "$MC_BEFORE" ] || return 0
  if [ "$2" = minicontainer ]; then printf ' %9s' "$(ratio "${VAL[$1:minicontainer]}" "${VAL[$1:before]}")"
  else printf ' %9s' ""; fi
}

# --- 1 + 2: N x run, wall time and CPU ------------------------------------
# loop_script COMMAND COUNT -> a script running COMMAND (with $i) COUNT times,
# printing the wall nanoseconds it took.
loop_script() {
  echo "start=\$(date +%s%N); for i in \$(seq $2); do $1 </dev/null >/dev/null || exit 1; done; echo \$(( \$(date +%s%N) - start ))"
}
# timed RUNTIME SCRIPT -> "wall-ns cpu-centiseconds" of SCRIPT's process tree
timed() {
  local ns
  ns=$(in_ns "$1" /usr/bin/time -f '%U %S' -o "$work/time" bash -c "$2")
  echo "$ns $(tail -n 1 "$work/time" | awk '{ printf "%d", ($1 + $2) * 100 + 0.5 }')"
}
declare -A wall cpu
FLOORS="kfloor kfloor-exec"
declare -A FLOOR_LABEL=([kfloor]="kernel floor" [kfloor-exec]="floor + exec")
for r in $RUNTIMES baseline $FLOORS; do wall[$r]=0; cpu[$r]=0; done
per=$(( N / ROUNDS ))
for round in $(seq "$ROUNDS"); do
  for r in $RUNTIMES baseline $FLOORS; do
    if [ "$r" = baseline ]; then
      out=$(timed "$r" "$(loop_script /bin/true $per)")
    elif [ "$r" = kfloor ]; then  # the round's containers in one process
      out=$(timed "$r" "$(loop_script "$floor_bin -q -n $per -r $ROOTFS -o $work/floor.ms" 1)")
    elif [ "$r" = kfloor-exec ]; then
      out=$(timed "$r" "$(loop_script "$floor_bin -q -r $ROOTFS" $per)")
    else
      out=$(timed "$r" "$(loop_script "${CMD[$r]} run --bundle $bundle mcb-${SHORT[$r]}-w$round-\$i" $per)")
    fi
    wall[$r]=$(( wall[$r] + ${out% *} ))
    cpu[$r]=$(( cpu[$r] + ${out#* } ))
  done
done
n=$(( per * ROUNDS ))
for r in $RUNTIMES $FLOORS; do
  VAL[wall:$r]=$(awk -v t="${wall[$r]}" -v n=$n 'BEGIN { printf "%.2f", t / 1e6 / n }')
  VAL[cpu:$r]=$(awk -v c="${cpu[$r]}" -v b="${cpu[baseline]}" -v n=$n 'BEGIN { printf "%.2f", (c - b) * 10 / n }')
done
# The floor in one process has no per-container command start to discount.
VAL[cpu:kfloor]=$(awk -v c="${cpu[kfloor]}" -v n=$n 'BEGIN { printf "%.2f", c * 10 / n }')
# The floor's per-container times: "median p10 p90" in ms.
VAL[floorstat]=$(python3 - "$work/floor.ms" <<'PY'
import statistics, sys
t = sorted(float(x) for x in open(sys.argv[1]))
q = statistics.quantiles(t, n=10, method="inclusive") if len(t) > 1 else [t[0]] * 9
print("%.2f %.2f %.2f" % (statistics.median(t), q[0], q[8]))
PY
)

printf '1. %s x run of /bin/true (create+start+wait+delete), %s rounds\n' "$n" "$ROUNDS"
printf '%-14s %10s %14s %8s%s\n' runtime "total (s)" "per run (ms)" "x crun" "$(xb_head)"
for r in $RUNTIMES; do
  printf '%-14s %10.2f %14.2f %8s%s\n' "$r" "$(awk -v t="${wall[$r]}" 'BEGIN { print t / 1e9 }')" \
    "${VAL[wall:$r]}" "$(ratio "${wall[$r]}" "${wall[crun]}")" "$(xb wall "$r")"
done
for r in $FLOORS; do
  printf '%-14s %10.2f %14.2f %8s\n' "${FLOOR_LABEL[$r]}" "$(awk -v t="${wall[$r]}" 'BEGIN { print t / 1e9 }')" \
    "${VAL[wall:$r]}" "$(ratio "${wall[$r]}" "${wall[crun]}")"
done
read -r med lo hi <<<"${VAL[floorstat]}"
printf '(kernel floor: bench/floor.c, a round'"'"'s containers in one process of it, median %s ms, p10-p90\n' "$med"
printf ' %s - %s ms; floor + exec: a fresh process of it per container)\n' "$lo" "$hi"
echo

printf '2. CPU (user+sys of the process tree) per run, less a /bin/true loop (%s ms per run)\n' \
  "$(awk -v b="${cpu[baseline]}" -v n=$n 'BEGIN { printf "%.2f", b * 10 / n }')"
printf '%-14s %10s %8s%s\n' runtime "ms" "x crun" "$(xb_head)"
for r in $RUNTIMES; do
  printf '%-14s %10s %8s%s\n' "$r" "${VAL[cpu:$r]}" "$(ratio "${VAL[cpu:$r]}" "${VAL[cpu:crun]}")" "$(xb cpu "$r")"
done
for r in $FLOORS; do
  printf '%-14s %10s %8s\n' "${FLOOR_LABEL[$r]}" "${VAL[cpu:$r]}" "$(ratio "${VAL[cpu:$r]}" "${VAL[cpu:crun]}")"
done
echo "(kernel floor: its one process's CPU, nothing subtracted; floor + exec: less the loop, as the runtimes)"
echo

# --- 3: create, start, state, delete, exec -----------------------------------
# phase.sh STATE ID RUNTIME-COMMAND...: put container ID in STATE (gone,
# created, stopped, or running: started from the sleep bundle) for the next
# timed phase.
cat >"$work/phase.sh" <<EOF
#!/usr/bin/env bash
set -u
want=\$1 id=\$2; shift 2
"\$@" delete --force "\$id" >/dev/null 2>&1
case \$want in
  gone) exit 0 ;;
  created) exec "\$@" create --bundle $bundle "\$id" </dev/null >/dev/null ;;
  stopped)
    "\$@" create --bundle $bundle "\$id" </dev/null >/dev/null && "\$@" start "\$id" || exit 1
    for _ in \$(seq 1000); do
      "\$@" state "\$id" | grep -q '"status": *"stopped"' && exit 0
      sleep 0.005
    done
    exit 1 ;;
  running)
    "\$@" create --bundle $sleep_bundle "\$id" </dev/null >/dev/null 2>"$work/running.err" &&
      "\$@" start "\$id" 2>>"$work/running.err" || { cat "$work/running.err" >&2; exit 1; } ;;
esac
EOF
ph="bash $work/phase.sh"
# hf RUNTIME ARGS... -> hyperfine -N ARGS (crun's in its namespace), results in
# $work/hyperfine.json; its chatter is shown only if it fails.
hf() {
  local rt=$1; shift
  in_ns "$rt" hyperfine -N --style none --export-json "$work/hyperfine.json" "$@" >"$work/hyperfine.log" 2>&1 ||
    { echo "$rt: hyperfine $*" >&2; cat "$work/hyperfine.log" >&2; return 1; }
}
# phase RUNTIME NAME -> "median p10 p90" in ms over M timed runs
phase() {
  local rt=$1 name=$2 id=mcb-${SHORT[$1]}-$2 cmd=${CMD[$1]} args
  case $name in
    create) args=(--prepare "$ph gone $id $cmd" "$cmd create --bundle $bundle $id") ;;
    start) args=(--prepare "$ph created $id $cmd" "$cmd start $id") ;;
    state) args=(--setup "$ph created $id $cmd" "$cmd state $id") ;;
    delete) args=(--prepare "$ph stopped $id $cmd" "$cmd delete $id") ;;
    exec) args=(--setup "$ph running $id $cmd" "$cmd exec $id /bin/true") ;;
  esac
  hf "$rt" --warmup 2 --runs "$M" --cleanup "$ph gone $id $cmd" "${args[@]}"
  python3 - "$work/hyperfine.json" <<'PY'
import json, statistics, sys
t = sorted(x * 1000 for x in json.load(open(sys.argv[1]))["results"][0]["times"])
q = statistics.quantiles(t, n=10, method="inclusive")
print("%.2f %.2f %.2f" % (statistics.median(t), q[0], q[8]))
PY
}
printf '3. per-phase latency, %s samples each (hyperfine -N), ms\n' "$M"
printf '%-7s %-14s %8s %17s %8s%s\n' phase runtime median "p10 - p90" "x crun" "$(xb_head)"
for name in create start state delete exec; do
  declare -A lat=()
  for r in $RUNTIMES; do lat[$r]=$(phase "$r" "$name"); VAL[$name:$r]=${lat[$r]%% *}; done
  for r in $RUNTIMES; do
    read -r med lo hi <<<"${lat[$r]}"
    printf '%-7s %-14s %8s %17s %8s%s\n' "$name" "$r" "$med" "$lo - $hi" "$(ratio "$med" "${VAL[$name:crun]}")" \
      "$(xb "$name" "$r")"
  done
done
echo

# --- 4: peak RSS ------------------------------------------------------------
printf '4. peak RSS of run (GNU time %%M, largest process of the tree, max of %s runs)\n' "$R"
printf '%-14s %10s %8s %8s%s\n' runtime KiB MiB "x crun" "$(xb_head)"
for r in $RUNTIMES; do
  : >"$work/rss"
  in_ns "$r" bash -c "$(loop_script "/usr/bin/time -a -o $work/rss -f %M ${CMD[$r]} run --bundle $bundle mcb-${SHORT[$r]}-m\$i" "$R")" >/dev/null
  VAL[rss:$r]=$(sort -n "$work/rss" | tail -n 1)
done
for r in $RUNTIMES; do
  printf '%-14s %10s %8.1f %8s%s\n' "$r" "${VAL[rss:$r]}" "$(awk -v k="${VAL[rss:$r]}" 'BEGIN { print k / 1024 }')" \
    "$(ratio "${VAL[rss:$r]}" "${VAL[rss:crun]}")" "$(xb rss "$r")"
done
echo

# --- 5: memory floor --------------------------------------------------------
if [ "${SKIP_MEMFLOOR:-0}" != 0 ]; then
  echo "5. memory floor: skipped (SKIP_MEMFLOOR)"
  for r in $RUNTIMES; do VAL[floor:$r]=skipped; done
else
  floor_out=$(bash "$here/bench/memfloor.sh")
  if [ -n "$MC_BEFORE" ]; then  # memfloor.sh's minicontainer row, for the old binary
    floor_out+=$'\n'$(MINICONTAINER=$MC_BEFORE RUNTIMES=minicontainer bash "$here/bench/memfloor.sh" |
      awk '$1 == "minicontainer" { $1 = "before"; print }')
  fi
  printf '5. %s\n' "$(head -n 1 <<<"$floor_out")"
  printf '%-14s %10s %8s%s\n' runtime KiB "x crun" "$(xb_head)"
  for r in $RUNTIMES; do
    VAL[floor:$r]=$(awk -v r="$r" '$1 == r { print $2 }' <<<"$floor_out")
  done
  for r in $RUNTIMES; do
    printf '%-14s %10s %8s%s\n' "$r" "${VAL[floor:$r]}" "$(ratio "${VAL[floor:$r]}" "${VAL[floor:crun]}")" "$(xb floor "$r")"
  done
fi
echo

# --- 6: parallel throughput -------------------------------------------------
# P loops at once, in rounds like 1; each loop does K / rounds runs a round.
prounds=$(( ROUNDS < K ? ROUNDS : K ))
kper=$(( K / prounds ))
par_script() {  # RUNTIME ROUND -> a script running P loops at once, printing wall ns
  local run="${CMD[$1]} run --bundle $bundle mcb-${SHORT[$1]}-p$2-\$p-\$i"
  echo "start=\$(date +%s%N); pids=
for p in \$(seq $P); do
  ( for i in \$(seq $kper); do $run </dev/null >/dev/null || exit 1; done ) & pids=\"\$pids \$!\"
done
rc=0; for q in \$pids; do wait \$q || rc=1; done; [ \$rc = 0 ] || exit 1
echo \$(( \$(date +%s%N) - start ))"
}
declare -A par
for r in $RUNTIMES; do par[$r]=0; done
for round in $(seq "$prounds"); do
  for r in $RUNTIMES; do
    ns=$(in_ns "$r" bash -c "$(par_script "$r" "$round")")
    par[$r]=$(( par[$r] + ns ))
  done
done
total=$(( P * kper * prounds ))
printf '6. parallel: %s loops at once, %s runs each (%s rounds), %s containers per runtime\n' "$P" $(( kper * prounds )) "$prounds" "$total"
printf '%-14s %10s %14s %8s%s\n' runtime "wall (s)" "containers/s" "x crun" "$(xb_head)"
for r in $RUNTIMES; do
  VAL[par:$r]=$(awk -v t="${par[$r]}" -v n=$total 'BEGIN { printf "%.1f", n / (t / 1e9) }')
done
for r in $RUNTIMES; do
  printf '%-14s %10.2f %14s %8s%s\n' "$r" "$(awk -v t="${par[$r]}" 'BEGIN { print t / 1e9 }')" \
    "${VAL[par:$r]}" "$(ratio "${VAL[par:$r]}" "${VAL[par:crun]}")" "$(xb par "$r")"
done
echo

# --- 7: --version start-up ----------------------------------------------------
printf '7. --version start-up, %s runs (hyperfine -N)\n' "$V"
printf '%-14s %10s %8s%s\n' runtime "mean (ms)" "x crun" "$(xb_head)"
for r in $RUNTIMES; do
  hf "$r" --warmup 5 --runs "$V" "${CMD[$r]} --version"
  VAL[version:$r]=$(jq -r '.results[0].mean * 1000' "$work/hyperfine.json" | awk '{ printf "%.2f", $1 }')
done
for r in $RUNTIMES; do
  printf '%-14s %10s %8s%s\n' "$r" "${VAL[version:$r]}" "$(ratio "${VAL[version:$r]}" "${VAL[version:crun]}")" \
    "$(xb version "$r")"
done
echo

# --- summary ----------------------------------------------------------------
if [ -z "$MC_BEFORE" ]; then
  echo "summary (x crun: minicontainer / crun; containers/s higher is better, the rest lower)"
  printf '%-24s %14s %10s %10s %10s\n' figure minicontainer runc crun "mc x crun"
else
  echo "summary (x crun: minicontainer / crun; after x before: minicontainer / before;"
  echo "  containers/s higher is better, the rest lower)"
  printf '%-24s %14s %10s %10s %10s %10s %15s\n' figure minicontainer before runc crun "mc x crun" "after x before"
fi
while IFS='|' read -r key label; do
  if [ -z "$MC_BEFORE" ]; then
    printf '%-24s %14s %10s %10s %10s\n' "$label" "${VAL[$key:minicontainer]}" "${VAL[$key:runc]}" \
      "${VAL[$key:crun]}" "$(ratio "${VAL[$key:minicontainer]}" "${VAL[$key:crun]}")"
  else
    printf '%-24s %14s %10s %10s %10s %10s %15s\n' "$label" "${VAL[$key:minicontainer]}" "${VAL[$key:before]}" \
      "${VAL[$key:runc]}" "${VAL[$key:crun]}" "$(ratio "${VAL[$key:minicontainer]}" "${VAL[$key:crun]}")" \
      "$(ratio "${VAL[$key:minicontainer]}" "${VAL[$key:before]}")"
  fi
done <<'ROWS'
wall|run wall (ms)
cpu|run CPU (ms)
create|create median (ms)
start|start median (ms)
state|state median (ms)
delete|delete median (ms)
exec|exec median (ms)
rss|run peak RSS (KiB)
floor|memory floor (KiB)
par|parallel (containers/s)
version|--version (ms)
ROWS
echo
printf '%-26s %8s %8s %10s\n' "kernel floor per container" ms "x crun" "mc x floor"
for key in wall cpu; do
  for r in $FLOORS; do
    printf '%-26s %8s %8s %10s\n' "$([ $key = cpu ] && echo CPU || echo wall), ${FLOOR_LABEL[$r]}" "${VAL[$key:$r]}" "$(ratio "${VAL[$key:$r]}" "${VAL[$key:crun]}")" \
      "$(ratio "${VAL[$key:minicontainer]}" "${VAL[$key:$r]}")"
  done
done
