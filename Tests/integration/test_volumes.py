"""Volumes: volume create|ls|inspect|rm|prune, run -v NAME:/path (created on
first use, kept after rm), anonymous -v /path (gone with rm -v and --rm),
the image's files copied into a new volume, a missing host path made, names
that could be paths or options refused. Each test has its own --root and
data directory; nothing is left behind.
"""
import json
import os
import subprocess
import tempfile

import pytest

from conftest import ROOTFS, needs_root
from test_run import Env, mountinfo

pytestmark = needs_root()


@pytest.fixture
def env(binary, rootfs):
    e = Env()
    e.tmp = tempfile.mkdtemp(prefix="mc-vol-", dir="/tmp")
    yield e
    e.mc("rm", "-f", "--all")
    e.mc("prune", "-f")
    e.mc("volume", "prune", "-f")
    try:
        e.assert_clean()
        assert vols(e) == [], vols(e)
        assert not [m for m in mountinfo() if e.data in m], "mounts left"
    finally:
        subprocess.run(["rm", "-rf", e.root, e.data, e.tmp])


def vols(env):
    d = os.path.join(env.data, "volumes")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def data(env, name):
    return os.path.join(env.data, "volumes", name, "_data")


def run(env, *args, check=True):
    return env.mc("run", "--network", "none", *args, check=check)


def test_create_ls_inspect_rm(env):
    assert env.mc("volume", "create", "v1", check=True).stdout == "v1\n"
    assert env.mc("volume", "create", "--label", "a=b", "--label", "c=", "v2", check=True).stdout == "v2\n"
    r = env.mc("volume", "create", "v1")
    assert r.returncode == 125 and r.stderr.strip() == "minicontainer: volume create: volume with name v1 already exists"
    anon = env.mc("volume", "create", check=True).stdout.strip()
    assert len(anon) == 64 and all(c in "0123456789abcdef" for c in anon)
    r = env.mc("volume", "ls", check=True)
    assert r.stdout == "DRIVER      VOLUME NAME\n" + "".join(f"local       {n}\n" for n in sorted([anon, "v1", "v2"]))
    assert env.mc("volume", "ls", "-q", check=True).stdout.split() == sorted([anon, "v1", "v2"])
    listed = json.loads(env.mc("volume", "ls", "--format", "json", check=True).stdout)
    assert [v["Name"] for v in listed] == sorted([anon, "v1", "v2"])
    [v2] = json.loads(env.mc("volume", "inspect", "v2", check=True).stdout)
    assert v2["Labels"] == {"a": "b", "c": ""} and v2["Driver"] == "local" and v2["Scope"] == "local"
    assert v2["Mountpoint"] == data(env, "v2") and os.path.isdir(v2["Mountpoint"])
    assert v2["MountCount"] == 0 and v2["CreatedAt"].endswith("Z")
    r = env.mc("volume", "inspect", "nope")
    assert r.returncode == 125 and "no such volume" in r.stderr and json.loads(r.stdout) == []
    assert env.mc("volume", "rm", "v1", "v2", anon, check=True).stdout.split() == ["v1", "v2", anon]
    r = env.mc("volume", "rm", "v1")
    assert r.returncode == 1 and 'no volume with name "v1" found' in r.stderr
    assert vols(env) == []


@pytest.mark.parametrize("name", ["..", "a/b", "a,b", "a:b", ".hidden", "-x", "a b", "a\nb", "../../etc"])
def test_bad_names_refused(env, name):
    r = env.mc("volume", "create", "--", name)
    assert r.returncode == 125 and "names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*" in r.stderr, r.stderr
    if not name.startswith("."):  # ./x and ../x are host paths to -v, as podman's
        r = run(env, "-v", f"{name}:/mnt", "--rootfs", ROOTFS, "true", check=False)
        assert r.returncode == 125, r.stderr
    assert vols(env) == []
    assert not os.path.exists(os.path.join(env.data, "etc"))


def test_named_volume_persists_and_is_kept(env):
    """-v NAME:/path makes the volume on first use; a second container sees
    what the first wrote; rm (even rm -v) keeps a named volume."""
    run(env, "--name", "w", "-v", "keep:/data", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo persisted > /data/f")
    assert vols(env) == ["keep"]
    assert open(os.path.join(data(env, "keep"), "f")).read() == "persisted\n"
    r = run(env, "--rm", "-v", "keep:/d:ro", "--rootfs", ROOTFS, "/bin/sh", "-c", "cat /d/f; touch /d/g", check=False)
    assert r.stdout == "persisted\n" and r.returncode != 0  # read-only
    [v] = json.loads(env.mc("volume", "inspect", "keep", check=True).stdout)
    assert v["MountCount"] == 1
    env.mc("rm", "-v", "w", check=True)
    assert vols(env) == ["keep"]


def test_anonymous_volume_rm_v_and_rm(env):
    """-v /path: a random 64-hex volume; `rm` keeps it, `rm -v` removes it,
    --rm removes it with the container."""
    run(env, "--name", "a1", "-v", "/scratch", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo x > /scratch/f")
    [anon] = vols(env)
    assert len(anon) == 64
    assert json.loads(env.mc("volume", "inspect", anon, check=True).stdout)[0]["Anonymous"] is True
    run(env, "--name", "a2", "-v", "/scratch", "--rootfs", ROOTFS, "true")
    second = [v for v in vols(env) if v != anon]
    assert len(second) == 1
    env.mc("rm", "-v", "a1", check=True)
    assert vols(env) == second
    env.mc("rm", "a2", check=True)
    assert vols(env) == second  # without -v it stays (Docker's rm)
    env.mc("volume", "rm", second[0], check=True)
    run(env, "--rm", "-v", "/scratch", "-v", "named:/n", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo y > /scratch/f")
    assert vols(env) == ["named"]  # --rm removed the anonymous one only


def test_in_use_refused_unless_force(env):
    cid = run(env, "-d", "--name", "busy", "-v", "inuse:/data", "--rootfs", ROOTFS, "sleep", "1000").stdout.strip()
    r = env.mc("volume", "rm", "inuse")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"minicontainer: volume rm: volume inuse is being used by the following container(s): {cid}"
    # A stopped container still uses it.
    env.mc("stop", "-t", "0", "busy", check=True)
    assert env.mc("volume", "rm", "inuse").returncode == 2
    r = env.mc("volume", "prune", "-f")
    assert r.returncode == 0 and r.stdout == "" and vols(env) == ["inuse"]
    # podman's -f: the container goes first.
    assert env.mc("volume", "rm", "-f", "inuse", check=True).stdout == "inuse\n"
    assert env.ps() == [] and vols(env) == []


def test_prune(env):
    env.mc("volume", "create", "free1", check=True)
    env.mc("volume", "create", "free2", check=True)
    run(env, "--name", "user", "-v", "used:/u", "--rootfs", ROOTFS, "true")
    r = env.mc("volume", "prune", "-f")
    assert r.returncode == 0 and sorted(r.stdout.split()) == ["free1", "free2"]
    assert vols(env) == ["used"]
    # Without -f and no terminal to ask (a script): as prune, it goes ahead.
    env.mc("volume", "create", "free3", check=True)
    env.mc("rm", "user", check=True)
    r = env.mc("volume", "prune", input="")
    assert r.returncode == 0 and sorted(r.stdout.split()) == ["free3", "used"]
    assert vols(env) == []


def test_copy_up_from_rootfs(env):
    """A new volume on a path the rootfs has gets its files (owners and modes
    kept) before the container starts; a symlink in it stays a link; one
    that already has files is left alone."""
    rootfs = os.path.join(env.tmp, "rootfs")
    subprocess.run(["cp", "-a", ROOTFS, rootfs], check=True)
    os.makedirs(os.path.join(rootfs, "seed", "sub"))
    with open(os.path.join(rootfs, "seed", "sub", "f"), "w") as f:
        f.write("from the image\n")
    os.chown(os.path.join(rootfs, "seed", "sub", "f"), 33, 44)
    os.chmod(os.path.join(rootfs, "seed"), 0o750)
    os.symlink("/etc/shadow", os.path.join(rootfs, "seed", "shadow"))
    r = run(env, "-v", "cu:/seed", "--rootfs", rootfs, "/bin/sh", "-c", "cat /seed/sub/f; stat -c '%a %u:%g' /seed /seed/sub/f")
    assert r.stdout == "from the image\n750 0:0\n644 33:44\n", r.stdout
    d = data(env, "cu")
    assert os.readlink(os.path.join(d, "shadow")) == "/etc/shadow"
    with open(os.path.join(d, "sub", "f"), "w") as f:
        f.write("changed\n")
    r = run(env, "-v", "cu:/seed", "--rootfs", rootfs, "cat", "/seed/sub/f")
    assert r.stdout == "changed\n"
    # An anonymous one too; a path the image lacks: an empty volume.
    r = run(env, "--rm", "-v", "/seed", "-v", "/nothere", "--rootfs", rootfs, "/bin/sh", "-c", "cat /seed/sub/f; ls -A /nothere")
    assert r.stdout == "from the image\n"


def test_copy_up_symlinked_mount_point_stays_in_image(env):
    """The image's /seed -> /etc (a symlink to a host directory's name): the
    volume gets the image's /etc, never the host's."""
    rootfs = os.path.join(env.tmp, "rootfs")
    subprocess.run(["cp", "-a", ROOTFS, rootfs], check=True)
    with open(os.path.join(rootfs, "etc", "marker"), "w") as f:
        f.write("image etc\n")
    os.symlink("/etc", os.path.join(rootfs, "seed"))
    r = run(env, "-v", "esc:/seed", "--rootfs", rootfs, "true", check=False)
    assert r.returncode == 0, r.stderr
    d = data(env, "esc")
    assert open(os.path.join(d, "marker")).read() == "image etc\n"
    assert not os.path.exists(os.path.join(d, "hostname")) or open(os.path.join(d, "hostname")).read() != open("/etc/hostname").read()
    assert not os.path.exists(os.path.join(d, "shadow"))


def test_missing_host_path_is_made(env):
    host = os.path.join(env.tmp, "made", "deep")
    r = run(env, "-v", f"{host}:/m", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo hi > /m/f")
    assert r.returncode == 0, r.stderr
    assert open(os.path.join(host, "f")).read() == "hi\n"
    # A run that fails leaves no directory it made behind.
    host2 = os.path.join(env.tmp, "made2")
    r = run(env, "-v", f"{host2}:/m", "-v", "failvol:/f", "--memory", "bogus", "--rootfs", ROOTFS, "true", check=False)
    assert r.returncode == 125
    assert not os.path.exists(host2) and vols(env) == []


def test_mount_type_volume(env):
    """--mount type=volume,src=NAME,dst=/path is -v NAME:/path: made on first
    use, shared, read-only with ro; volume-nocopy skips the copy-up."""
    run(env, "--mount", "type=volume,src=mv,dst=/data", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo m > /data/f")
    assert vols(env) == ["mv"] and open(os.path.join(data(env, "mv"), "f")).read() == "m\n"
    r = run(env, "--rm", "--mount", "type=volume,source=mv,target=/d,readonly", "--rootfs", ROOTFS,
            "/bin/sh", "-c", "cat /d/f; touch /d/g", check=False)
    assert r.stdout == "m\n" and r.returncode != 0
    r = run(env, "--rm", "--mount", "type=volume,src=nc,dst=/usr,volume-nocopy", "--rootfs", ROOTFS, "ls", "-A", "/usr")
    assert r.stdout == ""
    r = run(env, "--mount", "type=volume,src=a/b,dst=/x", "--rootfs", ROOTFS, "true", check=False)
    assert r.returncode == 125 and sorted(vols(env)) == ["mv", "nc"]


def test_volume_held_by_a_run_being_set_up(env):
    """A run holds its volumes (a shared flock on DATA/volumes/NAME) from -v
    until its config.json names them: rm refuses such a volume, prune skips
    it, and once the hold goes both work."""
    import fcntl
    env.mc("volume", "create", "held", check=True)
    fd = os.open(os.path.join(env.data, "volumes", "held"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        r = env.mc("volume", "rm", "held")
        assert r.returncode == 2 and "being used by a container being created" in r.stderr, r.stderr
        r = env.mc("volume", "prune", "-f")
        assert r.returncode == 0 and r.stdout == "" and vols(env) == ["held"]
    finally:
        os.close(fd)
    assert env.mc("volume", "prune", "-f", check=True).stdout == "held\n"


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
def test_cp_into_a_volume_lands_in_its_data(env, running):
    """cp into a path under a volume's mount point writes the volume's
    _data (the container's view), not the container's upper layer."""
    args = ["-d"] if running else []
    cmd = ["sleep", "1000"] if running else ["true"]
    run(env, *args, "--name", "cv", "-v", "cpv:/data", "--rootfs", ROOTFS, *cmd)
    src = os.path.join(env.tmp, "f")
    with open(src, "w") as f:
        f.write("copied\n")
    r = env.mc("cp", src, "cv:/data/f")
    assert r.returncode == 0, r.stderr
    assert open(os.path.join(data(env, "cpv"), "f")).read() == "copied\n"
    cid = env.ps()[0]["id"]
    assert not os.path.exists(os.path.join(env.dir(cid), "upper", "data", "f"))


@pytest.fixture(scope="module")
def volume_images(tmp_path_factory):
    """Images with VOLUMEs: `vol` has /data (holding a file of the image)
    and /empty; `badvol` has a VOLUME that reads as -v's SOURCE:DEST."""
    import imagekit as ik
    root = tmp_path_factory.mktemp("vol-images")
    lay = ik.busybox_layout(str(root), ROOTFS, tag="vol")
    lay.add_tar("vol", [{"name": "data", "type": "dir"}, {"name": "data/f", "data": b"from the image\n"}])
    lay.config("vol", "--config.volume", "/data", "--config.volume", "/empty/")
    lay.copy_tag("vol", "badvol")
    lay.config("badvol", "--config.volume", "/etc:/data")
    out = {t: ik.to_oci_archive(lay, t, str(root / f"{t}.tar"), f"docker.io/mc-test/{t}:1") for t in ("vol", "badvol")}
    yield out
    subprocess.run(["rm", "-rf", str(root)])


def test_image_volumes_are_anonymous_volumes(env, volume_images):
    """The image's VOLUMEs, as Docker and podman make them: each an
    anonymous volume holding the image's files there, gone with --rm; one
    a flag mounts is not made; a VOLUME that could read as SOURCE:DEST is
    refused in one line, leaving no volume."""
    for archive in volume_images.values():
        env.mc("load", "-i", archive, check=True, timeout=120)
    r = run(env, "--name", "v1", "mc-test/vol:1", "/bin/sh", "-c",
            "cat /data/f; echo new > /data/g; ls -A /empty; grep -c ' /data \\| /empty ' /proc/self/mounts")
    assert r.stdout == "from the image\n2\n", r.stdout
    made = vols(env)
    assert len(made) == 2 and all(len(v) == 64 for v in made), made
    assert sorted(os.listdir(data(env, v)) for v in made) == [[], ["f", "g"]]
    assert all(json.loads(env.mc("volume", "inspect", v, check=True).stdout)[0]["Anonymous"] for v in made)
    env.mc("rm", "-v", "v1", check=True)
    assert vols(env) == []
    # -v NAME:/data wins over the image's /data (no anonymous one for it).
    r = run(env, "--rm", "-v", "mine:/data", "mc-test/vol:1", "cat", "/data/f")
    assert r.stdout == "from the image\n"
    assert vols(env) == ["mine"]  # --rm removed /empty's anonymous volume
    env.mc("volume", "rm", "mine", check=True)
    r = run(env, "--rm", "mc-test/badvol:1", "true", check=False)
    assert r.returncode == 125, r.stderr
    assert r.stderr == ("minicontainer: run: image mc-test/badvol:1: VOLUME \"/etc:/data\" must not contain \":\", "
                        "\",\", a newline or NUL\n"), r.stderr
    assert vols(env) == [] and env.ps() == []
