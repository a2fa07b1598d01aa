"""Resource limits on this machine's cgroups, as root: limits that read back
from the control files and take effect (OOM kill, pids limit, cpu quota),
`update`, `events --stats`, pause/resume, bad limits, and that nothing is
left behind in any hierarchy after many create/delete cycles."""
import json
import os
import subprocess
import time
import uuid
import pytest
from conftest import BIN, mc
from test_lifecycle import Env, cgroup_dirs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

CG = "/sys/fs/cgroup"
MiB = 1024 * 1024
EAT = "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived"


def v1(ctrl):
    return os.path.isdir(os.path.join(CG, ctrl)) and not os.path.exists(os.path.join(CG, "cgroup.controllers"))


def cgfile(ctrl, cid, name):
    with open(os.path.join(CG, ctrl, cid, name)) as f:
        return f.read().strip()


def all_minicontainer_cgroups(ids):
    """Every cgroup directory of these ids in any hierarchy (v1 and unified)."""
    return [d for cid in ids for d in cgroup_dirs(cid)]


@pytest.fixture
def env(tmp_path, binary, rootfs):
    if not v1("memory"):
        pytest.skip("these tests read cgroup v1 control files")
    e = Env(tmp_path, rootfs)
    yield e
    e.close()


def resources(**r):
    def edit(cfg):
        cfg["linux"]["resources"] = {**cfg["linux"].get("resources", {}), **r}
    return edit


def run(env, args, edit=None, timeout=60):
    b = env.bundle(args, name="run-" + uuid.uuid4().hex[:6], edit=edit)
    cid = env.id()
    r = subprocess.run([BIN, "--root", env.root, "run", "--bundle", b, cid], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return cid, r


def start_sleeper(env, edit=None, args=None):
    b = env.bundle(args or ["/bin/sleep", "600"], name="s-" + uuid.uuid4().hex[:6], edit=edit)
    cid = env.id()
    code, err = env.create(cid, b)
    assert code == 0, err
    env.mc("start", cid, check=True)
    return cid


def test_memory_limit_reads_back(env):
    cid = start_sleeper(env, resources(memory={"limit": 16 * MiB, "reservation": 8 * MiB}))
    assert int(cgfile("memory", cid, "memory.limit_in_bytes")) == 16 * MiB
    assert int(cgfile("memory", cid, "memory.soft_limit_in_bytes")) == 8 * MiB
    env.mc("delete", "--force", cid, check=True)
    assert not cgroup_dirs(cid)


def test_oom_kill_exit_137_and_cleanup(env):
    cid, r = run(env, ["/bin/sh", "-c", EAT], resources(memory={"limit": 16 * MiB}))
    assert r.returncode == 137, (r.returncode, r.stdout, r.stderr)
    assert "survived" not in r.stdout
    assert not cgroup_dirs(cid)
    assert not os.path.exists(os.path.join(env.root, cid))
    # Without the limit the same program survives.
    cid, r = run(env, ["/bin/sh", "-c", EAT])
    assert r.returncode == 0 and "survived" in r.stdout, r.stderr


def test_oom_event_and_delete(env):
    """events reports the OOM kill of a process in the container; delete removes the cgroup."""
    cid = start_sleeper(env, resources(memory={"limit": 16 * MiB}))
    ev = subprocess.Popen([BIN, "--root", env.root, "events", "--interval", "100ms", cid],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    r = env.mc("exec", cid, "/bin/sh", "-c", EAT)
    assert r.returncode == 137, (r.returncode, r.stderr)
    env.mc("kill", cid, "KILL", check=True)
    out, err = ev.communicate(timeout=20)
    events = [json.loads(l) for l in out.splitlines() if l.strip()]
    assert {"type": "oom", "id": cid} in events, (out, err)
    assert ev.returncode == 0, err
    env.mc("delete", cid, check=True)
    assert not cgroup_dirs(cid)


def test_init_oom_killed_then_stopped_and_deleted(env):
    """The init itself is OOM-killed: events reports it and ends, the
    container is stopped, and a plain delete removes every cgroup directory."""
    cid = start_sleeper(env, resources(memory={"limit": 16 * MiB}), args=["/bin/sh", "-c", "sleep 0.5; " + EAT])
    ev = subprocess.run([BIN, "--root", env.root, "events", "--interval", "200ms", cid],
                        capture_output=True, text=True, timeout=30)
    assert ev.returncode == 0, ev.stderr
    assert {"type": "oom", "id": cid} in [json.loads(l) for l in ev.stdout.splitlines()], ev.stdout
    assert env.state(cid)["status"] == "stopped"
    assert cgroup_dirs(cid)
    env.mc("delete", cid, check=True)
    assert not cgroup_dirs(cid)
    assert not os.path.exists(os.path.join(env.root, cid))


def test_pids_limit_holds_fork_bomb(env):
    if not v1("pids"):
        pytest.skip("no v1 pids hierarchy")
    host_before = len(os.listdir("/proc"))
    bomb = "b() { b | b & }; b; sleep 600"
    cid = start_sleeper(env, resources(pids={"limit": 20}), args=["/bin/sh", "-c", bomb])
    assert cgfile("pids", cid, "pids.max") == "20"
    peak = 0
    for _ in range(30):
        peak = max(peak, int(cgfile("pids", cid, "pids.current")))
        time.sleep(0.05)
    print(f"fork bomb under pids.max 20: peak pids.current {peak}")
    assert 1 < peak <= 20, peak
    events = cgfile("pids", cid, "pids.events")
    assert int(events.split()[-1]) > 0, events  # forks were refused
    # The host still forks fine.
    assert subprocess.run(["/bin/true"]).returncode == 0
    assert len(os.listdir("/proc")) < host_before + 40
    t = time.monotonic()
    r = env.mc("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t < 10
    assert not cgroup_dirs(cid)
    test_pids_limit_holds_fork_bomb.peak = peak


def cpu_fraction(cid, seconds=2.0):
    def usage():
        return int(cgfile("cpuacct", cid, "cpuacct.usage"))
    u0, t0 = usage(), time.monotonic()
    time.sleep(seconds)
    u1, t1 = usage(), time.monotonic()
    return (u1 - u0) / 1e9 / (t1 - t0)


def test_cpu_quota_half_core(env):
    cid = start_sleeper(env, resources(cpu={"quota": 50000, "period": 100000}),
                        args=["/bin/sh", "-c", "while :; do :; done"])
    assert cgfile("cpu", cid, "cpu.cfs_quota_us") == "50000"
    assert cgfile("cpu", cid, "cpu.cfs_period_us") == "100000"
    time.sleep(0.3)
    frac = cpu_fraction(cid)
    print(f"cpu used with quota 50000/100000: {frac:.3f} cores")
    assert 0.4 <= frac <= 0.6, frac
    # update lifts the quota: the loop now takes a whole core.
    env.mc("update", "--cpu-quota", "-1", cid, check=True)
    assert cgfile("cpu", cid, "cpu.cfs_quota_us") == "-1"
    frac2 = cpu_fraction(cid, 1.0)
    print(f"cpu used without quota: {frac2:.3f} cores")
    assert frac2 > frac * 1.2, (frac, frac2)  # above the quota (on a host whose 2 cores may be busy)
    env.mc("delete", "--force", cid, check=True)


def test_update_memory_flags_and_merge(env):
    cid = start_sleeper(env, resources(memory={"limit": 32 * MiB}, pids={"limit": 50}))
    before = int(cgfile("memory", cid, "memory.limit_in_bytes"))
    assert before == 32 * MiB
    r = env.mc("update", "--memory", "64m", cid)
    assert r.returncode == 0, r.stderr
    after = int(cgfile("memory", cid, "memory.limit_in_bytes"))
    print(f"memory.limit_in_bytes before {before} after {after}")
    assert after == 64 * MiB
    # A later update merges: the pids limit and memory stay.
    env.mc("update", "--cpu-shares", "512", "--pids-limit", "30", cid, check=True)
    assert cgfile("cpu", cid, "cpu.shares") == "512"
    assert cgfile("pids", cid, "pids.max") == "30"
    assert int(cgfile("memory", cid, "memory.limit_in_bytes")) == 64 * MiB
    env.mc("update", "--cpuset-cpus", "0", "--cpu-period", "200000", "--cpu-quota", "100000", cid, check=True)
    assert cgfile("cpuset", cid, "cpuset.cpus") == "0"
    assert cgfile("cpu", cid, "cpu.cfs_period_us") == "200000"
    assert cgfile("cpu", cid, "cpu.cfs_quota_us") == "100000"
    # And the memory now really is 64 MiB: 48 MiB of tmpfs (charged to the cgroup) fit.
    r = env.mc("exec", cid, "/bin/sh", "-c", "head -c 50331648 /dev/zero > /dev/shm/f && echo ok; rm -f /dev/shm/f")
    assert r.returncode == 0 and "ok" in r.stdout, (r.returncode, r.stderr)
    env.mc("delete", "--force", cid, check=True)


def test_update_resources_stdin(env):
    cid = start_sleeper(env, resources(memory={"limit": 32 * MiB}))
    body = json.dumps({"memory": {"limit": 48 * MiB, "reservation": 16 * MiB},
                       "cpu": {"shares": 256}, "pids": {"limit": 40}})
    r = env.mc("update", "--resources", "-", cid, input=body)
    assert r.returncode == 0, r.stderr
    assert int(cgfile("memory", cid, "memory.limit_in_bytes")) == 48 * MiB
    assert int(cgfile("memory", cid, "memory.soft_limit_in_bytes")) == 16 * MiB
    assert cgfile("cpu", cid, "cpu.shares") == "256"
    assert cgfile("pids", cid, "pids.max") == "40"
    # --resources=FILE, as podman passes it.
    f = env.tmp / "res.json"
    f.write_text(json.dumps({"memory": {"limit": 40 * MiB}}))
    env.mc("update", f"--resources={f}", cid, check=True)
    assert int(cgfile("memory", cid, "memory.limit_in_bytes")) == 40 * MiB
    # Zeros, as podman sends in a whole LinuxResources, change nothing.
    zeros = {"memory": {"limit": 0, "reservation": 0, "swap": 0}, "cpu": {"shares": 0, "quota": 0, "period": 0,
             "cpus": "", "mems": ""}, "pids": {"limit": 0}, "blockIO": {"weight": 0}}
    env.mc("update", "--resources", "-", cid, input=json.dumps(zeros), check=True)
    assert int(cgfile("memory", cid, "memory.limit_in_bytes")) == 40 * MiB
    assert cgfile("cpu", cid, "cpu.shares") == "256"
    assert cgfile("pids", cid, "pids.max") == "40"
    r = env.mc("update", "--resources", "-", cid, input="{\"memory\": {\"limit\": \"x\"}}")
    assert r.returncode == 125 and "memory.limit" in r.stderr, r.stderr
    env.mc("delete", "--force", cid, check=True)


def test_update_below_usage_is_one_clear_line(env):
    cid = start_sleeper(env, resources(memory={"limit": 64 * MiB}),
                        args=["/bin/sh", "-c", "x=$(head -c 25165824 /dev/zero | tr '\\0' a); while :; do sleep 600; done"])
    # The shell keeps its 24 MiB: a loop, since a last command alone would
    # be exec'd in its place and free them (the test raced that before).
    for _ in range(200):
        if int(cgfile("memory", cid, "memory.usage_in_bytes")) > 24 * MiB:
            break
        time.sleep(0.05)
    assert int(cgfile("memory", cid, "memory.usage_in_bytes")) > 24 * MiB
    # No swap, nothing to reclaim: the kernel refuses (EBUSY) a limit below use.
    r = env.mc("update", "--memory", "4m", cid)
    assert r.returncode == 125, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "memory.limit_in_bytes" in lines[0] and "4194304" in lines[0], lines[0]
    assert int(cgfile("memory", cid, "memory.limit_in_bytes")) == 64 * MiB
    env.mc("delete", "--force", cid, check=True)


def test_bad_cpuset_fails_create_and_cleans_up(env):
    ncpu = os.cpu_count()
    bad = f"{ncpu + 5}-{ncpu + 7}"
    b = env.bundle(["/bin/true"], edit=resources(cpu={"cpus": bad}))
    cid = env.id()
    code, err = env.create(cid, b)
    assert code == 125, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "cpuset.cpus" in lines[0] and bad in lines[0], lines[0]
    assert not cgroup_dirs(cid)
    assert not os.path.exists(os.path.join(env.root, cid))


def test_pause_resume_freezer(env):
    cid = start_sleeper(env)
    env.mc("pause", cid, check=True)
    assert cgfile("freezer", cid, "freezer.state") == "FROZEN"
    assert env.state(cid)["status"] == "paused"
    env.mc("resume", cid, check=True)
    assert cgfile("freezer", cid, "freezer.state") == "THAWED"
    assert env.state(cid)["status"] == "running"
    env.mc("delete", "--force", cid, check=True)


def test_events_stats(env):
    cid = start_sleeper(env, resources(memory={"limit": 32 * MiB}, pids={"limit": 25}),
                        args=["/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 600"])
    time.sleep(0.5)
    r = env.mc("events", "--stats", cid)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["type"] == "stats" and s["id"] == cid
    d = s["data"]
    assert d["cpu"]["usage"]["total"] > 0
    assert d["memory"]["usage"]["limit"] == 32 * MiB
    assert 0 < d["memory"]["usage"]["usage"] <= 32 * MiB
    assert "cache" in d["memory"]["raw"] or "rss" in d["memory"]["raw"]
    assert d["pids"]["limit"] == 25
    assert 1 <= d["pids"]["current"] <= 3
    env.mc("delete", "--force", cid, check=True)
    r = env.mc("events", "--stats", cid)
    assert r.returncode == 125
    r = env.mc("update", "--memory", "64m", cid)
    assert r.returncode == 125 and "does not exist" in r.stderr, r.stderr


def test_many_cycles_leave_nothing(env):
    b = env.bundle(["/bin/true"], name="cyc", edit=resources(memory={"limit": 16 * MiB}, pids={"limit": 10},
                                                              cpu={"shares": 512}))
    boom = env.bundle(["/bin/sh", "-c", EAT], name="boom", edit=resources(memory={"limit": 16 * MiB}))
    ids = []
    t = time.monotonic()
    ooms = 0
    for i in range(200):
        cid = f"cyc{i}-" + uuid.uuid4().hex[:6]
        ids.append(cid)
        if i % 10 == 0:
            r = subprocess.run([BIN, "--root", env.root, "run", "--bundle", boom, cid], capture_output=True,
                               text=True, stdin=subprocess.DEVNULL, timeout=60)
            assert r.returncode == 137, r.stderr
            ooms += 1
        else:
            code, err = env.create(cid, b)
            assert code == 0, err
            r = env.mc("delete", cid)
            assert r.returncode == 0, r.stderr
    elapsed = time.monotonic() - t
    print(f"200 cycles ({ooms} OOM-killed runs) in {elapsed:.1f}s")
    assert ooms == 20
    assert not all_minicontainer_cgroups(ids)
    assert not [c for c in ids if os.path.exists(os.path.join(env.root, c))]
    env.ids += ids


def test_podman_update_goes_through_update_resources(binary, rootfs):
    """podman 4 drives `update --resources=FILE` (its LinuxResources JSON) on
    our runtime: the limit changes in the running container's cgroup."""
    import shutil
    if not shutil.which("podman") or not v1("memory"):
        pytest.skip("needs podman and a v1 memory hierarchy")
    import test_podman
    # test_podman's private podman setup (its module fixture), driven by hand.
    fixture = test_podman.pod
    fn = getattr(fixture, "__wrapped__", None)
    if fn is None and hasattr(fixture, "_get_wrapped_function"):
        fn = fixture._get_wrapped_function()
    if fn is None:
        pytest.skip("cannot reuse test_podman's fixture with this pytest")
    gen = fn(binary, rootfs)
    p = next(gen)
    try:
        p.ok("run", "-d", "--name", "upd", "--memory", "32m", test_podman.IMAGE, "sleep", "600")
        cid = p.cid("upd")
        pid = p.ok("inspect", "--format", "{{.State.Pid}}", "upd").strip()

        def limit():
            with open(f"/proc/{pid}/cgroup") as f:
                rel = [l.split(":", 2)[2].strip() for l in f if l.split(":")[1] == "memory"][0]
            with open(f"{CG}/memory{rel}/memory.limit_in_bytes") as f:
                return int(f.read())
        assert limit() == 32 * MiB
        r = p("update", "--memory", "64m", "upd")
        assert r.returncode == 0, r.stderr
        assert limit() == 64 * MiB
        p.ok("rm", "-f", "-t", "0", "upd")
        assert cid
    finally:
        try:
            next(gen)
        except StopIteration:
            pass
