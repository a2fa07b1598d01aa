#!/usr/bin/env bash
# Fills the data part of scripts/symbol-order.txt (the lines before its
# "# code" line; scripts/order.sh writes the rest): the binary's data
# sections that `run` of a /bin/true container reads, so that they lie
# together too. A read fault in the binary's data maps the 64 KiB around it
# (fault-around), like one in its code, and peak RSS counts those pages.
# Only the first access to each 64 KiB faults, so this repeats: record the
# page faults of two runs (perf record -e page-faults -d, the runtime, its
# re-execution and the init), add the data symbols holding the faulting
# addresses, relink (make build), until a round adds none or after ROUNDS.
# The glibc, libcap and Swift runtime objects each keep their data in one
# section per object (no -fdata-sections), so a symbol moves its object's.
# Usage: [ROUNDS=8] [FRESH=1] scripts/data-order.sh   (as root; after `make build rootfs`
#   and scripts/order.sh; needs perf)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
MC=$here/.build/release/minicontainer
ROOTFS=${ROOTFS:-/var/lib/minicontainer/rootfs/busybox}
ORDER=$here/scripts/symbol-order.txt
work=$(mktemp -d /tmp/mc-data-order.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle"
. "$here/bench/bundle.sh"
make_true_bundle "$work/bundle"
# The code part, as order.sh wrote it, and the data part so far (added to;
# FRESH=1 starts it empty).
awk 'c; /^# code/ { c = 1; print }' "$ORDER" > "$work/code"
grep -q '^# code' "$work/code" || { echo "data-order.sh: no '# code' line in $ORDER (run scripts/order.sh)" >&2; exit 1; }
if [ -n "${FRESH:-}" ]; then : > "$work/data"; else awk '/^# code/ { exit } !/^#/' "$ORDER" > "$work/data"; fi
for round in $(seq "${ROUNDS:-8}"); do
  : > "$work/faults"
  for i in 1 2; do
    perf record -q -e page-faults -c 1 -d -o "$work/perf.data" -- \
      "$MC" --root "$work/state" run --bundle "$work/bundle" "data-order-$round-$i" </dev/null >/dev/null
    perf script -i "$work/perf.data" -F addr >> "$work/faults" 2>/dev/null
  done
  nm -n --defined-only "$MC" > "$work/nm"
  # The data segments' bounds: the LOAD segments that are not executable.
  readelf -lW "$MC" | awk '$1 == "LOAD" && $7 !~ /E/ && $8 !~ /E/ { print $3, $6 }' > "$work/segments"
  new=$(python3 - "$work" <<'PY'
import bisect, sys
work = sys.argv[1]
segs = [(int(a, 16), int(a, 16) + int(s, 16)) for a, s in (l.split() for l in open(work + "/segments"))]
syms = []
for line in open(work + "/nm"):
    p = line.rstrip("\n").split(" ", 2)
    if len(p) == 3 and p[1] in "dDrRvV":
        syms.append((int(p[0], 16), p[2]))
addrs = [a for a, _ in syms]
have = [l.rstrip("\n") for l in open(work + "/data")]
seen, new = set(have), []
for line in open(work + "/faults"):
    try:
        a = int(line.split()[0], 16)
    except (ValueError, IndexError):
        continue
    if not any(lo <= a < hi for lo, hi in segs):
        continue
    j = bisect.bisect_right(addrs, a) - 1
    if j >= 0 and "#" not in syms[j][1] and syms[j][1] not in seen:
        seen.add(syms[j][1])
        new.append(syms[j][1])
open(work + "/data", "w").write("".join(s + "\n" for s in have + new))
print(len(new))
PY
)
  echo "round $round: $new new data symbols"
  { echo "# data (scripts/data-order.sh)"; cat "$work/data" "$work/code"; } > "$ORDER"
  [ "$new" != 0 ] || break
  (cd "$here" && make build >/dev/null)
done
(cd "$here" && make build >/dev/null)
echo "$(wc -l < "$work/data") data symbols -> $ORDER"
