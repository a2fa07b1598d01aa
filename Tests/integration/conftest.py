"""Shared helpers for the integration tests: they run the built binary.

MINICONTAINER names the binary (default: the release build), ROOTFS a busybox
root filesystem (default: the one `make rootfs` builds).
"""
import contextlib
import os
import shutil
import subprocess
import tempfile
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("MINICONTAINER", os.path.join(REPO, ".build", "release", "minicontainer"))
ROOTFS = os.environ.get("ROOTFS", "/var/lib/minicontainer/rootfs/busybox")

# The network rule: no test may reach an outside address. A pull a test did
# not mean (run of an image the store lacks) would ask docker.io's registry:
# unless a test names its own registries.json, short names go to a closed
# port on loopback and docker.io is blocked, so no outside name is resolved.
_REGISTRIES = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"mc-test-registries-{os.getpid()}.json")
with open(_REGISTRIES, "w") as _f:
    _f.write('{"default": "127.0.0.1:9", "blocked": ["docker.io"]}\n')
os.environ.setdefault("MINICONTAINER_REGISTRIES_CONF", _REGISTRIES)


@pytest.fixture(scope="session", autouse=True)
def _remove_registries_conf():
    yield
    try:
        os.unlink(_REGISTRIES)
    except OSError:
        pass


# Every capability of Linux 6.x, in number order, without CAP_.
CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
        "CHECKPOINT_RESTORE"]


def mc(*args, check=False, input=None, env=None, cwd=None, timeout=60):
    """Runs minicontainer with args; returns the CompletedProcess (text)."""
    r = subprocess.run([BIN, *args], capture_output=True, text=True, input=input,
                       env=env, cwd=cwd, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"minicontainer {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r


@pytest.fixture(scope="session")
def binary():
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"{BIN} is not built (run make build)")
    return BIN


@pytest.fixture(scope="session")
def rootfs():
    if not os.access(os.path.join(ROOTFS, "bin", "busybox"), os.X_OK):
        pytest.fail(f"{ROOTFS} has no busybox (run make rootfs)")
    return ROOTFS


def needs_root():
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture(scope="session", autouse=True)
def remove_bridge_we_made():
    """The bridge is created on first use and left up by design; the suite
    removes it again when it made it and nothing is attached any more."""
    bridge = "/sys/class/net/minicontainer0"
    existed = os.path.exists(bridge)
    yield
    if not existed and os.path.exists(bridge) and not os.listdir(bridge + "/brif"):
        subprocess.run(["ip", "link", "del", "minicontainer0"], check=False)


@pytest.fixture(scope="session", autouse=True)
def shared_rootfs_untouched():
    """Bundles made by `spec --rootfs` use the shared rootfs directly: no test
    may leave anything in it (a new mount point, a file)."""
    top = lambda: sorted(os.listdir(ROOTFS)) if os.path.isdir(ROOTFS) else []
    before = top()
    yield
    after = top()
    assert not before or after == before, f"the shared rootfs {ROOTFS} changed: {sorted(set(after) - set(before))}"


def run_in_pty(argv, steps, timeout=20, env=None):
    """Runs argv on a new pty; `steps` is a list of (wait_for, send) byte
    pairs. Reads to EOF afterwards; returns (output, exit code)."""
    import pty
    import select
    import time
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvpe(argv[0], argv, env if env is not None else os.environ)
        finally:
            os._exit(127)
    out = b""
    deadline = time.time() + timeout

    def read_until(tok):
        nonlocal out
        while tok not in out and time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    d = os.read(fd, 4096)
                except OSError:
                    return
                if not d:
                    return
                out += d
    try:
        for want, send in steps:
            read_until(want)
            assert want in out, f"never saw {want!r}; output: {out!r}"
            os.write(fd, send)
        read_until(b"\x00never")  # until EOF
        _, st = os.waitpid(pid, 0)
        return out, os.waitstatus_to_exitcode(st)
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


@contextlib.contextmanager
def probe_rootfs_with(rootfs, source, prefix, cflags=()):
    """A copy of `rootfs` with /probe, the C program `source` built static
    (gcc and libc6-dev: scripts/setup.sh installs them); removed afterwards."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler for the probe (scripts/setup.sh installs gcc and libc6-dev)")
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        copy = os.path.join(tmp, "rootfs")
        subprocess.run(["cp", "-a", rootfs, copy], check=True)
        r = subprocess.run([cc, "-static", "-O1", *cflags, "-o", os.path.join(copy, "probe"), src],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        yield copy
    finally:
        shutil.rmtree(tmp)


@pytest.fixture(scope="session")
def rootless_user(binary):
    """The unprivileged user of the rootless tests (userkit.py), made for the
    session; at its end nothing of the user's may be left running or mounted."""
    import userkit
    userkit.create_user()
    user = userkit.User(binary)
    yield user
    # A user-mode network's watcher is orphaned on purpose (it must outlive
    # a short-lived `create`); its zombie waits for pid 1, which here reaps
    # every ~2 s. Anything still there after 5 s is a leftover.
    import time
    for _ in range(100):
        left = userkit.leftovers()
        if not left:
            break
        time.sleep(0.05)
    userkit.remove_user()
    assert not left, f"the rootless tests left: {left}"


@pytest.fixture
def xdg(rootless_user, tmp_path):
    """A test's own XDG_RUNTIME_DIR and XDG_DATA_HOME for the rootless user."""
    import userkit
    return userkit.Xdg(rootless_user, tmp_path)


@pytest.fixture(scope="session", autouse=True)
def remove_seccomp_cache_we_made():
    """Tests that run containers under the default --root leave the runtime's
    compiled-seccomp cache (/run/minicontainer/@seccomp) behind by design; the
    suite removes it again when it was not there before, and the root
    directory too when the suite made it and it is empty."""
    import shutil
    root = "/run/minicontainer"
    cache = os.path.join(root, "@seccomp")
    had_root, had_cache = os.path.exists(root), os.path.exists(cache)
    yield
    if not had_cache:
        shutil.rmtree(cache, ignore_errors=True)
    if not had_root:
        try:
            os.rmdir(root)
        except OSError:
            pass
