"""Docker-style lifecycle (issue 16): the memory floor and the OOM message,
`stop` saying when it resorts to SIGKILL, `prune`'s summary, `start` of a
stopped container, `restart`, and `--restart` policies applied by the
monitor. Each test has its own --root and data directory (the Env of
test_run.py), and nothing may be left afterwards.
"""
import json
import os
import subprocess
import time

import pytest

from conftest import BIN, ROOTFS, needs_root
from test_run import Env, env, one_line_error, run, wait_for  # noqa: F401 (env is a fixture)

pytestmark = needs_root()


def bundle(tmp_path, limit):
    b = tmp_path / "b"
    subprocess.run([BIN, "spec", "--bundle", str(b), "--rootfs", ROOTFS, "--network", "none", "--memory", "1m", "true"],
                   check=True, capture_output=True)
    cfg = json.loads((b / "config.json").read_text())
    cfg["linux"]["resources"]["memory"]["limit"] = limit
    (b / "config.json").write_text(json.dumps(cfg))
    return b


def test_memory_below_the_floor_is_refused_naming_it(env):
    """(item 8) --memory below 1 MiB: refused before anything is made,
    naming the limit; before, `init exited at once` or `the container's init
    exited before it was ready`."""
    for size in ("200k", "4k", "1048575"):
        r = run(env, "--memory", size, "--rootfs", ROOTFS, "true")
        one_line_error(r)
        assert f'--memory "{size}" is below the minimum of 1m (1 MiB)' in r.stderr, r.stderr
        assert env.ids() == []
    r = subprocess.run([BIN, "spec", "--stdout", "--rootfs", ROOTFS, "--memory", "100k", "true"], capture_output=True, text=True)
    one_line_error(r)
    # At the floor it runs, and the limit is the cgroup's.
    r = run(env, "--rm", "--network", "none", "--memory", "1m", "--rootfs", ROOTFS, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert r.returncode == 0 and r.stdout == "1048576\n", r.stderr


def test_an_init_killed_by_its_memory_limit_is_named(tmp_path):
    """(item 8) A bundle whose limit cannot hold the init (below the floor
    only a hand-written config.json can go): the error names the limit."""
    root = str(tmp_path / "root")
    b = bundle(tmp_path, 40960)
    r = subprocess.run([BIN, "--root", root, "run", "--bundle", str(b), "oom-" + os.urandom(4).hex()],
                       capture_output=True, text=True, timeout=60)
    one_line_error(r)
    assert "the container's init was killed by its memory limit (40960 bytes, 40 KiB) before it was ready" in r.stderr, r.stderr
    assert [e for e in os.listdir(root) if e != "@seccomp"] == []


def test_stop_says_when_it_resorts_to_sigkill(env):
    """(item 11) A container that ignores SIGTERM: stop waits -t seconds,
    then says it sends SIGKILL (podman warns too); one that exits on SIGTERM
    stops without a word."""
    run(env, "-d", "--name", "stubborn", "--network", "none", "--rootfs", ROOTFS,
        "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done", check=True)
    run(env, "-d", "--name", "polite", "--network", "none", "--rootfs", ROOTFS,
        "sh", "-c", "trap 'exit 0' TERM; sleep 60 & wait", check=True)
    r = env.mc("stop", "-t", "1", "stubborn")
    assert r.returncode == 0 and r.stdout == "stubborn\n", r.stderr
    assert r.stderr == "minicontainer: warning: stop stubborn: SIGTERM did not stop the container in 1 second; sending SIGKILL\n", r.stderr
    [s] = [c for c in env.ps() if c["name"] == "stubborn"]
    assert s["exitCode"] == 137, s
    r = env.mc("stop", "polite")
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_prune_prints_what_it_removed_and_the_space(env):
    """(item 11) prune lists the removed containers and the space reclaimed
    (Docker's 'Total reclaimed space'); a running one stays."""
    run(env, "--name", "big", "--network", "none", "--rootfs", ROOTFS, "dd", "if=/dev/zero", "of=/blob", "bs=1M", "count=3", check=True)
    run(env, "--name", "small", "--network", "none", "--rootfs", ROOTFS, "true", check=True)
    run(env, "-d", "--name", "live", "--network", "none", "--rootfs", ROOTFS, "sleep", "60", check=True)
    ids = {c["name"]: c["id"] for c in env.ps()}
    r = env.mc("prune", "-f", check=True)
    lines = r.stdout.splitlines()
    assert sorted(lines[:-1]) == sorted([ids["big"][:12], ids["small"][:12]]), r.stdout
    assert lines[-1].startswith("Total reclaimed space: 3.") and lines[-1].endswith("MB"), r.stdout
    assert [c["name"] for c in env.ps()] == ["live"]
    r = env.mc("prune", "-f", check=True)
    assert r.stdout == "Total reclaimed space: 0B\n", r.stdout


def meta(env, cid):
    with open(os.path.join(env.dir(cid), "container.json")) as f:
        return json.load(f)


def by_name(env, name):
    [c] = [c for c in env.ps() if c["name"] == name]
    return c


def test_restart_on_failure_3_runs_it_three_more_times(env):
    """(commands, item 1) --restart on-failure:3: the monitor runs the
    failing container again three times, with a back-off, then leaves it
    exited with its code."""
    cid = run(env, "-d", "--name", "flaky", "--network", "none", "--restart", "on-failure:3", "--rootfs", ROOTFS,
              "sh", "-c", "echo run at $(cat /proc/uptime); exit 3", check=True).stdout.strip()
    assert wait_for(lambda: meta(env, cid).get("finished") and not meta(env, cid).get("restarting")
                    and meta(env, cid).get("restartCount") == 3 and by_name(env, "flaky")["state"] == "exited", timeout=20)
    logs = env.mc("logs", "flaky", check=True).stdout.splitlines()
    print("on-failure:3 log:", logs)
    assert len([l for l in logs if l.startswith("run at")]) == 4, logs
    c = by_name(env, "flaky")
    assert c["exitCode"] == 3, c
    # The back-off doubles: 100, 200, 400 ms between the four runs.
    times = [float(l.split()[2]) for l in logs if l.startswith("run at")]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= 0.09 for g in gaps) and gaps[2] > gaps[0], gaps


def test_on_failure_does_not_restart_a_success(env):
    cid = run(env, "-d", "--name", "ok", "--network", "none", "--restart", "on-failure", "--rootfs", ROOTFS,
              "sh", "-c", "echo once", check=True).stdout.strip()
    assert wait_for(lambda: by_name(env, "ok")["state"] == "exited" and meta(env, cid).get("finished"))
    assert env.mc("logs", "ok", check=True).stdout == "once\n"
    assert not meta(env, cid).get("restartCount")


def test_restart_always_survives_stop_correctly(env):
    """--restart always: it comes back after each exit, but never after
    `stop` (Docker's manually stopped), whether stop finds it running or
    between two runs; `start` runs it again."""
    cid = run(env, "-d", "--name", "always", "--network", "none", "--restart", "always", "--rootfs", ROOTFS,
              "sh", "-c", "echo up; sleep 0.3; exit 1", check=True).stdout.strip()
    assert wait_for(lambda: (meta(env, cid).get("restartCount") or 0) >= 2, timeout=20)
    assert env.mc("stop", "-t", "1", "always").returncode == 0
    c = by_name(env, "always")
    assert c["state"] == "exited", c
    runs = len(env.mc("logs", "always", check=True).stdout.splitlines())
    time.sleep(1.5)
    assert len(env.mc("logs", "always", check=True).stdout.splitlines()) == runs
    assert by_name(env, "always")["state"] == "exited"
    assert subprocess.run(["pgrep", "-f", "sleep 0.3"], capture_output=True).stdout == b""
    # start: it runs again, and its policy with it.
    assert env.mc("start", "always", check=True).stdout == "always\n"
    assert wait_for(lambda: len(env.mc("logs", "always", check=True).stdout.splitlines()) >= runs + 2, timeout=20)
    # rm -f of a container that restarts: gone for good, nothing left.
    assert env.mc("rm", "-f", "always").returncode == 0
    time.sleep(0.5)
    assert env.ids() == [] and subprocess.run(["pgrep", "-f", "sleep 0.3"], capture_output=True).stdout == b""


def test_start_runs_a_stopped_container_again_with_its_root_and_settings(env):
    """(item 6) `start NAME` of a stopped run-mode container runs the same
    bundle again, detached: the same upper layer (what the first run wrote
    is there), the same environment and hostname."""
    r = run(env, "--name", "again", "--hostname", "h1", "-e", "GREETING=hi", "--network", "none", "--rootfs", ROOTFS,
            "sh", "-c", "echo $GREETING $(hostname) >> /runs; cat /runs; exit 4")
    assert r.returncode == 4 and r.stdout == "hi h1\n", r.stderr
    assert by_name(env, "again")["exitCode"] == 4
    assert env.mc("start", "again", check=True).stdout == "again\n"
    assert wait_for(lambda: by_name(env, "again")["state"] == "exited" and by_name(env, "again")["exitCode"] == 4)
    [cid] = env.ids()
    with open(os.path.join(env.dir(cid), "upper", "runs")) as f:
        assert f.read() == "hi h1\nhi h1\n"
    # Its root is unmounted again once it stopped.
    assert not [l for l in open("/proc/self/mountinfo") if env.dir(cid) in l]
    # start of a running one does nothing; of a missing one, one line.
    run(env, "-d", "--name", "live", "--network", "none", "--rootfs", ROOTFS, "sleep", "60", check=True)
    assert env.mc("start", "live", check=True).stdout == "live\n"
    one_line_error(env.mc("start", "nosuch"))


def test_restart_command_and_ports_held_again(env):
    """`restart NAME`: stopped (SIGTERM, then SIGKILL after -t), then
    started again: a new init, the same files, its published port held and
    forwarded again. (18096 is this test's alone: a user-mode helper that
    forwarded a connection on a port leaves it in TIME_WAIT for a minute,
    and the hold binds without SO_REUSEADDR.)"""
    import socket
    import urllib.request
    run(env, "-d", "--name", "web", "-p", "18096:80", "--rootfs", ROOTFS,
        "sh", "-c", "echo $$ >> /www; exec httpd -f -p 80 -h /", check=True)

    def get():
        for _ in range(50):
            try:
                return urllib.request.urlopen("http://127.0.0.1:18096/www", timeout=2).read().decode()
            except OSError:
                time.sleep(0.1)
        return None
    assert get() == "1\n"
    r = env.mc("restart", "-t", "1", "web")
    assert r.returncode == 0 and r.stdout == "web\n", r.stderr
    assert get() == "1\n1\n"
    s = socket.socket()
    with pytest.raises(OSError):
        s.bind(("0.0.0.0", 18096))
    s.close()
    env.mc("stop", "-t", "1", "web", check=True)
    s = socket.socket()
    s.bind(("0.0.0.0", 18096))
    s.close()
