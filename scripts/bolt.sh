#!/usr/bin/env bash
# Lays out the linked binary's functions again with BOLT (Debian's bolt-16),
# in the order of scripts/symbol-order.txt's code part. lld orders whole
# sections only, and the Swift stdlib's code is a single 1.5 MB section, so
# the stdlib functions a `run` uses lay spread over ~24 windows of 64 KiB,
# each mapped whole at its first fault (peak RSS). BOLT moves single
# functions, the stdlib's and glibc's too, using the relocations lld keeps
# (--emit-relocs); the data stays where lld's order put it. Functions without
# a symbol (Swift's private thunks) are placed by scripts/bolt-order.py.
# BOLT 16 leaves the offsets from Swift's metadata to the code, and the ifunc
# resolvers' addresses, pointing at its old copies: scripts/bolt-relative.py
# points them at the new ones (peak RSS 3592 -> 3072 KiB).
# Called by `make build` after every `swift build`, which relinks whenever
# the file differs from what it linked: lld's output is kept as BIN.linked
# and BOLT's as BIN.bolted, so an unchanged link costs a compare and a copy.
# Without llvm-bolt, or if it fails, BIN keeps lld's layout and this says so.
# Usage: scripts/bolt.sh BIN ORDER
set -euo pipefail
bin=$1 order=$2
bolt=${BOLT:-}
[ -n "$bolt" ] || bolt=$(command -v llvm-bolt-16 || command -v /usr/lib/llvm-16/bin/llvm-bolt || command -v llvm-bolt || true)
if readelf -SW "$bin" | grep -q '\.note\.bolt_info'; then
  exit 0   # not relinked
fi
here=$(dirname "$0")
fresh() {  # BIN.bolted is newer than the order and these scripts
  local f
  for f in "$order" "$0" "$here/bolt-order.py" "$here/bolt-relative.py"; do
    [ "$f" -ot "$bin.bolted" ] || return 1
  done
}
if [ -e "$bin.bolted" ] && [ -e "$bin.linked" ] && fresh && cmp -s "$bin" "$bin.linked"; then
  cat "$bin.bolted" > "$bin"   # the same link as last time
  exit 0
fi
rm -f "$bin.bolted"
if [ -z "$bolt" ]; then
  echo "build: no llvm-bolt (apt-get install bolt-16): $bin keeps lld's layout" >&2
  exit 0
fi
cp "$bin" "$bin.linked.tmp" && mv -f "$bin.linked.tmp" "$bin.linked"   # the old one may be running
dir=$(dirname "$bin")
if python3 "$here/bolt-order.py" "$bin.linked" "$order" > "$dir/bolt-order.txt" 2> "$dir/bolt.log" &&
   "$bolt" "$bin.linked" -o "$bin.bolted.tmp" --reorder-functions=user \
     --function-order="$dir/bolt-order.txt" >> "$dir/bolt.log" 2>&1 &&
   python3 "$here/bolt-relative.py" "$bin.linked" "$bin.bolted.tmp" >> "$dir/bolt.log" 2>&1; then
  chmod 0755 "$bin.bolted.tmp"   # llvm-bolt makes it 0777
  mv "$bin.bolted.tmp" "$bin.bolted"
  cat "$bin.bolted" > "$bin"
  echo "build: functions laid out by BOLT ($dir/bolt.log)"
else
  rm -f "$bin.bolted.tmp"
  echo "build: BOLT's layout failed (see $dir/bolt.log): $bin keeps lld's layout" >&2
fi
