"""Attacks on the runtime's own use of /proc (issue 11): the config mounts
procfs somewhere other than /proc (here /p, which runc allows), so the
image's /proc is an ordinary directory of files and symlinks the attacker
wrote. A runtime that reaches its own procfs through the path /proc (to
open /proc/self/fd/N for a mount by fd, to write a sysctl, to read
cap_last_cap) reads and writes what the image says. Also: /proc a symlink
into a volume, the read-only remount of a bind racing a volume that a
second container flips, and a /dev bound from a host directory that
another container can write.

What should stop them all: the runtime does its /proc work through a
procfs it mounted or opened itself and verified (fstatfs PROC_SUPER_MAGIC,
no symlinks, no mounts crossed), mounts by descriptor and remounts the
mount it made, and checks what it opened, not the path.

Host targets (fs.lease-break-time and kernel.core_pattern are global: the
container's procfs shows the host's) are saved and restored (host_value).
Container ids are prefixed pf-.

On the runtime before the fix (the issue's reproducer), these fail: the
fake /proc/self/fd, sysctl and cap_last_cap tests, /proc into a volume,
the remount race, and the /dev/console dir and file cases (the process's
/dev/console is not its pty). The ptmx and masked-path /dev cases are
regression tests: the old runtime refused or survived them too.
"""
import ctypes
import os
import threading
import uuid

import pytest

from attackkit import ConsoleReceiver, host_value, lab, one_line, read, sysctl_path  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

LEASE = sysctl_path("fs.lease-break-time")
CORE = sysctl_path("kernel.core_pattern")


def pf_id(lab, tag):
    cid = f"pf-{tag}-{uuid.uuid4().hex[:8]}"
    lab.ids.append(cid)  # the lab deletes it and checks it left nothing
    return cid


def proc_at(dest):
    """An edit for config.json: the spec's procfs mounted at `dest`."""
    def edit(c):
        m = next(m for m in c["mounts"] if m["type"] == "proc")
        m["destination"] = dest
    return edit


def other_value(v, avoid=()):
    """A number different from the host value v and from `avoid`."""
    n = int(v.strip()) + 33
    while str(n) in avoid:
        n += 1
    return str(n)


def refused_or_ran(lab, cid, bundle):
    """create, start, wait for the end; returns (rc of create, output,
    a problem with start or None). start is not asserted here, so that a
    test checks the host first: a runtime fooled by a fake /proc may run
    the container at create (its exec fifo opened through the image's
    /proc/self/fd), and start then finds it stopped."""
    rc, err = lab.create(cid, bundle)
    if rc != 0:
        print("refused:", one_line(err))
        assert lab.status(cid) is None, f"{cid} was refused but left a container"
        return rc, "", None
    r = lab.mc("start", cid)
    assert lab.wait_stopped(cid), f"{cid} did not stop"
    out = lab.output(cid)
    print("ran:", out)
    return rc, out, (None if r.returncode == 0 else f"start failed (the container ran before it?): {r.stderr.strip()}")


# ---------------------------------------------------------------- a fake /proc in the image

def fake_fds(rootfs, links=None):
    """The image's /proc/self/fd/3..63: symlinks to dummy files /t/N (a
    runtime that opens its exec fifo through /proc/self/fd/N writes to a
    dummy and runs the process at create), but `links` {N: target}."""
    os.makedirs(os.path.join(rootfs, "proc/self/fd"))
    os.makedirs(os.path.join(rootfs, "t"))
    os.makedirs(os.path.join(rootfs, "p"), exist_ok=True)
    for i in range(3, 64):
        with open(os.path.join(rootfs, "t", str(i)), "w") as f:
            f.write("dummy\n")
        os.symlink((links or {}).get(i, f"/t/{i}"), os.path.join(rootfs, "proc/self/fd", str(i)))


def test_fake_proc_self_fd_redirects_masks_and_readonly_paths(lab, host_value):
    """Attack: procfs is at /p; the image's /proc/self/fd/N are symlinks,
    fd 6 to /p/sys/fs/lease-break-time, the others to dummy files /t/N.
    A runtime that mounts "by fd" through the path /proc/self/fd/N binds
    what the image points at: the maskedPaths source (its /dev/null) is the
    host's lease-break-time, and the readonlyPaths bind of /p/sys lands on
    a dummy file, leaving /p/sys writable. The container then writes a new
    value to /p/sys/fs/lease-break-time (and to the masked /etc/hostname).
    What should stop it: fds are named through the runtime's own verified
    procfs, never the container's /proc path. Passes if create refuses
    with one line, or the host's lease-break-time is unchanged (the
    write to /p/sys fails: it is read-only)."""
    lease = host_value(LEASE)
    value = other_value(lease.saved)
    fake_fds(lab.rootfs, {6: "/p/sys/fs/lease-break-time"})

    def edit(c):
        proc_at("/p")(c)
        c["linux"]["maskedPaths"] = ["/etc/hostname"]
        c["linux"]["readonlyPaths"] = ["/p/sys"]
    script = (f"echo {value} > /etc/hostname 2>/dev/null && echo WROTE hostname; "
              f"echo {value} > /p/sys/fs/lease-break-time 2>/dev/null && echo WROTE lease; echo END")
    cid = pf_id(lab, "fakefd")
    rc, out, start = refused_or_ran(lab, cid, lab.bundle(["/bin/sh", "-c", script], edit=edit))
    assert not lease.changed(), f"the host's fs.lease-break-time became {lease.now().strip()} (was {lease.saved.strip()})"
    if rc == 0:
        assert start is None, start
        assert "END" in out, out
        assert "WROTE lease" not in out, f"/p/sys is writable (readonlyPaths did not hold): {out}"


def test_sysctl_written_through_image_proc_symlink(lab, host_value):
    """Attack: procfs is at /p; the image's /proc/sys/net/ipv4/ip_forward
    is a symlink to /p/sys/fs/lease-break-time, a host-global knob. The
    spec asks for net.ipv4.ip_forward=1 (namespaced, allowed): a runtime
    that writes sysctls through the path /proc/sys/... follows the image's
    symlink and sets the host's lease-break-time to 1. What should stop
    it: sysctls are written through the runtime's own procfs, opened
    without following symlinks. Passes if create refuses with one line, or
    the host is unchanged and the container's own ip_forward is 1."""
    if read(LEASE).strip() == "1":
        pytest.skip("the host's fs.lease-break-time is already 1: the redirected write would not show")
    lease = host_value(LEASE)
    r = lab.rootfs
    os.makedirs(os.path.join(r, "proc/sys/net/ipv4"))
    os.makedirs(os.path.join(r, "p"))
    os.symlink("/p/sys/fs/lease-break-time", os.path.join(r, "proc/sys/net/ipv4/ip_forward"))

    def edit(c):
        proc_at("/p")(c)
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cid = pf_id(lab, "sysctl")
    rc, out, start = refused_or_ran(lab, cid, lab.bundle(["/bin/cat", "/p/sys/net/ipv4/ip_forward"], edit=edit))
    assert not lease.changed(), f"net.ipv4.ip_forward=1 was written to the host's fs.lease-break-time: {lease.now().strip()}"
    assert os.path.islink(os.path.join(r, "proc/sys/net/ipv4/ip_forward"))
    if rc == 0:
        assert start is None, start
        assert out.strip() == "1", f"the container's own ip_forward is {out.strip()!r}, not the value asked for"


# cap_last_cap 8 in the image: CAP_SETPCAP (8) and below are dropped, the
# rest (CAP_SYS_ADMIN...) kept.
CAPS = {"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_NET_BIND_SERVICE": 10, "CAP_SYS_ADMIN": 21, "CAP_AUDIT_WRITE": 29}


def test_fake_cap_last_cap_keeps_capabilities(lab):
    """Attack: procfs is at /p; the image's /proc/sys/kernel/cap_last_cap
    says 8. A runtime that reads it through the path /proc to know how far
    to drop the bounding set drops only capabilities 0-8 that the spec
    does not list, and with noNewPrivileges false root in the container
    keeps CAP_SYS_ADMIN and the rest above 8 (the image's /proc/self/fd
    are faked too, so that the old runtime's exec fifo opens). What should stop it: the last
    capability comes from the runtime's own procfs (or the kernel: probing
    PR_CAPBSET_READ until EINVAL). Passes if create refuses with one line,
    or the container's bounding and effective sets are exactly the spec's
    (CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE)."""
    r = lab.rootfs
    fake_fds(r)  # or the old runtime's exec fifo fails and the attack never runs
    os.makedirs(os.path.join(r, "proc/sys/kernel"))
    with open(os.path.join(r, "proc/sys/kernel/cap_last_cap"), "w") as f:
        f.write("8\n")

    def edit(c):
        proc_at("/p")(c)
        c["process"]["noNewPrivileges"] = False
        # No masks (the old runtime would bind them through the fake fds too).
        c["linux"]["maskedPaths"] = []
        c["linux"]["readonlyPaths"] = []
        assert sorted(c["process"]["capabilities"]["bounding"]) == ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    cid = pf_id(lab, "caplast")
    rc, out, start = refused_or_ran(lab, cid, lab.bundle(["/bin/grep", "-E", "^Cap(Bnd|Eff)", "/p/self/status"], edit=edit))
    if rc != 0:
        return
    want = (1 << CAPS["CAP_KILL"]) | (1 << CAPS["CAP_NET_BIND_SERVICE"]) | (1 << CAPS["CAP_AUDIT_WRITE"])
    sets = {l.split(":")[0]: int(l.split(":")[1], 16) for l in out.splitlines() if l.startswith("Cap")}
    assert set(sets) == {"CapBnd", "CapEff"}, f"no capability sets in the output {out!r} ({start})"
    for name, got in sets.items():
        extra = [c for c, b in CAPS.items() if got & (1 << b) and not want & (1 << b)]
        assert got == want, f"{name} is {got:#x}, not {want:#x} (extra: {extra or 'bits above 29'})"
    assert start is None, start


# ---------------------------------------------------------------- /proc a symlink into a volume

def test_proc_symlink_into_a_volume(lab):
    """Attack: the image's /proc is a symlink to /data/p and the spec
    mounts a volume on /data (CVE-2019-19921's race outcome): a runtime
    that follows it mounts procfs at /data/p, where the volume mount then
    covers it, and its later /proc writes (net.ipv4.ip_forward=1,
    oomScoreAdj 500) go into the volume's files, which the attacker reads
    (and the container runs with a /proc the attacker wrote). What should
    stop it: procfs is mounted only on an ordinary directory (refuse a
    symlink), and /proc writes go through the runtime's own procfs.
    Passes if create refuses with one line, or the volume's files are
    unchanged."""
    vol = os.path.join(lab.dir, "volume")
    for d in ("p/sys/net/ipv4", "p/self"):
        os.makedirs(os.path.join(vol, d))
    fwd, oom = os.path.join(vol, "p/sys/net/ipv4/ip_forward"), os.path.join(vol, "p/self/oom_score_adj")
    for p in (fwd, oom):
        with open(p, "w") as f:
            f.write("0\n")
    r = lab.rootfs
    os.rmdir(os.path.join(r, "proc"))
    os.symlink("/data/p", os.path.join(r, "proc"))
    os.makedirs(os.path.join(r, "data"))

    def edit(c):
        c["mounts"].append({"destination": "/data", "type": "bind", "source": vol, "options": ["rbind", "rw"]})
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        c["process"]["oomScoreAdj"] = 500
    cid = pf_id(lab, "procvol")
    rc, out, start = refused_or_ran(lab, cid, lab.bundle(["/bin/cat", "/proc/self/oom_score_adj"], edit=edit))
    assert read(fwd) == "0\n", f"the sysctl write went into the volume: ip_forward = {read(fwd)!r}"
    assert read(oom) == "0\n", f"the oom_score_adj write went into the volume: {read(oom)!r}"
    if rc == 0:
        assert start is None, start
        assert out.strip() == "500", f"the container's oom_score_adj is {out.strip()!r}"


# ---------------------------------------------------------------- the read-only remount race

RENAME_EXCHANGE = 2
SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276}.get(os.uname().machine)
AT_FDCWD = -100


@pytest.mark.skipif(SYS_RENAMEAT2 is None, reason="renameat2 number unknown for this machine")
def test_readonly_bind_remount_race(lab):
    """Attack (CVE-2025-52881's core): the spec binds a volume the
    attacker shares on /tmp and a host directory read-only on /tmp/ro. A
    second container (here a host thread) swaps the volume's `ro` between
    the directory and a symlink to "." with renameat2(RENAME_EXCHANGE), so
    `ro` always exists. A runtime that binds, then looks up the path again
    to remount it read-only, sometimes finds the symlink and remounts the
    volume's own mount: the host directory's bind stays writable and the
    container writes into it. The loop runs PF_RACE_RUNS times (default
    150; the old runtime lost about one run in four). What should stop it:
    the bind is made on an fd (open_tree/move_mount) and made read-only on
    that same mount (mount_setattr), never by path again. Passes if no run
    changes the host directory (runs the runtime refuses are fine)."""
    runs = int(os.environ.get("PF_RACE_RUNS", "150"))
    vol, secret = os.path.join(lab.dir, "vol"), os.path.join(lab.dir, "secret")
    os.makedirs(os.path.join(vol, "ro"))
    os.symlink(".", os.path.join(vol, "roL"))
    os.makedirs(secret)
    data = os.path.join(secret, "data")
    with open(data, "w") as f:
        f.write("orig\n")

    def edit(c):
        c["mounts"] += [{"destination": "/tmp", "type": "bind", "source": vol, "options": ["rbind", "rw"]},
                        {"destination": "/tmp/ro", "type": "bind", "source": secret, "options": ["bind", "ro"]}]
    b = lab.bundle(["/bin/sh", "-c", "for d in /tmp/ro /tmp/roL; do echo pwned > $d/data 2>/dev/null && echo WROTE $d; done; true"],
                   edit=edit)
    libc = ctypes.CDLL(None, use_errno=True)
    a, z = os.path.join(vol, "ro").encode(), os.path.join(vol, "roL").encode()
    stop = threading.Event()

    def flipper():
        while not stop.is_set():
            libc.syscall(SYS_RENAMEAT2, AT_FDCWD, a, AT_FDCWD, z, RENAME_EXCHANGE)
    t = threading.Thread(target=flipper, daemon=True)
    lab.cleanups.append(lambda: (stop.set(), t.join()))
    t.start()
    hits, refused, errs = 0, 0, {}
    for i in range(runs):
        cid = pf_id(lab, "race")
        r = lab.mc("run", "--bundle", b, cid, timeout=30)
        if r.returncode != 0:
            refused += 1
            key = r.stderr.strip()[-100:]
            errs[key] = errs.get(key, 0) + 1
        lab.mc("delete", "--force", cid, timeout=30)
        lab.ids.remove(cid)
        left = lab.leftovers([cid])
        assert not left, f"run {i} left {left}"
        if read(data) != "orig\n":
            hits += 1
            with open(data, "w") as f:
                f.write("orig\n")
    stop.set()
    t.join()
    print(f"{runs} runs, {hits} wrote the read-only host directory, {refused} refused: {errs}")
    assert hits == 0, f"{hits} of {runs} runs wrote into the host directory bound read-only"


# ---------------------------------------------------------------- /dev from a writable host directory

NODES = {"null": (1, 3), "zero": (1, 5), "tty": (5, 0)}


def snapshot(d):
    """What the shared /dev directory holds: name -> (type, rdev, link target or content)."""
    snap = {}
    for root, dirs, files in os.walk(d):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            if os.path.islink(p):
                what = ("link", os.readlink(p))
            elif os.path.isfile(p):
                what = ("file", read(p))
            else:
                what = (oct(st.st_mode), st.st_rdev)
            snap[os.path.relpath(p, d)] = what
    return snap


def shared_dev(lab, setup):
    """A host directory bound on /dev (a volume another container writes):
    the usual nodes and pts/, then `setup` swaps one entry."""
    d = os.path.join(lab.dir, "shared-dev")
    for sub in ("pts", "shm", "mqueue"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    for name, (major, minor) in NODES.items():
        os.mknod(os.path.join(d, name), 0o666 | 0o020000, os.makedev(major, minor))
    os.symlink("pts/ptmx", os.path.join(d, "ptmx"))
    setup(d)
    return d


def dev_bind(d, no_pts=False, masked=None):
    def edit(c):
        c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/dev" and not (no_pts and m["destination"] == "/dev/pts")]
        i = next(i for i, m in enumerate(c["mounts"]) if m["destination"] == "/proc") + 1
        c["mounts"].insert(i, {"destination": "/dev", "type": "bind", "source": d, "options": ["rbind"]})
        if masked is not None:
            c["linux"]["maskedPaths"] = masked
    return edit


def replace(path, make):
    def setup(d):
        p = os.path.join(d, path)
        if os.path.lexists(p):
            os.unlink(p)
        make(p)
    return setup


def write_file(content):
    def make(p):
        with open(p, "w") as f:
            f.write(content)
    return make


TERMINAL = {
    # name: (setup of the shared /dev, drop the spec's /dev/pts)
    "console-dir": (replace("console", os.mkdir), False),
    "console-file": (replace("console", write_file("x")), False),
    "ptmx-file": (replace("pts/ptmx", write_file("")), True),
    "ptmx-symlink": (replace("pts/ptmx", lambda p: os.symlink("/proc/sys/kernel/core_pattern", p)), True),
}


@pytest.mark.parametrize("name", sorted(TERMINAL))
def test_shared_dev_terminal(lab, host_value, name):
    """Attack: /dev is a bind of a host directory another container can
    write, and process.terminal is set. That container made /dev/console a
    directory or a regular file with content, or (with no devpts of the
    spec's on /dev/pts) pts/ptmx a regular file or a symlink to
    /proc/sys/kernel/core_pattern: a runtime that opens the pty master or
    binds the console by path hands the process a file that is not a pty
    as its terminal or /dev/console, or changes the shared directory. What
    should stop it: the console is bound by fd only onto a file or device
    it checked, and the pty comes from a devpts the runtime verified.
    Passes if create refuses with one line, or the process's stdin and
    /dev/console are ptys; either way the host's core_pattern is unchanged
    and the shared directory too (but for an empty /dev/console the
    runtime may create as the pty's mount point, as runc does). The
    ptmx cases are regression tests: the old runtime refused them too."""
    core = host_value(CORE)
    lab.install("probe")
    setup, no_pts = TERMINAL[name]
    d = shared_dev(lab, setup)
    before = snapshot(d)
    script = "/atk/probe stat /proc/self/fd/0; /atk/probe stat /dev/console; echo END"
    cid = pf_id(lab, "tty")
    b = lab.bundle(["/bin/sh", "-c", script], edit=dev_bind(d, no_pts=no_pts), terminal=True)
    sock = ConsoleReceiver(os.path.join(lab.dir, "console.sock"))
    lab.cleanups.append(sock.close)
    rc, err = lab.create(cid, b, "--console-socket", sock.path)
    out = ""
    if rc != 0:
        print("refused:", one_line(err))
        assert lab.status(cid) is None
    else:
        lab.start(cid)
        out = sock.read_until(b"END").decode(errors="replace")
        print("ran:", out)
        assert lab.wait_stopped(cid), f"{cid} did not stop"
    assert not core.changed(), f"the host's core_pattern became {core.now()!r}"
    after = snapshot(d)
    if "console" not in before and after.get("console") == ("file", ""):
        del after["console"]
    assert after == before, f"the shared /dev changed: {before} -> {after}"
    if rc == 0:
        assert "END" in out, out
        for p in ("/proc/self/fd/0", "/dev/console"):
            got = [l for l in out.splitlines() if f"stat {p} " in l]
            assert got and "type=chr rdev=136:" in got[0], f"{p} is not a pty: {got or out}"


MASKS = {
    # name: (setup of the shared /dev, maskedPaths)
    "null-symlink": (replace("null", lambda p: os.symlink("/proc/sys/kernel/core_pattern", p)), ["/proc/timer_list"]),
    "null-regular": (replace("null", write_file("")), ["/proc/timer_list"]),
    "null-missing": (replace("null", lambda p: None), ["/proc/timer_list"]),
    "masked-symlink": (replace("masked", lambda p: os.symlink("/proc/sys/kernel/core_pattern", p)), ["/dev/masked"]),
}


@pytest.mark.parametrize("name", sorted(MASKS))
def test_shared_dev_masked_paths(lab, host_value, name):
    """Attack: /dev is a bind of a host directory another container can
    write; that container made /dev/null a symlink to core_pattern, a
    regular file (a host file the masks would bind writable over
    /proc/timer_list), or removed it; or a masked path, /dev/masked, is a
    symlink to core_pattern. The container writes a marker to every
    masked path and to core_pattern. What should stop it: the mask source
    is opened once and checked to be char 1:3 (else refused), masks are
    bound by fd, and nothing is created or written in the shared
    directory. Passes if create refuses with one line, or every write that
    succeeds went to the null device (1:3); either way the shared
    directory and the host's core_pattern are unchanged. (Regression
    tests: the old runtime refused or survived these too.)"""
    core = host_value(CORE)
    lab.install("probe")
    setup, masked = MASKS[name]
    d = shared_dev(lab, setup)
    before = snapshot(d)
    marker = f"pf-{name}-{uuid.uuid4().hex[:6]}"
    script = "; ".join([f"/atk/probe stat {p}; /atk/probe write {p} {marker}" for p in masked]
                       + [f"/atk/probe write {CORE} {marker}", "echo END"])
    cid = pf_id(lab, "mask")
    rc, out, start = refused_or_ran(lab, cid, lab.bundle(["/bin/sh", "-c", script], edit=dev_bind(d, masked=masked)))
    assert not core.changed(), f"the host's core_pattern became {core.now()!r}"
    assert snapshot(d) == before, f"the shared /dev changed: {before} -> {snapshot(d)}"
    if rc == 0:
        assert start is None, start
        assert "END" in out, out
        for p in masked:
            # Writing to a masked path is writing to the null device: harmless, if it is the null device.
            if f"OK write {p}" in out:
                assert f"OK stat {p} type=chr rdev=1:3" in out, f"{p} is writable and not the null device: {out}"
