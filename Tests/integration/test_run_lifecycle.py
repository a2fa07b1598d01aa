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


def test_stop_says_when_it_resorts_to_sigkill(env):
    """(item 11) A container that ignores SIGTERM: stop waits -t seconds,
    then says it sends SIGKILL (podman warns too); one that exits on SIGTERM
    stops without a word."""
    run(env, "-d", "--name", "stubborn", "--network", "none", "--rootfs", ROOTFS,
        "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done", check=True)
    run(env, "-d", "--name", "polite", "--network", "none", "--rootfs", ROOTFS,
        "sh", "-c", "trap 'exit 0' TERM; sleep 60 & wait", check=True)
    r = env.mc("stop", "-t", "1", "stubborn")
    assert r.returncode == 0 and r.stdout == "stubborn\n", r.stderr
    assert r.stderr == "minicontainer: warning: stop stubborn: SIGTERM did not stop the container in 1 second; sending SIGKILL\n", r.stderr
    [s] = [c for c in env.ps() if c["name"] == "stubborn"]
    assert s["exitCode"] == 137, s
    r = env.mc("stop", "polite")
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_prune_prints_what_it_removed_and_the_space(env):
    """(item 11) prune lists the removed containers and the space reclaimed
    (Docker's 'Total reclaimed space'); a running one stays."""
    run(env, "--name", "big", "--network", "none", "--rootfs", ROOTFS, "dd", "if=/dev/zero", "of=/blob", "bs=1M", "count=3", check=True)
    run(env, "--name", "small", "--network", "none", "--rootfs", ROOTFS, "true", check=True)
    run(env, "-d", "--name", "live", "--network", "none", "--rootfs", ROOTFS, "sleep", "60", check=True)
    ids = {c["name"]: c["id"] for c in env.ps()}
    r = env.mc("prune", "-f", check=True)
    lines = r.stdout.splitlines()
    assert sorted(lines[:-1]) == sorted([ids["big"][:12], ids["small"][:12]]), r.stdout
    assert lines[-1].startswith("Total reclaimed space: 3.") and lines[-1].endswith("MB"), r.stdout
    assert [c["name"] for c in env.ps()] == ["live"]
    r = env.mc("prune", "-f", check=True)
    assert r.stdout == "Total reclaimed space: 0B\n", r.stdout
