"""Specs/ goldens: each flags file compiles to its config.json, byte for byte."""
import json
import os
import re
import pytest
from conftest import CAPS, REPO, mc

SPECS = os.path.join(REPO, "Specs")

# --privileged puts the host's device nodes in linux.devices: they differ from
# machine to machine, so the golden holds one stand-in entry for the list,
# path /dev/$HOST_DEVICES (still a valid config.json), and the list itself is
# checked here to be this host's devices.
HOST_DEVICES = re.compile(r'\n    "devices": \[\n.*?\n    \](,?)\n', re.S)


def normalise_host_devices(text):
    devices = json.loads(text)["linux"]["devices"]
    assert devices and all(d["path"].startswith("/dev/") and d["type"] in "cb" for d in devices), devices
    for d in devices:
        st = os.stat(d["path"], follow_symlinks=False)
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (d["major"], d["minor"]), d
    stand_in = ('\n    "devices": [\n      {\n        "type": "c",\n        "path": "/dev/$HOST_DEVICES",\n'
                '        "major": 0,\n        "minor": 0\n      }\n    ]')
    text, n = HOST_DEVICES.subn(lambda m: stand_in + m.group(1) + '\n', text)
    assert n == 1
    return text
CASES = sorted(d for d in os.listdir(SPECS) if os.path.isfile(os.path.join(SPECS, d, "flags")))


# --privileged (and --cap-add ALL) give every capability (CAPS) the runtime
# holds in its bounding set; the goldens hold all of them, and on a host whose
# bounding set lacks some (a nested or restricted machine) those are taken
# out of the golden before comparing.
def caps_we_lack():
    with open("/proc/self/status") as f:
        [bnd] = [l.split()[1] for l in f if l.startswith("CapBnd:")]
    return ["CAP_" + c for i, c in enumerate(CAPS) if not int(bnd, 16) & (1 << i)]


def without_caps(text, caps):
    for c in caps:
        text = re.sub(r'\n *"%s",' % c, "", text)
        text = re.sub(r',(\n *)"%s"(\n)' % c, r"\2", text)
    return text


@pytest.mark.parametrize("case", CASES)
def test_golden(case, binary, rootfs, tmp_path):
    volume = tmp_path / "vol"
    volume.mkdir()
    real_rootfs = os.path.realpath(rootfs)
    with open(os.path.join(SPECS, case, "flags")) as f:
        flags = [l for l in f.read().split("\n") if l != ""]
    # $CASE: the case's own folder, for the files flags read (--env-file, --label-file).
    args = [a.replace("$ROOTFS", real_rootfs).replace("$VOLUME", str(volume)).replace("$CASE", os.path.join(SPECS, case))
            for a in flags]
    r = mc("spec", "--stdout", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    got = r.stdout.replace(str(volume), "$VOLUME").replace(real_rootfs, "$ROOTFS")
    if "--privileged" in flags:
        got = normalise_host_devices(got)
    golden = os.path.join(SPECS, case, "config.json")
    # Only "all capabilities" depends on the host (what it can grant): --privileged or --cap-add ALL.
    all_caps = "--privileged" in flags or any(a == "--cap-add" and b.upper() == "ALL" for a, b in zip(flags, flags[1:]))
    lacking = caps_we_lack() if all_caps else []
    if os.environ.get("UPDATE_GOLDENS"):
        if lacking:
            pytest.fail(f"{case}: this host's bounding set lacks {lacking}: regenerate it on one that has every capability")
        with open(golden, "w") as f:
            f.write(got)
    with open(golden) as f:
        want = without_caps(f.read(), lacking)
    assert got == want, f"{case}: output differs from its golden (UPDATE_GOLDENS=1 regenerates)"


def test_every_case_has_a_golden():
    assert CASES, "no Specs cases found"
    for c in CASES:
        assert os.path.isfile(os.path.join(SPECS, c, "config.json")), f"Specs/{c} has no config.json"


def test_compiling_twice_gives_the_same_bytes(binary, rootfs):
    a = mc("spec", "--stdout", "--rootfs", rootfs, "-e", "B=2", "-e", "A=1", "--name", "x", "-p", "1:2", "/bin/true")
    b = mc("spec", "--stdout", "--rootfs", rootfs, "-e", "B=2", "-e", "A=1", "--name", "x", "-p", "1:2", "/bin/true")
    assert a.returncode == 0 and a.stdout == b.stdout
