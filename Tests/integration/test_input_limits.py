"""Bad input an attacker controls (a config field, an id, an argument), as
root on a busybox bundle (issue 11, items 4, 5, 7, 9, 10): each refusal is one
line on stderr, `minicontainer: create ID: ...`, exit 125, and leaves nothing
behind (no state, no cgroup, no mount); what is accepted has its effect in the
container only.
"""
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import BIN, ROOTFS, needs_root

pytestmark = needs_root()

MAX_LINE = 1024 + len("minicontainer: create ") + 200 + 64  # message cap, command, id, markers


def cgroup_dirs(cid):
    found = []
    for base, dirs, _ in os.walk("/sys/fs/cgroup"):
        if cid in dirs:
            found.append(os.path.join(base, cid))
        if base.count("/") > 5:
            dirs[:] = []
    return found


def mounts_with(text):
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if text in l]


class Env:
    """A private --root and data directory; checks for leftovers."""

    def __init__(self, tmp_path):
        tag = uuid.uuid4().hex[:12]
        self.tmp = tmp_path
        self.root = f"/run/minicontainer-test/{tag}"
        self.data = f"/run/minicontainer-test-data/{tag}"
        self.environ = dict(os.environ, MINICONTAINER_DATA=self.data)
        self.ids = []

    def id(self):
        cid = "il" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        return cid

    def mc(self, *args, timeout=60, input=None):
        return subprocess.run([BIN, "--root", self.root, *args], capture_output=True, text=True,
                              env=self.environ, timeout=timeout, input=input)

    def create(self, cid, bundle):
        """create with stdio in files (the init keeps create's stdio)."""
        with open(self.tmp / f"{cid}.err", "w") as err:
            r = subprocess.run([BIN, "--root", self.root, "create", "--bundle", bundle, cid], stdout=subprocess.DEVNULL,
                               stderr=err, stdin=subprocess.DEVNULL, env=self.environ, timeout=30)
        assert r.returncode == 0, (self.tmp / f"{cid}.err").read_text()

    def bundle(self, args=("true",), edit=None, name="b"):
        d = self.tmp / name
        d.mkdir(exist_ok=True)
        r = self.mc("spec", "--bundle", str(d), "--force")
        assert r.returncode == 0, r.stderr
        cfg = json.loads((d / "config.json").read_text())
        cfg["root"]["path"] = ROOTFS
        cfg["process"]["args"] = list(args)
        cfg["process"]["terminal"] = False
        if edit:
            edit(cfg)
        (d / "config.json").write_text(json.dumps(cfg))
        return str(d)

    def refused(self, bundle, fragment, cid=None, command="create"):
        """`command` on the bundle fails as the module docstring says."""
        cid = cid if cid is not None else self.id()
        r = self.mc(command, "--bundle", bundle, cid)
        assert r.returncode == 125, (r.returncode, r.stdout, r.stderr[:2000])
        one_line(r.stderr, fragment)
        self.nothing_left(cid)
        return r.stderr

    def nothing_left(self, cid):
        assert not os.path.exists(os.path.join(self.root, cid)), os.listdir(self.root)
        if "\n" not in cid and "/" not in cid and len(cid) < 200:
            assert cgroup_dirs(cid) == []

    def cleanup(self):
        for cid in self.ids:
            self.mc("delete", "--force", cid)
        for cid in self.ids:
            self.nothing_left(cid)
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.data, ignore_errors=True)


def one_line(stderr, fragment=""):
    assert stderr.endswith("\n") and stderr.count("\n") == 1, repr(stderr[:3000])
    assert stderr.startswith("minicontainer: "), stderr
    assert len(stderr.encode()) <= MAX_LINE, (len(stderr.encode()), stderr[:300])
    assert fragment in stderr, stderr


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.cleanup()


def read(path):
    with open(path) as f:
        return f.read().strip()


# MARK: item 4, sysctls

def with_sysctl(key, value, drop=None, path=None):
    def edit(cfg):
        cfg["linux"]["sysctl"] = {key: value}
        ns = cfg["linux"]["namespaces"]
        if drop:
            ns[:] = [n for n in ns if n["type"] != drop]
            if drop == "uts":
                cfg.pop("hostname", None)
        if path:
            for n in ns:
                if n["type"] == path[0]:
                    n["path"] = path[1]
    return edit


@pytest.mark.parametrize("key,fragment", [
    ("fs.lease-break-time", '"fs.lease-break-time" is not isolated by any namespace of the container'),
    ("kernel.core_pattern", '"kernel.core_pattern" is not isolated'),
    ("kernel/core_pattern", '"kernel/core_pattern" is not isolated'),
    ("net/../kernel/core_pattern", "is not a sysctl name"),
    ("vm.overcommit_memory", "is not isolated"),
    ("user.max_user_namespaces", "is not isolated"),
    ("net.core.bpf_jit_enable", "is global"),
    ("net.ipv4.neigh.default.gc_thresh1", "is global"),
])
def test_host_sysctls_are_refused(env, key, fragment):
    host = "/proc/sys/" + key.replace(".", "/")
    before = read(host) if os.path.exists(host) and "/../" not in host else None
    stderr = env.refused(env.bundle(edit=with_sysctl(key, "1")), fragment)
    assert "linux.sysctl: " in stderr
    if before is not None:
        assert read(host) == before


@pytest.mark.parametrize("key,drop,fragment", [
    ("net.ipv4.ip_forward", "network", "isolated by the network namespace, which the container does not have"),
    ("kernel.shmmni", "ipc", "isolated by the ipc namespace"),
    ("fs.mqueue.queues_max", "ipc", "isolated by the ipc namespace"),
    ("kernel.domainname", "uts", "isolated by the uts namespace"),
])
def test_namespaced_sysctls_need_their_namespace(env, key, drop, fragment):
    host = "/proc/sys/" + key.replace(".", "/")
    before = read(host)
    env.refused(env.bundle(edit=with_sysctl(key, "123", drop=drop)), fragment)
    assert read(host) == before


@pytest.mark.parametrize("kind,key", [("network", "net.ipv4.ip_forward"), ("ipc", "kernel.shmmni")])
def test_joined_host_namespace_is_refused(env, kind, key):
    host = "/proc/sys/" + key.replace(".", "/")
    before = read(host)
    proc = {"network": "net"}.get(kind, kind)
    # /proc/self is the runtime reading the config: the host's namespace.
    bundle = env.bundle(edit=with_sysctl(key, "1" if before != "1" else "0", path=(kind, f"/proc/self/ns/{proc}")))
    env.refused(bundle, "is the host's own")
    assert read(host) == before


def test_namespaced_sysctls_apply_in_the_container_only(env):
    forward, shmmni = read("/proc/sys/net/ipv4/ip_forward"), read("/proc/sys/kernel/shmmni")
    def edit(cfg):
        cfg["linux"]["sysctl"] = {"net/ipv4/ip_forward": "0" if forward == "1" else "1", "kernel.shmmni": "1234",
                                  "kernel.domainname": "il-domain"}
    b = env.bundle(args=["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni "
                                     "/proc/sys/kernel/domainname"], edit=edit)
    r = env.mc("run", "--bundle", b, env.id())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0" if forward == "1" else "1", "1234", "il-domain"]
    assert read("/proc/sys/net/ipv4/ip_forward") == forward and read("/proc/sys/kernel/shmmni") == shmmni


# MARK: item 5, exec --cap (CVE-2022-29162)

def caps(text):
    return {l.split(":")[0]: int(l.split()[1], 16) for l in text.splitlines() if l.startswith("Cap")}


def test_exec_cap_is_never_inheritable_or_ambient(env):
    cid = env.id()
    b = env.bundle(args=["sleep", "100"])
    env.create(cid, b)
    assert env.mc("start", cid).returncode == 0
    net_raw, sys_admin = 1 << 13, 1 << 21
    r = env.mc("exec", "-u", "1000", "--cap", "CAP_NET_RAW", cid, "grep", "Cap", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    c = caps(r.stdout)
    assert c["CapInh"] == 0 and c["CapAmb"] == 0 and c["CapPrm"] == 0 and c["CapEff"] == 0, r.stdout
    assert c["CapBnd"] & net_raw
    r = env.mc("exec", "--cap", "CAP_SYS_ADMIN", cid, "grep", "Cap", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    c = caps(r.stdout)
    assert c["CapInh"] == 0 and c["CapAmb"] == 0, r.stdout
    assert c["CapPrm"] & sys_admin and c["CapEff"] & sys_admin and c["CapBnd"] & sys_admin


# MARK: item 7, overlay option injection

def test_rootfs_path_cannot_inject_overlay_options(env, tmp_path):
    # The attacker's rootfs: a directory whose name is the option string's
    # syntax, holding a busybox; with the injection the container's root
    # would be the host's /etc under it.
    evil = tmp_path / ("x,lowerdir=" + str(tmp_path / "x") + ":/etc")
    (tmp_path / "x").mkdir()
    (evil / "bin").mkdir(parents=True)
    shutil.copy(os.path.join(ROOTFS, "bin", "busybox"), evil / "bin" / "busybox")
    r = env.mc("run", "--rm", "--network", "none", "--rootfs", str(evil), "/bin/busybox", "ls", "/")
    assert r.returncode == 0, r.stderr
    names = r.stdout.split()
    assert "bin" in names and "shadow" not in names and "passwd" not in names and len(names) < 10, names
    r = env.mc("run", "--rm", "--network", "none", "--rootfs", str(evil), "/bin/busybox", "cat", "/shadow")
    assert r.returncode != 0 and "root:" not in r.stdout
    assert mounts_with(env.data) == []


# MARK: item 9, confinement that cannot be applied

def lsm_enabled():
    try:
        aa = read("/sys/module/apparmor/parameters/enabled").startswith("Y")
    except OSError:
        aa = False
    return aa or os.path.exists("/sys/fs/selinux/enforce")


@pytest.mark.skipif(lsm_enabled(), reason="this host has an LSM: the fields are applied, not refused")
@pytest.mark.parametrize("field,fragment", [
    ("apparmorProfile", 'process.apparmorProfile "il-profile": AppArmor is not enabled on this host'),
    ("selinuxLabel", 'process.selinuxLabel "il-profile": SELinux is not enabled on this host'),
    ("mountLabel", 'linux.mountLabel "il-profile": SELinux is not enabled on this host'),
])
def test_lsm_fields_are_refused_without_the_module(env, field, fragment):
    def edit(cfg):
        (cfg["linux"] if field == "mountLabel" else cfg["process"])[field] = "il-profile"
    env.refused(env.bundle(edit=edit), fragment)
    env.refused(env.bundle(edit=edit), fragment, command="run")


@pytest.mark.skipif(lsm_enabled(), reason="this host has an LSM")
def test_exec_lsm_flags_are_refused_without_the_module(env):
    cid = env.id()
    env.create(cid, env.bundle(args=["sleep", "100"]))
    for flag, fragment in [("--apparmor", "AppArmor is not enabled"), ("--process-label", "SELinux is not enabled")]:
        r = env.mc("exec", flag, "il-x", cid, "true")
        assert r.returncode == 125
        one_line(r.stderr, fragment)


# MARK: item 10, bounded one-line messages

def test_100000_groups(env):
    def edit(cfg):
        cfg["process"]["user"]["additionalGids"] = list(range(100_000))
    env.refused(env.bundle(edit=edit), "100000 groups, more than the kernel allows (65536)")


def test_4k_mount_paths(env, tmp_path):
    long = "/" + "a" * 4000 + "/../x"
    def dotdot(cfg):
        cfg["mounts"].append({"destination": long, "type": "tmpfs", "source": "tmpfs"})
    env.refused(env.bundle(edit=dotdot), "must not contain")
    def too_long(cfg):
        cfg["mounts"].append({"destination": "/" + "c" * 5000, "type": "tmpfs", "source": "tmpfs"})
    env.refused(env.bundle(edit=too_long, name="b2"), "more than a path may be")
    # A 4 KiB source that does not exist: refused by the kernel, in the init.
    deep = "/".join(["b" * 200] * 20)
    def missing(cfg):
        # Under /dev, the spec's tmpfs: the init makes the destination's
        # directories before the bind fails, and they must not land in the
        # shared rootfs.
        cfg["mounts"].append({"destination": "/dev/" + "/".join(["a" * 200] * 20), "type": "bind",
                              "source": "/nonexistent/" + deep, "options": ["rbind"]})
    stderr = env.refused(env.bundle(edit=missing, name="b3"), "no such file or directory")
    assert "bytes cut" in stderr


@pytest.mark.parametrize("cid", ["il-a\nb", "il-\x1b[31mred", "il-" + "x" * 100_000, "il-\u202eevil"])
def test_bad_ids(env, cid):
    stderr = env.refused(env.bundle(), "invalid container id", cid=cid)
    assert "\x1b" not in stderr and "\u202e" not in stderr


def test_long_cwd_and_env(env):
    def cwd(cfg):
        cfg["process"]["cwd"] = "/" + "d" * 100_000 + "\nX"
    env.refused(env.bundle(edit=cwd), "chdir")
    def bad_env(cfg):
        cfg["process"]["env"] = ["NOEQUALS" + "e" * 100_000 + "\n"]
    env.refused(env.bundle(edit=bad_env, name="b2"), "is not of the form KEY=VALUE")


def test_json_log_is_bounded_too(env, tmp_path):
    log = tmp_path / "log.json"
    r = subprocess.run([BIN, "--root", env.root, "--log", str(log), "--log-format", "json", "create", "--bundle",
                        env.bundle(), "il-\n" + "x" * 100_000], capture_output=True, text=True)
    assert r.returncode == 125
    one_line(r.stderr, "invalid container id")
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and len(lines[0]) < MAX_LINE + 100, len(lines[0])
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and "\n" not in entry["msg"] and "bytes cut" in entry["msg"]
