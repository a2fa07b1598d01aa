"""The run flags of issue 16 with real effects: restart and stop policies,
env files and labels, entrypoint and cidfile, ulimits, /dev/shm, tmpfs and
--mount, /etc/hosts and resolv.conf, published ports, --init and HOME. Each
test has its own --root and data directory (test_run's Env), and the fixture
checks that nothing is left.
"""
import glob
import hashlib
import json
import os

import pytest

from conftest import BIN, ROOTFS, needs_root
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


# --env-file, --label, --label-file

def test_env_file_labels(env, tmp_path):
    ef = tmp_path / "env"
    ef.write_text("# a comment\n  A=from file\nB=x=y\nFROM_CALLER\nUNSET_HERE\n")
    lf = tmp_path / "labels"
    lf.write_text("team=infra\nflag\n")
    env.environ["FROM_CALLER"] = "caller's"
    r = run(env, "--rm", "--env-file", str(ef), "-e", "B=flag", "--label-file", str(lf), "--label", "team=web",
            "--name", "lab", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo \"$A|$B|$FROM_CALLER|${UNSET_HERE-unset}\"")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from file|flag|caller's|unset\n"
    bad = tmp_path / "bad"
    bad.write_text("OK=1\nBAD KEY=2\n")
    r = run(env, "--env-file", str(bad), "--rootfs", ROOTFS, "/bin/true")
    one_line_error(r)
    assert str(bad) in r.stderr and "line 2" in r.stderr and env.ids() == []
    r = run(env, "--label", "org.minicontainer.network=host", "--rootfs", ROOTFS, "/bin/true")
    one_line_error(r)


def test_labels_in_the_config(env, tmp_path):
    lf = tmp_path / "labels"
    lf.write_text("team=infra\nflag\n")
    cid = run(env, "-d", "--label-file", str(lf), "--label", "team=web", "-l", "v=1=2", "--rootfs", ROOTFS,
              "/bin/sleep", "60").stdout.strip()
    ann = config(env, cid)["annotations"]
    assert (ann["team"], ann["flag"], ann["v"]) == ("web", "", "1=2")
    assert ann["org.minicontainer.network"] == "bridge"
    env.mc("rm", "-f", cid, check=True)


# --entrypoint, --cidfile

def test_entrypoint_without_an_image(env):
    r = run(env, "--entrypoint", "/bin/echo", "--rootfs", ROOTFS, "a", "b")
    assert (r.returncode, r.stdout) == (0, "a b\n"), r.stderr
    r = run(env, "--entrypoint", "", "--rootfs", ROOTFS, "/bin/echo", "c")
    assert (r.returncode, r.stdout) == (0, "c\n"), r.stderr
    r = run(env, "--entrypoint", '["/bin/echo","x y"]', "--rootfs", ROOTFS, "z")
    assert (r.returncode, r.stdout) == (0, "x y z\n"), r.stderr


def test_cidfile(env, tmp_path):
    cidfile = tmp_path / "cid"
    r = run(env, "--cidfile", str(cidfile), "--rootfs", ROOTFS, "/bin/sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr
    [cid] = env.ids()
    assert cidfile.read_text() == cid
    # Refused when it exists, and the file is left as it was.
    r = run(env, "--cidfile", str(cidfile), "--rootfs", ROOTFS, "/bin/true")
    one_line_error(r)
    assert "exists" in r.stderr and env.ids() == [cid] and cidfile.read_text() == cid
    # A symlink in its place is not followed.
    target = tmp_path / "target"
    link = tmp_path / "link"
    os.symlink(target, link)
    one_line_error(run(env, "--cidfile", str(link), "--rootfs", ROOTFS, "/bin/true"))
    assert not target.exists() and env.ids() == [cid]
    # A run that fails takes its cidfile with it.
    gone = tmp_path / "gone"
    r = run(env, "--cidfile", str(gone), "--rootfs", ROOTFS, "/nonexistent")
    assert r.returncode == 127 and not gone.exists() and env.ids() == [cid]
    # Detached: written before run returns.
    d = tmp_path / "detached"
    did = run(env, "-d", "--cidfile", str(d), "--rootfs", ROOTFS, "/bin/sleep", "60").stdout.strip()
    assert d.read_text() == did
    env.mc("rm", "-f", did, cid, check=True)


# --ulimit, --shm-size, --tmpfs, --mount

def test_ulimits_in_proc_limits(env):
    r = run(env, "--rm", "--ulimit", "nofile=100:200", "--ulimit", "core=0", "--ulimit", "nproc=50", "--rootfs", ROOTFS,
            "/bin/sh", "-c", "grep -E 'open files|core file|processes' /proc/self/limits")
    assert r.returncode == 0, r.stderr
    rows = {" ".join(l.split()[:-3]): l.split()[-3:-1] for l in r.stdout.splitlines()}
    assert rows == {"Max core file size": ["0", "0"], "Max processes": ["50", "50"], "Max open files": ["100", "200"]}, rows
    # Above the hard limit we run with (no CAP_SYS_RESOURCE here): a clear error, nothing left.
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    r = run(env, "--ulimit", f"nofile={hard + 1}", "--rootfs", ROOTFS, "/bin/true")
    if r.returncode == 0:
        pytest.skip("this host lets the runtime raise its hard limit (CAP_SYS_RESOURCE)")
    one_line_error(r)
    assert f"above the hard limit {hard}" in r.stderr and env.ids() == []
    one_line_error(run(env, "--ulimit", "nofile=5:1", "--rootfs", ROOTFS, "/bin/true"))


def test_shm_size_tmpfs_and_mount(env, tmp_path):
    odd = tmp_path / "a dir,with=odd"
    odd.mkdir()
    (odd / "f").write_text("hello\n")
    r = run(env, "--rm", "--shm-size", "1m", "--tmpfs", "/scratch:size=2m,mode=700,noexec",
            "--mount", f'type=bind,"src={odd}",dst=/in=side,ro',
            "--mount", "type=tmpfs,dst=/t2,tmpfs-size=3m",
            "--rootfs", ROOTFS, "/bin/sh", "-c",
            "grep -E ' (/dev/shm|/scratch|/t2|/in=side) ' /proc/mounts; cat /in=side/f; touch /in=side/x 2>/dev/null || echo ro")
    assert r.returncode == 0, r.stderr
    mounts = {l.split()[1]: l.split()[3].split(",") for l in r.stdout.splitlines() if l.startswith(("shm", "tmpfs", "/"))}
    assert "size=1024k" in mounts["/dev/shm"]
    assert {"size=2048k", "mode=700", "noexec", "nosuid", "nodev"} <= set(mounts["/scratch"])
    assert "size=3072k" in mounts["/t2"]
    assert "ro" in mounts["/in=side"]
    assert r.stdout.endswith("hello\nro\n")
    for bad in ["/x:size=1x", "/a/../b", "rel", "/x:bogus"]:
        one_line_error(run(env, "--tmpfs", bad, "--rootfs", ROOTFS, "/bin/true"))
    one_line_error(run(env, "--mount", "type=bind,src=/tmp,dst=/a/../b", "--rootfs", ROOTFS, "/bin/true"))
    assert env.ids() == []


# --add-host, --dns, --dns-search, --dns-option

def test_hosts_and_resolv_conf(env):
    r = run(env, "--add-host", "db:10.1.2.3", "--add-host", "v6=fd00::1", "--dns", "192.0.2.53", "--dns", "2001:db8::53",
            "--dns-search", "example.com", "--dns-search", "corp.example", "--dns-option", "ndots:2",
            "--rootfs", ROOTFS, "/bin/sh", "-c", "cat /etc/hosts; echo ---; cat /etc/resolv.conf")
    assert r.returncode == 0, r.stderr
    hosts, resolv = r.stdout.split("---\n")
    assert hosts.splitlines()[:2] == ["10.1.2.3\tdb", "fd00::1\tv6"]
    assert "127.0.0.1\tlocalhost" in hosts
    lines = resolv.splitlines()
    assert lines == ["search example.com corp.example", "nameserver 192.0.2.53", "nameserver 2001:db8::53", "options ndots:2"], lines
    r = run(env, "--dns-search", ".", "--rootfs", ROOTFS, "/bin/cat", "/etc/resolv.conf")
    assert r.returncode == 0 and "search" not in r.stdout and "nameserver" in r.stdout


def test_hosts_and_resolv_conf_injection_is_refused(env):
    attempts = [
        ("--add-host", "evil\n6.6.6.6 injected:1.2.3.4"), ("--add-host", "a b:1.2.3.4"), ("--add-host", "a#b:1.2.3.4"),
        ("--add-host", "db:1.2.3.4 extra"), ("--add-host", "db:1.2.3.4\n6.6.6.6 x"), ("--add-host", "db:1.2.3"),
        ("--dns", "1.1.1.1\nnameserver 6.6.6.6"), ("--dns", "1.1.1.1 #"),
        ("--dns-search", "a.com\nnameserver 6.6.6.6"), ("--dns-search", "a.com b.com"), ("--dns-search", "a#b"),
        ("--dns-option", "ndots:1\nnameserver 6.6.6.6"), ("--dns-option", "ndots:1 rotate"), ("--dns-option", "#x"),
        ("--add-host", "db:host-gateway"),
    ]
    for flag, value in attempts:
        r = run(env, flag, value, "--rootfs", ROOTFS, "/bin/cat", "/etc/hosts", "/etc/resolv.conf")
        one_line_error(r)
        assert "6.6.6.6" not in r.stdout and env.ids() == [], (flag, value)


# HOME

def test_home_from_passwd(env):
    r = run(env, "--rootfs", ROOTFS, "/bin/sh", "-c", "echo $HOME; cd; pwd")
    assert r.stdout == "/root\n/root\n", r.stderr
    r = run(env, "-u", "65534", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo $HOME")
    assert r.stdout == "/nonexistent\n", r.stderr
    r = run(env, "-u", "4321", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo $HOME; cd; pwd")
    assert r.stdout == "/\n/\n", r.stderr
    r = run(env, "-e", "HOME=/tmp", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo $HOME")
    assert r.stdout == "/tmp\n", r.stderr
    cid = run(env, "-d", "--rootfs", ROOTFS, "/bin/sleep", "60").stdout.strip()
    assert env.mc("exec", cid, "/bin/sh", "-c", "echo $HOME").stdout == "/root\n"
    assert env.mc("exec", "-u", "65534", cid, "/bin/sh", "-c", "echo $HOME").stdout == "/nonexistent\n"
    assert env.mc("exec", "-e", "HOME=/x", cid, "/bin/sh", "-c", "echo $HOME").stdout == "/x\n"
    env.mc("rm", "-f", cid, check=True)


def test_home_with_a_hostile_passwd(env, tmp_path):
    # /etc/passwd a FIFO (would block a reader), then /dev/zero (endless):
    # HOME is "/" and the container runs.
    for target in ["fifo", "/dev/zero"]:
        vol = tmp_path / target.replace("/", "_")
        vol.mkdir()
        if target == "fifo":
            os.mkfifo(vol / "passwd")
            src = vol / "passwd"
            r = run(env, "-v", f"{src}:/etc/passwd", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo $HOME", timeout=30)
        else:
            r = run(env, "-v", "/dev/zero:/etc/passwd", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo $HOME", timeout=30)
        assert (r.returncode, r.stdout) == (0, "/\n"), (target, r.stderr)


# --init

def pids_current(cid):
    [f] = glob.glob(f"/sys/fs/cgroup/pids/**/{cid}/pids.current", recursive=True) \
        or glob.glob(f"/sys/fs/cgroup/**/{cid}/pids.current", recursive=True)
    with open(f) as fh:
        return int(fh.read())


def live_processes(cid):
    [f] = glob.glob(f"/sys/fs/cgroup/pids/**/{cid}/cgroup.procs", recursive=True) \
        or glob.glob(f"/sys/fs/cgroup/**/{cid}/cgroup.procs", recursive=True)
    with open(f) as fh:
        return len(fh.read().split())


ORPHANS = "i=0; while [ $i -lt 15 ]; do (/bin/sleep 0 &); i=$((i+1)); done; echo spawned"
ZOMBIES = "grep -l '^[0-9]* ([^)]*) Z' /proc/[0-9]*/stat 2>/dev/null | wc -l"


def test_without_init_zombies_fill_the_pids_limit(env):
    # PID 1 is sleep, which never waits: every orphan stays a zombie.
    cid = run(env, "-d", "--pids-limit", "10", "--rootfs", ROOTFS, "/bin/sleep", "1000").stdout.strip()
    r = env.mc("exec", cid, "/bin/sh", "-c", ORPHANS)
    assert "can't fork" in r.stderr, "forks should have hit the pids limit"
    # Only sleep lives (cgroup.procs), the rest of pids.current is zombies.
    assert live_processes(cid) == 1 and pids_current(cid) >= 6, (live_processes(cid), pids_current(cid))
    env.mc("rm", "-f", cid, check=True)


def test_init_reaps_orphans(env):
    cid = run(env, "-d", "--init", "--pids-limit", "10", "--rootfs", ROOTFS, "/bin/sleep", "1000").stdout.strip()
    assert config(env, cid)["annotations"]["org.minicontainer.init"] == "true"
    for _ in range(3):  # 45 orphans in all, far over the limit of 10
        r = env.mc("exec", cid, "/bin/sh", "-c", ORPHANS)
        assert r.returncode == 0 and r.stdout == "spawned\n", r.stderr
        assert wait_for(lambda: pids_current(cid) == 2)  # the init and sleep
    assert env.mc("exec", cid, "/bin/sh", "-c", ZOMBIES).stdout.strip() == "0"
    env.mc("rm", "-f", cid, check=True)


def test_init_forwards_signals_and_exit_codes(env):
    # sleep as PID 1 would ignore SIGTERM (the kernel drops it): stop must
    # SIGKILL it after the timeout (137). Under --init, sleep is PID 2 and the
    # forwarded SIGTERM kills it: 128+15.
    plain = run(env, "-d", "--stop-timeout", "1", "--rootfs", ROOTFS, "/bin/sleep", "1000").stdout.strip()
    inited = run(env, "-d", "--init", "--stop-timeout", "1", "--rootfs", ROOTFS, "/bin/sleep", "1000").stdout.strip()
    trapped = run(env, "-d", "--init", "--rootfs", ROOTFS, "/bin/sh", "-c", "trap 'exit 9' USR1; sleep 1000 & wait").stdout.strip()
    assert wait_for(lambda: env.mc("exec", trapped, "/bin/sh", "-c", "cat /proc/[0-9]*/comm | grep -cx sleep").stdout.strip() == "1")
    for cid in (plain, inited):
        env.mc("stop", cid, check=True)
    env.mc("kill", trapped, "USR1", check=True)
    assert wait_for(lambda: {x["id"]: x["exitCode"] for x in env.ps()}.get(trapped) is not None)
    codes = {x["id"]: x["exitCode"] for x in env.ps()}
    assert codes == {plain: 137, inited: 143, trapped: 9}, codes
    # Exit codes in the foreground: the program's, 128+N for a signal.
    assert run(env, "--rm", "--init", "--rootfs", ROOTFS, "/bin/sh", "-c", "exit 7").returncode == 7
    assert run(env, "--rm", "--init", "--rootfs", ROOTFS, "/bin/sh", "-c", "kill -USR2 $$").returncode == 128 + 12
    assert run(env, "--rm", "--init", "--rootfs", ROOTFS, "/nonexistent").returncode == 127
    r = run(env, "--rm", "--init", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo $$; ps -o pid,comm | grep -w 1")
    assert r.stdout.split()[0] == "2" and "minicontainer" in r.stdout, r.stdout


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


ATTACK = r"""
for p in /proc/1/exe /proc/1/fd/* /proc/1/map_files/*; do
  [ -e "$p" ] || [ -L "$p" ] || continue
  if (echo overwritten > "$p") 2>/dev/null; then echo "WROTE $p"; fi
  if (echo overwritten >> "$p") 2>/dev/null; then echo "APPENDED $p"; fi
done
ls /proc/1/fd 2>&1 | grep -v 'Permission denied' | grep . && echo "FDS LISTED"
ls /proc/1/map_files 2>&1 | grep -v -e 'Permission denied' -e 'Operation not permitted' | grep . && echo "MAPS LISTED"
echo done
"""


@pytest.mark.parametrize("extra", [[], ["--privileged"]])
def test_init_pid1_cannot_be_written_or_read(env, extra):
    # CVE-2019-5736 against --init: PID 1 stays our image. Even root with
    # every capability (--privileged: CAP_SYS_PTRACE, CAP_SYS_ADMIN) finds
    # /proc/1/exe read-only (the sealed re-execution), and PID 1 holds no fd.
    before = sha256(BIN)
    r = run(env, "--rm", "--init", *extra, "--rootfs", ROOTFS, "/bin/sh", "-c", ATTACK)
    assert r.returncode == 0, r.stderr
    assert "WROTE" not in r.stdout and "APPENDED" not in r.stdout, r.stdout
    assert r.stdout.endswith("done\n")
    if not extra:
        assert "FDS LISTED" not in r.stdout and "MAPS LISTED" not in r.stdout, r.stdout
    else:
        # Privileged may list them: there is nothing to list in fd.
        r2 = run(env, "--rm", "--init", *extra, "--rootfs", ROOTFS, "/bin/sh", "-c", "ls /proc/1/fd | wc -l")
        assert r2.stdout.strip() == "0", r2.stdout
    assert sha256(BIN) == before


# -p CTR, -p ranges, -P

def held(port):
    """Whether a host TCP port is taken (the run holds its published ports bound)."""
    import socket
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def test_random_and_ranged_host_ports(env):
    cid = run(env, "-d", "-p", "80", "-p", "127.0.0.1::81", "-p", "18300-18302:90-92", "--rootfs", ROOTFS,
              "/bin/sleep", "60").stdout.strip()
    assert len(cid) == 64, cid
    ports = config(env, cid)["annotations"]["org.minicontainer.ports"].split(",")
    assert len(ports) == 5, ports
    random80, random81 = ports[0], ports[1]
    assert random80.endswith(":80/tcp") and not random80.startswith("0:")
    assert random81.startswith("127.0.0.1:") and random81.endswith(":81/tcp") and ":0:" not in random81
    assert ports[2:] == ["18300:90/tcp", "18301:91/tcp", "18302:92/tcp"]
    for p in [int(random80.split(":")[0]), 18300, 18301, 18302]:
        assert held(p), p
    env.mc("rm", "-f", cid, check=True)
    assert wait_for(lambda: not held(18301))
    r = run(env, "-p", "18000-18002:80", "--rootfs", ROOTFS, "/bin/true")
    one_line_error(r)
    assert "different lengths" in r.stderr
    r = run(env, "-p", "18000:80", "-p", "18000:81", "--rootfs", ROOTFS, "/bin/true")
    one_line_error(r)
    assert "published twice" in r.stderr and env.ids() == []


def test_publish_all_and_entrypoint_with_an_image(env, tmp_path):
    import imagekit as ik
    lay = ik.busybox_layout(str(tmp_path), ROOTFS, tag="ports")
    lay.config("ports", "--config.entrypoint", "/bin/echo", "--config.entrypoint", "ep", "--config.cmd", "cmd",
               "--config.exposedports", "18400/tcp", "--config.exposedports", "18401/udp", "--config.exposedports", "18402")
    archive = ik.to_oci_archive(lay, "ports", str(tmp_path / "ports.tar"), "mc-test/ports:1")
    assert env.mc("load", "-i", archive).returncode == 0
    # --entrypoint with an image: it replaces Entrypoint and drops Cmd; "" clears both.
    assert run(env, "--rm", "mc-test/ports:1").stdout == "ep cmd\n"
    assert run(env, "--rm", "--entrypoint", "/bin/echo", "mc-test/ports:1", "x").stdout == "x\n"
    assert run(env, "--rm", "--entrypoint", "/bin/echo", "mc-test/ports:1").stdout == "\n"
    one_line_error(run(env, "--rm", "--entrypoint", "", "mc-test/ports:1"))
    assert run(env, "--rm", "--entrypoint", "", "mc-test/ports:1", "/bin/echo", "y").stdout == "y\n"
    # -P: every exposed port on a random host port; -p for one of them wins.
    cid = run(env, "-d", "-P", "-p", "18410:18400", "--entrypoint", "/bin/sleep", "mc-test/ports:1", "60").stdout.strip()
    assert len(cid) == 64, cid
    ports = config(env, cid)["annotations"]["org.minicontainer.ports"].split(",")
    assert ports[0] == "18410:18400/tcp"
    rest = sorted(p.split(":", 1)[1] for p in ports[1:])
    assert rest == ["18401/udp", "18402/tcp"], ports
    assert all(not p.startswith("0:") for p in ports), ports
    env.mc("rm", "-f", cid, check=True)
    env.mc("rmi", "mc-test/ports:1", check=True)
