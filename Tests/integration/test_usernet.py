"""User-mode networks (issue 18): --network slirp4netns and --network pasta.

As root (both modes are allowed there, as podman allows them): the tap0
address and default route inside, published ports reached from 127.0.0.1
(tcp, and udp through pasta), `port`/`inspect`/`ps` showing them, two
containers at once, and the helper never outliving the container: after
rm, after `kill -9` of the monitor and the container's end, after a failed
create, and for a short-lived OCI `create` whose init is killed. As the
unprivileged user of the rootless fixtures: the same ports and nothing left.

Traffic only goes to 127.0.0.1 and into the containers' own namespaces; no
test reaches an outside address (slirp4netns runs with
--disable-host-loopback, pasta with --no-map-gw, -T none -U none).
"""
import json
import os
import signal
import socket
import subprocess
import uuid

import pytest

from conftest import BIN, ROOTFS, probe_rootfs_with
from test_run import wait_for

UDP_ECHO = r"""
#include <netinet/in.h>
#include <sys/socket.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
int main(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET; a.sin_port = htons(53); a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) return 1;
    for (;;) {
        char buf[512], out[600];
        struct sockaddr_in from; socklen_t len = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n < 0) continue;
        int f = open("/tmp/got", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (f >= 0) { write(f, buf, n); write(f, "\n", 1); close(f); }
        memcpy(out, "echo:", 5); memcpy(out + 5, buf, n);
        sendto(s, out, n + 5, 0, (struct sockaddr *)&from, len);
    }
}
"""


@pytest.fixture(scope="module")
def udp_rootfs():
    """The busybox rootfs with /probe, a UDP echo server on port 53."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with probe_rootfs_with(ROOTFS, UDP_ECHO, "mc-usernet-udp-") as r:
        yield r


def udp_echo(port, text):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    try:
        s.sendto(text.encode(), ("127.0.0.1", port))
        return s.recv(600).decode()
    except OSError:
        return ""
    finally:
        s.close()


HELPERS = ("slirp4netns", "pasta", "passt.avx2", "passt")


def helper_pids():
    """Live (not zombie) slirp4netns and pasta processes."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        state = st[st.rindex(")") + 2]
        if state not in "ZX" and (comm in HELPERS or comm == "mc-usernet"):
            out.append(int(d))
    return out


def http_get(port, path="/passwd", host="127.0.0.1"):
    """The reply to a GET ("" when the connection fails or is closed at once)."""
    try:
        return _http_get(port, path, host)
    except OSError:
        return ""


def _http_get(port, path, host):
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    return data.decode(errors="replace")


def port_free(port):
    """No socket listens on (tcp) or is bound to (udp) `port` (a connection
    in TIME_WAIT is no user of it)."""
    for table, state in (("/proc/net/tcp", "0A"), ("/proc/net/udp", "07")):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == state and int(fields[1].split(":")[1], 16) == port:
                    return False
    return True


class Env:
    def __init__(self, tmp):
        tag = uuid.uuid4().hex[:12]
        self.root = f"/run/minicontainer-test/un-{tag}"
        self.data = f"/run/minicontainer-test-data/un-{tag}"
        self.net = f"/run/minicontainer-test-net/un-{tag}"
        self.tmp = tmp
        self.environ = dict(os.environ, MINICONTAINER_DATA=self.data, MINICONTAINER_NETWORK_DIR=self.net)

    def mc(self, *args, timeout=60, check=False):
        r = subprocess.run([BIN, "--root", self.root, *args], capture_output=True, text=True,
                           env=self.environ, timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            assert r.returncode == 0, f"minicontainer {' '.join(args)}: {r.returncode}: {r.stderr}"
        return r

    def httpd(self, network, *ports, name=None, rootfs=ROOTFS, udp=False):
        flags = ["--network", network]
        for p in ports:
            flags += ["-p", p]
        if name:
            flags += ["--name", name]
        cmd = ["sh", "-c", "httpd -p 80 -h /etc && exec /probe"] if udp else ["httpd", "-f", "-p", "80", "-h", "/etc"]
        r = self.mc("run", "-d", *flags, "--rootfs", rootfs, *cmd, check=True)
        cid = r.stdout.strip()
        # run -d returns once httpd executes, not once it listens: wait for that.
        assert wait_for(lambda: any(":80 " in l and "LISTEN" in l
                                    for l in self.mc("exec", cid, "netstat", "-ltn").stdout.splitlines()), 10), \
            "httpd never listened"
        return cid

    def usernet_files(self):
        d = os.path.join(self.net, "usernet")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


@pytest.fixture
def env(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    before = helper_pids()
    e = Env(tmp_path)
    yield e
    e.mc("rm", "-f", "--all")
    # OCI containers too (create/start), which rm --all does not list: a
    # test that fails midway must not leave its init and helper running.
    for cid in e.mc("list", "-q").stdout.split():
        e.mc("delete", "--force", cid)
    e.mc("prune")
    subprocess.run(["rm", "-rf", e.root, e.data, e.net])
    for parent in {os.path.dirname(e.root), os.path.dirname(e.data), os.path.dirname(e.net)}:
        try:
            os.rmdir(parent)
        except OSError:
            pass
    assert wait_for(lambda: [p for p in helper_pids() if p not in before] == [], 10), "helper processes left"


def inside(env, cid, *cmd):
    return env.mc("exec", cid, *cmd, check=True).stdout


@pytest.mark.parametrize("mode", ["slirp4netns", "pasta"])
def test_published_port_tap_and_route(env, mode):
    before = helper_pids()
    cid = env.httpd(mode, "18091:80")
    # The helper runs, one of it, under our watcher.
    mine = [p for p in helper_pids() if p not in before]
    assert len(mine) == 2, mine
    addr = inside(env, cid, "ip", "-o", "-4", "addr", "show", "tap0")
    assert "10.0.2.100/24" in addr, addr
    route = inside(env, cid, "ip", "route")
    assert "default via 10.0.2.2 dev tap0" in route, route
    assert "mtu 65520" in inside(env, cid, "ip", "link", "show", "tap0")
    # From the host's loopback into the container's httpd.
    body = http_get(18091)
    assert body.startswith("HTTP/1.") and "root:x:0:0" in body, body
    # port, inspect and ps show the port, as for bridge mode.
    assert env.mc("port", cid, check=True).stdout.strip() == "80/tcp -> 0.0.0.0:18091"
    info = json.loads(env.mc("inspect", cid, check=True).stdout)[0]
    assert info["HostConfig"]["NetworkMode"] == mode
    assert info["NetworkSettings"]["IPAddress"] == "10.0.2.100"
    assert [p["HostPort"] for p in info["NetworkSettings"]["Ports"]["80/tcp"]] == ["18091"]
    ps = env.mc("ps", "--format", "{{.Ports}}", check=True).stdout
    assert "18091->80/tcp" in ps, ps
    # The helper has only stdio and what it needs: no state lock, no pipe of ours.
    helper = [p for p in mine if open(f"/proc/{p}/comm").read().strip() != "mc-usernet"][0]
    targets = [os.readlink(f"/proc/{helper}/fd/{f}") for f in os.listdir(f"/proc/{helper}/fd")]
    assert not [t for t in targets if env.root in t or env.data in t], targets
    assert os.readlink(f"/proc/{helper}/fd/0") == "/dev/null"
    # Gone with the container.
    env.mc("rm", "-f", cid, check=True)
    assert wait_for(lambda: not [p for p in helper_pids() if p not in before], 10), helper_pids()
    assert port_free(18091)
    assert env.usernet_files() == []


def test_slirp_ip_port_and_udp(env, udp_rootfs):
    cid = env.httpd("slirp4netns", "127.0.0.1:18094:80", "18095:53/udp", rootfs=udp_rootfs, udp=True)
    assert wait_for(lambda: "root:x:0:0" in http_get(18094), 10)
    ports = env.mc("port", cid, check=True).stdout.split("\n")
    assert "80/tcp -> 127.0.0.1:18094" in ports and "53/udp -> 0.0.0.0:18095" in ports, ports
    # Bound on 127.0.0.1 only, as asked: not on another address of the host.
    with open("/proc/net/tcp") as f:
        listening = [l.split()[1] for l in f.readlines()[1:] if l.split()[3] == "0A"]
    assert "0100007F:46AE" in listening and "00000000:46AE" not in listening, listening
    # udp: a datagram from the host's loopback reaches the server inside (its
    # reply does not come back to a loopback sender here, with either
    # helper: slirp4netns's --disable-host-loopback and pasta's --no-map-gw
    # stop what goes to 10.0.2.2, which stands for the host's loopback).
    assert wait_for(lambda: udp_echo(18095, "hello-udp") is not None
                    and "hello-udp" in env.mc("exec", cid, "cat", "/tmp/got").stdout, 10)


def test_pasta_ip_port_and_udp(env, udp_rootfs):
    cid = env.httpd("pasta", "127.0.0.1:18196:80", "18197:53/udp", rootfs=udp_rootfs, udp=True)
    assert wait_for(lambda: "root:x:0:0" in http_get(18196), 10)
    with open("/proc/net/tcp") as f:
        listening = [l.split()[1] for l in f.readlines()[1:] if l.split()[3] == "0A"]
    assert "0100007F:4714" in listening and "00000000:4714" not in listening, listening
    assert wait_for(lambda: udp_echo(18197, "hello-udp") is not None
                    and "hello-udp" in env.mc("exec", cid, "cat", "/tmp/got").stdout, 10)
    # pasta forwards nothing else: no automatic port from the host in (-T none).
    listening = [l.split()[3] for l in inside(env, cid, "netstat", "-ltn").splitlines() if "LISTEN" in l]
    assert listening and all(a.endswith(":80") for a in listening), listening


def test_two_containers_at_once(env):
    before = helper_pids()
    a = env.httpd("slirp4netns", "18098:80", name="una")
    b = env.httpd("pasta", "18099:80", name="unb")
    inside(env, a, "sh", "-c", "echo A > /etc/which")
    inside(env, b, "sh", "-c", "echo B > /etc/which")
    assert http_get(18098, "/which").endswith("A\n")
    assert http_get(18099, "/which").endswith("B\n")
    assert len([p for p in helper_pids() if p not in before]) == 4
    # One's end leaves the other's network alone.
    env.mc("stop", "-t", "1", a, check=True)
    assert wait_for(lambda: port_free(18098), 10)
    assert http_get(18099, "/which").endswith("B\n")
    env.mc("rm", "-f", a, b, check=True)
    assert wait_for(lambda: not [p for p in helper_pids() if p not in before], 10)


def test_port_taken_and_bad_values(env):
    s = socket.socket()
    s.bind(("127.0.0.1", 18100))
    s.listen(1)
    try:
        r = env.mc("run", "--rm", "--network", "slirp4netns", "-p", "18100:80", "--rootfs", ROOTFS, "true")
        assert r.returncode == 125 and "18100" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    finally:
        s.close()
    for bad in (["--network", "slirp"], ["--network", "slirp4netns,x"], ["--network", "pasta\nx"]):
        r = env.mc("run", "--rm", *bad, "--rootfs", ROOTFS, "true")
        assert r.returncode == 125 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for bad in ("18101:80,18102:81", "18101:80\n18102:81", '18101:80"}', "18101:80/tcp,udp"):
        r = env.mc("run", "--rm", "--network", "slirp4netns", "-p", bad, "--rootfs", ROOTFS, "true")
        assert r.returncode == 125 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
    r = env.mc("run", "--rm", "--network", "none", "-p", "18101:80", "--rootfs", ROOTFS, "true")
    assert r.returncode == 125 and "published ports need" in r.stderr
    assert env.usernet_files() == []


def test_bundle_annotation_injection_refused(env, tmp_path):
    """A bundle's ports annotation with ',' or JSON in it never reaches the
    helper: it is parsed into numbers, or refused."""
    b = tmp_path / "b"
    env.mc("spec", "--bundle", str(b), "--rootfs", ROOTFS, "--network", "slirp4netns", "--", "true", check=True)
    cfg = json.loads((b / "config.json").read_text())
    cfg["annotations"]["org.minicontainer.ports"] = '18102:80/tcp","host_addr":"0.0.0.0'
    (b / "config.json").write_text(json.dumps(cfg))
    before = helper_pids()
    r = env.mc("run", "--bundle", str(b), "inj" + uuid.uuid4().hex[:6])
    assert r.returncode != 0 and "published port" in r.stderr, r.stderr
    assert [p for p in helper_pids() if p not in before] == []
    assert port_free(18102)


def test_none_and_host_still_work(env):
    r = env.mc("run", "--rm", "--network", "none", "--rootfs", ROOTFS, "ip", "-o", "link", check=True)
    assert "lo:" in r.stdout and "tap0" not in r.stdout and "eth0" not in r.stdout
    r = env.mc("run", "--rm", "--network", "host", "--rootfs", ROOTFS, "cat", "/proc/net/dev", check=True)
    with open("/proc/net/dev") as f:
        assert sorted(l.split(":")[0].strip() for l in f.readlines()[2:]) == \
            sorted(l.split(":")[0].strip() for l in r.stdout.splitlines()[2:])


def test_foreground_run_rm(env):
    before = helper_pids()
    r = env.mc("run", "--rm", "--network", "slirp4netns", "--rootfs", ROOTFS, "ip", "-o", "-4", "addr", "show", "tap0",
               check=True)
    assert "10.0.2.100/24" in r.stdout
    assert wait_for(lambda: not [p for p in helper_pids() if p not in before], 10)
    assert env.usernet_files() == []


@pytest.mark.parametrize("mode", ["slirp4netns", "pasta"])
def test_monitor_killed(env, mode):
    """kill -9 of the detached monitor: the helper stays while the container
    runs (it still serves it), and goes when the container's init does."""
    before = helper_pids()
    cid = env.httpd(mode, "18103:80")
    state = json.loads(env.mc("state", cid, check=True).stdout)
    init = state["pid"]
    monitor = int(open(f"/proc/{init}/stat").read().rsplit(")", 1)[1].split()[1])
    assert "minicontainer" in open(f"/proc/{monitor}/cmdline").read()
    os.kill(monitor, signal.SIGKILL)
    assert "root:x:0:0" in http_get(18103)
    os.kill(init, signal.SIGKILL)
    assert wait_for(lambda: not [p for p in helper_pids() if p not in before], 10), helper_pids()
    assert wait_for(lambda: port_free(18103), 10)


def test_short_lived_create_and_failed_create(env, tmp_path):
    """An OCI create (which exits at once) leaves the helper to the watcher:
    it goes when the init is killed; a create that fails after the network
    is up (a failing createRuntime hook) leaves nothing."""
    before = helper_pids()
    b = tmp_path / "b"
    env.mc("spec", "--bundle", str(b), "--rootfs", ROOTFS, "--network", "slirp4netns", "-p", "18104:80", "--",
           "httpd", "-f", "-p", "80", "-h", "/etc", check=True)
    cid = "oc" + uuid.uuid4().hex[:8]
    with open(tmp_path / "out", "w") as out:
        r = subprocess.run([BIN, "--root", env.root, "create", "--bundle", str(b), cid], env=env.environ,
                           stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=30)
    assert r.returncode == 0, r.stderr
    assert len([p for p in helper_pids() if p not in before]) == 2
    env.mc("start", cid, check=True)
    # start returns once httpd executes, not once it listens.
    assert wait_for(lambda: "root:x:0:0" in http_get(18104), 10)
    env.mc("kill", cid, "KILL", check=True)
    assert wait_for(lambda: not [p for p in helper_pids() if p not in before], 10), helper_pids()
    env.mc("delete", cid, check=True)
    assert env.usernet_files() == []

    cfg = json.loads((b / "config.json").read_text())
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    (b / "config.json").write_text(json.dumps(cfg))
    cid = "of" + uuid.uuid4().hex[:8]
    with open(tmp_path / "out", "w") as out:
        r = subprocess.run([BIN, "--root", env.root, "create", "--bundle", str(b), cid], env=env.environ,
                           stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=30)
    assert r.returncode != 0
    assert [p for p in helper_pids() if p not in before] == []
    assert env.usernet_files() == []
    assert port_free(18104)


# MARK: rootless

def rootless_run_works(user, xdg):
    r = user.mc("run", "--rm", "--network", "none", "--rootfs", ROOTFS, "true", xdg=xdg)
    return r.returncode == 0, r.stderr.strip()


@pytest.fixture
def rootless(rootless_user, xdg):
    if os.stat("/dev/net/tun").st_mode & 0o006 != 0o006:
        pytest.skip("/dev/net/tun is not open to other users here (mode %o; Debian's udev makes it 0666): "
                    "no user-mode network can make its tap" % (os.stat("/dev/net/tun").st_mode & 0o777))
    ok, why = rootless_run_works(rootless_user, xdg)
    if not ok:
        pytest.skip(f"rootless run --rootfs does not work yet (the lead's part of issue 18): {why}")
    return rootless_user, xdg


@pytest.mark.parametrize("mode", ["slirp4netns", "pasta"])
def test_rootless_published_port(rootless, mode):
    user, xdg = rootless
    before = helper_pids()
    ids = []
    try:
        for port in (18081, 18082):
            r = user.mc("run", "-d", "--network", mode, "-p", f"{port}:80", "--rootfs", ROOTFS,
                        "httpd", "-f", "-p", "80", "-h", "/etc", xdg=xdg)
            assert r.returncode == 0, r.stderr
            ids.append(r.stdout.strip())
        for i, port in enumerate((18081, 18082)):
            user.mc("exec", ids[i], "sh", "-c", f"echo C{i} > /tmp/which", xdg=xdg)
        for port in (18081, 18082):
            assert wait_for(lambda: "root:x:0:0" in http_get(port), 10)
        mine = [p for p in helper_pids() if p not in before]
        helpers = [p for p in mine if open(f"/proc/{p}/comm").read().strip() != "mc-usernet"]
        assert len(helpers) == 2
        for p in helpers:  # the user's privileges, no more
            status = open(f"/proc/{p}/status").read()
            uids = [l for l in status.splitlines() if l.startswith("Uid:")][0].split()[1:]
            assert set(uids) == {str(user.uid)}, status
            # Capabilities only inside the container's user namespace (the user's own).
            if os.readlink(f"/proc/{p}/ns/user") == os.readlink("/proc/self/ns/user"):
                capeff = [l for l in status.splitlines() if l.startswith("CapEff:")][0].split()[1]
                assert int(capeff, 16) == 0, capeff
    finally:
        for cid in ids:
            user.mc("rm", "-f", cid, xdg=xdg)
    assert wait_for(lambda: not [p for p in helper_pids() if p not in before], 10), helper_pids()
    assert port_free(18081) and port_free(18082)


def test_rootless_default_is_slirp4netns(rootless):
    user, xdg = rootless
    r = user.mc("run", "--rm", "--rootfs", ROOTFS, "ip", "-o", "-4", "addr", "show", "tap0", xdg=xdg)
    if r.returncode != 0 or "10.0.2.100" not in r.stdout:
        pytest.skip(f"the rootless default network is not slirp4netns yet (RunFlags.defaultNetwork): {r.stderr.strip()}")
    assert "10.0.2.100/24" in r.stdout


# MARK: the tap is ours, persistent

IFF_TAP, IFF_NO_PI, IFF_PERSIST = 0x0002, 0x1000, 0x0800


def tun_flags(pid):
    """tun_flags of tap0 in the network namespace of `pid`, read through a
    sysfs mounted there in a private mount namespace (the container's own
    /sys may be the host's, bound: rootless)."""
    r = subprocess.run(["nsenter", "-t", str(pid), "-n", "unshare", "-m", "sh", "-c",
                        "mount -t sysfs none /mnt && cat /mnt/class/net/tap0/tun_flags"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip(), 16)


def test_slirp_tap_is_made_persistent_before_the_helper(env):
    """slirp4netns attaches to a tap we made persistent in the container's
    namespace, so its exit does not unregister the device (which took
    15-20 ms of every teardown); the device goes with the namespace."""
    before = helper_pids()
    cid = env.httpd("slirp4netns", "18196:80")
    pid = int(env.mc("inspect", "--format", "{{.State.Pid}}", cid, check=True).stdout)
    flags = tun_flags(pid)
    assert flags & (IFF_TAP | IFF_NO_PI | IFF_PERSIST) == IFF_TAP | IFF_NO_PI | IFF_PERSIST, hex(flags)
    assert "root:x:0:0" in http_get(18196)
    # The host's namespace has no tap of ours.
    assert not os.path.exists("/sys/class/net/tap0")
    env.mc("rm", "-f", cid, check=True)
    assert wait_for(lambda: not [p for p in helper_pids() if p not in before], 10), helper_pids()


def test_rootless_slirp_tap_is_persistent(rootless):
    user, xdg = rootless
    r = user.mc("run", "-d", "--network", "slirp4netns", "--rootfs", ROOTFS, "sleep", "1000", xdg=xdg)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        pid = int(user.mc("inspect", "--format", "{{.State.Pid}}", cid, xdg=xdg).stdout)
        flags = tun_flags(pid)
        assert flags & (IFF_TAP | IFF_NO_PI | IFF_PERSIST) == IFF_TAP | IFF_NO_PI | IFF_PERSIST, hex(flags)
    finally:
        assert user.mc("rm", "-f", cid, xdg=xdg).returncode == 0
