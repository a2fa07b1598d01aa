"""Layer unpacking through the binary (issue 14, item 4): hostile archives
made with Python's tarfile (which writes whatever names it is given) go
through `minicontainer import`; each is refused with one line naming the
archive and the entry, exit 125, or confined to the layer directory; beside
the data dir lies a sentinel directory that must stay empty, and no file
appears at the absolute paths the archives aim at. Then one faithful
archive: every entry type, modes, owners, xattrs, whiteouts, checked in the
layer directory the store made.

Each test has its own MINICONTAINER_DATA under tmp.
"""
import gzip
import io
import os
import shutil
import stat
import subprocess
import tarfile

import pytest

from conftest import BIN, mc as run_mc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

VICTIM = "/tmp/mc-unpack-victim"


def has_import():
    r = subprocess.run([BIN, "import", "--help"], capture_output=True, text=True)
    return r.returncode == 0


requires_import = pytest.mark.skipif(not has_import(), reason="this binary has no import command yet")


class Env:
    def __init__(self, tmp):
        self.tmp = tmp
        self.data = tmp / "data"
        self.outside = tmp / "outside"
        self.outside.mkdir()
        self.env = dict(os.environ, MINICONTAINER_DATA=str(self.data))

    def mc(self, *args, **kw):
        kw.setdefault("timeout", 120)
        return run_mc(*args, env=self.env, **kw)

    def layers(self):
        d = self.data / "images" / "layers"
        return sorted(os.listdir(d)) if d.exists() else []

    def only_layer_root(self):
        ls = self.layers()
        assert len(ls) == 1, ls
        return self.data / "images" / "layers" / ls[0] / "root"

    def assert_nothing_outside(self):
        assert os.listdir(self.outside) == [], "written outside the layer"
        assert not os.path.lexists(VICTIM), f"{VICTIM} was made"
        assert not os.path.lexists("/etc/mc-unpack-test")
        extra = [n for n in os.listdir(self.tmp) if n not in ("data", "outside") and not n.endswith((".tar", ".gz", ".zst"))]
        assert extra == [], f"written beside the data dir: {extra}"

    def refused(self, archive, *contains):
        r = self.mc("import", str(archive), "mc-test/hostile:1")
        assert r.returncode == 125, f"expected 125, got {r.returncode}: {r.stdout} {r.stderr}"
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line: {r.stderr!r}"
        line = lines[0]
        assert line.startswith("minicontainer: "), line
        assert os.path.basename(str(archive)) in line, f"the archive is not named: {line}"
        for c in contains:
            assert c in line, f"{c!r} not in {line!r}"
        assert self.layers() == [], "a refused layer entered the store"
        imgs = self.mc("images", "-q")
        assert imgs.returncode == 0 and imgs.stdout.strip() == "", imgs.stdout
        self.assert_nothing_outside()
        return line


@pytest.fixture
def env(tmp_path):
    if os.path.lexists(VICTIM):
        shutil.rmtree(VICTIM) if os.path.isdir(VICTIM) and not os.path.islink(VICTIM) else os.unlink(VICTIM)
    e = Env(tmp_path)
    yield e
    for p in (VICTIM,):
        if os.path.lexists(p):
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)


def entry(tf, name, type=tarfile.REGTYPE, data=b"", linkname="", mode=0o644, uid=0, gid=0, mtime=1600000000,
          pax=None, devmajor=0, devminor=0):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.uid, ti.gid, ti.mtime = type, linkname, mode, uid, gid, mtime
    ti.devmajor, ti.devminor = devmajor, devminor
    if pax:
        ti.pax_headers = pax
    ti.size = len(data) if type == tarfile.REGTYPE else 0
    tf.addfile(ti, io.BytesIO(data) if type == tarfile.REGTYPE else None)


def make_tar(path, entries, fmt=tarfile.PAX_FORMAT):
    with tarfile.open(str(path), "w", format=fmt) as tf:
        for e in entries:
            entry(tf, *e[:2], **(e[2] if len(e) > 2 else {}))
    return path


R, D, S, L = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


# MARK: - hostile archives, each refused or confined

@requires_import
@pytest.mark.parametrize("name", ["../x", "a/../../x", "./../outside/x", "a/b/../../../outside/x"])
def test_traversal_names_are_refused(env, name):
    tar = make_tar(env.tmp / "trav.tar", [("a/", D), ("a/b/", D), (name, R, {"data": b"pwned"})])
    env.refused(tar, repr_name(name), '".." component')


def repr_name(n):
    return '"' + n + '"'


@requires_import
def test_absolute_names_are_confined(env):
    tar = make_tar(env.tmp / "abs.tar", [(str(env.outside) + "/x", R, {"data": b"in"}),
                                         ("/etc/mc-unpack-test", R, {"data": b"in"})], fmt=tarfile.GNU_FORMAT)
    r = env.mc("import", str(tar), "mc-test/abs:1")
    assert r.returncode == 0, r.stderr
    root = env.only_layer_root()
    assert (root / str(env.outside).lstrip("/") / "x").read_bytes() == b"in"
    assert (root / "etc/mc-unpack-test").read_bytes() == b"in"
    env.assert_nothing_outside()


@requires_import
def test_absolute_symlink_then_a_write_through_it(env):
    tar = make_tar(env.tmp / "abssym.tar", [("l", S, {"linkname": VICTIM}), ("l/file", R, {"data": b"pwned"})])
    env.refused(tar, '"l/file"', 'parent "l"')
    tar2 = make_tar(env.tmp / "abssym2.tar", [("l", S, {"linkname": str(env.outside)}), ("l/file", R, {"data": b"pwned"})])
    env.refused(tar2, '"l/file"')


@requires_import
def test_symlink_replaced_by_a_file_is_not_written_through(env):
    tar = make_tar(env.tmp / "symfile.tar", [("v", S, {"linkname": VICTIM}), ("v", R, {"data": b"replaced"})])
    r = env.mc("import", str(tar), "mc-test/v:1")
    assert r.returncode == 0, r.stderr
    root = env.only_layer_root()
    assert stat.S_ISREG(os.lstat(root / "v").st_mode)
    env.assert_nothing_outside()


@requires_import
def test_relative_symlink_escaping_is_clamped_to_the_layer(env):
    tar = make_tar(env.tmp / "rel.tar", [("a/", D), ("a/l", S, {"linkname": "../../../../../../.."}),
                                         ("a/l/x", R, {"data": b"at the root"})])
    r = env.mc("import", str(tar), "mc-test/rel:1")
    assert r.returncode == 0, r.stderr
    assert (env.only_layer_root() / "x").read_bytes() == b"at the root"
    env.assert_nothing_outside()
    tar2 = make_tar(env.tmp / "rel2.tar", [("up", S, {"linkname": "../../../../outside"}), ("up/y", R, {"data": b"pwned"})])
    shutil.rmtree(env.data)
    env.refused(tar2, '"up/y"')


@requires_import
def test_hard_link_outside_is_refused(env):
    env.refused(make_tar(env.tmp / "hl.tar", [("passwd", L, {"linkname": "/etc/passwd"})]), '"passwd"', "not found")
    env.refused(make_tar(env.tmp / "hl2.tar", [("x", L, {"linkname": "../outside/secret"})]), '".." component')


@requires_import
def test_device_nodes_are_created_as_root(env):
    # The policy (as docker, podman and umoci running as root): created;
    # what a container may open is the device cgroup's say.
    tar = make_tar(env.tmp / "dev.tar", [("dev/", D), ("dev/sda", tarfile.BLKTYPE, {"devmajor": 8, "devminor": 0, "mode": 0o660}),
                                         ("dev/mem", tarfile.CHRTYPE, {"devmajor": 1, "devminor": 1, "mode": 0o640})])
    r = env.mc("import", str(tar), "mc-test/dev:1")
    assert r.returncode == 0, r.stderr
    st = os.lstat(env.only_layer_root() / "dev/sda")
    assert stat.S_ISBLK(st.st_mode) and os.major(st.st_rdev) == 8 and os.minor(st.st_rdev) == 0


@requires_import
def test_huge_header_size(env):
    ti = tarfile.TarInfo("big")
    ti.size = 0o77777777777
    (env.tmp / "huge.tar").write_bytes(ti.tobuf(tarfile.USTAR_FORMAT) + b"x" * 1000)
    env.refused(env.tmp / "huge.tar", "truncated")
    ti = tarfile.TarInfo("bigger")
    ti.size = 1 << 40
    (env.tmp / "huge2.tar").write_bytes(ti.tobuf(tarfile.GNU_FORMAT) + b"y" * 100000)
    env.refused(env.tmp / "huge2.tar", "truncated")


@requires_import
def test_truncated_and_corrupt_gzip(env):
    tar = make_tar(env.tmp / "plain.tar", [("f%d" % i, R, {"data": os.urandom(5000)}) for i in range(100)])
    g = gzip.compress(tar.read_bytes())
    (env.tmp / "t.tar.gz").write_bytes(g[: len(g) // 2])
    env.refused(env.tmp / "t.tar.gz", "truncated gzip data")
    b = bytearray(g)
    b[-6] ^= 1
    (env.tmp / "c.tar.gz").write_bytes(bytes(b))
    env.refused(env.tmp / "c.tar.gz", "corrupt gzip data")


@requires_import
@pytest.mark.skipif(shutil.which("zstd") is None, reason="no zstd command")
def test_truncated_and_corrupt_zstd(env):
    tar = make_tar(env.tmp / "plain.tar", [("f%d" % i, R, {"data": b"text %d\n" % i * 500}) for i in range(100)])
    z = subprocess.run(["zstd", "-q", "-c", str(tar)], capture_output=True, check=True).stdout
    (env.tmp / "t.tar.zst").write_bytes(z[: len(z) // 2])
    env.refused(env.tmp / "t.tar.zst", "truncated zstd data")
    b = bytearray(z)
    b[4] ^= 0xFF
    (env.tmp / "c.tar.zst").write_bytes(bytes(b))
    env.refused(env.tmp / "c.tar.zst", "corrupt zstd data")


@requires_import
def test_bad_checksum_and_not_a_tar(env):
    tar = make_tar(env.tmp / "ck.tar", [("one", R, {"data": b"1"})], fmt=tarfile.USTAR_FORMAT)
    b = bytearray(tar.read_bytes())
    b[0] ^= 1
    (env.tmp / "bad.tar").write_bytes(bytes(b))
    env.refused(env.tmp / "bad.tar", "not a tar archive")


# MARK: - a faithful tree

@requires_import
def test_faithful_tree(env):
    cap = b"\x01\x00\x00\x02\x00\x20\x00\x00" + b"\x00" * 12
    tar = make_tar(env.tmp / "good.tar", [
        ("./", D, {"mode": 0o755}),
        ("bin/", D, {"mode": 0o755, "mtime": 1500000001}),
        ("bin/busybox", R, {"data": b"bb" * 5000, "mode": 0o755}),
        ("bin/sh", S, {"linkname": "busybox", "uid": 7, "gid": 8}),
        ("bin/ash", L, {"linkname": "bin/busybox"}),
        ("bin/su", R, {"data": b"su", "mode": 0o4755}),
        ("bin/ping", R, {"data": b"ping", "mode": 0o755, "pax": {"SCHILY.xattr.security.capability": cap.decode("latin-1")}}),
        ("tmp/", D, {"mode": 0o1777}),
        ("home/u/", D, {"mode": 0o2750, "uid": 1000, "gid": 1000}),
        ("home/u/f", R, {"data": b"f", "mode": 0o600, "uid": 1000, "gid": 1000}),
        ("run/fifo", tarfile.FIFOTYPE, {"mode": 0o620}),
        ("etc/", D),
        ("etc/.wh.hostname", R),
        ("opt/", D),
        ("opt/.wh..wh..opq", R),
    ])
    r = env.mc("import", str(tar), "mc-test/good:1")
    assert r.returncode == 0, r.stderr
    root = env.only_layer_root()
    bb, ash = os.lstat(root / "bin/busybox"), os.lstat(root / "bin/ash")
    assert bb.st_ino == ash.st_ino and bb.st_size == 10000
    assert os.readlink(root / "bin/sh") == "busybox"
    assert (os.lstat(root / "bin/sh").st_uid, os.lstat(root / "bin/sh").st_gid) == (7, 8)
    assert stat.S_IMODE(os.lstat(root / "bin/su").st_mode) == 0o4755
    assert os.getxattr(root / "bin/ping", "security.capability", follow_symlinks=False) == cap
    assert os.lstat(root / "bin").st_mtime == 1500000001
    assert stat.S_IMODE(os.lstat(root / "tmp").st_mode) == 0o1777
    h = os.lstat(root / "home/u")
    assert (stat.S_IMODE(h.st_mode), h.st_uid, h.st_gid) == (0o2750, 1000, 1000)
    assert stat.S_ISFIFO(os.lstat(root / "run/fifo").st_mode)
    wh = os.lstat(root / "etc/hostname")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert not os.path.lexists(root / "etc/.wh.hostname")
    assert os.getxattr(root / "opt", "trusted.overlay.opaque") == b"y"
    env.assert_nothing_outside()
