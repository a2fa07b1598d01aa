"""runtime-spec 1.3's process settings for real: process.scheduler,
process.ioPriority, process.execCPUAffinity, linux.memoryPolicy and
linux.personality, read back from inside the container by a small static
probe (sched_getattr, ioprio_get, sched_getaffinity, get_mempolicy,
personality, uname: busybox has no chrt, and no tool reads a memory policy),
built at test time into a copy of the busybox rootfs. For the init (run,
create/start) and for exec'd processes (their own process object, or the
config's), and the bad inputs: one line, exit 125, nothing left.

runc 1.1.5 and crun 1.8.1 here ignore all of these but crun's personality.
"""
import json
import os
import re
import subprocess
import time
import uuid

import pytest

from conftest import BIN, ROOTFS, mc, needs_root, probe_rootfs_with

pytestmark = needs_root()

PROBE_C = r"""
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

struct attr { uint32_t size, policy; uint64_t flags; int32_t nice; uint32_t priority;
              uint64_t runtime, deadline, period; uint32_t util_min, util_max; };

static void list(const char *key, const unsigned long *mask, int bits) {
    printf("%s ", key);
    int first = 1;
    for (int i = 0; i < bits; i++) {
        if (!(mask[i / 64] >> (i % 64) & 1)) continue;
        int j = i;
        while (j + 1 < bits && (mask[(j + 1) / 64] >> ((j + 1) % 64) & 1)) j++;
        printf(first ? "" : ",");
        if (j > i) printf("%d-%d", i, j); else printf("%d", i);
        first = 0;
        i = j;
    }
    printf(first ? "none\n" : "\n");
}

int main(void) {
    struct attr a; memset(&a, 0, sizeof a);
    if (syscall(SYS_sched_getattr, 0, &a, sizeof a, 0) != 0) { perror("sched_getattr"); return 1; }
    printf("policy %u\nnice %d\npriority %u\nsched_flags %llu\nruntime %llu\ndeadline %llu\nperiod %llu\n",
           a.policy, a.nice, a.priority, (unsigned long long)a.flags, (unsigned long long)a.runtime,
           (unsigned long long)a.deadline, (unsigned long long)a.period);
    long io = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
    printf("ioprio_class %ld\nioprio_level %ld\n", io >> 13, io & 0x1fff);
    unsigned long cpus[16]; memset(cpus, 0, sizeof cpus);
    if (syscall(SYS_sched_getaffinity, 0, sizeof cpus, cpus) < 0) { perror("sched_getaffinity"); return 1; }
    list("cpus", cpus, 1024);
    int mode = -1; unsigned long nodes[16]; memset(nodes, 0, sizeof nodes);
    if (syscall(SYS_get_mempolicy, &mode, nodes, 1024 + 1, 0, 0) != 0) { perror("get_mempolicy"); return 1; }
    printf("mempolicy_mode %d\nmempolicy_flags %d\n", mode & 0xff, mode & ~0xff);
    list("mempolicy_nodes", nodes, 1024);
    printf("personality %d\n", personality(0xffffffff));
    struct utsname u; uname(&u);
    printf("machine %s\n", u.machine);
    return 0;
}
"""

# <linux/sched.h>, <linux/ioprio.h>, <linux/mempolicy.h>
SCHED = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
RESET_ON_FORK = 0x01
IOPRIO = {"NONE": 0, "RT": 1, "BE": 2, "IDLE": 3}
MPOL = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3, "MPOL_LOCAL": 4}
MPOL_F_STATIC_NODES = 1 << 15
PER_LINUX32 = 0x0008


def online(path):
    with open(path) as f:
        return f.read().strip()


ALL_CPUS = online("/sys/devices/system/cpu/online")
TWO_CPUS = ALL_CPUS not in ("0", "")
NODES = online("/sys/devices/system/node/online") if os.path.exists("/sys/devices/system/node/online") else "0"


@pytest.fixture(scope="module")
def probe_rootfs(rootfs):
    """A copy of the busybox rootfs with /probe."""
    with probe_rootfs_with(rootfs, PROBE_C, "mc-spec13-probe-", ()) as copy:
        yield copy


def values(out):
    return dict(re.findall(r"^(\w+) (\S+)$", out, re.M))


def cgroup_dirs(cid):
    base = "/sys/fs/cgroup"
    return [os.path.join(base, h, cid) for h in os.listdir(base) if os.path.isdir(os.path.join(base, h, cid))]


class Env:
    """A private --root, bundles from `spec` (runc's default: no CAP_SYS_NICE,
    no user namespace) and a check that nothing is left."""

    def __init__(self, tmp_path, rootfs):
        self.tmp = tmp_path
        self.root = f"/run/minicontainer-test/{uuid.uuid4().hex[:12]}"
        self.rootfs = rootfs
        self.ids = []

    def id(self):
        cid = "s13-" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        return cid

    def mc(self, *args, **kw):
        return mc("--root", self.root, *args, **kw)

    def bundle(self, args, process=None, linux=None, resources=None):
        d = self.tmp / ("b-" + uuid.uuid4().hex[:6])
        d.mkdir()
        r = mc("spec", "--bundle", str(d))
        assert r.returncode == 0, r.stderr
        cfg = json.loads((d / "config.json").read_text())
        cfg["root"]["path"] = self.rootfs
        cfg["process"]["args"] = args
        cfg["process"]["terminal"] = False
        cfg["process"].update(process or {})
        cfg["linux"].update(linux or {})
        if resources:
            cfg["linux"].setdefault("resources", {}).update(resources)
        (d / "config.json").write_text(json.dumps(cfg))
        return str(d)

    def run(self, bundle):
        cid = self.id()
        return self.mc("run", "--bundle", bundle, cid)

    def create(self, bundle):
        """create with stdio in files (the init keeps create's stdio); the
        id and the file of its stdout."""
        cid = self.id()
        out, err = self.tmp / f"{cid}.out", self.tmp / f"{cid}.err"
        with open(out, "w") as o, open(err, "w") as e:
            r = subprocess.run([BIN, "--root", self.root, "create", "--bundle", bundle, cid],
                               stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=30)
        assert r.returncode == 0, err.read_text()
        return cid, out

    def start_sleeper(self, bundle):
        """create + start of a container whose init sleeps; its id."""
        cid, _ = self.create(bundle)
        r = self.mc("start", cid)
        assert r.returncode == 0, r.stderr
        return cid

    def state_left(self):
        return [e for e in os.listdir(self.root) if e != "@seccomp"] if os.path.isdir(self.root) else []

    def assert_nothing_left(self):
        assert self.state_left() == [], self.state_left()
        cg = [d for cid in self.ids for d in cgroup_dirs(cid)]
        assert cg == [], f"cgroups left: {cg}"

    def close(self):
        for cid in self.ids:
            self.mc("delete", "--force", cid)
        try:
            self.assert_nothing_left()
        finally:
            subprocess.run(["rm", "-rf", self.root])
            try:
                os.rmdir(os.path.dirname(self.root))
            except OSError:
                pass


@pytest.fixture
def env(tmp_path, binary, probe_rootfs):
    e = Env(tmp_path, probe_rootfs)
    yield e
    e.close()


def one_line_error(r, *fragments, code=125):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minicontainer: "), r.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def probe_exec(env, cid, process=None):
    """exec of /probe in cid: with a process.json of its own when `process` is given."""
    if process is None:
        r = env.mc("exec", cid, "/probe")
    else:
        p = {"user": {"uid": 0, "gid": 0}, "args": ["/probe"], "cwd": "/", "env": ["PATH=/bin"]}
        p.update(process)
        path = env.tmp / ("process-" + uuid.uuid4().hex[:6] + ".json")
        path.write_text(json.dumps(p))
        r = env.mc("exec", "--process", str(path), cid)
    assert r.returncode == 0, r.stderr
    return values(r.stdout)


# MARK: the init

def test_init_gets_scheduler_ioprio_mempolicy_personality_not_exec_affinity(env):
    b = env.bundle(["/probe"],
                   process={"scheduler": {"policy": "SCHED_BATCH", "nice": 7},
                            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6},
                            # exec's only: the init keeps every CPU.
                            "execCPUAffinity": {"initial": "0", "final": "0"}},
                   linux={"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]},
                          "personality": {"domain": "LINUX32"}})
    r = env.run(b)
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert (v["policy"], v["nice"], v["priority"]) == (str(SCHED["SCHED_BATCH"]), "7", "0"), r.stdout
    assert (v["ioprio_class"], v["ioprio_level"]) == (str(IOPRIO["BE"]), "6"), r.stdout
    assert v["cpus"] == ALL_CPUS, r.stdout
    assert v["mempolicy_mode"] == str(MPOL["MPOL_BIND"]) and v["mempolicy_nodes"] == "0", r.stdout
    assert v["mempolicy_flags"] == str(MPOL_F_STATIC_NODES), r.stdout
    assert v["personality"] == str(PER_LINUX32) and v["machine"] == "i686", r.stdout


def test_defaults_change_nothing(env):
    """Without the settings the process has the kernel's defaults (the probe reads them right)."""
    r = env.run(env.bundle(["/probe"]))
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert (v["policy"], v["nice"], v["ioprio_class"]) == ("0", "0", "0"), r.stdout
    assert v["mempolicy_mode"] == "0" and v["mempolicy_nodes"] == "none", r.stdout
    assert v["personality"] == "0" and v["machine"] == os.uname().machine, r.stdout


def test_realtime_policy_is_set_before_capabilities_are_dropped(env):
    """SCHED_FIFO needs CAP_SYS_NICE, which the process (uid 1000, runc's three
    capabilities) has not: set while the init still has it. On cgroup v1 with
    realtime group scheduling the container's cpu cgroup needs realtime runtime."""
    b = env.bundle(["/probe"],
                   process={"scheduler": {"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
                            "ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 2},
                            "user": {"uid": 1000, "gid": 1000}},
                   resources={"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}})
    r = env.run(b)
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert (v["policy"], v["priority"]) == (str(SCHED["SCHED_FIFO"]), "10"), r.stdout
    assert int(v["sched_flags"]) & RESET_ON_FORK, r.stdout
    assert (v["ioprio_class"], v["ioprio_level"]) == (str(IOPRIO["RT"]), "2"), r.stdout


def test_deadline_policy(env):
    b = env.bundle(["/probe"], process={"scheduler": {"policy": "SCHED_DEADLINE", "runtime": 1000000,
                                                      "deadline": 10000000, "period": 10000000}})
    r = env.run(b)
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert v["policy"] == str(SCHED["SCHED_DEADLINE"]), r.stdout
    assert (v["runtime"], v["deadline"], v["period"]) == ("1000000", "10000000", "10000000"), r.stdout


def test_create_start_init_and_sh_children_inherit(env):
    """create/start (not run): the init is sh; a child it forks inherits the
    settings (read through busybox: ionice, /proc/self/sched, uname)."""
    b = env.bundle(["/bin/sh", "-c", "grep -E '^(policy|prio) ' /proc/self/sched; ionice; uname -m; sleep 1000"],
                   process={"scheduler": {"policy": "SCHED_IDLE"},
                            "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}},
                   linux={"personality": {"domain": "LINUX32"}})
    cid, out = env.create(b)
    assert env.mc("start", cid).returncode == 0
    end = time.time() + 10
    while time.time() < end and "i686" not in out.read_text():
        time.sleep(0.05)
    text = out.read_text()
    assert re.search(r"^policy\s+:\s+5$", text, re.M), text
    assert "idle" in text and "i686" in text, text


# MARK: exec

@pytest.mark.skipif(not TWO_CPUS, reason="needs two CPUs")
def test_exec_process_of_its_own(env):
    """exec --process: its scheduler, I/O priority and both affinities; the
    container's memory policy and personality, as runc."""
    cid = env.start_sleeper(env.bundle(["/bin/sleep", "1000"],
                                       linux={"memoryPolicy": {"mode": "MPOL_PREFERRED", "nodes": "0"},
                                              "personality": {"domain": "LINUX32"}}))
    v = probe_exec(env, cid, {"scheduler": {"policy": "SCHED_OTHER", "nice": 12},
                              "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 7},
                              "execCPUAffinity": {"initial": "0", "final": "1"}})
    assert (v["policy"], v["nice"]) == ("0", "12"), v
    assert v["ioprio_class"] == str(IOPRIO["IDLE"]), v
    assert v["cpus"] == "1", v
    assert v["mempolicy_mode"] == str(MPOL["MPOL_PREFERRED"]) and v["mempolicy_nodes"] == "0", v
    assert v["machine"] == "i686", v
    # initial alone is what the process keeps: the runtime's own CPUs while it clones.
    assert probe_exec(env, cid, {"execCPUAffinity": {"initial": "1"}})["cpus"] == "1"
    assert probe_exec(env, cid, {"execCPUAffinity": {"initial": "1", "final": "0-1"}})["cpus"] == "0-1"
    # The init is untouched.
    status = open(f"/proc/{json.loads(env.mc('state', cid).stdout)['pid']}/status").read()
    assert re.search(r"^Cpus_allowed_list:\t" + re.escape(ALL_CPUS) + "$", status, re.M), status


@pytest.mark.skipif(not TWO_CPUS, reason="needs two CPUs")
def test_exec_takes_the_configs_settings_by_default(env):
    """exec CMD and exec --process without them: the config's scheduler, I/O
    priority and execCPUAffinity (which the init itself does not take)."""
    b = env.bundle(["/bin/sleep", "1000"],
                   process={"scheduler": {"policy": "SCHED_BATCH", "nice": 3},
                            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 1},
                            "execCPUAffinity": {"final": "1"}})
    cid = env.start_sleeper(b)
    for v in (probe_exec(env, cid), probe_exec(env, cid, {})):
        assert (v["policy"], v["nice"]) == (str(SCHED["SCHED_BATCH"]), "3"), v
        assert (v["ioprio_class"], v["ioprio_level"]) == (str(IOPRIO["BE"]), "1"), v
        assert v["cpus"] == "1", v
    # Its own scheduler wins.
    v = probe_exec(env, cid, {"scheduler": {"policy": "SCHED_OTHER"}})
    assert (v["policy"], v["nice"]) == ("0", "0"), v


# MARK: bad input

BAD = [
    ({"process": {"scheduler": {"policy": "SCHED_BOGUS"}}}, "process.scheduler.policy: unknown policy \"SCHED_BOGUS\""),
    ({"process": {"scheduler": {"policy": "SCHED_FIFO", "priority": 100}}}, "process.scheduler.priority: SCHED_FIFO needs a priority in 1...99, not 100"),
    ({"process": {"scheduler": {"policy": "SCHED_OTHER", "nice": 20}}}, "process.scheduler.nice: 20 is outside -20...19"),
    ({"process": {"scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_X"]}}}, "process.scheduler.flags[0]: unknown flag"),
    ({"process": {"scheduler": {"policy": "SCHED_OTHER", "runtime": 5}}}, "process.scheduler: only SCHED_DEADLINE takes"),
    ({"process": {"ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 8}}}, "process.ioPriority.priority: 8 is outside 0...7"),
    ({"process": {"ioPriority": {"class": "RT", "priority": 0}}}, "process.ioPriority.class: unknown class \"RT\""),
    ({"process": {"ioPriority": {"class": "IOPRIO_CLASS_BE"}}}, "config.json: process.ioPriority.priority: required property missing"),
    ({"process": {"execCPUAffinity": {"final": "1-0"}}}, "process.execCPUAffinity.final: range \"1-0\" in \"1-0\" runs backwards"),
    ({"process": {"execCPUAffinity": {"initial": "0,x"}}}, "process.execCPUAffinity.initial: \"x\" in \"0,x\" is not a number"),
    ({"linux": {"memoryPolicy": {"mode": "MPOL_DEFAULT", "nodes": "0"}}}, "linux.memoryPolicy.nodes: MPOL_DEFAULT takes no nodes"),
    ({"linux": {"memoryPolicy": {"mode": "MPOL_BIND"}}}, "linux.memoryPolicy.nodes: MPOL_BIND needs at least one node"),
    ({"linux": {"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0",
                                 "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}}}, "exclude each other"),
    ({"linux": {"memoryPolicy": {"mode": "MPOL_SOMETIMES"}}}, "linux.memoryPolicy.mode: unknown mode"),
    ({"linux": {"personality": {"domain": "LINUX64"}}}, "linux.personality.domain: must be LINUX or LINUX32"),
    ({"linux": {"personality": {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}}}, "linux.personality.flags[0]: unsupported flag"),
]


@pytest.mark.parametrize("edit,message", BAD, ids=[m.split(":")[0] + "-" + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_config_is_one_line_and_leaves_nothing(env, edit, message):
    b = env.bundle(["/probe"], process=edit.get("process"), linux=edit.get("linux"))
    cid = env.id()
    r = env.mc("create", "--bundle", b, cid)
    one_line_error(r, message)
    env.assert_nothing_left()


@pytest.mark.parametrize("edit,message", [
    # Names the kernel refuses at create: no mainline kernel has SCHED_ISO; no node 63.
    ({"process": {"scheduler": {"policy": "SCHED_ISO"}}}, "scheduler: sched_setattr SCHED_ISO: invalid argument"),
    ({"linux": {"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "63"}}}, "memory policy: set_mempolicy MPOL_BIND nodes \"63\""),
], ids=["sched-iso", "no-such-node"])
def test_kernel_refusal_is_a_clean_create_error(env, edit, message):
    b = env.bundle(["/probe"], process=edit.get("process"), linux=edit.get("linux"))
    cid = env.id()
    r = env.mc("create", "--bundle", b, cid)
    one_line_error(r, message)
    env.assert_nothing_left()


def test_bad_exec_process_is_one_line_and_the_container_lives_on(env):
    cid = env.start_sleeper(env.bundle(["/bin/sleep", "1000"]))
    for process, message in [({"scheduler": {"policy": "SCHED_RR"}}, "process.scheduler.priority: SCHED_RR needs a priority"),
                             ({"execCPUAffinity": {"final": "0-"}}, "process.execCPUAffinity.final:"),
                             ({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": -1}}, "process.ioPriority.priority")]:
        p = {"user": {"uid": 0, "gid": 0}, "args": ["/probe"], "cwd": "/", **process}
        path = env.tmp / "bad-process.json"
        path.write_text(json.dumps(p))
        one_line_error(env.mc("exec", "--process", str(path), cid), message)
    # Refused by the kernel in the exec'd child: no node 63; no exec'd process is left.
    p = {"user": {"uid": 0, "gid": 0}, "args": ["/probe"], "cwd": "/", "execCPUAffinity": {"final": "1000"}}
    path = env.tmp / "refused.json"
    path.write_text(json.dumps(p))
    one_line_error(env.mc("exec", "--process", str(path), cid), "cpu affinity: sched_setaffinity final \"1000\"")
    r = env.mc("ps", cid)
    assert r.returncode == 0 and "probe" not in r.stdout, r.stdout
    assert env.mc("state", cid).returncode == 0
    assert '"running"' in env.mc("state", cid).stdout
