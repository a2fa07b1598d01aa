"""A container that joins a user namespace by path (as containerd gives
every container of a user-namespaced pod the sandbox's) and asks for new
mount, uts and ipc namespaces: they are made inside that user namespace,
so its root can make its mounts and set its hostname (before, create
failed: "set propagation of / to rslave: operation not permitted"). With a
new pid namespace too (Kubernetes' default for a pod's containers) the init
is cloned from inside that user namespace: it is pid 1 of a pid namespace
whose root can mount its procfs.
"""
import os

import pytest

from attackkit import lab  # noqa: F401  (a fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


@pytest.fixture
def sandbox(lab):
    """A running container with a new user namespace mapped 0 -> 100000: the pod."""
    def edit(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = MAP
        c["linux"]["gidMappings"] = MAP
    cid = lab.id("pod")
    rc, err = lab.create(cid, lab.bundle(["/bin/sleep", "60"], edit=edit))
    assert rc == 0, err
    lab.start(cid)
    yield cid, lab.state_of(cid)["pid"]
    lab.mc("kill", cid, "KILL")
    lab.wait_stopped(cid)
    lab.mc("delete", cid)


def joining(pid, pid_ns_joined=True):
    def edit(c):
        keep = [n for n in c["linux"]["namespaces"] if n["type"] not in ("user", "network", "pid")]
        c["linux"]["namespaces"] = keep + [{"type": "user", "path": f"/proc/{pid}/ns/user"},
                                           {"type": "network", "path": f"/proc/{pid}/ns/net"}]
        c["linux"]["namespaces"].append({"type": "pid", "path": f"/proc/{pid}/ns/pid"} if pid_ns_joined
                                        else {"type": "pid"})
        c["hostname"] = "joined"
    return edit


def test_new_namespaces_inside_a_joined_user_namespace(lab, sandbox):
    _, pid = sandbox
    cid = lab.id("app")
    script = ("hostname; id -u; for n in user mnt uts; do readlink /proc/self/ns/$n; done; "
              "cat /proc/self/uid_map; grep -c ' /proc ' /proc/self/mountinfo")
    rc, err, out = lab.run_to_end(cid, lab.bundle(["/bin/sh", "-c", script], edit=joining(pid)))
    assert rc == 0, err
    lines = out.split()
    assert lines[0] == "joined" and lines[1] == "0", out
    assert lines[2] == os.readlink(f"/proc/{pid}/ns/user"), "not in the pod's user namespace"
    assert lines[3] != os.readlink(f"/proc/{pid}/ns/mnt") and lines[3] != os.readlink("/proc/self/ns/mnt")
    assert lines[4] != os.readlink("/proc/self/ns/uts")
    assert "100000" in out, "the pod's mappings"
    # The new namespaces belong to the pod's user namespace: the host's
    # hostname and mounts are untouched.
    assert os.uname().nodename != "joined"
    state = lab.state_of(cid) if lab.status(cid) else None
    assert state is None or state["status"] == "stopped"
    assert lab.mc("delete", cid).returncode == 0
    assert [p for p in os.listdir("/proc") if p.isdigit() and _is_helper(p)] == []


def _is_helper(p):
    """A process of ours still in the pod's user namespace but not the pod's: a leaked helper."""
    try:
        return open(f"/proc/{p}/cmdline", "rb").read().startswith(b"/tmp/atk-lab") and \
            open(f"/proc/{p}/uid_map").read().split()[1] == "100000"
    except OSError:
        return False


def test_a_new_pid_namespace_inside_a_joined_user_namespace(lab, sandbox):
    _, pid = sandbox
    cid = lab.id("apppid")
    script = "echo pid=$$; hostname; readlink /proc/self/ns/user; readlink /proc/self/ns/pid; ls /proc | grep -c '^[0-9]'"
    rc, err, out = lab.run_to_end(cid, lab.bundle(["/bin/sh", "-c", script], edit=joining(pid, pid_ns_joined=False)))
    assert rc == 0, err
    lines = out.split()
    assert lines[0] == "pid=1" and lines[1] == "joined", out
    assert lines[2] == os.readlink(f"/proc/{pid}/ns/user")
    assert lines[3] not in (os.readlink(f"/proc/{pid}/ns/pid"), os.readlink("/proc/self/ns/pid"))
    assert int(lines[4]) <= 3, "its own procfs: sh, ls and grep only"
    assert lab.mc("delete", cid).returncode == 0
    assert lab.leftovers([cid]) == []


def test_exec_and_kill_in_such_a_container(lab, sandbox):
    """The init cloned from inside is ours as any other: state, exec, kill, delete."""
    _, pid = sandbox
    cid = lab.id("appexec")
    rc, err = lab.create(cid, lab.bundle(["/bin/sleep", "60"], edit=joining(pid, pid_ns_joined=False)))
    assert rc == 0, err
    assert lab.status(cid) == "created"
    lab.start(cid)
    assert lab.status(cid) == "running"
    r = lab.mc("exec", cid, "sh", "-c", "echo $$; id -u; hostname")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[1:] == ["0", "joined"], r.stdout
    assert lab.mc("kill", cid, "KILL").returncode == 0
    assert lab.wait_stopped(cid)
    assert lab.mc("delete", cid).returncode == 0
    assert lab.leftovers([cid]) == []
