"""The OCI lifecycle as root, on a busybox bundle: create, start, state, kill,
delete, run, list, ps, pause, resume, hooks, console socket, and what must
never be left behind. Real effects are read from inside the container."""
import array
import json
import os
import socket
import subprocess
import threading
import time
import uuid
import pytest
from conftest import BIN, ROOTFS, mc
from schemas import validate_state

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def cgroup_dirs(cid):
    found = []
    base = "/sys/fs/cgroup"
    for h in os.listdir(base):
        p = os.path.join(base, h, cid)
        if os.path.isdir(p):
            found.append(p)
    return found


class Env:
    """A private --root and helpers for one test; checks for leftovers."""

    def __init__(self, tmp_path, rootfs):
        self.tmp = tmp_path
        self.root = f"/run/minicontainer-test/{uuid.uuid4().hex[:12]}"
        self.rootfs = rootfs
        self.ids = []

    def id(self):
        cid = "t" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        return cid

    def mc(self, *args, **kw):
        return mc("--root", self.root, *args, **kw)

    def bundle(self, args, name="b", terminal=False, edit=None):
        d = self.tmp / name
        d.mkdir(exist_ok=True)
        r = mc("spec", "--bundle", str(d), "--force")
        assert r.returncode == 0, r.stderr
        cfg = json.loads((d / "config.json").read_text())
        cfg["root"]["path"] = self.rootfs
        cfg["process"]["args"] = args
        cfg["process"]["terminal"] = terminal
        if edit:
            edit(cfg)
        (d / "config.json").write_text(json.dumps(cfg))
        return str(d)

    def create(self, cid, bundle, *extra):
        """create with stdio in files (the init keeps create's stdio)."""
        out = open(self.tmp / f"{cid}.out", "w")
        err = open(self.tmp / f"{cid}.err", "w")
        r = subprocess.run([BIN, "--root", self.root, "create", "--bundle", bundle, *extra, cid],
                           stdout=out, stderr=err, stdin=subprocess.DEVNULL, timeout=30)
        out.close(); err.close()
        return r.returncode, (self.tmp / f"{cid}.err").read_text()

    def output(self, cid):
        return (self.tmp / f"{cid}.out").read_text()

    def state(self, cid):
        r = self.mc("state", cid)
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        validate_state(s)
        return s

    def close(self):
        for cid in self.ids:
            self.mc("delete", "--force", cid)
        left = [cid for cid in self.ids if os.path.exists(os.path.join(self.root, cid))]
        cg = [d for cid in self.ids for d in cgroup_dirs(cid)]
        subprocess.run(["rm", "-rf", self.root])
        try:
            os.rmdir(os.path.dirname(self.root))
        except OSError:
            pass
        assert not left, f"state left behind: {left}"
        assert not cg, f"cgroups left behind: {cg}"


@pytest.fixture
def env(tmp_path, binary, rootfs):
    e = Env(tmp_path, rootfs)
    yield e
    e.close()


def run(env, args, edit=None, timeout=30):
    b = env.bundle(args, name="run-" + uuid.uuid4().hex[:6], edit=edit)
    cid = env.id()
    r = subprocess.run([BIN, "--root", env.root, "run", "--bundle", b, cid], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return r


def test_run_exit_codes(env):
    assert run(env, ["/bin/true"]).returncode == 0
    assert run(env, ["/bin/sh", "-c", "exit 3"]).returncode == 3
    # sh as pid 1 ignores signals it has no handler for, even SIGKILL from inside.
    assert run(env, ["/bin/sh", "-c", "kill -9 $$; exit 4"]).returncode == 4


def test_run_forwards_signals_and_reports_128_plus_n(env):
    b = env.bundle(["/bin/sh", "-c", "trap 'echo got-term; exit 5' TERM; echo ready; while true; do sleep 0.05; done"])
    cid = env.id()
    p = subprocess.Popen([BIN, "--root", env.root, "run", "--bundle", b, cid], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(15)
    assert p.wait(timeout=10) == 5
    assert p.stdout.read() == "got-term\n"
    cid2 = env.id()
    b2 = env.bundle(["/bin/sh", "-c", "echo ready; exec sleep 100"], name="b2")
    p = subprocess.Popen([BIN, "--root", env.root, "run", "--bundle", b2, cid2], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert p.stdout.readline() == "ready\n"
    assert env.mc("kill", cid2, "KILL").returncode == 0
    assert p.wait(timeout=10) == 137
    assert not os.path.exists(os.path.join(env.root, cid2)), "run left its state behind"


def test_pid1_hostname_and_namespaces(env):
    r = run(env, ["/bin/sh", "-c", "echo $$; hostname; readlink /proc/self/ns/pid; readlink /proc/self/ns/uts"])
    assert r.returncode == 0, r.stderr
    pid, host, pidns, utsns = r.stdout.split()
    assert pid == "1"
    assert host == "minicontainer"
    assert pidns != os.readlink("/proc/self/ns/pid")
    assert utsns != os.readlink("/proc/self/ns/uts")


def test_mounts_masked_readonly(env):
    script = ("test -c /proc/keys && echo keys-masked; "
              "touch /proc/sys/kernel/x 2>/dev/null || echo procsys-ro; "
              "touch /newfile 2>/dev/null || echo root-ro; "
              "grep -q ' /proc proc ' /proc/mounts && echo proc; "
              "grep -q ' /dev/pts devpts ' /proc/mounts && echo devpts; "
              "test -c /dev/null && test -c /dev/zero && test -c /dev/urandom && echo devices; "
              "test -L /dev/fd && echo fd-link; "
              "ls /")
    r = run(env, ["/bin/sh", "-c", script])
    assert r.returncode == 0, r.stderr
    for word in ("keys-masked", "procsys-ro", "root-ro", "proc", "devpts", "devices", "fd-link"):
        assert word in r.stdout.split(), (word, r.stdout)


def test_mounts_by_descriptor_keep_their_options(env):
    """Spec mounts, masked and read-only paths go by descriptor (fsmount,
    open_tree, move_mount, mount_setattr): their options still hold, and the
    sysctl and oom_score_adj writes (through a procfs of the runtime's own)
    reach the container's kernel objects."""
    vol = env.tmp / "vol"
    vol.mkdir()
    (vol / "f").write_text("from-host\n")

    def edit(cfg):
        cfg["mounts"] += [
            {"destination": "/root", "type": "bind", "source": str(vol), "options": ["rbind", "ro", "nosuid"]},
            {"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "ro", "nodev", "mode=755"]},
            {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["noexec", "size=1m", "rprivate"]},
            {"destination": "/var", "type": "tmpfs", "source": "tmpfs", "options": ["rro"]},
        ]
        cfg["linux"]["maskedPaths"] += ["/etc/passwd", "/var"]
        cfg["linux"]["readonlyPaths"] += ["/run"]
        cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel/msgmax": "4096"}
        cfg["process"]["oomScoreAdj"] = 123
    script = ("cat /root/f; touch /root/g 2>/dev/null || echo vol-ro; "
              "grep ' /root ' /proc/self/mountinfo | grep -q nosuid && echo vol-nosuid; "
              "test -s /etc/group && echo etc-copied; touch /etc/x 2>/dev/null || echo etc-ro; "
              "grep ' /etc ' /proc/self/mountinfo | grep -q nodev && echo etc-nodev; "
              "test -c /etc/passwd && test ! -s /etc/passwd && echo passwd-masked; "
              "test -z \"$(ls -A /var)\" && echo var-masked; "
              "touch /run/x 2>/dev/null || echo run-ro; "
              "grep ' /run ' /proc/self/mountinfo | grep -q noexec && echo run-noexec; "
              "echo sysctl $(cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax); "
              "echo oom $(cat /proc/self/oom_score_adj)")
    r = run(env, ["/bin/sh", "-c", script], edit=edit)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "from-host", r.stdout
    for word in ("vol-ro", "vol-nosuid", "etc-copied", "etc-ro", "etc-nodev", "passwd-masked", "var-masked",
                 "run-ro", "run-noexec"):
        assert word in lines, (word, r.stdout)
    assert "sysctl 1 4096" in lines and "oom 123" in lines, r.stdout
    assert not (vol / "g").exists()


def test_proc_over_a_symlink_is_refused(env):
    """CVE-2019-19921: an image whose /proc is a symlink (into a volume, say)
    would get procfs mounted elsewhere and a fake /proc in its place."""
    rootfs = env.tmp / "rootfs"
    subprocess.run(["cp", "-a", env.rootfs, str(rootfs)], check=True)
    os.rmdir(rootfs / "proc")
    os.symlink("/tmp/p", rootfs / "proc")
    def edit(cfg):
        cfg["root"]["path"] = str(rootfs)
    r = run(env, ["/bin/true"], edit=edit)
    assert r.returncode == 125
    assert "mount proc on /proc: destination is a symlink" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not os.path.exists(rootfs / "tmp" / "p")


def test_user_caps_rlimits_env_cwd(env):
    def edit(cfg):
        cfg["process"]["user"] = {"uid": 65534, "gid": 65534, "additionalGids": [5]}
        cfg["process"]["env"].append("GREETING=hi")
        cfg["process"]["cwd"] = "/tmp"
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]
        # Ambient capabilities must also be inheritable to be raised.
        cfg["process"]["capabilities"]["inheritable"] = cfg["process"]["capabilities"]["ambient"]
    r = run(env, ["/bin/sh", "-c", "id -u; id -g; id -G; echo $GREETING; pwd; ulimit -n; grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status"], edit=edit)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "65534" and lines[1] == "65534"
    assert "5" in lines[2].split()
    assert lines[3] == "hi" and lines[4] == "/tmp" and lines[5] == "256"
    status = dict(l.split(":\t") for l in lines[6:])
    # CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29); a non-root user keeps the ambient ones.
    caps = (1 << 5) | (1 << 10) | (1 << 29)
    assert int(status["CapBnd"], 16) == caps
    assert int(status["CapAmb"], 16) == caps
    assert int(status["CapEff"], 16) == caps
    assert status["NoNewPrivs"] == "1"


def test_create_start_state_kill_delete(env):
    cid = env.id()
    b = env.bundle(["/bin/sh", "-c", "echo started; exec sleep 100"])
    pidfile = env.tmp / "pid"
    rc, err = env.create(cid, b, "--pid-file", str(pidfile))
    assert rc == 0, err
    s = env.state(cid)
    assert s["status"] == "created" and s["id"] == cid and s["bundle"] == b
    assert int(pidfile.read_text()) == s["pid"]
    assert env.output(cid) == ""  # nothing ran yet
    assert cgroup_dirs(cid), "no cgroup was made"
    with open(f"/sys/fs/cgroup/pids/{cid}/cgroup.procs") as f:
        assert str(s["pid"]) in f.read().split()
    # The init placed itself (tasks "0") in every v1 hierarchy and was cloned
    # into its cgroup2 cgroup: runc's default path /<id> in each.
    with open(f"/proc/{s['pid']}/cgroup") as f:
        lines = f.read().split()
    assert lines and all(line.endswith(f":/{cid}") for line in lines), lines
    for d in cgroup_dirs(cid):
        with open(os.path.join(d, "cgroup.procs")) as f:
            assert str(s["pid"]) in f.read().split(), d
    assert env.mc("start", cid).returncode == 0
    assert env.state(cid)["status"] == "running"
    time.sleep(0.2)
    assert env.output(cid) == "started\n"
    r = env.mc("start", cid)
    assert r.returncode == 125 and "running" in r.stderr
    r = env.mc("delete", cid)
    assert r.returncode == 125 and "not stopped" in r.stderr
    assert env.mc("kill", cid, "KILL").returncode == 0
    for _ in range(100):
        if env.state(cid)["status"] == "stopped":
            break
        time.sleep(0.05)
    s = env.state(cid)
    assert s["status"] == "stopped" and s["pid"] == 0
    r = env.mc("kill", cid)
    assert r.returncode == 125 and "not running" in r.stderr
    assert env.mc("delete", cid).returncode == 0
    assert not os.path.exists(os.path.join(env.root, cid))
    assert not cgroup_dirs(cid)
    r = env.mc("state", cid)
    assert r.returncode == 125 and "does not exist" in r.stderr


def test_delete_created_and_force_running(env):
    a, b = env.id(), env.id()
    bundle = env.bundle(["/bin/sleep", "100"])
    assert env.create(a, bundle)[0] == 0
    pid = env.state(a)["pid"]
    assert env.mc("delete", a).returncode == 0  # a created container is deleted (its init killed)
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert env.create(b, bundle)[0] == 0
    assert env.mc("start", b).returncode == 0
    assert env.mc("delete", "--force", b).returncode == 0
    assert not cgroup_dirs(b)


def test_kill_signal_names_and_numbers(env):
    bundle = env.bundle(["/bin/sh", "-c", "trap 'echo got-usr1' USR1; trap 'exit 0' TERM; echo ready; while true; do sleep 0.05; done"])
    cid = env.id()
    assert env.create(cid, bundle)[0] == 0
    assert env.mc("start", cid).returncode == 0
    for _ in range(100):
        if "ready" in env.output(cid):
            break
        time.sleep(0.05)
    # One at a time: pending standard signals of one kind merge.
    for n, name in enumerate(("SIGUSR1", "10", "usr1"), start=1):
        assert env.mc("kill", cid, name).returncode == 0
        for _ in range(100):
            if env.output(cid).count("got-usr1") == n:
                break
            time.sleep(0.02)
        assert env.output(cid).count("got-usr1") == n, (name, env.output(cid))
    r = env.mc("kill", cid, "NOPE")
    assert r.returncode == 125 and "unknown signal" in r.stderr
    assert env.mc("kill", cid).returncode == 0  # SIGTERM by default
    for _ in range(100):
        if env.state(cid)["status"] == "stopped":
            break
        time.sleep(0.05)
    assert env.state(cid)["status"] == "stopped"


def test_pause_resume(env):
    cid = env.id()
    bundle = env.bundle(["/bin/sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.01; done"],
                        edit=lambda c: c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}))
    assert env.create(cid, bundle)[0] == 0
    assert env.mc("start", cid).returncode == 0
    time.sleep(0.3)
    assert env.mc("pause", cid).returncode == 0
    assert env.state(cid)["status"] == "paused"
    pid = env.state(cid)["pid"]
    n1 = open(f"/proc/{pid}/root/tmp/n").read()
    time.sleep(0.3)
    assert open(f"/proc/{pid}/root/tmp/n").read() == n1, "a paused container advanced"
    assert env.mc("resume", cid).returncode == 0
    assert env.state(cid)["status"] == "running"
    time.sleep(0.3)
    assert open(f"/proc/{pid}/root/tmp/n").read() != n1


def test_list_and_ps(env):
    cid = env.id()
    assert env.create(cid, env.bundle(["/bin/sleep", "100"]))[0] == 0
    r = env.mc("list", "--format", "json")
    assert r.returncode == 0
    items = json.loads(r.stdout)
    assert [i["id"] for i in items] == [cid] and items[0]["status"] == "created"
    assert env.mc("list", "-q").stdout.split() == [cid]
    # The table's columns fit a 64-hex id (issue 16, item 10): it is
    # apart from its PID, and every header lines up with its column.
    long_id = (cid * 64)[:64]
    assert env.create(long_id, env.bundle(["/bin/sleep", "100"]))[0] == 0
    try:
        head, *lines = env.mc("list").stdout.splitlines()
        row = next(l for l in lines if l.startswith(long_id))
        assert row.split()[:3] == [long_id, str(env.state(long_id)["pid"]), "created"], row
        assert head.index("PID") == row.index(str(env.state(long_id)["pid"])) and head.index("PID") > 64
    finally:
        env.mc("delete", "--force", long_id)
    r = env.mc("ps", "--format", "json", cid)
    assert json.loads(r.stdout) == [env.state(cid)["pid"]]


def test_missing_binary_fails_create_and_leaves_nothing(env):
    cid = env.id()
    rc, err = env.create(cid, env.bundle(["nonexistent-program"]))
    assert rc == 125
    assert err.startswith(f"minicontainer: create {cid}: ") and "executable file not found in $PATH" in err
    assert len(err.splitlines()) == 1
    assert not os.path.exists(os.path.join(env.root, cid)) and not cgroup_dirs(cid)
    rc, err = env.create(cid, env.bundle(["/no/such/file"]))
    assert rc == 125 and "no such file or directory" in err


def test_bad_rootfs_and_mount_fail_cleanly(env):
    cid = env.id()
    rc, err = env.create(cid, env.bundle(["/bin/true"], edit=lambda c: c["root"].update(path="/nonexistent")))
    assert rc == 125 and "root.path" in err and len(err.splitlines()) == 1
    def bad_mount(cfg):
        cfg["mounts"].append({"destination": "/x", "type": "bind", "source": "/nonexistent/src", "options": ["bind"]})
    rc, err = env.create(cid, env.bundle(["/bin/true"], edit=bad_mount))
    assert rc == 125 and "/nonexistent/src" in err, err
    assert not os.path.exists(os.path.join(env.root, cid)) and not cgroup_dirs(cid)


def test_concurrent_create_one_wins(env):
    cid = env.id()
    bundle = env.bundle(["/bin/sleep", "100"])
    # stderr into files: the winner's init keeps create's stdio open.
    errs = [open(env.tmp / f"err{i}", "w+") for i in range(4)]
    procs = [subprocess.Popen([BIN, "--root", env.root, "create", "--bundle", bundle, cid],
                              stdout=subprocess.DEVNULL, stderr=errs[i], stdin=subprocess.DEVNULL) for i in range(4)]
    results = [(p.wait(timeout=30), (env.tmp / f"err{i}").read_text()) for i, p in enumerate(procs)]
    ok = [r for r in results if r[0] == 0]
    assert len(ok) == 1, results
    assert all("already exists" in e for c, e in results if c != 0)
    assert env.state(cid)["status"] == "created"


def test_hooks_order_and_stdin(env):
    log = env.tmp / "hooks.log"
    def hook(kind):
        return {"path": "/bin/sh", "args": ["sh", "-c", f"read s; echo {kind} \"$s\" >> {log}"]}
    def edit(cfg):
        cfg["hooks"] = {k: [hook(k)] for k in ("prestart", "createRuntime", "poststart", "poststop")}
    cid = env.id()
    bundle = env.bundle(["/bin/true"], edit=edit)
    assert env.create(cid, bundle)[0] == 0
    assert env.mc("start", cid).returncode == 0
    time.sleep(0.2)
    assert env.mc("delete", cid).returncode == 0
    lines = log.read_text().splitlines()
    assert [l.split()[0] for l in lines] == ["prestart", "createRuntime", "poststart", "poststop"]
    states = [json.loads(l.split(" ", 1)[1]) for l in lines]
    assert all(s["id"] == cid and s["bundle"] == bundle for s in states)
    assert states[0]["status"] == "created" and states[2]["status"] == "running" and states[3]["status"] == "stopped"


def test_post_hooks_are_the_ones_create_saw(env):
    # The spec: changes to config.json after create do not affect the container.
    log = env.tmp / "hooks.log"
    def hook(word):
        return {"path": "/bin/sh", "args": ["sh", "-c", f"echo {word} >> {log}"]}
    cid = env.id()
    bundle = env.bundle(["/bin/true"], edit=lambda c: c.update(hooks={"poststart": [hook("start-at-create")],
                                                                      "poststop": [hook("stop-at-create")]}))
    assert env.create(cid, bundle)[0] == 0
    cfg_path = os.path.join(bundle, "config.json")
    cfg = json.loads(open(cfg_path).read())
    cfg["hooks"] = {"poststart": [hook("start-edited")], "poststop": [hook("stop-edited")]}
    open(cfg_path, "w").write(json.dumps(cfg))
    assert env.mc("start", cid).returncode == 0
    time.sleep(0.2)
    assert env.mc("delete", cid).returncode == 0
    assert log.read_text().split() == ["start-at-create", "stop-at-create"]


def test_failing_prestart_hook_cleans_up(env):
    cid = env.id()
    bundle = env.bundle(["/bin/true"], edit=lambda c: c.update(hooks={"prestart": [{"path": "/bin/false"}]}))
    rc, err = env.create(cid, bundle)
    assert rc == 125 and "prestart hook 0 (/bin/false) exited with status 1" in err
    assert not os.path.exists(os.path.join(env.root, cid)) and not cgroup_dirs(cid)


def test_console_socket(env):
    sock_path = str(env.tmp / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    got = {}

    def receive():
        conn, _ = srv.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(data[:fds.itemsize])
        got["name"] = msg.decode()
        got["fd"] = fds[0]
        conn.close()

    t = threading.Thread(target=receive)
    t.start()
    cid = env.id()
    # /dev/console is the terminal too, as runc binds it (by descriptor).
    bundle = env.bundle(["/bin/sh", "-c", "tty; stat -c console-%t:%T /dev/console $(tty); echo hello-tty"], terminal=True)
    rc, err = env.create(cid, bundle, "--console-socket", sock_path)
    t.join(10)
    srv.close()
    assert rc == 0, err
    assert got["name"].startswith("/dev/pts/")
    assert env.mc("start", cid).returncode == 0
    out = b""
    deadline = time.time() + 5
    while time.time() < deadline and b"hello-tty" not in out:
        try:
            chunk = os.read(got["fd"], 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(got["fd"])
    assert b"/dev/pts/0" in out and b"hello-tty" in out, out
    consoles = [l for l in out.split() if l.startswith(b"console-")]
    assert len(consoles) == 2 and consoles[0] == consoles[1], out


def test_invalid_ids_and_unknown_container(env):
    r = env.mc("state", "../etc")
    assert r.returncode == 125 and "invalid container id" in r.stderr
    r = env.mc("start", "nope")
    assert r.returncode == 125 and "does not exist" in r.stderr
    assert env.mc("delete", "--force", "nope").returncode == 0


def test_exec(env):
    cid = env.id()
    assert env.create(cid, env.bundle(["/bin/sleep", "100"]))[0] == 0
    r = env.mc("exec", cid, "/bin/true")
    assert r.returncode == 125 or r.returncode == 0  # runc allows exec in a created container
    assert env.mc("start", cid).returncode == 0
    init_mnt = os.readlink(f"/proc/{env.state(cid)['pid']}/ns/mnt")
    r = env.mc("exec", "-e", "X=42", "--cwd", "/tmp", cid, "/bin/sh", "-c", "echo $$ $X $(pwd); hostname; readlink /proc/self/ns/mnt; cat /proc/1/cmdline")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    pid, x, cwd = lines[0].split()
    assert int(pid) > 1 and x == "42" and cwd == "/tmp"
    assert lines[1] == "minicontainer" and lines[2] == init_mnt and lines[3].startswith("/bin/sleep")
    assert env.mc("exec", cid, "sh", "-c", "exit 7").returncode == 7
    r = env.mc("exec", "--user", "65534:65534", cid, "id", "-u")
    assert r.stdout.strip() == "65534"
    # An empty user or group field is one line and 125 (--user "" trapped).
    for bad in ["", ":", "1:", ":1", "1:2:3"]:
        r = env.mc("exec", "--user", bad, cid, "id", "-u")
        assert r.returncode == 125 and len(r.stderr.splitlines()) == 1 and "--user" in r.stderr, (bad, r.stderr)
    r = env.mc("exec", cid, "nosuchprogram")
    assert r.returncode == 125 and "executable file not found in $PATH" in r.stderr
    proc = env.tmp / "process.json"
    proc.write_text(json.dumps({"args": ["/bin/sh", "-c", "echo from-json $Y"], "cwd": "/", "env": ["Y=yes"],
                                "user": {"uid": 0, "gid": 0}}))
    r = env.mc("exec", "--process", str(proc), cid)
    assert r.returncode == 0 and r.stdout == "from-json yes\n", r.stderr
    pidfile = env.tmp / "exec.pid"
    # A detached process keeps exec's stdio: give it none to wait on.
    r = subprocess.run([BIN, "--root", env.root, "exec", "--detach", "--pid-file", str(pidfile), cid, "sleep", "50"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    assert r.returncode == 0
    xpid = int(pidfile.read_text())
    assert xpid in json.loads(env.mc("ps", "--format", "json", cid).stdout)
    # exec'd processes are in the container's cgroup
    with open(f"/proc/{xpid}/cgroup") as f:
        assert all(line.endswith(f":/{cid}") for line in f.read().split())


def test_delete_force_recovers_a_create_killed_midway(env):
    """The runtime is SIGKILLed while a prestart hook runs (init cloned, cgroup
    made, state written): delete --force must remove all of it."""
    marker = env.tmp / "hook-started"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}; sleep 1"]}
    bundle = env.bundle(["/bin/true"], edit=lambda c: c.update(hooks={"prestart": [hook]}))
    cid = env.id()
    p = subprocess.Popen([BIN, "--root", env.root, "create", "--bundle", bundle, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if marker.exists():
            break
        time.sleep(0.01)
    assert marker.exists()
    p.kill()
    p.wait()
    assert cgroup_dirs(cid), "expected the half-made container's cgroup"
    s = env.state(cid)
    assert s["status"] in ("creating", "stopped")
    r = env.mc("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(env.root, cid))
    assert not cgroup_dirs(cid)
    time.sleep(1.1)  # let the orphaned hook finish


def test_no_mount_namespace_shares_ours_and_mounts_nothing(env):
    """Without a mount namespace the container shares the runtime's and is
    only chrooted: the host's mount table is untouched."""
    before = open("/proc/self/mountinfo").read()
    def edit(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "mount"]
    r = run(env, ["/bin/sh", "-c", "ls /bin/busybox"], edit=edit)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "/bin/busybox"
    cid = env.id()
    b = env.bundle(["/bin/sleep", "100"], name="nomnt", edit=edit)
    assert env.create(cid, b)[0] == 0
    pid = env.state(cid)["pid"]
    assert os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    assert os.readlink(f"/proc/{pid}/root") == env.rootfs
    assert open("/proc/self/mountinfo").read() == before


def test_edits_to_the_bundle_after_create_do_not_reach_exec_or_update(env):
    # runtime-spec: changes to config.json after create do not affect the
    # container. create keeps a copy; exec (process defaults, namespaces,
    # seccomp) and update (its merge base) read it, not the bundle.
    cid = env.id()
    def first(c):
        c["process"]["env"] = ["PATH=/bin", "WHO=at-create"]
        c["linux"]["resources"] = {"pids": {"limit": 50}}
        c["hostname"] = "at-create"
    bundle = env.bundle(["/bin/sleep", "100"], edit=first)
    assert env.create(cid, bundle)[0] == 0
    assert env.mc("start", cid).returncode == 0
    cfg_path = os.path.join(bundle, "config.json")
    cfg = json.loads(open(cfg_path).read())
    cfg["process"]["env"] = ["PATH=/bin", "WHO=edited"]
    cfg["linux"]["resources"] = {"pids": {"limit": 77}}
    # No uts namespace (exec would stay in the host's) and a filter that
    # makes mkdir fail.
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "uts"]
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    open(cfg_path, "w").write(json.dumps(cfg))
    r = env.mc("exec", cid, "/bin/sh", "-c", "echo $WHO; hostname; mkdir /dev/d && echo made")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["at-create", "at-create", "made"]
    assert env.mc("update", "--memory", "64m", cid).returncode == 0
    pids = f"/sys/fs/cgroup/pids/{cid}/pids.max"
    mem = f"/sys/fs/cgroup/memory/{cid}/memory.limit_in_bytes"
    assert open(pids).read().strip() == "50"
    assert open(mem).read().strip() == str(64 << 20)
    assert env.mc("delete", "--force", cid).returncode == 0
