"""The little of ELF64 (little-endian) that scripts/bolt-relative.py and
scripts/bolt-order.py read: section headers, the loadable segments, the
symbol table."""
import struct
import sys

SHT_SYMTAB, SHT_RELA = 2, 4
STT_FUNC, STT_SECTION = 2, 3


class Elf:
    def __init__(self, path):
        self.data = open(path, "rb").read()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
            sys.exit(f"{sys.argv[0]}: {path}: not a 64-bit little-endian ELF file")
        (self.phoff, self.shoff) = struct.unpack_from("<QQ", d, 0x20)
        (self.phentsize, self.phnum, self.shentsize, self.shnum, self.shstrndx) = struct.unpack_from("<HHHHH", d, 0x36)
        # (sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, ...)
        self.sections = [struct.unpack_from("<IIQQQQIIQQ", d, self.shoff + i * self.shentsize) for i in range(self.shnum)]
        self.loads = []
        for i in range(self.phnum):
            p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", d, self.phoff + i * self.phentsize)
            if p_type == 1:
                self.loads.append((p_vaddr, p_vaddr + p_filesz, p_offset))

    def section_name(self, sh):
        start = self.sections[self.shstrndx][4] + sh[0]
        return self.data[start:self.data.index(b"\0", start)].decode()

    def section(self, name):
        return next((sh for sh in self.sections if self.section_name(sh) == name), None)

    def offset_of(self, addr):
        """The file offset of a virtual address, or None."""
        for lo, hi, off in self.loads:
            if lo <= addr < hi:
                return off + addr - lo
        return None

    def symbols(self):
        """[(name, value, type, shndx, size)] of the symbol table, in its order."""
        d = self.data
        for sh in self.sections:
            if sh[1] != SHT_SYMTAB:
                continue
            strtab = self.sections[sh[6]]
            out = []
            for k in range(sh[5] // 24):
                st_name, st_info, _, st_shndx, st_value, st_size = struct.unpack_from("<IBBHQQ", d, sh[4] + k * 24)
                end = d.index(b"\0", strtab[4] + st_name)
                out.append((d[strtab[4] + st_name:end].decode("utf-8", "replace"), st_value, st_info & 0xF, st_shndx, st_size))
            return out
        sys.exit(f"{sys.argv[0]}: no symbol table")
