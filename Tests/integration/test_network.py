"""Networking as root (issue 6): the bridge, veth and addresses, lo, the
default route, container-to-container traffic, published ports from the host
(127.0.0.1 and the gateway) and from other containers, masquerade towards an
"upstream" network namespace of our own, --network none / host /
container:X, and that nothing is left behind.

Traffic only goes to loopback and to addresses inside namespaces these tests
create. The module's teardown removes the bridge minicontainer0, the upstream
namespace and its veth, and checks the host is as it was.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import pytest
from conftest import BIN, ROOTFS, mc
from test_run import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

NETDIR = os.environ.get("MINICONTAINER_NETWORK_DIR", "/var/lib/minicontainer/network")
BRIDGE = "minicontainer0"
UPNS = "mcnet-up"
UP_HOST, UP_PEER = "198.18.0.1", "198.18.0.2"
FACTS = {}


def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd}: {r.returncode}: {r.stderr}")
    return r.stdout


def forward():
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        return f.read().strip()


def leases():
    d = os.path.join(NETDIR, "leases")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def nft_tables():
    return sh("nft list tables", check=False)


def leftovers():
    return {
        "links": sh("ip -o link | grep -E 'mc|veth' || true"),
        "netns": sh("ip netns list"),
        "nft": sh("nft list tables | grep minicontainer || true"),
        "iptables": sh("iptables-save 2>/dev/null | grep -i minicontainer || true"),
    }


class Net:
    def __init__(self, tmp):
        self.tmp = tmp
        self.root = f"/run/minicontainer-test/net-{uuid.uuid4().hex[:10]}"
        self.ids = []

    def mc(self, *args, **kw):
        return mc("--root", self.root, *args, **kw)

    def bundle(self, name, cmd, network="bridge", ports=(), volumes=()):
        d = self.tmp / f"{name}-{uuid.uuid4().hex[:6]}"
        flags = ["--network", network]
        for p in ports:
            flags += ["-p", p]
        for v in volumes:
            flags += ["-v", v]
        r = mc("spec", "--bundle", str(d), "--rootfs", ROOTFS, *flags, "--", *cmd)
        assert r.returncode == 0, r.stderr
        return str(d)

    def start(self, cmd, network="bridge", ports=(), volumes=()):
        """create + start, the init's stdio in files; returns the id."""
        cid = "n" + uuid.uuid4().hex[:10]
        b = self.bundle(cid, cmd, network, ports, volumes)
        self.ids.append(cid)
        # The init keeps create's stdio: files, not pipes we would wait on.
        with open(os.path.join(b, "out"), "w") as out, open(os.path.join(b, "err"), "w+") as err:
            r = subprocess.run([BIN, "--root", self.root, "create", "--bundle", b, cid],
                               stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=30)
            err.seek(0)
            assert r.returncode == 0, err.read()
        assert self.mc("start", cid).returncode == 0
        return cid

    def run(self, cmd, network="bridge", ports=(), timeout=30):
        cid = "r" + uuid.uuid4().hex[:10]
        b = self.bundle(cid, cmd, network, ports)
        r = subprocess.run([BIN, "--root", self.root, "run", "--bundle", b, cid], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        return r

    def exec(self, cid, *cmd):
        r = self.mc("exec", cid, *cmd)
        assert r.returncode == 0, f"{cmd}: {r.stderr}"
        return r.stdout

    def record(self, cid):
        with open(os.path.join(self.root, cid, "state.json")) as f:
            return json.load(f)

    def delete(self, cid):
        r = self.mc("delete", "--force", cid)
        assert r.returncode == 0, r.stderr
        self.ids.remove(cid)

    def close(self):
        for cid in list(self.ids):
            self.mc("delete", "--force", cid)
        sh(f"rm -rf {self.root}", check=False)


@pytest.fixture(scope="module")
def host_before():
    before = {"forward": forward(), "leftovers": leftovers()}
    yield before
    # The bridge stays up between containers by design; the tests remove it.
    sh(f"ip link del {BRIDGE} 2>/dev/null || true", check=False)
    sh(f"ip netns del {UPNS} 2>/dev/null || true", check=False)
    sh("ip link del nup0 2>/dev/null || true", check=False)
    assert leftovers() == before["leftovers"]
    assert forward() == before["forward"]


@pytest.fixture
def net(tmp_path, host_before):
    n = Net(tmp_path)
    yield n
    n.close()


def ipv4_of(net, cid):
    out = net.exec(cid, "ip", "-o", "-4", "addr", "show", "eth0")
    return out.split()[3].split("/")[0], out


def test_bridge_address_lo_and_default_route(net, host_before):
    cid = net.start(["sleep", "300"])
    addr, line = ipv4_of(net, cid)
    FACTS["addr"] = addr
    assert addr.startswith("172.18.") and addr != "172.18.0.1", line
    assert "/16" in line and "brd 172.18.255.255" in line
    assert "UP" in net.exec(cid, "ip", "-o", "link", "show", "lo").split("<")[1].split(">")[0].split(",")
    routes = net.exec(cid, "ip", "route")
    assert "default via 172.18.0.1 dev eth0" in routes, routes
    rec = net.record(cid)["network"]
    assert rec["address"] == addr + "/16" and rec["gateway"] == "172.18.0.1" and rec["bridge"] == BRIDGE
    veth = rec["veth"]
    assert veth.startswith("mc") and len(veth) == 10
    link = sh(f"ip -o link show {veth}")
    assert f"master {BRIDGE}" in link and "state UP" in link
    assert addr in leases()
    with open(os.path.join(NETDIR, "leases", addr)) as f:
        assert f.read().strip() == cid
    assert "172.18.0.1/16" in sh(f"ip -o -4 addr show {BRIDGE}")
    assert forward() == "1"
    net.delete(cid)
    assert sh(f"ip -o link show {veth} 2>/dev/null || true", check=False) == ""
    assert addr not in leases()
    assert "minicontainer" not in nft_tables()
    assert forward() == host_before["forward"]


def test_two_containers_ping_each_other(net):
    a = net.start(["sleep", "300"])
    b = net.start(["sleep", "300"])
    aa, _ = ipv4_of(net, a)
    ba, _ = ipv4_of(net, b)
    assert aa != ba
    assert " 0% packet loss" in net.exec(a, "ping", "-c", "2", "-W", "2", ba)
    assert " 0% packet loss" in net.exec(b, "ping", "-c", "2", "-W", "2", aa)
    assert " 0% packet loss" in net.exec(a, "ping", "-c", "1", "-W", "2", "172.18.0.1")


def test_parallel_creates_get_distinct_addresses(net):
    import threading
    ids, errors = [], []

    def one():
        try:
            ids.append(net.start(["sleep", "300"]))
        except AssertionError as e:
            errors.append(str(e))
    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    addrs = [ipv4_of(net, cid)[0] for cid in ids]
    assert len(set(addrs)) == 4 and sorted(addrs) == leases(), addrs


def test_failed_create_releases_its_network(net):
    before = leases()
    cid = "bad" + uuid.uuid4().hex[:6]
    b = net.bundle(cid, ["no-such-program"], ports=["18090:80"])
    r = subprocess.run([BIN, "--root", net.root, "create", "--bundle", b, cid], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 125 and "executable file not found" in r.stderr, r.stderr
    assert leases() == before
    assert not any(p.startswith("tcp-18090") for p in os.listdir(os.path.join(NETDIR, "ports")))
    assert sh("ip -o link | grep -E 'mc|mp' | grep -v minicontainer0 || true", check=False) == ""


def fetch(url):
    last = None
    for _ in range(30):
        try:
            return urllib.request.urlopen(url, timeout=3).read().decode()
        except OSError as e:
            last = e
            time.sleep(0.1)
    raise AssertionError(f"{url}: {last}")


def test_published_port_from_host_and_containers(net, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the container\n")
    # Mounted on /var, which the rootfs has: a new mount point would be made
    # in the shared rootfs (these bundles use it directly, without overlay).
    web = net.start(["httpd", "-f", "-p", "8080", "-h", "/var"], ports=["18080:8080"], volumes=[f"{www}:/var:ro"])
    addr, _ = ipv4_of(net, web)
    assert fetch("http://127.0.0.1:18080/") == "hello from the container\n"
    assert fetch("http://172.18.0.1:18080/") == "hello from the container\n"
    assert fetch(f"http://{addr}:8080/") == "hello from the container\n"
    assert f"tcp . 18080 : {addr} . 8080" in sh("nft list map ip minicontainer ports")
    # From another container on the bridge, through the gateway (hairpin).
    other = net.start(["sleep", "300"])
    # (busybox-static's wget crashes in this rootfs: a plain request over nc.)
    reply = net.exec(other, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 172.18.0.1 18080")
    assert reply.startswith("HTTP/1.") and reply.endswith("\n\nhello from the container\n"), reply
    # The same host port again: a clear error, and nothing of it is left.
    n_leases = len(leases())
    cid = "dup" + uuid.uuid4().hex[:6]
    b = net.bundle(cid, ["true"], ports=["127.0.0.1:18080:80"])
    r = subprocess.run([BIN, "--root", net.root, "create", "--bundle", b, cid], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 125
    assert r.stderr.strip() == f"minicontainer: create {cid}: host port 127.0.0.1:18080/tcp is already published by container {web}"
    assert len(leases()) == n_leases and not os.path.exists(os.path.join(net.root, cid))
    net.delete(web)
    assert "18080" not in sh("nft list map ip minicontainer ports")
    assert not any(p.startswith("tcp-18080") for p in os.listdir(os.path.join(NETDIR, "ports")))


@pytest.fixture
def upstream():
    """A namespace of our own behind the host: nup0 198.18.0.1/30 on the host,
    eth0 198.18.0.2/30 inside."""
    sh(f"ip netns add {UPNS}")
    try:
        sh(f"ip link add nup0 type veth peer name nup1")
        sh(f"ip link set nup1 netns {UPNS}")
        sh(f"ip addr add {UP_HOST}/30 dev nup0 && ip link set nup0 up")
        sh(f"ip -n {UPNS} link set nup1 name eth0")
        sh(f"ip -n {UPNS} addr add {UP_PEER}/30 dev eth0 && ip -n {UPNS} link set eth0 up && ip -n {UPNS} link set lo up")
        yield UPNS
    finally:
        sh("ip link del nup0 2>/dev/null || true", check=False)
        sh(f"ip netns del {UPNS}", check=False)


def test_masquerade_towards_upstream(net, upstream):
    server = subprocess.Popen(
        ["ip", "netns", "exec", upstream, "python3", "-c",
         "import socket\n"
         "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         f"s.bind(('{UP_PEER}', 9000)); s.listen(1); print('listening', flush=True)\n"
         "s.settimeout(20); c, peer = s.accept(); data = c.recv(100)\n"
         "print(peer[0], data.decode().strip(), flush=True)\n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "listening"
        r = net.run(["sh", "-c", f"echo hi-from-container | nc -w 3 {UP_PEER} 9000; ip -o -4 addr show eth0"])
        assert r.returncode == 0, r.stderr
        out, _ = server.communicate(timeout=20)
    finally:
        server.kill()
    seen, data = out.split()
    FACTS["masquerade_source"] = seen
    print(f"upstream saw {seen}; container was {r.stdout.split()[3]}")
    assert data == "hi-from-container"
    assert seen == UP_HOST, f"upstream saw {seen}, not the host's address"
    assert r.stdout.split()[3].startswith("172.18.")


def test_network_none_has_lo_only_and_up(net):
    r = net.run(["ip", "-o", "link"], network="none")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("1: lo: <LOOPBACK,UP,LOWER_UP>"), r.stdout
    assert not leases()


def test_network_host_sees_host_interfaces(net):
    r = net.run(["ip", "-o", "link"], network="host")
    assert r.returncode == 0, r.stderr
    names = lambda text: sorted(l.split(":")[1].strip().split("@")[0] for l in text.strip().splitlines())
    assert names(r.stdout) == names(sh("ip -o link"))


def test_network_container_shares_namespace(net):
    a = net.start(["sleep", "300"])
    addr, _ = ipv4_of(net, a)
    r = net.run(["ip", "-o", "-4", "addr", "show", "eth0"], network=f"container:{a}")
    assert r.returncode == 0, r.stderr
    assert f"inet {addr}/16" in r.stdout
    assert leases() == [addr], "joining takes no lease"
    r = net.run(["true"], network="container:nosuch")
    assert r.returncode == 125 and "container:nosuch: no running container nosuch" in r.stderr


@pytest.mark.skipif(not os.access("/usr/sbin/iptables", os.X_OK), reason="no iptables")
def test_iptables_fallback(net, tmp_path, monkeypatch):
    """MINICONTAINER_FIREWALL=iptables forces the fallback used on hosts
    without nft: chains MINICONTAINER (nat PREROUTING/OUTPUT, local
    destinations) and MINICONTAINER-POST, gone with the last container."""
    nat_before = "table ip nat" in nft_tables()
    monkeypatch.setenv("MINICONTAINER_FIREWALL", "iptables")
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("via iptables\n")
    web = net.start(["httpd", "-f", "-p", "8080", "-h", "/var"], ports=["18082:8080"], volumes=[f"{www}:/var:ro"])
    addr, _ = ipv4_of(net, web)
    rules = sh("iptables-save -t nat")
    assert f"-A MINICONTAINER -p tcp -m tcp --dport 18082 -j DNAT --to-destination {addr}:8080" in rules, rules
    assert "minicontainer" not in nft_tables().replace("table ip nat", "")
    assert fetch("http://127.0.0.1:18082/") == "via iptables\n"
    assert fetch("http://172.18.0.1:18082/") == "via iptables\n"
    net.delete(web)
    assert "MINICONTAINER" not in sh("iptables-save")
    # iptables-nft leaves an empty nat table behind; remove the one it made.
    if not nat_before and "table ip nat" in nft_tables():
        sh("nft delete table ip nat")


def test_zz_nothing_left_after_the_last_container(net, host_before):
    cid = net.start(["sleep", "300"], ports=["18081:80/udp"])
    veth = net.record(cid)["network"]["veth"]
    assert "table ip minicontainer" in nft_tables()
    net.delete(cid)
    assert leases() == [] and os.listdir(os.path.join(NETDIR, "ports")) == []
    assert not os.path.exists(os.path.join(NETDIR, "firewall"))
    assert "minicontainer" not in nft_tables()
    assert forward() == host_before["forward"]
    assert sh(f"ip -o link show {veth} 2>/dev/null || true", check=False) == ""
    # The bridge is left up for the next container; remove it as a host
    # cleanup would, then the host is as before.
    sh(f"ip link del {BRIDGE}")
    assert leftovers() == host_before["leftovers"]
    print("facts:", FACTS)


# Run mode (`run -d --rootfs ... --network bridge`): addresses, /etc/hosts,
# published ports, inspect/state, and `prune --network`. Each test has its own
# --root, data directory and network directory (leases, ports, firewall).

class RunEnv:
    def __init__(self):
        tag = uuid.uuid4().hex[:10]
        self.root = f"/run/minicontainer-test/rn-{tag}"
        self.data = f"/run/minicontainer-test-data/rn-{tag}"
        self.netdir = f"/run/minicontainer-test-net/rn-{tag}"
        self.environ = dict(os.environ, MINICONTAINER_DATA=self.data, MINICONTAINER_NETWORK_DIR=self.netdir)

    def cmd(self, *args):
        return [BIN, "--root", self.root, *args]

    def mc(self, *args, check=False, timeout=60):
        r = subprocess.run(self.cmd(*args), capture_output=True, text=True, env=self.environ,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"minicontainer {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def run_d(self, *args):
        return self.mc("run", "-d", "--network", "bridge", *args, check=True).stdout.strip()

    def inspect(self, ref):
        [i] = json.loads(self.mc("inspect", ref, check=True).stdout)
        return i

    def leases(self):
        d = os.path.join(self.netdir, "leases")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def close(self):
        self.mc("rm", "-f", "--all")
        self.mc("prune")
        sh(f"rm -rf {self.root} {self.data} {self.netdir}; rmdir /run/minicontainer-test-net /run/minicontainer-test-data /run/minicontainer-test 2>/dev/null || true", check=False)


@pytest.fixture
def renv(host_before):
    e = RunEnv()
    yield e
    e.close()


def prune_network_leaves_nothing(renv, host_before):
    """(d): after rm -f --all and prune --network, nothing of ours is left."""
    out = renv.mc("rm", "-f", "--all", check=True).stdout.split()
    r = renv.mc("prune", "--network", check=True)
    assert r.stderr == "", r.stderr
    checks = {
        "veth": sh("ip -o link | grep mc || true"),
        "leases": renv.leases(),
        "ports": os.listdir(os.path.join(renv.netdir, "ports")),
        "firewall state": os.path.exists(os.path.join(renv.netdir, "firewall")),
        "nft": sh("nft list tables | grep minicontainer || true"),
        "iptables": sh("iptables-save 2>/dev/null | grep -i minicontainer || true"),
        "ip_forward": forward(),
        "bridge": os.path.exists(f"/sys/class/net/{BRIDGE}"),
    }
    print("after rm -f --all (%d) and prune --network:" % len(out), checks)
    assert checks == {"veth": "", "leases": [], "ports": [], "firewall state": False, "nft": "", "iptables": "",
                      "ip_forward": host_before["forward"], "bridge": False}, checks
    assert renv.mc("ps", "-a", "-q", check=True).stdout == ""


def test_run_mode_parallel_runs_get_distinct_addresses(renv, host_before):
    procs = [subprocess.Popen(renv.cmd("run", "-d", "--network", "bridge", "--rootfs", ROOTFS, "sleep", "30"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              text=True, env=renv.environ) for _ in range(20)]
    results = [(p.wait(timeout=60), p.stdout.read().strip(), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _, _ in results), [r for r in results if r[0] != 0]
    ids = [cid for _, cid, _ in results]
    addrs = {cid: renv.inspect(cid)["NetworkSettings"]["IPAddress"] for cid in ids}
    print("20 addresses:", sorted(addrs.values(), key=lambda a: tuple(map(int, a.split(".")))))
    assert len(set(addrs.values())) == 20 and all(a.startswith("172.18.") for a in addrs.values()), addrs
    assert sorted(addrs.values()) == renv.leases()
    # Each container's /etc/hosts has its own address (rewritten after create).
    for cid in ids[:3]:
        hosts = renv.mc("exec", cid, "cat", "/etc/hosts", check=True).stdout
        assert f"{addrs[cid]}\tminicontainer " in hosts, hosts
    # A lease of a container that died unseen: prune reclaims it.
    with open(os.path.join(renv.netdir, "leases", "172.18.255.250"), "w") as f:
        f.write("f" * 64 + "\n")
    prune_network_leaves_nothing(renv, host_before)


def test_run_mode_published_port_hosts_inspect_and_prune(renv, host_before):
    web = renv.run_d("--name", "web", "--hostname", "webhost", "-p", "18080:80", "--rootfs", ROOTFS,
                     "sh", "-c", "mkdir -p /www; echo hello from web > /www/index.html; exec httpd -f -p 80 -h /www")
    i = renv.inspect("web")
    addr = i["NetworkSettings"]["IPAddress"]
    assert i["HostConfig"]["NetworkMode"] == "bridge" and i["NetworkSettings"]["Gateway"] == "172.18.0.1"
    assert i["NetworkSettings"]["IPPrefixLen"] == 16
    assert i["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "18080"}]}, i["HostConfig"]
    assert i["NetworkSettings"]["Ports"] == i["HostConfig"]["PortBindings"] and addr.startswith("172.18."), i["NetworkSettings"]
    state = json.loads(renv.mc("state", web, check=True).stdout)
    assert state["annotations"]["org.minicontainer.ip"] == addr
    assert state["annotations"]["org.minicontainer.gateway"] == "172.18.0.1"
    # (c) /etc/hosts: localhost, then the address with the hostname and name.
    hosts = renv.mc("exec", "web", "cat", "/etc/hosts", check=True).stdout
    print("/etc/hosts in web:\n" + hosts)
    assert hosts.startswith("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), hosts
    assert hosts.endswith(f"\n{addr}\twebhost web\n"), hosts
    assert renv.mc("exec", "web", "hostname", check=True).stdout == "webhost\n"
    resolv = renv.mc("exec", "web", "cat", "/etc/resolv.conf", check=True).stdout
    assert "nameserver" in resolv and "nameserver 127." not in resolv, resolv
    # (b) from the host through 127.0.0.1, and from another container, both
    # through the gateway's published port and straight to the address.
    body = fetch("http://127.0.0.1:18080/")
    print("127.0.0.1:18080 ->", repr(body))
    assert body == "hello from web\n"
    client = renv.run_d("--name", "client", "--rootfs", ROOTFS, "sleep", "30")
    for target in ("172.18.0.1 18080", f"{addr} 80"):
        reply = ""
        for _ in range(20):
            reply = renv.mc("exec", client, "sh", "-c",
                            f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {target}").stdout
            if reply:
                break
            time.sleep(0.1)
        print(f"client -> {target}:", repr(reply))
        assert reply.startswith("HTTP/1.") and reply.endswith("\n\nhello from web\n"), reply
    # The same host port again: refused, naming the owner.
    r = renv.mc("run", "-d", "--network", "bridge", "-p", "18080:80", "--rootfs", ROOTFS, "sleep", "30")
    assert r.returncode == 125 and "already published by container web" in r.stderr, r.stderr
    # Not while containers use it: prune --network keeps the bridge and table.
    renv.mc("prune", "--network", check=True)
    assert os.path.exists(f"/sys/class/net/{BRIDGE}") and "minicontainer" in nft_tables()
    assert fetch("http://127.0.0.1:18080/") == "hello from web\n"
    prune_network_leaves_nothing(renv, host_before)


def test_run_mode_foreground_hosts_file_has_the_address(renv, host_before):
    """A foreground `run` (no -d) also gets its leased address in /etc/hosts
    and its lease back when it ends."""
    r = renv.mc("run", "--rm", "--network", "bridge", "--name", "fg", "--hostname", "fghost",
                "--rootfs", ROOTFS, "/bin/sh", "-c", "cat /etc/hosts; ip -o -4 addr show eth0")
    assert r.returncode == 0, r.stderr
    last = r.stdout.splitlines()
    hosts_line = [l for l in last if l.endswith("fghost fg")]
    assert hosts_line and hosts_line[0].startswith("172.18."), r.stdout
    addr = hosts_line[0].split()[0]
    assert f"inet {addr}/16" in r.stdout
    assert renv.leases() == []


def can_bind(port, host="0.0.0.0"):
    s = socket.socket()
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_run_mode_refuses_a_host_port_a_host_process_listens_on(renv, host_before):
    """(issue 16, item 1) A port a host service listens on is refused, as
    podman's `address already in use`, and the service keeps it; before the
    fix the DNAT rule silently took the port over."""
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("the host's service\n")
    srv = subprocess.Popen([sys.executable, "-m", "http.server", "18081", "--bind", "127.0.0.1"], cwd=d,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: not can_bind(18081, "127.0.0.1"))
        r = renv.mc("run", "-d", "--network", "bridge", "-p", "18081:80", "--rootfs", ROOTFS,
                    "sh", "-c", "echo container > /i; exec httpd -f -p 80 -h /")
        print("run -p 18081:80 with a host service on it:", r.returncode, r.stderr)
        assert r.returncode == 125, r.stdout
        assert r.stderr == "minicontainer: run: cannot publish host port 18081/tcp: address already in use\n", r.stderr
        # Nothing was made, and the host's service still answers.
        assert renv.mc("ps", "-a", "-q", check=True).stdout == "" and renv.leases() == []
        assert not os.listdir(os.path.join(renv.netdir, "ports")) if os.path.isdir(os.path.join(renv.netdir, "ports")) else True
        assert "18081" not in sh("nft list map ip minicontainer ports 2>/dev/null || true")
        assert fetch("http://127.0.0.1:18081/") == "the host's service\n"
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(d)


def test_run_mode_holds_its_published_port_until_it_stops(renv, host_before):
    """(issue 16, item 1) While the container runs, no host process can bind
    its published port (a service started later would otherwise believe it
    has the port); after stop the port is free again."""
    assert can_bind(18082)
    renv.run_d("--name", "holder", "-p", "18082:80", "-p", "127.0.0.1:18083:53/udp", "--rootfs", ROOTFS, "sleep", "60")
    assert not can_bind(18082) and not can_bind(18082, "127.0.0.1")
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(OSError):
        u.bind(("127.0.0.1", 18083))
    u.close()
    # The container never gets the host's socket: its fds are stdio only.
    fds = renv.mc("exec", "holder", "ls", "/proc/1/fd", check=True).stdout.split()
    assert sorted(fds) == ["0", "1", "2"], fds
    renv.mc("stop", "-t", "1", "holder", check=True)
    assert can_bind(18082)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 18083))
    u.close()
    renv.mc("rm", "holder", check=True)
    assert renv.leases() == [] and os.listdir(os.path.join(renv.netdir, "ports")) == []


def test_run_mode_random_host_port_is_chosen_held_and_recorded(renv, host_before):
    """`-p 80` (host port 0): the owner binds a free port, holds it, and
    writes it into config.json's ports annotation, which inspect and port
    read; traffic to it reaches the container."""
    cid = renv.run_d("--name", "rnd", "-p", "80", "-p", "127.0.0.1::53/udp", "--rootfs", ROOTFS,
                     "sh", "-c", "echo random > /i; exec httpd -f -p 80 -h /")
    cfg = json.load(open(os.path.join(renv.data, "containers", cid, "config.json")))
    ports = cfg["annotations"]["org.minicontainer.ports"].split(",")
    print("chosen:", ports)
    tcp = [p for p in ports if p.endswith(":80/tcp")]
    udp = [p for p in ports if p.endswith(":53/udp")]
    assert len(tcp) == 1 and len(udp) == 1, ports
    hp = int(tcp[0].split(":")[0])
    up = int(udp[0].split(":")[1])
    assert hp > 0 and up > 0 and udp[0].startswith("127.0.0.1:")
    assert not can_bind(hp)
    assert fetch(f"http://127.0.0.1:{hp}/i") == "random\n"
    renv.mc("rm", "-f", "rnd", check=True)
    assert can_bind(hp)
