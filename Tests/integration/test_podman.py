"""podman 4 (with conmon) driving minicontainer as its OCI runtime.

Everything is private: a temporary directory holds containers.conf (runtime
= this binary), storage.conf (graphroot/runroot), the CNI config dir, the
events log and podman's tmpdir; CONTAINERS_CONF / CONTAINERS_STORAGE_CONF
point podman at them. No network is used (netns "none"), no image is pulled:
the busybox rootfs is `podman import`ed. The runtime keeps its state in its
default --root, /run/minicontainer (podman's cleanup processes pass no
runtime flags), which must hold none of our containers afterwards.
"""
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
import pytest
from conftest import BIN, ROOTFS, mc, run_in_pty

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("podman") is None or shutil.which("conmon") is None,
                       reason="podman and conmon are not installed (apt-get install podman conmon)"),
]

IMAGE = "localhost/mcbusybox:test"
STATE_ROOT = "/run/minicontainer"
CGROUP = "/sys/fs/cgroup"
BLOB_CACHE_PARENT = "/var/lib/containers"


def mounts_under(path):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == path or point.startswith(path + "/"):
                out.append(point)
    return out


def libpod_cgroups():
    """Every libpod* cgroup directory at the top two levels of each hierarchy."""
    found = set()
    for h in os.listdir(CGROUP):
        base = os.path.join(CGROUP, h)
        if not os.path.isdir(base) or os.path.islink(base):
            continue
        for name in os.listdir(base):
            p = os.path.join(base, name)
            if name.startswith("libpod") and os.path.isdir(p):
                found.add(p)
                for sub in os.listdir(p):
                    if os.path.isdir(os.path.join(p, sub)):
                        found.add(os.path.join(p, sub))
    return found


def rlimit_defaults():
    """podman asks for RLIMIT_NOFILE/NPROC of 1048576 unless told otherwise;
    raising a hard limit needs CAP_SYS_RESOURCE (runc and crun fail the same
    way without it). Ask for what the runtime can set: NOFILE at our hard
    limit (podman raises its soft limit to it), NPROC at most pid_max (podman
    lowers its own NPROC to pid_max on start)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            pid_max = int(f.read())
    except OSError:
        pid_max = 32768
    if nofile == resource.RLIM_INFINITY or nofile > 1048576:
        nofile = 1048576
    if nproc == resource.RLIM_INFINITY or nproc > pid_max:
        nproc = pid_max
    return [f"nofile={nofile}:{nofile}", f"nproc={nproc}:{nproc}"]


class Podman:
    def __init__(self, tmp):
        self.tmp = tmp
        self.ids = set()
        self.env = dict(os.environ,
                        CONTAINERS_CONF=f"{tmp}/containers.conf",
                        CONTAINERS_STORAGE_CONF=f"{tmp}/storage.conf",
                        CONTAINERS_REGISTRIES_CONF=f"{tmp}/registries.conf")
        self.env.pop("CONTAINER_HOST", None)
        self.env.pop("CONTAINER_CONNECTION", None)

    def __call__(self, *args, input=None, timeout=60, check=False):
        r = subprocess.run(["podman", *args], capture_output=True, text=True, env=self.env,
                           input=input, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def ok(self, *args, **kw):
        return self(*args, check=True, **kw).stdout

    def cid(self, name):
        i = self.ok("inspect", "--format", "{{.Id}}", name).strip()
        self.ids.add(i)
        return i

    def status(self, name):
        return self.ok("inspect", "--format", "{{.State.Status}}", name).strip()


@pytest.fixture(scope="module")
def pod(binary, rootfs):
    tmp = tempfile.mkdtemp(prefix="mc-podman-", dir="/tmp")
    cgroups_before = libpod_cgroups()
    # podman 4.3's import writes containers/image's blob-info cache to
    # /var/lib/containers/cache whatever graphroot says: remove it if it is ours.
    cache_existed = os.path.exists(BLOB_CACHE_PARENT)
    root_existed = os.path.isdir(STATE_ROOT)
    state_before = set(os.listdir(STATE_ROOT)) if root_existed else set()
    for d in ("root", "run", "tmp", "cni", "volumes"):
        os.makedirs(f"{tmp}/{d}")
    ulimits = ", ".join(json.dumps(u) for u in rlimit_defaults())
    with open(f"{tmp}/containers.conf", "w") as f:
        f.write(f"""[containers]
netns = "none"
default_ulimits = [{ulimits}]

[network]
network_config_dir = "{tmp}/cni"

[engine]
runtime = "minicontainer"
runtime_supports_json = ["minicontainer", "crun", "runc"]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{tmp}/events.log"
tmp_dir = "{tmp}/tmp"
static_dir = "{tmp}/root/libpod"
volume_path = "{tmp}/volumes"
image_default_transport = "containers-storage:"

[engine.runtimes]
minicontainer = ["{BIN}"]
""")
    with open(f"{tmp}/storage.conf", "w") as f:
        f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{tmp}/root"\nrunroot = "{tmp}/run"\n')
    with open(f"{tmp}/registries.conf", "w") as f:
        f.write("unqualified-search-registries = []\n")
    p = Podman(tmp)
    try:
        tar = subprocess.run(["tar", "-C", rootfs, "--numeric-owner", "-c", "."], capture_output=True, check=True).stdout
        r = subprocess.run(["podman", "import", "-", IMAGE], input=tar, capture_output=True, env=p.env, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        yield p
    finally:
        teardown(p, cgroups_before)
        if not cache_existed:
            shutil.rmtree(BLOB_CACHE_PARENT, ignore_errors=True)
    left = set(os.listdir(STATE_ROOT)) - state_before if os.path.isdir(STATE_ROOT) else set()
    assert not (left & p.ids), f"containers left in {STATE_ROOT}: {left & p.ids}"
    # The compiled seccomp filters' cache, if this test made it; then the root, if it did.
    if "@seccomp" not in state_before:
        shutil.rmtree(os.path.join(STATE_ROOT, "@seccomp"), ignore_errors=True)
    if not root_existed:
        os.rmdir(STATE_ROOT)
    assert libpod_cgroups() <= cgroups_before, f"cgroups left: {libpod_cgroups() - cgroups_before}"
    assert not mounts_under(tmp), f"mounts left: {mounts_under(tmp)}"
    assert not os.path.exists(tmp)


def teardown(p, cgroups_before):
    tmp = p.tmp
    for args in (("rm", "-af", "-t", "0"), ("system", "reset", "-f")):
        try:
            p(*args, timeout=60)
        except subprocess.TimeoutExpired:
            pass
    # Processes podman started for us (conmon; exit commands) that still run.
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if tmp.encode() in cmd:
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
    for m in sorted(mounts_under(tmp), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
    shutil.rmtree(tmp, ignore_errors=True)
    # podman makes libpod_parent (and libpod_parent/conmon) itself and never
    # removes them: remove those it made for us, deepest first.
    for d in sorted(libpod_cgroups() - cgroups_before, key=len, reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass
    for cid in p.ids:
        if os.path.isdir(f"{STATE_ROOT}/{cid}"):
            mc("delete", "--force", cid)


def test_podman_uses_minicontainer(pod):
    info = json.loads(pod.ok("info", "--format", "json"))
    rt = info["host"]["ociRuntime"]
    assert rt["name"] == "minicontainer"
    assert rt["path"] == BIN
    assert "minicontainer version" in rt["version"]
    assert info["store"]["graphRoot"] == f"{pod.tmp}/root"
    dbg = pod("--log-level", "debug", "info")
    assert f'Using OCI runtime \\"{BIN}\\"' in dbg.stderr


def test_run_echo(pod):
    r = pod("run", "--rm", "--network", "none", IMAGE, "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr


@pytest.mark.parametrize("cmd,code,msg", [
    (["sh", "-c", "exit 3"], 3, None),
    (["false"], 1, None),
    (["nosuchcmd"], 127, "executable file not found"),
    (["/etc/passwd"], 126, "permission denied"),
])
def test_exit_codes(pod, cmd, code, msg):
    r = pod("run", "--rm", IMAGE, *cmd)
    assert r.returncode == code, r.stderr
    if msg:
        assert msg in r.stderr


def test_runtime_error_reaches_podman_through_json_log(pod):
    name = "bad" + uuid.uuid4().hex[:8]
    r = pod("run", "--name", name, IMAGE, "nosuchcmd")
    assert r.returncode == 127
    cid = pod.cid(name)
    with open(f"{pod.tmp}/run/overlay-containers/{cid}/userdata/oci-log") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    assert lines and lines[-1]["level"] == "error"
    assert f"create {cid}:" in lines[-1]["msg"] and "executable file not found" in lines[-1]["msg"]
    assert lines[-1]["msg"] in r.stderr
    pod.ok("rm", name)
    assert not os.path.exists(f"{STATE_ROOT}/{cid}")


def test_process_settings(pod, tmp_path):
    (tmp_path / "f").write_text("data\n")
    os.chmod(tmp_path, 0o755)  # read as uid 65534 through the bind mount
    r = pod("run", "--rm", "--read-only", "-u", "65534:65534", "-e", "X=1", "-w", "/tmp",
            "--hostname", "hh", "-v", f"{tmp_path}:/data:ro", IMAGE,
            "sh", "-c", "id -u; id -g; hostname; pwd; echo $X; cat /data/f; touch /x 2>/dev/null || echo ro")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["65534", "65534", "hh", "/tmp", "1", "data", "ro"]
    r = pod("run", "--rm", "-i", IMAGE, "cat", input="piped\n")
    assert (r.returncode, r.stdout) == (0, "piped\n"), r.stderr


def test_detached_ps_exec_pause_stop_rm(pod):
    name = "web" + uuid.uuid4().hex[:8]
    pod.ok("run", "-d", "--name", name, IMAGE, "sleep", "1000")
    cid = pod.cid(name)
    assert pod.status(name) == "running"
    assert name in pod.ok("ps", "--format", "{{.Names}}").split()
    # Our own view of the same container.
    st = json.loads(mc("state", cid, check=True).stdout)
    assert st["status"] == "running"
    assert st["pid"] == int(pod.ok("inspect", "--format", "{{.State.Pid}}", name))
    assert mc("ps", "--format", "json", cid, check=True).stdout.strip() == f"[{st['pid']}]"

    assert pod.ok("exec", name, "echo", "from-exec") == "from-exec\n"
    assert pod("exec", name, "sh", "-c", "exit 5").returncode == 5
    assert pod.ok("exec", "-u", "1000:1000", "-w", "/tmp", "-e", "Y=2", name,
                  "sh", "-c", "id -u; pwd; echo $Y").split() == ["1000", "/tmp", "2"]
    r = pod("exec", name, "nosuchcmd")
    assert r.returncode == 127 and "executable file not found" in r.stderr
    top = pod.ok("top", name, "pid", "args")
    assert "sleep 1000" in top

    pod.ok("pause", name)
    assert pod.status(name) == "paused"
    assert json.loads(mc("state", cid, check=True).stdout)["status"] == "paused"
    pod.ok("unpause", name)
    assert pod.status(name) == "running"

    pod.ok("stop", "-t", "1", name)  # sleep as pid 1 ignores SIGTERM: SIGKILL after 1s
    assert pod.status(name) == "exited"
    assert pod.ok("inspect", "--format", "{{.State.ExitCode}}", name).strip() == "137"
    pod.ok("rm", name)
    assert not os.path.exists(f"{STATE_ROOT}/{cid}")
    assert not any(cid in d for d in libpod_cgroups())


def test_stop_with_sigterm_and_restart(pod):
    name = "trap" + uuid.uuid4().hex[:8]
    pod.ok("run", "-d", "--name", name, IMAGE, "sh", "-c",
           'trap "exit 0" TERM; echo started; while :; do sleep 0.1; done')
    pod.cid(name)
    pod.ok("stop", "-t", "5", name)
    assert pod.ok("inspect", "--format", "{{.State.ExitCode}}", name).strip() == "0"
    pod.ok("start", name)
    assert pod.status(name) == "running"
    assert pod.ok("logs", name).split() == ["started", "started"]
    pod.ok("rm", "-f", "-t", "0", name)


def test_interactive_tty(pod):
    steps = [(b"# ", b"tty; echo $((6*7))\r"), (b"42", b"exit 4\r")]
    out, code = run_in_pty(["podman", "run", "--rm", "-it", IMAGE, "sh"], steps, env=pod.env)
    assert code == 4, out
    assert b"/dev/pts/0" in out

    name = "tty" + uuid.uuid4().hex[:8]
    pod.ok("run", "-d", "--name", name, IMAGE, "sleep", "1000")
    pod.cid(name)
    out, code = run_in_pty(["podman", "exec", "-it", name, "sh"],
                           [(b"# ", b"tty; echo $((6*7))\r"), (b"42", b"exit 6\r")], env=pod.env)
    assert code == 6, out
    assert b"/dev/pts/" in out
    pod.ok("rm", "-f", "-t", "0", name)
