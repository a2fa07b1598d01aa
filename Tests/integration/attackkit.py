"""Shared pieces of the attack suite (issue 11): attacker programs compiled
at test time, a per-test lab (its own copy of the runtime, rootfs, bundle,
--root and ids prefixed atk-), and checks that the host is unchanged.

Every test attacks a COPY of $MINICONTAINER, never the built binary, and
runs every runtime command through that copy. The lab removes all it made
(containers, cgroups, tmp dirs) even when the test fails, and its teardown
fails the test if anything of a container is left: a state directory, a
cgroup named for an id in any hierarchy, a process running the copy, a
mount under the lab.
"""
import array
import atexit
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from conftest import BIN, ROOTFS

HERE = os.path.dirname(os.path.abspath(__file__))
ATTACKS = os.path.join(HERE, "attacks")
CGROUP = "/sys/fs/cgroup"

# ---------------------------------------------------------------- compiling

_build_dir = None
_built = {}


def _cleanup_build_dir():
    if _build_dir:
        shutil.rmtree(_build_dir, ignore_errors=True)


def compiler():
    for cc in (os.environ.get("CC"), "gcc", "clang", "cc"):
        if cc and shutil.which(cc):
            return cc
    return None


def attacker(name):
    """The path of attacks/NAME.c compiled static (gcc -static -O1), built
    once per session in a tmp dir removed at exit."""
    global _build_dir
    if name in _built:
        return _built[name]
    cc = compiler()
    if cc is None:
        pytest.fail("no C compiler for the attacker programs (scripts/setup.sh installs gcc and libc6-dev)")
    if _build_dir is None:
        _build_dir = tempfile.mkdtemp(prefix="atk-build-")
        atexit.register(_cleanup_build_dir)
    out = os.path.join(_build_dir, name)
    r = subprocess.run([cc, "-static", "-O1", "-Wall", "-o", out, os.path.join(ATTACKS, name + ".c")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"compiling {name}.c failed: {r.stderr}")
    _built[name] = out
    return out


# ---------------------------------------------------------------- host state

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read(path):
    with open(path) as f:
        return f.read()


def sysctl_path(key):
    return "/proc/sys/" + key.replace(".", "/")


def cgroup_dirs(name):
    """Every directory named `name` directly under a hierarchy (runc's
    default /<id>) or under its minicontainer/ (run mode), in every
    hierarchy: v1 controllers, named ones and the unified one."""
    found = []
    for h in sorted(os.listdir(CGROUP)):
        for p in (os.path.join(CGROUP, h, name), os.path.join(CGROUP, h, "minicontainer", name)):
            if os.path.isdir(p):
                found.append(p)
    return found


def is_zombie(pid):
    try:
        return read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True  # gone


def procs_in_cgroup_named(name):
    """Live pids whose /proc/PID/cgroup mentions a path ending in /name
    (zombies are skipped: this host's pid 1 reaps orphans late)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            lines = read(f"/proc/{d}/cgroup").splitlines()
        except OSError:
            continue
        paths = [l.split(":", 2)[-1].replace(" (deleted)", "").rstrip("/") for l in lines]
        if any(p.endswith("/" + name) for p in paths) and not is_zombie(d):
            pids.append(int(d))
    return pids


def procs_running(path):
    """Pids whose executable is the file at `path` (same device and inode)."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            s = os.stat(f"/proc/{d}/exe")
        except OSError:
            continue
        if (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino) and not is_zombie(d):
            pids.append(int(d))
    return pids


def mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if l.split()[4].startswith(prefix)]


def wait_for(pred, timeout=10.0, step=0.01):
    """A bounded wait: True as soon as pred() holds, False at the timeout."""
    end = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(step)


def one_line(stderr, limit=2048):
    """stderr is exactly one line, bounded, with no control characters
    other than its final newline; returns it."""
    assert stderr.endswith("\n") and stderr.count("\n") == 1, f"not one line: {stderr[:600]!r}"
    assert len(stderr.encode()) <= limit, f"{len(stderr.encode())} bytes on stderr: {stderr[:300]!r}..."
    line = stderr[:-1]
    assert not [c for c in line if ord(c) < 32 or ord(c) == 127], f"control characters in {line[:300]!r}"
    return line


# ---------------------------------------------------------------- the lab

class Lab:
    """One test's world: a tmp dir holding the runtime copy, a rootfs copy
    (busybox plus /atk/<attacker programs>), bundles and a --root."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="atk-lab-")
        os.chmod(self.dir, 0o755)
        self.copy = os.path.join(self.dir, "minicontainer")
        shutil.copy2(BIN, self.copy)
        self.copy_sha = sha256(self.copy)
        st = os.stat(self.copy)
        self.copy_id = (st.st_dev, st.st_ino)
        self.state = os.path.join(self.dir, "state")
        self.data = os.path.join(self.dir, "data")  # MINICONTAINER_DATA for run mode
        self.environ = dict(os.environ, MINICONTAINER_DATA=self.data)
        self.ids = []
        self.files = []  # open files to close
        self.cleanups = []  # callables run first at close, last added first
        self.rootfs = self.make_rootfs("rootfs")

    # -- building

    def make_rootfs(self, name, programs=()):
        r = os.path.join(self.dir, name)
        copy_rootfs(r)
        os.makedirs(os.path.join(r, "atk"), exist_ok=True)
        for p in programs:
            self.install(p, r)
        return r

    def install(self, program, rootfs=None):
        dst = os.path.join(rootfs or self.rootfs, "atk", program)
        shutil.copy2(attacker(program), dst)
        return "/atk/" + program

    def id(self, tag=""):
        cid = "atk-" + (tag + "-" if tag else "") + uuid.uuid4().hex[:8]
        self.ids.append(cid)
        return cid

    def bundle(self, args, edit=None, name=None, rootfs=None, terminal=False):
        d = os.path.join(self.dir, name or ("b-" + uuid.uuid4().hex[:6]))
        os.makedirs(d, exist_ok=True)
        r = self.mc("spec", "--bundle", d, "--force")
        assert r.returncode == 0, r.stderr
        cfg = json.loads(read(os.path.join(d, "config.json")))
        cfg["root"] = {"path": rootfs or self.rootfs, "readonly": False}
        cfg["process"]["args"] = args
        cfg["process"]["terminal"] = terminal
        if edit:
            edit(cfg)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        return d

    # -- running the copy

    def cmd(self, *args):
        return [self.copy, "--root", self.state, *args]

    def mc(self, *args, timeout=60, input=None, **kw):
        kw.setdefault("env", self.environ)
        if input is None:
            kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.cmd(*args), capture_output=True, text=True, input=input, timeout=timeout, **kw)

    def create(self, cid, bundle, *extra, fd7=None, timeout=30):
        """create with stdout/stderr in files (the init keeps create's stdio);
        returns (exit code, stderr). fd7: a host path the calling shell
        opens on fd 7 first (CVE-2024-21626)."""
        out = open(self.out_path(cid), "w")
        err_path = os.path.join(self.dir, cid + ".err")
        err = open(err_path, "w")
        try:
            r = subprocess.run(with_fd7(fd7, self.cmd("create", "--bundle", bundle, *extra, cid)), stdout=out,
                               stderr=err, stdin=subprocess.DEVNULL, env=self.environ, timeout=timeout)
        finally:
            out.close()
            err.close()
        return r.returncode, read(err_path)

    def out_path(self, cid):
        return os.path.join(self.dir, cid + ".out")

    def output(self, cid):
        try:
            return read(self.out_path(cid))
        except FileNotFoundError:
            return ""

    def state_of(self, cid):
        r = self.mc("state", cid)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def status(self, cid):
        r = self.mc("state", cid)
        return json.loads(r.stdout)["status"] if r.returncode == 0 else None

    def start(self, cid):
        r = self.mc("start", cid)
        assert r.returncode == 0, r.stderr
        return r

    def wait_stopped(self, cid, timeout=20):
        return wait_for(lambda: self.status(cid) in ("stopped", None), timeout)

    def wait_output(self, cid, text, timeout=20):
        return wait_for(lambda: text in self.output(cid), timeout)

    def run_to_end(self, cid, bundle, *extra, fd7=None, timeout=20):
        """create, start, wait for the init to end; returns (rc of create,
        its stderr, the container's output)."""
        rc, err = self.create(cid, bundle, *extra, fd7=fd7)
        if rc != 0:
            return rc, err, self.output(cid)
        self.start(cid)
        assert self.wait_stopped(cid, timeout), f"{cid} did not stop"
        return rc, err, self.output(cid)

    # -- host checks

    def copy_intact(self):
        return sha256(self.copy) == self.copy_sha

    def assert_copy_intact(self):
        assert os.path.exists(self.copy), "the runtime copy is gone"
        st = os.stat(self.copy)
        got = sha256(self.copy)
        assert got == self.copy_sha, f"the runtime copy was overwritten (sha256 {got}, size {st.st_size})"

    def leftovers(self, ids=None):
        ids = self.ids if ids is None else ids
        left = []
        for cid in ids:
            if os.path.exists(os.path.join(self.state, cid)):
                left.append(f"state dir of {cid}")
            left += [f"cgroup {d}" for d in cgroup_dirs(cid)]
            left += [f"pid {p} in a cgroup of {cid}" for p in procs_in_cgroup_named(cid)]
        left += [f"pid {p} runs the copy" for p in procs_running(self.copy)]
        left += [f"mount {m}" for m in mounts_under(self.dir)]
        if os.path.isdir(os.path.join(self.data, "containers")):
            left += [f"run-mode container {c}" for c in os.listdir(os.path.join(self.data, "containers"))]
        return left

    def restore_copy(self):
        """After a successful attack the copy is garbage: put the original
        back (in place, same inode, when nothing runs it) so that cleanup,
        which runs the copy, still works."""
        if os.path.exists(self.copy) and sha256(self.copy) == self.copy_sha:
            return
        try:
            with open(BIN, "rb") as src, open(self.copy, "r+b") as dst:
                dst.truncate(0)
                shutil.copyfileobj(src, dst)
        except OSError:
            try:
                os.unlink(self.copy)
            except OSError:
                pass
            shutil.copy2(BIN, self.copy)

    def close(self):
        errors = []
        try:
            self.restore_copy()
        except OSError as e:
            errors.append(repr(e))
        for f in self.files:
            try:
                f.close()
            except OSError:
                pass
        for cid in self.ids:
            try:
                self.mc("delete", "--force", cid, timeout=30)
            except Exception as e:
                errors.append(repr(e))
        if os.path.isdir(self.data):
            # Run-mode containers are named by the runtime: check their
            # cgroups (/minicontainer/<id>) too.
            cdir = os.path.join(self.data, "containers")
            self.ids += os.listdir(cdir) if os.path.isdir(cdir) else []
            try:
                self.mc("rm", "-f", "--all", timeout=30)
                self.mc("prune", timeout=30)
            except Exception as e:
                errors.append(repr(e))
        # The test's own host-side things (processes, cgroups), after the
        # containers that may use them are gone; last added first.
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # keep cleaning
                errors.append(repr(e))
        # What delete killed may take a moment to go; a container that
        # escaped `delete` must still not outlive the test.
        wait_for(lambda: not self.leftovers(), 5)
        left = self.leftovers()
        for p in [int(x.split()[1]) for x in left if x.startswith("pid ")]:
            try:
                left.append(f"pid {p}: {read(f'/proc/{p}/cmdline')!r} {read(f'/proc/{p}/stat')[:80]!r}")
            except OSError:
                pass
        for p in procs_running(self.copy):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        for cid in self.ids:
            for d in cgroup_dirs(cid):
                remove_cgroup(d)
        for m in reversed(mounts_under(self.dir)):
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        assert not errors, f"cleanup errors: {errors}"
        assert not left, f"left behind: {left}"


# The top-level entries of a busybox rootfs that the tests copy (only
# these: whatever else other tests may have left in the shared rootfs
# stays out of our copies).
ROOTFS_ENTRIES = ("bin", "sbin", "usr", "etc", "dev", "proc", "sys", "tmp", "root", "run", "var", "lib", "lib64")


def copy_rootfs(dst):
    """A private copy of $ROOTFS at dst (cp -a of its standard entries)."""
    os.makedirs(dst, exist_ok=True)
    names = [os.path.join(ROOTFS, n) for n in ROOTFS_ENTRIES if os.path.lexists(os.path.join(ROOTFS, n))]
    subprocess.run(["cp", "-a", *names, dst + "/"], check=True)
    return dst


def with_fd7(path, argv):
    """argv run by a shell that first opens `path` on fd 7, as in
    `exec 7<DIR; minicontainer ...` (None: argv as is)."""
    if path is None:
        return argv
    # 3-6 on /dev/null, so that --preserve-fds 5 passes five open fds.
    return ["/bin/sh", "-c", 'exec 3</dev/null 4</dev/null 5</dev/null 6</dev/null 7<"$0" && exec "$@"', path, *argv]


def remove_cgroup(d):
    """rmdir a cgroup directory tree, deepest first (v1 and v2)."""
    for root, dirs, _ in sorted(os.walk(d), key=lambda t: -t[0].count("/")):
        try:
            os.rmdir(root)
        except OSError:
            pass


@pytest.fixture
def lab(binary, rootfs):
    lab = Lab()
    yield lab
    lab.close()


class HostValue:
    """A host file (sysctl) whose value is saved now and restored at
    teardown if anything changed it."""

    def __init__(self, path):
        self.path = path
        self.saved = read(path)

    def now(self):
        return read(self.path)

    def changed(self):
        return self.now() != self.saved

    def restore(self):
        if self.changed():
            with open(self.path, "w") as f:
                f.write(self.saved)


@pytest.fixture
def host_value():
    """host_value(path) -> HostValue; every one is restored at teardown."""
    made = []

    def make(path):
        v = HostValue(path)
        made.append(v)
        return v
    yield make
    for v in made:
        v.restore()


# ---------------------------------------------------------------- consoles

class ConsoleReceiver:
    """A unix socket for --console-socket: a thread accepts one connection
    and keeps the pty master it receives; read() drains it."""

    def __init__(self, path):
        self.path = path
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.srv.settimeout(30)
        self.fd = None
        self.name = None
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(data[:fds.itemsize])
        self.name = msg.decode(errors="replace")
        self.fd = fds[0] if fds else None
        conn.close()

    def read_until(self, token, timeout=10):
        import select
        self.t.join(timeout)
        out = b""
        if self.fd is None:
            return out
        end = time.monotonic() + timeout
        while token not in out and time.monotonic() < end:
            r, _, _ = select.select([self.fd], [], [], 0.2)
            if r:
                try:
                    d = os.read(self.fd, 4096)
                except OSError:
                    break
                if not d:
                    break
                out += d
        return out

    def close(self):
        self.srv.close()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
