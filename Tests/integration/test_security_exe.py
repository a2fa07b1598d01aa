"""Attacks on the runtime binary and on the processes that run it (issue 11,
items 1 and 3): CVE-2019-5736 (classic and created-init paths), the
dumpable created init, the dumpable exec'd child before its execve.

Each test attacks its own copy of the runtime (attackkit.Lab) and checks
the copy's sha256 afterwards.
"""
import os
import shutil
import signal
import stat
import subprocess
import uuid

import pytest

from attackkit import attacker, lab, read, sha256, wait_for, with_fd7  # noqa: F401  (lab is a fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

F_GET_SEALS = 1034
F_SEAL_WRITE = 0x0008


def exe_protection(pid, copy):
    """Why the file /proc/PID/exe is not the copy we could overwrite, or
    None: another inode, a read-only mount, a memfd sealed for writing."""
    exe = f"/proc/{pid}/exe"
    st, cst = os.stat(exe), os.stat(copy)
    if (st.st_dev, st.st_ino) != (cst.st_dev, cst.st_ino):
        return f"another file (dev {st.st_dev} ino {st.st_ino}, the copy is dev {cst.st_dev} ino {cst.st_ino})"
    if os.statvfs(exe).f_flag & os.ST_RDONLY:
        return "the copy on a read-only mount"
    fd = os.open(exe, os.O_RDONLY)
    try:
        import fcntl
        try:
            if fcntl.fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE:
                return "a sealed memfd"
        except OSError:
            pass
    finally:
        os.close(fd)
    return None


def pid_alive(pid):
    try:
        return read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def scanner_output(lab, cid, init):
    """Ends the exe_overwrite scan in container `cid` (one last round) and
    returns what it printed."""
    os.kill(init, signal.SIGUSR1)
    assert wait_for(lambda: "DONE" in lab.output(cid) or not pid_alive(init), 20)
    out = lab.output(cid)
    print(out)
    return out


def test_cve_2019_5736_exec_of_proc_self_exe_script(lab):
    """Attack: the image's /bin/evil is `#!/proc/self/exe`. The container's
    init (exe_overwrite scan) holds /proc/PID/exe (O_PATH) of every process
    the runtime puts in the container and reopens it through /proc/self/fd/N
    for writing as soon as it is no longer busy; the host runs
    `<copy> exec ID /bin/evil`, whose child runs /proc/self/exe: today, the
    host binary. What should stop it: the exec'd child never runs the host
    file (a sealed memfd or a read-only mount of it, re-executed), so what
    the attacker holds cannot be opened for writing."""
    prog = lab.install("exe_overwrite")
    evil = os.path.join(lab.rootfs, "bin", "evil")
    with open(evil, "w") as f:
        f.write("#!/proc/self/exe\n")
    os.chmod(evil, 0o755)
    marker = "#!/bin/sh\necho pwned-" + uuid.uuid4().hex[:8] + "\n"
    cid = lab.id("5736")
    rc, err = lab.create(cid, lab.bundle([prog, "scan", "60", marker]))
    assert rc == 0, err
    init = lab.state_of(cid)["pid"]
    lab.start(cid)
    assert lab.wait_output(cid, "READY"), lab.output(cid)

    # exec until the attacker has seen a process the runtime made (it must
    # have had its target, or this test proves nothing).
    for _ in range(30):
        if not lab.copy_intact():
            break
        try:
            subprocess.run(lab.cmd("exec", cid, "/bin/evil"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        except OSError:  # ETXTBSY, ENOEXEC: the attacker is writing, or has written, the copy
            break
        if "HELD" in lab.output(cid):
            break
    # The exec'd processes have ended: the held files are no longer busy.
    out = scanner_output(lab, cid, init)
    assert "SAW" in out, f"the attacker never saw a process the runtime made: {out}"
    assert "WROTE" not in out, f"the attacker wrote through /proc/PID/exe:\n{out}"
    lab.assert_copy_intact()


def test_cve_2019_5736_created_init_exe(lab):
    """Attack: `create`, then exec into the created container a program
    (exe_overwrite pid1) that holds /proc/1/exe with O_PATH, then `start`;
    once the init has exec'd the container's program, the held file is no
    longer busy and the program reopens it for writing: today the init is a
    clone of the host binary. What should stop it: the created init does
    not run the host file (another inode, read-only or sealed), and it is
    not dumpable, so /proc/1/exe cannot even be opened."""
    prog = lab.install("exe_overwrite")
    marker = "#!/bin/sh\necho pwned-" + uuid.uuid4().hex[:8] + "\n"
    cid = lab.id("5736i")
    rc, err = lab.create(cid, lab.bundle(["/bin/sleep", "60"]))
    assert rc == 0, err
    pid = lab.state_of(cid)["pid"]
    protection = exe_protection(pid, lab.copy)

    hold_out = os.path.join(lab.dir, "holder.out")
    pidfile = os.path.join(lab.dir, "holder.pid")
    with open(hold_out, "w") as out:
        r = subprocess.run(lab.cmd("exec", "--detach", "--pid-file", pidfile, cid, prog, "pid1", "30", marker),
                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0, read(hold_out)
    holder = int(read(pidfile))
    assert wait_for(lambda: "READY" in read(hold_out), 10), read(hold_out)
    lab.start(cid)
    # The init has exec'd the container's program.
    assert wait_for(lambda: os.path.basename(os.readlink(f"/proc/{pid}/exe")) == "busybox", 10)
    os.kill(holder, signal.SIGUSR1)
    assert wait_for(lambda: "DONE" in read(hold_out) or not pid_alive(holder), 20)
    out = read(hold_out)
    print(out, "protection:", protection)
    assert "WROTE" not in out, f"the exec'd program rewrote the init's exe:\n{out}"
    lab.assert_copy_intact()
    assert protection is not None, ("the created init's /proc/PID/exe is the runtime copy itself "
                                    "(same inode, writable mount, not sealed)")


def test_created_init_is_not_dumpable(lab):
    """Attack: from a process exec'd into a created container (default
    capabilities: no CAP_SYS_PTRACE), read the init's memory through
    /proc/1/mem and process_vm_readv, its environment (the caller's: host
    secrets), its fds (the caller's: host files), its exe, and
    PTRACE_ATTACH it (peek.c). Listing the fd numbers is not counted: the
    kernel allows it to the same uid whatever the dumpable flag (a DAC
    check); following them is. What should stop it: the init is made
    non-dumpable from clone to execve, so every one of these needs
    CAP_SYS_PTRACE in the host's user namespace."""
    prog = lab.install("peek")
    cid = lab.id("dump")
    rc, err = lab.create(cid, lab.bundle(["/bin/sleep", "60"]))
    assert rc == 0, err
    assert lab.status(cid) == "created"
    r = lab.mc("exec", cid, prog, "1")
    assert "DONE" in r.stdout, (r.returncode, r.stdout, r.stderr)
    print(r.stdout)
    ok = [l for l in r.stdout.splitlines() if " OK " in l]
    assert not ok, "the created init could be read or traced:\n" + "\n".join(ok)


def test_exec_child_not_dumpable_before_execve(lab):
    """Attack: the container's init (scan_environ) reads /proc/PID/environ
    and the fd links of every new process while the host runs `<copy>
    exec` with a secret in the environment and a host file named for the
    secret on fd 7 (passed with pass_fds): between clone and execve the
    exec'd child is still the runtime, carrying both. What should stop it:
    the child is non-dumpable from its first instruction (and closes the
    caller's fds before it is visible in the container)."""
    prog = lab.install("scan_environ")
    secret = "ATKSECRET" + uuid.uuid4().hex[:12]
    cid = lab.id("dumpx")
    rc, err = lab.create(cid, lab.bundle([prog, secret, "60"]))
    assert rc == 0, err
    init = lab.state_of(cid)["pid"]
    lab.start(cid)
    assert lab.wait_output(cid, "READY"), lab.output(cid)
    host_file = os.path.join(lab.dir, secret)
    with open(host_file, "w") as f:
        f.write("host\n")
    env = dict(lab.environ, ATK_SECRET=secret)
    for _ in range(30):
        subprocess.run(with_fd7(host_file, lab.cmd("exec", cid, "/bin/true")), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, timeout=30)
        if "LEAK" in lab.output(cid):
            break
    # The control: a process that legitimately has the secret in its
    # environment (exec -e) shows it once it runs the container's program,
    # so the scanner would see a leak if the runtime let it.
    r = lab.mc("exec", "-e", f"ATK_CONTROL={secret}", cid, "/bin/sleep", "1")
    assert r.returncode == 0, r.stderr
    os.kill(init, signal.SIGUSR1)
    assert wait_for(lambda: "DONE" in lab.output(cid) or not pid_alive(init), 20)
    out = lab.output(cid)
    print(out)
    assert "SAW" in out, f"the scanner never saw an exec'd process: {out}"
    assert "var=ATK_CONTROL" in out, f"the scanner missed the control process: {out}"
    leaks = [l for l in out.splitlines() if l.startswith("LEAK") and "var=ATK_CONTROL" not in l]
    assert not leaks, "an exec'd child showed the caller's environment or fds:\n" + "\n".join(leaks[:10])


def evil_script(lab):
    evil = os.path.join(lab.rootfs, "bin", "evil")
    with open(evil, "w") as f:
        f.write("#!/proc/self/exe\n")
    os.chmod(evil, 0o755)
    return "/bin/evil"


def host_sleep_copy(lab):
    """A copy of the host's sleep, for host-side hooks: never the host's own
    file where an attacker might see the hook (it once rewrote /bin/sleep)."""
    path = os.path.join(lab.dir, "hook-sleep")
    if not os.path.exists(path):
        shutil.copy2(shutil.which("sleep"), path)
    return path


def ptrace_scanner(lab, tag):
    """Container X, with CAP_SYS_PTRACE, running exe_overwrite scan: it holds
    /proc/PID/exe of every process that appears in its pid namespace and
    keeps reopening each for writing. Returns (its id, its init's pid)."""
    prog = lab.install("exe_overwrite")
    marker = "#!/bin/sh\necho pwned-" + uuid.uuid4().hex[:8] + "\n"

    def ptrace(cfg):
        caps = cfg["process"].setdefault("capabilities", {})
        for k in ("bounding", "effective", "permitted"):
            caps[k] = sorted(set(caps.get(k, [])) | {"CAP_SYS_PTRACE"})
    x = lab.id(tag)
    rc, err = lab.create(x, lab.bundle([prog, "scan", "60", marker], edit=ptrace))
    assert rc == 0, err
    init = lab.state_of(x)["pid"]
    lab.start(x)
    assert lab.wait_output(x, "READY"), lab.output(x)
    return x, init


def joining(init, hooks):
    def edit(cfg):
        cfg["linux"]["namespaces"] = [n if n["type"] != "pid" else {"type": "pid", "path": f"/proc/{init}/ns/pid"}
                                      for n in cfg["linux"]["namespaces"]]
        cfg["hooks"] = hooks
    return edit


def test_host_hooks_are_not_born_in_a_joined_pid_namespace(lab):
    """Attack (found by the test below, on this machine's /bin/sleep):
    container X, with CAP_SYS_PTRACE, scans its pid namespace; a container
    created to join it has host-side hooks (createRuntime, poststart,
    poststop: host binaries the runtime forks). Were the runtime to fork
    them while it has X's namespace for its children, X would hold their
    /proc/PID/exe and rewrite the host's file once they exited. What should
    stop it: only the init is born there; the runtime returns to its own pid
    namespace right after the clone."""
    x, init = ptrace_scanner(lab, "hookx")
    hook = os.path.join(lab.dir, "hook-forker")
    shutil.copy2(attacker("hook_forker"), hook)
    before = sha256(hook)
    h = {"path": hook, "args": ["hook", "0.3"]}
    cid = lab.id("hookv")
    rc, err = lab.create(cid, lab.bundle(["/bin/sleep", "0.5"], edit=joining(init, {
        "createRuntime": [h], "poststart": [h], "poststop": [h]})))
    assert rc == 0, err
    lab.start(cid)
    assert lab.wait_stopped(cid)
    r = lab.mc("delete", cid)
    assert r.returncode == 0, r.stderr
    out = scanner_output(lab, x, init)
    assert "SAW" in out, f"the attacker never saw the joined init: {out}"
    assert hook not in out, f"a host-side hook was born in the container's pid namespace:\n{out}"
    assert sha256(hook) == before, "the hook's host binary was rewritten"
    lab.assert_copy_intact()


def test_cve_2019_5736_run_of_proc_self_exe_script(lab):
    """Attack, `run` (no re-execution there: its init is a clone of the
    host binary until its execve): the container's program is
    `#!/proc/self/exe`, so the kernel runs whatever the init's
    /proc/self/exe is at that execve, as the container's own process. What
    should stop it: the init's last execve goes through the sealed exec
    stub, so the interpreter is the stub (it exits 127 at once, saying
    nothing), never the runtime's file (which would print its usage error
    for the unknown command `/bin/evil`)."""
    prog = evil_script(lab)
    cid = lab.id("5736r")
    r = subprocess.run(lab.cmd("run", "--bundle", lab.bundle([prog, "arg"]), cid), capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, env=lab.environ, timeout=30)
    assert r.returncode == 127, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "" and r.stderr == "", ("something other than the stub ran as the interpreter", r.stdout, r.stderr)
    lab.assert_copy_intact()


def test_cve_2019_5736_run_joining_a_pid_namespace(lab):
    """Attack: container X, with CAP_SYS_PTRACE, scans its pid namespace
    (exe_overwrite scan) and holds /proc/PID/exe of every process that
    appears; `run` of a bundle that joins X's pid namespace puts its init
    there while it is still the runtime (a host-side createRuntime hook
    keeps it waiting for half a second), then its program is
    `#!/proc/self/exe`. Once the runtime has exited, the attacker reopens
    what it holds for writing. What should stop it: where the init can be
    seen before its execve, the exec stub does not suffice and `run`
    re-executes from the read-only clone first (SealedExe.stubSuffices), so
    every file held is on a read-only mount."""
    x, init = ptrace_scanner(lab, "5736x")
    join = joining(init, {"createRuntime": [{"path": host_sleep_copy(lab), "args": ["sleep", "0.5"]}]})
    victim = lab.id("5736v")
    r = subprocess.run(lab.cmd("run", "--bundle", lab.bundle([evil_script(lab)], edit=join), victim),
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, env=lab.environ, timeout=30)
    assert r.returncode != 0, (r.stdout, r.stderr)  # the runtime, as interpreter, refuses `/bin/evil`
    out = scanner_output(lab, x, init)
    assert "HELD" in out, f"the attacker never held a process the runtime made: {out}"
    assert "WROTE" not in out, f"the attacker wrote through /proc/PID/exe:\n{out}"
    lab.assert_copy_intact()
