"""The command line: help, version, the binary's linkage, and bad input.

Every bad input must give exactly one line on stderr starting with
"minicontainer: ", exit 125, print nothing on stdout and write nothing.
"""
import json
import os
import shutil
import subprocess
import pytest
from conftest import BIN, mc

GOOD_CONFIG = ('{"ociVersion":"1.1.0","process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"]},'
               '"root":{"path":"/"},"linux":{"namespaces":[{"type":"pid"}]}}')


def test_release_binary_is_static_with_no_foundation(binary):
    # One static executable: no dynamic loader work at each of the several
    # starts a container costs; libcap and libseccomp linked in, and no
    # jansson (our own parser since issue 13).
    r = subprocess.run(["ldd", binary], capture_output=True, text=True)
    assert "not a dynamic executable" in r.stdout + r.stderr, r.stdout
    syms = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    for sym in ("cap_set_proc", "seccomp_load", "swift_retain"):
        assert sym in syms, f"{sym} not linked in"
    assert "json_loadb" not in syms, "jansson linked in"
    assert "10Foundation" not in syms and "FoundationEssentials" not in syms, "Foundation linked in"


def test_version(binary):
    for args in (["--version"], ["version"], ["-v"]):
        r = mc(*args)
        assert r.returncode == 0
        lines = r.stdout.splitlines()
        assert lines[0].startswith("minicontainer version ")
        assert lines[1].startswith("commit: ")
        assert lines[2] == "spec: 1.3.0"


def test_help(binary):
    r = mc("--help")
    assert r.returncode == 0 and "spec" in r.stdout and "Exit codes" in r.stdout
    r = mc("spec", "--help")
    assert r.returncode == 0 and "--rootfs PATH" in r.stdout and "--memory, -m SIZE" in r.stdout


# What `features` printed as mountOptions when the list was written by hand:
# the list derived from the option table must keep all of them.
FEATURES_MOUNT_OPTIONS_BEFORE = [
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand", "noatime", "nodev",
    "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid", "private", "rbind", "relatime",
    "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime",
    "suid", "sync", "unbindable",
]


def test_features_mount_options(binary):
    r = mc("features")
    assert r.returncode == 0, r.stderr
    opts = json.loads(r.stdout)["mountOptions"]
    assert opts == sorted(set(opts)), "sorted, each once"
    assert set(FEATURES_MOUNT_OPTIONS_BEFORE) <= set(opts)
    # The recursive attributes, tmpcopyup and idmapped mounts the runtime
    # carries out (issue 17); never notmpcopyup, which it ignores.
    assert {"rro", "rnosuid", "rnoatime", "rsymfollow", "tmpcopyup", "nosymfollow", "idmap", "ridmap"} <= set(opts)
    assert "notmpcopyup" not in opts


def test_flag_syntaxes(binary, rootfs):
    """--flag=value, --flag value, single-dash long names, -it clusters."""
    a = mc("spec", "--stdout", "--rootfs=" + rootfs, "--memory", "1m", "-it", "/bin/sh")
    b = mc("spec", "--stdout", "-rootfs", rootfs, "--memory=1m", "-i", "-t", "/bin/sh")
    assert a.returncode == 0 and a.stdout == b.stdout
    assert '"terminal": true' in a.stdout and '"limit": 1048576' in a.stdout


def test_command_args_are_not_flags(binary, rootfs):
    r = mc("spec", "--stdout", "--rootfs", rootfs, "/bin/ls", "-l", "--color")
    assert r.returncode == 0, r.stderr
    assert '"--color"' in r.stdout


@pytest.fixture
def bundles(tmp_path):
    def make(text):
        d = tmp_path / "b"
        d.mkdir(exist_ok=True)
        (d / "config.json").write_text(text)
        return str(d)
    return make


BAD_FLAGS = {
    "unknown-command": (["bogus"], "unknown command \"bogus\""),
    "misspelt-command": (["spce"], "did you mean \"spec\""),
    "misspelt-pull": (["pul", "x"], "did you mean \"pull\""),
    # Docker's verbs we lack are named as such, never "did you mean" another
    # word (unpause is not pause, push not pull).
    "docker-unpause": (["unpause", "x"], "\"unpause\" is a Docker command minicontainer does not have; thawing is 'minicontainer resume ID'"),
    "docker-build": (["build", "."], "\"build\" is a Docker command minicontainer does not have; see"),
    "docker-push": (["push", "x"], "\"push\" is a Docker command minicontainer does not have; see"),
    "unknown-global-flag": (["--nope", "spec"], "unknown global flag --nope"),
    "unknown-flag": (["spec", "--bogus"], "spec: unknown flag --bogus (see"),
    "flag-without-value": (["spec", "--rootfs"], "needs a value"),
    "bool-flag-with-value": (["spec", "--tty=yes", "--rootfs", "@R", "sh"], "takes no value"),
    "log-format": (["--log-format", "xml", "spec"], "--log-format must be text or json"),
    "bad-size": (["spec", "--rootfs", "@R", "--memory", "12x", "sh"], "invalid --memory \"12x\""),
    "zero-size": (["spec", "--rootfs", "@R", "--memory", "0", "sh"], "invalid --memory \"0\""),
    "negative-cpus": (["spec", "--rootfs", "@R", "--cpus", "-1", "sh"], "invalid --cpus \"-1\""),
    "nan-cpus": (["spec", "--rootfs", "@R", "--cpus", "nan", "sh"], "invalid --cpus"),
    "tiny-cpus": (["spec", "--rootfs", "@R", "--cpus", "0.001", "sh"], "invalid --cpus \"0.001\": at least 0.01 CPUs"),
    "huge-cpus": (["spec", "--rootfs", "@R", "--cpus", "5000", "sh"], "invalid --cpus \"5000\": at most 1024 CPUs"),
    "bad-pids": (["spec", "--rootfs", "@R", "--pids-limit", "lots", "sh"], "invalid --pids-limit"),
    "missing-rootfs": (["spec", "--rootfs", "/nonexistent/rootfs", "sh"], "rootfs /nonexistent/rootfs does not exist"),
    "rootfs-is-file": (["spec", "--rootfs", "/etc/hostname", "sh"], "is not a directory"),
    "no-command": (["spec", "--rootfs", "@R"], "no command given"),
    "missing-volume": (["spec", "--rootfs", "@R", "-v", "/nonexistent/v:/data", "sh"], "host path /nonexistent/v does not exist"),
    "volume-syntax": (["spec", "--rootfs", "@R", "-v", "/tmp", "sh"], "invalid volume \"/tmp\""),
    "volume-mode": (["spec", "--rootfs", "@R", "-v", "/tmp:/t:rx", "sh"], "the mode must be ro or rw"),
    "volume-relative-target": (["spec", "--rootfs", "@R", "-v", "/tmp:data", "sh"], "container path must be absolute"),
    "relative-workdir": (["spec", "--rootfs", "@R", "-w", "tmp", "sh"], "must be an absolute path"),
    "bad-port": (["spec", "--rootfs", "@R", "-p", "8000-8002:80", "sh"], "invalid port \"8000-8002:80\""),
    "port-range": (["spec", "--rootfs", "@R", "-p", "70000:80", "sh"], "is not a port number"),
    "port-proto": (["spec", "--rootfs", "@R", "-p", "80:80/sctp", "sh"], "protocol must be tcp or udp"),
    "port-twice": (["spec", "--rootfs", "@R", "-p", "80:80", "-p", "80:81", "sh"], "published twice"),
    "ports-without-bridge": (["spec", "--rootfs", "@R", "--network", "host", "-p", "80:80", "sh"], "need --network bridge"),
    "bad-network": (["spec", "--rootfs", "@R", "--network", "wifi", "sh"], "invalid --network \"wifi\""),
    "bad-name": (["spec", "--rootfs", "@R", "--name", "-x/y", "sh"], "invalid name"),
    "unknown-user": (["spec", "--rootfs", "@R", "-u", "alice", "sh"], "user \"alice\" is not in"),
    "bad-user": (["spec", "--rootfs", "@R", "-u", "1:2:3", "sh"], "invalid user"),
    "empty-env-name": (["spec", "--rootfs", "@R", "-e", "=x", "sh"], "the name is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_FLAGS))
def test_bad_flags(case, binary, rootfs, tmp_path):
    args, expect = BAD_FLAGS[case]
    args = [rootfs if a == "@R" else a for a in args]
    if args and args[0] == "spec" or "spec" in args:
        i = args.index("spec")
        args = args[:i + 1] + ["--bundle", str(tmp_path / "out")] + args[i + 1:]
    r = mc(*args, cwd=tmp_path)
    assert r.returncode == 125, (r.returncode, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("minicontainer: ")
    assert expect in lines[0], lines[0]
    assert not (tmp_path / "out").exists(), "a failed spec wrote something"
    assert sorted(os.listdir(tmp_path)) == [], os.listdir(tmp_path)


BAD_CONFIGS = {
    "malformed": ('{"ociVersion": "1.1.0",', "config.json:1:"),
    "empty": ("", "empty document"),
    "duplicate-key": ('{"ociVersion": "1.1.0", "ociVersion": "1.0.0"}', 'duplicate key "ociVersion"'),
    "wrong-type": (GOOD_CONFIG.replace('"linux":{', '"linux":{"resources":{"memory":{"limit":"1g"}},'),
                   "config.json: linux.resources.memory.limit: expected integer, found string"),
    "wrong-type-in-array": (GOOD_CONFIG.replace('["sh"]', '["sh", 5]'), "config.json: process.args[1]: expected string, found integer"),
    "missing-required": (GOOD_CONFIG.replace('"cwd":"/",', ''), "config.json: process.cwd: required property missing"),
    "uint64-in-int64": (GOOD_CONFIG.replace('"linux":{', '"linux":{"resources":{"memory":{"limit":18446744073709551615}},'),
                        "linux.resources.memory.limit: 18446744073709551615 is out of range"),
    "beyond-uint64": (GOOD_CONFIG.replace('"linux":{', '"linux":{"resources":{"memory":{"limit":18446744073709551616}},'),
                      "integer 18446744073709551616 is out of range"),
    "empty-args": (GOOD_CONFIG.replace('["sh"]', '[]'), "process.args: must name the program"),
    "namespace-twice": (GOOD_CONFIG.replace('[{"type":"pid"}]', '[{"type":"pid"},{"type":"pid"}]'), "listed twice"),
    "mappings-without-userns": (GOOD_CONFIG.replace('"linux":{', '"linux":{"uidMappings":[{"containerID":0,"hostID":1000,"size":1}],'),
                                "linux.uidMappings: mappings need a user namespace"),
    "relative-mount": (GOOD_CONFIG.replace('"root"', '"mounts":[{"destination":"proc","type":"proc"}],"root"'),
                       "mounts[0].destination: must be an absolute path"),
    "missing-root": (GOOD_CONFIG.replace('"path":"/"', '"path":"rootfs"'), "root.path: "),
    "not-an-object": ("[1, 2]", "config.json: expected object, found array"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_configs(case, binary, bundles):
    text, expect = BAD_CONFIGS[case]
    d = bundles(text)
    r = mc("check", "--bundle", d)
    assert r.returncode == 125, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("minicontainer: check: config.json")
    assert expect in lines[0], lines[0]
    assert os.listdir(d) == ["config.json"]


def test_good_config_and_uint64_rlimit(binary, bundles):
    cfg = GOOD_CONFIG.replace('"args":["sh"]', '"args":["sh"],"rlimits":[{"type":"RLIMIT_CORE","hard":18446744073709551615,"soft":18446744073709551615}]')
    r = mc("check", "--bundle", bundles(cfg))
    assert r.returncode == 0, r.stderr
    # unknown properties are ignored
    r = mc("check", "--bundle", bundles(GOOD_CONFIG[:-1] + ',"vendor.thing":{"x":[1]}}'))
    assert r.returncode == 0, r.stderr


def test_spec_refuses_to_overwrite(binary, tmp_path):
    assert mc("spec", "--bundle", str(tmp_path)).returncode == 0
    before = (tmp_path / "config.json").read_text()
    (tmp_path / "config.json").write_text("mine")
    r = mc("spec", "--bundle", str(tmp_path))
    assert r.returncode == 125 and "already exists" in r.stderr and len(r.stderr.splitlines()) == 1
    assert (tmp_path / "config.json").read_text() == "mine"
    assert mc("spec", "--bundle", str(tmp_path), "--force").returncode == 0
    assert (tmp_path / "config.json").read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["config.json"]


def test_log_file_json(binary, tmp_path):
    log = tmp_path / "log.json"
    r = mc("--log", str(log), "--log-format", "json", "check", "--bundle", str(tmp_path / "none"))
    assert r.returncode == 125
    import json
    rec = json.loads(log.read_text().splitlines()[0])
    assert rec["level"] == "error" and "cannot read" in rec["msg"] and rec["time"].endswith("Z")


def test_default_spec_is_valid_and_rootless_differs(binary, tmp_path):
    import json
    r = mc("spec", "--stdout")
    spec = json.loads(r.stdout)
    assert spec["process"]["args"] == ["sh"] and spec["root"] == {"path": "rootfs", "readonly": True}
    r = mc("spec", "--stdout", "--rootless")
    rl = json.loads(r.stdout)
    types = [n["type"] for n in rl["linux"]["namespaces"]]
    assert "user" in types and "network" not in types
    assert rl["linux"]["uidMappings"][0]["hostID"] == os.getuid()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="needs root and runc")
def test_default_spec_runs_unmodified_under_runc(binary, rootfs, tmp_path):
    """`minicontainer spec` output, unmodified but for the rootfs it names
    (./rootfs, here a copy), runs its interactive shell under runc."""
    import pty
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    assert mc("spec", "--bundle", str(bundle)).returncode == 0
    subprocess.run(["cp", "-a", rootfs, str(bundle / "rootfs")], check=True)
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(bundle)
        os.execvp("runc", ["runc", "--root", str(tmp_path / "runc-root"), "run", "mc-default-" + str(os.getppid())])
    os.write(fd, b"hostname; exit 7\n")
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7, out
    assert b"minicontainer" in out
