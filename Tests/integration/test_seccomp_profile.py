"""The default seccomp profile of run (Specs/seccomp/default.json) for real,
and its compiled-filter cache under --root (<root>/@seccomp).

Bundles come from `minicontainer spec --rootfs ... --network none -- CMD`,
which compiles run's flags, default profile included. Probes that busybox
cannot make (clone3, raw clone flags, a 32-bit syscall) are a small static C
program built at test time and copied into a copy of the rootfs.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid

import pytest

from conftest import BIN, REPO, ROOTFS, needs_root, probe_rootfs_with

PODMAN_PROFILE = "/usr/share/containers/seccomp.json"

PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void *thread_main(void *arg) { return arg; }

static long err(long rc) { return rc < 0 ? -errno : rc; }

/* A raw clone that may succeed (with CAP_SYS_ADMIN): the child leaves at once. */
static long try_clone(unsigned long flags) {
    long rc = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (rc == 0) _exit(0);
    if (rc < 0) return -errno;
    waitpid((pid_t)rc, NULL, 0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "int80") == 0) {
        long rc;  /* getpid through the i386 entry point */
        __asm__ volatile ("int $0x80" : "=a"(rc) : "a"(20) : "memory");
        printf("int80 %ld\n", rc);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "x32") == 0) {
        printf("x32 %ld\n", err(syscall(0x40000000 | 39)));  /* x32 getpid */
        return 0;
    }
    printf("clone3 %ld\n", err(syscall(SYS_clone3, NULL, 0)));
    printf("clone_newuser %ld\n", try_clone(CLONE_NEWUSER));
    printf("clone_newns %ld\n", try_clone(CLONE_NEWNS));
    printf("unshare %ld\n", err(syscall(SYS_unshare, CLONE_NEWUSER)));
    printf("io_uring_setup %ld\n", err(syscall(425, 0, NULL)));
    printf("keyctl %ld\n", err(syscall(SYS_keyctl, 0, 0, 0, 0, 0)));
    printf("ptrace %ld\n", err(syscall(SYS_ptrace, 0 /* TRACEME */, 0, 0, 0)));
    printf("statmount %ld\n", err(syscall(457, NULL, NULL, 0, 0)));
    printf("personality_query %ld\n", err(syscall(SYS_personality, 0xffffffffUL)) >= 0 ? 0L : -1L);
    printf("personality_bad %ld\n", err(syscall(SYS_personality, 0x0040000UL /* ADDR_COMPAT_LAYOUT */)));
    pthread_t t;  /* glibc tries clone3 first, then clone */
    int rc = pthread_create(&t, NULL, thread_main, NULL);
    if (rc == 0) rc = pthread_join(t, NULL);
    printf("thread %d\n", rc);
    pid_t pid = fork();
    if (pid == 0) _exit(7);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("fork %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
"""

ENOSYS, EPERM = 38, 1


class Bundles:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="mc-seccomp-")
        self.root = os.path.join(self.tmp, "state")
        self.ids = []

    def mc(self, *args, check=False, timeout=60):
        r = subprocess.run([BIN, "--root", self.root, *args], capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"minicontainer {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def bundle(self, *cmd, rootfs=ROOTFS, edit=None):
        b = os.path.join(self.tmp, "b-" + uuid.uuid4().hex[:8])
        subprocess.run([BIN, "spec", "--bundle", b, "--rootfs", rootfs, "--network", "none", "--", *cmd],
                       check=True, capture_output=True)
        if edit:
            path = os.path.join(b, "config.json")
            with open(path) as f:
                config = json.load(f)
            edit(config)
            with open(path, "w") as f:
                json.dump(config, f, indent=2)
        return b

    def run(self, bundle):
        cid = "sc-" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        r = self.mc("run", "--bundle", bundle, cid)
        self.mc("delete", "--force", cid)
        return r

    def cache_files(self):
        d = os.path.join(self.root, "@seccomp")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def cleanup(self):
        for cid in self.ids:
            self.mc("delete", "--force", cid)
        left = set(os.listdir(self.root)) - {"@seccomp"} if os.path.isdir(self.root) else set()
        shutil.rmtree(self.tmp)
        assert not left, f"state left: {left}"
        for cid in self.ids:
            assert not os.path.exists(f"/sys/fs/cgroup/unified/{cid}") and not os.path.exists(f"/sys/fs/cgroup/{cid}")


@pytest.fixture
def bundles(binary, rootfs):
    b = Bundles()
    yield b
    b.cleanup()


@pytest.fixture(scope="module")
def probe_rootfs(rootfs):
    """A copy of the busybox rootfs with /probe, the program above built static."""
    with probe_rootfs_with(rootfs, PROBE_C, "mc-seccomp-probe-", ("-pthread",)) as copy:
        yield copy


def values(out):
    return {k: int(v) for k, v in re.findall(r"^(\w+) (-?\d+)$", out, re.M)}


# MARK: in a default container

@needs_root()
def test_default_container_is_filtered_and_cannot_unshare_or_mount(bundles):
    script = ("grep -E '^Seccomp' /proc/self/status; "
              "unshare -r -m true; echo unshare=$?; "
              "mount -t tmpfs none /mnt; echo mount=$?; "
              "id -u; ls /bin/sh && cat /etc/passwd >/dev/null && ps >/dev/null && echo basics=ok; "
              "(sleep 0.1 & wait) && echo fork=ok; "
              "echo hi | sed s/hi/ho/")
    b = bundles.bundle("/bin/sh", "-c", script)
    with open(os.path.join(b, "config.json")) as f:
        seccomp = json.load(f)["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO" and seccomp["defaultErrnoRet"] == ENOSYS
    r = bundles.run(b)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert re.search(r"^Seccomp:\s+2$", out, re.M), out
    assert re.search(r"^Seccomp_filters:\s+1$", out, re.M), out
    assert "unshare=1" in out and "Operation not permitted" in r.stderr, (out, r.stderr)
    assert "mount=1" in out or "mount=255" in out, out
    assert "basics=ok" in out and "fork=ok" in out and "ho" in out.split(), out
    assert bundles.cache_files(), "the compiled filter is cached"


@needs_root()
def test_probe_clone3_enosys_namespace_flags_eperm_threads_work(bundles, probe_rootfs):
    r = bundles.run(bundles.bundle("/probe", rootfs=probe_rootfs))
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert v["clone3"] == -ENOSYS, r.stdout           # glibc falls back to clone
    assert v["thread"] == 0 and v["fork"] == 7, r.stdout
    assert v["clone_newuser"] == -EPERM and v["clone_newns"] == -EPERM, r.stdout
    assert v["unshare"] == -EPERM and v["ptrace"] == -EPERM, r.stdout
    assert v["io_uring_setup"] == -ENOSYS and v["keyctl"] == -ENOSYS, r.stdout   # not in the allow list
    assert v["statmount"] == -ENOSYS, r.stdout        # named, but unknown to this libseccomp
    assert v["personality_query"] == 0 and v["personality_bad"] == -ENOSYS, r.stdout


@needs_root()
def test_probe_other_architectures_are_killed(bundles, probe_rootfs):
    for mode in ("int80", "x32"):
        r = bundles.run(bundles.bundle("/probe", mode, rootfs=probe_rootfs))
        assert r.returncode == 128 + 31, (mode, r.returncode, r.stdout, r.stderr)   # SIGSYS
        assert mode not in r.stdout


@needs_root()
def test_sys_admin_profile_allows_clone3_and_unshare(bundles, probe_rootfs):
    def add_sys_admin(c):
        # The profile for CAP_SYS_ADMIN, as run with --cap-add SYS_ADMIN will
        # write it: taken from the table through a unit-tested path, here
        # rebuilt by hand (allow the names the default denies for it).
        s = c["linux"]["seccomp"]
        admin = {"clone", "clone3", "unshare", "setns", "mount", "umount2"}
        rules = []
        for rule in s["syscalls"]:
            names = [n for n in rule["names"] if n not in admin]
            if names:
                rules.append(dict(rule, names=names))
        rules.insert(0, {"names": sorted(admin), "action": "SCMP_ACT_ALLOW"})
        s["syscalls"] = rules
        for k in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][k].append("CAP_SYS_ADMIN")
    r = bundles.run(bundles.bundle("/probe", rootfs=probe_rootfs, edit=add_sys_admin))
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert v["clone3"] == -22, r.stdout   # EINVAL: the kernel itself looked at clone3(NULL, 0)
    assert v["clone_newns"] == 0 and v["clone_newuser"] == 0 and v["unshare"] == 0, r.stdout
    assert len(bundles.cache_files()) == 1


# MARK: the cache

@needs_root()
def test_two_profiles_two_cache_files_each_enforced(bundles):
    def deny_mkdir(c):
        s = c["linux"]["seccomp"]
        for rule in s["syscalls"]:
            rule["names"] = [n for n in rule["names"] if n not in ("mkdir", "mkdirat")]
        s["syscalls"].append({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13})
    script = "mkdir /dev/shm/d && echo made"  # a tmpfs of the container's own, not the shared rootfs
    plain = bundles.bundle("/bin/sh", "-c", script)
    strict = bundles.bundle("/bin/sh", "-c", script, edit=deny_mkdir)
    for _ in range(2):
        a, b = bundles.run(plain), bundles.run(strict)
        assert a.returncode == 0 and "made" in a.stdout, a.stderr
        assert b.returncode != 0 and "made" not in b.stdout and "Permission denied" in b.stderr, (b.stdout, b.stderr)
    files = bundles.cache_files()
    assert len(files) == 2, files
    d = os.path.join(bundles.root, "@seccomp")
    assert os.stat(d).st_mode & 0o7777 == 0o700 and os.stat(d).st_uid == 0
    for f in files:
        st = os.stat(os.path.join(d, f))
        assert st.st_mode & 0o7777 == 0o600 and st.st_uid == 0


@needs_root()
def test_corrupt_or_foreign_cache_file_is_ignored_and_replaced(bundles):
    b = bundles.bundle("/bin/sh", "-c", "grep -E '^Seccomp:' /proc/self/status; unshare -r true; echo unshare=$?")
    assert bundles.run(b).returncode == 0
    [name] = bundles.cache_files()
    path = os.path.join(bundles.root, "@seccomp", name)
    with open(path, "rb") as f:
        good = f.read()
    header_end = good.index(b"\n", len(b"minicontainer seccomp bpf 2\n"))
    key_len = int(good[len(b"minicontainer seccomp bpf 2\n"):header_end])
    allow_all = bytes([0x06, 0, 0, 0, 0, 0, 0xFF, 0x7F])  # BPF_RET SECCOMP_RET_ALLOW
    other_key = good[:header_end + 1] + good[header_end + 1:header_end + 1 + key_len].replace(b"rule", b"RULE", 1)
    for bad in (b"garbage", good[:header_end + 10], other_key + allow_all):
        with open(path, "wb") as f:
            f.write(bad)
        os.chmod(path, 0o600)
        r = bundles.run(b)
        assert r.returncode == 0, r.stderr
        assert re.search(r"^Seccomp:\s+2$", r.stdout, re.M) and "unshare=1" in r.stdout, (bad[:20], r.stdout)
        with open(path, "rb") as f:
            assert f.read() == good, "rewritten"
    # A file others may write is not trusted, even with the right key.
    with open(path, "wb") as f:
        f.write(good[:header_end + 1 + key_len] + allow_all)
    os.chmod(path, 0o644 | 0o002)
    r = bundles.run(b)
    assert "unshare=1" in r.stdout, r.stdout


# MARK: the bundle stays self-describing

@needs_root()
def test_runc_runs_the_same_bundle_filtered(bundles):
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed")
    b = bundles.bundle("/bin/sh", "-c", "grep -E '^Seccomp' /proc/self/status; unshare -r -m true; echo unshare=$?")
    state = os.path.join(bundles.tmp, "runc-state")
    cid = "sc-runc-" + uuid.uuid4().hex[:8]
    try:
        r = subprocess.run([runc, "--root", state, "run", "--bundle", b, cid], capture_output=True, text=True, timeout=60)
    finally:
        subprocess.run([runc, "--root", state, "delete", "--force", cid], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^Seccomp:\s+2$", r.stdout, re.M), r.stdout
    assert "unshare=1" in r.stdout, r.stdout


# MARK: against podman's profile

PODMAN_CAPS = {"CAP_" + c for c in
               "CHOWN DAC_OVERRIDE FOWNER FSETID KILL NET_BIND_SERVICE SETFCAP SETGID SETPCAP SETUID SYS_CHROOT".split()}

# Syscalls podman's profile denies to its default container and ours allows
# to run's, each with why (mirrored in Specs/seccomp/README.md).
EXCEPTIONS = {
    "socket": "podman allows all of socket only with CAP_AUDIT_WRITE (else not NETLINK_AUDIT); run grants CAP_AUDIT_WRITE, as Docker",
    "io_pgetevents": "io_getevents with a signal mask; both allow io_getevents and the rest of Linux AIO",
    "futex_waitv": "futex waiting on several words (5.16, Wine/Proton); both allow futex",
    "futex_wait": "futex2 (6.7), the futex operations split out; both allow futex",
    "futex_wake": "futex2 (6.7); both allow futex",
    "futex_requeue": "futex2 (6.7); both allow futex",
    "set_mempolicy_home_node": "a NUMA policy for the caller's own memory (5.17); both allow set_mempolicy and mbind",
    "cachestat": "page cache statistics of a file the caller has open (6.5); both allow mincore",
    "fchmodat2": "fchmodat with flags (6.6); both allow fchmodat",
    "map_shadow_stack": "the caller's own CET shadow stack (6.6), which glibc maps with it",
    "statmount": "mount information of the caller's mount namespace (6.8); both allow reading mountinfo",
    "listmount": "mount ids of the caller's mount namespace (6.8); both allow reading mountinfo",
    "lsm_get_self_attr": "the caller's own LSM attributes (6.8), as /proc/self/attr",
    "lsm_set_self_attr": "the caller's own LSM attributes (6.8), as /proc/self/attr, which the LSM checks",
    "lsm_list_modules": "the names of the active LSMs (6.8), as /sys/kernel/security/lsm",
    "mseal": "sealing the caller's own mappings (6.10), hardening that glibc may use",
    "setxattrat": "setxattr relative to a directory fd (6.13); both allow setxattr",
    "getxattrat": "getxattr relative to a directory fd (6.13); both allow getxattr",
    "listxattrat": "listxattr relative to a directory fd (6.13); both allow listxattr",
    "removexattrat": "removexattr relative to a directory fd (6.13); both allow removexattr",
    "file_getattr": "inode attributes relative to a directory fd (6.17), as the FS_IOC_FSGETXATTR ioctl both allow",
    "file_setattr": "inode attributes relative to a directory fd (6.17), as the FS_IOC_FSSETXATTR ioctl both allow",
    "uretprobe": "only valid from the kernel's own uretprobe trampoline (6.11); denying it crashed traced processes",
    "uprobe": "only valid from the kernel's own uprobe trampoline (6.16), as uretprobe",
}


def x86_64_syscalls():
    with open("/usr/include/x86_64-linux-gnu/asm/unistd_64.h") as f:
        names = set(re.findall(r"#define __NR_(\w+) \d+", f.read()))
    # Newer than these headers (Debian 12's linux-libc-dev 6.1), up to 6.18.
    return names | set("cachestat fchmodat2 map_shadow_stack futex_wake futex_wait futex_requeue statmount listmount "
                       "lsm_get_self_attr lsm_set_self_attr lsm_list_modules mseal setxattrat getxattrat listxattrat "
                       "removexattrat open_tree_attr file_getattr file_setattr uretprobe uprobe".split())


def unconditionally_allowed(profile, caps):
    """Names an entry allows without argument conditions, for `caps` on x86_64."""
    def applies(e):
        inc, exc = e.get("includes") or {}, e.get("excludes") or {}
        on_x86_64 = lambda arches: bool({"amd64", "x86_64", "SCMP_ARCH_X86_64"} & set(arches))
        if inc.get("caps") and not set(inc["caps"]) <= caps:
            return False
        if inc.get("arches") and not on_x86_64(inc["arches"]):
            return False
        if exc.get("caps") and set(exc["caps"]) & caps:
            return False
        if exc.get("arches") and on_x86_64(exc["arches"]):
            return False
        return True
    out = set()
    for e in profile["syscalls"]:
        if e["action"] == "SCMP_ACT_ALLOW" and not e.get("args") and applies(e):
            out |= set(e.get("names") or [e.get("name")])
    return out


def test_we_deny_what_podman_denies(binary, rootfs, tmp_path):
    if not os.path.exists(PODMAN_PROFILE):
        pytest.skip(f"{PODMAN_PROFILE} (podman's default) is not installed")
    with open(PODMAN_PROFILE) as f:
        podman = json.load(f)
    r = subprocess.run([BIN, "spec", "--stdout", "--rootfs", rootfs, "--", "true"], capture_output=True, text=True, check=True)
    config = json.loads(r.stdout)
    ours = config["linux"]["seccomp"]
    run_caps = set(config["process"]["capabilities"]["bounding"])
    assert {"CAP_MKNOD", "CAP_NET_RAW", "CAP_AUDIT_WRITE"} <= run_caps
    universe = x86_64_syscalls()
    podman_denied = universe - unconditionally_allowed(podman, PODMAN_CAPS)
    # Ours is already filtered by run's capabilities.
    our_denied = universe - unconditionally_allowed(ours, run_caps)
    missing = sorted(podman_denied - our_denied - set(EXCEPTIONS))
    print("\npodman denies, we allow (documented exceptions):", sorted(podman_denied - our_denied))
    print("we deny, podman allows:", sorted(our_denied - podman_denied))
    assert not missing, f"podman's profile denies these and ours allows them, without a documented reason: {missing}"
    stale = sorted(n for n in EXCEPTIONS if n not in podman_denied - our_denied)
    assert not stale, f"exceptions no longer needed: {stale}"
    # Every exception is in the README too.
    with open(os.path.join(REPO, "Specs", "seccomp", "README.md")) as f:
        readme = f.read()
    undocumented = [n for n in EXCEPTIONS if f"`{n}`" not in readme]
    assert not undocumented, f"exceptions missing from Specs/seccomp/README.md: {undocumented}"


@needs_root()
def test_exec_gets_the_same_filter(bundles):
    b = bundles.bundle("/bin/sleep", "30")
    cid = "sc-exec-" + uuid.uuid4().hex[:8]
    bundles.ids.append(cid)
    # The created init keeps our stdio until it execs: not pipes we would wait on.
    subprocess.run([BIN, "--root", bundles.root, "create", "--bundle", b, cid], check=True, timeout=60,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bundles.mc("start", cid, check=True)
        r = bundles.mc("exec", cid, "/bin/sh", "-c", "grep -E '^Seccomp:' /proc/self/status; unshare -r true; echo unshare=$?")
        assert r.returncode == 0, r.stderr
        assert re.search(r"^Seccomp:\s+2$", r.stdout, re.M) and "unshare=1" in r.stdout, r.stdout
        assert len(bundles.cache_files()) == 1, "create and exec share one cached program"
    finally:
        bundles.mc("delete", "--force", cid)
