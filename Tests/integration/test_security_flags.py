"""The security run flags for real: --cap-add, --cap-drop, --privileged,
--security-opt, --device, --sysctl, --userns. Each container runs with
`run --rootfs --network none` (own --root and data directory, as test_run.py);
teardown checks nothing is left behind. Bad values: one stderr line, exit 125,
no container directory, state or cgroup.
"""
import os
import stat
import subprocess

import pytest

from conftest import CAPS, ROOTFS, needs_root
from test_run import Env, env, one_line_error  # noqa: F401 (env is a fixture)

pytestmark = needs_root()

DEFAULT = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
           "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"]


def mask(names):
    return sum(1 << CAPS.index(n) for n in names)


def status(text, field):
    """A field of /proc/self/status output."""
    [line] = [l for l in text.splitlines() if l.startswith(field + ":")]
    return line.split(":", 1)[1].strip()


def own_bounding():
    with open("/proc/self/status") as f:
        return int(status(f.read(), "CapBnd"), 16)


# env: test_run.py's fixture (own --root and data directory; teardown checks nothing is left).


def run(env, *args):
    return env.mc("run", "--rm", "--rootfs", ROOTFS, "--network", "none", *args)


def sh(env, flags, script):
    r = run(env, *flags, "/bin/sh", "-c", script)
    assert r.returncode == 0, r.stderr
    return r.stdout


def proc_status(env, *flags):
    return sh(env, flags, "cat /proc/self/status")


# ------------------------------------------------------------ capabilities

def test_default_capabilities(env):
    s = proc_status(env)
    assert int(status(s, "CapEff"), 16) == mask(DEFAULT)
    assert int(status(s, "CapBnd"), 16) == mask(DEFAULT)
    assert status(s, "Seccomp") == "2"  # the default profile
    assert status(s, "NoNewPrivs") == "0"


def test_cap_drop_all(env):
    s = proc_status(env, "--cap-drop", "ALL")
    for f in ("CapEff", "CapPrm", "CapBnd"):
        assert status(s, f) == "0000000000000000", f


def test_cap_add_sys_admin(env):
    s = proc_status(env, "--cap-add", "SYS_ADMIN")
    assert int(status(s, "CapEff"), 16) == mask(DEFAULT + ["SYS_ADMIN"])
    # With it, a mount works inside (it fails without it).
    assert sh(env, ["--cap-add", "sys_admin"], "mount -t tmpfs t /tmp && echo mounted") == "mounted\n"
    r = run(env, "/bin/sh", "-c", "mount -t tmpfs t /tmp")
    assert r.returncode != 0


def test_cap_drop_all_then_add_one(env):
    s = proc_status(env, "--cap-drop", "all", "--cap-add", "cap_net_raw")
    assert int(status(s, "CapEff"), 16) == mask(["NET_RAW"])


def test_cap_drop_one(env):
    s = proc_status(env, "--cap-drop", "chown")
    assert int(status(s, "CapEff"), 16) == mask([c for c in DEFAULT if c != "CHOWN"])
    r = run(env, "--cap-drop", "CHOWN", "--user", "0", "/bin/sh", "-c", "touch /tmp/f && chown 1 /tmp/f")
    assert r.returncode != 0


# ------------------------------------------------------------ privileged

def test_privileged(env):
    out = sh(env, ["--privileged"], "cat /proc/self/status; echo ---; grep ' /sys ' /proc/mounts; echo ---; ls /dev")
    s, mounts, devs = out.split("---\n")
    # Every capability this runtime can give: 0x1ffffffffff on a host whose
    # bounding set is full (41 capabilities).
    want = (1 << len(CAPS)) - 1
    assert int(status(s, "CapEff"), 16) == want & own_bounding()
    assert int(status(s, "CapBnd"), 16) == want & own_bounding()
    assert status(s, "Seccomp") == "0"
    assert "sysfs /sys sysfs rw," in mounts, mounts
    # The host's devices are there (not only the defaults).
    host = {n for n in os.listdir("/dev") if stat.S_ISCHR(os.lstat("/dev/" + n).st_mode) and n != "console"}
    inside = set(devs.split())
    assert host - inside == set(), host - inside
    assert len(inside) > 20


def test_privileged_can_write_sys_and_masked_paths_are_gone(env):
    # /proc/kcore is masked (a /dev/null bind) and /proc/sys read-only otherwise.
    out = sh(env, ["--privileged"], "grep -c ' /proc/sys ' /proc/mounts; grep -c ' /proc/kcore ' /proc/mounts; "
                                    "mount -o remount,ro /sys && echo remounted")
    assert out.splitlines() == ["0", "0", "remounted"], out
    out = sh(env, [], "grep -c ' /proc/sys ' /proc/mounts; grep ' /sys ' /proc/mounts")
    assert out.splitlines()[0] != "0" and "sysfs /sys sysfs ro," in out


def test_privileged_with_cap_drop(env):
    s = proc_status(env, "--privileged", "--cap-drop", "sys_admin")
    want = ((1 << len(CAPS)) - 1) & own_bounding() & ~mask(["SYS_ADMIN"])
    assert int(status(s, "CapEff"), 16) == want


# ------------------------------------------------------------ security-opt

@pytest.mark.parametrize("opt", ["no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"])
def test_no_new_privileges(env, opt):
    assert status(proc_status(env, "--security-opt", opt), "NoNewPrivs") == "1"


def test_no_new_privileges_false(env):
    assert status(proc_status(env, "--security-opt", "no-new-privileges=false"), "NoNewPrivs") == "0"


def test_seccomp_unconfined(env):
    assert status(proc_status(env, "--security-opt", "seccomp=unconfined"), "Seccomp") == "0"


def test_seccomp_profile_file(env, tmp_path):
    # A profile that refuses mkdir with EPERM (1) and allows the rest.
    p = tmp_path / "profile.json"
    p.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],'
                 ' "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}')
    r = run(env, "--security-opt", f"seccomp={p}", "/bin/sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x")
    assert r.returncode != 0 and "Seccomp:\t2" in r.stdout
    assert "not permitted" in r.stderr.lower(), r.stderr
    assert sh(env, [], "mkdir /tmp/x && echo made") == "made\n"


def test_apparmor_unconfined_runs(env):
    assert sh(env, ["--security-opt", "apparmor=unconfined", "--security-opt", "label=disable"], "echo ok") == "ok\n"


def test_userns_host(env):
    assert sh(env, ["--userns", "host"], "echo ok") == "ok\n"
    assert sh(env, ["--userns="], "echo ok") == "ok\n"


# ------------------------------------------------------------ devices

def char_device():
    """A character device of the host that is not among the defaults."""
    for p in ("/dev/fuse", "/dev/loop-control", "/dev/kmsg", "/dev/mem"):
        if os.path.exists(p) and stat.S_ISCHR(os.stat(p).st_mode):
            return p
    pytest.skip("no suitable character device")


def test_device(env):
    dev = char_device()
    st = os.stat(dev)
    out = sh(env, ["--device", dev], f"stat -c '%t:%T %F' {dev}; exec 3<>{dev} && echo opened")
    numbers, opened = out.splitlines()
    assert numbers == f"{os.major(st.st_rdev):x}:{os.minor(st.st_rdev):x} character special file", out
    assert opened == "opened"
    # Without the flag it is not there.
    assert sh(env, [], f"test -e {dev} && echo there || echo absent") == "absent\n"


def test_device_renamed_and_read_only(env):
    dev = char_device()
    out = sh(env, ["--device", f"{dev}:/dev/mydev:r"], "ls /dev/mydev; exec 3</dev/mydev && echo read; "
                                                      "(exec 4>/dev/mydev) 2>/dev/null && echo wrote || echo refused")
    assert out.splitlines() == ["/dev/mydev", "read", "refused"], out


# ------------------------------------------------------------ sysctl

def test_sysctl_net_in_own_namespace(env):
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        before = f.read()
    want = "0" if before.strip() == "1" else "1"
    out = sh(env, ["--sysctl", f"net.ipv4.ip_forward={want}"], "cat /proc/sys/net/ipv4/ip_forward")
    assert out == want + "\n"
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == before


def test_sysctl_ipc(env):
    with open("/proc/sys/kernel/shmmax") as f:
        before = f.read()
    out = sh(env, ["--sysctl", "kernel.shmmax=68719476736", "--sysctl", "fs.mqueue.msg_max=64"],
             "cat /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max")
    assert out.split() == ["68719476736", "64"]
    with open("/proc/sys/kernel/shmmax") as f:
        assert f.read() == before


# ------------------------------------------------------------ bad values

BAD = [
    ["--cap-add", "FLY"],
    ["--cap-drop", "CAP_"],
    ["--security-opt", "bogus=1"],
    ["--security-opt", "no-new-privileges=maybe"],
    ["--security-opt", "seccomp=/nonexistent/profile.json"],
    ["--security-opt", "label=colour:red"],
    ["--security-opt", "apparmor="],
    ["--device", "/dev/nonexistent"],
    ["--device", "/etc/passwd"],
    ["--device", "/dev/null:rwx"],
    ["--device", "/dev/null:relative"],
    ["--sysctl", "kernel.core_pattern=|/x"],
    ["--sysctl", "kernel.hostname=x"],
    ["--sysctl", "vm.swappiness=1"],
    ["--sysctl", "noequals"],
    ["--sysctl", "=1"],
    ["--userns", "keep-id"],
]


@pytest.mark.parametrize("flags", BAD, ids=[" ".join(b) for b in BAD])
def test_bad_values(env, flags):
    r = run(env, *flags, "/bin/true")
    one_line_error(r)
    assert env.ids() == []
    env.assert_clean()


def test_net_sysctl_refused_with_host_network(env):
    r = env.mc("run", "--rm", "--rootfs", ROOTFS, "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "/bin/true")
    one_line_error(r)
    assert "host" in r.stderr
    env.assert_clean()


def test_seccomp_profile_parse_error_names_the_place(env, tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read"}]}')
    r = run(env, "--security-opt", f"seccomp={p}", "/bin/true")
    one_line_error(r)
    assert str(p) in r.stderr and "syscalls[0]" in r.stderr, r.stderr
    p.write_text('{"defaultAction": ')
    r = run(env, "--security-opt", f"seccomp={p}", "/bin/true")
    one_line_error(r)
    assert f"{p}:1" in r.stderr, r.stderr
    env.assert_clean()


def test_help_lists_the_flags(binary):
    from conftest import mc
    for cmd in ("run", "spec"):
        out = mc(cmd, "--help").stdout
        for f in ("--cap-add", "--cap-drop", "--privileged", "--security-opt", "--device", "--sysctl", "--userns"):
            assert f in out, (cmd, f)


def test_docker_profile_format_is_refused(env, tmp_path):
    # Read as linux.seccomp, its capability-conditional rules would all apply.
    p = tmp_path / "docker.json"
    p.write_text('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["bpf"], "action": "SCMP_ACT_ALLOW",'
                 ' "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}')
    r = run(env, "--security-opt", f"seccomp={p}", "/bin/true")
    one_line_error(r)
    assert "syscalls[0].includes" in r.stderr and "Docker" in r.stderr, r.stderr
    env.assert_clean()
