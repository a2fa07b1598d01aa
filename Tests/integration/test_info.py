"""The read-side commands scripts use (issue 16, items 2 and 5): --format Go
templates on ps, images and inspect (and inspect -f), ps --filter, inspect
with Docker's keys, and stats, top, port, wait, rename. Each test has its own
--root and data directory (test_run's Env); teardown checks nothing is left.
"""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

import imagekit as ik
from conftest import BIN, ROOTFS, needs_root
from test_run import Env, env, one_line_error, wait_for  # noqa: F401 (env is a fixture)

pytestmark = needs_root()

ZERO = "0001-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """An image of the busybox rootfs with two labels (and one of ours,
    which must never become a label)."""
    root = tmp_path_factory.mktemp("info-image")
    lay = ik.busybox_layout(str(root), ROOTFS)
    lay.config("base", "--config.label", "tier=web", "--config.label", "team=blue",
               "--config.label", "org.minicontainer.network=host")
    archive = ik.to_docker_archive(lay, "base", str(root / "lab.tar"), "mc-test/lab:1")
    yield archive
    shutil.rmtree(str(root), ignore_errors=True)


def ok(env, *args, **kw):
    r = env.mc(*args, **kw)
    assert r.returncode == 0, (args, r.returncode, r.stderr)
    return r.stdout


def run_d(env, *args):
    return ok(env, "run", "-d", *args).strip()


def cgroup_file(cid, controller, name):
    with open(f"/sys/fs/cgroup/{controller}/minicontainer/{cid}/{name}") as f:
        return f.read().strip()


def test_format_used_from_a_shell_script(env):
    web = run_d(env, "--name", "web", "--network", "none", "--rootfs", ROOTFS, "sleep", "60")
    run_d(env, "--name", "db", "--network", "none", "--rootfs", ROOTFS, "sleep", "60")
    ok(env, "run", "--name", "done", "--network", "none", "--rootfs", ROOTFS, "true")
    script = r"""
set -e
mc() { "$BIN" --root "$ROOT" "$@"; }
mc ps --format '{{.Names}} {{.Status}}' | sort | while read name status; do
    pid=$(mc inspect -f '{{.State.Pid}}' "$name")
    echo "$name|$status|$pid|$(tr '\0' ' ' < /proc/$pid/cmdline)"
done
"""
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                       env=dict(env.environ, BIN=BIN, ROOT=env.root))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [l.split("|")[0] for l in lines] == ["db", "web"], r.stdout  # not the exited one
    for l in lines:
        name, status, pid, cmdline = l.split("|")
        assert status.startswith("Up "), l
        assert cmdline == "sleep 60 ", l
        assert int(pid) == json.loads(ok(env, "state", name))["pid"]
    assert ok(env, "inspect", "-f", "{{.Id}} {{.Name}} {{.State.Status}}", "web") == f"{web} web running\n"
    assert ok(env, "inspect", "--format", "{{.State.ExitCode}} {{.State.Status}}", "done") == "0 exited\n"
    # One line per container, in the order given.
    assert ok(env, "inspect", "-f", "{{.Name}}", "done", "web") == "done\nweb\n"


def test_table_json_and_errors(env, labelled):
    ok(env, "load", "-i", labelled)
    a = run_d(env, "--name", "alpha", "--network", "none", "mc-test/lab:1", "sleep", "60")
    b = run_d(env, "--name", "a-much-longer-name", "--network", "none", "--rootfs", ROOTFS, "sleep", "60")
    out = ok(env, "ps", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.State}}\\t{{.Image}}")
    # podman's columns: at least 12 wide, two spaces after the widest cell.
    # (Both were created in the same second: either may come first.)
    lines = out.splitlines()
    assert [lines[0]] + sorted(lines[1:], key=lambda l: l[14:]) == [
        "CONTAINER ID  NAMES               STATE       IMAGE",
        f"{b[:12]}  a-much-longer-name  running     ",
        f"{a[:12]}  alpha               running     mc-test/lab:1",
    ], out
    assert ok(env, "ps", "--format", "table {{.Names}} {{.State}}") == ok(env, "ps", "--format", "table {{.Names}}\t{{.State}}")
    rows = sorted((json.loads(l) for l in ok(env, "ps", "--format", "{{json .}}").splitlines()), key=lambda r: r["Names"])
    assert [(r["Id"], r["Names"], r["State"]) for r in rows] == [(b, "a-much-longer-name", "running"), (a, "alpha", "running")]
    assert rows[1]["Labels"] == {"team": "blue", "tier": "web"} and rows[0]["Labels"] == {}
    assert ok(env, "ps", "--format", '{{index .Labels "tier"}}|{{.Labels}}|{{json .Labels}}', "-f", "name=alpha") == \
        'web|map[team:blue tier:web]|{"team":"blue","tier":"web"}\n'
    assert sorted(ok(env, "ps", "--format", "{{.Command}} {{if .Labels}}labelled{{else}}plain{{end}}").splitlines()) == \
        ["sleep 60 labelled", "sleep 60 plain"]
    # The named formats are unchanged.
    assert sorted(c["name"] for c in env.ps()) == ["a-much-longer-name", "alpha"]
    assert ok(env, "ps").splitlines()[0].split() == ["CONTAINER", "ID", "NAME", "COMMAND", "STATUS", "CREATED"]
    # inspect: -f with json, and the image's labels (never one of ours) in Config.Labels.
    cfg = json.loads(ok(env, "inspect", "-f", "{{json .Config}}", "alpha"))
    assert cfg["Labels"] == {"team": "blue", "tier": "web"} and cfg["Cmd"] == ["sleep", "60"]
    assert cfg["Annotations"]["org.minicontainer.network"] == "none"
    # images and image inspect.
    assert ok(env, "images", "--format", "{{.Repository}}:{{.Tag}}") == "mc-test/lab:1\n"
    img = json.loads(ok(env, "image", "inspect", "mc-test/lab:1"))[0]
    assert ok(env, "images", "--format", "table {{.ID}}\t{{.Tag}}").splitlines() == ["IMAGE ID      TAG", f"{img['Id'][7:19]}  1"]
    assert ok(env, "image", "inspect", "-f", "{{.Id}} {{index .Config.Labels \"tier\"}}", "mc-test/lab:1") == f"{img['Id']} web\n"
    assert ok(env, "inspect", "-f", "{{.Image}} {{.ImageName}}", "alpha") == f"{img['Id']} mc-test/lab:1\n"
    # Unknown fields and bad templates: podman's error, one line, 125, nothing on stdout.
    for args, msg in [
        (("ps", "--format", "{{.Bogus}}"), 'template: ps:1:2: executing "ps" at <.Bogus>: can\'t evaluate field Bogus in type container'),
        (("ps", "--format", "{{.State.Pid}}"), "can't evaluate field Pid in type string"),
        (("inspect", "-f", "{{.State.Bogus}}", "alpha"), "can't evaluate field Bogus in type State"),
        (("images", "--format", "{{.Nope}}"), "can't evaluate field Nope in type image"),
        (("image", "inspect", "-f", "{{.Nope}}", "mc-test/lab:1"), "can't evaluate field Nope"),
        (("ps", "--format", "{{.Names"), "template: ps:1: unclosed action"),
        (("ps", "--format", "{{nosuch .Names}}"), 'function "nosuch" not defined'),
        (("ps", "--format", "yaml"), "--format must be table, json or a Go template"),
    ]:
        r = env.mc(*args)
        one_line_error(r)
        assert msg in r.stderr and r.stdout == "", (args, r.stderr)
    ok(env, "rm", "-f", "alpha", "a-much-longer-name")
    ok(env, "rmi", "mc-test/lab:1")


def names(env, *filters, all=True):
    args = ["ps", "--format", "{{.Names}}"] + (["-a"] if all else [])
    for f in filters:
        args += ["--filter", f]
    return sorted(ok(env, *args).split())


def test_filters(env, labelled):
    ok(env, "load", "-i", labelled)
    img = json.loads(ok(env, "image", "inspect", "mc-test/lab:1"))[0]["Id"]
    web1 = run_d(env, "--name", "web1", "--network", "none", "mc-test/lab:1", "sleep", "60")
    web2 = run_d(env, "--name", "web2", "--network", "none", "--rootfs", ROOTFS, "sleep", "60")
    assert env.mc("run", "--name", "job", "--network", "none", "--rootfs", ROOTFS, "sh", "-c", "exit 3").returncode == 3
    ok(env, "pause", "web2")
    assert names(env) == ["job", "web1", "web2"]
    # name: a regular expression, unanchored, as podman's.
    assert names(env, "name=web") == ["web1", "web2"]
    assert names(env, "name=^w.*2$") == ["web2"]
    assert names(env, "name=eb", "name=job") == ["job", "web1", "web2"]  # one key: alternatives
    # id: a prefix.
    assert names(env, f"id={web1[:5]}") == ["web1"]
    assert names(env, f"id={web1[5:12]}") == []
    # status: stopped ones are listed without -a when asked for.
    assert names(env, "status=exited", all=False) == ["job"]
    assert names(env, "status=paused") == ["web2"]
    assert names(env, "status=running") == ["web1"]
    assert names(env, "status=running", "status=paused") == ["web1", "web2"]
    assert names(env, "status=created") == []
    # label: KEY or KEY=VALUE; every label given must match; ours are not labels.
    assert names(env, "label=tier") == ["web1"]
    assert names(env, "label=tier=web") == ["web1"]
    assert names(env, "label=tier=db") == []
    assert names(env, "label=tier=web", "label=team=blue") == ["web1"]
    assert names(env, "label=tier=web", "label=nope") == []
    assert names(env, "label=org.minicontainer.name") == []
    # --label adds to the image's labels (and wins over them).
    web3 = run_d(env, "--name", "web3", "--network", "none", "--label", "tier=db", "--label", "solo", "mc-test/lab:1", "sleep", "60")
    assert names(env, "label=tier=db") == ["web3"] and names(env, "label=solo") == ["web3"]
    assert names(env, "label=team=blue") == ["web1", "web3"]
    assert ok(env, "inspect", "-f", "{{json .Config.Labels}}", "web3") == '{"solo":"","team":"blue","tier":"db"}\n'
    ok(env, "rm", "-f", web3)
    # ancestor: the image by reference or id; different keys must all match.
    assert names(env, "ancestor=mc-test/lab:1") == ["web1"]
    assert names(env, f"ancestor={img}") == ["web1"]
    assert names(env, f"ancestor={img[7:19]}") == ["web1"]
    assert names(env, "ancestor=mc-test/lab:1", "status=exited") == []
    assert names(env, "name=web", "status=paused") == ["web2"]
    assert ok(env, "ps", "-q", "--filter", "name=web1") == web1[:12] + "\n"
    for f, msg in [("bogus=1", '"bogus" is an invalid filter'), ("nameonly", 'invalid filter "nameonly"'),
                   ("status=sleeping", 'unknown container state: "sleeping"'), ("name=(", "invalid regular expression")]:
        r = env.mc("ps", "--filter", f)
        one_line_error(r)
        assert msg in r.stderr, r.stderr
    ok(env, "resume", "web2")
    ok(env, "rm", "-f", web1, web2, "job")
    ok(env, "rmi", "mc-test/lab:1")


def test_inspect_docker_keys(env, tmp_path):
    cid = run_d(env, "--name", "keys", "--hostname", "kh", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "50",
                "-e", "A=1", "-w", "/tmp", "--read-only", "--cap-drop", "NET_RAW", "--cap-add", "SYS_TIME",
                "--dns", "10.9.9.9", "--add-host", "db:10.1.2.3", "--init",
                "-v", f"{tmp_path}:/data", "--network", "none", "--rootfs", ROOTFS, "sleep", "60")
    [i] = json.loads(ok(env, "inspect", "keys"))
    assert i["Id"] == cid and i["Name"] == "keys" and i["Path"] == "sleep" and i["Args"] == ["60"]
    st = i["State"]
    assert (st["Status"], st["Running"], st["Paused"], st["ExitCode"], st["FinishedAt"]) == ("running", True, False, 0, ZERO)
    assert st["Pid"] == json.loads(ok(env, "state", "keys"))["pid"] and st["StartedAt"] > i["Created"][:19]
    assert i["Image"] == "" and i["ImageName"] == ""
    c = i["Config"]
    assert c["Hostname"] == "kh" and "A=1" in c["Env"] and c["Cmd"] == ["sleep", "60"] and c["WorkingDir"] == "/tmp"
    assert c["Labels"] == {} and c["StopSignal"] == "SIGTERM" and c["User"] == "" and c["Entrypoint"] == []
    h = i["HostConfig"]
    assert h["Memory"] == 64 << 20 and h["NanoCpus"] == 500_000_000 and h["PidsLimit"] == 50
    assert h["NetworkMode"] == "none" and h["ReadonlyRootfs"] is True and h["Privileged"] is False
    assert h["CapAdd"] == ["CAP_SYS_TIME"] and h["CapDrop"] == ["CAP_NET_RAW"] and h["AutoRemove"] is False
    assert h["PortBindings"] == {} and h["RestartPolicy"] == {"Name": "", "MaximumRetryCount": 0}
    assert (h["Dns"], h["ExtraHosts"], h["Init"]) == (["10.9.9.9"], ["db:10.1.2.3"], True), h
    assert i["Mounts"] == [{"Type": "bind", "Source": str(tmp_path), "Destination": "/data", "Mode": "", "RW": True,
                            "Propagation": "rprivate"}]
    assert i["NetworkSettings"]["IPAddress"] == "" and i["NetworkSettings"]["Ports"] == {}
    assert i["LogPath"] == os.path.join(env.dir(cid), "container.log") and os.path.exists(i["LogPath"])
    priv = run_d(env, "--privileged", "--rm", "--network", "none", "--rootfs", ROOTFS, "sleep", "60")
    assert ok(env, "inspect", "-f", "{{.HostConfig.Privileged}} {{.HostConfig.AutoRemove}} {{.HostConfig.CapDrop}}", priv) == \
        "true true []\n"
    rs = run_d(env, "--restart", "on-failure:3", "--stop-timeout", "5", "--network", "none", "--rootfs", ROOTFS, "sleep", "60")
    assert json.loads(ok(env, "inspect", "-f", "{{json .HostConfig.RestartPolicy}}", rs)) == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert ok(env, "inspect", "-f", "{{.Config.StopTimeout}}", rs) == "5\n"
    # Restarts are counted; wait returns once the policy gives up.
    rf = run_d(env, "--restart", "on-failure:2", "--network", "none", "--rootfs", ROOTFS, "sh", "-c", "exit 1")
    assert ok(env, "wait", rf) == "1\n"
    assert ok(env, "inspect", "-f", "{{.State.Status}} {{.RestartCount}} {{.State.Restarting}}", rf) == "exited 2 false\n"
    ok(env, "rm", "-f", cid, priv, rs, rf)


def test_stats_no_stream_against_the_cgroup(env):
    busy = run_d(env, "--name", "busy", "--memory", "64m", "--rootfs", ROOTFS, "sh", "-c", "while :; do :; done")
    idle = run_d(env, "--name", "idle", "--rootfs", ROOTFS, "sh", "-c", "sleep 60 & sleep 60 & wait")
    assert wait_for(lambda: cgroup_file(idle, "pids", "pids.current") == "3")
    pid = json.loads(ok(env, "state", "idle"))["pid"]

    def rx():
        with open(f"/proc/{pid}/net/dev") as f:
            return int([l for l in f if l.strip().startswith("eth0:")][0].split(":")[1].split()[0])
    rx_before = rx()
    t = time.time()
    rows = json.loads(ok(env, "stats", "--no-stream", "--format", "json"))
    assert time.time() - t >= 1, "CPU % needs two samples a second apart"
    assert sorted(r["name"] for r in rows) == ["busy", "idle"]
    row = {r["name"]: r for r in rows}
    # A busy loop: most of a cpu (the machine is shared), an idle one: none.
    assert float(row["busy"]["cpu_percent"].rstrip("%")) > 10, row["busy"]
    assert float(row["idle"]["cpu_percent"].rstrip("%")) < 5, row["idle"]
    assert row["busy"]["mem_usage"].endswith(" / 67.11MB") and row["idle"]["pids"] == "3" and row["busy"]["pids"] == "1"
    # The raw figures against the cgroup files and the netns counters.
    out = ok(env, "stats", "--no-stream", "--format", "{{.Name}} {{.MemLimit}} {{.PIDs}} {{.CPUNanos}} {{.NetInput}} {{.MemBytes}}", "busy", "idle")
    figures = {l.split()[0]: l.split()[1:] for l in out.splitlines()}
    assert int(figures["busy"][0]) == int(cgroup_file(busy, "memory", "memory.limit_in_bytes"))
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) * 1024
    assert int(figures["idle"][0]) == total  # unlimited: the host's memory, as podman
    assert figures["idle"][1] == cgroup_file(idle, "pids", "pids.current")
    assert 0 < int(figures["busy"][2]) <= int(cgroup_file(busy, "cpuacct", "cpuacct.usage"))
    assert rx_before <= int(figures["idle"][3]) <= rx()
    assert 0 < int(figures["idle"][4]) <= int(cgroup_file(idle, "memory", "memory.usage_in_bytes"))
    # The table: podman's columns.
    table = ok(env, "stats", "--no-stream", "idle").splitlines()
    assert re.split(r"\s{2,}", table[0]) == ["ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET IO", "BLOCK IO",
                                             "PIDS", "CPU TIME", "AVG CPU %"], table
    assert table[1].startswith(idle[:12] + "  idle  ") and len(table) == 2
    # A stopped container named: zeros; a missing one: an error.
    ok(env, "stop", "-t", "0", "busy")
    assert ok(env, "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", "busy") == \
        "busy 0.00% 0B / 0B 0\n"
    r = env.mc("stats", "--no-stream", "nosuch")
    one_line_error(r)
    assert "container nosuch does not exist" in r.stderr
    ok(env, "rm", "-f", busy, idle)


def test_top_lists_the_container_processes(env):
    cid = run_d(env, "--name", "tp", "--network", "none", "--rootfs", ROOTFS, "sh", "-c", "sleep 1001 & exec sleep 1002")
    assert wait_for(lambda: sorted(ok(env, "top", "tp", "args").splitlines()[1:]) == ["sleep 1001", "sleep 1002"])
    lines = ok(env, "top", "tp").splitlines()
    assert re.split(r"\s+", lines[0]) == ["USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND"]
    rows = sorted(re.split(r"\s{2,}", l) for l in lines[1:])
    # Pids as the container sees them: sleep 1002 is its init, sleep 1001 its child.
    assert [(r[0], r[1], r[2], r[5], r[6], r[7]) for r in rows] == [
        ("root", "1", "0", "?", "0s", "sleep 1002"), ("root", rows[1][1], "1", "?", "0s", "sleep 1001")], rows
    assert int(rows[1][1]) > 1 and re.fullmatch(r"\d+\.\d{3}", rows[0][3]) and rows[0][4].endswith("s")
    host = json.loads(ok(env, "state", "tp"))["pid"]
    assert ok(env, "top", "tp", "hpid", "pid", "comm").splitlines()[1].split() == [str(host), "1", "sleep"]
    r = env.mc("top", "tp", "bogus")
    one_line_error(r)
    assert 'unknown descriptor "bogus"' in r.stderr
    ok(env, "stop", "-t", "0", "tp")
    r = env.mc("top", "tp")
    one_line_error(r)
    assert "container tp is not running" in r.stderr
    ok(env, "rm", cid)


def test_top_reads_user_names_inside_the_container_root(env, tmp_path):
    """The attack: the container's /etc/passwd is a symlink to a host file
    (absolute, and by ..). Read on the host's side it would name uid 0
    "evil"; resolved inside the container's root it is missing."""
    fake = tmp_path / "passwd"
    fake.write_text("evil:x:0:0::/:/bin/sh\n")
    for target in (str(fake), "../../../../../../.." + str(fake)):
        cid = run_d(env, "--network", "none", "--rootfs", ROOTFS, "sh", "-c", f"ln -sf {target} /etc/passwd && exec sleep 60")
        assert wait_for(lambda: ok(env, "top", cid, "args").splitlines()[1:] == ["sleep 60"])
        rows = [l.split() for l in ok(env, "top", cid, "user", "huser", "args").splitlines()[1:]]
        assert rows == [["0", "root", "sleep", "60"]], rows
        ok(env, "rm", "-f", cid)


def test_port(env):
    cid = run_d(env, "--name", "pt", "-p", "18231:80", "-p", "127.0.0.1:18232:81/udp", "--rootfs", ROOTFS, "sleep", "60")
    assert ok(env, "port", "pt") == "80/tcp -> 0.0.0.0:18231\n81/udp -> 127.0.0.1:18232\n"
    assert ok(env, "port", "pt", "80") == "0.0.0.0:18231\n"
    assert ok(env, "port", "pt", "80/tcp") == "0.0.0.0:18231\n"
    assert ok(env, "port", "pt", "81/udp") == "127.0.0.1:18232\n"
    for q in ("81", "82", "80/udp"):
        r = env.mc("port", "pt", q)
        one_line_error(r)
        assert f'failed to find published port "{q}"' in r.stderr
    assert ok(env, "ps", "--format", "{{.Ports}}") == "0.0.0.0:18231->80/tcp, 127.0.0.1:18232->81/udp\n"
    assert ok(env, "inspect", "-f", "{{json .NetworkSettings.Ports}}", "pt") == \
        '{"80/tcp":[{"HostIp":"","HostPort":"18231"}],"81/udp":[{"HostIp":"127.0.0.1","HostPort":"18232"}]}\n'
    # -p CTR: the host port chosen at run time, as the container got it.
    rnd = run_d(env, "-p", "80", "--rootfs", ROOTFS, "sleep", "60")
    m = re.fullmatch(r"80/tcp -> 0\.0\.0\.0:(\d+)\n", ok(env, "port", rnd))
    assert m and int(m.group(1)) > 0, ok(env, "port", rnd)
    assert ok(env, "port", rnd, "80") == f"0.0.0.0:{m.group(1)}\n"
    plain = run_d(env, "--network", "none", "--rootfs", ROOTFS, "sleep", "60")
    assert ok(env, "port", plain) == ""
    ok(env, "rm", "-f", cid, plain, rnd)


def test_wait_prints_the_exit_code(env):
    cid = run_d(env, "--name", "w1", "--network", "none", "--rootfs", ROOTFS, "sh", "-c", "sleep 1; exit 7")
    p = env.popen("wait", "w1", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=30)
    assert (p.returncode, out, err) == (0, "7\n", "")
    # It returned once the container had stopped.
    assert ok(env, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "w1") == "exited 7\n"
    # Stopped ones at once, each in turn; a missing one is an error.
    ok(env, "run", "--name", "w2", "--network", "none", "--rootfs", ROOTFS, "sh", "-c", "exit 0")
    assert ok(env, "wait", "w1", "w2") == "7\n0\n"
    r = env.mc("wait", "nosuch")
    one_line_error(r)
    assert "container nosuch does not exist" in r.stderr
    killed = run_d(env, "--network", "none", "--rootfs", ROOTFS, "sleep", "60")
    p = env.popen("wait", killed[:12], stdout=subprocess.PIPE, text=True)
    ok(env, "stop", "-t", "0", killed)
    assert p.communicate(timeout=30)[0] == "137\n"
    ok(env, "rm", cid, "w2", killed)


def test_rename_and_name_conflicts(env):
    a = run_d(env, "--name", "old", "--network", "none", "--rootfs", ROOTFS, "sleep", "60")
    b = run_d(env, "--name", "other", "--network", "none", "--rootfs", ROOTFS, "sleep", "60")
    assert ok(env, "rename", "old", "new") == ""
    assert ok(env, "inspect", "-f", "{{.Name}} {{index .Config.Annotations \"org.minicontainer.name\"}}", a) == "new new\n"
    assert json.loads(ok(env, "state", "new"))["annotations"]["org.minicontainer.name"] == "new"
    assert names(env) == ["new", "other"]
    # The old name is free again; a name in use is refused, and changes nothing.
    c = run_d(env, "--name", "old", "--network", "none", "--rootfs", ROOTFS, "true")
    r = env.mc("rename", "new", "other")
    one_line_error(r)
    assert '"other" is already in use by container ' + b[:12] in r.stderr
    for bad in ("bad/name", "_x", "a:b", "..", "x\ny"):
        r = env.mc("rename", "new", bad)
        one_line_error(r)
        assert "invalid name" in r.stderr, r.stderr
    r = env.mc("rename", "nosuch", "x")
    one_line_error(r)
    assert "container nosuch does not exist" in r.stderr
    assert names(env) == ["new", "old", "other"]
    # A stopped container too; exec and stop find it by its new name.
    ok(env, "stop", "-t", "0", "other")
    ok(env, "rename", "other", "renamed")
    assert ok(env, "inspect", "-f", "{{.Name}} {{.State.Status}}", b) == "renamed exited\n"
    assert ok(env, "exec", "new", "echo", "hi") == "hi\n"
    ok(env, "rm", "-f", a, b, c)
