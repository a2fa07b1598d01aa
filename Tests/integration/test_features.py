"""`features` tells the truth (issue 17, item 3): each list it prints is
checked against what create does with it, in real containers, and the
host-dependent answers against this host. Capabilities the runtime cannot
grant are warned about and left out (item 4, runtime-spec 1.3).
"""
import json
import os
import subprocess

import pytest

from attackkit import lab  # noqa: F401  (a fixture)
from conftest import BIN, CAPS

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture(scope="module")
def features():
    r = subprocess.run([BIN, "features"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def own_status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1], 16)
    raise KeyError(key)


def caps_of(out):
    return {k: int(v.strip(), 16) for k, _, v in (line.partition(":") for line in out.splitlines())
            if k.startswith("Cap")}


def test_versions_and_shape(features):
    assert features["ociVersionMin"] == "1.0.0"
    assert features["ociVersionMax"] == "1.3.0"
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout
    assert "spec: 1.3.0" in version
    assert set(features) <= {"ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations",
                             "potentiallyUnsafeConfigAnnotations"}
    assert features["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                                 "poststop"]
    assert {"rro", "idmap", "ridmap"} <= set(features["mountOptions"])
    linux = features["linux"]
    assert linux["mountExtensions"] == {"idmap": {"enabled": True}}
    assert linux["netDevices"] == {"enabled": True}
    assert set(linux["memoryPolicy"]["modes"]) == {"MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE",
                                                   "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED",
                                                   "MPOL_PREFERRED_MANY", "MPOL_LOCAL"}
    assert linux["memoryPolicy"]["flags"] == ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES",
                                              "MPOL_F_STATIC_NODES"]
    assert linux["intelRdt"] == {"enabled": True, "schemata": True, "monitoring": True}
    assert features["potentiallyUnsafeConfigAnnotations"] == ["org.minicontainer."]
    assert features["annotations"]["io.github.seccomp.libseccomp.version"].count(".") == 2


def test_no_arguments(features):
    r = subprocess.run([BIN, "features", "extra"], capture_output=True, text=True)
    assert r.returncode != 0 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "features: takes no arguments" in r.stderr


@pytest.mark.parametrize("version", ["ociVersionMin", "ociVersionMax"])
def test_both_ends_of_the_version_range_run(lab, features, version):
    def edit(c):
        c["ociVersion"] = features[version]
    cid = lab.id("ver")
    rc, err, out = lab.run_to_end(cid, lab.bundle(["/bin/echo", "ran"], edit=edit))
    assert rc == 0, err
    assert "ran" in out


def test_every_mount_option_is_carried_out(lab, features):
    """One container with a mount per advertised option: tmpfs mounts for
    most, bind mounts of a host directory for the bind-only ones. It must
    start, and each mount must be there with the option's effect where
    mountinfo shows one."""
    host_dir = os.path.join(lab.dir, "bindsrc")
    os.makedirs(host_dir)
    open(os.path.join(host_dir, "marker"), "w").close()
    mounts, where = [], {}
    for i, opt in enumerate(features["mountOptions"]):
        if opt in ("idmap", "ridmap"):
            continue  # need a user namespace: test_idmap.py
        dest = f"/mnt/o{i}"
        if opt in ("bind", "rbind"):
            m = {"destination": dest, "type": "bind", "source": host_dir, "options": ["bind", opt]}
        else:
            m = {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": [opt]}
        if opt == "remount":
            continue  # remounts an existing mount point: a mount of its own here would be nothing to remount
        mounts.append(m)
        where[dest] = opt

    def edit(c):
        c["mounts"] += mounts
    cid = lab.id("opts")
    rc, err, out = lab.run_to_end(cid, lab.bundle(["/bin/cat", "/proc/self/mountinfo"], edit=edit))
    assert rc == 0, err
    seen = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) > 5 and f[4] in where:
            seen[f[4]] = f[5].split(",")
    missing = sorted(where[d] for d in where if d not in seen)
    assert not missing, f"mounts missing for options {missing}"
    for d, opt in where.items():
        if opt in ("ro", "rro"):
            assert "ro" in seen[d], (opt, seen[d])
        if opt in ("noexec", "rnoexec", "nosuid", "rnosuid", "nodev", "rnodev"):
            assert opt.lstrip("r") in seen[d] or opt[1:] in seen[d], (opt, seen[d])


def test_an_option_not_advertised_is_not_taken_as_one(lab, features):
    """ "rnoexecx" is no option of ours: it reaches tmpfs as data, which refuses it."""
    assert "rnoexecx" not in features["mountOptions"]

    def edit(c):
        c["mounts"].append({"destination": "/mnt/x", "type": "tmpfs", "source": "tmpfs", "options": ["rnoexecx"]})
    cid = lab.id("badopt")
    rc, err = lab.create(cid, lab.bundle(["/bin/true"], edit=edit))
    assert rc != 0
    assert "/mnt/x" in err
    assert lab.leftovers([cid]) == []


def test_every_namespace_can_be_made(lab, features):
    def edit(c):
        c["linux"]["namespaces"] = [{"type": t} for t in features["linux"]["namespaces"]]
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cid = lab.id("ns")
    rc, err, out = lab.run_to_end(cid, lab.bundle(["/bin/sh", "-c", "ls -l /proc/self/ns/ | wc -l; echo ok"],
                                                  edit=edit))
    assert rc == 0, err
    assert "ok" in out


def test_every_capability_is_recognized_and_the_ungrantable_left_out(lab, features):
    """All advertised capabilities in every set: create succeeds; the ones
    this runtime's bounding set lacks (CAP_SYS_RESOURCE on this machine) are
    named in one warning and absent; the rest are held."""
    names = features["linux"]["capabilities"]
    assert names == ["CAP_" + c for c in CAPS]
    bounding = own_status("CapBnd")
    lacking = [n for i, n in enumerate(names) if not bounding & (1 << i)]

    def edit(c):
        c["process"]["capabilities"] = {k: list(names) for k in ("bounding", "effective", "permitted",
                                                                 "inheritable", "ambient")}
    cid = lab.id("caps")
    rc, err, out = lab.run_to_end(cid, lab.bundle(["/bin/grep", "Cap", "/proc/self/status"], edit=edit))
    assert rc == 0, err
    got = caps_of(out)
    assert got["CapBnd"] == bounding
    assert got["CapEff"] == bounding
    if lacking:
        warnings = [line for line in err.splitlines() if "left out" in line]
        assert len(warnings) == 1, err
        assert all(n in warnings[0] for n in lacking), warnings
    else:
        assert "left out" not in err


def test_a_capability_missing_from_the_bounding_set_is_left_out_with_a_warning(lab):
    """runtime-spec 1.3: a capability that cannot be granted is a warning,
    not a failure (runc 1.1.5 and crun fail with "operation not
    permitted"). Also for exec."""
    bounding = own_status("CapBnd")
    lacking = [c for i, c in enumerate(CAPS) if not bounding & (1 << i)]
    if not lacking:
        pytest.skip("this host's bounding set has every capability")
    name = "CAP_" + lacking[0]

    def edit(c):
        for k in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][k].append(name)
    cid = lab.id("nores")
    rc, err = lab.create(cid, lab.bundle(["/bin/sleep", "60"], edit=edit))
    assert rc == 0, err
    assert f"left out: [{name}]" in err
    lab.start(cid)
    r = lab.mc("exec", "--cap", name, cid, "grep", "CapEff", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    assert f"left out: [{name}]" in r.stderr
    assert not caps_of(r.stdout)["CapEff"] & (1 << CAPS.index(lacking[0]))
    lab.mc("kill", cid, "KILL")
    lab.wait_stopped(cid)
    assert lab.mc("delete", cid).returncode == 0


def test_seccomp_vocabulary_is_accepted(lab, features):
    """A profile using every advertised action and operator, and every
    supported flag, loads; each known flag that is not supported is refused
    by name."""
    sc = features["linux"]["seccomp"]
    assert "SCMP_ACT_NOTIFY" not in sc["actions"]  # needs a listener, which we lack
    assert set(sc["supportedFlags"]) <= set(sc["knownFlags"])
    # Syscalls busybox's echo never makes, one per action.
    spare = ["acct", "swapon", "swapoff", "kexec_load", "init_module", "delete_module", "pivot_root", "reboot",
             "settimeofday", "clock_settime"]
    rules = [{"names": [spare[i]], "action": a} for i, a in enumerate(sc["actions"])]
    rules += [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 0xffffffff, "valueTwo": 0xffffffff if op == "SCMP_CMP_MASKED_EQ" else 0,
                         "op": op}]} for op in sc["operators"]]

    def profile(flags):
        def edit(c):
            c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                                     "flags": flags, "syscalls": rules}
        return edit
    cid = lab.id("scmp")
    rc, err, out = lab.run_to_end(cid, lab.bundle(["/bin/echo", "filtered"], edit=profile(sc["supportedFlags"])))
    assert rc == 0, err
    assert "filtered" in out
    for flag in set(sc["knownFlags"]) - set(sc["supportedFlags"]):
        cid = lab.id("scflag")
        rc, err = lab.create(cid, lab.bundle(["/bin/true"], edit=profile([flag])))
        assert rc != 0 and flag in err, err
        assert lab.leftovers([cid]) == []


@pytest.mark.parametrize("mode", ["MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
                                  "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"])
def test_every_memory_policy_mode_is_applied(lab, features, mode):
    """Each advertised mode on node 0 (or none where the mode takes none),
    read back from /proc/self/numa_maps' first policy field."""
    assert mode in features["linux"]["memoryPolicy"]["modes"]

    def edit(c):
        c["linux"]["memoryPolicy"] = {"mode": mode}
        if mode not in ("MPOL_DEFAULT", "MPOL_LOCAL"):
            c["linux"]["memoryPolicy"]["nodes"] = "0"
    cid = lab.id("mpol")
    rc, err, out = lab.run_to_end(cid, lab.bundle(["/bin/sh", "-c", "head -1 /proc/self/numa_maps"], edit=edit))
    assert rc == 0, err
    policy = out.split(" ", 1)[1]
    expect = {"MPOL_DEFAULT": "default", "MPOL_BIND": "bind:0", "MPOL_INTERLEAVE": "interleave:0",
              "MPOL_WEIGHTED_INTERLEAVE": "weighted interleave:0", "MPOL_PREFERRED": "prefer:0",
              "MPOL_PREFERRED_MANY": "prefer (many):0", "MPOL_LOCAL": "local"}[mode]
    assert policy.startswith(expect + " "), (mode, out)


def test_lsm_answers_match_what_create_does(lab, features):
    """apparmor/selinux "enabled" is true only where create applies a
    profile: on a host without the LSM it is false and create refuses one."""
    for lsm, field, value in (("apparmor", "apparmorProfile", "unconfined"), ("selinux", "selinuxLabel",
                                                                           "system_u:system_r:container_t:s0")):
        enabled = features["linux"][lsm]["enabled"]

        def edit(c):
            c["process"][field] = value
        cid = lab.id(lsm)
        rc, err = lab.create(cid, lab.bundle(["/bin/true"], edit=edit))
        if enabled:
            assert rc == 0, err
            lab.mc("delete", "--force", cid)
        else:
            assert rc != 0 and "not enabled on this host" in err, err
        assert lab.leftovers([cid]) == []


def test_systemd_answers(features):
    assert features["linux"]["cgroup"]["systemd"] is True
    assert features["linux"]["cgroup"]["systemdUser"] is False
    assert features["linux"]["cgroup"]["v1"] and features["linux"]["cgroup"]["v2"]
    systemd = os.path.isdir("/run/systemd/system") and not os.path.islink("/run/systemd/system")
    note = features["annotations"]["org.minicontainer.cgroup.systemd"]
    assert ("StartTransientUnit" in note) is systemd


FAKE_SYSTEMD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fakes", "fake_systemd.py")


def under_fake_systemd(lab, commands):
    """Runs shell `commands` in a mount namespace of the test's own whose
    /run is a tmpfs with /run/systemd/system (so systemd "runs") and a fake
    systemd on /run/systemd/private; returns (result, recorded calls)."""
    record = os.path.join(lab.dir, "systemd-calls.jsonl")
    script = ("mount -t tmpfs mcfake /run && mkdir -p /run/systemd/system && "
              f"{{ python3 {FAKE_SYSTEMD} /run/systemd/private {record} >/dev/null & fake=$!; }} && "
              "for i in $(seq 100); do [ -S /run/systemd/private ] && break; sleep 0.05; done; "
              f"{commands}; rc=$?; kill $fake; wait $fake; exit $rc")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, env=lab.environ, timeout=60)
    calls = [json.loads(line) for line in open(record)] if os.path.exists(record) else []
    return r, calls


@pytest.fixture
def slice_name():
    """A slice of the test's own, removed from every hierarchy afterwards."""
    name = "mctest" + os.urandom(3).hex() + ".slice"
    yield name
    for h in os.listdir("/sys/fs/cgroup"):
        d = os.path.join("/sys/fs/cgroup", h, name)
        if os.path.isdir(d) and not os.path.islink(d):
            os.rmdir(d)


def test_where_systemd_runs_create_asks_it_for_a_scope(lab, slice_name):
    """--systemd-cgroup with "slice:prefix:name" where systemd runs: create
    calls StartTransientUnit (read back by jeepney, another D-Bus
    implementation) for prefix-name.scope in the slice, with the init's pid,
    Delegate and mode "fail"; the container runs in the cgroup at systemd's
    path; delete removes it."""
    cid = lab.id("sd")

    def edit(c):
        c["linux"]["cgroupsPath"] = f"{slice_name}:mc:{cid}"
        # No cgroup namespace: /proc/self/cgroup shows the host's path.
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "cgroup"]
    bundle = lab.bundle(["/bin/sh", "-c", "cat /proc/self/cgroup"], edit=edit)
    r, calls = under_fake_systemd(lab, " && ".join([
        " ".join(lab.cmd("--systemd-cgroup", "run", "--bundle", bundle, cid)),
        " ".join(lab.cmd("features"))]))
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr, r.stderr
    assert calls[0] == {"auth": "AUTH EXTERNAL 30"}  # uid "0", hex-encoded
    [start] = [c for c in calls if c.get("member") == "StartTransientUnit"]
    assert start["destination"] == "org.freedesktop.systemd1"
    assert start["path"] == "/org/freedesktop/systemd1"
    assert start["interface"] == "org.freedesktop.systemd1.Manager"
    assert start["signature"] == "ssa(sv)a(sa(sv))"
    unit, mode, props, aux = start["body"]
    assert (unit, mode, aux) == (f"mc-{cid}.scope", "fail", [])
    props = {k: v[1] for k, v in props}
    assert props["Slice"] == slice_name
    assert props["Delegate"] is True and props["DefaultDependencies"] is False
    assert len(props["PIDs"]) == 1 and props["PIDs"][0] > 1
    assert f"/{slice_name}/mc-{cid}.scope" in r.stdout
    doc = json.loads(r.stdout[r.stdout.index("{"):])
    assert "StartTransientUnit" in doc["annotations"]["org.minicontainer.cgroup.systemd"]
    assert lab.leftovers([cid]) == []  # run deleted it


def test_a_systemd_that_refuses_the_scope_is_a_warning(lab, slice_name):
    cid = lab.id("sdrefuse")

    def edit(c):
        c["linux"]["cgroupsPath"] = f"{slice_name}:refuse:{cid}"
    bundle = lab.bundle(["/bin/true"], edit=edit)
    r, calls = under_fake_systemd(lab, " ".join(lab.cmd("--systemd-cgroup", "run", "--bundle", bundle, cid)))
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, r.stderr
    assert f"refuse-{cid}.scope" in warnings[0] and "UnitExists" in warnings[0]
    assert lab.leftovers([cid]) == []


def test_without_the_flag_systemd_is_not_asked(lab, slice_name):
    cid = lab.id("sdno")

    def edit(c):
        c["linux"]["cgroupsPath"] = f"{slice_name}:mc:{cid}"
    r, calls = under_fake_systemd(lab, " ".join(lab.cmd("run", "--bundle", lab.bundle(["/bin/true"], edit=edit), cid)))
    assert r.returncode == 0, r.stderr
    assert calls == []
    assert lab.leftovers([cid]) == []
