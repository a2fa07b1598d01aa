"""Sysctls that no namespace of the container isolates (issue 11, item 4).

linux.sysctl is written by the init from inside the container's
namespaces: a key no namespace isolates (fs.*, most of kernel.*) is the
host's, and kernel.core_pattern is host root on the next crash. What
should stop it: validation accepts only keys a namespace the container
owns isolates (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* with an
ipc namespace; net.* with a network namespace; kernel.hostname and
kernel.domainname with uts) and refuses the rest at create, with one line
naming the key, before anything is made.

Every host value touched is saved and restored at teardown (host_value).
"""
import os
import uuid

import pytest

from attackkit import host_value, lab, one_line, read, sysctl_path  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def other_number(v):
    return str(int(v.strip()) + 7)


HOST_ONLY = {
    "fs.lease-break-time": other_number,
    "kernel.core_pattern": lambda v: "atk-core-" + uuid.uuid4().hex[:8],
}


@pytest.mark.parametrize("key", sorted(HOST_ONLY))
def test_host_sysctl_is_refused(lab, host_value, key):
    """Attack: `"linux": {"sysctl": {KEY: VALUE}}` for a key no namespace
    isolates: today the init writes the host's value. Passes if create
    fails with one line naming the key and the host value is unchanged."""
    hv = host_value(sysctl_path(key))
    value = HOST_ONLY[key](hv.saved)
    cid = lab.id("sysctl")
    b = lab.bundle(["/bin/true"], edit=lambda c: c["linux"].update(sysctl={key: value}))
    rc, err = lab.create(cid, b)
    assert not hv.changed(), f"the host's {key} was changed to {hv.now()!r} (was {hv.saved!r})"
    assert rc != 0, f"create accepted the host sysctl {key}"
    assert key in one_line(err), err


# (key, namespace that isolates it, a harmless value different from the host's)
NAMESPACED = {
    "net.ipv4.ip_forward": ("network", lambda v: "0" if v.strip() == "1" else "1"),
    "kernel.shmmax": ("ipc", lambda v: "68719476736" if v.strip() != "68719476736" else "68719476737"),
}


@pytest.mark.parametrize("key", sorted(NAMESPACED))
def test_namespaced_sysctl_still_works(lab, host_value, key):
    """Not an attack: a key the container's own namespace isolates is still
    written, inside only. The host value is unchanged."""
    ns, pick = NAMESPACED[key]
    hv = host_value(sysctl_path(key))
    value = pick(hv.saved)
    cid = lab.id("sysctl")

    def edit(c):
        c["linux"]["sysctl"] = {key: value}
        assert any(n["type"] == ns for n in c["linux"]["namespaces"])
    b = lab.bundle(["/bin/cat", sysctl_path(key)], edit=edit)
    rc, err, out = lab.run_to_end(cid, b)
    assert rc == 0, err
    assert out.strip() == value
    assert not hv.changed(), f"the host's {key} was changed to {hv.now()!r}"


# A per-namespace key is the host's when the container shares that
# namespace. (Harmless keys: other helpers' network tests run meanwhile.)
SHARED = {
    "net.core.somaxconn": "network",
    "kernel.msgmax": "ipc",
}


@pytest.mark.parametrize("key", sorted(SHARED))
def test_namespaced_sysctl_without_its_namespace_is_refused(lab, host_value, key):
    """Attack: a net.* (ipc) key with no network (ipc) namespace of the
    container's own: the write lands in the host's namespace. Passes if
    create fails with one line naming the key and the host is unchanged."""
    ns = SHARED[key]
    hv = host_value(sysctl_path(key))
    value = other_number(hv.saved)
    cid = lab.id("sysctl")

    def edit(c):
        c["linux"]["sysctl"] = {key: value}
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != ns]
    rc, err = lab.create(cid, lab.bundle(["/bin/true"], edit=edit))
    assert not hv.changed(), f"the host's {key} was changed to {hv.now()!r} (was {hv.saved!r})"
    assert rc != 0, f"create accepted {key} without a {ns} namespace"
    assert key in one_line(err), err
