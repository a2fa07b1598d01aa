"""`attach` (issue 16, commands item 6): a `run -dit` container keeps its
terminal in the monitor, which serves DIR/attach (a unix socket, 0600);
`attach NAME` connects the user's terminal to it until the detach keys
(Ctrl-P Ctrl-Q, or --detach-keys as Docker's), exit 0 with the container
still running, or the container's exit, with its code. What the container
writes while nobody is attached still goes to its log. A `-d` container
without a terminal streams its stdout and stderr apart.
"""
import fcntl
import json
import os
import pty
import select
import stat
import struct
import subprocess
import termios
import time
import uuid

import pytest

from conftest import ROOTFS, needs_root
from test_run import Env, env, one_line_error, run, wait_for  # noqa: F401 (env is a fixture)

pytestmark = needs_root()


class Term:
    """`attach` on a pty of its own, as a user's terminal."""

    def __init__(self, env, *args, rows=30, cols=100):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.before = termios.tcgetattr(self.slave)
        self.p = env.popen("attach", *args, stdin=self.slave, stdout=self.slave, stderr=self.slave,
                           start_new_session=True)
        self.out = b""

    def write(self, b):
        os.write(self.master, b)

    def read_until(self, needle, timeout=10.0):
        end = time.time() + timeout
        while needle not in self.out and time.time() < end:
            r, _, _ = select.select([self.master], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.out += chunk
        return needle in self.out

    def wait(self, timeout=10):
        code = self.p.wait(timeout=timeout)
        self.read_until(b"\0", timeout=0.2)
        return code

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        os.close(self.master)
        os.close(self.slave)


def monitor_sockets(env, name):
    """The unix sockets the container's monitor holds (its listener, and one per client)."""
    [cid] = [c["id"] for c in env.ps() if c["name"] == name]
    with open(os.path.join(env.dir(cid), "container.json")) as f:
        owner = json.load(f)["ownerPid"]
    n = 0
    for fd in os.listdir(f"/proc/{owner}/fd"):
        try:
            if os.readlink(f"/proc/{owner}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def logs(env, name):
    r = subprocess.run(env.cmd("logs", name), capture_output=True, env=env.environ, timeout=30)
    return r.stdout, r.stderr


def test_attach_detach_and_attach_again_to_its_exit_code(env):
    cid = run(env, "-dit", "--name", "sh", "--rootfs", ROOTFS, "/bin/sh").stdout.strip()
    assert len(cid) == 64
    sock = os.path.join(env.dir(cid), "attach")
    st = os.lstat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    t = Term(env, "sh")
    try:
        # (Each line typed at a prompt: ash's line editor may drop typeahead.)
        t.write(b"echo hi-$((40+2)); stty size\n")
        assert t.read_until(b"30 100\r\n/ # "), t.out
        assert b"hi-42" in t.out
        # Raw mode on the user's terminal while attached.
        assert termios.tcgetattr(t.slave) != t.before
        # Output while nobody is attached: to the log.
        t.write(b"(while [ ! -e /tmp/go ]; do sleep 0.05; done; echo bg-$((2+3))) &\n")
        assert t.read_until(b") &\r\n/ # "), t.out
        t.write(b"\x10")
        t.write(b"\x11")
        assert t.wait() == 0
        assert termios.tcgetattr(t.slave) == t.before, "the terminal was not restored"
    finally:
        t.close()
    assert [c["state"] for c in env.ps()] == ["running"]
    assert env.mc("exec", "sh", "touch", "/tmp/go").returncode == 0
    assert wait_for(lambda: b"bg-5" in logs(env, "sh")[0]), (logs(env, "sh"), t.out)
    # Attached again, at another size: the container's exit ends attach, with its code.
    t = Term(env, "sh", rows=40, cols=120)
    try:
        t.write(b"stty size; exit 7\n")
        assert t.read_until(b"40 120"), t.out
        assert t.wait() == 7
    finally:
        t.close()
    assert wait_for(lambda: env.ps()[0]["exitCode"] == 7)
    out, err = logs(env, "sh")
    assert b"hi-42" in out and b"bg-5" in out and b"exit 7" in out and err == b""
    assert not os.path.exists(sock)
    r = env.mc("attach", "sh")
    one_line_error(r)
    assert "container sh is not running" in r.stderr


def test_detach_keys(env):
    run(env, "-dit", "--name", "k", "--rootfs", ROOTFS, "/bin/sh", check=True)
    # A held key that turns out not to start the sequence goes on to the
    # container; both keys in one write detach.
    t = Term(env, "--detach-keys", "z,q", "k")
    try:
        t.write(b"echo az-zx-$((1+1))\n")
        assert t.read_until(b"az-zx-2\r\n"), t.out
        t.write(b"zq")
        assert t.wait() == 0
    finally:
        t.close()
    # Docker's syntax, one key a write.
    t = Term(env, "--detach-keys", "ctrl-x,y", "k")
    try:
        t.write(b"echo x-$((2+2))\n")
        assert t.read_until(b"x-4\r\n"), t.out
        t.write(b"\x18")
        t.write(b"y")
        assert t.wait() == 0
    finally:
        t.close()
    # The default, Ctrl-P Ctrl-Q, in one write.
    t = Term(env, "k")
    try:
        t.write(b"echo still-$((3+4))\n")
        assert t.read_until(b"still-7"), t.out
        t.write(b"\x10\x11")
        assert t.wait() == 0
    finally:
        t.close()
    # "" detaches never: only the container's exit ends it.
    run(env, "-dit", "--name", "r", "--rootfs", ROOTFS, "/bin/sh", "-c", "read x; echo got-$x; exit 3", check=True)
    t = Term(env, "--detach-keys", "", "r")
    try:
        t.write(b"\x10\x11")
        t.write(b"line\n")
        assert t.wait() == 3
        assert t.read_until(b"line\r\n"), t.out
    finally:
        t.close()
    for bad in ("ctrl-", "ctrl-1", "ab", "ctrl-p,,", "ctrl-P"):
        r = env.mc("attach", "--detach-keys", bad, "k")
        one_line_error(r)


def test_attach_needs_a_monitor_and_a_running_container(env):
    p = env.popen("run", "--name", "fg", "--rootfs", ROOTFS, "/bin/sleep", "60",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: any(c["state"] == "running" for c in env.ps()))
        r = env.mc("attach", "fg")
        one_line_error(r)
        assert "no monitor" in r.stderr
    finally:
        env.mc("rm", "-f", "fg")
        p.wait(timeout=20)
    one_line_error(env.mc("attach", "nosuch"))
    one_line_error(env.mc("attach"))


def test_attach_without_a_terminal_streams_stdout_and_stderr(env, tmp_path):
    sync = tmp_path / "sync"
    sync.mkdir()
    run(env, "-d", "--name", "nt", "-v", f"{sync}:/sync", "--rootfs", ROOTFS, "/bin/sh", "-c",
        "echo early; while [ ! -e /sync/go ]; do sleep 0.05; done; echo out; echo err >&2; exit 4", check=True)
    before = monitor_sockets(env, "nt")
    p = env.popen("attach", "nt", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_for(lambda: monitor_sockets(env, "nt") == before + 1)
    (sync / "go").write_text("")
    out, err = p.communicate(timeout=20)
    assert (p.returncode, out, err) == (4, b"out\n", b"err\n")
    assert logs(env, "nt") == (b"early\nout\n", b"err\n")


def test_attach_with_a_long_data_dir(tmp_path):
    # sun_path holds 108 bytes: the socket is reached through /proc/self/fd.
    e = Env()
    e.data = "/run/minicontainer-test-data/" + uuid.uuid4().hex[:12] + "/" + "d" * 120
    e.environ["MINICONTAINER_DATA"] = e.data
    try:
        cid = run(e, "-dit", "--name", "long", "--rootfs", ROOTFS, "/bin/sh").stdout.strip()
        assert len(os.path.join(e.dir(cid), "attach")) > 108
        t = Term(e, "long")
        try:
            t.write(b"echo long-$((5*5)); exit 9\n")
            assert t.read_until(b"long-25"), t.out
            assert t.wait() == 9
        finally:
            t.close()
    finally:
        seen = e.ids()
        e.mc("rm", "-f", "--all")
        try:
            e.assert_clean(seen)
        finally:
            subprocess.run(["rm", "-rf", e.root, os.path.dirname(e.data)])
