"""The newer runc advisories, made against our runtime with what an image
(the rootfs) or a shared volume controls: CVE-2025-31133 (/dev/null swapped
before the masking bind), CVE-2025-52565 (the /dev/console target),
CVE-2025-52881 (a /proc write redirected through a mount to another procfs
file), CVE-2019-19921 (/proc mounted over a symlink).

The races of the advisories (a second container swapping a shared path
while the runtime works) are replaced by their outcome, present from the
start: the symlink is already in the image or the volume. A runtime that
checks what it opened, not the path, survives both.

The target throughout is the host's kernel.core_pattern (global: the
container's procfs shows the host's): saved and restored (host_value).
"""
import os
import uuid

import pytest

from attackkit import ConsoleReceiver, host_value, lab, one_line, read, sysctl_path  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

CORE = sysctl_path("kernel.core_pattern")
PROC_SUPER_MAGIC = "0x9fa0"


def dev_from(variant, lab, dev_dir=None):
    """An edit for config.json: how /dev is made.
    tmpfs:  the default spec (a tmpfs on /dev hides the image's /dev);
    rootfs: no tmpfs on /dev, so the image's /dev is the container's;
    bind:   /dev is a bind of a host directory (a volume shared with an
            attacker's container, as in the advisory)."""
    def edit(c):
        if variant == "tmpfs":
            return
        c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/dev"]
        if variant == "bind":
            i = next(i for i, m in enumerate(c["mounts"]) if m["destination"] == "/proc") + 1
            c["mounts"].insert(i, {"destination": "/dev", "type": "bind", "source": dev_dir, "options": ["rbind"]})
    return edit


def image_dev(lab, variant):
    """The /dev the attacker controls: the rootfs's (tmpfs, rootfs) or a
    host directory (bind). Subdirectories for the spec's /dev mounts."""
    d = os.path.join(lab.dir, "shared-dev") if variant == "bind" else os.path.join(lab.rootfs, "dev")
    for sub in ("pts", "shm", "mqueue"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    if variant == "bind":
        # A /dev as a container engine would share it: the usual nodes
        # (the runtime makes none in a bind-mounted /dev).
        for name, (major, minor) in DEVICES.items():
            os.mknod(os.path.join(d, name), 0o666 | 0o020000, os.makedev(major, minor))
        os.symlink("pts/ptmx", os.path.join(d, "ptmx"))
    return d


DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}


def probe_script(marker, writes, openw=(), stats=()):
    # First, what the container reads as core_pattern: the host's value,
    # which shows a write there would reach the host.
    lines = [f"/atk/probe read {CORE}"]
    lines += [f"/atk/probe write {p} '{marker}'" for p in writes]
    lines += [f"/atk/probe openw {p}" for p in openw]
    lines += [f"/atk/probe stat {p}" for p in stats]
    return "; ".join(lines) + "; echo END"


MASKED_FILES = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats"]


@pytest.mark.parametrize("variant", ["rootfs", "bind", "tmpfs"])
@pytest.mark.parametrize("null", ["symlink-abs", "symlink-rel", "mem-device"])
def test_cve_2025_31133_masked_paths_dev_null(lab, host_value, variant, null):
    """Attack: the container's /dev/null is a symlink to
    /proc/sys/kernel/core_pattern (absolute or relative), or a device that
    is not the null device (1:1, /dev/mem), before maskedPaths binds
    /dev/null over /proc/kcore, /proc/keys, ...: a runtime that binds by
    path gives the container a writable core_pattern at each masked path.
    The container writes a marker to every masked file and to
    core_pattern, and opens /proc/sysrq-trigger for writing (writing
    nothing). What should stop it: the runtime opens /dev/null once,
    checks the open file is char 1:3, and binds that fd; else refuses.
    Passes if create refuses with one line, or every write fails and
    every masked file is the null device; the host core_pattern is
    unchanged either way."""
    core = host_value(CORE)
    lab.install("probe")
    d = image_dev(lab, variant)
    target = os.path.join(d, "null")
    if os.path.lexists(target):
        os.unlink(target)
    if null == "symlink-abs":
        os.symlink("/proc/sys/kernel/core_pattern", target)
    elif null == "symlink-rel":
        os.symlink("../proc/sys/kernel/core_pattern", target)
    else:
        os.mknod(target, 0o666 | 0o020000, os.makedev(1, 1))
    marker = "atk-31133-" + uuid.uuid4().hex[:8]
    script = probe_script(marker, MASKED_FILES + [CORE], openw=["/proc/sysrq-trigger"], stats=MASKED_FILES)
    cid = lab.id("31133")
    b = lab.bundle(["/bin/sh", "-c", script], edit=dev_from(variant, lab, d))
    rc, err, out = lab.run_to_end(cid, b)
    assert not core.changed(), f"the host's core_pattern became {core.now()!r}"
    if rc != 0:
        print("refused:", one_line(err))
        return
    print("ran:", out)
    assert "END" in out, out
    assert f"OK read {CORE}: {core.saved}" in out, f"the container does not see the host's core_pattern: {out}"
    # Writing to a masked file is writing to the null device: harmless, if
    # it is the null device.
    for l in out.splitlines():
        if l.startswith("OK stat"):
            assert "type=chr rdev=1:3" in l, f"a masked file is not the null device: {l}"
    assert f"OK write {CORE}" not in out, out
    assert "OK openw /proc/sysrq-trigger" not in out, out


@pytest.mark.parametrize("variant", ["rootfs", "bind"])
def test_cve_2025_52565_dev_console_symlink(lab, host_value, variant):
    """Attack: with process.terminal, the image's (or the shared volume's)
    /dev/console is a symlink to /proc/sys/kernel/core_pattern: a runtime
    that creates or binds the console by path lands on core_pattern while
    /proc/sys is still writable, or truncates it. The container writes a
    marker to /dev/console and to core_pattern and reports what its stdin
    and /dev/console are. What should stop it: /dev/console is created
    with O_NOFOLLOW and the pty bound through its fd (or not bound at
    all); the pty is opened from the container's own devpts. Passes if
    create refuses with one line, or the process's terminal is a pty and
    the host core_pattern is unchanged."""
    core = host_value(CORE)
    lab.install("probe")
    d = image_dev(lab, variant)
    console = os.path.join(d, "console")
    if os.path.lexists(console):
        os.unlink(console)
    os.symlink("/proc/sys/kernel/core_pattern", console)
    marker = "atk-52565-" + uuid.uuid4().hex[:8]
    script = probe_script(marker, ["/dev/console", CORE], stats=["/proc/self/fd/0", "/dev/console"])
    cid = lab.id("52565")
    b = lab.bundle(["/bin/sh", "-c", script], edit=dev_from(variant, lab, d), terminal=True)
    sock = ConsoleReceiver(os.path.join(lab.dir, "console.sock"))
    lab.cleanups.append(sock.close)
    rc, err = lab.create(cid, b, "--console-socket", sock.path)
    if rc != 0:
        assert not core.changed(), f"the host's core_pattern became {core.now()!r}"
        print("refused:", one_line(err))
        return
    lab.start(cid)
    out = sock.read_until(b"END").decode(errors="replace")
    print("ran:", out)
    lab.wait_stopped(cid)
    assert not core.changed(), f"the host's core_pattern became {core.now()!r}"
    assert "END" in out, out
    assert f"OK read {CORE}: {core.saved.strip()}" in out, f"the container does not see the host's core_pattern: {out}"
    assert f"OK write {CORE}" not in out, out
    stdin = [l for l in out.splitlines() if "stat /proc/self/fd/0" in l]
    assert stdin and "type=chr rdev=136:" in stdin[0], f"the terminal is not a pty: {stdin or out}"


@pytest.mark.parametrize("how", ["volume-over-symlink", "spec-destination"])
def test_cve_2025_52881_sysctl_write_redirected(lab, host_value, how):
    """Attack: the spec asks for net.ipv4.ip_forward=1 (a new network
    namespace: allowed) and mounts a volume the attacker controls, whose
    `ip_forward` is a symlink to /proc/sys/kernel/core_pattern, over
    /proc/sys/net/ipv4: through the image's /vol -> /proc/sys/net/ipv4
    symlink (the race's outcome), or as the mount's destination itself.
    The init's sysctl write then lands in the host's core_pattern (the
    sysctls go in before /proc/sys is made read-only). What should stop
    it: sysctls (and every /proc write) are made through a procfs the
    runtime verified (a file on procfs, no symlinks, no mounts crossed),
    and mounts over /proc are refused but for runc's short list. Passes
    if create refuses with one line, or the host's core_pattern is
    unchanged and the write stayed in the container's namespace."""
    core = host_value(CORE)
    vol = os.path.join(lab.dir, "volume")
    os.mkdir(vol)
    os.symlink("/proc/sys/kernel/core_pattern", os.path.join(vol, "ip_forward"))
    if how == "volume-over-symlink":
        os.symlink("/proc/sys/net/ipv4", os.path.join(lab.rootfs, "vol"))
        dest = "/vol"
    else:
        dest = "/proc/sys/net/ipv4"

    def edit(c):
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        c["mounts"].append({"destination": dest, "type": "bind", "source": vol, "options": ["rbind"]})
    cid = lab.id("52881")
    rc, err, out = lab.run_to_end(cid, lab.bundle(["/bin/cat", "/proc/sys/net/ipv4/ip_forward"], edit=edit))
    assert not core.changed(), f"the sysctl write reached the host's core_pattern: {core.now()!r}"
    assert os.path.islink(os.path.join(vol, "ip_forward")), "the volume's symlink was replaced"
    if rc != 0:
        print("refused:", one_line(err))
    else:
        print("ran:", out)


@pytest.mark.parametrize("link", ["/evil", "evil"])
def test_cve_2019_19921_proc_is_a_symlink(lab, link):
    """Attack: the image's /proc is a symlink to /evil, a directory of the
    image (in the advisory, swapped in by a racing container through a
    shared volume): a runtime that follows it mounts procfs at /evil, and
    its later /proc writes (labels, sysctls) and masks go where the image
    points. What should stop it: procfs (and sysfs) must be mounted on an
    ordinary directory: refuse a symlink ("must be mounted on ordinary
    directory", as runc). Passes if create refuses with one line and
    leaves nothing, or procfs is not mounted at /evil."""
    lab.install("probe")
    proc = os.path.join(lab.rootfs, "proc")
    os.rmdir(proc)
    os.mkdir(os.path.join(lab.rootfs, "evil"))
    os.symlink(link, proc)
    cid = lab.id("19921")
    rc, err, out = lab.run_to_end(cid, lab.bundle(["/atk/probe", "stat", "/evil"]))
    if rc != 0:
        print("refused:", one_line(err))
        assert lab.status(cid) is None
        return
    assert f"fsmagic={PROC_SUPER_MAGIC}" not in out, f"procfs was mounted at /evil through the /proc symlink: {out}"


# A combining mark (U+0596) right after a "/": Swift makes "/" and the mark
# one Character, so a path split or tested over Characters misses that "/"
# while the kernel walks it. mkdirAll once passed "evil/\u0596x" whole to
# mkdirat, and the kernel followed the image's symlink evil -> a host
# directory: a directory made on the host.
MARK = "\u0596"


def victim_link(lab):
    """A host directory (outside the rootfs) and the image's absolute
    symlink /evil to its path: inside the root that path does not exist,
    so the runtime must create what follows it there, never on the host."""
    victim = os.path.join(lab.dir, "host-victim")
    os.mkdir(victim)
    os.symlink(victim, os.path.join(lab.rootfs, "evil"))
    return victim


@pytest.mark.parametrize("kind", ["tmpfs", "bind-file"])
def test_mount_destination_with_a_combining_mark_after_a_slash(lab, kind):
    """Attack: a mount destination /evil/<U+0596>x/m (tmpfs, a directory)
    or /evil/<U+0596>f (a bind of a file) where the rootfs's /evil is a
    symlink to a host directory. What should stop it: the path's
    components are the bytes between "/"s; each is created inside the root
    after the symlink is resolved there. Passes if the host directory stays
    empty, and a container that runs found its mount inside its root."""
    victim = victim_link(lab)
    src = os.path.join(lab.dir, "src-file")
    with open(src, "w") as f:
        f.write("bound\n")
    if kind == "tmpfs":
        dst, mount = f"/evil/{MARK}x/m", {"type": "tmpfs", "source": "tmpfs"}
        probe = f"grep -c ' {victim}/{MARK}x/m tmpfs ' /proc/self/mounts"
    else:
        dst, mount = f"/evil/{MARK}f", {"type": "bind", "source": src, "options": ["bind"]}
        probe = f"cat {victim}/{MARK}f"

    def edit(c):
        c["mounts"].append(dict(mount, destination=dst))
    cid = lab.id("mark")
    rc, err, out = lab.run_to_end(cid, lab.bundle(["/bin/sh", "-c", probe], edit=edit))
    assert os.listdir(victim) == [], f"created on the host through /evil: {os.listdir(victim)}"
    if rc != 0:
        print("refused:", one_line(err))
        assert lab.status(cid) is None
        return
    assert out.strip() == ("1" if kind == "tmpfs" else "bound"), f"the mount is not at {dst} inside the root: {out!r}"
    lab.mc("delete", "-f", cid)


def test_image_symlink_and_a_tmpfs_with_a_combining_mark_after_a_slash(lab, tmp_path):
    """Attack: a hostile image, loaded and run Docker-style: its layer has
    the symlink /evil -> a host directory; the run asks for --tmpfs
    /evil/<U+0596>x (as a pod's mountPath would: a tenant writes both).
    What should stop it: as above, the mount point is made inside the
    root. Passes if the host directory stays empty, and the run either
    fails with one line or sees the tmpfs inside its root."""
    import imagekit as ik
    victim = os.path.join(lab.dir, "host-victim")
    os.mkdir(victim)
    lay = ik.busybox_layout(str(tmp_path), lab.rootfs, tag="evil")
    lay.add_tar("evil", [{"name": "evil", "type": "symlink", "link": victim}])
    archive = ik.to_oci_archive(lay, "evil", str(tmp_path / "evil.tar"), "docker.io/mc-test/evil:1")
    r = lab.mc("load", "-i", archive, timeout=120)
    assert r.returncode == 0, r.stderr
    r = lab.mc("run", "--rm", "--network", "none", "--tmpfs", f"/evil/{MARK}x", "mc-test/evil:1",
               "/bin/sh", "-c", f"grep -c ' {victim}/{MARK}x tmpfs ' /proc/self/mounts")
    assert os.listdir(victim) == [], f"created on the host through /evil: {os.listdir(victim)}"
    if r.returncode != 0 and r.stderr:
        print("refused:", one_line(r.stderr))
        return
    assert r.stdout.strip() == "1", f"the tmpfs is not mounted inside the root: {r.stdout!r} {r.stderr!r}"
