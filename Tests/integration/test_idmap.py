"""Idmapped bind mounts (runtime-spec 1.3: a mount's uidMappings and
gidMappings, the idmap and ridmap options), on OCI bundles over the busybox
rootfs. A mount mapping {containerID C, hostID H, size S} shows the file
that is C on disk as host id H through the mount (runc's and crun's reading:
the lines go unchanged into the uid_map of the namespace the mount is
idmapped with); a container mapped 0 -> 100000 sees host id 100000 as its
root. Every test makes its host directories under its own tmp dir, checks
ownership on the host before and after, and that nothing is left: no state,
no cgroup, no process of the runtime's user namespaces, no mount."""
import json
import os
import subprocess
import uuid

import pytest

from conftest import BIN, ROOTFS, mc, needs_root

pytestmark = needs_root()

USERNS = [{"containerID": 0, "hostID": 100000, "size": 65536}]


# The uid_map text of the namespaces made for the tests' mount mappings: no
# process may be left in one.
MOUNT_MAPS = {"1000 100000 1", "1000 2000 1", "1000 100000 10 0 100005 1"}


def idmap(c, h, s=1):
    return [{"containerID": c, "hostID": h, "size": s}]


def owner(path):
    st = os.lstat(path)
    return (st.st_uid, st.st_gid)


def uid_maps():
    """Every process's uid_map, as text, by pid."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/uid_map") as f:
                    out[int(d)] = " ".join(f.read().split())
            except OSError:
                pass
    return out


def host_mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if l.split()[4].startswith(path)]


class Env:
    """A private --root, bundles over the shared busybox rootfs (read-only,
    a tmpfs on /run for mount points), and the checks that nothing is left."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        os.chmod(tmp_path, 0o755)
        self.root = f"/run/minicontainer-test/{uuid.uuid4().hex[:12]}"
        self.ids = []
        self.mounted = []

    def id(self):
        cid = "idm" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        return cid

    def mc(self, *args, **kw):
        return mc("--root", self.root, *args, **kw)

    def tree(self, name, files, uid=1000, gid=1000):
        """A host directory `name` (owned uid:gid) with files {relpath: (uid, gid)}."""
        d = self.tmp / name
        d.mkdir()
        os.chown(d, uid, gid)
        for rel, (u, g) in files.items():
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(rel + "\n")
            os.chown(p, u, g)
        return d

    def mount(self, *args):
        """mount(8) on the host, undone at teardown (last first)."""
        subprocess.run(["mount", *args], check=True)
        self.mounted.append(args[-1])

    def bundle(self, script, mounts, userns=True, caps=(), name="b", edit=None):
        d = self.tmp / name
        d.mkdir(exist_ok=True)
        assert mc("spec", "--bundle", str(d), "--force").returncode == 0
        cfg = json.loads((d / "config.json").read_text())
        cfg["root"] = {"path": ROOTFS, "readonly": True}
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["sh", "-c", script]
        for k in ("bounding", "effective", "permitted"):
            cfg["process"]["capabilities"][k] += [f"CAP_{c}" for c in caps]
        if userns:
            cfg["linux"]["namespaces"].append({"type": "user"})
            cfg["linux"]["uidMappings"] = USERNS
            cfg["linux"]["gidMappings"] = USERNS
        cfg["mounts"].append({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]})
        cfg["mounts"] += mounts
        if edit:
            edit(cfg)
        (d / "config.json").write_text(json.dumps(cfg))
        return str(d)

    def run(self, bundle):
        return self.mc("run", "--bundle", bundle, self.id(), timeout=60)

    def assert_clean(self):
        left = os.listdir(self.root) if os.path.isdir(self.root) else []
        assert [e for e in left if e != "@seccomp"] == [], f"state left: {left}"
        for cid in self.ids:
            for h in os.listdir("/sys/fs/cgroup"):
                assert not os.path.isdir(f"/sys/fs/cgroup/{h}/{cid}"), f"cgroup {h}/{cid} left"
        # The runtime's user namespaces: the container's (0 100000 65536)
        # and those made for a mount's mappings (hostID 100000+ or 2000+).
        held = {p: m for p, m in uid_maps().items() if m in MOUNT_MAPS}
        assert held == {}, f"processes left in the user namespaces of mount mappings: {held}"
        assert set(host_mounts_under(str(self.tmp))) <= set(self.mounted), "mounts left on the host"

    def close(self):
        for cid in self.ids:
            self.mc("delete", "--force", cid)
        try:
            self.assert_clean()
        finally:
            for m in reversed(self.mounted):
                subprocess.run(["umount", "-R", m], check=False)
            subprocess.run(["rm", "-rf", self.root])
        assert host_mounts_under(str(self.tmp)) == [], "mounts left on the host"


@pytest.fixture
def env(binary, rootfs, tmp_path):
    e = Env(tmp_path)
    yield e
    e.close()


def stat_lines(out):
    """{path: "uid:gid"} from `stat -c '%n %u:%g'` lines."""
    return dict(l.split() for l in out.splitlines() if l.startswith("/") and len(l.split()) == 2)


def test_host_uid_1000_is_root_inside_and_writes_land_as_1000(env):
    """The issue's test: files of uid/gid 1000 on the host show as the
    container's root through a mount mapping the disk's 1000 to host id
    100000 (the container's 0); root writes there as 1000 on the host; the
    host's files keep their owner; an id outside the mapping is refused; and
    the user namespace made for the mount leaves no process behind."""
    src = env.tree("src", {"f": (1000, 1000), "d/g": (1000, 1000)})
    before = {p: os.stat(src / p) for p in ("", "f", "d/g")}
    b = env.bundle("stat -c '%n %u:%g' /run/data /run/data/f /run/data/d/g; echo new > /run/data/new; "
                   "stat -c '%n %u:%g' /run/data/new; chown 5 /run/data/new; echo chown=$?; "
                   "touch /run/ro/x; echo ro=$?",
                   [{"destination": "/run/data", "type": "bind", "source": str(src), "options": ["bind", "idmap"],
                     "uidMappings": idmap(1000, 100000), "gidMappings": idmap(1000, 100000)},
                    {"destination": "/run/ro", "type": "bind", "source": str(src), "options": ["bind", "ro", "idmap"],
                     "uidMappings": idmap(1000, 100000), "gidMappings": idmap(1000, 100000)}])
    cid = env.id()
    with open(env.tmp / "out", "w") as out:
        r = subprocess.run([BIN, "--root", env.root, "create", "--bundle", b, cid], stdout=out, stderr=out,
                           stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0, (env.tmp / "out").read_text()
    # create has returned: the namespace of the mount's mapping is held by
    # the mount alone, no process is in it; the init is in the container's.
    assert "1000 100000 1" not in uid_maps().values(), uid_maps()
    pid = json.loads(env.mc("state", cid, check=True).stdout)["pid"]
    assert uid_maps()[pid] == "0 100000 65536"
    env.mc("start", cid, check=True)
    for _ in range(200):
        if json.loads(env.mc("state", cid, check=True).stdout)["status"] == "stopped":
            break
        subprocess.run(["sleep", "0.05"])
    env.mc("delete", cid, check=True)
    env.ids.remove(cid)
    seen = stat_lines((env.tmp / "out").read_text())
    assert seen == {"/run/data": "0:0", "/run/data/f": "0:0", "/run/data/d/g": "0:0", "/run/data/new": "0:0"}, seen
    text = (env.tmp / "out").read_text()
    assert "chown=1" in text and "ro=1" in text, text
    assert owner(src / "new") == (1000, 1000), "root's file lands as the disk's 1000"
    assert (src / "new").read_text() == "new\n"
    for p, st in before.items():
        now = os.stat(src / p)
        assert (now.st_uid, now.st_gid, now.st_mode) == (st.st_uid, st.st_gid, st.st_mode), p
    assert not os.path.exists(src / "x"), "the ro idmapped mount was written"


def test_output_inside(env):
    """The same mount under `run`: what the container sees, line by line."""
    src = env.tree("src", {"f": (1000, 1000), "other": (1001, 1001)})
    r = env.run(env.bundle("stat -c '%n %u:%g' /run/data/f /run/data/other; echo new > /run/data/new; "
                           "stat -c '%n %u:%g' /run/data/new; chown 5 /run/data/new 2>&1; echo chown=$?; "
                           "grep ' /run/data ' /proc/self/mountinfo",
                           [{"destination": "/run/data", "type": "bind", "source": str(src), "options": ["bind", "idmap"],
                             "uidMappings": idmap(1000, 100000), "gidMappings": idmap(1000, 100000)}]))
    assert r.returncode == 0, r.stderr
    seen = stat_lines(r.stdout)
    assert seen["/run/data/f"] == "0:0"
    assert seen["/run/data/other"] == "65534:65534", "1001 is outside the mapping: the overflow id"
    assert seen["/run/data/new"] == "0:0"
    # The container's uid 5 is host 100005, which the mount does not map.
    assert "chown=1" in r.stdout and "Value too large" in r.stdout, r.stdout
    assert "idmapped" in r.stdout, r.stdout
    assert owner(src / "new") == (1000, 1000) and owner(src / "f") == (1000, 1000)


def test_idmap_alone_takes_the_container_mappings(env):
    """`idmap` without mappings of its own: the container's user namespace's
    (0 -> 100000): the disk's ids show as themselves inside, those past the
    container's range as the overflow id; mappings equal to the container's
    give the same."""
    src = env.tree("src", {"root": (0, 0), "u1000": (1000, 1000), "far": (70000, 70000)}, uid=0, gid=0)
    same = {"destination": "/run/same", "type": "bind", "source": str(src), "options": ["bind"],
            "uidMappings": USERNS, "gidMappings": USERNS}
    r = env.run(env.bundle("stat -c '%n %u:%g' /run/data/root /run/data/u1000 /run/data/far /run/same/u1000; "
                           "echo x > /run/data/byroot; echo x > /run/same/byroot2",
                           [{"destination": "/run/data", "type": "bind", "source": str(src), "options": ["bind", "idmap"]},
                            same]))
    assert r.returncode == 0, r.stderr
    seen = stat_lines(r.stdout)
    assert seen == {"/run/data/root": "0:0", "/run/data/u1000": "1000:1000", "/run/data/far": "65534:65534",
                    "/run/same/u1000": "1000:1000"}, r.stdout
    assert owner(src / "byroot") == (0, 0) and owner(src / "byroot2") == (0, 0)
    assert owner(src / "u1000") == (1000, 1000) and owner(src / "far") == (70000, 70000)


def test_ridmap_maps_a_submount_and_idmap_does_not(env):
    """rbind of a tree with a tmpfs mounted in it: ridmap idmaps the tmpfs
    too, idmap only the top mount (the tmpfs's 1000 is then unmapped in the
    container: the overflow id)."""
    src = env.tree("src", {"f": (1000, 1000)})
    (src / "sub").mkdir()
    env.mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", str(src / "sub"))
    (src / "sub" / "g").write_text("g\n")
    os.chown(src / "sub" / "g", 1000, 1000)
    m = lambda dst, opt: {"destination": dst, "type": "bind", "source": str(src), "options": ["rbind", opt],
                          "uidMappings": idmap(1000, 100000), "gidMappings": idmap(1000, 100000)}
    r = env.run(env.bundle("stat -c '%n %u:%g' /run/r/f /run/r/sub/g /run/i/f /run/i/sub/g",
                           [m("/run/r", "ridmap"), m("/run/i", "idmap")]))
    assert r.returncode == 0, r.stderr
    assert stat_lines(r.stdout) == {"/run/r/f": "0:0", "/run/r/sub/g": "0:0", "/run/i/f": "0:0",
                                    "/run/i/sub/g": "65534:65534"}, r.stdout
    assert owner(src / "sub" / "g") == (1000, 1000)


def test_mappings_without_a_user_namespace(env):
    """Allowed (the spec requires a user namespace only for idmap alone):
    the container, real root, sees the mapped host ids, and its writes as
    host 0, which the mount does not map, are refused (EOVERFLOW)."""
    src = env.tree("src", {"f": (1000, 1000)})
    r = env.run(env.bundle("stat -c '%n %u:%g' /run/data/f; touch /run/data/new 2>&1; echo touch=$?",
                           [{"destination": "/run/data", "type": "bind", "source": str(src), "options": ["bind", "idmap"],
                             "uidMappings": idmap(1000, 2000), "gidMappings": idmap(1000, 2000)}], userns=False))
    assert r.returncode == 0, r.stderr
    assert stat_lines(r.stdout) == {"/run/data/f": "2000:2000"}, r.stdout
    assert "touch=1" in r.stdout and "Value too large" in r.stdout, r.stdout
    assert os.listdir(src) == ["f"] and owner(src / "f") == (1000, 1000)


def test_read_only_host_mount_stays_locked(env):
    """Attack: the host's directory is a read-only bind; a container with
    CAP_SYS_ADMIN in its user namespace remounts its idmapped copy rw and
    writes. The copy was made in the container's mount namespace, where the
    host's read-only flag is locked: the remount is refused, nothing is written."""
    src = env.tree("src", {"f": (1000, 1000)})
    env.mount("--bind", str(src), str(src))
    subprocess.run(["mount", "-o", "remount,bind,ro", str(src)], check=True)
    r = env.run(env.bundle("mount -o remount,rw,bind /run/data 2>&1; echo remount=$?; "
                           "echo pwned > /run/data/f 2>&1; echo write=$?; touch /run/data/new 2>&1; echo touch=$?",
                           [{"destination": "/run/data", "type": "bind", "source": str(src), "options": ["bind", "idmap"],
                             "uidMappings": idmap(1000, 100000), "gidMappings": idmap(1000, 100000)}],
                           caps=["SYS_ADMIN"]))
    assert r.returncode == 0, r.stderr
    assert "remount=0" not in r.stdout and "write=1" in r.stdout and "touch=1" in r.stdout, r.stdout
    assert (src / "f").read_text() == "f\n" and os.listdir(src) == ["f"]


def test_submount_of_an_rbind_cannot_be_unmounted(env):
    """Attack: a host tmpfs covers a directory of the source; with ridmap the
    container (CAP_SYS_ADMIN in its user namespace) unmounts it to read what
    it covers. The copy keeps the kernel's lock on the submount: refused."""
    src = env.tree("src", {"sub/hidden": (1000, 1000)})
    env.mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", str(src / "sub"))
    r = env.run(env.bundle("umount -l /run/data/sub 2>&1; echo umount=$?; cat /run/data/sub/hidden 2>&1; echo cat=$?",
                           [{"destination": "/run/data", "type": "bind", "source": str(src), "options": ["rbind", "ridmap"],
                             "uidMappings": idmap(1000, 100000), "gidMappings": idmap(1000, 100000)}],
                           caps=["SYS_ADMIN"]))
    assert r.returncode == 0, r.stderr
    assert "umount=0" not in r.stdout and "cat=1" in r.stdout and "sub/hidden\n" not in r.stdout, r.stdout


def test_mounts_inside_do_not_propagate_to_the_host(env):
    """Attack: the source is a shared mount on the host; a container without
    a user namespace (CAP_SYS_ADMIN) mounts a tmpfs inside its idmapped copy.
    The copy is made a slave (the root's rslave) once attached, so the host
    does not get the mount."""
    src = env.tmp / "shared"
    src.mkdir()
    env.mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", str(src))
    subprocess.run(["mount", "--make-shared", str(src)], check=True)
    (src / "m").mkdir()
    os.chown(src, 1000, 1000)
    os.chown(src / "m", 1000, 1000)
    r = env.run(env.bundle("mount -t tmpfs none /run/data/m 2>&1; echo mount=$?; grep ' /run/data ' /proc/self/mountinfo",
                           [{"destination": "/run/data", "type": "bind", "source": str(src), "options": ["bind", "idmap"],
                             "uidMappings": idmap(1000, 2000), "gidMappings": idmap(1000, 2000)}],
                           userns=False, caps=["SYS_ADMIN"]))
    assert r.returncode == 0, r.stderr
    assert "mount=0" in r.stdout, r.stdout
    assert "shared:" not in r.stdout.split("mount=0")[1], r.stdout
    assert host_mounts_under(str(src / "m")) == [], "the container's mount reached the host"


BAD = {
    "uid-without-gid": (lambda m: m.pop("gidMappings"), "mounts[8].uidMappings: must be given with gidMappings"),
    "size-0": (lambda m: m.update(uidMappings=idmap(1000, 100000, 0)), "mounts[8].uidMappings[0]: size must not be 0"),
    "overlap": (lambda m: m.update(gidMappings=idmap(1000, 100000, 10) + idmap(1005, 200000, 1)),
                "mounts[8].gidMappings[1]: its containerID range overlaps that of [0]"),
    "host-overlap": (lambda m: m.update(uidMappings=idmap(1000, 100000, 10) + idmap(0, 100005, 1)),
                     "mounts[8].uidMappings[1]: its hostID range overlaps that of [0]"),
    "past-last-id": (lambda m: m.update(uidMappings=idmap(1000, 4294967295)),
                     "mounts[8].uidMappings[0]: hostID 4294967295 with size 1 goes past the last id (4294967294)"),
    "too-many": (lambda m: m.update(uidMappings=[{"containerID": i, "hostID": 100000 + i, "size": 1} for i in range(341)]),
                 "mounts[8].uidMappings: 341 mappings, more than the kernel allows (340)"),
    "tmpfs": (lambda m: m.update(type="tmpfs", source="tmpfs", options=["idmap"]),
              'mounts[8]: only bind mounts can be idmapped here, not type "tmpfs"'),
    "missing-source": (lambda m: m.update(source="/nonexistent-idmap-source"),
                       "mount /nonexistent-idmap-source on /run/data: bind /nonexistent-idmap-source: no such file or directory"),
    "sysfs-source": (lambda m: m.update(source="/sys/kernel", options=["rbind", "ridmap"]),
                     "mount /sys/kernel on /run/data: idmap: the filesystem of /sys/kernel or a mount below it cannot be idmapped"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_idmaps_are_refused_and_leave_nothing(env, case):
    edit, want = BAD[case]
    src = env.tree("src", {"f": (1000, 1000)})
    m = {"destination": "/run/data", "type": "bind", "source": str(src), "options": ["bind", "idmap"],
         "uidMappings": idmap(1000, 100000), "gidMappings": idmap(1000, 100000)}
    edit(m)
    b = env.bundle("touch /run/data/ran", [m])
    assert json.load(open(os.path.join(b, "config.json")))["mounts"][8] == m
    cid = env.id()
    r = env.mc("create", "--bundle", b, cid)
    assert r.returncode == 125, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"minicontainer: create"), r.stderr
    assert want in lines[0], lines[0]
    assert env.mc("state", cid).returncode != 0
    assert os.listdir(src) == ["f"]
    env.assert_clean()


def test_idmap_alone_needs_a_user_namespace(env):
    """The spec's MUST: idmap without mappings and without a user namespace is
    an error (check and create say the same); with a user namespace joined by
    path it is valid (its mappings apply)."""
    src = env.tree("src", {"f": (1000, 1000)})
    m = {"destination": "/run/data", "type": "bind", "source": str(src), "options": ["rbind", "ridmap"]}
    b = env.bundle("true", [m], userns=False)
    want = "mounts[8].options: ridmap without uidMappings and gidMappings maps the ids as the container's user namespace does, and there is none in linux.namespaces"
    for args in (["check", "--bundle", b], ["create", "--bundle", b, env.id()]):
        r = env.mc(*args)
        assert r.returncode == 125 and len(r.stderr.splitlines()) == 1 and want in r.stderr, r.stderr
    joined = env.bundle("true", [m], userns=False, name="joined",
                        edit=lambda c: c["linux"]["namespaces"].append({"type": "user", "path": "/proc/self/ns/user"}))
    r = env.mc("check", "--bundle", joined)
    assert r.returncode == 0, r.stderr


def test_features_lists_the_options(binary):
    r = mc("features", check=True)
    opts = json.loads(r.stdout)["mountOptions"]
    assert "idmap" in opts and "ridmap" in opts
