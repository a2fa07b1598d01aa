"""Error messages that echo unbounded input (issue 11, item 10): 100,000
gids gave a message of 589,035 characters, a 4 KiB mount path 8.5 KiB, an
id with a newline broke the one-line rule (a log line an attacker can
forge). What should stop it: a message quotes a bounded part of its input
and escapes control characters. Each case: exit 125, exactly one line on
stderr, at most 2,048 bytes, no control characters, nothing left.
"""
import os
import subprocess

import pytest

from attackkit import lab, one_line  # noqa: F401  (lab is a fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

LIMIT = 2048


def gids(c):
    c["process"]["user"]["additionalGids"] = list(range(1, 100001))


def long_mount(c):
    # 17 components of 250 characters: 4,267 bytes, over PATH_MAX.
    dest = "".join("/" + chr(ord("a") + i % 26) * 250 for i in range(17))
    c["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs"})


def long_program(c):
    c["process"]["args"] = ["/" + "p" * 65536]


def control_chars_in_program(c):
    c["process"]["args"] = ["/no/such\nminicontainer: forged line\x1b[2J"]


BUNDLE_CASES = {
    "100000-gids": gids,
    "4k-mount-destination": long_mount,
    "64k-program": long_program,
    "control-chars-in-program": control_chars_in_program,
}


@pytest.mark.parametrize("case", sorted(BUNDLE_CASES))
def test_bounded_one_line_error_from_config(lab, case):
    """A config.json crafted to make the error message huge or multi-line."""
    cid = lab.id("err")
    rc, err = lab.create(cid, lab.bundle(["/bin/true"], edit=BUNDLE_CASES[case]))
    assert rc == 125, (rc, err[:500])
    one_line(err, LIMIT)
    assert lab.status(cid) is None, f"{cid} exists after a failed create"


ID_CASES = {
    "id-with-newline": "atk-\nminicontainer: forged line",
    "id-with-escape": "atk-\x1b[2J\r",
    "id-of-100k": "atk-" + "i" * 100000,
}


@pytest.mark.parametrize("case", sorted(ID_CASES))
@pytest.mark.parametrize("command", ["create", "state", "delete"])
def test_bounded_one_line_error_for_an_id(lab, case, command):
    """An id crafted to break the one-line rule or flood stderr, given to
    create, state and delete."""
    cid = ID_CASES[case]
    b = lab.bundle(["/bin/true"], name="b-id")
    args = {"create": ["create", "--bundle", b, cid], "state": ["state", cid], "delete": ["delete", "--force", cid]}[command]
    r = subprocess.run(lab.cmd(*args), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    if command == "delete" and r.returncode == 0:
        return  # runc: delete --force of what does not exist succeeds (nothing printed)
    assert r.returncode == 125, (r.returncode, r.stderr[:500])
    one_line(r.stderr, LIMIT)
    left = os.listdir(lab.state) if os.path.isdir(lab.state) else []
    assert not left, f"state left: {left}"
