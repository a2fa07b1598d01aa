"""Rootless (issue 18): the OCI lifecycle and Docker-style run as an
unprivileged user made by the tests (userkit.py), with its subordinate ids,
delegated v1 cgroups, and a user-mode network for -p.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
import userkit

from conftest import ROOTFS

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to make the user)")


def statuses(user, xdg, cid):
    r = user.mc("state", cid, xdg=xdg)
    return json.loads(r.stdout)["status"] if r.returncode == 0 else None


def no_leftovers(user, xdg):
    for _ in range(100):  # a monitor or helper on its way out
        left = userkit.user_processes()
        if not left:
            break
        time.sleep(0.05)
    left = [f"{p}: {open(f'/proc/{p}/cmdline').read()!r}" for p in left if os.path.exists(f"/proc/{p}")]
    assert not left, f"processes left: {left}"
    if os.path.isdir(xdg.root):
        assert [e for e in os.listdir(xdg.root) if e != "@seccomp"] == []


@pytest.fixture
def bundle(rootless_user, xdg, tmp_path):
    b = tmp_path / "bundle"
    b.mkdir()
    os.chown(b, rootless_user.uid, rootless_user.gid)
    r = rootless_user.mc("spec", "--rootless", xdg=xdg, cwd=str(b))
    assert r.returncode == 0, r.stderr
    os.symlink(ROOTFS, b / "rootfs")
    return b


def create(user, xdg, b, cid):
    """OCI create: the init keeps the stdio it is given, so not our pipes."""
    err = os.path.join(str(b), f"{cid}.err")
    r = subprocess.run(user.argv([user.binary, "create", "--bundle", str(b), cid], xdg=xdg),
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(err, "w"), timeout=60)
    return r.returncode, open(err).read()


def edit(b, fn):
    p = b / "config.json"
    c = json.loads(p.read_text())
    fn(c)
    p.write_text(json.dumps(c))


def test_spec_rootless_maps_the_caller(rootless_user, xdg, bundle):
    c = json.loads((bundle / "config.json").read_text())
    assert c["linux"]["uidMappings"] == [{"containerID": 0, "hostID": userkit.UID, "size": 1}]
    assert {n["type"] for n in c["linux"]["namespaces"]} >= {"user", "mount", "pid"}
    assert "resources" not in c["linux"]


def test_oci_lifecycle_as_the_user(rootless_user, xdg, bundle):
    def proc(c):
        c["process"]["terminal"] = False
        c["process"]["args"] = ["sleep", "1000"]
    edit(bundle, proc)
    u = rootless_user
    rc, err = create(u, xdg, bundle, "rl1")
    assert rc == 0, err
    # State under $XDG_RUNTIME_DIR/minicontainer, the user's.
    assert os.stat(os.path.join(xdg.root, "rl1", "state.json")).st_uid == userkit.UID
    assert statuses(u, xdg, "rl1") == "created"
    assert u.mc("start", "rl1", xdg=xdg).returncode == 0
    assert statuses(u, xdg, "rl1") == "running"
    pid = json.loads(u.mc("state", "rl1", xdg=xdg).stdout)["pid"]
    with open(f"/proc/{pid}/status") as f:
        uids = [line for line in f if line.startswith("Uid:")][0].split()[1:]
    assert uids == [str(userkit.UID)] * 4  # root inside is the user outside
    r = u.mc("exec", "rl1", "sh", "-c", "id -u; cat /proc/self/uid_map; echo $$", xdg=xdg)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(userkit.UID), "1"]
    ps = u.mc("ps", "rl1", xdg=xdg)
    assert ps.returncode == 0 and str(pid) in ps.stdout
    # Without a delegated freezer there is no pause, said in one line.
    p = u.mc("pause", "rl1", xdg=xdg)
    assert p.returncode == 125 and "freezer" in p.stderr and len(p.stderr.strip().split("\n")) == 1
    assert u.mc("kill", "rl1", "KILL", xdg=xdg).returncode == 0
    for _ in range(50):
        if statuses(u, xdg, "rl1") == "stopped":
            break
        time.sleep(0.05)
    assert statuses(u, xdg, "rl1") == "stopped"
    assert u.mc("delete", "rl1", xdg=xdg).returncode == 0
    no_leftovers(u, xdg)


def test_rootless_flag_values(rootless_user, xdg):
    r = rootless_user.mc("--rootless", "maybe", "list", xdg=xdg)
    assert r.returncode == 125 and "auto, true or false" in r.stderr
    # Forced off as a user: the root's own state dir, refused by the kernel.
    r = rootless_user.mc("--rootless", "false", "list", xdg=xdg)
    assert r.returncode in (0, 125)


def test_no_runtime_dir_is_one_clear_line(rootless_user, tmp_path):
    r = rootless_user.run([rootless_user.binary, "list"], env={"XDG_RUNTIME_DIR": ""})
    # setpriv's env keeps an empty value: the default /run/user/UID is the user's.
    assert r.returncode == 0, r.stderr


@pytest.fixture
def delegated():
    """v1 directories chown'd to the user, as runc's rootless tests delegate."""
    made = []
    for c in ("memory", "pids", "freezer"):
        d = f"/sys/fs/cgroup/{c}/mcrootless-test"
        if not os.path.isdir(f"/sys/fs/cgroup/{c}"):
            pytest.skip(f"no v1 {c} hierarchy")
        os.makedirs(d, exist_ok=True)
        os.chown(d, userkit.UID, userkit.GID)
        for f in ("cgroup.procs", "tasks"):
            os.chown(os.path.join(d, f), userkit.UID, userkit.GID)
        made.append(d)
    yield "/mcrootless-test"
    for d in made:
        for sub in os.listdir(d):
            if os.path.isdir(os.path.join(d, sub)):
                os.rmdir(os.path.join(d, sub))
        os.rmdir(d)


def test_memory_limit_with_delegation_oom_137(rootless_user, xdg, bundle, delegated):
    def cfg(c):
        c["process"]["terminal"] = False
        c["process"]["args"] = ["sh", "-c", "cat /proc/self/cgroup >/dev/null; x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"]
        c["linux"]["cgroupsPath"] = delegated + "/oom"
        c["linux"]["resources"] = {"memory": {"limit": 16 << 20, "swap": 16 << 20}}
    edit(bundle, cfg)
    r = rootless_user.mc("run", "--bundle", str(bundle), "rloom", xdg=xdg, timeout=120)
    assert r.returncode == 137, (r.returncode, r.stderr)
    assert not os.path.exists("/sys/fs/cgroup/memory" + delegated + "/oom")
    no_leftovers(rootless_user, xdg)


def test_limits_and_pause_with_delegation(rootless_user, xdg, bundle, delegated):
    def cfg(c):
        c["process"]["terminal"] = False
        c["process"]["args"] = ["sleep", "1000"]
        c["linux"]["cgroupsPath"] = delegated + "/lim"
        c["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 40}}
    edit(bundle, cfg)
    u = rootless_user
    rc, err = create(u, xdg, bundle, "rllim")
    assert rc == 0, err
    try:
        base = "/sys/fs/cgroup/%s" + delegated + "/lim"
        assert open(base % "memory" + "/memory.limit_in_bytes").read().strip() == str(64 << 20)
        assert open(base % "pids" + "/pids.max").read().strip() == "40"
        pid = json.loads(u.mc("state", "rllim", xdg=xdg).stdout)["pid"]
        assert str(pid) in open(base % "memory" + "/cgroup.procs").read().split()
        assert u.mc("start", "rllim", xdg=xdg).returncode == 0
        assert u.mc("pause", "rllim", xdg=xdg).returncode == 0
        assert statuses(u, xdg, "rllim") == "paused"
        assert open(base % "freezer" + "/freezer.state").read().strip() == "FROZEN"
        assert u.mc("resume", "rllim", xdg=xdg).returncode == 0
        assert u.mc("kill", "--all", "rllim", "KILL", xdg=xdg).returncode == 0
    finally:
        u.mc("delete", "--force", "rllim", xdg=xdg)
    assert not os.path.exists(base % "memory")
    no_leftovers(u, xdg)


def test_limit_without_delegation_is_refused(rootless_user, xdg, bundle):
    def cfg(c):
        c["process"]["terminal"] = False
        c["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    edit(bundle, cfg)
    r = rootless_user.mc("run", "--bundle", str(bundle), "rlno", xdg=xdg)
    assert r.returncode == 125
    assert "no memory cgroup is delegated to you" in r.stderr
    assert len(r.stderr.strip().split("\n")) == 1
    r = rootless_user.mc("run", "--rm", "--network", "none", "--memory", "32m", "--rootfs", ROOTFS, "true", xdg=xdg)
    assert r.returncode == 125 and "delegated" in r.stderr
    no_leftovers(rootless_user, xdg)


@pytest.fixture
def user_rootfs(rootless_user, tmp_path):
    """A copy of the busybox rootfs owned by the user (its root inside): an
    overlay in a user namespace cannot copy up a file whose owner has no id
    there (EOVERFLOW), so a rootless --rootfs must be the user's."""
    d = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", ROOTFS, str(d)], check=True)
    subprocess.run(["chown", "-R", f"{userkit.UID}:{userkit.GID}", str(d)], check=True)
    return str(d)


def test_run_rootfs_volume_files_belong_to_the_user(rootless_user, xdg, tmp_path, user_rootfs):
    vol = tmp_path / "vol"
    vol.mkdir()
    os.chown(vol, userkit.UID, userkit.GID)
    r = rootless_user.mc("run", "--rm", "--network", "none", "-v", f"{vol}:/data", "--rootfs", user_rootfs,
                         "sh", "-c", "id -u; touch /data/by-root; touch /data/by-1000; chown 1000:1000 /data/by-1000; "
                         "touch /etc/in-upper && echo upper-ok", xdg=xdg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "upper-ok"]
    st = os.stat(vol / "by-root")
    assert (st.st_uid, st.st_gid) == (userkit.UID, userkit.GID)
    st = os.stat(vol / "by-1000")
    assert (st.st_uid, st.st_gid) == (userkit.SUB_START + 999, userkit.SUB_START + 999)
    # The container's root gained nothing on the host: no capability there.
    r = rootless_user.mc("run", "--rm", "--network", "none", "--security-opt", "no-new-privileges",
                         "--rootfs", user_rootfs, "sh", "-c",
                         "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mount -t tmpfs t /mnt && echo mounted; "
                         "echo 1 > /proc/sys/kernel/panic 2>/dev/null && echo wrote-sysctl; hostname h2 && hostname",
                         xdg=xdg)
    assert "NoNewPrivs:\t1" in r.stdout and "Seccomp:\t2" in r.stdout, r.stdout + r.stderr
    assert "wrote-sysctl" not in r.stdout
    no_leftovers(rootless_user, xdg)


def http_get(port):
    for _ in range(50):
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=2).read().decode()
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered on 127.0.0.1:{port}")


def test_two_containers_with_published_ports(rootless_user, xdg):
    if oct(os.stat("/dev/net/tun").st_mode & 0o777) != "0o666":
        pytest.skip("/dev/net/tun is not 0666 (scripts/setup.sh sets Debian's mode)")
    u = rootless_user
    names = []
    try:
        for name, port in (("rlweb1", 18081), ("rlweb2", 18082)):
            r = u.mc("run", "-d", "--name", name, "--hostname", name, "-p", f"{port}:80", "--rootfs", ROOTFS,
                     "httpd", "-f", "-p", "80", "-h", "/etc", xdg=xdg)
            assert r.returncode == 0, r.stderr
            names.append(name)
        assert http_get(18081).strip() == "rlweb1"
        assert http_get(18082).strip() == "rlweb2"
        ps = u.mc("ps", xdg=xdg)
        assert "rlweb1" in ps.stdout and "rlweb2" in ps.stdout
        r = u.mc("exec", "rlweb1", "sh", "-c", "echo hello-from-exec; id -u", xdg=xdg)
        assert r.stdout.split() == ["hello-from-exec", "0"], r.stderr
        # The user-mode helper runs as the user, never more.
        helpers = subprocess.run(["pgrep", "-x", "slirp4netns"], capture_output=True, text=True).stdout.split()
        assert helpers
        for h in helpers:
            assert os.stat(f"/proc/{h}").st_uid == userkit.UID
        r = u.mc("run", "--rm", "--rootfs", ROOTFS, "sh", "-c", "echo log-line", xdg=xdg)
        assert r.stdout.strip() == "log-line"
        u.mc("exec", "rlweb2", "sh", "-c", "echo to-log > /proc/1/fd/1", xdg=xdg)
        logs = u.mc("logs", "rlweb2", xdg=xdg)
        assert "to-log" in logs.stdout
        for n in names:
            assert u.mc("stop", "-t", "1", n, xdg=xdg).returncode == 0
            assert u.mc("rm", n, xdg=xdg).returncode == 0
        names = []
    finally:
        for n in names:
            u.mc("rm", "-f", n, xdg=xdg)
    no_leftovers(u, xdg)  # monitors and slirp4netns included
    assert subprocess.run(["pgrep", "-u", str(userkit.UID)], capture_output=True).returncode == 1


def test_rm_and_volume_rm_remove_files_of_subordinate_ids(rootless_user, xdg, user_rootfs):
    """What the container's uid 1000 made (host uid SUB_START+999, mode
    0700) is not the user's to remove directly: rm and volume rm go through
    the user's mapped root, and leave nothing."""
    u = rootless_user
    script = ("for d in /made /v/made; do mkdir -p $d/deep && touch $d/deep/f && "
              "chown -R 1000:1000 $d && chmod 700 $d $d/deep; done; echo made")
    r = u.mc("run", "--name", "rlrm", "--network", "none", "-v", "rlvol:/v", "--rootfs", user_rootfs,
             "sh", "-c", script, xdg=xdg)
    assert r.returncode == 0 and r.stdout.strip() == "made", r.stderr
    containers = os.path.join(xdg.store, "containers")
    [cdir] = [os.path.join(containers, e) for e in os.listdir(containers)]
    owners = {os.lstat(os.path.join(dp, n)).st_uid for dp, ds, fs in os.walk(cdir) for n in ds + fs}
    assert u.sub_start + 999 in owners, owners  # the upper dir really holds them
    r = u.mc("rm", "rlrm", xdg=xdg)
    assert r.returncode == 0, r.stderr
    assert os.listdir(containers) == []
    vols = os.path.join(xdg.store, "volumes")
    assert any(os.path.isdir(os.path.join(vols, e)) for e in os.listdir(vols))
    r = u.mc("volume", "rm", "rlvol", xdg=xdg)
    assert r.returncode == 0, r.stderr
    assert [e for e in os.listdir(vols) if os.path.isdir(os.path.join(vols, e))] == []
    no_leftovers(u, xdg)


def test_exec_it_as_the_user(rootless_user, xdg, user_rootfs):
    from conftest import run_in_pty
    u = rootless_user
    r = u.mc("run", "-d", "--name", "rlexec", "--network", "none", "--rootfs", user_rootfs, "sleep", "60", xdg=xdg)
    assert r.returncode == 0, r.stderr
    try:
        out, code = run_in_pty(u.argv([u.binary, "exec", "-it", "rlexec", "sh"], xdg=xdg),
                               [(b"# ", b"tty; id -u; stty size; exit 3\n")])
        text = out.decode(errors="replace")
        assert code == 3, text
        assert "/dev/pts/0" in text and "\n0\r" in text, text
    finally:
        assert u.mc("rm", "-f", "rlexec", xdg=xdg).returncode == 0
    no_leftovers(u, xdg)


def test_cve_2019_5736_as_the_user(rootless_user, xdg, tmp_path, user_rootfs):
    """Attack, rootless: the runtime binary belongs to the user, and the
    container's root IS the user on the host, so file permissions do not
    protect it. The container's init (exe_overwrite scan) holds
    /proc/PID/exe of each process the runtime puts in the container and
    reopens it for writing once it is not busy; the user runs
    `exec ID /bin/evil` (`#!/proc/self/exe`). What should stop it: the
    runtime never runs its own file, but a read-only clone of it (made in a
    user namespace of its own: no privilege needed) or a sealed copy."""
    import attackkit
    u = rootless_user
    bindir = tmp_path / "bin"
    bindir.mkdir()
    copy = str(bindir / "minicontainer")
    shutil.copy2(u.binary, copy)
    os.chown(bindir, u.uid, u.gid)
    os.chown(copy, u.uid, u.gid)
    os.chmod(copy, 0o755)
    before = attackkit.sha256(copy)
    shutil.copy2(attackkit.attacker("exe_overwrite"), os.path.join(user_rootfs, "bin", "atk"))
    evil = os.path.join(user_rootfs, "bin", "evil")
    with open(evil, "w") as f:
        f.write("#!/proc/self/exe\n")
    for p in (evil, os.path.join(user_rootfs, "bin", "atk")):
        os.chown(p, u.uid, u.gid)
        os.chmod(p, 0o755)
    marker = "#!/bin/sh\necho pwned\n"
    r = u.run([copy, "run", "-d", "--name", "rl5736", "--network", "none", "--rootfs", user_rootfs,
               "/bin/atk", "scan", "60", marker], xdg=xdg)
    assert r.returncode == 0, r.stderr
    try:
        logs = lambda: u.run([copy, "logs", "rl5736"], xdg=xdg).stdout
        assert attackkit.wait_for(lambda: "READY" in logs(), 10), logs()
        init = int(json.loads(u.run([copy, "inspect", "rl5736"], xdg=xdg).stdout)[0]["State"]["Pid"])
        for _ in range(30):
            p = u.popen([copy, "exec", "rl5736", "/bin/evil"], xdg=xdg, stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            p.wait(timeout=30)
            if "HELD" in logs():
                break
        # What the runtime's own processes ran from: never the user's file.
        st = os.stat(copy)
        os.kill(init, signal.SIGUSR1)
        assert attackkit.wait_for(lambda: "DONE" in logs(), 20), logs()
        out = logs()
        print(out)
        assert "SAW" in out, f"the attacker never saw a process the runtime made: {out}"
        assert "WROTE" not in out, f"the attacker wrote through /proc/PID/exe:\n{out}"
        assert attackkit.sha256(copy) == before, "the user's runtime binary was changed"
        assert (st.st_dev, st.st_ino) == (os.stat(copy).st_dev, os.stat(copy).st_ino)
    finally:
        u.run([copy, "rm", "-f", "rl5736"], xdg=xdg)
    no_leftovers(u, xdg)


def test_runtime_runs_from_a_read_only_clone_as_the_user(rootless_user, xdg, bundle):
    """As the user, the runtime re-executes from a read-only clone of its
    binary's mount (no 34 MB memfd copy): the init of a created container
    runs a file on a read-only mount, the same inode as the user's binary
    (test_cve_2019_5736_as_the_user makes the write)."""
    u, b = rootless_user, bundle
    edit(b, lambda c: c["process"].update(args=["/bin/sleep", "30"], terminal=False))
    rc, err = create(u, xdg, b, "rlro")
    assert rc == 0, err
    try:
        pid = json.loads(u.mc("state", "rlro", xdg=xdg).stdout)["pid"]
        exe = f"/proc/{pid}/exe"
        st, mine = os.stat(exe), os.stat(u.binary)
        assert (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino), "not a clone of the binary (a memfd copy?)"
        assert os.statvfs(exe).f_flag & os.ST_RDONLY
    finally:
        u.mc("delete", "-f", "rlro", xdg=xdg)
    no_leftovers(u, xdg)
