"""Kubernetes pods through containerd 1.6's CRI plugin, minicontainer as the
runc binary of the io.containerd.runc.v2 shim (issue 17, items 6 and 7).

A private containerd runs for the module (as in test_containerd.py): root,
state, sockets, the CRI plugin's state (network namespaces too:
netns_mounts_under_state_dir) and the runtime's --root under a temporary
directory. Its CRI plugin has one runtime handler, "minicontainer", whose
options name our binary (BinaryName) and a Root of its own. CNI comes from
Debian's containernetworking-plugins: bridge (a bridge of the module's own,
no gateway address, ipMasq false, so no iptables rule and no host route)
with host-local addresses from a private /24 whose leases live in the
temporary directory. The pause image is one file, cri/pause.c compiled
static here; the containers' image is the busybox rootfs; both are imported
with `ctr -n k8s.io images import` under names on a closed loopback port,
so an unexpected pull fails on this machine and nothing is downloaded.

The CRI calls go through crikit.py (grpcio, messages encoded by hand from
runtime.v1's api.proto); streaming exec and attach go to the streaming server's
loopback URL over a WebSocket. The module's teardown removes every pod, the
bridge and the cgroup parents, and asserts that nothing is left: mounts,
cgroups, network namespaces, veths, leases, processes, the runtime's state.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
import pytest
from conftest import BIN, mc
from test_containerd import cgroups_named, mounts_under, oci_image_tar, remove_empty_dirs

try:
    import crikit
except ImportError:  # grpcio missing: scripts/setup.sh installs it
    crikit = None

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in ("containerd", "ctr", "containerd-shim-runc-v2")),
                       reason="containerd is not installed (apt-get install containerd)"),
    pytest.mark.skipif(not os.path.exists("/usr/lib/cni/bridge"),
                       reason="CNI plugins missing (apt-get install containernetworking-plugins)"),
    pytest.mark.skipif(crikit is None, reason="grpcio missing (scripts/setup.sh installs it)"),
]

HERE = os.path.dirname(os.path.abspath(__file__))
CGROUP = "/sys/fs/cgroup"
RUN_CONTAINERD = "/run/containerd"
CNI_BIN = "/usr/lib/cni"
HANDLER = "minicontainer"
# Names on a closed loopback port: a pull would fail here, never go out.
PAUSE_IMAGE = "127.0.0.1:9/mccri/pause:test"
BUSYBOX_IMAGE = "127.0.0.1:9/mccri/busybox:test"
NS = "k8s.io"  # the CRI plugin's containerd namespace (fixed in 1.6)


def pause_image_tar(tmp):
    """The pause image: /pause, cri/pause.c built static with the C compiler."""
    cc = next((c for c in ("gcc", "cc", "clang") if shutil.which(c)), None)
    if cc is None:
        pytest.fail("no C compiler for the pause program (scripts/setup.sh installs gcc and libc6-dev)")
    root = f"{tmp}/pause-rootfs"
    os.makedirs(root)
    r = subprocess.run([cc, "-static", "-O2", "-Wall", "-o", f"{root}/pause", f"{HERE}/cri/pause.c"],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"pause.c did not build: {r.stderr}"
    tar = oci_image_tar(root, PAUSE_IMAGE, config={"Entrypoint": ["/pause"]})
    shutil.rmtree(root)
    return tar


def host_link_names():
    return set(os.listdir("/sys/class/net"))


def leftover_processes(tmp):
    """Pids whose command line names the temporary directory (shims, our
    binary with --root there, containerd)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if tmp.encode() in f.read():
                    out.append(int(pid))
        except OSError:
            pass
    return out


class Cri:
    """The module's containerd: its paths, the CRI client, ctr."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.tag = uuid.uuid4().hex[:6]
        self.sock = f"{tmp}/containerd.sock"
        self.root = f"{tmp}/root"
        self.state = f"{tmp}/state"
        self.runtime_root = f"{tmp}/mc-root"   # the handler's Root
        self.state_root = f"{self.runtime_root}/{NS}"  # the --root the shim passes: Root/<namespace>
        self.logs = f"{tmp}/pods"
        self.cni_conf = f"{tmp}/cni/net.d"
        self.ipam = f"{tmp}/cni/ipam"
        self.bridge = f"mccri{self.tag}"
        self.network = f"mccri-{self.tag}"
        self.subnet_prefix = f"10.99.{int(self.tag[:2], 16)}."
        self.cgroup_parent = f"/mccri{self.tag}"
        self.proc = None
        self.client = None
        self.veths_seen = set()

    def ctr(self, *args, input=None, check=True):
        r = subprocess.run(["ctr", "-a", self.sock, "-n", NS, *args], capture_output=True, input=input,
                           timeout=60, stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)}: {r.stderr.decode(errors='replace')}")
        return r.stdout.decode(errors="replace")

    def config_toml(self):
        p = '[plugins."io.containerd.grpc.v1.cri"'
        return f"""version = 2
root = "{self.root}"
state = "{self.state}"
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[debug]
  address = "{self.tmp}/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{self.tmp}/opt"
{p}]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  # The sandbox asks for oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE,
  # which a host may not have (this VM's bounding set lacks it: runc fails too).
  restrict_oom_score_adj = true
{p}.containerd]
  default_runtime_name = "{HANDLER}"
  snapshotter = "overlayfs"
{p}.containerd.runtimes.{HANDLER}]
  runtime_type = "io.containerd.runc.v2"
{p}.containerd.runtimes.{HANDLER}.options]
  BinaryName = "{BIN}"
  Root = "{self.runtime_root}"
  SystemdCgroup = false
{p}.containerd.runtimes.{HANDLER}-systemd]
  runtime_type = "io.containerd.runc.v2"
{p}.containerd.runtimes.{HANDLER}-systemd.options]
  BinaryName = "{BIN}"
  Root = "{self.runtime_root}"
  SystemdCgroup = true
{p}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{self.cni_conf}"
  max_conf_num = 1
{p}.registry]
  config_path = "{self.tmp}/certs.d"
"""

    def cni_conflist(self):
        return json.dumps({
            "cniVersion": "0.4.0", "name": self.network,
            "plugins": [{
                "type": "bridge", "bridge": self.bridge, "isGateway": False, "ipMasq": False,
                "hairpinMode": False,
                "ipam": {"type": "host-local", "dataDir": self.ipam,
                         "ranges": [[{"subnet": self.subnet_prefix + "0/24"}]]},
            }],
        }, indent=1)

    def leases(self):
        d = f"{self.ipam}/{self.network}"
        return sorted(n for n in os.listdir(d) if n.startswith(self.subnet_prefix)) if os.path.isdir(d) else []

    def netns(self):
        d = f"{self.state}/io.containerd.grpc.v1.cri/netns"
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def bridge_ports(self):
        d = f"/sys/class/net/{self.bridge}/brif"
        ports = set(os.listdir(d)) if os.path.isdir(d) else set()
        self.veths_seen |= ports
        return ports

    def runtime_state(self):
        """Container directories in the runtime's --root (not its seccomp cache)."""
        if not os.path.isdir(self.state_root):
            return []
        return sorted(e for e in os.listdir(self.state_root) if not e.startswith("@"))

    def mc(self, *args, check=True):
        return mc("--root", self.state_root, *args, check=check)

    def pid_of(self, cid):
        return json.loads(self.mc("state", cid).stdout)["pid"]

    # Pods and containers, as kubelet would ask for them.

    def pod_config(self, name, uid=None):
        uid = uid or uuid.uuid4().hex
        return {
            "metadata": {"name": name, "uid": uid, "namespace": "mccri", "attempt": 0},
            "hostname": name,
            "log_directory": f"{self.logs}/{name}_{uid}",
            "labels": {"test": "cri"},
            "linux": {"cgroup_parent": f"{self.cgroup_parent}/pod{uid}",
                      "security_context": {"namespace_options": {"network": crikit.POD, "pid": crikit.POD,
                                                                 "ipc": crikit.POD}}},
        }

    def run_pod(self, name, privileged=False, handler=HANDLER, cgroup_parent=None):
        cfg = self.pod_config(name)
        if privileged:
            cfg["linux"]["security_context"]["privileged"] = True
        if cgroup_parent:
            cfg["linux"]["cgroup_parent"] = cgroup_parent
        os.makedirs(cfg["log_directory"], exist_ok=True)
        sid = self.client.RunPodSandbox({"config": cfg, "runtime_handler": handler})["pod_sandbox_id"]
        return sid, cfg

    def create_container(self, sid, pod_cfg, name, command, args=(), resources=None, pid_mode=crikit.POD,
                         security=None, **config):
        linux = {"security_context": {"namespace_options": {"network": crikit.POD, "pid": pid_mode,
                                                            "ipc": crikit.POD}, **(security or {})}}
        if resources:
            linux["resources"] = resources
        cfg = {"metadata": {"name": name, "attempt": 0}, "image": {"image": BUSYBOX_IMAGE},
               "command": list(command), "args": list(args), "log_path": f"{name}/0.log",
               "envs": [{"key": "WHO", "value": name}], "linux": linux, **config}
        cid = self.client.CreateContainer({"pod_sandbox_id": sid, "config": cfg,
                                           "sandbox_config": pod_cfg})["container_id"]
        self.client.StartContainer({"container_id": cid})
        return cid

    def exec_sync(self, cid, *cmd, timeout=20):
        r = self.client.ExecSync({"container_id": cid, "cmd": list(cmd), "timeout": timeout})
        return r.get("exit_code", 0), r.get("stdout", b"").decode(), r.get("stderr", b"").decode()

    def remove_pod(self, sid):
        self.client.StopPodSandbox({"pod_sandbox_id": sid})
        self.client.RemovePodSandbox({"pod_sandbox_id": sid})


def wait_for(pred, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


@pytest.fixture(scope="module")
def cri(binary, rootfs):
    tmp = tempfile.mkdtemp(prefix="mc-cri-", dir="/tmp")
    run_existed = os.path.exists(RUN_CONTAINERD)
    links_before = host_link_names()
    c = Cri(tmp)
    os.makedirs(c.cni_conf)
    os.makedirs(c.logs)
    with open(f"{c.cni_conf}/10-mccri.conflist", "w") as f:
        f.write(c.cni_conflist())
    with open(f"{tmp}/config.toml", "w") as f:
        f.write(c.config_toml())
    log = open(f"{tmp}/containerd.log", "w")
    c.proc = subprocess.Popen(["containerd", "--config", f"{tmp}/config.toml"], stdout=log, stderr=log,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    try:
        deadline = time.time() + 30
        while True:
            if c.proc.poll() is not None:
                pytest.fail(f"containerd exited: {open(f'{tmp}/containerd.log').read()[-3000:]}")
            if os.path.exists(c.sock) and subprocess.run(["ctr", "-a", c.sock, "version"],
                                                        capture_output=True).returncode == 0:
                break
            if time.time() > deadline:
                pytest.fail("containerd did not come up in 30 s")
            time.sleep(0.1)
        c.ctr("images", "import", "-", input=pause_image_tar(tmp))
        c.ctr("images", "import", "-", input=oci_image_tar(rootfs, BUSYBOX_IMAGE))
        c.client = crikit.Client(c.sock)
        # The CRI's image cache follows containerd's image events: wait until
        # it knows both images and reports its network ready (the conflist).
        assert wait_for(lambda: all(c.client.ImageStatus({"image": {"image": i}}).get("image")
                                    for i in (PAUSE_IMAGE, BUSYBOX_IMAGE))), "the CRI never saw the imported images"

        def ready():
            conds = c.client.Status({}).get("status", {}).get("conditions", [])
            return {x["type"]: x.get("status", False) for x in conds}
        assert wait_for(lambda: ready().get("NetworkReady")), f"CRI not ready: {ready()}"
        c.setup_seconds = time.time() - t0
        yield c
    finally:
        stop_all(c, run_existed)
        log.close()
    left = {
        "mounts": mounts_under(tmp),
        "cgroups": cgroups_named(f"mccri{c.tag}"),
        "links": sorted(n for n in host_link_names() - links_before if n.startswith(("mccri", "veth"))),
        "veths": sorted(v for v in c.veths_seen if os.path.exists(f"/sys/class/net/{v}")),
        "processes": leftover_processes(tmp),
        "tmp": os.path.exists(tmp),
        "iptables": [l for l in subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.splitlines()
                     if c.subnet_prefix in l or c.bridge in l or c.network in l],
    }
    assert not any(left.values()), f"left behind: {left}"


def stop_all(c, run_existed):
    tmp = c.tmp
    left_in_root = []
    if c.client is not None:
        try:
            for p in c.client.ListPodSandbox({}).get("items", []):
                c.remove_pod(p["id"])
        except Exception:
            pass
        for image in (PAUSE_IMAGE, BUSYBOX_IMAGE):
            c.ctr("images", "rm", image, check=False)
        c.client.close()
    if c.proc and c.proc.poll() is None:
        c.proc.send_signal(signal.SIGTERM)
        try:
            c.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()
    left_in_root = c.runtime_state()
    for cid in left_in_root:
        c.mc("delete", "--force", cid, check=False)
    for pid in leftover_processes(tmp):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for m in sorted(mounts_under(tmp), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
    if os.path.exists(f"/sys/class/net/{c.bridge}"):
        subprocess.run(["ip", "link", "del", c.bridge], capture_output=True)
    shutil.rmtree(tmp, ignore_errors=True)
    for d in cgroups_named(f"mccri{c.tag}"):
        remove_empty_dirs(d)
    if not run_existed:
        remove_empty_dirs(RUN_CONTAINERD)
    assert not left_in_root, f"containers left in the runtime root: {left_in_root}"



def ns_inode(pid, kind):
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def cgroup_of(pid, controller):
    """The process's cgroup path in a v1 hierarchy ("" for cgroup2)."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
    raise AssertionError(f"no {controller} cgroup for {pid}")


def read(path):
    with open(path) as f:
        return f.read().strip()


MiB = 1 << 20


@pytest.fixture(scope="module")
def pod(cri):
    """One pod, two containers: "writer" (resources set; writes its logs and a
    /dev/shm file, then sleeps) and "reader" (sleeps)."""
    sid, cfg = cri.run_pod("web")
    writer = cri.create_container(
        sid, cfg, "writer",
        ["sh", "-c", "echo out-line; echo err-line >&2; echo from-writer > /dev/shm/shared; exec sleep 1001"],
        resources={"memory_limit_in_bytes": 64 * MiB, "cpu_period": 100000, "cpu_quota": 50000,
                   "cpu_shares": 512})
    reader = cri.create_container(sid, cfg, "reader", ["sleep", "1002"])
    assert wait_for(lambda: os.path.exists("/proc/%d" % cri.pid_of(writer)) and
                    cri.exec_sync(reader, "cat", "/dev/shm/shared")[1] == "from-writer\n")
    yield {"sid": sid, "cfg": cfg, "writer": writer, "reader": reader}
    cri.remove_pod(sid)
    assert not cri.runtime_state(), cri.runtime_state()


def test_version_and_status(cri):
    v = cri.client.Version({"version": "v1"})
    assert (v["runtime_name"], v["runtime_api_version"]) == ("containerd", "v1"), v
    conds = {c["type"]: c.get("status", False) for c in cri.client.Status({})["status"]["conditions"]}
    assert conds == {"RuntimeReady": True, "NetworkReady": True}, conds
    print(f"containerd with CRI up, images imported: {cri.setup_seconds:.1f} s")


def test_sandbox_runs_in_our_runtime(cri, pod):
    sid = pod["sid"]
    st = cri.client.PodSandboxStatus({"pod_sandbox_id": sid})["status"]
    assert st.get("state", crikit.SANDBOX_READY) == crikit.SANDBOX_READY
    assert st["runtime_handler"] == HANDLER
    ip = st["network"]["ip"]
    assert ip.startswith(cri.subnet_prefix), ip
    # The sandbox, writer and reader are ours: in the handler's --root, running.
    assert set(cri.runtime_state()) >= {sid, pod["writer"], pod["reader"]}
    state = json.loads(cri.mc("state", sid).stdout)
    assert state["status"] == "running"
    pause = state["pid"]
    with open(f"/proc/{pause}/cmdline", "rb") as f:
        assert f.read() == b"/pause\0"
    # Its network namespace is the one containerd made (under its state dir,
    # bind-mounted), holding the address host-local leased on our bridge.
    (netns,) = cri.netns()
    netns_path = f"{cri.state}/io.containerd.grpc.v1.cri/netns/{netns}"
    assert os.stat(netns_path).st_ino == os.stat(f"/proc/{pause}/ns/net").st_ino
    assert cri.leases() == [ip]
    assert len(cri.bridge_ports()) == 1
    # The pod's cgroup parent holds the sandbox's cgroup.
    assert cgroup_of(pause, "memory") == f"{pod['cfg']['linux']['cgroup_parent']}/{sid}"


def test_containers_share_net_ipc_pid_of_the_pod(cri, pod):
    pause = cri.pid_of(pod["sid"])
    ip = cri.client.PodSandboxStatus({"pod_sandbox_id": pod["sid"]})["status"]["network"]["ip"]
    mnt = set()
    for cid in (pod["writer"], pod["reader"]):
        for kind in ("net", "ipc", "pid", "uts"):
            code, out, err = cri.exec_sync(cid, "readlink", f"/proc/self/ns/{kind}")
            assert (code, out.strip()) == (0, ns_inode(pause, kind)), (cid, kind, out, err)
        code, out, _ = cri.exec_sync(cid, "ip", "-o", "-4", "addr", "show", "dev", "eth0")
        assert code == 0 and f" {ip}/24 " in out, out
        mnt.add(ns_inode(cri.pid_of(cid), "mnt"))
        assert cri.exec_sync(cid, "hostname")[1] == "web\n"
    # Each container has a root of its own.
    assert len(mnt) == 2 and ns_inode(pause, "mnt") not in mnt
    # IPC: the writer's /dev/shm file is the reader's (the pod's shm).
    assert cri.exec_sync(pod["reader"], "cat", "/dev/shm/shared") == (0, "from-writer\n", "")
    # pid: the reader sees the pause process as its pid 1, and the writer's sleep.
    code, out, _ = cri.exec_sync(pod["reader"], "ps", "-o", "pid,args")
    procs = {l.split(None, 1)[1].strip(): int(l.split()[0]) for l in out.splitlines()[1:]}
    assert procs.get("/pause") == 1 and "sleep 1001" in procs and "sleep 1002" in procs, out


def test_container_with_a_pid_namespace_of_its_own(cri, pod):
    cid = cri.create_container(pod["sid"], pod["cfg"], "alone", ["sleep", "1003"], pid_mode=crikit.CONTAINER)
    try:
        pause = cri.pid_of(pod["sid"])
        assert cri.exec_sync(cid, "readlink", "/proc/self/ns/pid")[1].strip() != ns_inode(pause, "pid")
        assert cri.exec_sync(cid, "readlink", "/proc/self/ns/net")[1].strip() == ns_inode(pause, "net")
        out = cri.exec_sync(cid, "ps", "-o", "pid,args")[1]
        assert "/pause" not in out and "sleep 1001" not in out
        assert re.search(r"^\s*1 sleep 1003$", out, re.M), out
    finally:
        cri.client.StopContainer({"container_id": cid, "timeout": 0})
        cri.client.RemoveContainer({"container_id": cid})
    assert cid not in cri.runtime_state()


def test_exec_sync(cri, pod):
    cid = pod["writer"]
    assert cri.exec_sync(cid, "sh", "-c", "echo to-out; echo to-err >&2; echo $WHO; exit 3") == \
        (3, "to-out\nwriter\n", "to-err\n")
    # An exec runs in the container's cgroup.
    code, out, _ = cri.exec_sync(cid, "cat", "/proc/self/cgroup")
    assert f":memory:{cgroup_of(cri.pid_of(cid), 'memory')}\n" in out
    with pytest.raises(grpc_error()) as e:
        cri.exec_sync(cid, "nosuchcmd")
    assert "executable file not found" in e.value.details(), e.value.details()
    # A timeout kills the process.
    with pytest.raises(grpc_error()) as e:
        cri.exec_sync(cid, "sleep", "77", timeout=1)
    assert "timeout" in e.value.details()
    assert wait_for(lambda: "sleep 77" not in cri.exec_sync(cid, "ps", "-o", "args")[1])


def grpc_error():
    import grpc
    return grpc.RpcError


def test_streaming_exec_over_websocket(cri, pod):
    cid = pod["writer"]
    url = cri.client.Exec({"container_id": cid, "cmd": ["sh", "-c", "echo streamed; echo to-err >&2; exit 5"],
                           "stdout": True, "stderr": True})["url"]
    assert url.startswith("http://127.0.0.1:"), url
    out, err, status = crikit.WebSocketExec(url).run()
    assert (out, err, crikit.exit_code(status)) == (b"streamed\n", b"to-err\n", 5), (out, err, status)
    # stdin reaches the process.
    url = cri.client.Exec({"container_id": cid, "cmd": ["sh", "-c", "read x; echo got:$x"],
                           "stdin": True, "stdout": True})["url"]
    ws = crikit.WebSocketExec(url)
    ws.stdin(b"over-the-socket\n")
    out, _, status = ws.run()
    assert (out, crikit.exit_code(status)) == (b"got:over-the-socket\n", 0), (out, status)
    # A URL is good for one exec.
    with pytest.raises(ConnectionError):
        crikit.WebSocketExec(url).run()


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF]) (.*)$")


def test_logs_in_the_cri_format(cri, pod):
    st = cri.client.ContainerStatus({"container_id": pod["writer"]})["status"]
    path = os.path.join(pod["cfg"]["log_directory"], "writer/0.log")
    assert st["log_path"] == path
    with open(path) as f:
        lines = f.read().splitlines()
    parsed = [LOG_LINE.match(l) for l in lines]
    assert all(parsed), lines
    assert sorted((m.group(4), m.group(5), m.group(6)) for m in parsed) == \
        [("stderr", "F", "err-line"), ("stdout", "F", "out-line")], lines


def test_update_container_resources(cri, pod):
    cid = pod["writer"]
    pid = cri.pid_of(cid)
    path = cgroup_of(pid, "memory")
    assert path == f"{pod['cfg']['linux']['cgroup_parent']}/{cid}"
    mem, cpu = f"{CGROUP}/memory{path}", f"{CGROUP}/cpu{cgroup_of(pid, 'cpu')}"
    unified = f"{CGROUP}/unified{cgroup_of(pid, '')}"
    assert (read(f"{mem}/memory.limit_in_bytes"), read(f"{cpu}/cpu.cfs_quota_us"), read(f"{cpu}/cpu.shares")) == \
        (str(64 * MiB), "50000", "512")
    # The shim turns this into `update --resources -` (JSON on stdin), unified included.
    cri.client.UpdateContainerResources({"container_id": cid, "linux": {
        "memory_limit_in_bytes": 96 * MiB, "cpu_period": 100000, "cpu_quota": 20000, "cpu_shares": 256,
        "unified": {"cgroup.max.descendants": "7"}}})
    assert (read(f"{mem}/memory.limit_in_bytes"), read(f"{cpu}/cpu.cfs_quota_us"), read(f"{cpu}/cpu.shares")) == \
        (str(96 * MiB), "20000", "256")
    assert read(f"{unified}/cgroup.max.descendants") == "7"
    res = cri.client.ContainerStatus({"container_id": cid})["status"]["resources"]["linux"]
    assert (res["memory_limit_in_bytes"], res["cpu_quota"], res["cpu_shares"]) == (96 * MiB, 20000, 256), res
    # A bad unified key is refused by us, through the shim, with nothing changed.
    with pytest.raises(grpc_error()) as e:
        cri.client.UpdateContainerResources({"container_id": cid, "linux": {
            "memory_limit_in_bytes": 80 * MiB, "unified": {"../memory.limit_in_bytes": "1"}}})
    assert "unified" in e.value.details(), e.value.details()
    assert read(f"{mem}/memory.limit_in_bytes") == str(96 * MiB)


def test_update_resources_from_stdin_with_unified(cri, pod):
    """`update --resources -` as containerd's shim calls it (go-runc: the
    LinuxResources JSON on stdin), with a `unified` key: on this hybrid host
    it goes to the container's cgroup2 directory."""
    cid = pod["reader"]
    unified = f"{CGROUP}/unified{cgroup_of(cri.pid_of(cid), '')}"
    mem = f"{CGROUP}/memory{cgroup_of(cri.pid_of(cid), 'memory')}"
    r = mc("--root", cri.state_root, "update", "--resources", "-", cid,
           input=json.dumps({"memory": {"limit": 48 * MiB}, "unified": {"cgroup.max.depth": "3"}}) + "\n")
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert (read(f"{unified}/cgroup.max.depth"), read(f"{mem}/memory.limit_in_bytes")) == ("3", str(48 * MiB))
    # A bad key is refused before anything is written: the memory limit
    # that comes first in the same update stays as it was.
    for bad in ("../cgroup.max.depth", "memory.limit_in_bytes/x", "nodot", "cgroup.nosuchfile"):
        r = mc("--root", cri.state_root, "update", "--resources", "-", cid,
               input=json.dumps({"memory": {"limit": 40 * MiB}, "unified": {bad: "1", "cgroup.max.depth": "4"}}))
        assert r.returncode == 125 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
        assert "unified" in r.stderr and bad in r.stderr, r.stderr
        assert (read(f"{unified}/cgroup.max.depth"), read(f"{mem}/memory.limit_in_bytes")) == ("3", str(48 * MiB)), bad


def test_container_stats(cri, pod):
    cid = pod["writer"]
    cri.exec_sync(cid, "sh", "-c", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done")
    s = cri.client.ContainerStats({"container_id": cid})["stats"]
    assert s["attributes"]["id"] == cid and s["attributes"]["metadata"]["name"] == "writer"
    assert s["cpu"]["usage_core_nano_seconds"]["value"] > 1_000_000, s
    assert s["memory"]["working_set_bytes"]["value"] > 0, s
    # Memory use is what the cgroup says (within what the pod did meanwhile).
    usage = int(read(f"{CGROUP}/memory{cgroup_of(cri.pid_of(cid), 'memory')}/memory.usage_in_bytes"))
    assert 0 < s["memory"]["usage_bytes"]["value"] <= 96 * MiB and usage > 0, s


def test_shim_task_ps_reads_our_ps_json(cri, pod):
    """`ctr task ps` asks the shim for the task's pids: it runs our
    `ps --format json` and parses stdout and stderr together (go-runc)."""
    cid = pod["reader"]
    pid = cri.pid_of(cid)
    r = cri.mc("ps", "--format", "json", cid)
    assert (json.loads(r.stdout), r.stderr) == ([pid], "")
    out = cri.ctr("task", "ps", cid)
    assert [l.split()[0] for l in out.splitlines()[1:]] == [str(pid)], out



def status_caps(out):
    return {l.split(":")[0]: int(l.split()[1], 16) for l in out.splitlines() if l.startswith("Cap")}


def test_security_context_and_host_path_mount(cri, pod):
    vol = f"{cri.tmp}/vol"
    os.makedirs(vol)
    with open(f"{vol}/f", "w") as f:
        f.write("host-file\n")
    cid = cri.create_container(
        pod["sid"], pod["cfg"], "limited", ["sleep", "1007"],
        security={"run_as_user": {"value": 1000}, "readonly_rootfs": True,
                  "capabilities": {"drop_capabilities": ["ALL"], "add_capabilities": ["NET_ADMIN"]}},
        mounts=[{"container_path": "/data", "host_path": vol, "readonly": True}])
    try:
        assert cri.exec_sync(cid, "id", "-u") == (0, "1000\n", "")
        caps = status_caps(cri.exec_sync(cid, "grep", "^Cap", "/proc/self/status")[1])
        # NET_ADMIN (12) alone in the bounding set; uid 1000 keeps no effective ones.
        assert caps == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 1 << 12, "CapAmb": 0}, caps
        assert cri.exec_sync(cid, "cat", "/data/f") == (0, "host-file\n", "")
        for target in ("/x", "/data/y"):
            code, _, err = cri.exec_sync(cid, "touch", target)
            assert code != 0 and "Read-only file system" in err, (target, err)
        assert os.listdir(vol) == ["f"]
    finally:
        cri.client.StopContainer({"container_id": cid, "timeout": 0})
        cri.client.RemoveContainer({"container_id": cid})


def test_tty_exec_and_attach(cri, pod):
    """kubectl exec -it and kubectl attach: a terminal, stdin, the output over
    the WebSocket, the exit code (exec) and the container's end (attach)."""
    url = cri.client.Exec({"container_id": pod["reader"], "cmd": ["sh"], "tty": True, "stdin": True,
                           "stdout": True})["url"]
    ws = crikit.WebSocketExec(url)
    ws.stdin(b"tty; echo $((6*7)); exit 4\n")
    out, _, status = ws.run()
    assert re.search(rb"\r\n/dev/pts/\d+\r\n42\r\n", out) and crikit.exit_code(status) == 4, (out, status)

    cid = cri.create_container(pod["sid"], pod["cfg"], "talk", ["sh"], stdin=True, tty=True)
    url = cri.client.Attach({"container_id": cid, "stdin": True, "tty": True, "stdout": True})["url"]
    ws = crikit.WebSocketExec(url)
    ws.stdin(b"echo attached-$((6*7)); exit 3\n")
    out, _, _ = ws.run()
    assert b"\r\nattached-42\r\n" in out, out
    assert wait_for(lambda: cri.client.ContainerStatus({"container_id": cid})["status"].get("state")
                    == crikit.CONTAINER_EXITED)
    assert cri.client.ContainerStatus({"container_id": cid})["status"]["exit_code"] == 3
    cri.client.RemoveContainer({"container_id": cid})
    assert cid not in cri.runtime_state()


def test_privileged_pod(cri):
    sid, cfg = cri.run_pod("priv", privileged=True)
    try:
        # kubelet sends its masked and read-only paths; containerd applies
        # them to unprivileged containers only.
        paths = {"masked_paths": ["/proc/timer_list", "/sys/firmware"], "readonly_paths": ["/proc/sys"]}
        plain = cri.create_container(sid, cfg, "plain", ["sleep", "1008"], security=paths)
        priv = cri.create_container(sid, cfg, "priv", ["sleep", "1009"], security={"privileged": True, **paths})
        with open("/proc/self/status") as f:
            host_bounding = status_caps(f.read())["CapBnd"]
        caps = status_caps(cri.exec_sync(priv, "grep", "^Cap", "/proc/self/status")[1])
        assert caps["CapEff"] == caps["CapBnd"] == host_bounding, caps
        assert status_caps(cri.exec_sync(plain, "grep", "^Cap", "/proc/self/status")[1])["CapEff"] != host_bounding
        # The host's devices (containerd lists them all in the spec).
        host_dev = next(d for d in ("kmsg", "loop-control", "mem", "port") if os.path.exists(f"/dev/{d}"))
        assert cri.exec_sync(priv, "test", "-c", f"/dev/{host_dev}")[0] == 0
        assert cri.exec_sync(plain, "test", "-e", f"/dev/{host_dev}")[0] != 0
        # No masked paths: /proc/kcore is the kernel's, not /dev/null.
        # Masked paths: /dev/null (1:3) over a file, an empty read-only
        # tmpfs over a directory; /proc/sys read-only. None of it when privileged.
        masked = "/proc/timer_list"
        assert cri.exec_sync(plain, "stat", "-c", "%t:%T", masked)[1].strip() == "1:3"
        code, out, _ = cri.exec_sync(priv, "head", "-c", "100", masked)
        assert code == 0 and out.startswith("Timer List"), out
        assert cri.exec_sync(plain, "ls", "/sys/firmware")[1] == ""
        assert "acpi" in cri.exec_sync(priv, "ls", "/sys/firmware")[1]
        code, _, err = cri.exec_sync(plain, "sh", "-c", "echo 1 > /proc/sys/kernel/ns_last_pid")
        assert code != 0 and "Read-only file system" in err, err
    finally:
        cri.remove_pod(sid)



def test_systemd_cgroup_handler(cri):
    """A handler with SystemdCgroup = true (kubelet's systemd cgroup driver):
    containerd makes "PARENT.slice:cri-containerd:ID" paths and the shim
    passes --systemd-cgroup; the cgroups are the ones systemd's would be
    (without systemd here, we make them by hand), and limits land there."""
    parent = f"mccri{cri.tag}.slice"
    sid, cfg = cri.run_pod("sd", handler=HANDLER + "-systemd", cgroup_parent=parent)
    try:
        cid = cri.create_container(sid, cfg, "c", ["sleep", "1010"],
                                   resources={"memory_limit_in_bytes": 40 * MiB})
        scopes = {i: f"/{parent}/cri-containerd-{i}.scope" for i in (sid, cid)}
        for i, path in scopes.items():
            with open(f"/proc/{cri.pid_of(i)}/cgroup") as f:
                lines = f.read().splitlines()
            assert all(l.endswith(":" + path) for l in lines), lines
        mem = f"{CGROUP}/memory{scopes[cid]}/memory.limit_in_bytes"
        assert read(mem) == str(40 * MiB)
        cri.client.UpdateContainerResources({"container_id": cid, "linux": {"memory_limit_in_bytes": 50 * MiB}})
        assert read(mem) == str(50 * MiB)
        assert cri.client.ContainerStats({"container_id": cid})["stats"]["memory"]["working_set_bytes"]["value"] > 0
    finally:
        cri.remove_pod(sid)
    assert not [d for h in os.listdir(CGROUP) for d in scopes.values() if os.path.isdir(f"{CGROUP}/{h}{d}")]


def test_stop_and_remove_leave_nothing(cri):
    netns_before, veths_before = set(cri.netns()), cri.bridge_ports()
    sid, cfg = cri.run_pod("gone")
    cid = cri.create_container(sid, cfg, "only", ["sleep", "1004"])
    ip = cri.client.PodSandboxStatus({"pod_sandbox_id": sid})["status"]["network"]["ip"]
    pause, pid = cri.pid_of(sid), cri.pid_of(cid)
    cg = {p: f"{CGROUP}/memory{cgroup_of(p, 'memory')}" for p in (pause, pid)}
    assert all(os.path.isdir(d) for d in cg.values())
    netns = set(cri.netns()) - netns_before
    veths = cri.bridge_ports() - veths_before
    assert len(netns) == 1 and len(veths) == 1, (netns, veths)
    assert ip in cri.leases() and netns and veths
    shm = [m for m in mounts_under(cri.tmp) if sid in m]
    assert shm, "the sandbox's /dev/shm mount"

    cri.client.StopPodSandbox({"pod_sandbox_id": sid})
    st = cri.client.PodSandboxStatus({"pod_sandbox_id": sid})["status"]
    assert st.get("state") == crikit.SANDBOX_NOTREADY
    assert cri.client.ContainerStatus({"container_id": cid})["status"]["state"] == crikit.CONTAINER_EXITED
    for p in (pause, pid):
        assert not os.path.exists(f"/proc/{p}"), f"process {p} left"
    assert ip not in cri.leases()
    assert not set(cri.netns()) & netns and not set(cri.bridge_ports()) & veths
    assert not any(os.path.exists(f"/sys/class/net/{v}") for v in veths)

    cri.client.RemovePodSandbox({"pod_sandbox_id": sid})
    assert sid not in [p["id"] for p in cri.client.ListPodSandbox({}).get("items", [])]
    assert not {sid, cid} & set(cri.runtime_state())
    assert not any(os.path.isdir(d) for d in cg.values()), cg
    assert not [m for m in mounts_under(cri.tmp) if sid in m or cid in m]

