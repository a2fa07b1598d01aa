"""An unprivileged user for the rootless tests (issue 18), made by the tests.

`rootless_user` (session fixture, in conftest.py) creates the user
`mcrootless` (uid 23450, gid 23450) with a home under /tmp, a run directory
/run/user/23450 (mode 0700, its own) and the subordinate ranges
300000:65536 in /etc/subuid and /etc/subgid. At the end of the session it
fails if the user still has a process or a mount left, then removes the
user, its lines, its home and its run directory.

`User.run(args, env=..., xdg=...)` runs a command as the user through
setpriv (no PAM, no login shell), with a clean environment: HOME, PATH,
XDG_RUNTIME_DIR and XDG_DATA_HOME of the `Xdg` given (or the user's own),
plus `env`. `User.mc(*args)` runs the minicontainer binary under test.

`Xdg(user, tmp)`: a fresh XDG_RUNTIME_DIR and XDG_DATA_HOME for one test
(owned by the user, under the test's tmp dir), so tests do not share state.
"""
import os
import pwd
import shutil
import subprocess

NAME = "mcrootless"
UID = 23450
GID = 23450
SUB_START = 300000
SUB_COUNT = 65536
HOME = f"/tmp/{NAME}-home"
RUN_DIR = f"/run/user/{UID}"


def _strip_lines(path, prefix):
    try:
        with open(path) as f:
            lines = f.readlines()
    except FileNotFoundError:
        return
    kept = [line for line in lines if not line.startswith(prefix)]
    if kept != lines:
        with open(path, "w") as f:
            f.writelines(kept)


def user_processes(uid=UID):
    """Pids of processes whose real or effective uid is `uid`, or that run in
    a user namespace it owns (uid_map's host id)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        ids = [int(x) for x in line.split()[1:]]
                        if uid in ids or any(SUB_START <= i < SUB_START + SUB_COUNT for i in ids):
                            out.append(int(d))
                        break
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return out


class Xdg:
    """A test's own XDG_RUNTIME_DIR and XDG_DATA_HOME, owned by the user."""

    def __init__(self, user, tmp):
        base = os.path.join(str(tmp), "xdg")
        self.runtime = os.path.join(base, "run")
        self.data = os.path.join(base, "data")
        # The user must be able to reach them: every parent is searchable.
        p = str(tmp)
        while p not in ("/", ""):
            st = os.stat(p)
            if not st.st_mode & 0o001:
                os.chmod(p, st.st_mode | 0o001)
            p = os.path.dirname(p)
        for d in (base, self.runtime, self.data):
            os.makedirs(d, exist_ok=True)
            os.chown(d, user.uid, user.gid)
        os.chmod(self.runtime, 0o700)

    @property
    def root(self):
        return os.path.join(self.runtime, "minicontainer")

    @property
    def store(self):
        return os.path.join(self.data, "minicontainer")

    def env(self):
        return {"XDG_RUNTIME_DIR": self.runtime, "XDG_DATA_HOME": self.data}


class User:
    def __init__(self, binary):
        self.name, self.uid, self.gid, self.home = NAME, UID, GID, HOME
        self.binary = binary
        self.sub_start, self.sub_count = SUB_START, SUB_COUNT

    def environment(self, env=None, xdg=None):
        e = {"HOME": self.home, "USER": self.name, "LOGNAME": self.name,
             "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
             "XDG_RUNTIME_DIR": RUN_DIR, "XDG_DATA_HOME": os.path.join(self.home, ".local", "share")}
        if "MINICONTAINER_REGISTRIES_CONF" in os.environ:
            e["MINICONTAINER_REGISTRIES_CONF"] = os.environ["MINICONTAINER_REGISTRIES_CONF"]
        if xdg is not None:
            e.update(xdg.env())
        e.update(env or {})
        return e

    def argv(self, args, env=None, xdg=None, cwd=None):
        e = self.environment(env, xdg)
        pre = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--reset-env", "--"]
        return pre + ["env", "-i"] + [f"{k}={v}" for k, v in e.items()] + [str(a) for a in args]

    def run(self, args, env=None, xdg=None, input=None, cwd=None, timeout=120, check=False):
        r = subprocess.run(self.argv(args, env, xdg), capture_output=True, text=True, input=input,
                           cwd=cwd or self.home, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"as {self.name}: {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}{r.stdout}")
        return r

    def mc(self, *args, **kw):
        return self.run([self.binary, *args], **kw)

    def popen(self, args, env=None, xdg=None, **kw):
        return subprocess.Popen(self.argv(args, env, xdg), cwd=self.home, **kw)


def create_user():
    _remove_user()
    subprocess.run(["groupadd", "-g", str(GID), NAME], check=True)
    subprocess.run(["useradd", "-u", str(UID), "-g", str(GID), "-d", HOME, "-M", "-s", "/bin/sh", NAME], check=True)
    os.makedirs(HOME, mode=0o700, exist_ok=True)
    os.chown(HOME, UID, GID)
    for f in ("/etc/subuid", "/etc/subgid"):
        _strip_lines(f, NAME + ":")
        with open(f, "a") as fh:
            fh.write(f"{NAME}:{SUB_START}:{SUB_COUNT}\n")
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    os.chown(RUN_DIR, UID, GID)
    os.chmod(RUN_DIR, 0o700)


def mounts_of_user(paths):
    """Mount points under any of `paths` (the user's dirs)."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if any(line.split()[4].startswith(p) for p in paths)]


def _remove_user():
    try:
        pwd.getpwnam(NAME)
    except KeyError:
        pass
    else:
        subprocess.run(["pkill", "-KILL", "-u", NAME], check=False)
        subprocess.run(["userdel", NAME], check=False, capture_output=True)
    subprocess.run(["groupdel", NAME], check=False, capture_output=True)
    for f in ("/etc/subuid", "/etc/subgid"):
        _strip_lines(f, NAME + ":")
    shutil.rmtree(HOME, ignore_errors=True)
    shutil.rmtree(RUN_DIR, ignore_errors=True)


def leftovers():
    """What the user left on the machine: processes and mounts."""
    found = []
    procs = user_processes()
    if procs:
        found.append(f"processes of {NAME}: {procs}")
    mnts = mounts_of_user([HOME, RUN_DIR])
    if mnts:
        found.append(f"mounts: {mnts}")
    return found


def remove_user():
    _remove_user()
