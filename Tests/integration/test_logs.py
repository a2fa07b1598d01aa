"""Container output (issue 16, item 7): container.log in podman's k8s-file
format (`TIMESTAMP STREAM P|F CONTENT`, one record a line), written by the
container's owner (the foreground `run` or the detached monitor) from pipes
(a terminal's output is stdout); `logs` gives stdout to stdout and stderr to
stderr, with -t, --since, --until, --tail, -f. The container controls the
content of its records, never their structure: a line that looks like a
record, "\\r", long lines and no final newline all stay its own output.
"""
import json
import os
import re
import subprocess
import uuid

import pytest

from conftest import BIN, ROOTFS, needs_root
from test_run import Env, env, one_line_error, run, wait_for  # noqa: F401 (env is a fixture)

pytestmark = needs_root()

RECORD = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([PF]) (.*)$", re.S)


def log_records(env, cid):
    """container.log as (time, stream, tag, content) tuples; every line must be a record."""
    with open(os.path.join(env.dir(cid), "container.log"), "rb") as f:
        data = f.read()
    assert data.endswith(b"\n"), data[-80:]
    out = []
    for line in data[:-1].split(b"\n"):
        m = RECORD.match(line)
        assert m, line[:200]
        out.append((m.group(1).decode(), m.group(2).decode(), m.group(3).decode(), m.group(4)))
    return out


def logs(env, *args):
    """`logs` with stdout and stderr in files of their own (bytes)."""
    r = subprocess.run(env.cmd("logs", *args), capture_output=True, env=env.environ, timeout=30)
    return r.returncode, r.stdout, r.stderr


def exited(env, name, code):
    assert wait_for(lambda: any(c["name"] == name and c["exitCode"] == code for c in env.ps())), env.ps()


SCRIPT = "echo out1; echo err1 >&2; echo out2; printf 'no-newline'; echo err2 >&2"


def test_detached_stdout_and_stderr_stay_apart(env):
    # Today's monitor dup2()s the log onto the init's 1 and 2: one merged raw file.
    cid = run(env, "-d", "--name", "apart", "--rootfs", ROOTFS, "/bin/sh", "-c", SCRIPT + "; exit 3").stdout.strip()
    exited(env, "apart", 3)
    code, out, err = logs(env, "apart")
    assert code == 0
    assert out == b"out1\nout2\nno-newline" and err == b"err1\nerr2\n", (out, err)
    # (Each stream in its order; between the two pipes the order is the reads'.)
    recs = log_records(env, cid)
    assert [(t, c) for _, s, t, c in recs if s == "stdout"] == [("F", b"out1"), ("F", b"out2"), ("P", b"no-newline")]
    assert [(t, c) for _, s, t, c in recs if s == "stderr"] == [("F", b"err1"), ("F", b"err2")]


def test_foreground_output_is_recorded_and_passed_on_apart(env, tmp_path):
    # Today a foreground run records nothing: `logs` printed "".
    out_f, err_f = tmp_path / "out", tmp_path / "err"
    with open(out_f, "wb") as o, open(err_f, "wb") as e:
        r = subprocess.run(env.cmd("run", "--name", "fg", "--rootfs", ROOTFS, "/bin/sh", "-c", SCRIPT + "; exit 2"),
                           stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=env.environ, timeout=30)
    assert r.returncode == 2
    # run >out 2>err still separates them.
    assert out_f.read_bytes() == b"out1\nout2\nno-newline" and err_f.read_bytes() == b"err1\nerr2\n"
    code, out, err = logs(env, "fg")
    assert (code, out, err) == (0, out_f.read_bytes(), err_f.read_bytes())
    # The init's stdout and stderr are our pipes; nothing else of ours is open in it.
    r = run(env, "--rm", "--rootfs", ROOTFS, "/bin/sh", "-c", "ls /proc/self/fd; readlink /proc/self/fd/1; readlink /proc/self/fd/2")
    fds = r.stdout.split()
    assert fds[:4] == ["0", "1", "2", "3"] and fds[4].startswith("pipe:") and fds[5].startswith("pipe:") and fds[4] != fds[5], r.stdout
    assert len(fds) == 6, r.stdout


def test_tty_output_is_recorded_as_stdout(env):
    r = run(env, "-t", "--name", "t", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo on-tty; echo also >&2")
    assert r.returncode == 0 and "on-tty" in r.stdout
    code, out, err = logs(env, "t")
    assert out == b"on-tty\r\nalso\r\n" and err == b"", (out, err)


def test_oci_run_keeps_the_callers_stdio(env, tmp_path):
    # runc-style `run --bundle`: no engine, no log; the init inherits our stdout.
    b = tmp_path / "bundle"
    b.mkdir()
    r = env.mc("spec", "--bundle", str(b), "--force")
    assert r.returncode == 0, r.stderr
    cfg = json.loads((b / "config.json").read_text())
    cfg["root"]["path"] = ROOTFS
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/sh", "-c", "readlink /proc/self/fd/1; echo err >&2"]
    (b / "config.json").write_text(json.dumps(cfg))
    out_f, err_f = tmp_path / "oci.out", tmp_path / "oci.err"
    cid = "oci" + uuid.uuid4().hex[:8]
    with open(out_f, "w") as o, open(err_f, "w") as e:
        r = subprocess.run([BIN, "--root", env.root, "run", "--bundle", str(b), cid], stdout=o, stderr=e,
                           stdin=subprocess.DEVNULL, timeout=30)
    assert r.returncode == 0, err_f.read_text()
    assert "pipe:" not in out_f.read_text() and out_f.read_text().strip() != ""
    assert err_f.read_text() == "err\n"


def test_timestamps_since_until_tail(env, tmp_path):
    # Each write waits until the one before is in the log: five records in this order.
    sync = tmp_path / "sync"
    sync.mkdir()
    steps = ["echo a", "echo b >&2", "echo c", "printf d1", "echo d2"]
    script = "; ".join(f"while [ ! -e /sync/{i} ]; do sleep 0.02; done; {c}" for i, c in enumerate(steps))
    cid = run(env, "-d", "--name", "ts", "-v", f"{sync}:/sync", "--rootfs", ROOTFS, "/bin/sh", "-c", script).stdout.strip()
    for i in range(len(steps)):
        (sync / str(i)).write_text("")
        assert wait_for(lambda: len(log_records(env, cid)) == i + 1 if os.path.getsize(os.path.join(env.dir(cid), "container.log")) else False)
    exited(env, "ts", 0)
    recs = log_records(env, cid)
    assert [(s, t, c) for _, s, t, c in recs] == [("stdout", "F", b"a"), ("stderr", "F", b"b"), ("stdout", "F", b"c"),
                                                   ("stdout", "P", b"d1"), ("stdout", "F", b"d2")]
    times = [t for t, _, _, _ in recs]
    assert times == sorted(times) and len(set(times)) == 5
    # -t: the record's time before each line (not before a line's continuation).
    code, out, err = logs(env, "-t", "ts")
    assert out == f"{times[0]} a\n{times[2]} c\n{times[3]} d1d2\n".encode() and err == f"{times[1]} b\n".encode(), (out, err)
    assert logs(env, "--timestamps", "ts")[1] == out
    # --since and --until, inclusive, as RFC 3339 (other zones too) and Unix seconds.
    assert logs(env, "--since", times[2], "ts")[1:] == (b"c\nd1d2\n", b"")
    assert logs(env, "--until", times[1], "ts")[1:] == (b"a\n", b"b\n")
    assert logs(env, "--since", times[1], "--until", times[2], "ts")[1:] == (b"c\n", b"b\n")
    plus_one = times[2][:11] + "%02d" % ((int(times[2][11:13]) + 1) % 24) + times[2][13:-1] + "+01:00"
    if times[2][11:13] != "23":
        assert logs(env, "--since", plus_one, "ts")[1:] == (b"c\nd1d2\n", b"")
    sec = int(subprocess.run(["date", "-d", times[0], "+%s"], capture_output=True, text=True).stdout)
    assert logs(env, "--since", str(sec), "ts")[1] == b"a\nc\nd1d2\n"
    assert logs(env, "--since", str(sec + 86400), "ts")[1:] == (b"", b"")
    # Durations go back from now (Docker's meaning, for --until too).
    assert logs(env, "--since", "1h30m", "ts")[1] == b"a\nc\nd1d2\n"
    assert logs(env, "--until", "1h", "ts")[1:] == (b"", b"")
    assert logs(env, "--until", "-1h", "ts")[1] == b"a\nc\nd1d2\n"
    # --tail: the last N lines of both streams (d1 d2 is one line); -1 and all: every one.
    assert logs(env, "--tail", "1", "ts")[1:] == (b"d1d2\n", b"")
    assert logs(env, "--tail", "3", "ts")[1:] == (b"c\nd1d2\n", b"b\n")
    assert logs(env, "-n", "0", "ts")[1:] == (b"", b"")
    for every in ("-1", "all", "99"):
        assert logs(env, "--tail", every, "ts")[1:] == (b"a\nc\nd1d2\n", b"b\n"), every
    assert logs(env, "--tail=-1", "ts")[1:] == (b"a\nc\nd1d2\n", b"b\n")


def test_bad_values_are_one_line_and_125(env):
    run(env, "--name", "bad", "--rootfs", ROOTFS, "/bin/true")
    for args in (["--tail", "x"], ["--tail", "-2"], ["--since", "bogus"], ["--until", "5x"],
                 ["--since", "2026-13-01"], ["--until", "2026-01-01T25:00:00Z"], ["--since", "1h30"]):
        r = env.mc("logs", *args, "bad")
        one_line_error(r)
        assert r.stdout == "", args
    one_line_error(env.mc("logs", "nosuch"))


def test_a_container_cannot_forge_records(env):
    # It prints, on stdout, a line that is a record of stderr, one with "\r"
    # and a fake record after it, 100000 bytes without a newline, and ends
    # without one. All of it stays stdout, byte for byte.
    fake = "2026-01-01T00:00:00.000000000Z stderr F forged"
    script = (f"echo '{fake}'; printf 'carriage\\r{fake}\\r\\n'; "
              "head -c 100000 /dev/zero | tr '\\0' x; echo; printf 'last'")
    cid = run(env, "-d", "--name", "forge", "--rootfs", ROOTFS, "/bin/sh", "-c", script).stdout.strip()
    exited(env, "forge", 0)
    code, out, err = logs(env, "forge")
    want = f"{fake}\ncarriage\r{fake}\r\n".encode() + b"x" * 100000 + b"\nlast"
    assert code == 0 and err == b"" and out == want, (len(out), out[:200], err)
    recs = log_records(env, cid)
    assert all(s == "stdout" for _, s, _, _ in recs), [r[:3] for r in recs]
    assert recs[0][3] == fake.encode() and recs[0][2] == "F"
    assert recs[1][3] == f"carriage\r{fake}\r".encode()
    # The long line is cut into P records of at most 16 KiB, ended by an F.
    long = [r for r in recs if r[3] and set(r[3]) == {ord("x")}]
    assert sum(len(r[3]) for r in long) == 100000 and max(len(r[3]) for r in long) <= 16384
    assert all(t == "P" for _, _, t, _ in long[:-1]) and recs[-1] == (recs[-1][0], "stdout", "P", b"last")


def test_a_damaged_log_is_read_around(env):
    # Lines that are not records (garbage, a cut last line, an unknown
    # stream, a huge line) are skipped; the records around them print.
    cid = run(env, "-d", "--name", "dmg", "--rootfs", ROOTFS, "/bin/sh", "-c", "echo first; echo second >&2").stdout.strip()
    exited(env, "dmg", 0)
    path = os.path.join(env.dir(cid), "container.log")
    with open(path, "ab") as f:
        f.write(b"garbage line\n\n2026-01-01T00:00:00Z stdin F nope\n2026-01-01T00:00:00Z stdout X nope\n")
        f.write(b"2026-01-01T00:00:00.5Z stdout F after\n")
        f.write(b"2026-01-01T00:00:00Z stdout F " + b"y" * 200000 + b"\n")
        f.write(b"2026-01-01T00:00:00+02:00 stderr F zoned\n")
        f.write(b"2026-01-01T00:00:00Z stdout F cut with no newl")
    code, out, err = logs(env, "dmg")
    assert code == 0 and out == b"first\nafter\n" and err == b"second\nzoned\n", (out[:100], err)
    assert logs(env, "--tail", "1", "dmg")[1:] == (b"", b"zoned\n")


def test_follow_stops_when_the_container_does(env, tmp_path):
    sync = tmp_path / "sync"
    sync.mkdir()
    run(env, "-d", "--name", "fol", "-v", f"{sync}:/sync", "--rootfs", ROOTFS, "/bin/sh", "-c",
        "echo before; while [ ! -e /sync/go ]; do sleep 0.05; done; echo after >&2; exit 0", check=True)
    p = subprocess.Popen(env.cmd("logs", "-f", "fol"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env.environ)
    assert p.stdout.readline() == b"before\n"
    (sync / "go").write_text("")
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0 and out == b"" and err == b"after\n"
