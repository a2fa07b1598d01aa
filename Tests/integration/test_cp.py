"""`cp` between the host and run-mode containers, running and stopped, and the
attacks a hostile container root makes on it: symlinks to the host's / and
/etc, a symlink swapped in while cp runs, a symlink to /etc/shadow copied out,
a tar on stdin with ../, absolute and through-a-symlink names. Each test has
its own --root and data directory; nothing is left behind.
"""
import io
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import uuid

import pytest

from conftest import ROOTFS, needs_root
from test_run import Env, mountinfo

pytestmark = needs_root()


@pytest.fixture
def env(binary, rootfs):
    e = Env()
    e.tmp = tempfile.mkdtemp(prefix="mc-cp-", dir="/tmp")
    yield e
    e.mc("rm", "-f", "--all")
    e.mc("prune")
    e.mc("volume", "prune", "-f")
    try:
        e.assert_clean()
        vols = os.path.join(e.data, "volumes")
        assert not os.path.isdir(vols) or os.listdir(vols) == [], os.listdir(vols)
        assert not [m for m in mountinfo() if e.data in m], "mounts left"
    finally:
        subprocess.run(["rm", "-rf", e.root, e.data, e.tmp])


def start(env, *cmd, name=None):
    """A detached container (no network) running `cmd` (default: sleep)."""
    args = ["run", "-d", "--network", "none"] + (["--name", name] if name else []) + ["--rootfs", ROOTFS]
    r = env.mc(*args, *(cmd or ("sleep", "1000")), check=True)
    return r.stdout.strip()


def stopped(env, script, name=None):
    """A container that ran `script` and exited 0: its overlay is unmounted."""
    args = ["run", "--network", "none"] + (["--name", name] if name else []) + ["--rootfs", ROOTFS]
    r = env.mc(*args, "/bin/sh", "-c", script)
    assert r.returncode == 0, r.stderr
    cid = env.ps()[0]["id"]
    assert not [m for m in mountinfo() if m.startswith(env.dir(cid))]
    return cid


def sh(env, cid, script):
    r = env.mc("exec", cid, "/bin/sh", "-c", script)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def make_tree(base):
    """A tree with what cp must keep: modes, owners, a symlink, an empty dir,
    a hard link."""
    t = os.path.join(base, "tree")
    os.makedirs(os.path.join(t, "sub", "empty"))
    with open(os.path.join(t, "f"), "w") as f:
        f.write("file f\n")
    os.chmod(os.path.join(t, "f"), 0o640)
    os.chown(os.path.join(t, "f"), 1234, 5678)
    with open(os.path.join(t, "sub", "exe"), "w") as f:
        f.write("#!/bin/sh\necho exe\n")
    os.chmod(os.path.join(t, "sub", "exe"), 0o4755)
    os.chmod(os.path.join(t, "sub", "empty"), 0o700)
    os.chown(os.path.join(t, "sub"), 42, 43)
    os.symlink("../f", os.path.join(t, "sub", "rel"))
    os.symlink("/etc/shadow", os.path.join(t, "abs"))
    os.link(os.path.join(t, "f"), os.path.join(t, "hard"))
    return t


def describe(root):
    """path -> (type, mode, uid, gid, content or link target), for comparing trees."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISLNK(st.st_mode):
                what = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                what = ("d", None)
            else:
                with open(p, "rb") as f:
                    what = ("f", f.read())
            out[rel] = (what[0], stat.S_IMODE(st.st_mode) if what[0] != "l" else 0, st.st_uid, st.st_gid, what[1])
    return out


def test_round_trip_tree_archive_mode(env):
    """host -> running container -> host with -a: every mode, owner, the
    symlinks (not followed), the empty dir and the contents come back."""
    cid = start(env)
    src = make_tree(env.tmp)
    r = env.mc("cp", "-a", src, cid + ":/tmp/")
    assert r.returncode == 0, r.stderr
    inside = sh(env, cid, "stat -c '%n %a %u:%g' /tmp/tree/f /tmp/tree/sub /tmp/tree/sub/exe /tmp/tree/sub/empty; "
                          "readlink /tmp/tree/abs; readlink /tmp/tree/sub/rel; stat -c %h /tmp/tree/f")
    assert "/tmp/tree/f 640 1234:5678" in inside
    assert "/tmp/tree/sub 755 42:43" in inside
    assert "/tmp/tree/sub/exe 4755 0:0" in inside
    assert "/tmp/tree/sub/empty 700 0:0" in inside
    assert "/etc/shadow\n../f\n2\n" in inside
    out = os.path.join(env.tmp, "back")
    r = env.mc("cp", "-a", cid + ":/tmp/tree", out)
    assert r.returncode == 0, r.stderr
    assert describe(out) == describe(src)
    assert os.stat(os.path.join(out, "f")).st_ino == os.stat(os.path.join(out, "hard")).st_ino


def test_default_owners_and_setuid(env):
    """Without -a: into the container the files are its user's (root), out
    of it ours, and a setuid bit from the container does not reach the host."""
    cid = start(env)
    src = make_tree(env.tmp)
    assert env.mc("cp", src, cid + ":/tmp/t2").returncode == 0
    inside = sh(env, cid, "stat -c '%n %a %u:%g' /tmp/t2/f /tmp/t2/sub")
    assert "/tmp/t2/f 640 0:0" in inside and "/tmp/t2/sub 755 0:0" in inside
    sh(env, cid, "chown 7:8 /tmp/t2/f")
    out = os.path.join(env.tmp, "out")
    r = env.mc("cp", cid + ":/tmp/t2", out)
    assert r.returncode == 0, r.stderr
    st = os.stat(os.path.join(out, "f"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o640)
    assert stat.S_IMODE(os.stat(os.path.join(out, "sub", "exe")).st_mode) == 0o755  # setuid dropped
    assert os.readlink(os.path.join(out, "abs")) == "/etc/shadow"


def test_docker_path_rules(env):
    """Docker's rules: a dir into an existing dir, dir/. as contents, a new
    name, a file onto a file, errors for a missing source or parent."""
    cid = start(env, name="rules")
    sh(env, cid, "mkdir -p /tmp/o/d && echo x > /tmp/o/d/g")
    t = env.tmp
    os.mkdir(f"{t}/exist")
    assert env.mc("cp", "rules:/tmp/o", f"{t}/exist").returncode == 0
    assert os.path.isfile(f"{t}/exist/o/d/g")
    os.mkdir(f"{t}/exist2")
    assert env.mc("cp", "rules:/tmp/o/.", f"{t}/exist2").returncode == 0
    assert os.path.isfile(f"{t}/exist2/d/g") and not os.path.exists(f"{t}/exist2/o")
    assert env.mc("cp", "rules:/tmp/o", f"{t}/new").returncode == 0
    assert os.path.isfile(f"{t}/new/d/g")
    with open(f"{t}/file", "w") as f:
        f.write("old")
    assert env.mc("cp", "rules:/tmp/o/d/g", f"{t}/file").returncode == 0
    assert open(f"{t}/file").read() == "x\n"
    r = env.mc("cp", "rules:/tmp/o", f"{t}/file")
    assert r.returncode == 125 and "destination must be a directory when copying a directory" in r.stderr
    r = env.mc("cp", "rules:/nonexist", f"{t}/x")
    assert r.returncode == 125
    assert r.stderr.strip() == 'minicontainer: cp rules: "/nonexist" could not be found on container rules: no such file or directory', r.stderr
    r = env.mc("cp", "rules:/tmp/o/d/g", f"{t}/nope/x")
    assert r.returncode == 125 and "could not be found on the host" in r.stderr
    r = env.mc("cp", "rules:/tmp/o/d/g", f"{t}/newdir/")
    assert r.returncode == 125 and not os.path.exists(f"{t}/newdir")
    # Into the container: a file to a new name, to stdout as a tar.
    assert env.mc("cp", f"{t}/file", "rules:/tmp/renamed").returncode == 0
    assert sh(env, cid, "cat /tmp/renamed") == "x\n"
    r = subprocess.run(env.cmd("cp", "rules:/tmp/o", "-"), capture_output=True, env=env.environ, timeout=60)
    assert r.returncode == 0, r.stderr
    names = tarfile.open(fileobj=io.BytesIO(r.stdout)).getnames()
    assert names == ["o", "o/d", "o/d/g"], names


def test_stopped_container_both_ways(env):
    """A stopped container (overlay unmounted): copied into and out of,
    through a mount of its own that nothing in the host's table shows; a
    directory the container deleted (a whiteout in upper) takes the copy."""
    cid = stopped(env, "echo kept > /kept; rm -rf /root")
    src = make_tree(env.tmp)
    r = env.mc("cp", "-a", src, cid + ":/root")
    assert r.returncode == 0, r.stderr
    assert not [m for m in mountinfo() if m.startswith(env.dir(cid))]
    out = os.path.join(env.tmp, "out")
    r = env.mc("cp", "-a", cid + ":/root", out)
    assert r.returncode == 0, r.stderr
    assert describe(out) == describe(src)
    r = env.mc("cp", cid + ":/kept", os.path.join(env.tmp, "kept"))
    assert r.returncode == 0 and open(os.path.join(env.tmp, "kept")).read() == "kept\n"


def test_stopped_container_volume(env):
    """Copying into a path under a bind mount of a stopped container lands
    in the bind's source, as Docker's."""
    host = os.path.join(env.tmp, "bindsrc")
    os.mkdir(host)
    r = env.mc("run", "--network", "none", "-v", f"{host}:/mnt/b", "--rootfs", ROOTFS, "true")
    assert r.returncode == 0, r.stderr
    cid = env.ps()[0]["id"]
    with open(os.path.join(env.tmp, "f"), "w") as f:
        f.write("into the bind\n")
    assert env.mc("cp", os.path.join(env.tmp, "f"), cid + ":/mnt/b/f").returncode == 0
    assert open(os.path.join(host, "f")).read() == "into the bind\n"


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
@pytest.mark.parametrize("target", ["/", "/etc"])
def test_symlink_escape_into(env, running, target):
    """/out -> / (or /etc) in the container: cp FILE CTR:/out/x writes the
    container's /x (/etc/x), never the host's."""
    name = "mc-cp-escape-" + uuid.uuid4().hex[:8]
    script = f"ln -s {target} /out"
    if running:
        cid = start(env)
        sh(env, cid, script)
    else:
        cid = stopped(env, script)
    hostfile = os.path.join(env.tmp, "payload")
    with open(hostfile, "w") as f:
        f.write("payload\n")
    host_victim = os.path.join(target, name)
    host_victims = [host_victim, host_victim + "-dir"]
    try:
        r = env.mc("cp", hostfile, f"{cid}:/out/{name}")
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(host_victim), f"cp wrote the host's {host_victim}"
        # It is in the container, where the symlink leads there.
        out = os.path.join(env.tmp, "check")
        assert env.mc("cp", f"{cid}:{target.rstrip('/')}/{name}", out).returncode == 0
        assert open(out).read() == "payload\n"
        # And a directory the same way.
        d = os.path.join(env.tmp, name + "-dir")
        os.mkdir(d)
        with open(os.path.join(d, "inner"), "w") as f:
            f.write("x")
        assert env.mc("cp", d, f"{cid}:/out/").returncode == 0
        assert not os.path.lexists(host_victim + "-dir"), f"cp made the host's {host_victim}-dir"
        assert env.mc("cp", f"{cid}:{target.rstrip('/')}/{name}-dir/inner", out).returncode == 0
        assert open(out).read() == "x"
    finally:
        for v in host_victims:
            if os.path.lexists(v):
                subprocess.run(["rm", "-rf", v])


def test_copy_out_symlink_to_shadow(env):
    """A container's /tmp/sh -> /etc/shadow is copied as the link, never as
    the host's shadow; -L follows it inside the container (its own shadow)."""
    cid = start(env)
    sh(env, cid, "echo container-shadow > /etc/shadow; ln -s /etc/shadow /tmp/sh; ln -s ../../../../../etc/shadow /tmp/rel")
    out = os.path.join(env.tmp, "sh")
    assert env.mc("cp", cid + ":/tmp/sh", out).returncode == 0
    assert os.path.islink(out) and os.readlink(out) == "/etc/shadow"
    out2 = os.path.join(env.tmp, "shL")
    assert env.mc("cp", "-L", cid + ":/tmp/rel", out2).returncode == 0
    assert not os.path.islink(out2) and open(out2).read() == "container-shadow\n"
    # Stopped: the same, through the host's view of its root.
    env.mc("stop", "-t", "0", cid, check=True)
    out3 = os.path.join(env.tmp, "shL3")
    assert env.mc("cp", "-L", cid + ":/tmp/rel", out3).returncode == 0
    assert open(out3).read() == "container-shadow\n"
    # Into a host directory: the link, not through it.
    os.mkdir(os.path.join(env.tmp, "into"))
    assert env.mc("cp", cid + ":/tmp/sh", os.path.join(env.tmp, "into")).returncode == 0
    assert os.readlink(os.path.join(env.tmp, "into", "sh")) == "/etc/shadow"


def test_symlink_swap_race(env):
    """The container swaps /race/d between a directory and a symlink to /
    (and /race/s between a directory and a symlink to a host-only path)
    while cp runs, 40 times each way: no host file appears, nothing of the
    host is copied out."""
    tag = uuid.uuid4().hex[:8]
    secret_dir = f"/tmp/mc-cp-secret-{tag}"
    os.mkdir(secret_dir)
    with open(f"{secret_dir}/secret", "w") as f:
        f.write(f"host secret {tag}\n")
    victim = f"/mc-cp-race-{tag}"
    script = (f"mkdir -p /race /tmp/mc-cp-secret-{tag}; echo decoy > /tmp/mc-cp-secret-{tag}/secret; "
              "while :; do rm -rf /race/d /race/s; mkdir /race/d /race/s; echo in > /race/s/secret; "
              f"rm -rf /race/d /race/s; ln -s / /race/d; ln -s {secret_dir} /race/s; done")
    cid = start(env, "/bin/sh", "-c", script)
    sh(env, cid, "while [ ! -d /race ]; do sleep 0.05; done")
    payload = os.path.join(env.tmp, victim.lstrip("/"))
    os.mkdir(payload)
    with open(os.path.join(payload, "f"), "w") as f:
        f.write("race\n")
    try:
        for i in range(40):
            env.mc("cp", payload, f"{cid}:/race/d/")
            env.mc("cp", os.path.join(payload, "f"), f"{cid}:/race/d{victim}-file")
            out = os.path.join(env.tmp, f"out{i}")
            env.mc("cp", f"{cid}:/race/s", out)
            env.mc("cp", "-L", f"{cid}:/race/s/secret", out + "L")
            # What came out is the container's: a link as a link (not
            # read through here), a directory's regular files.
            for d, _, files in os.walk(out) if not os.path.islink(out) and os.path.isdir(out) else []:
                for n in files:
                    p = os.path.join(d, n)
                    if stat.S_ISREG(os.lstat(p).st_mode):
                        assert f"host secret {tag}" not in open(p).read()
            if os.path.lexists(out + "L"):
                assert not os.path.islink(out + "L")
                assert f"host secret {tag}" not in open(out + "L").read()
            assert not os.path.lexists(victim) and not os.path.lexists(victim + "-file")
    finally:
        for p in (victim, victim + "-file", secret_dir):
            if os.path.lexists(p):
                subprocess.run(["rm", "-rf", p])


def hostile_tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            if kind == "sym":
                ti.type = tarfile.SYMTYPE
                ti.linkname = data
                t.addfile(ti)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            else:
                b = data.encode()
                ti.size = len(b)
                t.addfile(ti, io.BytesIO(b))
    return buf.getvalue()


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
def test_tar_from_stdin_hostile_names(env, running):
    """cp - CTR:/dst with ../ names (refused), an absolute name (inside
    /dst) and a symlink to / then a file through it (refused or kept
    inside): nothing lands on the host."""
    tag = uuid.uuid4().hex[:8]
    cid = start(env) if running else stopped(env, "mkdir -p /dst")
    if running:
        sh(env, cid, "mkdir -p /dst")
    victims = [f"/mc-cp-dotdot-{tag}", f"/etc/mc-cp-abs-{tag}", f"/mc-cp-sym-{tag}", f"/etc/mc-cp-sym2-{tag}"]

    def feed(entries):
        return subprocess.run(env.cmd("cp", "-", f"{cid}:/dst"), input=hostile_tar(entries), capture_output=True,
                              env=env.environ, timeout=60)
    try:
        r = feed([(f"../../../../../../mc-cp-dotdot-{tag}", "file", "x")])
        assert r.returncode == 125 and b'".." component' in r.stderr, r.stderr
        r = feed([(f"/etc/mc-cp-abs-{tag}", "file", "abs")])
        assert r.returncode == 0, r.stderr
        r = feed([("l", "sym", "/"), (f"l/mc-cp-sym-{tag}", "file", "sym"),
                  ("e", "sym", "../../../../etc"), (f"e/mc-cp-sym2-{tag}", "file", "sym2")])
        for v in victims:
            assert not os.path.lexists(v), f"{v} written on the host"
        # The absolute name went inside /dst.
        out = os.path.join(env.tmp, "abs")
        assert env.mc("cp", f"{cid}:/dst/etc/mc-cp-abs-{tag}", out).returncode == 0
        assert open(out).read() == "abs"
    finally:
        for v in victims:
            if os.path.lexists(v):
                os.unlink(v)


def test_cp_errors(env):
    cid = start(env, name="errs")
    r = env.mc("cp", "/etc/hostname", "/tmp/x")
    assert r.returncode == 125 and "must be CONTAINER:PATH" in r.stderr
    r = env.mc("cp", "errs:/a", "errs:/b")
    assert r.returncode == 125 and "between containers" in r.stderr
    r = env.mc("cp", "/nonexistent-mc-cp", "errs:/tmp/")
    assert r.returncode == 125 and '"/nonexistent-mc-cp" could not be found on the host' in r.stderr
    r = env.mc("cp", "/etc/hostname", "nosuch:/tmp/")
    assert r.returncode == 125 and "container nosuch does not exist" in r.stderr
