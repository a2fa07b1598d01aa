"""Images for an unprivileged user (issue 18): load, import, pull, images,
tag, save, image inspect, rmi and image prune as the user `mcrootless`
(userkit.py), with the store in a data dir of theirs.

Each layer is unpacked by a child that is root of a user namespace with the
user's whole mapping (0 -> the user, 1.. -> 300000.. from /etc/subuid and
/etc/subgid), so an archive's uid N lands on the host as 300000+N-1; opaque
directories carry user.overlay.opaque=y (an overlay mounted with userxattr
reads it), whiteouts are character devices 0/0; device nodes and trusted.*
xattrs are skipped with a warning; an owner outside the mapping refuses the
layer; the store says "user" in images/overlay-xattrs. Removal (rmi, prune,
a failed load's cleanup) runs in the same namespace. Checked on the host:
owners, device numbers, xattrs, an overlay of the layers mounted with
userxattr in a user namespace of the user's, and nothing left.
"""
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile

import pytest

import imagekit as ik
import registrykit as rk

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to make the user)")

SUB = 300000


def host_id(n, own):
    return own if n == 0 else SUB + n - 1


def write_layer(path, entries):
    """entries: (name, type, {data, mode, uid, gid, linkname, devmajor, devminor, pax})."""
    with tarfile.open(str(path), "w", format=tarfile.PAX_FORMAT) as tf:
        for name, type, *rest in entries:
            o = rest[0] if rest else {}
            ti = tarfile.TarInfo(name)
            ti.type = type
            ti.mode = o.get("mode", 0o755 if type == tarfile.DIRTYPE else 0o644)
            ti.uid, ti.gid = o.get("uid", 0), o.get("gid", 0)
            ti.mtime = 1700000000
            ti.linkname = o.get("linkname", "")
            ti.devmajor, ti.devminor = o.get("devmajor", 0), o.get("devminor", 0)
            if "pax" in o:
                ti.pax_headers = o["pax"]
            data = o.get("data", b"")
            ti.size = len(data) if type == tarfile.REGTYPE else 0
            tf.addfile(ti, io.BytesIO(data) if type == tarfile.REGTYPE else None)
    return str(path)


def add_layer(lay, tag, path, entries):
    write_layer(path, entries)
    ik.sh("umoci", "raw", "add-layer", "--no-history", "--image", lay.image(tag), path)
    os.unlink(path)


R, D, S, L, C = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE

OWNED = [("owned/", D), ("owned/root", R, {"data": b"root\n"}),
         ("owned/u1000", R, {"data": b"u1000\n", "uid": 1000, "gid": 1001}),
         ("owned/last", R, {"data": b"last\n", "uid": 65536, "gid": 65536}),
         ("owned/dir1000/", D, {"uid": 1000, "gid": 1000, "mode": 0o700}),
         ("owned/dir1000/f", R, {"data": b"f\n", "uid": 1000, "gid": 1000, "mode": 0o600}),
         ("opq/", D), ("opq/old", R, {"data": b"old\n"}), ("gone", R, {"data": b"gone\n"})]
TOP = [(".wh.gone", R), ("opq/", D), ("opq/.wh..wh..opq", R), ("opq/new", R, {"data": b"new\n"}),
       ("dev/", D), ("dev/mcnull", C, {"devmajor": 1, "devminor": 3}),
       ("x", R, {"data": b"x\n", "pax": {"SCHILY.xattr.trusted.mc": "t", "SCHILY.xattr.user.mc": "u"}}),
       ("hl", L, {"linkname": "owned/u1000"})]


@pytest.fixture(scope="module")
def archives(tmp_path_factory, rootfs):
    """oci-archives readable by the user: "rl" (busybox, OWNED, TOP), "hidden"
    (busybox, OWNED, then a hard link to a file an opaque dir hides), "far"
    (busybox, a file of uid 70000, beyond the mapping); and the layout."""
    root = tmp_path_factory.mktemp("rootless-images")
    os.chmod(root, 0o755)
    lay = ik.busybox_layout(str(root), rootfs)
    lay.copy_tag("base", "rl")
    add_layer(lay, "rl", root / "l2.tar", OWNED)
    add_layer(lay, "rl", root / "l3.tar", TOP)
    lay.copy_tag("base", "hidden")
    add_layer(lay, "hidden", root / "h2.tar", OWNED)
    add_layer(lay, "hidden", root / "h3.tar", [("opq/", D), ("opq/.wh..wh..opq", R), ("hl", L, {"linkname": "opq/old"})])
    lay.copy_tag("base", "far")
    add_layer(lay, "far", root / "f2.tar", OWNED + [("far", R, {"data": b"far\n", "uid": 70000, "gid": 70000})])
    out = {"layout": lay, "root": str(root)}
    for tag in ("rl", "hidden", "far", "base"):
        p = os.path.join(str(root), f"{tag}.tar")
        ik.to_oci_archive(lay, tag, p, f"mc/{tag}:1")
        os.chmod(p, 0o644)
        out[tag] = p
    for dirpath, dirs, files in os.walk(str(root)):
        for n in dirs:
            os.chmod(os.path.join(dirpath, n), 0o755)
        for n in files:
            os.chmod(os.path.join(dirpath, n), 0o644)
    yield out
    shutil.rmtree(str(root), ignore_errors=True)


class UserStore:
    """The user's store: MINICONTAINER_DATA given explicitly (the xdg data dir's)."""

    def __init__(self, user, xdg):
        self.user, self.xdg = user, xdg
        self.data = xdg.store
        self.images = os.path.join(self.data, "images")
        self.env = {"MINICONTAINER_DATA": self.data}

    def mc(self, *args, env=None, **kw):
        return self.user.mc("--root", self.xdg.root, *args, xdg=self.xdg, env={**self.env, **(env or {})}, **kw)

    def ok(self, *args, **kw):
        r = self.mc(*args, **kw)
        assert r.returncode == 0, f"as the user: {args}: {r.returncode}: {r.stderr}{r.stdout}"
        return r

    def fails(self, *args, contains=(), **kw):
        r = self.mc(*args, **kw)
        assert r.returncode == 125, f"{args}: expected 125, got {r.returncode}: {r.stdout} {r.stderr}"
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line: {r.stderr!r}"
        for c in contains:
            assert c in lines[0], f"{c!r} not in {lines[0]!r}"
        return lines[0]

    def layer_dirs(self, ref):
        """Top first (inspect lists them bottom first), as lowerdir takes them."""
        return [l["Dir"] for l in json.loads(self.ok("image", "inspect", ref).stdout)[0]["Layers"]][::-1]

    def listing(self, sub):
        d = os.path.join(self.images, sub)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def assert_empty(self):
        """No image, layer, blob or work directory left; nothing under the
        data dir owned by a subordinate id."""
        idx = os.path.join(self.images, "index.json")
        if os.path.exists(idx):
            with open(idx) as f:
                assert json.load(f)["manifests"] == []
        for sub in ("layers", "tmp", "blobs/sha256"):
            assert self.listing(sub) == [], f"{sub}: {self.listing(sub)}"
        for dirpath, dirs, files in os.walk(self.data):
            for n in dirs + files:
                st = os.lstat(os.path.join(dirpath, n))
                assert st.st_uid == self.user.uid, f"{dirpath}/{n} is owned by {st.st_uid}"


@pytest.fixture
def store(rootless_user, xdg):
    return UserStore(rootless_user, xdg)


def owner(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def check_rl_layers(s, dirs):
    """The unpacked layers of "rl" (top first) on the host."""
    top, mid = dirs[0], dirs[1]
    u = s.user.uid
    assert owner(os.path.join(mid, "owned/root")) == (u, s.user.gid)
    assert owner(os.path.join(mid, "owned/u1000")) == (host_id(1000, u), host_id(1001, u)) == (300999, 301000)
    assert owner(os.path.join(mid, "owned/last")) == (365535, 365535)
    assert owner(os.path.join(mid, "owned/dir1000")) == (300999, 300999)
    assert owner(os.path.join(mid, "owned/dir1000/f")) == (300999, 300999)
    # busybox's files are root's: the user's.
    assert owner(os.path.join(dirs[2], "bin/busybox"))[0] == u
    # The whiteout: a character device 0/0, the user's.
    st = os.lstat(os.path.join(top, "gone"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 and st.st_uid == u
    # The opaque directory: user.overlay.opaque=y, no trusted.overlay.*.
    opq = os.path.join(top, "opq")
    assert os.getxattr(opq, "user.overlay.opaque", follow_symlinks=False) == b"y"
    assert not [x for x in os.listxattr(opq, follow_symlinks=False) if x.startswith("trusted.")]
    # Device nodes skipped; trusted.* skipped, user.* kept.
    assert not os.path.lexists(os.path.join(top, "dev/mcnull"))
    xs = os.listxattr(os.path.join(top, "x"), follow_symlinks=False)
    assert "user.mc" in xs and not [x for x in xs if x.startswith("trusted.")], xs
    # The hard link to a lower layer's file, copied up with its owner.
    assert owner(os.path.join(top, "hl")) == (300999, 301000)
    with open(os.path.join(top, "hl"), "rb") as f:
        assert f.read() == b"u1000\n"


def overlay_view(s, dirs, script):
    """Runs `script` as the user in a user and mount namespace of theirs
    (unshare -U -r -m) over the layers mounted at $M with userxattr."""
    m = os.path.join(s.xdg.runtime, "merged")
    os.makedirs(m, exist_ok=True)
    os.chown(m, s.user.uid, s.user.gid)
    sh = f'mount -t overlay -o userxattr,lowerdir={":".join(dirs)} none "$M" && {script}'
    r = s.user.run(["unshare", "-U", "-r", "-m", "sh", "-c", sh], env={"M": m})
    os.rmdir(m)
    return r


def test_load_as_the_user_maps_owners_whiteouts_and_opaque_dirs(store, archives):
    s = store
    r = s.ok("load", "-i", archives["rl"])
    assert "device nodes skipped" in r.stderr and "dev/mcnull" in r.stderr, r.stderr
    assert "trusted.* xattrs skipped" in r.stderr, r.stderr
    with open(os.path.join(s.images, "overlay-xattrs")) as f:
        assert f.read() == "user\n"
    dirs = s.layer_dirs("mc/rl:1")
    assert len(dirs) == 3
    check_rl_layers(s, dirs)
    assert "mc/rl" in s.ok("images").stdout
    # The overlay the run path makes (userxattr) sees the whiteout and the opaque dir.
    v = overlay_view(s, dirs, 'ls -a "$M/opq"; test ! -e "$M/gone" && echo gone-is-gone; cat "$M/owned/root"')
    assert v.returncode == 0, v.stderr
    out = v.stdout.split()
    assert "gone-is-gone" in out and "root" in out
    assert "new" in out and "old" not in out, v.stdout
    # Without userxattr the markers mean nothing: the proof the test can fail.
    v2 = s.user.run(["unshare", "-U", "-r", "-m", "sh", "-c",
                     f'mkdir -p $HOME/x; mount -t overlay -o lowerdir={":".join(dirs)} none $HOME/x && ls $HOME/x/opq; umount $HOME/x; rmdir $HOME/x'])
    assert "old" in v2.stdout.split(), (v2.stdout, v2.stderr)
    # tag, save, inspect, rmi: nothing left.
    s.ok("tag", "mc/rl:1", "mc/rl:2")
    saved = os.path.join(s.xdg.runtime, "saved.tar")
    s.ok("save", "-o", saved, "mc/rl:2")
    with tarfile.open(saved) as t:
        assert "index.json" in t.getnames()
    os.unlink(saved)
    s.ok("rmi", "mc/rl:1", "mc/rl:2")
    assert s.ok("images", "-q").stdout.strip() == ""
    s.assert_empty()


def test_hard_link_to_a_file_an_opaque_dir_hides_is_refused(store, archives):
    s = store
    s.fails("load", "-i", archives["hidden"], contains=['"hl"', "not found in this layer or below"])
    s.assert_empty()


def test_owner_outside_the_mapping_refuses_the_layer_and_cleans_up(store, archives):
    s = store
    s.fails("load", "-i", archives["far"], contains=['"far"', "uid 70000", "potentially insufficient UIDs"])
    # The failed load's half-unpacked layer (files of 300999) is gone too.
    s.assert_empty()


def test_image_prune_removes_layers_of_subordinate_ids(store, archives):
    s = store
    s.ok("load", "-i", archives["rl"])
    s.ok("load", "-i", archives["base"])
    s.ok("rmi", "mc/base:1")      # its layer is rl's bottom one: kept
    assert len(s.listing("layers")) == 3
    s.ok("tag", "mc/rl:1", "mc/other:1")
    s.ok("rmi", "mc/rl:1")
    s.ok("image", "prune", "-a")
    assert s.ok("images", "-q").stdout.strip() == ""
    s.assert_empty()


def refused_import(s, tmpdir, name, entries, *contains):
    p = write_layer(os.path.join(tmpdir, name), entries)
    os.chmod(p, 0o644)
    line = s.fails("import", p, "mc/hostile:1", contains=contains)
    os.unlink(p)
    return line


def test_hostile_layers_are_refused_as_the_user(store, archives, tmp_path):
    s = store
    outside = tmp_path / "outside"
    outside.mkdir()
    os.chmod(outside, 0o777)  # the user could write here: only confinement stops it
    d = archives["root"]
    for n in ("../x", "a/../../x", "a/b/../../../outside/x"):
        refused_import(s, d, "dots.tar", [(n, R, {"data": b"pwned"})], '".." component')
    refused_import(s, d, "abs.tar", [("l", S, {"linkname": str(outside)}), ("l/file", R, {"data": b"pwned"})], '"l/file"')
    refused_import(s, d, "rel.tar", [("up", S, {"linkname": "../../../../../outside"}), ("up/y", R, {"data": b"pwned"})], '"up/y"')
    refused_import(s, d, "hl.tar", [("x", L, {"linkname": "../outside/secret"})], '".." component')
    assert os.listdir(outside) == []
    s.assert_empty()
    # A relative symlink climbing out is clamped to the layer, as for root.
    p = write_layer(os.path.join(d, "clamp.tar"), [("a/", D), ("a/l", S, {"linkname": "../../../../../.."}),
                                                  ("a/l/x", R, {"data": b"at the root", "uid": 5, "gid": 5})])
    os.chmod(p, 0o644)
    s.ok("import", p, "mc/clamp:1")
    os.unlink(p)
    (top,) = s.layer_dirs("mc/clamp:1")
    assert owner(os.path.join(top, "x")) == (SUB + 4, SUB + 4)
    assert os.listdir(outside) == []
    s.ok("rmi", "mc/clamp:1")
    s.assert_empty()


def test_a_rootful_store_is_not_mixed(store, archives, tmp_path):
    """Root's store (trusted.overlay.*) refuses the user's layers, and the reverse."""
    s = store
    s.ok("load", "-i", archives["base"])
    r = subprocess.run([s.user.binary, "load", "-i", archives["base"]], capture_output=True, text=True,
                       env=dict(os.environ, MINICONTAINER_DATA=s.data))
    assert r.returncode == 125 and "was made rootless" in r.stderr, r.stderr
    # Nor does root run the user's layers (its overlay would not read
    # their user.overlay.* xattrs): one line, nothing made.
    r = subprocess.run([s.user.binary, "run", "--rm", "--network", "none", "mc/base:1", "/bin/true"],
                       capture_output=True, text=True, env=dict(os.environ, MINICONTAINER_DATA=s.data))
    assert r.returncode == 125 and "was made rootless" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert not os.path.exists(os.path.join(s.data, "containers")) or os.listdir(os.path.join(s.data, "containers")) == []
    s.ok("rmi", "mc/base:1")
    s.assert_empty()


NOSUB = ("mcnosub", 23470)


@pytest.fixture
def nosub_user(rootless_user, tmp_path):
    """A second user with no subordinate ranges, removed at the end."""
    import userkit
    name, uid = NOSUB
    subprocess.run(["userdel", "-r", name], capture_output=True)
    subprocess.run(["groupdel", name], capture_output=True)
    subprocess.run(["groupadd", "-g", str(uid), name], check=True)
    home = f"/tmp/{name}-home"
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run(["useradd", "-u", str(uid), "-g", str(uid), "-d", home, "-M", "-s", "/bin/sh", name], check=True)
    for f in ("/etc/subuid", "/etc/subgid"):
        userkit._strip_lines(f, name + ":")
    os.makedirs(home)
    os.chown(home, uid, uid)
    try:
        yield name, uid, home
    finally:
        left = userkit.user_processes(uid)
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
        assert not [p for p in left if p != os.getpid()], f"processes of {name} left: {left}"


def test_without_subordinate_ranges_root_owned_images_load_and_others_are_refused(nosub_user, archives, rootless_user):
    name, uid, home = nosub_user
    data = os.path.join(home, "data")

    def mc(*args):
        argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--reset-env", "--",
                "env", "-i", f"HOME={home}", f"USER={name}", "PATH=/usr/bin:/bin:/usr/sbin:/sbin",
                f"MINICONTAINER_DATA={data}", rootless_user.binary, "--root", os.path.join(home, "run"), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=home)

    r = mc("load", "-i", archives["base"])
    assert r.returncode == 0, r.stderr
    assert f"no subordinate ids for {name}" in r.stderr, r.stderr
    (layer,) = [l["Dir"] for l in json.loads(mc("image", "inspect", "mc/base:1").stdout)[0]["Layers"]]
    assert owner(os.path.join(layer, "bin/busybox")) == (uid, uid)
    r = mc("load", "-i", archives["rl"])
    assert r.returncode == 125, r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if not l.startswith("minicontainer: warning")]
    assert len(lines) == 1 and "uid 1000" in lines[0] and "potentially insufficient UIDs" in lines[0], r.stderr
    assert mc("rmi", "mc/base:1").returncode == 0
    assert os.listdir(os.path.join(data, "images", "layers")) == []
    assert os.listdir(os.path.join(data, "images", "tmp")) == []


@pytest.mark.skipif(bool(rk.missing_tools()), reason=f"missing: {', '.join(rk.missing_tools())}")
def test_pull_as_the_user(store, archives, tmp_path):
    s = store
    root = tmp_path / "reg"
    root.mkdir()
    with rk.Registry(str(root)) as reg:
        rk.push(archives["layout"].path, "rl", reg, "mc/rl:1")
        conf = os.path.join(s.xdg.runtime, "registries.json")
        with open(conf, "w") as f:
            json.dump({"search": [], "insecure": [reg.host], "connectTimeout": 5, "stallTimeout": 3, "retryTimeout": 20}, f)
        os.chmod(conf, 0o644)
        ref = f"{reg.host}/mc/rl:1"
        r = s.ok("pull", "-q", ref, env={"MINICONTAINER_REGISTRIES_CONF": conf})
        assert len(r.stdout.strip()) == 64, r.stdout
    dirs = s.layer_dirs(ref)
    check_rl_layers(s, dirs)
    s.ok("rmi", ref)
    s.assert_empty()


def test_run_an_image_loaded_by_the_user(store, archives):
    """The run path over this store: uid 0 inside; a file of tar uid 1000
    is uid 1000 inside; the whiteout and the opaque dir hold (userxattr)."""
    s = store
    s.ok("load", "-i", archives["rl"])
    r = s.ok("run", "--rm", "--network", "none", "mc/rl:1", "/bin/sh", "-c",
             "id -u; stat -c %u:%g /owned/u1000; ls /opq; test -e /gone || echo gone-is-gone")
    out = r.stdout.split()
    assert out[0] == "0" and "1000:1001" in out and "new" in out and "old" not in out and "gone-is-gone" in out, r.stdout
    s.ok("rmi", "mc/rl:1")
    s.assert_empty()
