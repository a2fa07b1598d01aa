#!/usr/bin/env bash
# Regenerates scripts/symbol-order.txt, the order in which the linker lays
# out our functions (Makefile: lld --symbol-ordering-file). Peak RSS counts
# every page the kernel maps, and on a fault it maps the 64 KiB around the
# page: code run together should lie together. This traces, instruction by
# instruction (scripts/tracepages.c, ptrace), what `--version`, `run` and the
# create/start/state/delete lifecycle of a /bin/true container execute, and
# lists the functions the runtime's own process runs, in order of first
# execution, then those only the container's init runs (the peak is the
# runtime's: its windows should hold none of the init's code). Slow; run it by
# hand after large changes, then scripts/data-order.sh for the data part
# (the lines before "# code", which this keeps), and commit the result.
# Stale names are ignored.
# Usage: scripts/order.sh   (as root; after `make build rootfs`)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# lld's output, before scripts/bolt.sh lays it out again (the names are the
# same; BOLT's own symbol table lacks some of the copies it moves).
MC=${MINICONTAINER:-$here/.build/release/minicontainer.linked}
[ -e "$MC" ] || MC=$here/.build/release/minicontainer
ROOTFS=${ROOTFS:-/var/lib/minicontainer/rootfs/busybox}
work=$(mktemp -d /tmp/mc-order.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/tracepages" "$here/scripts/tracepages.c"
read -r lo size < <(readelf -lW "$MC" | awk '$1 == "LOAD" && $7 == "R" && $8 == "E" { print $3, $6; exit }')
hi=$(printf '%x' $(( lo + size )))
lo=${lo#0x}
mkdir -p "$work/bundle"
. "$here/bench/bundle.sh"
make_true_bundle "$work/bundle"
t() { "$work/tracepages" "$lo" "$hi" "$work/trace.$1" -- "${@:2}" >/dev/null; }
t 1 "$MC" --version
# Hashing is seeded per process, so dictionary order (and with it some code)
# differs from run to run: three runs, and the union of what they execute.
t 2 "$MC" --root "$work/state" run --bundle "$work/bundle" order-run
t 7 "$MC" --root "$work/state" run --bundle "$work/bundle" order-run2
t 8 "$MC" --root "$work/state" run --bundle "$work/bundle" order-run3
# The init of a created container waits for start: trace create in the
# background (its tracer follows the init until it execs /bin/true).
t 3 "$MC" --root "$work/state" create --bundle "$work/bundle" order-c &
until "$MC" --root "$work/state" state order-c 2>/dev/null | grep -q '"created"'; do sleep 1; done
t 4 "$MC" --root "$work/state" start order-c
wait
t 5 "$MC" --root "$work/state" state order-c
t 6 "$MC" --root "$work/state" delete --force order-c
nm -n --defined-only "$MC" > "$work/nm"
python3 - "$work" "$here/scripts/symbol-order.txt" <<'PY'
import bisect, sys
work, out = sys.argv[1], sys.argv[2]
syms = []
for line in open(work + "/nm"):
    p = line.rstrip("\n").split(" ", 2)
    if len(p) == 3 and p[0] and p[1] in "tTwW":
        syms.append((int(p[0], 16), p[2]))
syms.sort()
addrs = [a for a, _ in syms]
runtime, init = [], []
seen = {"P": set(), "C": set()}
for i in (1, 2, 7, 8, 3, 4, 5, 6):
    for line in open(f"{work}/trace.{i}"):
        addr, who = line.split()
        j = bisect.bisect_right(addrs, int(addr, 16)) - 1
        if j >= 0 and syms[j][1] not in seen[who]:
            # Every name of the function (lld's --icf=all folds copies into one).
            k = j
            while k > 0 and addrs[k - 1] == addrs[j]:
                k -= 1
            for _, name in syms[k:j + 1]:
                if name not in seen[who]:
                    seen[who].add(name)
                    (runtime if who == "P" else init).append(name)
order = runtime + [s for s in init if s not in seen["P"]]
# The data part (scripts/data-order.sh), the lines before "# code", is kept.
try:
    lines = open(out).readlines()
except FileNotFoundError:
    lines = []
data, before = [], []
if any(l.startswith("# code") for l in lines):
    code = False
    for l in lines:
        if l.startswith("# code"):
            code = True
        elif not code:
            data.append(l)
        elif not l.startswith("#"):
            before.append(l.rstrip("\n"))
# What the order before held and these traces did not run (exec, Docker-style
# run, the re-execution, paths that depend on timing) stays, after them.
traced = set(order)
kept = [s for s in before if s not in traced]
open(out, "w").write("".join(data) + "# code (scripts/order.sh)\n" + "".join(s + "\n" for s in order)
                     + "# not run by order.sh's traces, kept from the order before (exec, Docker-style run, the re-execution)\n"
                     + "".join(s + "\n" for s in kept))
print(f"{len(order)} functions traced, {len(kept)} kept -> {out}")
PY
