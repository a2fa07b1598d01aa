"""CVE-2024-21626 class (issue 11, item 2): the caller's fds reach the
container. The shell that runs the runtime has a host directory open on
fd 7 (`exec 7<DIR`), holding a secret file; the container tries to reach
it through /proc/self/fd/7 (as its cwd) or /proc/1/fd/7.

What should stop it: the child closes (or marks close-on-exec) every fd
above stdio except the runtime's own and --preserve-fds as its first act,
before chdir; and after chdir a cwd outside the container's root is
refused (runc's "(unreachable)" getcwd check).
"""
import os
import subprocess
import uuid

import pytest

from attackkit import lab, with_fd7  # noqa: F401  (lab is a fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

CWDS = {
    "fd": "/proc/self/fd/7",
    "fd-dotdot": "/proc/self/fd/7/../../../../../../../..",
}


@pytest.fixture
def host_dir(lab):
    """A host directory with a secret file; (dir, secret text)."""
    d = os.path.join(lab.dir, "host-" + uuid.uuid4().hex[:6])
    os.mkdir(d)
    secret = "atk-secret-" + uuid.uuid4().hex
    with open(os.path.join(d, "secret"), "w") as f:
        f.write(secret + "\n")
    return d, secret


def reach_script(d):
    """Tries the secret as a relative path (cwd is the host dir) and as the
    host path relative to / (cwd is the host's root, after ../..)."""
    rel = os.path.join(d, "secret").lstrip("/")
    return f"pwd; cat secret; cat '{rel}'; ls"


# leaked: fd 7 is the caller's, which the runtime must close;
# preserved: --preserve-fds 5 passes fds 3-7 on purpose, so only the check
# after chdir (a cwd outside the container's root is refused) stops it.
PASSING = {"leaked": (), "preserved": ("--preserve-fds", "5")}


@pytest.mark.parametrize("passing", sorted(PASSING))
@pytest.mark.parametrize("cwd", sorted(CWDS), ids=sorted(CWDS))
def test_cve_2024_21626_process_cwd(lab, host_dir, cwd, passing):
    """Attack: config.json's process.cwd is /proc/self/fd/7 (or that with
    ../../.. appended): the init chdirs through fd 7 (leaked, or passed
    with --preserve-fds) to the host directory (or the host's root) and
    reads the secret through its cwd. Passes if create refuses, or the
    process cannot read the secret through its cwd."""
    d, secret = host_dir
    cid = lab.id("21626")
    b = lab.bundle(["/bin/sh", "-c", reach_script(d)], edit=lambda c: c["process"].update(cwd=CWDS[cwd]))
    rc, err, out = lab.run_to_end(cid, b, *PASSING[passing], fd7=d)
    print(f"create rc={rc} err={err!r} out={out!r}")
    assert secret not in out, f"the container read the host's secret through fd 7 (cwd {CWDS[cwd]}):\n{out}"
    assert secret not in err
    if rc != 0:
        assert err.count("\n") == 1, err


@pytest.mark.parametrize("passing", sorted(PASSING))
@pytest.mark.parametrize("cwd", sorted(CWDS), ids=sorted(CWDS))
def test_cve_2024_21626_exec_cwd(lab, host_dir, cwd, passing):
    """Attack: `exec --cwd /proc/self/fd/7` (or with ../../..) from a shell
    holding the host directory on fd 7 (leaked, or passed with
    --preserve-fds), into a running container. Passes if exec refuses, or
    the process cannot read the secret through its cwd."""
    d, secret = host_dir
    cid = lab.id("21626x")
    rc, err = lab.create(cid, lab.bundle(["/bin/sleep", "60"]))
    assert rc == 0, err
    lab.start(cid)
    r = subprocess.run(with_fd7(d, lab.cmd("exec", *PASSING[passing], "--cwd", CWDS[cwd], cid,
                                           "/bin/sh", "-c", reach_script(d))),
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, env=lab.environ, timeout=30)
    print(f"exec rc={r.returncode} err={r.stderr!r} out={r.stdout!r}")
    assert secret not in r.stdout, f"exec read the host's secret through fd 7 (cwd {CWDS[cwd]}):\n{r.stdout}"
    assert secret not in r.stderr


def test_cve_2024_21626_created_init_fd(lab, host_dir):
    """Attack: `create` from a shell holding the host directory on fd 7;
    while the container is created, an exec'd process reads
    /proc/1/fd/7/secret (the init still holds the caller's fd 7).
    Passes if there is no fd 7 in the init, or it cannot be followed."""
    d, secret = host_dir
    cid = lab.id("21626c")
    rc, err = lab.create(cid, lab.bundle(["/bin/sleep", "60"]), fd7=d)
    assert rc == 0, err
    assert lab.status(cid) == "created"
    r = lab.mc("exec", cid, "/bin/sh", "-c", "ls -l /proc/1/fd; cat /proc/1/fd/7/secret")
    print(f"exec rc={r.returncode} err={r.stderr!r} out={r.stdout!r}")
    assert secret not in r.stdout, f"an exec'd process read the host's secret through the created init's fd 7:\n{r.stdout}"
