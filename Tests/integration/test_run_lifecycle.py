"""Docker-style lifecycle (issue 16): the memory floor and the OOM message,
`stop` saying when it resorts to SIGKILL, `prune`'s summary, `start` of a
stopped container, `restart`, and `--restart` policies applied by the
monitor. Each test has its own --root and data directory (the Env of
test_run.py), and nothing may be left afterwards.
"""
import json
import os
import subprocess
import time

import pytest

from conftest import BIN, ROOTFS, needs_root
from test_run import Env, env, one_line_error, run, wait_for  # noqa: F401 (env is a fixture)

pytestmark = needs_root()


def bundle(tmp_path, limit):
    b = tmp_path / "b"
    subprocess.run([BIN, "spec", "--bundle", str(b), "--rootfs", ROOTFS, "--network", "none", "--memory", "1m", "true"],
                   check=True, capture_output=True)
    cfg = json.loads((b / "config.json").read_text())
    cfg["linux"]["resources"]["memory"]["limit"] = limit
    (b / "config.json").write_text(json.dumps(cfg))
    return b


def test_memory_below_the_floor_is_refused_naming_it(env):
    """(item 8) --memory below 1 MiB: refused before anything is made,
    naming the limit; before, `init exited at once` or `the container's init
    exited before it was ready`."""
    for size in ("200k", "4k", "1048575"):
        r = run(env, "--memory", size, "--rootfs", ROOTFS, "true")
        one_line_error(r)
        assert f'--memory "{size}" is below the minimum of 1m (1 MiB)' in r.stderr, r.stderr
        assert env.ids() == []
    r = subprocess.run([BIN, "spec", "--stdout", "--rootfs", ROOTFS, "--memory", "100k", "true"], capture_output=True, text=True)
    one_line_error(r)
    # At the floor it runs, and the limit is the cgroup's.
    r = run(env, "--rm", "--network", "none", "--memory", "1m", "--rootfs", ROOTFS, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert r.returncode == 0 and r.stdout == "1048576\n", r.stderr


def test_an_init_killed_by_its_memory_limit_is_named(tmp_path):
    """(item 8) A bundle whose limit cannot hold the init (below the floor
    only a hand-written config.json can go): the error names the limit."""
    root = str(tmp_path / "root")
    b = bundle(tmp_path, 40960)
    r = subprocess.run([BIN, "--root", root, "run", "--bundle", str(b), "oom-" + os.urandom(4).hex()],
                       capture_output=True, text=True, timeout=60)
    one_line_error(r)
    assert "the container's init was killed by its memory limit (40960 bytes, 40 KiB) before it was ready" in r.stderr, r.stderr
    assert [e for e in os.listdir(root) if e != "@seccomp"] == []
