"""`run IMAGE` for real (issue 14): images built here from the busybox rootfs
with umoci and skopeo (imagekit.py), loaded into the test's own data dir and
run. The container sees exactly the tree `umoci unpack` gives for the same
image; the image's config gives Env, Entrypoint, Cmd, WorkingDir, User,
StopSignal and labels, flags win; runc's `run ID` in a bundle directory is
unchanged; a name that could be both is refused with both spellings.
"""
import io
import json
import os
import hashlib
import shutil
import stat
import subprocess
import tarfile
import time

import pytest

import imagekit as ik
from conftest import ROOTFS, needs_root
from test_run import Env, env, one_line_error, wait_for  # noqa: F401 (env is a fixture)

pytestmark = needs_root()

# Mount points and the files run writes (hostname, hosts, resolv.conf):
# not the image's, on either side.
OURS = ("proc", "sys", "dev", "etc/hostname", "etc/hosts", "etc/resolv.conf")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("run-image")
    lay = ik.busybox_layout(str(root), ROOTFS)
    ik.three_layer(lay, ROOTFS)
    lay.new("conf").add_dir("conf", ROOTFS, "/")
    lay.add_tar("conf", [
        {"name": "home", "type": "dir"},
        {"name": "home/app", "type": "dir", "uid": 1000, "gid": 1000},
        {"name": "etc/passwd", "data": b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"},
    ])
    lay.config("conf", "--config.entrypoint", "/bin/sh", "--config.cmd", "-c", "--config.cmd",
               "echo \"$GREETING from $(pwd) as $(id -u):$(id -g)\"",
               "--config.env", "GREETING=hello", "--config.env", "PATH=/bin:/sbin",
               "--config.workingdir", "/home/app", "--config.user", "app",
               "--config.stopsignal", "SIGUSR1", "--config.label", "tier=test",
               "--config.label", "org.minicontainer.network=host")
    out = {"three": ik.to_oci_archive(lay, "three", str(root / "three.tar"), "docker.io/mc-test/three:1"),
           "conf": ik.to_docker_archive(lay, "conf", str(root / "conf.tar"), "mc-test/conf:1"),
           "umoci-three": ik.umoci_tree(lay, "three", str(root))}
    yield out
    shutil.rmtree(str(root), ignore_errors=True)


def load(env, archive):
    r = env.mc("load", "-i", archive)
    assert r.returncode == 0, r.stderr
    return r.stdout


def tar_tree(data):
    """tree() of imagekit, from a tar of the container's root (hard links
    read as the regular files they are)."""
    out, content = {}, {}
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            rel = m.name.lstrip("./").rstrip("/")
            if not rel or rel.split("/")[0] in OURS[:3] or rel in OURS:
                continue
            if m.isreg():
                content[rel] = hashlib.sha256(t.extractfile(m).read()).hexdigest()
            kind = {tarfile.REGTYPE: stat.S_IFREG, tarfile.AREGTYPE: stat.S_IFREG, tarfile.LNKTYPE: stat.S_IFREG,
                    tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK, tarfile.FIFOTYPE: stat.S_IFIFO,
                    tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK}[m.type]
            rdev = (m.devmajor, m.devminor) if m.ischr() or m.isblk() else None
            out[rel] = [kind, m.mode & 0o7777, m.uid, m.gid, m.linkname if m.issym() else None, rdev,
                        None if not m.isreg() and not m.islnk() else m.linkname.lstrip("./") if m.islnk() else rel]
    for rel, v in out.items():
        if v[6] is not None:
            v[6] = content.get(v[6])
        out[rel] = tuple(v)
    return out


def test_three_layer_image_tree_is_umocis(env, built):
    load(env, built["three"])
    # The container tars its own root but the kernel's filesystems, stdout
    # to us; --entrypoint replaces /opt/tool.
    r = subprocess.run(env.cmd("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", "mc-test/three:1",
                               "-c", "cd / && exec tar -c -f - $(ls -A | grep -vxE 'proc|sys|dev')"),
                       capture_output=True, env=env.environ, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    ours = tar_tree(r.stdout)
    theirs = {k: v for k, v in built["umoci-three"].items() if k.split("/")[0] not in OURS[:3] and k not in OURS}
    assert set(ours) == set(theirs), (sorted(set(ours) - set(theirs))[:20], sorted(set(theirs) - set(ours))[:20])
    diff = {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
    assert diff == {}
    # What the layers did: a deleted file, an opaque directory, a replaced file.
    assert "etc/delete-me" not in ours
    assert sorted(k for k in ours if k.startswith("data/")) == ["data/new.txt"]
    assert ours["data"][1] == 0o700
    env.assert_clean()


def test_image_config_and_flags(env, built):
    load(env, built["conf"])
    r = env.mc("run", "--rm", "--network", "none", "mc-test/conf:1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from /home/app as 1000:1000\n"
    # Flags win: the command replaces Cmd (after the Entrypoint), -e, -w, -u.
    r = env.mc("run", "--rm", "--network", "none", "-e", "GREETING=bye", "-w", "/tmp", "-u", "0:0",
               "mc-test/conf:1", "-c", "echo $GREETING $(pwd) $(id -u) $PATH")
    assert r.stdout == "bye /tmp 0 /bin:/sbin\n", r.stderr
    # The image's labels are annotations, but never one of ours; its StopSignal is kept for stop.
    cid = env.mc("run", "-d", "--network", "none", "--name", "conf", "mc-test/conf:1",
                 "-c", "trap 'echo got USR1; exit 0' USR1; echo up; while true; do sleep 0.1; done").stdout.strip()
    assert wait_for(lambda: "up" in env.mc("logs", "conf").stdout)
    ins = json.loads(env.mc("inspect", "conf").stdout)
    ins = ins[0] if isinstance(ins, list) else ins
    ann = ins["Config"]["Annotations"]
    assert ins["Config"]["Labels"]["tier"] == "test"
    assert ann["tier"] == "test"
    assert ann["org.minicontainer.network"] == "none", "a label set our network key"
    assert ann["org.minicontainer.stop-signal"] == "SIGUSR1"
    assert ins["ImageName"] == "mc-test/conf:1" and ins["Image"].startswith("sha256:")
    assert ins["Image"] == ann["org.minicontainer.image.id"] and ins["Config"]["Image"] == "mc-test/conf:1"
    assert not [k for k in ins["Config"]["Labels"] if k.startswith("org.minicontainer.")]
    t = time.time()
    assert env.mc("stop", "-t", "20", "conf").returncode == 0
    assert time.time() - t < 15, "stop waited for the timeout: SIGUSR1 was not sent"
    assert "got USR1" in env.mc("logs", "conf").stdout
    env.mc("rm", "conf", check=True)
    env.assert_clean([cid])


def test_unknown_image_and_no_command(env, built, tmp_path):
    r = env.mc("run", "--rm", "--network", "none", "--pull", "never", "mc-test/nope:1", "true")
    one_line_error(r)
    assert "no such image: mc-test/nope:1" in r.stderr
    # --pull missing (the default) tries the registry: docker.io, which
    # conftest's registries.json blocks (no test reaches outside).
    r = env.mc("run", "--rm", "--network", "none", "mc-test/nope:1", "true")
    one_line_error(r)
    assert "mc-test/nope:1 is not in the store, and pulling it failed" in r.stderr
    # An image with neither Entrypoint nor Cmd, and no command given.
    lay = ik.Layout(str(tmp_path / "lay"))
    lay.new("bare").add_dir("bare", ROOTFS, "/")
    arch = ik.to_oci_archive(lay, "bare", str(tmp_path / "bare.tar"), "docker.io/mc-test/bare:1")
    load(env, arch)
    r = env.mc("run", "--rm", "--network", "none", "mc-test/bare:1")
    one_line_error(r)
    assert "has no Entrypoint or Cmd" in r.stderr
    assert env.ids() == []
    env.assert_clean()


def test_runc_run_in_a_bundle_directory_is_unchanged_and_ambiguity_is_refused(env, built, tmp_path):
    load(env, built["conf"])
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    subprocess.run(env.cmd("spec", "--bundle", str(bundle), "--rootfs", ROOTFS, "--network", "none", "--",
                           "/bin/echo", "from the bundle"), check=True, env=env.environ, capture_output=True)
    r = subprocess.run(env.cmd("run", "c1"), cwd=bundle, capture_output=True, text=True, env=env.environ)
    assert (r.returncode, r.stdout) == (0, "from the bundle\n"), r.stderr
    subprocess.run(env.cmd("delete", "-f", "c1"), env=env.environ)
    # A name that is both a container id here and an image.
    env.mc("tag", "mc-test/conf:1", "c2", check=True)
    r = subprocess.run(env.cmd("run", "c2"), cwd=bundle, capture_output=True, text=True, env=env.environ)
    one_line_error(r)
    assert "minicontainer run --bundle . c2" in r.stderr and "minicontainer run c2 COMMAND" in r.stderr
    # Either spelling then works.
    r = subprocess.run(env.cmd("run", "--bundle", ".", "c2"), cwd=bundle, capture_output=True, text=True, env=env.environ)
    assert r.stdout == "from the bundle\n", r.stderr
    subprocess.run(env.cmd("delete", "-f", "c2"), env=env.environ)
    r = subprocess.run(env.cmd("run", "--rm", "--network", "none", "c2", "-c", "echo image"), cwd=bundle,
                       capture_output=True, text=True, env=env.environ)
    assert r.stdout == "image\n", r.stderr
    env.assert_clean()
