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
import subprocess
import time
import urllib.request
import uuid
import pytest
from conftest import BIN, ROOTFS, mc

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
    web = net.start(["httpd", "-f", "-p", "8080", "-h", "/www"], ports=["18080:8080"], volumes=[f"{www}:/www:ro"])
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
    web = net.start(["httpd", "-f", "-p", "8080", "-h", "/www"], ports=["18082:8080"], volumes=[f"{www}:/www:ro"])
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
