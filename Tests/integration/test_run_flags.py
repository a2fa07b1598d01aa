"""The run flags of issue 16 with real effects: restart and stop policies,
env files and labels, entrypoint and cidfile, ulimits, /dev/shm, tmpfs and
--mount, /etc/hosts and resolv.conf, published ports, --init and HOME. Each
test has its own --root and data directory (test_run's Env), and the fixture
checks that nothing is left.
"""
import json
import os

from conftest import ROOTFS, needs_root
from test_run import Env, env, one_line_error, run, wait_for  # noqa: F401 (env is a fixture)

pytestmark = needs_root()


def config(env, cid):
    with open(os.path.join(env.dir(cid), "config.json")) as f:
        return json.load(f)


# --restart, --stop-timeout, --stop-signal

def test_restart_is_annotated_and_rm_refused(env):
    r = run(env, "--rm", "--restart", "always", "--rootfs", ROOTFS, "/bin/true")
    one_line_error(r)
    assert "--rm" in r.stderr and "--restart" in r.stderr
    assert env.ids() == []
    for bad in ["on-failure:0", "on-failure:x", "always:2", "sometimes"]:
        r = run(env, "--restart", bad, "--rootfs", ROOTFS, "/bin/true")
        one_line_error(r)
        assert bad in r.stderr and env.ids() == []
    cid = run(env, "-d", "--restart", "on-failure:2", "--rootfs", ROOTFS, "/bin/sleep", "60").stdout.strip()
    assert config(env, cid)["annotations"]["org.minicontainer.restart"] == "on-failure:2"
    env.mc("stop", "-t", "0", cid, check=True)


def test_stop_uses_stop_timeout_and_stop_signal(env):
    # The TERM handler takes 3 s: with the default timeout (10 s) it would
    # finish (exit 5); --stop-timeout 1 has stop kill it first (137).
    handler = "trap 'sleep 3; exit 5' TERM; trap 'exit 6' USR1; sleep 1000 & wait; wait"
    a = run(env, "-d", "--stop-timeout", "1", "--rootfs", ROOTFS, "/bin/sh", "-c", handler).stdout.strip()
    # -t still wins over it.
    b = run(env, "-d", "--stop-timeout", "1", "--rootfs", ROOTFS, "/bin/sh", "-c", handler).stdout.strip()
    # --stop-signal: USR1 first.
    c = run(env, "-d", "--stop-signal", "USR1", "--rootfs", ROOTFS, "/bin/sh", "-c", handler).stdout.strip()
    assert config(env, c)["annotations"]["org.minicontainer.stop-signal"] == "SIGUSR1"
    for cid in (a, b, c):
        assert wait_for(lambda: env.mc("exec", cid, "/bin/sh", "-c", "cat /proc/[0-9]*/comm | grep -cx sleep").stdout.strip() == "1")
    env.mc("stop", a, check=True)
    env.mc("stop", "-t", "20", b, check=True)
    env.mc("stop", c, check=True)
    codes = {x["id"]: x["exitCode"] for x in env.ps()}
    assert codes == {a: 137, b: 5, c: 6}, codes
