"""CVE-2022-29162 (issue 11, item 5): `exec --cap` must add the capability
to the bounding, effective and permitted sets only, never to the
inheritable set (nor, without inheritable ones in the spec, to ambient),
as runc does since 1.1.2. An inheritable capability survives the execve
of a program with file capabilities or, raised into ambient, an unprivileged
user's execve of anything.
"""
import os

import pytest

from attackkit import lab  # noqa: F401  (a fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

CAP_NET_RAW = 13
CAP_SYS_ADMIN = 21


def caps(out):
    d = {}
    for line in out.splitlines():
        k, _, v = line.partition(":")
        if k.startswith("Cap"):
            d[k] = int(v.strip(), 16)
    return d


@pytest.fixture
def running(lab):
    cid = lab.id("caps")
    rc, err = lab.create(cid, lab.bundle(["/bin/sleep", "60"]))
    assert rc == 0, err
    lab.start(cid)
    return cid


def test_cve_2022_29162_exec_cap_user_1000(lab, running):
    """Attack: `exec -u 1000 --cap CAP_NET_RAW ID grep Cap /proc/self/status`:
    today CapInh and CapAmb show 0x2000, so the unprivileged user keeps
    CAP_NET_RAW across every execve. Passes if CapInh and CapAmb are 0
    (the default spec has no inheritable set)."""
    r = lab.mc("exec", "-u", "1000", "--cap", "CAP_NET_RAW", running, "grep", "Cap", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    c = caps(r.stdout)
    assert c["CapBnd"] & (1 << CAP_NET_RAW), f"--cap did not reach the bounding set: {r.stdout}"
    assert c["CapInh"] == 0, f"CapInh is {c['CapInh']:#x}"
    assert c["CapAmb"] == 0, f"CapAmb is {c['CapAmb']:#x}"


def test_cve_2022_29162_exec_cap_root_sys_admin(lab, running):
    """Attack: root `exec --cap CAP_SYS_ADMIN`: today CAP_SYS_ADMIN is made
    inheritable. Passes if it is effective (the flag works) but not
    inheritable nor ambient."""
    r = lab.mc("exec", "--cap", "CAP_SYS_ADMIN", running, "grep", "Cap", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    c = caps(r.stdout)
    assert c["CapEff"] & (1 << CAP_SYS_ADMIN), f"--cap CAP_SYS_ADMIN is not effective: {r.stdout}"
    assert not c["CapInh"] & (1 << CAP_SYS_ADMIN), f"CAP_SYS_ADMIN is inheritable: CapInh {c['CapInh']:#x}"
    assert not c["CapAmb"] & (1 << CAP_SYS_ADMIN), f"CAP_SYS_ADMIN is ambient: CapAmb {c['CapAmb']:#x}"
