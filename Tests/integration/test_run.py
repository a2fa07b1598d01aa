"""Docker-style `run --rootfs` and the commands over run-mode containers: ps,
stop, rm, prune, logs, exec, inspect. Each test has its own --root and data
directory (MINICONTAINER_DATA); teardown checks nothing is left behind (no
container directory, overlay mount, OCI state or cgroup).
"""
import fcntl
import glob
import json
import os
import pty
import select
import struct
import signal
import subprocess
import sys
import termios
import time
import uuid

import pytest

from conftest import BIN, ROOTFS, needs_root

pytestmark = needs_root()


def mountinfo():
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f]


class Env:
    def __init__(self):
        tag = uuid.uuid4().hex[:12]
        self.root = f"/run/minicontainer-test/{tag}"
        self.data = f"/run/minicontainer-test-data/{tag}"
        self.environ = dict(os.environ, MINICONTAINER_DATA=self.data)

    def cmd(self, *args):
        return [BIN, "--root", self.root, *args]

    def mc(self, *args, input=None, timeout=60, check=False):
        r = subprocess.run(self.cmd(*args), capture_output=True, text=True, input=input,
                           env=self.environ, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"minicontainer {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def popen(self, *args, **kw):
        return subprocess.Popen(self.cmd(*args), env=self.environ, **kw)

    def ids(self):
        d = os.path.join(self.data, "containers")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def dir(self, cid):
        return os.path.join(self.data, "containers", cid)

    def ps(self, all=True):
        r = self.mc("ps", *(["-a"] if all else []), "--format", "json", check=True)
        return json.loads(r.stdout)

    def assert_clean(self, ids=()):
        assert self.ids() == [], f"container directories left: {self.ids()}"
        names = os.path.join(self.data, "names")
        left = sorted(os.listdir(names)) if os.path.isdir(names) else []
        assert left == [], f"name index entries left: {left}"
        assert not [m for m in mountinfo() if m.startswith(self.data)], "overlay mounts left"
        # The compiled seccomp filters (<root>/@seccomp) are the runtime's cache, not a container's state.
        left = [e for e in os.listdir(self.root) if e != "@seccomp"] if os.path.isdir(self.root) else []
        assert left == [], f"OCI state left: {left}"
        for cid in ids:
            assert not glob.glob(f"/sys/fs/cgroup/**/{cid}", recursive=True), f"cgroup of {cid} left"


@pytest.fixture
def env(binary, rootfs):
    e = Env()
    yield e
    seen = e.ids()
    e.mc("rm", "-f", "--all")
    e.mc("prune")
    try:
        e.assert_clean(seen)
    finally:
        subprocess.run(["rm", "-rf", e.root, e.data])
        for parent in {os.path.dirname(e.root), os.path.dirname(e.data)}:
            try:
                os.rmdir(parent)
            except OSError:
                pass


def run(env, *args, **kw):
    return env.mc("run", *args, **kw)


def wait_for(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def one_line_error(r, code=125):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minicontainer: "), r.stderr


def test_pid1_hostname_and_generated_files(env):
    r = run(env, "--hostname", "box", "--rootfs", ROOTFS, "/bin/sh", "-c",
            "echo $$; hostname; cat /etc/hostname; grep box /etc/hosts; grep localhost /etc/hosts; "
            "grep -c '^nameserver 127' /etc/resolv.conf; ls /dev; readlink /proc/self/ns/pid; exit 6")
    assert r.returncode == 6, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "1" and out[1] == "box" and out[2] == "box"
    # On the bridge (the default) the name is on the container's address.
    assert [l for l in out if l.startswith("172.18.") and l.split()[1] == "box"], r.stdout
    assert "127.0.0.1\tlocalhost" in r.stdout
    assert "0" in out and "null" in r.stdout and "pts" in r.stdout and "shm" in r.stdout
    assert out[-1] != os.readlink("/proc/self/ns/pid")
    # The stopped container stays until rm; its overlay is unmounted.
    [c] = env.ps()
    assert c["state"] == "exited" and c["exitCode"] == 6
    assert not [m for m in mountinfo() if m.startswith(env.data)]


def test_writes_go_to_the_upper_dir(env):
    marker = "written-" + uuid.uuid4().hex[:8]
    r = run(env, "--name", "w", "--rootfs", ROOTFS, "/bin/sh", "-c", f"echo hi > /{marker}; rm /etc/passwd; cat /{marker}")
    assert r.returncode == 0 and r.stdout == "hi\n", r.stderr
    assert not os.path.exists(os.path.join(ROOTFS, marker))
    assert os.path.exists(os.path.join(ROOTFS, "etc/passwd"))
    [cid] = env.ids()
    assert open(os.path.join(env.dir(cid), "upper", marker)).read() == "hi\n"
    assert os.path.exists(os.path.join(env.dir(cid), "config.json"))
    spec = json.load(open(os.path.join(env.dir(cid), "config.json")))
    assert spec["root"]["path"] == os.path.join(env.dir(cid), "merged")
    assert env.mc("rm", "w").returncode == 0
    assert env.ids() == []


def test_volumes_and_read_only(env, tmp_path):
    host = tmp_path / "vol"
    host.mkdir()
    (host / "in").write_text("from host\n")
    r = run(env, "--rm", "-v", f"{host}:/data", "--rootfs", ROOTFS, "/bin/sh", "-c", "cat /data/in; echo out > /data/out")
    assert r.returncode == 0 and r.stdout == "from host\n", r.stderr
    assert (host / "out").read_text() == "out\n"
    r = run(env, "--rm", "-v", f"{host}:/data:ro", "--rootfs", ROOTFS, "/bin/sh", "-c", "cat /data/in; echo x > /data/x")
    assert r.returncode != 0 and r.stdout == "from host\n"
    assert not (host / "x").exists()
    r = run(env, "--rm", "--read-only", "--rootfs", ROOTFS, "/bin/sh", "-c", "touch /nope")
    assert r.returncode != 0 and "Read-only" in r.stderr
    r = run(env, "--rm", "--read-only", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo ok > /dev/shm/x && cat /dev/shm/x")
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr
    assert env.ids() == []


def test_exit_codes(env):
    assert run(env, "--rm", "--rootfs", ROOTFS, "/bin/true").returncode == 0
    assert run(env, "--rm", "--rootfs", ROOTFS, "/bin/sh", "-c", "exit 3").returncode == 3
    r = run(env, "--rm", "--rootfs", ROOTFS, "nosuchcommand")
    one_line_error(r, 127)
    assert "executable file not found" in r.stderr
    r = run(env, "--rm", "--rootfs", ROOTFS, "/etc/passwd")
    one_line_error(r, 126)
    assert env.ids() == [] and not set(os.listdir(env.root)) - {"@seccomp"} if os.path.isdir(env.root) else True
    # Killed by SIGKILL (stop after the timeout: sh as pid 1 ignores SIGTERM): 128+9.
    p = env.popen("run", "--name", "k", "--rootfs", ROOTFS, "/bin/sh", "-c", "while true; do sleep 1; done",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_for(lambda: any(c["state"] == "running" for c in env.ps()))
    t = time.time()
    assert env.mc("stop", "-t", "1", "k").returncode == 0
    assert 0.9 < time.time() - t < 5
    assert p.wait(timeout=10) == 137
    [c] = env.ps()
    assert c["exitCode"] == 137 and c["status"].startswith("Exited (137)")


def test_interactive_stdin_without_tty(env):
    assert run(env, "-i", "--rm", "--rootfs", ROOTFS, "/bin/cat", input="piped\n").stdout == "piped\n"
    assert run(env, "--rm", "--rootfs", ROOTFS, "/bin/cat", input="ignored\n").stdout == ""


def test_signals_reach_the_container(env):
    p = env.popen("run", "--rm", "--rootfs", ROOTFS, "/bin/sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=10)
    assert p.returncode == 7 and "got TERM" in out


def test_detached_ps_logs_exec_stop_rm(env):
    r = run(env, "-d", "--name", "web", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo started; echo err >&2; while true; do sleep 1; done")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid)
    ps = env.mc("ps").stdout.splitlines()
    assert ps[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert ps[1].startswith(cid[:12]) and " web " in ps[1] and "Up " in ps[1]
    assert env.mc("ps", "-q").stdout == cid[:12] + "\n"
    assert wait_for(lambda: "started" in env.mc("logs", "web").stdout)
    logs = env.mc("logs", cid[:5])
    assert logs.stdout == "started\n" and logs.stderr == "err\n", logs
    last = env.mc("logs", "--tail", "1", "web")
    assert (last.stdout + last.stderr).count("\n") == 1
    r = env.mc("exec", "-e", "X=42", "-w", "/tmp", "web", "/bin/sh", "-c", "echo $X; pwd; hostname; cat /proc/1/cmdline | tr '\\0' ' '")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:3] == ["42", "/tmp", "minicontainer"]
    assert env.mc("exec", cid[:12], "/bin/sh", "-c", "exit 5").returncode == 5
    assert env.mc("exec", "-u", "nobody", "web", "/bin/id", "-u").stdout == "65534\n"
    # Without -i, an exec'd process's stdin is /dev/null.
    assert env.mc("exec", "web", "/bin/cat", input="not read\n").stdout == ""
    assert env.mc("exec", "-i", "web", "/bin/cat", input="read\n").stdout == "read\n"
    # Lifecycle commands take names and prefixes too.
    assert json.loads(env.mc("state", "web").stdout)["id"] == cid
    env.mc("pause", cid[:6], check=True)
    assert "(Paused)" in env.mc("ps").stdout
    env.mc("resume", "web", check=True)
    # runc's ps keeps its meaning given an id (or a name).
    pids = json.loads(env.mc("ps", "--format", "json", cid).stdout)
    assert len(pids) >= 1
    assert json.loads(env.mc("ps", "--format", "json", "web").stdout) == pids
    # rm of a running container without -f.
    r = env.mc("rm", "web")
    one_line_error(r)
    assert "running" in r.stderr and env.ids() == [cid]
    assert env.mc("stop", "-t", "1", "web").stdout == "web\n"
    [c] = env.ps()
    assert c["state"] == "exited" and c["exitCode"] == 137
    assert env.ps(all=False) == []
    assert not [m for m in mountinfo() if m.startswith(env.data)]
    assert env.mc("rm", "web").returncode == 0
    env.assert_clean([cid])


def test_detached_exit_is_recorded_and_rm_flag(env):
    cid = run(env, "-d", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo bye; exit 4").stdout.strip()
    assert wait_for(lambda: env.ps()[0]["exitCode"] == 4)
    assert env.mc("logs", cid).stdout == "bye\n"
    env.mc("rm", cid, check=True)
    cid = run(env, "-d", "--rm", "--rootfs", ROOTFS, "/bin/sleep", "0.3").stdout.strip()
    assert len(cid) == 64
    assert wait_for(lambda: env.ids() == [])
    assert run(env, "--rm", "--rootfs", ROOTFS, "/bin/echo", "fg").stdout == "fg\n"
    env.assert_clean([cid])


def test_names_and_prefixes(env):
    a = run(env, "-d", "--name", "one", "--rootfs", ROOTFS, "/bin/sleep", "60").stdout.strip()
    before = env.ids()
    r = run(env, "-d", "--name", "one", "--rootfs", ROOTFS, "/bin/sleep", "60")
    one_line_error(r)
    assert "already in use" in r.stderr and env.ids() == before
    r = run(env, "--name", "one", "--rootfs", ROOTFS, "/bin/true")
    one_line_error(r)
    assert env.ids() == before
    names = [c["name"] for c in env.ps()]
    assert names == ["one"]
    b = run(env, "-d", "--rootfs", ROOTFS, "/bin/sleep", "60").stdout.strip()
    assert [c["name"] for c in env.ps()][0] != ""  # a generated name
    inspect = json.loads(env.mc("inspect", a[:4], "one", b).stdout)
    assert [i["Id"] for i in inspect] == [a, a, b]
    r = env.mc("stop", "nosuchcontainer")
    one_line_error(r)
    assert env.mc("rm", "-f", a[:8], b).returncode == 0
    env.assert_clean([a, b])


def test_bad_input_leaves_nothing(env, tmp_path):
    cases = [
        ["--rootfs", "/nonexistent/rootfs", "/bin/true"],
        ["--rootfs", ROOTFS],
        ["-v", "nocolon", "--rootfs", ROOTFS, "/bin/true"],
        # A missing absolute host path is made, as Docker's -v; a run that
        # fails for another reason leaves it unmade, as a relative one is.
        ["-v", f"{tmp_path}/missing:/x", "--memory", "lots", "--rootfs", ROOTFS, "/bin/true"],
        ["-v", "./nonexistent-mc-path/missing:/x", "--rootfs", ROOTFS, "/bin/true"],
        ["-v", f"{tmp_path}:/x:rx", "--rootfs", ROOTFS, "/bin/true"],
        ["--memory", "lots", "--rootfs", ROOTFS, "/bin/true"],
    ]
    for args in cases:
        one_line_error(run(env, *args))
        one_line_error(run(env, "-d", *args))
    one_line_error(run(env, "--rootfs", ROOTFS, "/bin/nosuch"), 127)
    one_line_error(run(env, "-d", "--rootfs", ROOTFS, "/bin/nosuch"), 127)
    assert not os.path.exists(f"{tmp_path}/missing")
    env.assert_clean()


def test_exec_exit_codes_are_runs(env):
    """exec in a run-mode container: program not found is 127 and not
    executable 126, as run's and a shell's (issue 16, item 4); its own code
    comes through. (An OCI exec stays 125: test_lifecycle.)"""
    assert run(env, "-d", "--name", "codes", "--network", "none", "--rootfs", ROOTFS, "sleep", "60").returncode == 0
    try:
        one_line_error(env.mc("exec", "codes", "/bin/nosuch"), 127)
        one_line_error(env.mc("exec", "codes", "/etc/passwd"), 126)
        assert env.mc("exec", "codes", "sh", "-c", "exit 3").returncode == 3
        assert env.mc("exec", "codes", "true").returncode == 0
    finally:
        env.mc("rm", "-f", "codes")
    env.assert_clean()


def test_sigkilled_run_is_cleaned_by_rm_f_and_prune(env):
    # A long-lived container outlives its killed `run`: ps shows it, rm -f removes it.
    p = env.popen("run", "--name", "orphan", "--rootfs", ROOTFS, "/bin/sleep", "60")
    assert wait_for(lambda: any(c["state"] == "running" for c in env.ps()))
    p.kill()
    p.wait()
    [c] = env.ps()
    assert c["name"] == "orphan" and c["status"].startswith("Up")
    cid = c["id"]
    assert any(m.startswith(env.dir(cid)) for m in mountinfo())
    assert env.mc("rm", "-f", "orphan").returncode == 0
    env.assert_clean([cid])
    # One that exits after its run was killed: prune removes it and its mount.
    p = env.popen("run", "--rootfs", ROOTFS, "/bin/sleep", "0.5")
    assert wait_for(lambda: any(c["state"] == "running" for c in env.ps()))
    p.kill()
    p.wait()
    [c] = env.ps()
    assert wait_for(lambda: env.ps()[0]["state"] == "exited")
    assert any(m.startswith(env.dir(c["id"])) for m in mountinfo())
    r = env.mc("prune")
    assert r.returncode == 0 and r.stdout.splitlines()[0] == c["id"][:12], r.stdout
    assert r.stdout.splitlines()[1].startswith("Total reclaimed space: ")
    env.assert_clean([c["id"]])


def read_until(fd, needle, timeout=10.0):
    buf = b""
    end = time.time() + timeout
    while needle not in buf and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def sig_fields(text):
    return {l.split(":")[0]: int(l.split()[1], 16) for l in text.splitlines() if l.startswith(("SigBlk", "SigIgn"))}


def test_callers_ignored_and_blocked_signals_do_not_reach_the_container(env):
    """A caller with SIGINT and SIGQUIT ignored (a shell's `trap '' INT
    QUIT`, nohup) and SIGINT, SIGUSR1 blocked (a library's mask): the
    container's process, run or exec'd, starts with none ignored or blocked
    (else Ctrl-C never reaches its foreground job)."""
    # The caller: this state, then exec of the command (a mask set in
    # preexec_fn does not survive subprocess's own child set-up).
    code = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "signal.signal(signal.SIGQUIT, signal.SIG_IGN); "
            "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT, signal.SIGUSR1]); os.execvp(sys.argv[1], sys.argv[1:])")
    caller = lambda argv: [sys.executable, "-c", code, *argv]
    show = ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"]  # not through a shell: shells reset masks
    # The control: the caller's state is what a plain child of it gets.
    r = subprocess.run(caller(show), capture_output=True, text=True)
    assert sig_fields(r.stdout)["SigBlk"] & (1 << 9) and sig_fields(r.stdout)["SigIgn"] & (1 << 1), r.stdout
    r = subprocess.run(caller(env.cmd("run", "--rm", "--network", "none", "--rootfs", ROOTFS, *show)),
                       capture_output=True, text=True, env=env.environ, timeout=60)
    assert r.returncode == 0, r.stderr
    assert sig_fields(r.stdout) == {"SigBlk": 0, "SigIgn": 0}, r.stdout
    name = "sigs-" + uuid.uuid4().hex[:6]
    env.mc("run", "-d", "--name", name, "--network", "none", "--rootfs", ROOTFS, "sleep", "60", check=True)
    try:
        r = subprocess.run(caller(env.cmd("exec", name, *show)), capture_output=True, text=True,
                           env=env.environ, timeout=60)
        assert r.returncode == 0, r.stderr
        assert sig_fields(r.stdout) == {"SigBlk": 0, "SigIgn": 0}, r.stdout
    finally:
        env.mc("rm", "-f", name)
    env.assert_clean()


def test_interactive_tty(env):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    before = termios.tcgetattr(slave)
    p = env.popen("run", "-it", "--rm", "--rootfs", ROOTFS, "/bin/sh", stdin=slave, stdout=slave, stderr=slave,
                  start_new_session=True)
    os.write(master, b"tty; echo val-$((40+2)); stty size\n")
    out = read_until(master, b"30 100")
    assert b"val-42" in out and b"/dev/pts/" in out and b"30 100" in out, out
    # Raw mode: the user's terminal passes everything on.
    assert termios.tcgetattr(slave) != before
    # The window size follows SIGWINCH.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    p.send_signal(signal.SIGWINCH)
    time.sleep(0.2)
    os.write(master, b"stty size\n")
    assert b"40 120" in read_until(master, b"40 120")
    # Ctrl-C reaches the container's foreground process, not run.
    os.write(master, b"sleep 100\n")
    # The shell has started it (a fixed pause was too short under load).
    for _ in range(250):
        if subprocess.run(["pgrep", "-x", "-f", "sleep 100"], capture_output=True).returncode == 0:
            break
        time.sleep(0.02)
    read_until(master, b"sleep 100", timeout=1)
    os.write(master, b"\x03")
    # The shell's prompt again: sleep died. Only then the next line (typed
    # ahead, busybox's line editor may flush it as it takes the terminal).
    after = read_until(master, b"# ")
    assert b"# " in after, after
    os.write(master, b"echo after-$((2+2)); exit 5\n")
    assert b"after-4" in read_until(master, b"after-4")
    assert p.wait(timeout=10) == 5
    assert termios.tcgetattr(slave) == before, "the terminal was not restored"
    os.close(master)
    os.close(slave)
    env.assert_clean()


def test_tty_without_interactive_and_exec_it(env):
    r = run(env, "-t", "--rm", "--rootfs", ROOTFS, "/bin/sh", "-c", "tty; echo done")
    assert r.returncode == 0 and "/dev/pts/" in r.stdout and "done" in r.stdout, r.stderr
    cid = run(env, "-d", "--name", "sh", "--rootfs", ROOTFS, "/bin/sleep", "60").stdout.strip()
    master, slave = pty.openpty()
    p = env.popen("exec", "-it", "sh", "/bin/sh", stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    # exec -t sets TERM, as Docker's does (issue 16, item 5).
    os.write(master, b"echo in-$((1+1)) term=$TERM; exit 3\n")
    out = read_until(master, b"term=xterm")
    assert b"in-2 term=xterm" in out, out
    assert p.wait(timeout=10) == 3
    os.close(master)
    os.close(slave)
    env.mc("rm", "-f", cid, check=True)


def test_inspect(env, tmp_path):
    cid = run(env, "-d", "--name", "insp", "--hostname", "h1", "-v", f"{tmp_path}:/data:ro", "--network", "none",
              "--rootfs", ROOTFS, "/bin/sleep", "60").stdout.strip()
    [i] = json.loads(env.mc("inspect", "insp").stdout)
    assert i["Id"] == cid and i["Name"] == "insp" and i["Path"] == "/bin/sleep" and i["Args"] == ["60"]
    assert i["Config"]["Cmd"] == ["/bin/sleep", "60"]
    assert i["State"]["Status"] == "running" and i["State"]["Running"] and i["State"]["Pid"] > 0
    assert i["State"]["ExitCode"] == 0 and i["State"]["StartedAt"] != "0001-01-01T00:00:00Z"
    assert i["State"]["FinishedAt"] == "0001-01-01T00:00:00Z"
    assert {"Type": "bind", "Source": str(tmp_path), "Destination": "/data", "Mode": "ro", "RW": False,
            "Propagation": "rprivate"} in i["Mounts"]
    assert i["HostConfig"]["NetworkMode"] == "none"
    assert i["Config"]["Hostname"] == "h1" and i["Config"]["Annotations"]["org.minicontainer.name"] == "insp"
    env.mc("stop", "-t", "0", "insp", check=True)
    [i] = json.loads(env.mc("inspect", cid).stdout)
    assert i["State"]["Status"] == "exited" and i["State"]["ExitCode"] == 137
    assert i["State"]["FinishedAt"] != "0001-01-01T00:00:00Z" and i["State"]["Pid"] == 0
    r = env.mc("inspect", "nosuch")
    assert r.returncode == 125 and json.loads(r.stdout) == []


def test_concurrent_runs_of_one_name_one_wins(env):
    procs = [env.popen("run", "-d", "--name", "same", "--rootfs", ROOTFS, "/bin/sleep", "60",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(5)]
    results = [(p.wait(timeout=30), p.stdout.read(), p.stderr.read()) for p in procs]
    wins = [r for r in results if r[0] == 0]
    assert len(wins) == 1, results
    assert all(r[0] == 125 and "already in use" in r[2] for r in results if r[0] != 0)
    assert env.ids() == [wins[0][1].strip()]


def test_another_root_neither_misreports_nor_removes_a_running_container(env):
    # A run-mode container belongs to the --root it was run with. Another
    # --root over the same data dir used to show it as Created, and rm
    # deleted its files while it ran, leaving its lease, cgroup and state.
    r = run(env, "-d", "--name", "keep", "--rootfs", ROOTFS, "/bin/sleep", "1000")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    other = env.root + "-other"
    def mc_other(*args):
        return subprocess.run([BIN, "--root", other, *args], capture_output=True, text=True, env=env.environ, timeout=30)
    try:
        r = mc_other("ps", "-a", "--format", "json")
        assert r.returncode == 0 and json.loads(r.stdout) == [], r.stdout
        for args in (["rm", "-f", "keep"], ["stop", "keep"], ["rm", cid[:12]]):
            r = mc_other(*args)
            one_line_error(r)
            assert f"--root {env.root}" in r.stderr or f'--root "{env.root}"' in r.stderr, r.stderr
        r = mc_other("rm", "-f", "--all")
        assert r.returncode == 0 and r.stdout == "", r.stdout
        r = mc_other("prune")
        assert r.returncode == 0 and r.stdout == "", r.stdout
        # Still running, with its files and overlay, under its own --root.
        [c] = env.ps()
        assert c["id"] == cid and c["state"] == "running", c
        assert env.ids() == [cid]
        assert any(m.startswith(env.dir(cid)) for m in mountinfo())
        assert os.path.isdir(os.path.join(env.root, cid))
    finally:
        subprocess.run(["rm", "-rf", other])
    assert env.mc("rm", "-f", "keep").returncode == 0
    env.assert_clean([cid])


def test_names_and_short_ids_everywhere(env):
    """--network container:NAME (and a short id), update and events take a
    name or a unique id prefix, as state, pause, exec and kill do (issue 16,
    items 2 and 3)."""
    assert run(env, "-d", "--name", "ux-web", "--rootfs", ROOTFS, "sleep", "60").returncode == 0
    try:
        cid = next(c["id"] for c in env.ps() if c["name"] == "ux-web")
        pid = json.loads(env.mc("state", "ux-web", check=True).stdout)["pid"]
        ns = os.readlink(f"/proc/{pid}/ns/net")
        for ref in ("ux-web", cid[:12]):
            r = run(env, "--rm", "--network", f"container:{ref}", "--rootfs", ROOTFS, "readlink", "/proc/self/ns/net")
            assert r.returncode == 0, r.stderr
            assert r.stdout.strip() == ns
        assert env.mc("update", "--memory", "64m", "ux-web").returncode == 0
        with open(f"/sys/fs/cgroup/memory/minicontainer/{cid}/memory.limit_in_bytes") as f:
            assert int(f.read()) == 64 << 20
        stats = json.loads(env.mc("events", "--stats", cid[:12]).stdout)
        assert stats["id"] == cid and stats["data"]["memory"]["usage"]["limit"] == 64 << 20
        r = env.mc("update", "--memory", "64m", "ux-nosuch")
        one_line_error(r)
        assert "ux-nosuch" in r.stderr
    finally:
        env.mc("rm", "-f", "ux-web")
    env.assert_clean()


def test_an_exited_container_is_not_running_not_missing(env):
    """exec, kill, pause and resume on a run-mode container that has exited
    say it is not running, with the name typed (issue 16, item 6)."""
    assert run(env, "-d", "--name", "ux-st", "--network", "none", "--rootfs", ROOTFS, "true").returncode == 0
    try:
        assert wait_for(lambda: any(c["name"] == "ux-st" and c["state"] == "exited"
                                    for c in json.loads(env.mc("ps", "-a", "--format", "json").stdout)))
        for cmd in (["exec", "ux-st", "true"], ["kill", "ux-st"], ["pause", "ux-st"], ["resume", "ux-st"]):
            r = env.mc(*cmd)
            one_line_error(r)
            assert "container ux-st is not running" in r.stderr, (cmd, r.stderr)
        r = env.mc("kill", "ux-nosuch")
        one_line_error(r)
        assert "container ux-nosuch does not exist" in r.stderr
    finally:
        env.mc("rm", "-f", "ux-st")
    env.assert_clean()


def test_user_name_gets_its_supplementary_groups(env, tmp_path):
    """-u NAME (and a uid with a passwd entry) takes the groups of
    /etc/group that list the user, as Docker does (issue 16, item 11)."""
    root = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", ROOTFS, str(root)], check=True)
    with open(root / "etc" / "group", "a") as f:
        f.write("staff:x:50:nobody,daemon\naudio:x:29:nobody\nother:x:70:root\n")
    for user in ("nobody", "65534"):
        r = run(env, "--rm", "--network", "none", "-u", user, "--rootfs", str(root), "id")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "uid=65534(nobody) gid=65534(nogroup) groups=29(audio),50(staff)", r.stdout
    r = run(env, "--rm", "--network", "none", "-u", "nobody:root", "--rootfs", str(root), "id", "-G")
    assert r.stdout.split() == ["0", "29", "50"], r.stdout
    env.assert_clean()


def test_read_only_keeps_tmp_run_and_var_tmp_writable(env):
    """--read-only mounts tmpfs on /run, /tmp and /var/tmp, as podman does,
    unless --read-only-tmpfs=false (issue 16, item 11)."""
    r = run(env, "--rm", "--network", "none", "--read-only", "--rootfs", ROOTFS, "sh", "-c",
            "touch /tmp/a /run/b /var/tmp/c && echo ok; touch /etc/x 2>/dev/null || echo etc-ro; grep -cE ' /(tmp|run|var/tmp) tmpfs ' /proc/mounts")
    assert r.returncode == 0 and r.stdout.split() == ["ok", "etc-ro", "3"], (r.stdout, r.stderr)
    r = run(env, "--rm", "--network", "none", "--read-only", "--read-only-tmpfs=false", "--rootfs", ROOTFS,
            "sh", "-c", "touch /tmp/a 2>/dev/null || echo tmp-ro")
    assert r.stdout.strip() == "tmp-ro", r.stdout
    one_line_error(run(env, "--rm", "--read-only-tmpfs", "maybe", "--rootfs", ROOTFS, "true"))
    env.assert_clean()


def test_one_phrasing_for_a_missing_container(env):
    """Every command says `container NAME does not exist` for a name
    nothing has (issue 16, item 10: the engine said `no such container`)."""
    for cmd in ("rm", "logs", "inspect", "stop", "kill", "state", "exec"):
        r = env.mc(cmd, "ux-none", *(["true"] if cmd == "exec" else []))
        one_line_error(r)
        assert "container ux-none does not exist" in r.stderr, (cmd, r.stderr)


def test_detached_monitor_does_not_hold_the_callers_descriptors(env, tmp_path):
    """`run -d` from a script holding a lock (flock on an inherited fd):
    the monitor left for the container's life must not keep the caller's
    descriptors open, or the lock is held until the container exits."""
    lock = tmp_path / "lock"
    lock.touch()
    fd = os.open(lock, os.O_RDONLY)  # inheritable: no close-on-exec
    os.set_inheritable(fd, True)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        r = subprocess.run(env.cmd("run", "-d", "--name", "fdleak", "--network", "none", "--rootfs", ROOTFS, "sleep", "60"),
                           capture_output=True, text=True, env=env.environ, timeout=60, pass_fds=(fd,))
        assert r.returncode == 0, r.stderr
    finally:
        os.close(fd)
    try:
        # Nobody holds the lock now: it can be taken at once.
        other = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
        # No process of the container's (monitor, init) has the file open.
        holders = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                for f in os.listdir(f"/proc/{p}/fd"):
                    if os.readlink(f"/proc/{p}/fd/{f}") == str(lock):
                        holders.append(p)
            except OSError:
                continue
        assert holders == [], holders
    finally:
        env.mc("rm", "-f", "fdleak")
    env.assert_clean()
