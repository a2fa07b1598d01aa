"""Cgroup attacks (issue 11, items 6 and 8).

- A container created in a cgroup that host processes already use
  (`"cgroupsPath": "/atk-shared-..."`): `delete --force`, `kill --all` and
  `ps ID` walk the cgroup's processes, so today they kill and list the
  host's. What should stop it: create refuses a non-empty existing cgroup
  (runc 1.2), or nothing ever signals a process the container did not start.
- A runtime SIGKILLed 1-50 ms into `create`: then `delete --force ID` must
  leave no cgroup named for the id in any hierarchy, no state, no process.
  What should stop it: the runtime records what it is about to make
  before making it, or `delete --force` finds it by id.
"""
import json
import os
import random
import signal
import subprocess
import time
import uuid

import pytest

from attackkit import (CGROUP, cgroup_dirs, lab, one_line, procs_in_cgroup_named,  # noqa: F401  (lab)
                       procs_running, read, remove_cgroup, wait_for)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def hierarchies():
    """Every hierarchy a process can be placed in: the v1 controllers, the
    named ones (systemd) and the unified (cgroup2) one."""
    return [h for h in sorted(os.listdir(CGROUP)) if os.path.isfile(os.path.join(CGROUP, h, "cgroup.procs"))]


def make_shared_cgroup(name, pid):
    """Makes /NAME in every hierarchy and moves `pid` into each; returns the
    directories made."""
    made = []
    for h in hierarchies():
        d = os.path.join(CGROUP, h, name)
        os.mkdir(d)
        made.append(d)
        if h == "cpuset":  # a v1 cpuset takes no task before it has cpus and mems
            for f in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(d, f), "w") as out:
                    out.write(read(os.path.join(CGROUP, h, f)))
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write(str(pid))
    return made


def test_delete_force_spares_host_processes_in_a_shared_cgroup(lab):
    """Attack: a host `sleep` sits in /atk-shared-X in every hierarchy; a
    container is created with cgroupsPath /atk-shared-X; then `ps ID`,
    `kill --all ID KILL` and `delete --force ID`. Passes if create refuses
    (one line), or none of the three lists or kills the host process."""
    name = "atk-shared-" + uuid.uuid4().hex[:8]
    host = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL)
    made = []

    def cleanup():
        host.kill()
        host.wait()
        for d in made:
            wait_for(lambda: not os.path.isdir(d) or not read(os.path.join(d, "cgroup.procs")).split(), 5)
            remove_cgroup(d)
    lab.cleanups.append(cleanup)
    made += make_shared_cgroup(name, host.pid)
    where = read(f"/proc/{host.pid}/cgroup")
    assert all(l.endswith(":/" + name) for l in where.split()), where  # the host process is there

    cid = lab.id("shared")
    rc, err = lab.create(cid, lab.bundle(["/bin/sleep", "60"], edit=lambda c: c["linux"].update(cgroupsPath="/" + name)))
    if rc != 0:
        print("refused:", one_line(err))
        assert host.poll() is None, "create killed the host process"
        return
    problems = []
    r = lab.mc("ps", "--format", "json", cid)
    if r.returncode == 0 and host.pid in json.loads(r.stdout):
        problems.append(f"ps {cid} lists the host process {host.pid}: {r.stdout.strip()}")
    for step in (["kill", "--all", cid, "KILL"], ["delete", "--force", cid]):
        lab.mc(*step)
        # A SIGKILL takes effect at once; the bounded wait only lets it land.
        wait_for(lambda: host.poll() is not None, 1)
        if host.poll() is not None:
            problems.append(f"{' '.join(step[:2])} killed the host process")
            break
    assert not problems, "; ".join(problems)


def kill_runs():
    return int(os.environ.get("ATTACK_KILL_RUNS", "200"))


def test_killed_create_leaves_no_cgroup(lab):
    """Attack: SIGKILL the runtime 1-50 ms into `create` (half the delays
    in 1-10 ms, where a create of ~8 ms is in flight, half in 10-50 ms),
    then `delete --force ID`; ATTACK_KILL_RUNS times (default 200).
    Passes if no run leaves a cgroup directory named for its id in any
    hierarchy, a state directory, or a process of the container."""
    seed = int(os.environ.get("ATTACK_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    b = lab.bundle(["/bin/true"])
    leaks = []
    for i in range(kill_runs()):
        cid = "atk-kill-" + uuid.uuid4().hex[:8]
        delay = rng.uniform(0.001, 0.010) if i % 2 == 0 else rng.uniform(0.010, 0.050)
        p = subprocess.Popen(lab.cmd("create", "--bundle", b, cid), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=lab.environ)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        lab.mc("delete", "--force", cid)

        def left():
            out = [f"cgroup {d}" for d in cgroup_dirs(cid)]
            if os.path.exists(os.path.join(lab.state, cid)):
                out.append("state dir")
            out += [f"pid {p} in its cgroup" for p in procs_in_cgroup_named(cid)]
            out += [f"pid {p} runs the copy" for p in procs_running(lab.copy)]
            return out
        # A dying init may take a moment to go (cgroup directories do not
        # go by themselves); what is still there after that bounded wait is
        # a leak.
        wait_for(lambda: not procs_in_cgroup_named(cid) and not procs_running(lab.copy), 5)
        got = left()
        if got:
            leaks.append(f"run {i} (killed after {delay * 1000:.1f} ms): {cid}: {', '.join(got)}")
            # Clean by hand so that later runs start clean.
            for pid in procs_in_cgroup_named(cid) + procs_running(lab.copy):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            lab.ids.append(cid)  # the lab's teardown deletes it again
            wait_for(lambda: not procs_in_cgroup_named(cid), 5)
            for d in cgroup_dirs(cid):
                remove_cgroup(d)
            subprocess.run(["rm", "-rf", os.path.join(lab.state, cid)])
    assert not leaks, (f"{len(leaks)} of {kill_runs()} killed creates left something (ATTACK_SEED={seed}):\n"
                       + "\n".join(leaks[:20]))
