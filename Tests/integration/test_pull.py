"""minicontainer pull (and login, logout, run --pull) against registries on
127.0.0.1 (registrykit.py): Debian's docker-registry, plain, with htpasswd
basic auth, with token auth (our token server) and with TLS (a test CA);
a fault-injecting proxy in front of it and a plain blob host it redirects
to. Nothing leaves the machine.

Covered: pull by tag and by digest of OCI, Docker schema 2 and zstd images
(the unpacked tree is umoci's), short names, run of a pulled image and
--pull missing|always|never, a second pull that fetches no blob, images
--digests and image inspect; a multi-platform index (default and
--platform); the anonymous token flow, short-lived tokens and a 401 in the
middle of a pull, credentials through login/logout, auth.json (0600),
--authfile, --password-stdin, XDG_RUNTIME_DIR and DOCKER_CONFIG; TLS
without the CA, with --cert-dir, certs.d, --tls-verify=false and an
insecure entry; faults: a dropped connection (resumed with Range), 503 and
429 with Retry-After, a stall (retried) and one that never ends (timed
out), a corrupt byte (digest; the store as it was), a redirect to another
host (no Authorization sent there), an unreachable registry, an unknown
repository and tag, an oversized and a schema 1 manifest; two concurrent
pulls sharing a layer (one download); SIGINT (exit 130, partial kept,
resumed); progress on a terminal and off one.

The test_kit_* tests check the fixtures themselves with skopeo and plain
HTTP requests, so they pass whatever minicontainer does. Each test has
its own MINICONTAINER_DATA, registries.json and auth files under tmp.
"""
import base64
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack

import pytest

import imagekit as ik
import registrykit as rk
from conftest import BIN, run_in_pty
from test_images import Store, assert_consistent

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(bool(rk.missing_tools()), reason=f"missing: {', '.join(rk.missing_tools())}"),
]

MiB = 1 << 20
HEX64 = re.compile(r"^[0-9a-f]{64}$")
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
AUTH_WORDS = re.compile(r"unauthori[sz]ed|authenticat", re.I)
PULL_TIMEOUT = 60  # a hang guard: every image here is a few MB on 127.0.0.1


# MARK: - images and registries, built once per module

@pytest.fixture(scope="module")
def images(tmp_path_factory, rootfs):
    """busybox ("base") and images on it: plain (+/marker), fat (+6 MiB of
    random data, so a drop or a stall is in the middle of a stream),
    shared-a and shared-b (each its own marker on the same base), and the
    amd64/arm64 index "multi". With umoci's unpacked trees of plain and fat."""
    root = tmp_path_factory.mktemp("pull-images")
    lay = rk.base_layout(str(root), rootfs)
    rk.image_with(lay, "plain", {"marker": b"plain\n"})
    rk.image_with(lay, "fat", {"fat.bin": os.urandom(6 * MiB), "marker": b"fat\n"})
    rk.image_with(lay, "shared-a", {"marker": b"a\n"})
    rk.image_with(lay, "shared-b", {"marker": b"b\n"})
    rk.multiarch(lay)
    out = {"root": str(root), "layout": lay,
           "tree-plain": ik.umoci_tree(lay, "plain", str(root)), "tree-fat": ik.umoci_tree(lay, "fat", str(root))}
    yield out
    shutil.rmtree(str(root), ignore_errors=True)


class Seeded:
    """A started registry and what was pushed to it: per reference its
    manifest digest and raw manifest (as the registry serves it)."""

    def __init__(self, reg, token=None):
        self.reg, self.token, self.host = reg, token, reg.host
        self.digest, self.manifest = {}, {}

    def push(self, images, tag, ref, **kw):
        self.digest[ref] = rk.push(images["layout"].path, tag, self.reg, ref, **kw)
        self.manifest[ref] = rk.raw_manifest(self.reg, ref)
        return self.digest[ref]

    def ref(self, ref):
        return f"{self.host}/{ref}"

    def layers(self, ref):
        return [l["digest"] for l in self.manifest[ref]["layers"]]

    def config(self, ref):
        return self.manifest[ref]["config"]["digest"]


@pytest.fixture(scope="module")
def plain_reg(tmp_path_factory, images):
    """Plain HTTP, no auth, every test image."""
    root = tmp_path_factory.mktemp("reg-plain")
    with rk.Registry(str(root)) as reg:
        s = Seeded(reg)
        s.push(images, "plain", "mc/plain:1")
        s.push(images, "plain", "mc/v2s2:1", format="v2s2")
        s.push(images, "plain", "mc/zstd:1", compress="zstd")
        s.push(images, "fat", "mc/fat:1")
        s.push(images, "shared-a", "mc/shared-a:1")
        s.push(images, "shared-b", "mc/shared-b:1")
        s.push(images, "multi", "mc/multi:1", format=None, all=True)
        s.push(images, "plain", "library/busybox:latest")
        s.push(images, "fat", "team/app:latest")
        yield s
    shutil.rmtree(str(root), ignore_errors=True)


def _token_registry(root, images, **ts_kw):
    stack = ExitStack()
    ts = stack.enter_context(rk.TokenServer(str(root), users={"alice": "s3cret"}, **ts_kw))
    reg = stack.enter_context(rk.Registry(str(root), token=ts))
    s = Seeded(reg, ts)
    s.push(images, "plain", "mc/plain:1")
    s.push(images, "fat", "mc/fat:1")
    return stack, s


@pytest.fixture(scope="module")
def token_reg(tmp_path_factory, images):
    """Token auth; anonymous pull allowed (alice may push)."""
    root = tmp_path_factory.mktemp("reg-token")
    stack, s = _token_registry(root, images, anonymous=True)
    with stack:
        yield s
    shutil.rmtree(str(root), ignore_errors=True)


@pytest.fixture(scope="module")
def private_reg(tmp_path_factory, images):
    """Token auth; only alice (password s3cret) gets a token."""
    root = tmp_path_factory.mktemp("reg-private")
    stack, s = _token_registry(root, images, anonymous=False)
    with stack:
        yield s
    shutil.rmtree(str(root), ignore_errors=True)


@pytest.fixture(scope="module")
def basic_reg(tmp_path_factory, images):
    """htpasswd basic auth: bob, password hunter2."""
    root = tmp_path_factory.mktemp("reg-basic")
    with rk.Registry(str(root), htpasswd={"bob": "hunter2"}) as reg:
        s = Seeded(reg)
        s.push(images, "plain", "mc/plain:1")
        yield s
    shutil.rmtree(str(root), ignore_errors=True)


@pytest.fixture(scope="module")
def tls_reg(tmp_path_factory, images):
    """HTTPS with a certificate of the test CA (IP 127.0.0.1, DNS localhost)."""
    root = tmp_path_factory.mktemp("reg-tls")
    ca = rk.CA(str(root / "ca"))
    with rk.Registry(str(root), tls=ca) as reg:
        s = Seeded(reg)
        s.push(images, "plain", "mc/plain:1")
        yield s
    shutil.rmtree(str(root), ignore_errors=True)


@pytest.fixture
def proxy(plain_reg):
    """A FaultProxy of its own (fresh rules and log) in front of plain_reg."""
    with rk.FaultProxy.to(plain_reg.reg) as p:
        yield p


# MARK: - the client side: a store, registries.json and auth files under tmp

class Client(Store):
    """A Store (test_images) whose environment also names registries.json,
    the auth file and DOCKER_CONFIG, all under tmp."""

    def __init__(self, tmp):
        tmp = str(tmp)
        data = os.path.join(tmp, "data")
        self.conf_path = os.path.join(tmp, "registries.json")
        self.authfile = os.path.join(tmp, "auth", "auth.json")
        self.docker_config = os.path.join(tmp, "docker")
        os.makedirs(os.path.dirname(self.authfile))
        os.makedirs(self.docker_config)
        env = dict(os.environ, MINICONTAINER_DATA=data, MINICONTAINER_REGISTRIES_CONF=self.conf_path,
                   REGISTRY_AUTH_FILE=self.authfile, DOCKER_CONFIG=self.docker_config)
        super().__init__(env, data, tmp)
        self.settings = {"search": [], "insecure": [], "connectTimeout": 5, "stallTimeout": 3, "retryTimeout": 20}
        self.conf()

    def conf(self, **kw):
        self.settings.update(kw)
        with open(self.conf_path, "w") as f:
            json.dump(self.settings, f)
        return self

    def trust(self, *hosts):
        """Marks hosts insecure (plain HTTP or unverified TLS)."""
        return self.conf(insecure=self.settings["insecure"] + [rk._host_of(h) for h in hosts])

    def pull(self, ref, *opts, timeout=PULL_TIMEOUT):
        return self.mc("pull", *opts, ref, timeout=timeout)

    def pulled(self, ref, *opts, timeout=PULL_TIMEOUT):
        """A pull that works: returns the image id it printed (64 hex)."""
        r = self.pull(ref, *opts, timeout=timeout)
        assert r.returncode == 0, f"pull {ref}: {r.returncode}: {r.stderr}"
        lines = r.stdout.strip().splitlines()
        assert lines and HEX64.match(lines[-1]), f"no image id on stdout: {r.stdout!r}"
        self.last = r
        return lines[-1]

    def pull_fails(self, ref, *opts, timeout=PULL_TIMEOUT):
        """exit 125 and one error line, 'minicontainer: pull: ...', the last
        on stderr; progress lines may come before it, except with -q, where
        it is the only line."""
        r = self.mc("pull", *opts, ref, timeout=timeout)
        assert r.returncode == 125, f"pull {ref}: expected 125, got {r.returncode}: {r.stdout} {r.stderr}"
        assert r.stdout == "", r.stdout
        lines = r.stderr.strip().splitlines()
        errors = [l for l in lines if l.startswith("minicontainer:")]
        assert len(errors) == 1 and lines[-1] == errors[0], f"expected one error line, the last: {r.stderr!r}"
        assert errors[0].startswith("minicontainer: pull: "), errors[0]
        if "-q" in opts or "--quiet" in opts:
            assert len(lines) == 1, f"-q: expected only the error: {r.stderr!r}"
        return errors[0]

    def core(self):
        """index.json and everything under blobs/ and layers/."""
        return {k: v for k, v in self.listing().items()
                if k == "index.json" or k.split(os.sep)[0] in ("blobs", "layers")}

    def partials(self):
        """{relative path: size} of the files under images/partial/."""
        base = os.path.join(self.images, "partial")
        out = {}
        for dirpath, _, files in os.walk(base):
            for n in files:
                p = os.path.join(dirpath, n)
                out[os.path.relpath(p, base)] = os.path.getsize(p)
        return out

    def no_images(self):
        idx = os.path.join(self.images, "index.json")
        return not os.path.exists(idx) or self.index()["manifests"] == []

    def tmp_empty(self):
        d = os.path.join(self.images, "tmp")
        return not os.path.isdir(d) or os.listdir(d) == []

    def layer_dirs_of(self, ref):
        return [l["Dir"] for l in self.inspect(ref)["Layers"]]


@pytest.fixture
def client(tmp_path):
    c = Client(tmp_path)
    yield c
    with open("/proc/self/mountinfo") as f:
        left = [l.split()[4] for l in f if str(tmp_path) in l.split()[4]]
    for m in reversed(left):
        subprocess.run(["umount", "-l", m])
    assert not left, f"mounts left: {left}"


def short(digest):
    return digest.split(":", 1)[1][:12]


def blob_re(digest):
    return "/blobs/" + re.escape(digest) + "$"


def same_tree(c, ref, want):
    ours = ik.overlay_tree(c.layer_dirs_of(ref))
    diff = {k: (ours.get(k), want.get(k)) for k in set(ours) | set(want) if ours.get(k) != want.get(k)}
    assert not diff, f"trees differ: {diff}"


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# MARK: - the fixtures themselves (skopeo and plain HTTP; no minicontainer)

def test_kit_registry_serves_every_format(plain_reg):
    m = plain_reg.manifest
    assert all(l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip" for l in m["mc/plain:1"]["layers"])
    assert m["mc/v2s2:1"]["mediaType"] == rk.V2S2_MANIFEST
    assert all(l["mediaType"].endswith("+zstd") for l in m["mc/zstd:1"]["layers"])
    idx = m["mc/multi:1"]
    assert idx["mediaType"] == rk.OCI_INDEX
    assert sorted(e["platform"]["architecture"] for e in idx["manifests"]) == ["amd64", "arm64"]
    assert rk.inspect(plain_reg.reg, "mc/multi:1", arch="arm64")["Architecture"] == "arm64"
    assert rk.inspect(plain_reg.reg, "mc/multi:1", arch="amd64")["Architecture"] == "amd64"
    # shared-a and shared-b share their first layer (busybox) and no other.
    a, b = plain_reg.layers("mc/shared-a:1"), plain_reg.layers("mc/shared-b:1")
    assert a[0] == b[0] and a[1] != b[1]
    # The registry's blob files are the blobs (BlobHost serves them from there).
    fat = plain_reg.layers("mc/fat:1")[1]
    assert os.path.getsize(plain_reg.reg.blob_path(fat)) > 5 * MiB
    assert plain_reg.reg.proc.poll() is None


def test_kit_proxy_is_transparent_and_logs(plain_reg, proxy, tmp_path):
    out = tmp_path / "copy"
    ik.sh("skopeo", "copy", "--quiet", "--src-tls-verify=false", "--src-no-creds",
          f"docker://{proxy.host}/mc/fat:1", f"dir:{out}")
    for d in plain_reg.layers("mc/fat:1"):
        assert (out / d.split(":")[1]).stat().st_size == os.path.getsize(plain_reg.reg.blob_path(d))
        got = proxy.log_for(blob_re(d), "GET")
        assert len(got) == 1 and got[0].status == 200 and got[0].done, got
        assert got[0].sent == os.path.getsize(plain_reg.reg.blob_path(d))
    assert proxy.count("GET", "/manifests/") >= 1
    # Uploads go through too (skopeo push: POST, PATCH, PUT).
    lay = ik.Layout(str(tmp_path / "lay"))
    ik.skopeo_copy(f"dir:{out}", f"oci:{lay.path}:x")
    rk.push(lay.path, "x", proxy, "mc/through-proxy:1")
    assert proxy.count("PATCH", "/blobs/uploads/") + proxy.count("PUT", "/blobs/uploads/") >= 1
    assert rk.inspect(plain_reg.reg, "mc/through-proxy:1")["Digest"] == rk.inspect(proxy, "mc/through-proxy:1")["Digest"]


def test_kit_proxy_faults(plain_reg, proxy):
    fat = plain_reg.layers("mc/fat:1")[1]
    path = f"/v2/mc/fat/blobs/{fat}"
    with open(plain_reg.reg.blob_path(fat), "rb") as f:
        blob = f.read()
    # Range goes upstream: 206 and the tail.
    st, hd, body = rk.get(proxy.url, path, headers={"Range": "bytes=100-"})
    assert st == 206 and body == blob[100:] and hd["content-range"].startswith("bytes 100-")
    # drop_after: headers saying the whole size, n bytes, then the end.
    proxy.on(blob_re(fat)).drop_after(MiB)
    with pytest.raises(rk.http.client.IncompleteRead) as e:
        rk.get(proxy.url, path)
    proxy.settle()
    assert len(e.value.partial) == MiB and proxy.log[-1].sent == MiB and proxy.log[-1].error == "dropped"
    assert rk.get(proxy.url, path)[2] == blob  # times=1: the next is whole
    # status: 429 with Retry-After, once.
    proxy.on(blob_re(fat)).status(429, retry_after=1)
    st, hd, _ = rk.get(proxy.url, path)
    assert st == 429 and hd["retry-after"] == "1"
    assert rk.get(proxy.url, path)[0] == 200
    assert [e.status for e in proxy.log_for(blob_re(fat))][-2:] == [429, 200]
    # corrupt: one byte, at the blob's offset whatever the range.
    proxy.on(blob_re(fat)).corrupt(2 * MiB + 5)
    body = rk.get(proxy.url, path)[2]
    diff = [i for i in range(len(blob)) if body[i] != blob[i]] if len(body) == len(blob) else None
    assert diff == [2 * MiB + 5]
    body = rk.get(proxy.url, path, headers={"Range": f"bytes={2 * MiB}-"})[2]
    assert body[5] != blob[2 * MiB + 5] and body[6:] == blob[2 * MiB + 6:]
    proxy.clear()
    # stall: the rest comes after the pause, or at once when cancelled.
    proxy.on(blob_re(fat)).stall(1.0, after_bytes=1000)
    t = time.time()
    assert rk.get(proxy.url, path)[2] == blob and time.time() - t >= 0.9
    rule = proxy.on(blob_re(fat)).stall(600)
    threading.Timer(0.5, rule.cancel).start()
    t = time.time()
    assert rk.get(proxy.url, path, timeout=30)[2] == blob and time.time() - t < 20
    # redirect and reply.
    proxy.on("/blobs/").redirect("http://127.0.0.1:9/cdn")
    st, hd, _ = rk.get(proxy.url, path)
    assert st == 307 and hd["location"] == "http://127.0.0.1:9/cdn" + path
    proxy.clear()
    proxy.on("/manifests/", methods=("GET", "HEAD")).reply(b'{"schemaVersion": 1}', rk.SCHEMA1_MANIFEST)
    st, hd, body = rk.get(proxy.url, "/v2/mc/fat/manifests/1", method="HEAD")
    assert st == 200 and hd["content-type"] == rk.SCHEMA1_MANIFEST and body == b""
    proxy.settle()
    entry = proxy.log[-1]
    assert (entry.method, entry.status, entry.fault, entry.auth) == ("HEAD", 200, "reply", False)


def test_kit_proxy_relays_chunked_and_keeps_alive():
    """An upstream that answers chunked gets re-chunked, and the client's
    connection stays open for the next request."""
    class Chunky(rk._Service):
        class handler(rk._Quiet):
            def do_GET(self):
                self.send_response_only(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in (b"abc", b"x" * 70000, b"end"):
                    self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

    with Chunky() as up, rk.FaultProxy(up.url) as p:
        conn = rk.http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
        try:
            for _ in range(3):
                conn.request("GET", "/v2/x")
                r = conn.getresponse()
                assert r.getheader("Transfer-Encoding") == "chunked" and r.read() == b"abc" + b"x" * 70000 + b"end"
            assert len(p.server.conns) == 1  # one connection for the three
        finally:
            conn.close()
        assert [e.sent for e in p.log_for("/v2/x")] == [70006] * 3


def test_kit_proxy_drop_is_a_network_failure_to_skopeo(plain_reg, proxy, tmp_path):
    """A real client sees the cut blob as a network failure ("unexpected
    EOF") and gets it whole on its next try (skopeo 1.9 does not resume
    with Range; test_kit_proxy_faults checks Range goes through)."""
    fat = plain_reg.layers("mc/fat:1")[1]
    proxy.on(blob_re(fat)).drop_after(2 * MiB)
    src = f"docker://{proxy.host}/mc/fat:1"
    r = rk.skopeo("copy", "--quiet", "--src-tls-verify=false", "--src-no-creds", src, f"dir:{tmp_path / 'a'}",
                  check=False)
    assert r.returncode != 0 and "unexpected EOF" in r.stderr, r.stderr
    rk.skopeo("copy", "--quiet", "--src-tls-verify=false", "--src-no-creds", src, f"dir:{tmp_path / 'b'}")
    log = proxy.log_for(blob_re(fat), "GET")
    assert [(e.sent, e.error) for e in log] == [(2 * MiB, "dropped"), (os.path.getsize(plain_reg.reg.blob_path(fat)), None)]


def test_kit_token_auth(token_reg, private_reg, tmp_path):
    ts = token_reg.token
    n = len(ts.requests)
    assert rk.inspect(token_reg.reg, "mc/plain:1", creds="")["Digest"] == token_reg.digest["mc/plain:1"]
    new = ts.requests[n:]
    assert new and not new[0]["auth"] and new[0]["status"] == 200
    assert "repository:mc/plain:pull" in new[0]["scopes"][0]
    # The claims the registry accepted.
    st, _, body = rk.get(ts.url, "/token?service=" + ts.service + "&scope=repository:mc/plain:pull")
    tok = json.loads(body)
    assert st == 200 and tok["token"] == tok["access_token"] and tok["expires_in"] == ts.expires_in
    header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in tok["token"].split(".")[:2])
    assert header["alg"] == "RS256" and len(header["x5c"]) == 2
    assert set(claims) == {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"}
    assert claims["aud"] == ts.service and claims["access"] == [{"type": "repository", "name": "mc/plain", "actions": ["pull"]}]
    st, _, _ = rk.get(token_reg.reg.url, "/v2/mc/plain/manifests/1",
                      headers={"Authorization": "Bearer " + tok["token"], "Accept": rk.OCI_MANIFEST})
    assert st == 200
    st, hd, _ = rk.get(token_reg.reg.url, "/v2/mc/plain/manifests/1", headers={"Accept": rk.OCI_MANIFEST})
    assert st == 401 and hd["www-authenticate"].startswith(f'Bearer realm="{ts.realm}"')
    # A token for another repository does not open this one.
    other = json.loads(rk.get(ts.url, "/token?service=" + ts.service + "&scope=repository:mc/fat:pull")[2])["token"]
    assert rk.get(token_reg.reg.url, "/v2/mc/plain/manifests/1",
                  headers={"Authorization": "Bearer " + other, "Accept": rk.OCI_MANIFEST})[0] == 401
    # Private: nothing without credentials, wrong ones refused, right ones work.
    assert rk.skopeo("inspect", "--tls-verify=false", "--no-creds", f"docker://{private_reg.ref('mc/plain:1')}",
                     check=False).returncode != 0
    assert rk.skopeo("inspect", "--tls-verify=false", "--creds", "alice:wrong",
                     f"docker://{private_reg.ref('mc/plain:1')}", check=False).returncode != 0
    assert rk.inspect(private_reg.reg, "mc/plain:1", creds="alice:s3cret")["Digest"] == private_reg.digest["mc/plain:1"]
    last = private_reg.token.requests[-1]
    assert last["user"] == "alice" and last["status"] == 200
    assert [r["status"] for r in private_reg.token.requests if r["user"] == "alice" and r["status"] == 401]
    # A 401 injected mid-way is the registry's own challenge.
    with rk.FaultProxy.to(token_reg.reg) as p:
        p.on("/manifests/").unauthorized()
        st, hd, _ = rk.get(p.url, "/v2/mc/plain/manifests/1",
                           headers={"Authorization": "Bearer " + tok["token"], "Accept": rk.OCI_MANIFEST})
        assert st == 401 and "scope=" in hd["www-authenticate"]
        assert p.log[-1].auth  # as it came from the client


def test_kit_redirect_to_blob_host(token_reg, tmp_path):
    """skopeo follows the proxy's 307 to the blob host, and sends its token
    only to the registry."""
    with rk.FaultProxy.to(token_reg.reg) as p, rk.BlobHost(token_reg.reg) as bh:
        p.on("/blobs/").redirect(bh.url)
        ik.sh("skopeo", "copy", "--quiet", "--src-tls-verify=false", "--src-no-creds",
              f"docker://{p.host}/mc/fat:1", f"dir:{tmp_path / 'copy'}")
        blobs = token_reg.layers("mc/fat:1") + [token_reg.config("mc/fat:1")]
        assert sorted(r["path"].rsplit("/", 1)[1] for r in bh.log) == sorted(blobs)
        assert all(r["status"] == 200 for r in bh.log) and not bh.saw_authorization()
        assert all(e.status == 307 and e.auth for e in p.log_for("/blobs/"))
        st, _, body = rk.get(bh.url, f"/v2/mc/fat/blobs/{blobs[0]}", headers={"Range": "bytes=10-"})
        assert st == 206 and len(body) == os.path.getsize(token_reg.reg.blob_path(blobs[0])) - 10


def test_kit_basic_auth(basic_reg):
    ref = f"docker://{basic_reg.ref('mc/plain:1')}"
    assert rk.skopeo("inspect", "--tls-verify=false", "--no-creds", ref, check=False).returncode != 0
    assert rk.skopeo("inspect", "--tls-verify=false", "--creds", "bob:wrong", ref, check=False).returncode != 0
    assert rk.inspect(basic_reg.reg, "mc/plain:1", creds="bob:hunter2")["Digest"] == basic_reg.digest["mc/plain:1"]
    with open(os.path.join(basic_reg.reg.dir, "htpasswd")) as f:
        assert re.match(r"bob:\$2[aby]\$", f.read())


def test_kit_tls(tls_reg, tmp_path):
    ref = f"docker://{tls_reg.ref('mc/plain:1')}"
    r = rk.skopeo("inspect", "--tls-verify=true", "--no-creds", ref, check=False)
    assert r.returncode != 0 and "x509" in r.stderr
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(tls_reg.reg.ca.cert, certs / "ca.crt")
    assert rk.inspect(tls_reg.reg, "mc/plain:1", tls_verify=True, cert_dir=str(certs))["Digest"] == \
        tls_reg.digest["mc/plain:1"]
    # The name localhost is in the certificate too.
    r = rk.skopeo("inspect", "--tls-verify=true", "--no-creds", "--cert-dir", str(certs),
                  f"docker://localhost:{tls_reg.reg.port}/mc/plain:1", check=False)
    assert r.returncode == 0, r.stderr
    # The proxy speaks TLS upstream (unverified), plain HTTP to its clients.
    with rk.FaultProxy.to(tls_reg.reg) as p:
        assert rk.inspect(p, "mc/plain:1")["Digest"] == tls_reg.digest["mc/plain:1"]
        assert p.count("GET", "/manifests/") >= 1
    text = ik.sh("openssl", "x509", "-noout", "-text", "-in", tls_reg.reg.cert)
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text


def test_kit_big_image_cli(tmp_path, rootfs):
    d = tmp_path / "big"
    r = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "registrykit.py"), "big-image", str(d),
                        "--rootfs", rootfs, "--layers", "2", "--mb", "4"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout == f"{d}\n", r.stderr
    info = json.loads(ik.sh("skopeo", "inspect", f"oci:{d}:big"))
    assert len(info["Layers"]) == 3
    _, man = ik.Layout(str(d)).manifest_of("big")
    assert all(l["size"] > 2 * MiB - 4096 for l in man["layers"][1:])  # random: gzip did not shrink them


# MARK: - pull: formats, references, the store

def test_pull_by_tag(client, plain_reg, images):
    client.trust(plain_reg)
    ref = plain_reg.ref("mc/plain:1")
    image_id = client.pulled(ref)
    assert image_id == plain_reg.config("mc/plain:1").split(":")[1]
    info = client.inspect(ref)
    assert {"Id", "RepoTags", "RepoDigests", "Architecture", "Os", "Config", "RootFS"} <= set(info)
    assert info["Id"] == "sha256:" + image_id
    assert ref in info["RepoTags"]
    assert f"{plain_reg.host}/mc/plain@{plain_reg.digest['mc/plain:1']}" in info["RepoDigests"]
    assert (info["Architecture"], info["Os"]) == (HOST_ARCH, "linux")
    assert info["Config"]["Cmd"] == ["/bin/sh"] and "FROM=imagekit" in info["Config"]["Env"]
    assert len(info["RootFS"]["Layers"]) == 2
    same_tree(client, ref, images["tree-plain"])
    table = client.ok("images", "--digests").splitlines()
    assert "DIGEST" in table[0].split()
    assert any(plain_reg.digest["mc/plain:1"] in row and "mc/plain" in row for row in table[1:]), table
    # The store is an OCI layout that skopeo reads: the manifest pulled is the registry's.
    idx = client.index()
    assert plain_reg.digest["mc/plain:1"] in [m["digest"] for m in idx["manifests"]]
    assert_consistent(client)


def test_pull_by_digest_quiet(client, plain_reg):
    client.trust(plain_reg)
    digest = plain_reg.digest["mc/plain:1"]
    ref = f"{plain_reg.host}/mc/plain@{digest}"
    r = client.pull(ref, "-q")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and HEX64.match(r.stdout.strip()) and r.stdout.count("\n") == 1
    info = client.inspect(ref)
    assert ref in info["RepoDigests"] and info["Id"] == "sha256:" + r.stdout.strip()
    # A digest the registry does not have: one line naming it.
    line = client.pull_fails(f"{plain_reg.host}/mc/plain@sha256:{'0' * 64}")
    assert "0" * 12 in line
    assert_consistent(client)


def test_pull_docker_schema2(client, plain_reg, images):
    client.trust(plain_reg)
    ref = plain_reg.ref("mc/v2s2:1")
    image_id = client.pulled(ref)
    assert image_id == plain_reg.config("mc/v2s2:1").split(":")[1]
    info = client.inspect(ref)
    assert f"{plain_reg.host}/mc/v2s2@{plain_reg.digest['mc/v2s2:1']}" in info["RepoDigests"]
    same_tree(client, ref, images["tree-plain"])
    assert_consistent(client)


def test_pull_zstd_layers(client, plain_reg, images):
    client.trust(plain_reg)
    ref = plain_reg.ref("mc/zstd:1")
    client.pulled(ref)
    info = client.inspect(ref)
    assert all(l["MediaType"].endswith("+zstd") for l in info["Layers"])
    same_tree(client, ref, images["tree-plain"])
    assert_consistent(client)


def test_short_names_use_the_default_registry(client, plain_reg):
    client.trust(plain_reg).conf(default=plain_reg.host)
    client.pulled("busybox")
    assert client.inspect(f"{plain_reg.host}/library/busybox:latest")["Id"] == "sha256:" + \
        plain_reg.config("library/busybox:latest").split(":")[1]
    client.pulled("team/app")
    assert client.inspect(f"{plain_reg.host}/team/app:latest")["Id"] == "sha256:" + \
        plain_reg.config("team/app:latest").split(":")[1]
    assert_consistent(client)


def test_run_pulls_what_is_missing(client, plain_reg, proxy):
    client.trust(proxy)
    ref = f"{proxy.host}/mc/plain:1"
    before = client.core()
    client.fails("run", "--rm", "--network", "none", "--pull", "never", ref, "cat", "/marker", timeout=PULL_TIMEOUT)
    assert client.core() == before and proxy.log == []
    out = client.ok("run", "--rm", "--network", "none", ref, "cat", "/marker", timeout=PULL_TIMEOUT)
    assert out.splitlines()[-1] == "plain"
    assert proxy.count("GET", "/blobs/") == 3  # two layers and the config
    proxy.reset_log()
    # missing: present, so the registry is not asked at all.
    out = client.ok("run", "--rm", "--network", "none", ref, "cat", "/marker", timeout=PULL_TIMEOUT)
    assert out == "plain\n" and proxy.log == []
    # always: the manifest is asked for again; no blob is fetched.
    out = client.ok("run", "--rm", "--network", "none", "--pull", "always", ref, "cat", "/marker",
                    timeout=PULL_TIMEOUT)
    assert out.splitlines()[-1] == "plain"
    assert proxy.count("GET", "/manifests/") + proxy.count("HEAD", "/manifests/") >= 1
    assert proxy.count("GET", "/blobs/") == 0
    out = client.ok("run", "--rm", "--network", "none", "--pull", "never", ref, "cat", "/marker")
    assert out == "plain\n"
    assert_consistent(client)


def test_second_pull_fetches_no_blob_and_progress_lines(client, plain_reg, proxy):
    """Not on a terminal: one line per layer when it starts and one when it
    ends, each with the layer's short digest; a layer already there is
    'already present' (or 'exists') and not asked for."""
    client.trust(proxy)
    ref = f"{proxy.host}/mc/fat:1"
    client.pulled(ref)
    err = client.last.stderr
    assert "\r" not in err and "\x1b[" not in err
    lines = err.splitlines()
    for d in plain_reg.layers("mc/fat:1"):
        assert len([l for l in lines if short(d) in l]) >= 2, (short(d), err)
    assert proxy.count("GET", "/blobs/") == 3
    proxy.reset_log()
    image_id = client.pulled(ref)
    assert proxy.count("GET", "/blobs/") == 0 and proxy.count("HEAD", "/blobs/") == 0, proxy.log_for("/blobs/")
    for d in plain_reg.layers("mc/fat:1"):
        mine = [l for l in client.last.stderr.splitlines() if short(d) in l]
        assert mine and all(re.search(r"already present|exists", l) for l in mine), client.last.stderr
    # Another image on the same base: only its own layer comes.
    proxy.reset_log()
    client.pulled(f"{proxy.host}/mc/plain:1")
    base, own = plain_reg.layers("mc/plain:1")
    assert proxy.count("GET", blob_re(base)) == 0 and proxy.count("GET", blob_re(own)) == 1
    assert client.inspect(ref)["Id"] == "sha256:" + image_id
    assert_consistent(client)


def test_multi_platform_index(client, plain_reg, tmp_path):
    client.trust(plain_reg)
    ref = plain_reg.ref("mc/multi:1")
    client.pulled(ref)
    info = client.inspect(ref)
    assert info["Architecture"] == HOST_ARCH
    # The index's digest or the amd64 manifest's: the contract does not say which.
    assert any(d.startswith(f"{plain_reg.host}/mc/multi@sha256:") for d in info["RepoDigests"]), info
    if HOST_ARCH == "amd64":
        out = client.ok("run", "--rm", "--network", "none", "--pull", "never", ref, "cat", "/marker")
        assert out == "amd64\n"
    other = Client(tmp_path / "arm")
    other.trust(plain_reg)
    other.pulled(ref, "--platform", "linux/arm64")
    info = other.inspect(ref)
    assert info["Architecture"] == "arm64"
    with open(os.path.join(other.layer_dirs_of(ref)[-1], "marker")) as f:
        assert f.read() == "arm64\n"
    before = other.core()
    line = other.pull_fails(ref, "--platform", "linux/s390x")
    assert "linux/s390x" in line and other.core() == before
    assert_consistent(other)


# MARK: - authentication

def test_anonymous_token_flow(client, token_reg):
    ts = token_reg.token
    with rk.FaultProxy.to(token_reg.reg) as p:
        client.trust(p)
        n = len(ts.requests)
        client.pulled(f"{p.host}/mc/plain:1")
        reqs = ts.requests[n:]
        assert reqs and all(not r["auth"] and r["status"] == 200 for r in reqs), reqs
        assert any(s.startswith("repository:mc/plain:pull") for r in reqs for s in r["scopes"]), reqs
        log = p.log_for("")
        assert (log[0].auth, log[0].status) == (False, 401), log
        assert log[0].time <= reqs[0]["time"]
        fetched = [e for e in log if e.method == "GET" and ("/manifests/" in e.path or "/blobs/" in e.path)]
        assert fetched and all(e.auth and e.status == 200 for e in fetched if e.time > reqs[0]["time"]), log
        assert len([e for e in fetched if e.status == 200]) >= 4  # manifest, config, two layers
    assert_consistent(client)


@pytest.fixture
def short_tokens(token_reg):
    """token_reg's tokens say they last 1 s for the test (clients take at
    least 60 s; the registry allows 60 s of leeway)."""
    ts = token_reg.token
    saved, ts.expires_in = ts.expires_in, 1
    yield ts
    ts.expires_in = saved


def test_short_lived_tokens_work_across_pulls(client, token_reg, short_tokens):
    with rk.FaultProxy.to(token_reg.reg) as p:
        client.trust(p)
        n = len(short_tokens.requests)
        client.pulled(f"{p.host}/mc/fat:1")
        client.pulled(f"{p.host}/mc/plain:1")
        assert all(r["status"] == 200 for r in short_tokens.requests[n:])
        log = p.log_for("")
        assert len([e for e in log if e.method == "GET" and "/blobs/" in e.path and e.status == 200]) >= 5, log
        assert all(e.status < 400 for e in log if e.auth), log
    assert_consistent(client)


def test_a_401_mid_pull_gets_a_new_token(client, token_reg, short_tokens):
    """The registry's 401 (with its challenge) on one layer, after the first
    token worked: the client asks for a new token and goes on."""
    ts = short_tokens
    with rk.FaultProxy.to(token_reg.reg) as p:
        client.trust(p)
        fat = token_reg.layers("mc/fat:1")[1]
        p.on(blob_re(fat)).unauthorized(times=1)
        n = len(ts.requests)
        client.pulled(f"{p.host}/mc/fat:1")
        log = p.log_for(blob_re(fat), "GET")
        assert [e.status for e in log][:1] == [401] and log[-1].status in (200, 206) and log[-1].auth, log
        renewed = [r for r in ts.requests[n:] if r["time"] >= log[0].time]
        assert renewed and renewed[0]["status"] == 200, ts.requests[n:]
        assert all(e.status < 400 for e in p.log_for("") if e.time > log[-1].time)
    assert_consistent(client)


def _auth_entry(path, host):
    with open(path) as f:
        auths = json.load(f)["auths"]
    return auths.get(host)


def test_token_credentials_login_logout(client, private_reg):
    host = private_reg.host
    ref = private_reg.ref("mc/plain:1")
    client.trust(private_reg)
    before = client.core()
    line = client.pull_fails(ref)
    assert AUTH_WORDS.search(line), line
    assert client.core() == before and client.tmp_empty()
    # Wrong password: 125, nothing stored.
    line = client.fails("login", "-u", "alice", "-p", "wrong", host)
    assert AUTH_WORDS.search(line) and not os.path.exists(client.authfile), line
    out = client.ok("login", "-u", "alice", "-p", "s3cret", host)
    assert "Login Succeeded!" in out
    assert os.stat(client.authfile).st_mode & 0o777 == 0o600
    assert _auth_entry(client.authfile, host)["auth"] == base64.b64encode(b"alice:s3cret").decode()
    assert private_reg.token.requests[-1]["user"] == "alice"
    n = len(private_reg.token.requests)
    client.pulled(ref)
    assert any(r["user"] == "alice" and r["status"] == 200 for r in private_reg.token.requests[n:])
    client.ok("logout", host)
    assert _auth_entry(client.authfile, host) is None
    client.ok("rmi", ref)
    line = client.pull_fails(ref)
    assert AUTH_WORDS.search(line), line
    assert_consistent(client)


def test_login_password_stdin_and_authfile_flag(client, private_reg, tmp_path):
    host = private_reg.host
    client.trust(private_reg)
    mine = str(tmp_path / "elsewhere.json")
    out = client.ok("login", "-u", "alice", "--password-stdin", "--authfile", mine, host, input="s3cret\n")
    assert "Login Succeeded!" in out and not os.path.exists(client.authfile)
    assert os.stat(mine).st_mode & 0o777 == 0o600
    assert _auth_entry(mine, host)["auth"] == base64.b64encode(b"alice:s3cret").decode()
    line = client.pull_fails(private_reg.ref("mc/plain:1"))
    assert AUTH_WORDS.search(line)
    client.pulled(private_reg.ref("mc/plain:1"), "--authfile", mine)
    client.ok("logout", "--authfile", mine, host)
    assert _auth_entry(mine, host) is None


def test_basic_auth_login_logout_default_authfile(client, basic_reg, tmp_path):
    """htpasswd; with no REGISTRY_AUTH_FILE the file is
    $XDG_RUNTIME_DIR/containers/auth.json."""
    host = basic_reg.host
    ref = basic_reg.ref("mc/plain:1")
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    del client.env["REGISTRY_AUTH_FILE"]
    client.env["XDG_RUNTIME_DIR"] = str(xdg)
    authfile = str(xdg / "containers" / "auth.json")
    client.trust(basic_reg)
    line = client.pull_fails(ref)
    assert AUTH_WORDS.search(line), line
    line = client.fails("login", "-u", "bob", "-p", "wrong", host)
    assert AUTH_WORDS.search(line) and not os.path.exists(authfile)
    assert "Login Succeeded!" in client.ok("login", "-u", "bob", "-p", "hunter2", host)
    assert os.stat(authfile).st_mode & 0o777 == 0o600
    assert _auth_entry(authfile, host)["auth"] == base64.b64encode(b"bob:hunter2").decode()
    client.pulled(ref)
    client.ok("logout", host)
    assert _auth_entry(authfile, host) is None
    client.ok("rmi", ref)
    assert AUTH_WORDS.search(client.pull_fails(ref))
    assert_consistent(client)


def test_docker_config_credentials(client, basic_reg):
    host = basic_reg.host
    client.trust(basic_reg)
    with open(os.path.join(client.docker_config, "config.json"), "w") as f:
        json.dump({"auths": {host: {"auth": base64.b64encode(b"bob:hunter2").decode()}}}, f)
    assert not os.path.exists(client.authfile)
    client.pulled(basic_reg.ref("mc/plain:1"))
    assert_consistent(client)


# MARK: - TLS

@pytest.mark.parametrize("how", ["no-ca", "cert-dir", "certs.d", "tls-verify-false", "insecure"])
def test_tls(client, tls_reg, tmp_path, how):
    ref = tls_reg.ref("mc/plain:1")
    opts = []
    made = []
    try:
        if how == "no-ca":
            before = client.core()
            line = client.pull_fails(ref)
            assert re.search(r"certificate|TLS", line), line
            assert client.core() == before and client.no_images() and client.tmp_empty()
            return
        if how == "cert-dir":
            d = tmp_path / "certs"
            d.mkdir()
            shutil.copy(tls_reg.reg.ca.cert, d / "ca.crt")
            opts = ["--cert-dir", str(d)]
        elif how == "certs.d":
            d = f"/etc/containers/certs.d/{tls_reg.host}"
            for p in ["/etc/containers", "/etc/containers/certs.d", d]:
                if not os.path.isdir(p):
                    os.mkdir(p)
                    made.append(p)
            shutil.copy(tls_reg.reg.ca.cert, os.path.join(d, "ca.crt"))
            made.append(os.path.join(d, "ca.crt"))
        elif how == "tls-verify-false":
            opts = ["--tls-verify=false"]
        elif how == "insecure":
            client.trust(tls_reg)
        image_id = client.pulled(ref, *opts)
        assert image_id == tls_reg.config("mc/plain:1").split(":")[1]
        assert_consistent(client)
    finally:
        for p in reversed(made):
            if os.path.isfile(p):
                os.unlink(p)
            else:
                try:
                    os.rmdir(p)
                except OSError:  # another run's certs.d entry in it: it removes its own
                    pass


# MARK: - faults through the proxy

@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
def test_dropped_connection_resumes_with_range(client, plain_reg, proxy, images, rst):
    """Cut after 2 of 6 MiB (a FIN, or an RST): the next request for the
    blob asks for the rest only."""
    client.trust(proxy)
    fat = plain_reg.layers("mc/fat:1")[1]
    proxy.on(blob_re(fat)).drop_after(2 * MiB, rst=rst)
    ref = f"{proxy.host}/mc/fat:1"
    client.pulled(ref)
    log = proxy.log_for(blob_re(fat), "GET")
    assert log[0].sent == 2 * MiB and log[0].error == "dropped", log
    resumed = [e for e in log[1:] if e.range_start()]
    assert resumed and resumed[0].status == 206, log
    assert proxy.count("GET", blob_re(fat), ranged=False) == 1, log
    same_tree(client, ref, images["tree-fat"])
    assert not any(fat.split(":")[1] in p for p in client.partials())
    assert_consistent(client)


@pytest.mark.parametrize("code,retry_after,where", [(503, None, "blob"), (429, 1, "blob"), (503, None, "manifest")])
def test_transient_status_is_retried(client, plain_reg, proxy, code, retry_after, where):
    client.trust(proxy)
    fat = plain_reg.layers("mc/fat:1")[1]
    rx = blob_re(fat) if where == "blob" else "/manifests/1$"
    proxy.on(rx, methods=("GET", "HEAD")).status(code, retry_after=retry_after, times=1)
    client.pulled(f"{proxy.host}/mc/fat:1")
    log = [e for e in proxy.log_for(rx) if e.method in ("GET", "HEAD")]
    assert [e.status for e in log][0] == code and log[-1].status == 200 and len(log) >= 2, log
    if retry_after:
        assert log[1].time - log[0].end >= retry_after * 0.9, "Retry-After not waited for"
    assert_consistent(client)


def test_stall_is_retried(client, plain_reg, proxy, images):
    client.trust(proxy).conf(stallTimeout=2)
    fat = plain_reg.layers("mc/fat:1")[1]
    proxy.on(blob_re(fat)).stall(30, after_bytes=MiB, times=1)
    t = time.time()
    ref = f"{proxy.host}/mc/fat:1"
    client.pulled(ref, timeout=60)
    assert time.time() - t < 30, "the stall was waited out, not timed out"
    log = proxy.log_for(blob_re(fat), "GET")
    assert len(log) >= 2 and log[0].fault == "stall", log
    same_tree(client, ref, images["tree-fat"])
    assert_consistent(client)


def test_endless_stall_times_out(client, plain_reg, proxy):
    client.trust(proxy).conf(stallTimeout=2, retryTimeout=8)
    client.pulled(f"{proxy.host}/mc/plain:1")
    before = client.core()
    fat = plain_reg.layers("mc/fat:1")[1]
    proxy.on(blob_re(fat)).stall(600, after_bytes=MiB, times=None)
    t = time.time()
    line = client.pull_fails(f"{proxy.host}/mc/fat:1", timeout=60)
    assert "timed out" in line and time.time() - t < 60, line
    assert client.core() == before and client.tmp_empty()
    assert_consistent(client)


def test_corrupt_byte_fails_digest_and_changes_nothing(client, plain_reg, proxy):
    client.trust(proxy)
    client.pulled(f"{proxy.host}/mc/plain:1")
    before = client.core()
    fat = plain_reg.layers("mc/fat:1")[1]
    proxy.on(blob_re(fat)).corrupt(3 * MiB)
    line = client.pull_fails(f"{proxy.host}/mc/fat:1")
    assert "digest" in line, line
    assert client.core() == before and client.tmp_empty()
    assert not any(fat.split(":")[1] in p for p in client.partials()), client.partials()
    assert_consistent(client)


def test_redirect_to_blob_host_sends_no_token(client, token_reg, images):
    with rk.FaultProxy.to(token_reg.reg) as p:
        bh = p.blob_host()
        client.trust(p, bh)
        p.on("/blobs/").redirect(bh.url)
        ref = f"{p.host}/mc/fat:1"
        client.pulled(ref)
        got = {r["path"].rsplit("/", 1)[1] for r in bh.log if r["method"] == "GET"}
        assert got == set(token_reg.layers("mc/fat:1")) | {token_reg.config("mc/fat:1")}, bh.log
        assert not bh.saw_authorization(), bh.log
        assert all(e.status == 307 for e in p.log_for("/blobs/"))
        assert any(e.auth for e in p.log_for("/blobs/")), "the registry itself got no token"
        same_tree(client, ref, images["tree-fat"])
    assert_consistent(client)


def test_unreachable_registry_unknown_repository_and_tag(client, plain_reg):
    port = rk.free_port()
    client.trust(f"127.0.0.1:{port}", plain_reg)
    line = client.pull_fails(f"127.0.0.1:{port}/mc/plain:1", timeout=60)
    assert f"127.0.0.1:{port}" in line, line
    line = client.pull_fails(plain_reg.ref("mc/nothing:1"))
    assert "mc/nothing" in line, line
    line = client.pull_fails(plain_reg.ref("mc/plain:nope"))
    assert "mc/plain" in line and "nope" in line, line
    assert client.no_images() and client.tmp_empty()


def test_oversized_manifest(client, plain_reg, proxy):
    client.trust(proxy)
    body = b'{"schemaVersion": 2, "mediaType": "%s", "pad": "' % rk.OCI_MANIFEST.encode()
    body += b"x" * (5 * MiB - len(body) - 2) + b'"}'
    proxy.on("/manifests/", methods=("GET", "HEAD")).reply(body, rk.OCI_MANIFEST)
    line = client.pull_fails(f"{proxy.host}/mc/plain:1")
    assert "manifest" in line and re.search(r"larger|limit", line), line
    assert client.no_images() and client.tmp_empty()
    assert proxy.count("GET", "/blobs/") == 0


def test_schema1_manifest(client, plain_reg, proxy):
    client.trust(proxy)
    body = json.dumps({"schemaVersion": 1, "name": "mc/plain", "tag": "1", "architecture": "amd64",
                       "fsLayers": [{"blobSum": plain_reg.layers("mc/plain:1")[0]}],
                       "history": [{"v1Compatibility": "{}"}], "signatures": []}, indent=3).encode()
    proxy.on("/manifests/", methods=("GET", "HEAD")).reply(body, rk.SCHEMA1_MANIFEST)
    line = client.pull_fails(f"{proxy.host}/mc/plain:1")
    assert re.search(r"schema ?1", line), line
    assert client.no_images() and client.tmp_empty()


# MARK: - concurrency, SIGINT, progress on a terminal

def test_concurrent_pulls_download_a_shared_layer_once(client, plain_reg, proxy):
    """The shared layer's first response stalls 1.5 s, so the second pull
    comes while the first still downloads it: it waits, it does not fetch."""
    client.trust(proxy).conf(stallTimeout=10)
    base = plain_reg.layers("mc/shared-a:1")[0]
    proxy.on(blob_re(base)).stall(1.5, after_bytes=64 << 10, times=1)
    procs = [subprocess.Popen([BIN, "pull", f"{proxy.host}/mc/shared-{x}:1"], env=client.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for x in "ab"]
    try:
        for p in procs:
            out, err = p.communicate(timeout=PULL_TIMEOUT)
            assert p.returncode == 0 and HEX64.match(out.strip().splitlines()[-1]), err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert proxy.count("GET", blob_re(base), ranged=False) == 1, proxy.log_for(blob_re(base))
    a, b = (client.layer_dirs_of(f"{proxy.host}/mc/shared-{x}:1") for x in "ab")
    assert a[0] == b[0] and a[1] != b[1]
    for x in "ab":
        out = client.ok("run", "--rm", "--network", "none", "--pull", "never", f"{proxy.host}/mc/shared-{x}:1",
                        "cat", "/marker")
        assert out == f"{x}\n"
    assert_consistent(client)


def test_sigint_keeps_the_partial_and_the_next_pull_resumes(client, plain_reg, proxy, images):
    client.trust(proxy).conf(stallTimeout=120, retryTimeout=300)
    fat = plain_reg.layers("mc/fat:1")[1]
    rule = proxy.on(blob_re(fat)).stall(600, after_bytes=2 * MiB, times=1)
    ref = f"{proxy.host}/mc/fat:1"
    p = subprocess.Popen([BIN, "pull", ref], env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: [e for e in proxy.log_for(blob_re(fat), settle=False) if e.sent >= 2 * MiB], 60,
                 "the stalled blob")
        try:
            wait_for(lambda: any(v > 0 for v in client.partials().values()), 10, "a partial file")
        except AssertionError:
            pass  # written at the end, perhaps: checked below
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, (p.returncode, err)
    parts = client.partials()
    assert parts and any(v > 0 for v in parts.values()), parts
    assert client.no_images() and client.tmp_empty()
    rule.cancel()
    proxy.reset_log()
    client.pulled(ref)
    log = proxy.log_for(blob_re(fat), "GET")
    assert log and log[0].range_start() and log[0].range_start() > 0 and log[0].status == 206, log
    assert not any(fat.split(":")[1] in n for n in client.partials())
    same_tree(client, ref, images["tree-fat"])
    assert_consistent(client)


def test_progress_on_a_terminal(client, plain_reg, proxy):
    """On a pty the progress redraws in place (a carriage return not
    followed by a newline, or an escape sequence) and ends with the id."""
    client.trust(proxy).conf(stallTimeout=10)
    fat = plain_reg.layers("mc/fat:1")[1]
    proxy.on(blob_re(fat)).stall(1.5, after_bytes=MiB)
    out, code = run_in_pty([BIN, "pull", f"{proxy.host}/mc/fat:1"], [], timeout=PULL_TIMEOUT, env=client.env)
    assert code == 0, out
    assert re.search(rb"\r(?!\n)|\x1b\[", out), out
    text = out.decode(errors="replace")
    assert short(fat) in text
    image_id = plain_reg.config("mc/fat:1").split(":")[1]
    assert re.search(r"(^|\n)" + image_id + r"\r?\n", text), text[-500:]
    assert_consistent(client)
