"""The binary's layout (scripts/bolt.sh, scripts/bolt-relative.py): on a
machine with llvm-bolt (bolt-16, which scripts/setup.sh installs) the binary
the tests run is BOLT's, it starts in the code BOLT laid out, and glibc's
start-up calls the ifunc resolvers BOLT copied, not the old copies BOLT
leaves behind (which would still work, from pages `run` would then map)."""
import os
import shutil
import struct
import subprocess

import pytest

from conftest import BIN

BOLT = shutil.which("llvm-bolt-16") or shutil.which("llvm-bolt") or (
    "/usr/lib/llvm-16/bin/llvm-bolt" if os.path.exists("/usr/lib/llvm-16/bin/llvm-bolt") else None)
pytestmark = pytest.mark.skipif(BOLT is None, reason="no llvm-bolt here: the binary keeps lld's layout")


def sections(path):
    """{name: (addr, offset, size)} from readelf."""
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        line = line.replace("[ ", "[")
        f = line.split()
        if len(f) > 6 and f[0].startswith("[") and f[0] != "[Nr]":
            try:
                found[f[1]] = (int(f[3], 16), int(f[4], 16), int(f[5], 16))
            except ValueError:
                pass
    return found


def hot_range(path):
    out = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        f = line.split(" ", 2)
        if len(f) == 3 and f[2] in ("__hot_start", "__hot_end"):
            syms[f[2]] = int(f[0], 16)
    return syms["__hot_start"], syms["__hot_end"]


def test_the_binary_is_laid_out_by_bolt_and_starts_in_its_code():
    secs = sections(BIN)
    assert ".note.bolt_info" in secs, "the binary under test is not BOLT's (see .build/release/bolt.log)"
    lo, hi = hot_range(BIN)
    with open(BIN, "rb") as f:
        head = f.read(64)
    (entry,) = struct.unpack_from("<Q", head, 0x18)
    assert lo <= entry < hi, (hex(entry), hex(lo), hex(hi))


def test_the_ifunc_resolvers_are_the_copies_bolt_laid_out():
    secs = sections(BIN)
    old_lo, _, old_size = secs[".bolt.org.text"]
    addr, off, size = secs[".rela.dyn"]
    with open(BIN, "rb") as f:
        f.seek(off)
        rela = f.read(size)
    addends = [a for _, info, a in struct.iter_unpack("<QQq", rela) if info & 0xFFFFFFFF == 37]
    assert addends, "no R_X86_64_IRELATIVE relocations: not a static glibc binary?"
    stale = [hex(a) for a in addends if old_lo <= a < old_lo + old_size]
    assert not stale, f"ifunc resolvers still in the old text: {stale}"


def test_the_build_moved_the_references_from_swift_metadata():
    log = os.path.join(os.path.dirname(BIN), "bolt.log")
    last = open(log).read().strip().splitlines()[-1]
    words = last.split()
    assert words[0] == "bolt-relative:", last
    assert int(words[1]) > 1000, last  # thousands of them in any Swift binary
