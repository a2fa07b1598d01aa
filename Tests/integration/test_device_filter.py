"""The cgroup2 device program (linux.resources.devices), as root, on this
machine's cgroups: `create` attaches it to the container's cgroup2 cgroup
(/sys/fs/cgroup/unified/<id> on this hybrid host, beside the v1 devices
controller), `update` replaces it, `delete` leaves neither program nor
cgroup. A process placed in the unified cgroup only (so the v1 controller,
where it stays in the root cgroup, allows it everything) shows the program
itself decides. Programs are found with our own BPF_PROG_QUERY (ctypes):
nothing needs bpftool."""
import ctypes
import json
import os
import stat
import struct
import time
import pytest
from test_lifecycle import Env, cgroup_dirs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

UNIFIED = next((d for d in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
                if os.path.exists(os.path.join(d, "cgroup.controllers"))), None)

# bpf(2), x86_64.
_libc = ctypes.CDLL(None, use_errno=True)
SYS_BPF = 321
BPF_PROG_GET_NEXT_ID, BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD, BPF_PROG_QUERY = 11, 13, 15, 16
BPF_CGROUP_DEVICE, BPF_PROG_TYPE_CGROUP_DEVICE = 6, 15


def _bpf(cmd, attr):
    r = _libc.syscall(SYS_BPF, cmd, attr, len(attr))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def attached(cgroup):
    """Ids of the device programs attached to the cgroup2 directory."""
    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        ids = (ctypes.c_uint32 * 64)()
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("II", attr, 0, fd, BPF_CGROUP_DEVICE)
        struct.pack_into("QI", attr, 16, ctypes.addressof(ids), 64)
        _bpf(BPF_PROG_QUERY, attr)
        return list(ids[:struct.unpack_from("I", attr, 24)[0]])
    finally:
        os.close(fd)


def device_programs():
    """Ids of every CGROUP_DEVICE program the kernel holds."""
    out, cur = set(), 0
    while True:
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("I", attr, 0, cur)
        try:
            _bpf(BPF_PROG_GET_NEXT_ID, attr)
        except OSError:
            return out
        cur = struct.unpack_from("I", attr, 4)[0]
        a = ctypes.create_string_buffer(128)
        struct.pack_into("I", a, 0, cur)
        try:
            fd = _bpf(BPF_PROG_GET_FD_BY_ID, a)
        except OSError:
            continue  # freed meanwhile
        try:
            info = ctypes.create_string_buffer(256)
            q = ctypes.create_string_buffer(128)
            struct.pack_into("IIQ", q, 0, fd, len(info), ctypes.addressof(info))
            _bpf(BPF_OBJ_GET_INFO_BY_FD, q)
            if struct.unpack_from("I", info, 0)[0] == BPF_PROG_TYPE_CGROUP_DEVICE:
                out.add(cur)
        finally:
            os.close(fd)


def gone(ids, within=3.0):
    """Whether none of `ids` is still a program (the kernel frees them after an RCU grace period)."""
    deadline = time.time() + within
    while device_programs() & set(ids):
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def opens_in(cgroup, path):
    """'ok', 'EPERM' or another errno name: a child placed in `cgroup` (its
    cgroup.procs) opening `path` read-only."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            os.read(r, 1)
            try:
                os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
                code = 0
            except OSError as e:
                code = e.errno
            os._exit(code)
        finally:
            os._exit(255)
    os.close(r)
    try:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(pid))
    finally:
        os.write(w, b"g")
        os.close(w)
        _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return "ok" if code == 0 else ("EPERM" if code == 1 else os.strerror(code) if code < 255 else "child failed")


@pytest.fixture
def env(tmp_path, binary, rootfs):
    if UNIFIED is None:
        pytest.skip("no cgroup2 hierarchy")
    e = Env(tmp_path, rootfs)
    e.programs_before = device_programs()
    yield e
    e.close()
    assert gone(device_programs() - e.programs_before), "device programs left behind"


def tun_node(env):
    """A node with /dev/net/tun's numbers (10:200) on the host, outside every container."""
    p = str(env.tmp / "tun")
    if not os.path.exists(p):
        os.mknod(p, 0o600 | stat.S_IFCHR, os.makedev(10, 200))
    return p


def with_mknod(cfg):
    caps = cfg["process"].setdefault("capabilities", {})
    for k in ("bounding", "effective", "permitted"):
        caps[k] = sorted(set(caps.get(k, [])) | {"CAP_MKNOD"})


def start_sleeper(env, edit=None):
    def ed(cfg):
        with_mknod(cfg)
        if edit:
            edit(cfg)
    b = env.bundle(["/bin/sleep", "600"], name="s-" + os.urandom(3).hex(), edit=ed)
    cid = env.id()
    code, err = env.create(cid, b)
    assert code == 0, err
    assert err == "", err  # no warning: the program was attached
    env.mc("start", cid, check=True)
    return cid


INSIDE_TUN = "mknod /dev/t c 10 200 && { exec 3< /dev/t; } 2>&1 && echo opened"


def test_create_attaches_update_replaces_delete_removes(env):
    cid = start_sleeper(env)  # `spec`'s rules: deny all (then the defaults)
    ucg = os.path.join(UNIFIED, cid)
    first = attached(ucg)
    assert len(first) == 1, first

    # Inside: the defaults' devices work, a tun node made there does not open.
    r = env.mc("exec", cid, "/bin/sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c")
    assert r.returncode == 0 and r.stdout.strip() == "4", r.stdout + r.stderr
    r = env.mc("exec", cid, "/bin/sh", "-c", INSIDE_TUN)
    assert "Operation not permitted" in r.stdout and "opened" not in r.stdout, r.stdout + r.stderr

    # The program alone: a process in the unified cgroup only (v1: the root's allow-all).
    tun = tun_node(env)
    assert opens_in(ucg, "/dev/null") == "ok"
    assert opens_in(ucg, "/dev/zero") == "ok"
    assert opens_in(ucg, tun) == "EPERM"

    # update: tun allowed; the new program in place of the old.
    rules = {"devices": [{"allow": False, "access": "rwm"},
                         {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"}]}
    r = env.mc("update", "--resources", "-", cid, input=json.dumps(rules))
    assert r.returncode == 0, r.stderr
    second = attached(ucg)
    assert len(second) == 1 and second != first, (first, second)
    assert gone(first), "the old program is freed"
    assert opens_in(ucg, tun) == "ok"
    assert opens_in(ucg, "/dev/null") == "ok"
    r = env.mc("exec", cid, "/bin/sh", "-c", "rm -f /dev/t; " + INSIDE_TUN)
    assert "opened" in r.stdout, r.stdout + r.stderr  # the v1 controller took the new rules too

    # An update of other limits leaves the device program alone.
    env.mc("update", "--pids-limit", "50", cid, check=True)
    assert attached(ucg) == second

    env.mc("delete", "--force", cid, check=True)
    assert not cgroup_dirs(cid)
    assert gone(second)


def test_no_device_rules_no_program(env):
    # As the v1 path writes nothing then, nothing is attached.
    cid = start_sleeper(env, edit=lambda cfg: cfg["linux"]["resources"].pop("devices", None))
    assert attached(os.path.join(UNIFIED, cid)) == []
    env.mc("delete", "--force", cid, check=True)
    assert not cgroup_dirs(cid)


def test_bad_rule_fails_create_leaving_nothing(env):
    def bad(cfg):
        cfg["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1 << 40, "access": "r"})
    b = env.bundle(["/bin/true"], edit=bad)
    cid = env.id()
    code, err = env.create(cid, b)
    assert code == 125, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "linux.resources.devices[1].major" in lines[0], err
    assert not cgroup_dirs(cid)
    assert not os.path.exists(os.path.join(env.root, cid))
    assert not device_programs() - env.programs_before


def test_create_failing_after_the_program_leaves_nothing(env):
    # linux.resources.unified is applied after the devices: the program is attached, then the create fails.
    b = env.bundle(["/bin/true"], edit=lambda cfg: cfg["linux"]["resources"].update(unified={"bad": "1"}))
    cid = env.id()
    code, err = env.create(cid, b)
    assert code == 125, err
    assert len(err.strip().splitlines()) == 1, err
    assert not cgroup_dirs(cid)
    assert not os.path.exists(os.path.join(env.root, cid))
    assert gone(device_programs() - env.programs_before)


def test_bad_rule_on_update_changes_nothing(env):
    cid = start_sleeper(env)
    ucg = os.path.join(UNIFIED, cid)
    before = attached(ucg)
    bad = {"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "minor": 1 << 33}],
           "pids": {"limit": 33}}
    r = env.mc("update", "--resources", "-", cid, input=json.dumps(bad))
    assert r.returncode == 125, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "linux.resources.devices[1].minor" in lines[0], r.stderr
    assert attached(ucg) == before
    pids = "/sys/fs/cgroup/pids/" + cid + "/pids.max"
    if os.path.exists(pids):
        with open(pids) as f:
            assert f.read().strip() != "33", "nothing of the update was written"
    env.mc("delete", "--force", cid, check=True)
