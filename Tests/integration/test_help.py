"""Help, messages, completion and man pages (issue 16, item 10 and commands
item 9): run --help keeps the bundle-only flags apart and no flag's spelling
runs into its description; usage errors name their command; the bash
completion script is valid bash and completes commands, flags and container
names; the man pages are generated from the same command table.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import BIN, ROOTFS, mc
from test_run import Env, env, run  # noqa: F401 (env is a fixture)

BUNDLE_ONLY = ["--bundle", "--console-socket", "--pid-file", "--no-pivot", "--no-new-keyring", "--preserve-fds", "--keep"]


def sections(text):
    out, cur = {}, None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            cur = line[:-1]
            out[cur] = []
        elif cur and line.startswith("  "):
            out[cur].append(line)
    return out


def test_run_help_keeps_bundle_flags_apart_and_columns_clear():
    r = mc("run", "--help", check=True)
    s = sections(r.stdout)
    docker = [k for k in s if k.startswith("Docker-style flags")]
    bundle = [k for k in s if k.startswith("Bundle flags")]
    assert docker and bundle, list(s)
    docker_text = "\n".join(s[docker[0]])
    for f in BUNDLE_ONLY:
        assert not re.search(rf"^  (-\w, )?{f}\b", docker_text, re.M), f
        assert re.search(rf"^  (-\w, )?{f}\b", "\n".join(s[bundle[0]]), re.M), f
    for f in ("--rm", "--name", "-v, --volume", "--restart", "--memory"):
        assert re.search(rf"^  {re.escape(f)}", docker_text, re.M), f
    # A flag's spelling never runs into its description: it starts at
    # column 32 after two spaces at least, or, after a spelling too long for
    # that, on the next line; no line is wider than 80 columns.
    for c in ("run", "exec", "ps", "stop", "create"):
        lines = mc(c, "--help", check=True).stdout.splitlines()
        for n, line in enumerate(lines):
            assert len(line) <= 80 or line.startswith("Usage:"), (c, line)
            if re.match(r"^  -", line):
                spelling = line[2:].split("  ")[0]
                if 2 + len(spelling) <= 30:
                    assert len(line) > 32 and line[30:32] == "  " and line[32] != " ", (c, line)
                else:
                    assert line == "  " + spelling, (c, line)
                    assert lines[n + 1].startswith(" " * 32) and lines[n + 1][32] != " ", (c, line)


def test_long_flag_spelling_puts_description_below():
    out = mc("run", "--help", check=True).stdout.splitlines()
    [i] = [n for n, l in enumerate(out) if l.startswith("  -p, --publish")]
    assert re.fullmatch(r"  -p, --publish \S+", out[i]) and len(out[i]) > 30, out[i]
    assert out[i + 1].startswith(" " * 32 + "publish"), out[i + 1]


@pytest.mark.parametrize("args,prefix", [
    (["stop"], "minicontainer: stop: "),
    (["rm"], "minicontainer: rm: "),
    (["logs"], "minicontainer: logs: "),
    (["kill"], "minicontainer: kill: "),
    (["run", "--foo"], "minicontainer: run: unknown flag --foo"),
    (["ps", "--bogus"], "minicontainer: ps: unknown flag --bogus"),
    (["stop", "-t", "x", "a"], "minicontainer: stop: -t needs a number"),
    (["exec"], "minicontainer: exec: "),
    (["inspect"], "minicontainer: inspect: "),
    (["completion", "tcsh"], "minicontainer: completion: "),
])
def test_usage_errors_name_their_command(args, prefix):
    r = mc(*args)
    assert r.returncode == 125, (args, r.stdout)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), (args, r.stderr)
    # Said once: not "stop: stop needs".
    assert not lines[0].startswith(f"minicontainer: {args[0]}: {args[0]} "), r.stderr


def complete(words, root=None, env_vars=None, tmp=None):
    """Runs the bash completion function on `words` (the last one the word
    being completed) and returns COMPREPLY."""
    script = subprocess.run([BIN, "completion", "bash"], capture_output=True, text=True, check=True).stdout
    line = " ".join(["minicontainer", *words])
    quoted = " ".join("'" + w + "'" for w in ["minicontainer", *words])
    prog = script + f"\nCOMP_WORDS=({quoted})\nCOMP_CWORD={len(words)}\n_minicontainer\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
    binDir = os.path.join(tmp, "bin")
    os.makedirs(binDir, exist_ok=True)
    link = os.path.join(binDir, "minicontainer")
    if not os.path.exists(link):
        os.symlink(BIN, link)
    e = dict(os.environ, **(env_vars or {}))
    e["PATH"] = binDir + ":" + e["PATH"]
    r = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=e)
    assert r.returncode == 0, r.stderr
    return [l for l in r.stdout.splitlines() if l]


def test_bash_completion_is_valid_and_completes(env, tmp_path):
    script = mc("completion", "bash", check=True).stdout
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert set(complete(["st"], tmp=str(tmp_path))) >= {"start", "stop", "state"}
    assert "__complete" not in complete([""], tmp=str(tmp_path)) and "__man" not in complete([""], tmp=str(tmp_path))
    assert set(complete(["run", "--res"], tmp=str(tmp_path))) == {"--restart"}
    assert set(complete(["stop", "-"], tmp=str(tmp_path))) == {"-t", "--time", "--timeout"}
    run(env, "-d", "--name", "completeme", "--network", "none", "--rootfs", ROOTFS, "sleep", "30", check=True)
    got = complete(["--root", env.root, "stop", "comp"], env_vars={"MINICONTAINER_DATA": env.data}, tmp=str(tmp_path))
    assert got == ["completeme"], got
    assert complete(["completion", "z"], tmp=str(tmp_path)) == ["zsh"]


def test_completion_never_runs_a_name_as_code(env, tmp_path):
    """A container name reaches bash's completion: compgen -W would expand
    $(...) in it. A metadata file with such a name (names are validated,
    so only a forged file can hold one) neither runs nor is offered."""
    marker = tmp_path / "pwned"
    cid = "e" * 64
    d = os.path.join(env.data, "containers", cid)
    os.makedirs(d)
    with open(os.path.join(d, "container.json"), "w") as f:
        json.dump({"id": cid, "name": f"$(touch {marker})x", "created": "", "createdUnix": 0, "command": [], "rootfs": "",
                   "ociRoot": env.root, "autoRemove": False, "detached": False}, f)
    got = complete(["--root", env.root, "stop", ""], env_vars={"MINICONTAINER_DATA": env.data}, tmp=str(tmp_path))
    got += complete(["--root", env.root, "stop", "$"], env_vars={"MINICONTAINER_DATA": env.data}, tmp=str(tmp_path))
    assert not marker.exists()
    assert got == ["eeeeeeeeeeee"], got
    subprocess.run(["rm", "-rf", d])


@pytest.mark.parametrize("shell,check", [("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])])
def test_zsh_and_fish_scripts_parse(shell, check):
    if not shutil.which(check[0]):
        pytest.skip(f"{check[0]} is not installed")
    script = mc("completion", shell, check=True).stdout
    r = subprocess.run(check, input=script, text=True, capture_output=True)
    assert r.returncode == 0, r.stderr


def test_man_pages_come_from_the_command_table(tmp_path):
    d = tmp_path / "man"
    mc("__man", str(d), check=True)
    names = sorted(os.listdir(d))
    helptext = mc("--help", check=True).stdout
    cmds = [l.split()[0] for l in helptext.split("Commands:\n")[1].split("\n\n")[0].splitlines()]
    assert names == sorted(["minicontainer.1"] + [f"minicontainer-{c}.1" for c in cmds]), names
    page = (d / "minicontainer-stop.1").read_text()
    assert page.startswith(".TH MINICONTAINER\\-STOP 1") and "\\-\\-timeout" in page and ".SH OPTIONS" in page
    if shutil.which("groff"):
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(d / "minicontainer-run.1")], capture_output=True, text=True)
        assert r.returncode == 0 and "restart" in r.stdout and r.stderr == "", r.stderr
