"""Overlay option injection (issue 11, item 7): `run --rootfs PATH` builds
the overlay's lowerdir from PATH, so a layer path holding `,` or `:` adds
options or layers: `DIR,lowerdir=DIR:/etc` or `DIR:/etc` gives the
container the host's /etc as (part of) its root, and `cat /shadow` reads
the host's /etc/shadow. Image layers will stack many such paths.

The paths are made to exist (directories may be named `x,lowerdir=` and
`r:`), so that a check that the rootfs exists does not stop the attack by
accident. What should stop it: layer paths holding `,` `:` `\\` or a
newline are refused, or layers are passed one by one (fsconfig lowerdir+).
"""
import os

import pytest

from attackkit import copy_rootfs, lab, mounts_under, one_line  # noqa: F401  (lab is a fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def busybox_at(path):
    copy_rootfs(path)


def injections(base):
    """name -> the --rootfs argument; every directory it names exists."""
    return {
        "comma": f"{base}/x,lowerdir={base}/r:/etc",
        "colon": f"{base}/r:/etc",
    }


@pytest.mark.parametrize("kind", ["comma", "colon"])
def test_overlay_lowerdir_injection(lab, kind):
    """Attack: `<copy> run --rootfs 'DIR,lowerdir=DIR:/etc' cat /shadow`
    (or 'DIR:/etc'). Passes if run refuses with one line, or the output
    is not the host's /etc/shadow; nothing is left mounted, no state."""
    shadow = open("/etc/shadow").read()
    assert shadow.strip(), "the host has no /etc/shadow to steal"
    base = os.path.join(lab.dir, "layers")
    arg = injections(base)[kind]
    busybox_at(f"{base}/r")
    busybox_at(f"{base}/x")
    busybox_at(arg)  # the literal path, with its odd components
    r = lab.mc("run", "--network", "none", "--rootfs", arg, "/bin/cat", "/shadow", timeout=60)
    first = shadow.splitlines()[0]
    assert first not in r.stdout, f"the container read the host's /etc/shadow through --rootfs {arg!r}"
    if r.returncode == 125:
        one_line(r.stderr)
    assert not mounts_under(lab.dir), f"mounts left: {mounts_under(lab.dir)}"
