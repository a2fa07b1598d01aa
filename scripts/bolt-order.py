#!/usr/bin/env python3
"""Writes BOLT's function order: the code part of scripts/symbol-order.txt,
and after each function the functions without a name that lld placed right
behind it. Swift gives some functions private linkage (thunks of value
witnesses to a merged copy, among them): they have no symbol, only their
unwind entry, which BOLT names __BOLT_FDE_FUNCat<address>. Unordered, BOLT
puts them among the cold code, where each one `run` calls costs a window of
64 KiB. They follow the function lld emitted them with (the same type's
other witnesses), so they go where it goes; the names hold an address, so
they are worked out at each build, from LINKED's .eh_frame_hdr; those not
right behind a traced function follow the traced ones.
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
    # Functions by address: (end, [names]).
    funcs = {}
    for name, value, kind, shndx, size in linked.symbols():
        if kind != STT_FUNC or shndx == 0 or value == 0:
            continue
        f = funcs.setdefault(value, [value + size, []])
        f[0] = max(f[0], value + size)
        f[1].append(name)
    starts = sorted(funcs)

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
                if j >= 0 and (starts[j] == addr or addr < funcs[starts[j]][0]):
                    continue  # a named function, or within one
                unnamed.append(addr)
    # Each unnamed function after the named one before it.
    after = {}
    for addr in sorted(unnamed):
        j = bisect.bisect_right(starts, addr) - 1
        if j >= 0:
            after.setdefault(starts[j], []).append(addr)
    where = {}
    for start, (_, ns) in funcs.items():
        for n in ns:
            where.setdefault(n, start)
    out, placed = [], set()
    for name in order:
        out.append(name)
        start = where.get(name)
        if start is not None and start not in placed:
            placed.add(start)
            out.extend(f"__BOLT_FDE_FUNCat{a:x}" for a in after.get(start, []))
    inline = len(out) - len(order)
    # The rest in lld's order (which put the code a run traces first) before
    # what the traces did not run: the trace names a function without a name
    # by the one before it, so a thunk `run` calls may follow a function it
    # does not (all of them: 1122 functions, 174 KB, here).
    done = set(out)
    rest = [f"__BOLT_FDE_FUNCat{a:x}" for a in sorted(unnamed)]
    out += [n for n in rest if n not in done] + kept
    sys.stdout.write("".join(n + "\n" for n in out))
    print(f"bolt-order: {len(order)} traced and {len(kept)} kept names, {len(unnamed)} functions without one"
          f" ({inline} after the function before them)", file=sys.stderr)


main()
