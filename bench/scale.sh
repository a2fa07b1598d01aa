#!/usr/bin/env bash
# Scale (issue 19): COUNT running detached containers, minicontainer beside
# rootful podman (conmon, runc), one runtime after the other in one run,
# each with state of its own:
#   - COUNT x `run -d --name scale-I ... busybox:latest sleep 100000` on the
#     bridge network, every even I with a published port (-p PORT_BASE+I:80);
#     container 2 runs busybox httpd instead of sleep, and its port is asked
#     for /hostname on 127.0.0.1 once all run (the only traffic: loopback).
#   - the wall time of every start: the 1st, the middle and the last, and the
#     median per bucket of BUCKET starts, so growth with the count shows.
#   - `ps`, `ps -a` and `inspect scale-MIDDLE` with COUNT running (median of
#     REPS; minicontainer's OCI `list` too).
#   - memory per container on the host: the process `run -d` leaves per
#     container (the init's parent: our monitor, podman's conmon), VmRSS from
#     /proc/PID/status, Pss and private (USS) from smaps_rollup; medians. And
#     the drop of MemAvailable per container (everything: the container's own
#     process, netns, veth, cgroups, overlay).
#   - removing them all: minicontainer `rm -f NAME...` (one command),
#     podman `rm -f -t 0 --all` (-t 0: no 10 s SIGTERM wait per container,
#     since sleep as pid 1 ignores SIGTERM; ours SIGKILLs at once).
# minicontainer: --root, MINICONTAINER_DATA and MINICONTAINER_NETWORK_DIR
# in the work dir (a mktemp dir under /tmp), the image scripts/mkimage.sh
# builds from the busybox rootfs loaded into that store (`run busybox:latest`,
# an overlay over the image's layer, as podman runs it); its bridge
# minicontainer0 (172.18.0.0/16) and nft table `ip minicontainer` are made by
# the first container and removed at the end (`prune --network`).
# podman: --root/--runroot in the work dir, CONTAINERS_CONF of its own
# (runtime runc: crun refuses this hybrid cgroup host; cgroup_manager
# cgroupfs; events to a file; file locks, tmp dirs in the work dir; CNI with
# a network of its own: bridge mcscalepod0, 10.213.0.0/16, host-local leases
# in the work dir, the plugins of podman's default network). The image is
# loaded into podman's store (and made with skopeo) in a private mount
# namespace with a tmpfs over /var/lib/containers, so root's default podman
# storage and its blob-info cache are never read or written. Never `prune`.
# Refuses to start when minicontainer0, the `ip minicontainer` table or
# mcscalepod0 exists (another root's containers use them), or a port is
# taken. Everything is removed on every exit path; the host's links, nft
# ruleset (iptables-save too), ip_forward, cgroups (top level and under the
# runtimes' parents), /run/netns, mounts and processes are compared before
# and after, and the script fails loudly on any difference.
# Usage: COUNT=200 bash bench/scale.sh   (as root; COUNT default 200, even;
#   REPS=5, BUCKET=20, PORT_BASE=28000; NETWORK=none for a trial without the
#   bridge, ports or the loopback check; needs podman, runc, conmon, umoci,
#   skopeo, nft, curl, python3)
set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C
COUNT=${COUNT:-200}
REPS=${REPS:-5}
BUCKET=${BUCKET:-20}
PORT_BASE=${PORT_BASE:-28000}
NETWORK=${NETWORK:-bridge}
case $NETWORK in bridge|none) ;; *) echo "scale.sh: NETWORK is bridge or none" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
MC=${MINICONTAINER:-$here/.build/release/minicontainer}
ROOTFS=${ROOTFS:-/var/lib/minicontainer/rootfs/busybox}
IMAGE=busybox:latest
MC_BRIDGE=minicontainer0
POD_BRIDGE=mcscalepod0
POD_SUBNET=10.213.0.0/16
POD_GATEWAY=10.213.0.1
POD_NET=mcscale

die() { echo "scale.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root"
for v in COUNT REPS BUCKET PORT_BASE; do
  case ${!v} in ''|*[!0-9]*|0) die "$v must be a positive number" ;; esac
done
[ $((COUNT % 2)) = 0 ] || die "COUNT must be even (half of the containers publish a port)"
[ $((PORT_BASE + COUNT)) -le 65535 ] || die "PORT_BASE + COUNT is above 65535"
for t in podman runc conmon umoci skopeo nft iptables-save ip ss curl python3 unshare; do
  command -v "$t" >/dev/null || die "$t is missing"
done
[ -x "$MC" ] || die "no minicontainer at $MC (make build)"
[ -x "$ROOTFS/bin/busybox" ] || die "no busybox rootfs at $ROOTFS (make rootfs)"
# Another --root's containers (the test suite's) would share our bridge and table.
[ "$NETWORK" = none ] || {
[ ! -e "/sys/class/net/$MC_BRIDGE" ] || die "$MC_BRIDGE exists (containers of another --root use it?): run on an idle host"
! nft list table ip minicontainer >/dev/null 2>&1 || die "the nft table ip minicontainer exists (in use by another --root?): run on an idle host"
[ ! -e "/sys/class/net/$POD_BRIDGE" ] || die "$POD_BRIDGE exists: a scale.sh still running, or one that left it"
busy=$(ss -Htanu | awk -v lo="$PORT_BASE" -v hi=$((PORT_BASE + COUNT)) '
  { n = split($5, a, ":"); p = a[n] + 0; if (p >= lo && p <= hi) print $5 }' | head -3)
[ -z "$busy" ] || die "host ports $PORT_BASE-$((PORT_BASE + COUNT)) are not free: $(echo $busy)"
ip route show | grep -q '^10\.213\.' && die "$POD_SUBNET is routed here already"
}

# --- the host before ---------------------------------------------------------
CG_PARENTS="minicontainer libpod_parent"
snapshot() {  # snapshot FILE: what this script must leave as it found it
  (
    set +e +o pipefail
    echo "== links"; ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort
    echo "== nft"; nft -s list ruleset 2>/dev/null | sed 's/ # handle [0-9]*//'
    echo "== iptables"; iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
    echo "== ip6tables"; ip6tables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
    echo "== sysctl"; for s in net/ipv4/ip_forward net/ipv4/conf/all/route_localnet net/ipv4/conf/all/forwarding; do
      echo "$s=$(cat /proc/sys/$s)"; done; [ -d /proc/sys/net/bridge ] && echo "br_netfilter loaded"
    echo "== cgroups"; for h in /sys/fs/cgroup/*/; do
      for d in "$h"*/; do [ -d "$d" ] && echo "${d%/}"; done
      for p in $CG_PARENTS; do [ -d "$h$p" ] && find "$h$p" -mindepth 1 -type d; done
    done | sort
    echo "== netns"; ls /run/netns 2>/dev/null | sort
    echo "== cni"; ls /var/lib/cni/results /var/lib/cni/networks 2>/dev/null | sort
    echo "== runc"; ls /run/runc 2>/dev/null | sort
    echo "== shm"; ls /dev/shm | sort
    echo "== minicontainer defaults"; ls -a /run/minicontainer /var/lib/minicontainer/network 2>/dev/null
    echo "== containers"; ls -a /var/lib/containers 2>/dev/null; [ -e /run/containers ] && ls -a /run/containers
    find /var/lib/containers/cache -maxdepth 1 -printf '%p %s %T@\n' 2>/dev/null | sort
    true
  ) > "$1" 2>&1
}

# The ids of our containers ("minicontainer ID" / "podman ID" lines; short
# ids from ps -q at cleanup too), their cgroups (the runtimes' parents:
# minicontainer/ID, libpod_parent/libpod-ID; deepest first) and the
# processes this run made: anything naming the work dir (our monitors, conmon,
# podman's cleanup runs) and whatever is in our containers' cgroups. Nothing
# else on the host is ever killed or removed.
our_cgroups() {
  local rt id h
  sort -u "$IDS" | while read -r rt id; do
    [ ${#id} -ge 12 ] || continue
    for h in /sys/fs/cgroup/*/; do
      case $rt in
        minicontainer) ls -d "$h"minicontainer/"$id"* 2>/dev/null ;;
        podman) ls -d "$h"libpod_parent/libpod-"$id"* "$h"libpod_parent/libpod-conmon-"$id"* 2>/dev/null ;;
      esac
    done
  done | while read -r d; do find "$d" -depth -type d; done
}
our_pids() {
  local d
  { pgrep -f "$W" || true
    our_cgroups | while read -r d; do cat "$d/cgroup.procs" 2>/dev/null; done
  } | sort -u | grep -vx "$$" | comm -13 <(echo "$procs_before") - | sort -n || true
}

# podman's network: the CNI bridge (kept by the bridge plugin), its chains
# (kept by portmap and firewall) and any table that iptables-nft made for
# them; ip_forward as it was (the bridge plugin sets it). Not with
# NETWORK=none: the host's network is then left entirely alone.
network_cleanup() {
  local ipt fam t c _ rule
  ip link del "$POD_BRIDGE" 2>/dev/null
  for ipt in iptables ip6tables; do
    fam=ip; [ "$ipt" = ip6tables ] && fam=ip6
    command -v "$ipt" >/dev/null || continue
    for t in nat filter mangle; do
      "$ipt" -t "$t" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j CNI-' | while read -r _ rule; do
        grep -qF -- "-A $rule" "$W/before" || eval "$ipt -t $t -D $rule" 2>/dev/null; done
      "$ipt" -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^CNI-/ { print $2 }' | while read -r c; do
        grep -q "^:$c " "$W/before" || echo "$c"; done > "$W/chains.$t"
      while read -r c; do "$ipt" -t "$t" -F "$c"; done < "$W/chains.$t"
      while read -r c; do "$ipt" -t "$t" -X "$c"; done < "$W/chains.$t"
      # a table iptables-nft made for them, now without a rule
      sed -n '/^== nft/,/^== iptables/p' "$W/before" | grep -qx "table $fam $t {" && continue
      nft list table "$fam" "$t" >/dev/null 2>&1 || continue
      "$ipt-save" -t "$t" | grep -q '^-A ' || nft delete table "$fam" "$t"
    done 2>/dev/null
  done
  echo "$forward_before" > /proc/sys/net/ipv4/ip_forward
}

# --- cleanup, on every exit path -------------------------------------------
cleanup() {
  local rc=$? _ p m left=() diff
  set +e
  trap - EXIT INT TERM
  echo "--- cleanup" >&2
  if [ -d "$W/mcroot" ]; then
    "${MCR[@]}" ps -a -q 2>/dev/null | sed 's/^/minicontainer /' >> "$IDS"
    "${MCR[@]}" rm -f --all >/dev/null 2>&1
    if [ "$NETWORK" = bridge ]; then "${MCR[@]}" prune -f --network >/dev/null 2>&1; else "${MCR[@]}" prune -f >/dev/null 2>&1; fi
  fi
  if [ -d "$W/proot" ]; then
    "${P[@]}" ps -a -q --no-trunc 2>/dev/null | sed 's/^/podman /' >> "$IDS"
    "${P[@]}" rm -f -t 0 --all >/dev/null 2>&1
    "${P[@]}" rmi -a -f >/dev/null 2>&1
  fi
  for _ in $(seq 100); do [ -z "$(our_pids)" ] && break; sleep 0.1; done
  for p in $(our_pids); do kill -KILL "$p" 2>/dev/null; done
  # our containers' cgroups the runtimes left (their processes killed just
  # now); the parents when this run made them (on an idle host only)
  our_cgroups | while read -r d; do
    echo "left by the runtime: ${d#/sys/fs/cgroup/}" >> "$W/runtime-left"
    rmdir "$d" 2>/dev/null || { sleep 0.2; rmdir "$d"; }
  done
  # (minicontainer's only on an idle host: NETWORK=bridge made sure of it)
  for p in $CG_PARENTS; do
    [ "$p" = minicontainer ] && [ "$NETWORK" != bridge ] && continue
    [[ " ${had_parent[*]} " == *" $p "* ]] && continue
    m=$(ls -d /sys/fs/cgroup/*/"$p" 2>/dev/null | wc -l)
    [ "$m" = 0 ] && continue
    echo "the runtime made and left its parent cgroup /$p ($(cd "$(ls -d /sys/fs/cgroup/*/"$p" | head -1)" && find . -mindepth 1 -type d | tr '\n' ' ')in $m hierarchies); removed" >> "$W/runtime-left"
    for h in /sys/fs/cgroup/*/; do
      [ -d "$h$p" ] && find "$h$p" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  done
  [ "$NETWORK" = bridge ] && network_cleanup
  for n in $(comm -13 <(sed -n '/^== netns/,/^== cni/p' "$W/before" | sed 1d | sed '$d') <(ls /run/netns 2>/dev/null | sort)); do
    case $n in netns-*|cni-*) ip netns delete "$n" 2>/dev/null ;; esac
  done
  awk -v w="$W" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"; done
  [ -n "$had_varlib" ] || rm -rf /var/lib/containers
  [ ! -s "$W/runtime-left" ] || sed 's/^/scale.sh: note: /' "$W/runtime-left" >&2
  snapshot "$W/after"
  diff=$(diff "$W/before" "$W/after")
  [ -z "$diff" ] || left+=("host state differs (< before, > after):"$'\n'"$diff")
  [ -z "$(our_pids)" ] || left+=("processes: $(our_pids | tr '\n' ' ')")
  m=$(awk -v w="$W" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo)
  [ -z "$m" ] || left+=("mounts: $m")
  if [ ${#left[@]} -eq 0 ]; then
    rm -rf "$W"
    [ ! -e "$W" ] || left+=("the work dir $W")
  fi
  if [ ${#left[@]} -gt 0 ]; then
    printf 'scale.sh: LEFT BEHIND: %s\n' "${left[@]}" >&2
    [ -e "$W" ] && echo "scale.sh: the work dir $W is kept for a look" >&2
    exit 1
  fi
  exit "$rc"
}
had_parent=()
for p in $CG_PARENTS; do ls -d /sys/fs/cgroup/*/"$p" >/dev/null 2>&1 && had_parent+=("$p"); done
forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
had_varlib=; [ -d /var/lib/containers ] && had_varlib=1
procs_before=$(ps -e -o pid= | tr -d ' ' | sort)
W=$(mktemp -d /tmp/mcscale.XXXXXX)   # podman's runroot path must be short
R=$W/results
: > "$R"
MCENV=(env "MINICONTAINER_DATA=$W/mcdata" "MINICONTAINER_NETWORK_DIR=$W/mcnet")
MCR=("${MCENV[@]}" "$MC" --root "$W/mcroot")
export CONTAINERS_CONF=$W/containers.conf
P=(podman --root "$W/proot" --runroot "$W/prun" --storage-driver overlay)

IDS=$W/ids
: > "$IDS"
trap cleanup EXIT
trap 'exit 130' INT TERM
snapshot "$W/before"

# --- the image, into both stores ---------------------------------------------
mkdir -p "$W/cni" "$W/cni-ipam" "$W/ptmp" "$W/pcopy"
. "$here/bench/podman.sh"
cat > "$CONTAINERS_CONF" <<EOF
[containers]
$(podman_ulimits)

[network]
network_backend = "cni"
network_config_dir = "$W/cni"
cni_plugin_dirs = ["/usr/lib/cni"]
default_network = "$POD_NET"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "$W/ptmp"
image_copy_tmp_dir = "$W/pcopy"
EOF
cat > "$W/cni/$POD_NET.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$POD_NET",
  "plugins": [
    { "type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": "$W/cni-ipam", "routes": [{ "dst": "0.0.0.0/0" }],
                "ranges": [[{ "subnet": "$POD_SUBNET", "gateway": "$POD_GATEWAY" }]] } },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "firewall" },
    { "type": "tuning" }
  ]
}
EOF
mask=:
[ -n "$had_varlib" ] && mask='mount -t tmpfs -o mode=0700,size=16m scale-mask /var/lib/containers'
unshare -m --propagation private sh -c "$mask"' && "$@"' sh bash -c '
  set -e
  bash "$1/scripts/mkimage.sh" "$2" "$3/busybox.tar" "$4" >/dev/null
  shift 4; "$@" load -q -i "'"$W"'/busybox.tar" >/dev/null' sh "$here" "$ROOTFS" "$W" "$IMAGE" "${P[@]}"
"${MCR[@]}" load -i "$W/busybox.tar" >/dev/null

# --- one runtime's phase -------------------------------------------------------
memavail() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }
phase() {
  local rt=$1 i t0 t1 name port out mid=$((COUNT / 2)) rep c rows
  local -a run base cmd args rm_cmd names=()
  case $rt in
    minicontainer) base=("${MCR[@]}"); run=("${MCR[@]}" run -d --pull never --network bridge) ;;
    podman) base=("${P[@]}"); run=("${P[@]}" run -d --pull never --network "$POD_NET") ;;
  esac
  [ "$NETWORK" = bridge ] || run=("${base[@]}" run -d --pull never --network none)
  # warm-up: the binaries and the image's layer in the page cache, no network
  "${base[@]}" run --rm --pull never --network none "$IMAGE" /bin/true >/dev/null 2>"$W/err" \
    || { echo "scale.sh: $rt warm-up run: $(head -c 300 "$W/err")" >&2; exit 1; }
  echo "memavail $rt before $(memavail)" >> "$R"
  for i in $(seq "$COUNT"); do
    name=scale-$i; names+=("$name"); args=()
    [ $((i % 2)) = 0 ] && [ "$NETWORK" = bridge ] && { port=$((PORT_BASE + i)); args=(-p "$port:80"); }
    if [ "$i" = 2 ]; then cmd=(httpd -f -p 80 -h /etc); else cmd=(sleep 100000); fi
    t0=$EPOCHREALTIME
    "${run[@]}" --name "$name" "${args[@]}" "$IMAGE" "${cmd[@]}" >"$W/out" 2>"$W/err" </dev/null \
      || { echo "scale.sh: $rt run -d #$i failed: $(head -c 300 "$W/err")" >&2; exit 1; }
    t1=$EPOCHREALTIME
    echo "$rt $(tail -1 "$W/out")" >> "$IDS"
    echo "start $rt $i ${t0/./} ${t1/./} ${#args[@]}" >> "$R"
  done
  echo "memavail $rt after $(memavail)" >> "$R"
  # the one port asked: container 2's httpd, on loopback
  if [ "$NETWORK" != bridge ]; then echo "http $rt not-asked" >> "$R"
  elif out=$(curl -s --max-time 5 "http://127.0.0.1:$((PORT_BASE + 2))/hostname" 2>/dev/null) && [ -n "$out" ]; then
    echo "http $rt yes $out" >> "$R"
  else echo "http $rt no" >> "$R"; fi
  # listing and inspecting with COUNT running
  local -A cmds=([ps]="ps" [psa]="ps -a" [inspect]="inspect scale-$mid")
  [ "$rt" = minicontainer ] && cmds[list]="list"
  for c in "${!cmds[@]}"; do
    # shellcheck disable=SC2086
    "${base[@]}" ${cmds[$c]} > "$W/list.$rt.$c" 2>"$W/err" || { echo "scale.sh: $rt ${cmds[$c]}: $(head -c 300 "$W/err")" >&2; exit 1; }
    for rep in $(seq "$REPS"); do
      t0=$EPOCHREALTIME
      "${base[@]}" ${cmds[$c]} >/dev/null 2>&1
      t1=$EPOCHREALTIME
      echo "cmd $rt $c ${t0/./} ${t1/./}" >> "$R"
    done
  done
  rows=$(grep -c scale- "$W/list.$rt.ps" || true)
  echo "rows $rt $rows" >> "$R"
  [ "$rows" = "$COUNT" ] || { echo "scale.sh: $rt ps shows $rows of $COUNT containers" >&2; exit 1; }
  # memory: the init's parent, per container
  "${base[@]}" inspect -f '{{.State.Pid}}' "${names[@]}" > "$W/pids.$rt"
  python3 - "$rt" "$W/pids.$rt" >> "$R" <<'PY'
import sys
rt, path = sys.argv[1:]
def field(text, key):
    for line in text.splitlines():
        if line.startswith(key + ":"): return int(line.split()[1])
    return 0
for p in open(path).read().split():
    st = open(f"/proc/{p}/status").read()
    pp = field(st, "PPid")
    comm = open(f"/proc/{pp}/comm").read().strip()
    s = open(f"/proc/{pp}/status").read()
    r = open(f"/proc/{pp}/smaps_rollup").read()
    uss = field(r, "Private_Clean") + field(r, "Private_Dirty")
    print(f"mem {rt} {comm} {field(s, 'VmRSS')} {field(r, 'Pss')} {uss}")
PY
  # remove them all
  case $rt in
    minicontainer) rm_cmd=("${MCR[@]}" rm -f "${names[@]}") ;;
    podman) rm_cmd=("${P[@]}" rm -f -t 0 --all) ;;
  esac
  t0=$EPOCHREALTIME
  "${rm_cmd[@]}" >/dev/null 2>"$W/err" || { echo "scale.sh: $rt rm: $(head -c 300 "$W/err")" >&2; exit 1; }
  t1=$EPOCHREALTIME
  echo "rm $rt ${t0/./} ${t1/./}" >> "$R"
  "${base[@]}" ps -a > "$W/list.$rt.after"
  [ "$(grep -c scale- "$W/list.$rt.after" || true)" = 0 ] || { echo "scale.sh: $rt: containers left after rm" >&2; exit 1; }
  for _ in $(seq 600); do [ -z "$(our_pids)" ] && break; sleep 0.1; done
  t1=$EPOCHREALTIME
  echo "drain $rt ${t0/./} ${t1/./}" >> "$R"
  [ -z "$(our_pids)" ] || { echo "scale.sh: $rt: processes left after rm: $(our_pids | tr '\n' ' ')" >&2; exit 1; }
  [ "$rt" = minicontainer ] && [ "$NETWORK" = bridge ] && "${MCR[@]}" prune -f --network >/dev/null
  return 0
}

versions() {
  echo "version minicontainer $("$MC" --version 2>/dev/null | awk 'NR == 1 { v = $3 } /^commit:/ { c = substr($2, 1, 7) }
    END { printf "%s%s", v, (c == "" ? "" : " (" c ")") }')"
  echo "version podman $(podman --version | awk '{ print $3 }')"
  echo "version runc $(runc --version | awk 'NR == 1 { print $3 }')"
  echo "version conmon $(conmon --version | awk 'NR == 1 { print $3 }')"
}
versions >> "$R"
echo "load before $(cut -d' ' -f1-3 /proc/loadavg)" >> "$R"
phase minicontainer
phase podman
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)" >> "$R"

# --- the table ----------------------------------------------------------------
python3 - "$R" "$COUNT" "$REPS" "$BUCKET" "$PORT_BASE" "$(uname -r)" "$(nproc)" "$(date -u +%F)" <<'PY'
import statistics as st, sys
path, count, reps, bucket, pbase, kernel, cpus, day = sys.argv[1:]
count, reps, bucket = int(count), int(reps), int(bucket)
RT = ("minicontainer", "podman")
ver, starts, cmds, mem, rm, http, avail, drain, load = {}, {r: {} for r in RT}, {}, {r: [] for r in RT}, {}, {}, {}, {}, {}
for line in open(path):
    w = line.split()
    if w[0] == "version": ver[w[1]] = " ".join(w[2:])
    elif w[0] == "start": starts[w[1]][int(w[2])] = ((int(w[4]) - int(w[3])) / 1000, w[5] != "0")
    elif w[0] == "cmd": cmds.setdefault((w[1], w[2]), []).append((int(w[4]) - int(w[3])) / 1000)
    elif w[0] == "mem": mem[w[1]].append((w[2], int(w[3]), int(w[4]), int(w[5])))
    elif w[0] == "rm": rm[w[1]] = (int(w[3]) - int(w[2])) / 1e6
    elif w[0] == "drain": drain[w[1]] = (int(w[3]) - int(w[2])) / 1e6
    elif w[0] == "http": http[w[1]] = w[2]
    elif w[0] == "memavail": avail[(w[1], w[2])] = int(w[3])
    elif w[0] == "load": load[w[1]] = " ".join(w[2:])

def x(a, b): return f"{a / b:.2f}" if b else "n/a"
print(f"minicontainer {ver['minicontainer']}; podman {ver['podman']} (runc {ver['runc']}, conmon {ver['conmon']}, "
      f"cgroupfs, CNI bridge); {day}, kernel {kernel}, {cpus} CPUs")
print(f"{count} detached busybox containers each (`run -d ... sleep 100000`), bridge network, every 2nd with -p "
      f"{pbase}+i:80; one runtime after the other, each with a private store")
print(f"load average (1, 5, 15 min) before: {load.get('before', '?')}, after: {load.get('after', '?')}")
print()
mid = count // 2
print(f"start latency, `run -d` wall ms")
print(f"{'container':<24} {'minicontainer':>14} {'podman':>10} {'x podman':>9}")
for i in (1, mid, count):
    a, b = starts["minicontainer"][i][0], starts["podman"][i][0]
    print(f"{'#%d%s' % (i, ' (-p)' if starts['minicontainer'][i][1] else ''):<24} {a:14.1f} {b:10.1f} {x(a, b):>9}")
allm = [starts["minicontainer"][i][0] for i in range(1, count + 1)]
allp = [starts["podman"][i][0] for i in range(1, count + 1)]
print(f"{'median of all':<24} {st.median(allm):14.1f} {st.median(allp):10.1f} {x(st.median(allm), st.median(allp)):>9}")
for lab, want in (("median, no port", False), ("median, with -p", True)):
    if not any(starts["minicontainer"][i][1] == want for i in range(1, count + 1)): continue
    a = st.median([starts["minicontainer"][i][0] for i in range(1, count + 1) if starts["minicontainer"][i][1] == want])
    b = st.median([starts["podman"][i][0] for i in range(1, count + 1) if starts["podman"][i][1] == want])
    print(f"{lab:<24} {a:14.1f} {b:10.1f} {x(a, b):>9}")
print()
print(f"per-start cost by how many run already (median ms of each bucket of {bucket}; max in brackets)")
print(f"{'containers':<12} {'minicontainer':>20} {'podman':>20} {'x podman':>9}")
for lo in range(1, count + 1, bucket):
    hi = min(lo + bucket - 1, count)
    a = [starts["minicontainer"][i][0] for i in range(lo, hi + 1)]
    b = [starts["podman"][i][0] for i in range(lo, hi + 1)]
    print(f"{f'{lo}-{hi}':<12} {st.median(a):11.1f} ({max(a):6.1f}) {st.median(b):11.1f} ({max(b):6.1f}) {x(st.median(a), st.median(b)):>9}")
def slope(v):  # least squares, ms per 100 more containers, the 1st left out
    xs = list(range(2, len(v) + 1)); ys = v[1:]
    mx, my = st.mean(xs), st.mean(ys)
    return 100 * sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / sum((a - mx) ** 2 for a in xs)
print(f"{'growth':<12} {slope(allm):+16.2f} ms {slope(allp):+16.2f} ms   per 100 more running (least squares, #2-#{count})")
print()
print(f"with {count} running, median of {reps} (ms)")
print(f"{'command':<24} {'minicontainer':>14} {'podman':>10} {'x podman':>9}")
for k, lab in (("ps", "ps"), ("psa", "ps -a"), ("inspect", f"inspect scale-{mid}"), ("list", "list (OCI; ours only)")):
    a = st.median(cmds[("minicontainer", k)]) if ("minicontainer", k) in cmds else None
    b = st.median(cmds[("podman", k)]) if ("podman", k) in cmds else None
    print(f"{lab:<24} {a:14.1f} {(f'{b:10.1f}' if b is not None else f'{chr(45):>10}')} {(x(a, b) if b else '-'):>9}")
print()
print(f"memory per container on the host, median over the {count} (KiB)")
print(f"{'process':<32} {'VmRSS':>8} {'Pss':>8} {'USS':>8}")
for r in RT:
    comms = sorted(set(m[0] for m in mem[r]))
    row = [st.median([m[j] for m in mem[r]]) for j in (1, 2, 3)]
    print(f"{r + ' (' + ','.join(comms) + ')':<32} {row[0]:8.0f} {row[1]:8.0f} {row[2]:8.0f}")
mr = [st.median([m[j] for m in mem["minicontainer"]]) for j in (1, 2, 3)]
pr = [st.median([m[j] for m in mem["podman"]]) for j in (1, 2, 3)]
print(f"{'x conmon':<32} {x(mr[0], pr[0]):>8} {x(mr[1], pr[1]):>8} {x(mr[2], pr[2]):>8}")
drop = {r: (avail[(r, "before")] - avail[(r, "after")]) / count for r in RT}
print(f"{'MemAvailable drop / container':<32} {drop['minicontainer']:8.0f} {drop['podman']:8.0f} {x(drop['minicontainer'], drop['podman']):>8}"
      "   (ours, podman, x: all of a container)")
print()
print(f"remove all {count} (s): minicontainer `rm -f NAME...` {rm['minicontainer']:.2f}, podman `rm -f -t 0 --all` "
      f"{rm['podman']:.2f}, x podman {x(rm['minicontainer'], rm['podman'])}")
print(f"  from rm's start until the last process of theirs is gone (monitors; conmon and podman's cleanup runs): "
      f"{drain['minicontainer']:.2f} and {drain['podman']:.2f} s")
print(f"published port on 127.0.0.1 answered (httpd in #2): minicontainer {http.get('minicontainer', '?')}, podman {http.get('podman', '?')}")
PY
