"""containerd 1.6 (ctr and the io.containerd.runc.v2 shim) driving
minicontainer as its runc binary.

A private containerd runs for the module: root, state, gRPC/ttrpc sockets and
the runtime's --root all under a temporary directory, the CRI plugin off. The
busybox rootfs becomes an OCI image tarball built here (one layer, config,
manifest, index.json) that `ctr images import` takes; nothing is pulled. A
namespace of our own ("ctrtest...") keeps images, containers and the default
cgroup parent (/<namespace>) apart. The shim calls the binary with --root,
--log, --log-format json (and --systemd-cgroup when asked) for create, start,
state, ps --format json, exec --process --detach, kill [--all], pause,
resume and delete [--force].
"""
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import uuid
import pytest
from conftest import BIN, mc, run_in_pty

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in ("containerd", "ctr", "containerd-shim-runc-v2")),
                       reason="containerd is not installed (apt-get install containerd)"),
]

IMAGE = "docker.io/library/mcbusybox:test"
CGROUP = "/sys/fs/cgroup"
# containerd 1.6 puts shim sockets under /run/containerd/s whatever its state
# directory is.
RUN_CONTAINERD = "/run/containerd"


def mounts_under(path):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == path or point.startswith(path + "/"):
                out.append(point)
    return out


def cgroups_named(prefix):
    found = []
    for h in os.listdir(CGROUP):
        base = os.path.join(CGROUP, h)
        if os.path.isdir(base) and not os.path.islink(base):
            found += [os.path.join(base, n) for n in os.listdir(base)
                      if n.startswith(prefix) and os.path.isdir(os.path.join(base, n))]
    return found


def remove_empty_dirs(path):
    for dirpath, dirnames, _ in sorted(os.walk(path), key=lambda t: -len(t[0])):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


def oci_image_tar(rootfs, name, config=None):
    """An OCI image layout as a tar stream: one uncompressed layer; `config`
    is the image config's "config" object (default: PATH and Cmd sh)."""
    layer = subprocess.run(["tar", "-C", rootfs, "--numeric-owner", "-c", "."],
                           capture_output=True, check=True).stdout

    def digest(b):
        return "sha256:" + hashlib.sha256(b).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": config or {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": len(layer)}],
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest), "size": len(manifest),
        "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
    }]}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        def add(n, b):
            ti = tarfile.TarInfo(n)
            ti.size = len(b)
            t.addfile(ti, io.BytesIO(b))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for b in (layer, config, manifest):
            add("blobs/sha256/" + digest(b)[7:], b)
    return buf.getvalue()


class Ctr:
    def __init__(self, tmp, ns):
        self.tmp = tmp
        self.ns = ns
        self.sock = f"{tmp}/containerd.sock"
        self.runc_root = f"{tmp}/runc"
        self.fifo = f"{tmp}/fifo"
        self.proc = None
        self.ids = set()

    @property
    def state_root(self):
        """The runtime's --root as the shim passes it: <runc-root>/<namespace>."""
        return f"{self.runc_root}/{self.ns}"

    def __call__(self, *args, input=None, timeout=30, check=False):
        r = subprocess.run(["ctr", "-a", self.sock, "-n", self.ns, *args], capture_output=True,
                           input=input, timeout=timeout,
                           stdin=None if input is not None else subprocess.DEVNULL)
        r.stdout = r.stdout.decode(errors="replace")
        r.stderr = r.stderr.decode(errors="replace")
        if check and r.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def ok(self, *args, **kw):
        return self(*args, check=True, **kw).stdout

    def run_args(self, *flags):
        return ["--runc-binary", BIN, "--runc-root", self.runc_root, "--fifo-dir", self.fifo, *flags]

    def run(self, cid, *cmd, flags=(), **kw):
        self.ids.add(cid)
        return self("run", *self.run_args(*flags), IMAGE, cid, *cmd, **kw)

    def tasks(self):
        out = {}
        for line in self.ok("task", "ls").splitlines()[1:]:
            f = line.split()
            out[f[0]] = f[2]
        return out

    def wait_status(self, cid, want, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.tasks().get(cid) == want:
                return True
            time.sleep(0.05)
        return False

    def remove(self, cid):
        self("task", "kill", "-s", "SIGKILL", cid)
        self.wait_status(cid, "STOPPED", timeout=5)
        self("task", "rm", "-f", cid)
        self("container", "rm", cid)


@pytest.fixture(scope="module")
def ctrd(binary, rootfs):
    tmp = tempfile.mkdtemp(prefix="mc-containerd-", dir="/tmp")
    ns = "ctrtest" + uuid.uuid4().hex[:8]
    run_existed = os.path.exists(RUN_CONTAINERD)
    c = Ctr(tmp, ns)
    os.makedirs(c.fifo)
    with open(f"{tmp}/config.toml", "w") as f:
        f.write(f"""version = 2
root = "{tmp}/root"
state = "{tmp}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{c.sock}"
[ttrpc]
  address = "{c.sock}.ttrpc"
[debug]
  address = "{tmp}/debug.sock"
[metrics]
  address = ""
""")
    log = open(f"{tmp}/containerd.log", "w")
    c.proc = subprocess.Popen(["containerd", "--config", f"{tmp}/config.toml"], stdout=log, stderr=log,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 20
        while True:
            if c.proc.poll() is not None:
                pytest.fail(f"containerd exited: {open(f'{tmp}/containerd.log').read()[-2000:]}")
            if os.path.exists(c.sock) and c("version").returncode == 0:
                break
            if time.time() > deadline:
                pytest.fail("containerd did not come up in 20 s")
            time.sleep(0.1)
        c.ok("images", "import", "-", input=oci_image_tar(rootfs, IMAGE))
        yield c
    finally:
        teardown(c, run_existed)
        log.close()
    assert not mounts_under(tmp), f"mounts left: {mounts_under(tmp)}"
    assert not cgroups_named(ns), f"cgroups left: {cgroups_named(ns)}"
    assert not os.path.exists(tmp)


def teardown(c, run_existed):
    tmp, ns = c.tmp, c.ns
    left_in_root = []
    if c.proc and c.proc.poll() is None:
        try:
            for line in c.ok("container", "ls", "-q").split():
                c.remove(line)
            c("images", "rm", IMAGE)
            c("namespaces", "rm", ns)
        except Exception:
            pass
        c.proc.send_signal(signal.SIGTERM)
        try:
            c.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()
    if os.path.isdir(c.state_root):
        # Not the compiled seccomp filters (<root>/@seccomp): the runtime's cache, no container's state.
        left_in_root = [e for e in os.listdir(c.state_root) if e != "@seccomp"]
        for cid in left_in_root:
            mc("--root", c.state_root, "delete", "--force", cid)
    # Shims of our namespace (they outlive containerd while they have tasks).
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if any(tmp.encode() in a for a in cmd) or (b"-namespace" in cmd and ns.encode() in cmd):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    for m in sorted(mounts_under(tmp), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
    shutil.rmtree(tmp, ignore_errors=True)
    for d in cgroups_named(ns):
        remove_empty_dirs(d)
    if not run_existed:
        remove_empty_dirs(RUN_CONTAINERD)
    assert not left_in_root, f"containers left in the runtime root: {left_in_root}"


def test_run_rm_echo(ctrd):
    r = ctrd.run("echo1", "echo", "hi", flags=["--rm"])
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    assert "echo1" not in ctrd.ok("container", "ls", "-q").split()
    assert not os.path.exists(f"{ctrd.state_root}/echo1")


def test_exit_codes_and_errors(ctrd):
    assert ctrd.run("exit3", "sh", "-c", "exit 3", flags=["--rm"]).returncode == 3
    r = ctrd.run("nocmd", "nosuchcmd", flags=["--rm"])
    # The shim reads the error from our --log (JSON lines).
    assert r.returncode != 0
    assert "OCI runtime create failed" in r.stderr and "executable file not found" in r.stderr, r.stderr
    ctrd("container", "rm", "nocmd")
    assert not os.path.exists(f"{ctrd.state_root}/nocmd")


def test_detached_exec_pause_kill_rm(ctrd):
    cid = "web1"
    r = ctrd.run(cid, "sleep", "1000", flags=["-d"])
    assert r.returncode == 0, r.stderr
    assert ctrd.tasks()[cid] == "RUNNING"
    st = json.loads(mc("--root", ctrd.state_root, "state", cid, check=True).stdout)
    assert st["status"] == "running"
    ps = ctrd.ok("task", "ps", cid).split()
    assert str(st["pid"]) in ps
    # Its cgroup: /<namespace>/<id> in every hierarchy.
    with open(f"/proc/{st['pid']}/cgroup") as f:
        assert f":/{ctrd.ns}/{cid}\n" in f.read()

    r = ctrd("task", "exec", "--fifo-dir", ctrd.fifo, "--exec-id", "e1", cid, "sh", "-c", "echo in-exec; ps")
    assert r.returncode == 0 and r.stdout.startswith("in-exec\n"), r.stderr
    assert "sleep 1000" in r.stdout
    assert ctrd("task", "exec", "--fifo-dir", ctrd.fifo, "--exec-id", "e2", cid, "sh", "-c", "exit 6").returncode == 6
    r = ctrd("task", "exec", "--fifo-dir", ctrd.fifo, "--exec-id", "e3", cid, "nosuchcmd")
    assert r.returncode != 0 and "executable file not found" in r.stderr

    ctrd.ok("task", "pause", cid)
    assert ctrd.tasks()[cid] == "PAUSED"
    assert json.loads(mc("--root", ctrd.state_root, "state", cid, check=True).stdout)["status"] == "paused"
    ctrd.ok("task", "resume", cid)
    assert ctrd.tasks()[cid] == "RUNNING"

    ctrd.ok("task", "kill", "-s", "SIGKILL", cid)
    assert ctrd.wait_status(cid, "STOPPED")
    ctrd.ok("task", "rm", cid)
    ctrd.ok("container", "rm", cid)
    assert not os.path.exists(f"{ctrd.state_root}/{cid}")
    assert not any(os.path.isdir(f"{d}/{cid}") for d in cgroups_named(ctrd.ns))


def test_kill_all_reaches_exec_processes(ctrd):
    cid = "web2"
    assert ctrd.run(cid, "sleep", "1000", flags=["-d"]).returncode == 0
    bg = subprocess.Popen(["ctr", "-a", ctrd.sock, "-n", ctrd.ns, "task", "exec", "--fifo-dir", ctrd.fifo,
                           "--exec-id", "bg", cid, "sleep", "500"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while len(json.loads(mc("--root", ctrd.state_root, "ps", "--format", "json", cid).stdout or "[]")) < 2:
            assert time.time() < deadline, "the exec'd process never showed up"
            time.sleep(0.05)
        ctrd.ok("task", "kill", "--all", "-s", "SIGKILL", cid)
        assert bg.wait(timeout=10) != 0
        assert ctrd.wait_status(cid, "STOPPED")
    finally:
        if bg.poll() is None:
            bg.kill()
            bg.wait()
    ctrd.ok("task", "rm", cid)
    ctrd.ok("container", "rm", cid)
    assert not os.path.exists(f"{ctrd.state_root}/{cid}")


def test_tty_run_and_exec(ctrd):
    ctrd.ids.add("tty1")
    out, code = run_in_pty(["ctr", "-a", ctrd.sock, "-n", ctrd.ns, "run", "--rm", "-t", *ctrd.run_args(),
                            IMAGE, "tty1", "sh"],
                           [(b"# ", b"tty; echo $((6*7))\r"), (b"42", b"exit 4\r")])
    assert code == 4, out
    assert b"/dev/pts/0" in out

    cid = "tty2"
    assert ctrd.run(cid, "sleep", "1000", flags=["-d"]).returncode == 0
    out, code = run_in_pty(["ctr", "-a", ctrd.sock, "-n", ctrd.ns, "task", "exec", "-t", "--fifo-dir", ctrd.fifo,
                            "--exec-id", "t1", cid, "sh"],
                           [(b"# ", b"tty; echo $((6*7))\r"), (b"42", b"exit 5\r")])
    assert code == 5, out
    assert b"/dev/pts/" in out
    ctrd.remove(cid)


def test_systemd_cgroup_flag(ctrd):
    # --runc-systemd-cgroup makes the shim pass --systemd-cgroup; without
    # systemd the "slice:prefix:name" path is expanded by hand.
    slice_ = f"{ctrd.ns}.slice"
    r = ctrd.run("sd1", "cat", "/proc/self/cgroup",
                 flags=["--rm", "--runc-systemd-cgroup", "--cgroup", f"{slice_}:ctr:sd1"])
    assert r.returncode == 0, r.stderr
    assert f":/{slice_}/ctr-sd1.scope" in r.stdout
    assert not any(os.path.isdir(f"{d}/ctr-sd1.scope") for d in cgroups_named(ctrd.ns))


@pytest.mark.parametrize("nnp", [True, False])
def test_seccomp_default_profile(ctrd, nnp):
    # Without no_new_privs the filter must go in before the capabilities
    # are dropped (loading it needs CAP_SYS_ADMIN), with it as late as possible.
    cid = f"sec{int(nnp)}"
    flags = ["--rm", "--seccomp"] + ([] if nnp else ["--allow-new-privs"])
    r = ctrd.run(cid, "grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status", flags=flags)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["NoNewPrivs:", "1" if nnp else "0", "Seccomp:", "2"]
    cid = f"secx{int(nnp)}"
    assert ctrd.run(cid, "sleep", "1000", flags=flags[1:] + ["-d"]).returncode == 0
    r = ctrd("task", "exec", "--fifo-dir", ctrd.fifo, "--exec-id", "x", cid,
             "grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["NoNewPrivs:", "1" if nnp else "0", "Seccomp:", "2"]
    ctrd.remove(cid)
