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

R_X86_64_PC32 = 2
R_X86_64_IRELATIVE = 37
SHT_SYMTAB, SHT_RELA = 2, 4
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
STT_FUNC, STT_SECTION = 2, 3


class Elf:
    def __init__(self, path):
        self.data = open(path, "rb").read()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
            sys.exit(f"bolt-relative: {path}: not a 64-bit little-endian ELF file")
        (self.phoff, self.shoff) = struct.unpack_from("<QQ", d, 0x20)
        (self.phentsize, self.phnum, self.shentsize, self.shnum, self.shstrndx) = struct.unpack_from("<HHHHH", d, 0x36)
        self.sections = [struct.unpack_from("<IIQQQQIIQQ", d, self.shoff + i * self.shentsize) for i in range(self.shnum)]
        self.loads = []
        for i in range(self.phnum):
            p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", d, self.phoff + i * self.phentsize)
            if p_type == 1:
                self.loads.append((p_vaddr, p_vaddr + p_filesz, p_offset))

    def offset_of(self, addr):
        for lo, hi, off in self.loads:
            if lo <= addr < hi:
                return off + addr - lo
        return None

    def symbols(self):
        """[(name, value, type, shndx)] of the symbol table."""
        d = self.data
        for sh in self.sections:
            if sh[1] != SHT_SYMTAB:
                continue
            strtab = self.sections[sh[6]]
            out = []
            for k in range(sh[5] // 24):
                st_name, st_info, _, st_shndx, st_value, _ = struct.unpack_from("<IBBHQQ", d, sh[4] + k * 24)
                end = d.index(b"\0", strtab[4] + st_name)
                out.append((d[strtab[4] + st_name:end].decode("utf-8", "replace"), st_value, st_info & 0xF, st_shndx))
            return out
        sys.exit("bolt-relative: no symbol table")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-2])
    linked, bolted_path = Elf(sys.argv[1]), sys.argv[2]
    bolted = Elf(bolted_path)
    lsyms = linked.symbols()
    new_at = {}
    for name, value, kind, shndx in bolted.symbols():
        if kind == STT_FUNC and shndx != 0:
            new_at.setdefault(name, set()).add(value)
    # Old start -> new start, by names that each file has once (local
    # functions of several objects may share one), where every name of the
    # function agrees.
    old_count = {}
    for name, value, kind, shndx in lsyms:
        if kind == STT_FUNC and shndx != 0:
            old_count[name] = old_count.get(name, 0) + 1
    moved, conflict = {}, set()
    for name, value, kind, shndx in lsyms:
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
            _, s_value, _, _ = lsyms[r_info >> 32]
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
    names = bolted.sections[bolted.shstrndx]
    for sh in bolted.sections:
        end = bolted.data.index(b"\0", names[4] + sh[0])
        if bolted.data[names[4] + sh[0]:end] != b".rela.dyn":
            continue
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
