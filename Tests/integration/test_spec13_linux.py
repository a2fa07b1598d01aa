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
    is the host's plus the monotonic offset, which may be negative."""
    def edit(cfg):
        cfg["root"] = {"path": "/", "readonly": True}
        cfg["mounts"] = []
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "mount"]
        cfg["linux"].pop("maskedPaths", None)
        cfg["linux"].pop("readonlyPaths", None)
        with_namespace(cfg, "time")
        spec13(cfg, timeOffsets={"monotonic": {"secs": -1000, "nanosecs": 0}, "boottime": {"secs": 2 * DAY}})
    before = time.clock_gettime(time.CLOCK_MONOTONIC)
    cid, r = run(env, [sys.executable, "-c",
                       "import time; print(time.clock_gettime(time.CLOCK_MONOTONIC), time.clock_gettime(time.CLOCK_BOOTTIME))"],
                 edit)
    after = time.clock_gettime(time.CLOCK_MONOTONIC)
    assert r.returncode == 0, r.stderr
    mono, boot = map(float, r.stdout.split())
    assert before - 1000 <= mono <= after - 1000, (before, mono, after)
    assert mono + 1000 + 2 * DAY - 5 <= boot, (mono, boot)
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
