"""The seed README's session, line by line, with `run -it` driven under tmux
(type, read the screen, resize, exit), then the terminal checked restored."""
import os
import shutil
import subprocess
import time
import pytest
from conftest import BIN, ROOTFS
from test_run import env, mountinfo, run  # noqa: F401 (env is test_run's fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("tmux"), reason="needs root and tmux")


def tmux(*args):
    return subprocess.run(["tmux", "-L", "mc-seed-test", *args], capture_output=True, text=True)


def screen():
    return tmux("capture-pane", "-t", "seed", "-p").stdout


def type_and_wait(keys, expect, timeout=5.0):
    tmux("send-keys", "-t", "seed", keys, "Enter")
    end = time.time() + timeout
    while time.time() < end:
        if expect in screen():
            return screen()
        time.sleep(0.05)
    raise AssertionError(f"{expect!r} not on screen after {keys!r}:\n{screen()}")


def test_seed_session_under_tmux(env):
    script = (f"S0=$(stty -g); MINICONTAINER_DATA={env.data} {BIN} --root {env.root} "
              f"run -it --network none --rootfs {ROOTFS} /bin/sh; echo EXITED=$?; "
              f"[ \"$(stty -g)\" = \"$S0\" ] && echo TERMINAL-RESTORED; sleep 30")
    tmux("kill-session", "-t", "seed")
    assert tmux("new-session", "-d", "-s", "seed", "-x", "100", "-y", "30", "bash", "-c", script).returncode == 0
    try:
        type_and_wait("hostname", "\nminicontainer")
        s = type_and_wait("ps aux", "{ps}")
        assert "    1 root     /bin/sh" in s
        s = type_and_wait("ls /dev", "urandom")
        for dev in ("null", "zero", "random", "urandom", "tty", "pts", "shm", "ptmx"):
            assert dev in s.split(), dev
        type_and_wait("stty size", "30 100")
        tmux("resize-window", "-t", "seed", "-x", "120", "-y", "40")
        type_and_wait("stty size", "40 120")
        type_and_wait("echo in-container > /seed-file; cat /seed-file", "\nin-container")
        type_and_wait("exit 3", "EXITED=3")
        end = time.time() + 5
        while "TERMINAL-RESTORED" not in screen() and time.time() < end:
            time.sleep(0.05)
        assert "TERMINAL-RESTORED" in screen(), screen()
    finally:
        tmux("kill-server")
    assert not os.path.exists(os.path.join(ROOTFS, "seed-file")), "a container write reached the rootfs"


def test_seed_exit_codes_and_ro_volume(env, tmp_path):
    assert run(env, "--rm", "--network", "none", "--rootfs", ROOTFS, "/bin/true").returncode == 0
    assert run(env, "--rm", "--network", "none", "--rootfs", ROOTFS, "/bin/false").returncode == 1
    assert run(env, "--rm", "--rootfs", ROOTFS, "--memory", "lots", "/bin/true").returncode == 125
    assert run(env, "--rm", "--network", "none", "--rootfs", ROOTFS, "/etc/passwd").returncode == 126
    assert run(env, "--rm", "--network", "none", "--rootfs", ROOTFS, "nosuch").returncode == 127
    # 137: OOM-killed under --memory 16m.
    r = run(env, "--rm", "--network", "none", "--memory", "16m", "--rootfs", ROOTFS,
            "/bin/sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived")
    assert r.returncode == 137 and "survived" not in r.stdout
    vol = tmp_path / "vol"
    vol.mkdir()
    r = run(env, "--rm", "--network", "none", "-v", f"{vol}:/data:ro", "--rootfs", ROOTFS,
            "/bin/sh", "-c", "echo x > /data/f")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    assert os.listdir(vol) == []
    # Nothing of ours is mounted or kept after rm --all.
    assert env.mc("run", "-d", "--network", "none", "--rootfs", ROOTFS, "sleep", "30").returncode == 0
    assert env.mc("rm", "-f", "--all").returncode == 0
    assert env.ids() == []
    assert not [m for m in mountinfo() if m.startswith(env.data)]
