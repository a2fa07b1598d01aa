"""Builds test images locally, from the busybox rootfs, with umoci and skopeo
(nothing is downloaded), and compares unpacked trees.

- `Layout(dir)`: an OCI image layout made with `umoci init`; `new(tag)`,
  `add_dir(tag, src)` (umoci insert), `add_tar(tag, entries)` (a layer written
  by Python's tarfile, added with `umoci raw add-layer`, so whiteouts, opaque
  markers, hard links and owners are exactly what the test says),
  `config(tag, ...)`.
- `to_docker_archive`, `to_oci_archive`, `to_zstd_layout` (skopeo copy).
- `tree(dir)`: every path below dir with its type, mode, owner, link target,
  device numbers and content hash, as a dict; `overlay_tree(lowers)` mounts
  the layers read-only as overlayfs stacks them and reads the tree the
  container would see.
"""
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile


def sh(*args, **kw):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}{r.stdout}")
    return r.stdout


class Layout:
    def __init__(self, path):
        self.path = str(path)
        if not os.path.exists(os.path.join(self.path, "index.json")):
            sh("umoci", "init", "--layout", self.path)

    def image(self, tag):
        return f"{self.path}:{tag}"

    def new(self, tag):
        sh("umoci", "new", "--image", self.image(tag))
        return self

    def add_dir(self, tag, src, target="/"):
        sh("umoci", "insert", "--no-history", "--image", self.image(tag), src, target)
        return self

    def add_tar(self, tag, entries):
        """entries: list of dicts (see write_tar)."""
        with tempfile.NamedTemporaryFile(suffix=".tar", delete=False) as f:
            write_tar(f, entries)
            name = f.name
        try:
            sh("umoci", "raw", "add-layer", "--no-history", "--image", self.image(tag), name)
        finally:
            os.unlink(name)
        return self

    def config(self, tag, *opts):
        sh("umoci", "config", "--image", self.image(tag), *opts)
        return self

    def copy_tag(self, tag, new):
        sh("umoci", "tag", "--image", self.image(tag), new)
        return self

    def index(self):
        with open(os.path.join(self.path, "index.json")) as f:
            return json.load(f)

    def blob(self, digest):
        return os.path.join(self.path, "blobs", "sha256", digest.split(":", 1)[1])

    def read_blob(self, digest):
        with open(self.blob(digest), "rb") as f:
            return f.read()

    def write_blob(self, data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(self.blob(d), "wb") as f:
            f.write(data)
        return d, len(data)

    def manifest_of(self, tag):
        for m in self.index()["manifests"]:
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
                return m, json.loads(self.read_blob(m["digest"]))
        raise KeyError(tag)

    def set_index(self, idx):
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump(idx, f)


def write_tar(f, entries):
    """Each entry: {"name", "type": file|dir|symlink|hardlink|char|fifo,
    "data": bytes, "mode", "uid", "gid", "link", "major", "minor", "mtime"}."""
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}
    with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.type = types[e.get("type", "file")]
            ti.mode = e.get("mode", 0o755 if ti.type == tarfile.DIRTYPE else 0o644)
            ti.uid = e.get("uid", 0)
            ti.gid = e.get("gid", 0)
            ti.mtime = e.get("mtime", 1700000000)
            ti.linkname = e.get("link", "")
            ti.devmajor = e.get("major", 0)
            ti.devminor = e.get("minor", 0)
            data = e.get("data", b"")
            if ti.type == tarfile.REGTYPE:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)


def skopeo_copy(src, dst, *opts):
    sh("skopeo", "copy", "--quiet", *opts, src, dst)


def to_docker_archive(layout, tag, path, ref):
    skopeo_copy(f"oci:{layout.image(tag)}", f"docker-archive:{path}:{ref}")
    return path


def to_oci_archive(layout, tag, path, ref):
    skopeo_copy(f"oci:{layout.image(tag)}", f"oci-archive:{path}:{ref}")
    return path


def to_zstd_layout(layout, tag, dest, newtag):
    skopeo_copy(f"oci:{layout.image(tag)}", f"oci:{dest}:{newtag}", "--dest-compress-format", "zstd",
                "--dest-compress")
    return Layout(dest)


def tar_dir(src, path):
    """A tar of a directory's contents (an oci-archive of a layout)."""
    with tarfile.open(path, "w") as t:
        for name in sorted(os.listdir(src)):
            t.add(os.path.join(src, name), arcname=name)
    return path


def busybox_layout(root, rootfs, tag="base"):
    """A one-layer image of the busybox rootfs."""
    lay = Layout(os.path.join(root, "layout"))
    lay.new(tag).add_dir(tag, rootfs, "/")
    lay.config(tag, "--config.cmd", "/bin/sh", "--config.env", "FROM=imagekit")
    return lay


def three_layer(lay, rootfs, tag="three"):
    """busybox; then a layer adding files of every kind; then a layer that
    deletes a file, replaces a directory (opaque) and hard-links a file of
    the first layer."""
    lay.new(tag).add_dir(tag, rootfs, "/")
    lay.add_tar(tag, [
        {"name": "data", "type": "dir", "mode": 0o755},
        {"name": "data/keep.txt", "data": b"old\n"},
        {"name": "data/sub", "type": "dir", "mode": 0o750, "uid": 1000, "gid": 1000},
        {"name": "data/sub/deep.txt", "data": b"deep\n", "mode": 0o600, "uid": 1000, "gid": 100},
        {"name": "etc/delete-me", "data": b"gone soon\n"},
        {"name": "opt", "type": "dir"},
        {"name": "opt/tool", "data": b"#!/bin/sh\necho tool\n", "mode": 0o4755},
        {"name": "opt/tool-link", "type": "hardlink", "link": "opt/tool"},
        {"name": "opt/abs-link", "type": "symlink", "link": "/bin/busybox"},
        {"name": "opt/rel-link", "type": "symlink", "link": "../bin/sh"},
        {"name": "opt/fifo", "type": "fifo", "mode": 0o600},
        {"name": "opt/sticky", "type": "dir", "mode": 0o1777},
        {"name": "opt/big.bin", "data": bytes(range(256)) * 4096},
    ])
    lay.add_tar(tag, [
        {"name": "etc/.wh.delete-me"},
        {"name": "data", "type": "dir", "mode": 0o700},
        {"name": "data/.wh..wh..opq"},
        {"name": "data/new.txt", "data": b"replaced\n", "uid": 33, "gid": 33},
        {"name": "opt/tool", "data": b"#!/bin/sh\necho tool v2\n", "mode": 0o755},
        # A hard link to a file of the first layer (copied up, as overlayfs would).
        {"name": "opt/passwd-link", "type": "hardlink", "link": "etc/passwd"},
    ])
    lay.config(tag, "--config.entrypoint", "/opt/tool", "--config.workingdir", "/data",
               "--config.label", "stage=three")
    return lay


def tree(root):
    """{relative path: (type, mode, uid, gid, link target, rdev, sha256)}."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            kind = stat.S_IFMT(st.st_mode)
            link = os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
            digest = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            rdev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else None
            out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, link, rdev, digest)
    return out


def overlay_tree(lowers):
    """The tree overlayfs shows for the layer directories (bottom first),
    mounted read-only in a temporary directory and unmounted again."""
    mnt = tempfile.mkdtemp(prefix="mc-overlay-")
    try:
        opts = "lowerdir=" + ":".join(reversed(lowers))
        if len(lowers) == 1:
            # One lower needs an upper or a second lower: add an empty one.
            empty = tempfile.mkdtemp(prefix="mc-empty-")
            opts += ":" + empty
        else:
            empty = None
        sh("mount", "-t", "overlay", "overlay", "-o", opts + ",ro", mnt)
        try:
            return tree(mnt)
        finally:
            sh("umount", mnt)
            if empty:
                os.rmdir(empty)
    finally:
        os.rmdir(mnt)


def umoci_tree(layout, tag, workdir):
    bundle = os.path.join(workdir, "umoci-bundle")
    sh("umoci", "unpack", "--image", layout.image(tag), bundle)
    try:
        return tree(os.path.join(bundle, "rootfs"))
    finally:
        shutil.rmtree(bundle)


def store_listing(data):
    """Every path under DATA/images with its size and type (files' hashes
    too), to compare a store before and after a failed command."""
    base = os.path.join(data, "images")
    out = {}
    if not os.path.isdir(base):
        return out
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h = None
            if stat.S_ISREG(st.st_mode) and st.st_size < (1 << 20):
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, base)] = (stat.S_IFMT(st.st_mode), st.st_size if stat.S_ISREG(st.st_mode) else 0, h)
    return out
