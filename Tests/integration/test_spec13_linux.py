"""runtime-spec 1.3 linux settings, as root on a busybox bundle:
linux.timeOffsets (the container's clocks shifted, for the init and an exec'd
process), linux.netDevices (a host interface made by the test moved in,
renamed, with its address, up; what the kernel does with it when the
namespace goes) and linux.intelRdt (refused without resctrl). Nothing may be
left: state, cgroups, interfaces."""
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from conftest import BIN
from test_lifecycle import Env, cgroup_dirs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

DAY = 86400


@pytest.fixture
def env(tmp_path, binary, rootfs):
    e = Env(tmp_path, rootfs)
    yield e
    e.close()


def spec13(cfg, **linux):
    cfg["ociVersion"] = "1.3.0"
    cfg["linux"].update(linux)


def with_namespace(cfg, kind, path=None):
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != kind]
    cfg["linux"]["namespaces"].append({"type": kind, **({"path": path} if path else {})})


def run(env, args, edit, timeout=30):
    b = env.bundle(args, name="run-" + uuid.uuid4().hex[:6], edit=edit)
    cid = env.id()
    r = subprocess.run([BIN, "--root", env.root, "run", "--bundle", b, cid], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return cid, r


def host_uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def one_line_refusal(r, fragment):
    assert r.returncode == 125, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minicontainer: "), r.stderr
    assert fragment in lines[0], r.stderr


def assert_nothing_left(env, cid):
    assert not os.path.exists(os.path.join(env.root, cid)), "state left"
    assert not cgroup_dirs(cid), "cgroup left"


# MARK: linux.timeOffsets

def test_time_offsets_shift_the_init_and_exec(env):
    """/proc/uptime (CLOCK_BOOTTIME) in the container is the host's plus the
    boottime offset, for the init and for a process exec'd into it; the
    kernel shows both offsets in timens_offsets."""
    def edit(cfg):
        with_namespace(cfg, "time")
        spec13(cfg, timeOffsets={"boottime": {"secs": 10 * DAY, "nanosecs": 5}, "monotonic": {"secs": 3 * DAY}})
    b = env.bundle(["sh", "-c", "cat /proc/uptime; cat /proc/self/timens_offsets; exec sleep 60"], edit=edit)
    cid = env.id()
    before = host_uptime()
    code, err = env.create(cid, b)
    assert code == 0, err
    assert env.mc("start", cid).returncode == 0
    deadline = time.time() + 10
    while len(env.output(cid).splitlines()) < 3 and time.time() < deadline:
        time.sleep(0.05)
    out = env.output(cid).splitlines()
    after = host_uptime()
    inside = float(out[0].split()[0])
    assert before + 10 * DAY <= inside <= after + 10 * DAY, (before, inside, after)
    assert out[1].split() == ["monotonic", str(3 * DAY), "0"], out
    assert out[2].split() == ["boottime", str(10 * DAY), "5"], out

    before = host_uptime()
    r = env.mc("exec", cid, "sh", "-c", "cat /proc/uptime; readlink /proc/self/ns/time; readlink /proc/1/ns/time")
    after = host_uptime()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert before + 10 * DAY <= float(lines[0].split()[0]) <= after + 10 * DAY, (before, lines, after)
    assert lines[1] == lines[2] != os.readlink("/proc/self/ns/time"), lines
    assert env.mc("delete", "--force", cid).returncode == 0


def test_time_offsets_shift_clock_gettime_monotonic(env):
    """clock_gettime(CLOCK_MONOTONIC) itself (the vDSO's, through the host's
    python3: the container's root is / without a mount namespace, read only)
    is the host's plus the monotonic offset, which may be negative. The
    kernel refuses an offset that would take the clock below zero, so on a
    machine up for less than 1000 s the offset is half its uptime."""
    back = min(1000, int(time.clock_gettime(time.CLOCK_MONOTONIC)) // 2)
    assert back >= 1
    def edit(cfg):
        cfg["root"] = {"path": "/", "readonly": True}
        cfg["mounts"] = []
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "mount"]
        cfg["linux"].pop("maskedPaths", None)
        cfg["linux"].pop("readonlyPaths", None)
        with_namespace(cfg, "time")
        spec13(cfg, timeOffsets={"monotonic": {"secs": -back, "nanosecs": 0}, "boottime": {"secs": 2 * DAY}})
    before = time.clock_gettime(time.CLOCK_MONOTONIC)
    cid, r = run(env, [sys.executable, "-c",
                       "import time; print(time.clock_gettime(time.CLOCK_MONOTONIC), time.clock_gettime(time.CLOCK_BOOTTIME))"],
                 edit)
    after = time.clock_gettime(time.CLOCK_MONOTONIC)
    assert r.returncode == 0, r.stderr
    mono, boot = map(float, r.stdout.split())
    assert before - back <= mono <= after - back, (before, mono, after)
    assert mono + back + 2 * DAY - 5 <= boot, (mono, boot)
    env.mc("delete", "--force", cid)
    assert_nothing_left(env, cid)


def test_time_offsets_in_a_new_user_namespace(env):
    """With a user namespace of its own (root mapped to 100000) the init still
    writes its offsets: the namespace is owned by its user namespace."""
    def edit(cfg):
        with_namespace(cfg, "user")
        with_namespace(cfg, "time")
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        spec13(cfg, timeOffsets={"boottime": {"secs": 5 * DAY}})
    before = host_uptime()
    cid, r = run(env, ["sh", "-c", "cat /proc/uptime; cat /proc/self/timens_offsets"], edit)
    after = host_uptime()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert before + 5 * DAY <= float(lines[0].split()[0]) <= after + 5 * DAY, (before, lines, after)
    assert lines[1].split() == ["monotonic", "0", "0"] and lines[2].split() == ["boottime", str(5 * DAY), "0"], lines


def test_time_offsets_without_a_new_time_namespace_refused(env):
    cid, r = run(env, ["true"], lambda cfg: spec13(cfg, timeOffsets={"monotonic": {"secs": 1}}))
    one_line_refusal(r, "linux.timeOffsets: offsets need a new time namespace in linux.namespaces")
    assert_nothing_left(env, cid)

    def joined(cfg):
        with_namespace(cfg, "time", "/proc/self/ns/time")
        spec13(cfg, timeOffsets={"monotonic": {"secs": 1}})
    cid, r = run(env, ["true"], joined)
    one_line_refusal(r, "linux.timeOffsets: offsets cannot be set on a joined time namespace")
    assert_nothing_left(env, cid)


def test_time_offset_the_kernel_refuses_leaves_nothing(env):
    """A boottime offset that puts the clock before zero: the kernel's
    refusal is create's error, and nothing is left."""
    def edit(cfg):
        with_namespace(cfg, "time")
        spec13(cfg, timeOffsets={"boottime": {"secs": -int(host_uptime() + 1000 * DAY)}})
    cid, r = run(env, ["true"], edit)
    one_line_refusal(r, "write time offsets (boottime -")
    assert_nothing_left(env, cid)


# MARK: linux.netDevices
#
# The host interfaces are veth pairs the test makes (this kernel has no
# dummy), named mcnd<random>, and removed by the test whatever happens.

def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check:
        assert r.returncode == 0, (args, r.stderr)
    return r


def link(name):
    """The host's link `name` as `ip -j addr` gives it, or None."""
    r = ip("-j", "addr", "show", "dev", name, check=False)
    if r.returncode != 0:
        return None
    got = json.loads(r.stdout)
    return got[0] if got else None


def addresses(l):
    return sorted(f"{a['local']}/{a['prefixlen']}" for a in l.get("addr_info", []) if a.get("scope") == "global")


@pytest.fixture
def veths():
    """Makes host veth pairs on demand: make(address) -> (name, peer)."""
    made = []

    def make(*addrs):
        name = "mcnd" + uuid.uuid4().hex[:8]
        ip("link", "add", name, "type", "veth", "peer", "name", name + "p")
        made.append(name)
        for a in addrs:
            ip("addr", "add", a, "dev", name)
        ip("link", "set", name, "up")
        return name, name + "p"
    yield make
    for name in made:
        for n in (name, name + "p"):
            ip("link", "del", n, check=False)
    left = [l["ifname"] for l in json.loads(ip("-j", "link").stdout) if l["ifname"].startswith(tuple(made))]
    assert not left, f"interfaces left: {left}"


def with_net_admin(cfg):
    for s in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][s] = sorted(set(cfg["process"]["capabilities"][s]) | {"CAP_NET_ADMIN"})


def test_net_device_moved_in_renamed_with_its_addresses(env, veths):
    """The container sees the host's interface under its new name, up, with
    its permanent global addresses (IPv4 and IPv6); the host no longer has
    it while the container lives. When the namespace goes, the kernel
    destroys a virtual device (the spec: only physical ones go back), so
    after delete neither end of the pair is anywhere."""
    name, peer = veths("10.231.77.1/24", "fd00:231:77::1/64")
    def edit(cfg):
        spec13(cfg, netDevices={name: {"name": "inside0"}})
    b = env.bundle(["sh", "-c", "ip -o addr show dev inside0; ip -o link show dev inside0; exec sleep 60"], edit=edit)
    cid = env.id()
    code, err = env.create(cid, b)
    assert code == 0, err
    assert link(name) is None, "the host still has it"
    assert env.mc("start", cid).returncode == 0
    deadline = time.time() + 10
    while "link/" not in env.output(cid) and time.time() < deadline:
        time.sleep(0.05)
    out = env.output(cid)
    assert "inet 10.231.77.1/24" in out and "scope global inside0" in out, out
    assert "inet6 fd00:231:77::1/64 scope global" in out, out
    assert "inside0@" in out and ",UP" in out, out
    assert link(peer) is not None, "the peer stays on the host"
    assert env.mc("delete", "--force", cid).returncode == 0
    # The kernel frees the namespace in the background, the pair with it.
    deadline = time.time() + 10
    while link(peer) is not None and time.time() < deadline:
        time.sleep(0.05)
    assert link(name) is None and link(peer) is None
    assert_nothing_left(env, cid)


def test_net_device_tampered_with_inside_does_not_reach_the_host(env, veths):
    """The container renames its device to the name of another host
    interface and makes a new one under the device's host name; another
    container deletes its device outright. Delete works, moves nothing out
    and leaves the other host interface as it was (same index, address)."""
    moved, _ = veths("10.231.78.1/24")
    bystander, _ = veths("10.231.79.1/24")
    before = link(bystander)
    def edit(cfg):
        with_net_admin(cfg)
        spec13(cfg, netDevices={moved: {"name": "inside0"}})
    script = (f"ip link set dev inside0 down && ip link set dev inside0 name {bystander} && "
              f"ip link add {moved} type veth peer name fake0 && ip addr add 10.231.79.1/24 dev {moved} && "
              f"ip link set {moved} up && echo tampered; exec sleep 60")
    b = env.bundle(["sh", "-c", script], edit=edit)
    cid = env.id()
    code, err = env.create(cid, b)
    assert code == 0, err
    assert env.mc("start", cid).returncode == 0
    deadline = time.time() + 10
    while "tampered" not in env.output(cid) and time.time() < deadline:
        time.sleep(0.05)
    assert "tampered" in env.output(cid), (env.output(cid), (env.tmp / f"{cid}.err").read_text())
    r = env.mc("delete", "--force", cid)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    after = link(bystander)
    assert after is not None and after["ifindex"] == before["ifindex"], (before, after)
    assert addresses(after) == ["10.231.79.1/24"], after
    assert link(moved) is None
    assert_nothing_left(env, cid)

    gone, _ = veths("10.231.80.1/24")
    b = env.bundle(["sh", "-c", "ip link del inside0 && echo deleted; exec sleep 60"], name="b2",
                   edit=lambda cfg: (with_net_admin(cfg), spec13(cfg, netDevices={gone: {"name": "inside0"}})))
    cid = env.id()
    code, err = env.create(cid, b)
    assert code == 0, err
    assert env.mc("start", cid).returncode == 0
    deadline = time.time() + 10
    while "deleted" not in env.output(cid) and time.time() < deadline:
        time.sleep(0.05)
    assert "deleted" in env.output(cid)
    r = env.mc("delete", "--force", cid)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert link(bystander)["ifindex"] == before["ifindex"]
    assert_nothing_left(env, cid)


def test_failed_create_moves_the_device_back(env, veths):
    """A create that fails after the move (a prestart hook fails) puts the
    device back on the host under its name, with its addresses and up;
    nothing else is left. Likewise when a second device is missing: the
    first is not even moved."""
    name, peer = veths("10.231.81.1/24", "fd00:231:81::1/64")
    before = link(name)
    def edit(cfg):
        spec13(cfg, netDevices={name: {"name": "inside0"}})
        cfg["hooks"] = {"prestart": [{"path": "/bin/false"}]}
    cid, r = run(env, ["true"], edit)
    one_line_refusal(r, "prestart hook 0 (/bin/false) exited with status 1")
    after = link(name)
    assert after is not None, "not back on the host"
    assert addresses(after) == addresses(before) == ["10.231.81.1/24", "fd00:231:81::1/64"], after
    assert "UP" in after["flags"], after
    assert_nothing_left(env, cid)

    cid, r = run(env, ["true"], lambda cfg: spec13(cfg, netDevices={name: {}, "mcndmissing0": {}}))
    one_line_refusal(r, 'linux.netDevices.mcndmissing0: there is no interface "mcndmissing0" on the host')
    assert addresses(link(name)) == ["10.231.81.1/24", "fd00:231:81::1/64"]
    assert_nothing_left(env, cid)


def test_net_device_name_taken_in_the_container_refused(env, veths):
    """A device may not take the name of one already in the container (lo
    here): create fails, and the device is still the host's."""
    name, _ = veths("10.231.82.1/24")
    cid, r = run(env, ["true"], lambda cfg: spec13(cfg, netDevices={name: {"name": "lo"}}))
    one_line_refusal(r, f'linux.netDevices.{name}: an interface named "lo" already exists in the container')
    assert addresses(link(name)) == ["10.231.82.1/24"]
    assert_nothing_left(env, cid)


def test_net_devices_refused_without_a_new_network_namespace(env, veths):
    name, _ = veths()
    def edit(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
        spec13(cfg, netDevices={name: {}})
    cid, r = run(env, ["true"], edit)
    one_line_refusal(r, "linux.netDevices: moving devices needs a new network namespace in linux.namespaces")
    assert link(name) is not None
    assert_nothing_left(env, cid)

    cid, r = run(env, ["true"], lambda cfg: spec13(cfg, netDevices={name: {"name": "a/b"}}))
    one_line_refusal(r, f'linux.netDevices.{name}.name: "a/b" must not contain "/" or ":"')
    # A NUL would cut the name short in netlink and name this interface
    # (the JSON parser refuses it); a newline or a space are not names either.
    cid, r = run(env, ["true"], lambda cfg: spec13(cfg, netDevices={name + "\u0000x": {}}))
    one_line_refusal(r, "\\u0000 is not allowed in strings")
    for bad in (name + "\n", name + " x"):
        cid, r = run(env, ["true"], lambda cfg: spec13(cfg, netDevices={bad: {}}))
        one_line_refusal(r, "linux.netDevices: host interface name")
    assert link(name) is not None
    assert_nothing_left(env, cid)


# MARK: linux.intelRdt

def test_intel_rdt_refused_without_resctrl(env):
    """This host has no resctrl mount: the spec's error, and nothing made."""
    with open("/proc/self/mountinfo") as f:
        if any(" - resctrl " in l for l in f):
            pytest.skip("resctrl is mounted here")
    cid, r = run(env, ["true"], lambda cfg: spec13(cfg, intelRdt={"closID": "mcgroup", "l3CacheSchema": "L3:0=f"}))
    one_line_refusal(r, "linux.intelRdt: resctrl is not mounted")
    assert_nothing_left(env, cid)
