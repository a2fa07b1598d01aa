#!/usr/bin/env python3
"""Points the binary's relative references from data to code at the copies
BOLT made. Swift's metadata reaches many functions through 32-bit offsets
from the data to the code (a type descriptor's accessor, a generic pattern's
instantiation function, a conformance's witness table accessor): relocations
R_X86_64_PC32 in data sections, which lld keeps (--emit-relocs) but BOLT 16
leaves as they were. Its old copies of those functions stay intact and run
(correct, but their calls go to the old copies of everything they call, all
over the old text: pages mapped for nothing, peak RSS).

For each such relocation in LINKED (lld's output) whose target is the start
of a function BOLT moved (the same name at another address in BOLTED), the
offset in BOLTED is rewritten to reach the new copy; only where BOLTED still
holds exactly the old offset. Likewise the addends of the R_X86_64_IRELATIVE
relocations, by which a static binary's start-up calls its ifunc resolvers.
Everything else is left as it is.
Usage: scripts/bolt-relative.py LINKED BOLTED   (BOLTED is changed in place)
"""
import struct
import sys

from elf import SHT_RELA, STT_FUNC, Elf

R_X86_64_PC32 = 2
R_X86_64_IRELATIVE = 37
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-2])
    linked, bolted_path = Elf(sys.argv[1]), sys.argv[2]
    bolted = Elf(bolted_path)
    lsyms = linked.symbols()
    new_at = {}
    for name, value, kind, shndx, _ in bolted.symbols():
        if kind == STT_FUNC and shndx != 0:
            new_at.setdefault(name, set()).add(value)
    # Old start -> new start, by names that each file has once (local
    # functions of several objects may share one), where every name of the
    # function agrees.
    old_count = {}
    for name, value, kind, shndx, _ in lsyms:
        if kind == STT_FUNC and shndx != 0:
            old_count[name] = old_count.get(name, 0) + 1
    moved, conflict = {}, set()
    for name, value, kind, shndx, _ in lsyms:
        if kind != STT_FUNC or shndx == 0 or value == 0 or old_count[name] != 1:
            continue
        news = new_at.get(name)
        if not news or len(news) != 1:
            continue
        new = next(iter(news))
        if new == value:
            continue
        if moved.get(value, new) != new:
            conflict.add(value)
        moved[value] = new
    for a in conflict:
        del moved[a]

    out = bytearray(bolted.data)
    patched = skipped = 0
    for sh in linked.sections:
        if sh[1] != SHT_RELA:
            continue
        target = linked.sections[sh[7]]  # sh_info: the section the relocations apply to
        if not target[2] & SHF_ALLOC or target[2] & SHF_EXECINSTR:
            continue
        for k in range(sh[5] // 24):
            r_offset, r_info, r_addend = struct.unpack_from("<QQq", linked.data, sh[4] + k * 24)
            if r_info & 0xFFFFFFFF != R_X86_64_PC32:
                continue
            s_value = lsyms[r_info >> 32][1]
            dest = s_value + r_addend
            new = moved.get(dest)
            if new is None:
                continue
            off = bolted.offset_of(r_offset)
            if off is None:
                skipped += 1
                continue
            (have,) = struct.unpack_from("<i", out, off)
            if have != dest - r_offset or not -2**31 <= new - r_offset < 2**31:
                skipped += 1
                continue
            struct.pack_into("<i", out, off, new - r_offset)
            patched += 1
    # A static binary's ifunc resolvers, which glibc's start-up calls by the
    # addends of its R_X86_64_IRELATIVE relocations (.rela.dyn): the new
    # copies, so that they return the new copies of what they choose.
    resolvers = 0
    sh = bolted.section(".rela.dyn")
    if sh is not None:
        for k in range(sh[5] // 24):
            at = sh[4] + k * 24
            _, r_info, r_addend = struct.unpack_from("<QQq", out, at)
            if r_info & 0xFFFFFFFF == R_X86_64_IRELATIVE and r_addend in moved:
                struct.pack_into("<q", out, at + 16, moved[r_addend])
                resolvers += 1
    with open(bolted_path, "r+b") as f:
        f.write(out)
    print(f"bolt-relative: {patched} relative references from data and {resolvers} ifunc resolvers moved to BOLT's copies ({skipped} left)")


main()
