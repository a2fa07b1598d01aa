"""The binary's layout (scripts/bolt.sh, scripts/bolt-relative.py): on a
machine with llvm-bolt (bolt-16, which scripts/setup.sh installs) the binary
the tests run is BOLT's, it starts in the code BOLT laid out, and glibc's
start-up calls the ifunc resolvers BOLT copied, not the old copies BOLT
leaves behind (which would still work, from pages `run` would then map)."""
import os
import shutil
import struct
import sys

import pytest

from conftest import BIN, REPO

sys.path.insert(0, os.path.join(REPO, "scripts"))
from elf import Elf  # noqa: E402  (scripts/elf.py, the layout scripts' reader)

BOLT = shutil.which("llvm-bolt-16") or shutil.which("llvm-bolt") or (
    "/usr/lib/llvm-16/bin/llvm-bolt" if os.path.exists("/usr/lib/llvm-16/bin/llvm-bolt") else None)
pytestmark = pytest.mark.skipif(BOLT is None, reason="no llvm-bolt here: the binary keeps lld's layout")


def test_the_binary_is_laid_out_by_bolt_and_starts_in_its_code():
    elf = Elf(BIN)
    assert elf.section(".note.bolt_info") is not None, "the binary under test is not BOLT's (see .build/release/bolt.log)"
    hot = {name: value for name, value, *_ in elf.symbols() if name in ("__hot_start", "__hot_end")}
    (entry,) = struct.unpack_from("<Q", elf.data, 0x18)
    assert hot["__hot_start"] <= entry < hot["__hot_end"], (hex(entry), hot)


def test_the_ifunc_resolvers_are_the_copies_bolt_laid_out():
    elf = Elf(BIN)
    old = elf.section(".bolt.org.text")
    rela = elf.section(".rela.dyn")
    assert old is not None and rela is not None
    old_lo, old_hi = old[3], old[3] + old[5]  # sh_addr, + sh_size
    entries = struct.iter_unpack("<QQq", elf.data[rela[4]:rela[4] + rela[5]])
    addends = [a for _, info, a in entries if info & 0xFFFFFFFF == 37]  # R_X86_64_IRELATIVE
    assert addends, "no R_X86_64_IRELATIVE relocations: not a static glibc binary?"
    stale = [hex(a) for a in addends if old_lo <= a < old_hi]
    assert not stale, f"ifunc resolvers still in the old text: {stale}"


def test_the_build_moved_the_references_from_swift_metadata():
    log = os.path.join(os.path.dirname(BIN), "bolt.log")
    last = open(log).read().strip().splitlines()[-1]
    words = last.split()
    assert words[0] == "bolt-relative:", last
    assert int(words[1]) > 1000, last  # thousands of them in any Swift binary
