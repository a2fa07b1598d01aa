"""Attack: the container's /etc/passwd (or /etc/group) is a symlink to a
host file, and `exec --user NAME` (or `run --user NAME`) makes the runtime
look the name up on the host's side. Before issue 14 the runtime read
merged/etc/passwd with open(2), following the absolute symlink out of the
container's root to the host's file: a user name only the host's file has
resolved, telling the container what the host's file holds (and reading
whatever file the attacker named as root). Now the name is looked up
inside the container's root (openat2 RESOLVE_IN_ROOT): the symlink
resolves to the container's own file of that path, or to nothing.
"""
import os
import uuid

import pytest

from conftest import ROOTFS, needs_root
from test_run import Env, env, one_line_error  # noqa: F401 (env is a fixture)

pytestmark = needs_root()


@pytest.fixture
def host_secret():
    """A host file in passwd format naming a user only it has."""
    name = "hostonly" + uuid.uuid4().hex[:8]
    path = f"/tmp/mc-host-passwd-{uuid.uuid4().hex[:8]}"
    with open(path, "w") as f:
        f.write(f"{name}:x:4242:4242::/:/bin/sh\n")
    yield path, name
    os.unlink(path)


def test_exec_user_does_not_follow_a_symlinked_passwd_to_the_host(env, host_secret):
    path, name = host_secret
    r = env.mc("run", "-d", "--name", "victim", "--network", "none", "--rootfs", ROOTFS,
               "/bin/sh", "-c", f"rm -f /etc/passwd; ln -s {path} /etc/passwd; touch /ready; sleep 60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        for _ in range(200):
            if env.mc("exec", "victim", "/bin/test", "-e", "/ready").returncode == 0:
                break
        # The link is there, pointing at the host's file's path.
        assert env.mc("exec", "victim", "/bin/readlink", "/etc/passwd").stdout.strip() == path
        r = env.mc("exec", "-u", name, "victim", "/bin/id", "-u")
        one_line_error(r)
        assert "4242" not in r.stdout
        assert f"user \"{name}\" is not in" in r.stderr
        # Numbers still work.
        assert env.mc("exec", "-u", "4242", "victim", "/bin/id", "-u").stdout == "4242\n"
    finally:
        env.mc("rm", "-f", cid)
    env.assert_clean([cid])


def test_run_user_from_a_rootfs_whose_passwd_is_a_symlink_out(env, host_secret, tmp_path):
    path, name = host_secret
    # A copy of the busybox rootfs (small) whose /etc/passwd points at the host file.
    root = tmp_path / "root"
    os.system(f"cp -a {ROOTFS} {root}")
    os.unlink(root / "etc" / "passwd") if os.path.lexists(root / "etc" / "passwd") else None
    os.symlink(path, root / "etc" / "passwd")
    r = env.mc("run", "--rm", "--network", "none", "--user", name, "--rootfs", str(root), "/bin/id", "-u")
    one_line_error(r)
    assert f"user \"{name}\" is not in" in r.stderr
    env.assert_clean()
