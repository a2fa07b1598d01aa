#!/usr/bin/env python3
"""Writes BOLT's function order: the code part of scripts/symbol-order.txt,
with the functions that have no name after its traced part. Swift gives
some functions private linkage (thunks of value witnesses to a merged copy,
among them), and the stdlib keeps the copies of helpers another object's
copy replaced: they have no symbol, only their unwind entry, which BOLT
names __BOLT_FDE_FUNCat<address>. Unordered, BOLT puts them among the cold
code, where each one `run` calls costs a window of 64 KiB. The trace
(scripts/order.sh) cannot name them either, so all of them (1122 functions,
174 KB, here) go in lld's order, which put the code a run traces first;
the names hold an address, so they are worked out at each build, from
LINKED's .eh_frame_hdr.
Usage: scripts/bolt-order.py LINKED ORDER > bolt-order.txt
"""
import bisect
import struct
import sys

from elf import STT_FUNC, Elf


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: scripts/bolt-order.py LINKED ORDER")
    order, kept = [], []
    part = None
    for line in open(sys.argv[2]):
        line = line.rstrip("\n")
        if line.startswith("# code"):
            part = order
        elif line.startswith("# not run") and part is order:
            part = kept
        elif part is not None and line and not line.startswith("#"):
            part.append(line)

    linked = Elf(sys.argv[1])
    data = linked.data
    # Where each function ends, by its start.
    ends = {}
    for _, value, kind, shndx, size in linked.symbols():
        if kind == STT_FUNC and shndx != 0 and value != 0:
            ends[value] = max(ends.get(value, 0), value + size)
    starts = sorted(ends)

    # The unwind table's initial locations (.eh_frame_hdr, datarel sdata4).
    hdr = linked.section(".eh_frame_hdr")
    unnamed = []
    if hdr is not None and data[hdr[4]] == 1 and data[hdr[4] + 3] == 0x3B:
        count_enc = data[hdr[4] + 2]
        if count_enc == 0x03:  # udata4
            count, = struct.unpack_from("<I", data, hdr[4] + 8)
            for k in range(count):
                loc, _ = struct.unpack_from("<ii", data, hdr[4] + 12 + 8 * k)
                addr = hdr[3] + loc
                j = bisect.bisect_right(starts, addr) - 1
                if j >= 0 and (starts[j] == addr or addr < ends[starts[j]]):
                    continue  # a named function, or within one
                unnamed.append(addr)
    out = order + [f"__BOLT_FDE_FUNCat{a:x}" for a in sorted(unnamed)] + kept
    sys.stdout.write("".join(n + "\n" for n in out))
    print(f"bolt-order: {len(order)} traced and {len(kept)} kept names, {len(unnamed)} functions without one",
          file=sys.stderr)


main()
