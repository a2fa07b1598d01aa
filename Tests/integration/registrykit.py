"""Registries on 127.0.0.1 for the pull tests, and what seeds them. Nothing
here talks to anything but the loopback address.

- `Registry(dir, htpasswd=None, token=None, tls=None)`: Debian's
  docker-registry (distribution 2.8) with a config of its own under dir:
  filesystem storage there, 127.0.0.1 and a free port, deletes enabled,
  relative URLs, log level warn to dir/registry.log. Plain HTTP by default;
  `htpasswd={"user": "password"}` (bcrypt, `htpasswd -B` from apache2-utils);
  `token=TokenServer(...)` (distribution's token auth); `tls=CA(...)` (a
  server certificate for IP 127.0.0.1 and DNS localhost). `.host`
  ("127.0.0.1:PORT"), `.url`, `.storage`, `.blob_path(digest)`.
- `CA(dir)`: a test CA made with the openssl CLI; `.issue(name, ip=, dns=)`.
- `TokenServer(dir, users=, anonymous=, expires_in=)`: issues RS256 JWTs
  (signed with `openssl dgst`, the leaf's chain in the `x5c` header, trusted
  by the registry through rootcertbundle) for `GET /token?service=&scope=`;
  records every request in `.requests`.
- `FaultProxy(upstream_url)`: forwards everything to the registry, except
  where a rule set with `.on(path_regex, methods=("GET",))` says
  `.drop_after(n)`, `.status(503, retry_after=1)`, `.stall(secs,
  after_bytes=0)`, `.corrupt(offset)`, `.redirect(base_url)`, `.reply(body,
  content_type)` or `.unauthorized()`; logs every request (`.log`,
  `.log_for(regex)`, `.count(method, regex, ranged=None)`, `.settle()`);
  `FaultProxy.to(registry)` starts one, `.blob_host()` a BlobHost beside it.
- `BlobHost(registry)`: serves the registry's blobs from its storage
  directory, as a CDN a registry redirects to would; logs whether an
  Authorization header came.
- Seeding with skopeo: `push(layout_dir, tag, registry, "repo:tag", ...)`,
  `image_with(layout, tag, files)`, `multiarch(layout)`, `big_image(dir,
  rootfs)`; `inspect(registry, ref)` and `raw_manifest(...)` read back.

As a script: `python3 registrykit.py big-image DIR [--rootfs R] [--layers 5]
[--mb 100]` builds the benchmark image (tag `big`) in the OCI layout DIR and
prints DIR.
"""
import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imagekit as ik  # noqa: E402

REGISTRY_BIN = "/usr/bin/docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
V2S2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"
ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, V2S2_MANIFEST,
                    "application/vnd.docker.distribution.manifest.list.v2+json"])


def missing_tools():
    """What the kit needs and this machine lacks (empty when all is there)."""
    need = {"docker-registry": REGISTRY_BIN, "skopeo": "skopeo", "umoci": "umoci", "openssl": "openssl",
            "htpasswd": "htpasswd"}
    return [name for name, exe in need.items() if shutil.which(exe) is None]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _host_of(registry):
    """"127.0.0.1:PORT" from a Registry, a FaultProxy, a BlobHost or a string
    ("127.0.0.1:PORT" or a URL)."""
    if isinstance(registry, str):
        return urllib.parse.urlsplit(registry).netloc if "://" in registry else registry
    return registry.host


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _basic(headers):
    """(user, password) from an Authorization: Basic header, else None."""
    a = headers.get("Authorization") or ""
    if not a.lower().startswith("basic "):
        return None
    try:
        user, _, pw = base64.b64decode(a[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, pw


def get(url, path="/v2/", *, headers=None, method="GET", timeout=10):
    """One request with http.client (TLS unverified); returns (status,
    headers dict with lower-case keys, body)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout,
                                           context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        conn.close()


# MARK: - certificates

class CA:
    """A self-signed CA (openssl CLI) that issues leaf certificates."""

    def __init__(self, root, name="minicontainer-test-ca"):
        self.dir = str(root)
        os.makedirs(self.dir, exist_ok=True)
        self.cert = os.path.join(self.dir, "ca.crt")
        self.key = os.path.join(self.dir, "ca.key")
        ik.sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3", "-subj", f"/CN={name}",
              "-keyout", self.key, "-out", self.cert,
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name, *, ip=(), dns=(), server=True):
        """A leaf signed by this CA; returns (cert path, key path)."""
        cert = os.path.join(self.dir, name + ".crt")
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        ext = os.path.join(self.dir, name + ".ext")
        sans = [f"IP:{i}" for i in ip] + [f"DNS:{d}" for d in dns]
        lines = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"]
        if server:
            lines.append("extendedKeyUsage=serverAuth")
        if sans:
            lines.append("subjectAltName=" + ",".join(sans))
        with open(ext, "w") as f:
            f.write("\n".join(lines) + "\n")
        ik.sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", key, "-out", csr)
        ik.sh("openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
              "-days", "3", "-sha256", "-extfile", ext, "-out", cert)
        return cert, key


def _der_b64(cert_path):
    der = subprocess.run(["openssl", "x509", "-in", cert_path, "-outform", "DER"], capture_output=True,
                         check=True).stdout
    return base64.b64encode(der).decode()


# MARK: - small threaded servers

class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Tracks its handler threads and open connections so that stop() can
    end every one of them (stalled, keep-alive idle) and join it."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler):
        super().__init__(("127.0.0.1", 0), handler)
        self.threads = set()
        self.conns = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def process_request(self, request, client_address):
        t = threading.Thread(target=self._run, args=(request, client_address), daemon=True)
        with self.lock:
            self.threads.add(t)
            self.conns.add(request)
        t.start()

    def _run(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:  # a client that went away: nothing to report
            pass
        finally:
            self.shutdown_request(request)
            with self.lock:
                self.conns.discard(request)
                self.threads.discard(threading.current_thread())

    def handle_error(self, request, client_address):
        pass


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60

    def log_message(self, *args):
        pass

    def send_bytes(self, status, body, headers=(), content_type="application/json"):
        self.send_response_only(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Service:
    """start()/stop()/context manager around a _ThreadingServer."""
    handler = None

    def __init__(self):
        self.server = None
        self.thread = None

    def start(self):
        self.server = _ThreadingServer(self.handler)
        self.server.owner = self
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        return self

    def _release(self):
        """Wakes whatever handler waits (stalls)."""

    def stop(self):
        if self.server is None:
            return
        srv, self.server = self.server, None
        srv.stopping.set()
        self._release()
        srv.shutdown()
        self.thread.join(10)
        with srv.lock:
            conns = list(srv.conns)
            threads = list(srv.threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(10)
        srv.server_close()
        left = [t for t in threads if t.is_alive()]
        assert not left, f"{type(self).__name__}: {len(left)} handler threads did not end"

    def __enter__(self):
        return self.start() if self.server is None else self

    def __exit__(self, *exc):
        self.stop()


# MARK: - the token server

class TokenServer(_Service):
    """Distribution's token auth: GET /token?service=S&scope=repository:NAME:pull,push
    answers {"token", "access_token", "expires_in", "issued_at"}.

    users: {name: password}; a request with HTTP Basic credentials must match
    one (else 401) and gets every action it asks for. A request without
    credentials gets pull only, when `anonymous`, else 401. Every request
    is recorded in .requests as {"path", "query" (dict of lists), "auth"
    (bool), "user", "status", "scopes", "granted"}."""

    def __init__(self, root, *, users=None, anonymous=True, expires_in=300, service="minicontainer-test-registry",
                 issuer="minicontainer-test-issuer"):
        super().__init__()
        self.dir = os.path.join(str(root), "token")
        os.makedirs(self.dir, exist_ok=True)
        self.users = dict(users or {})
        self.anonymous = anonymous
        self.expires_in = expires_in
        self.service = service
        self.issuer = issuer
        self.requests = []
        self.lock = threading.Lock()
        # The chain: a root (the registry's rootcertbundle) and a signing leaf.
        self.ca = CA(os.path.join(self.dir, "ca"), name="minicontainer-test-token-root")
        self.leaf_cert, self.leaf_key = self.ca.issue("token-signer", server=False)
        self.rootcertbundle = self.ca.cert
        self.x5c = [_der_b64(self.leaf_cert), _der_b64(self.ca.cert)]

    @property
    def realm(self):
        return self.url + "/token"

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        signing_input = _b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
            _b64url(json.dumps(claims, separators=(",", ":")).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.leaf_key, "-binary"],
                             input=signing_input.encode(), capture_output=True, check=True).stdout
        return signing_input + "." + _b64url(sig)

    def issue(self, subject, access):
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + self.expires_in,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(12).hex(), "access": access}
        return self.sign(claims)

    @staticmethod
    def parse_scope(scope):
        """"repository:team/app:pull,push" -> ("repository", "team/app", ["pull", "push"])."""
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        return kind, name, [a for a in actions.split(",") if a]

    def requests_for(self, repo=None):
        with self.lock:
            reqs = list(self.requests)
        if repo is None:
            return reqs
        return [r for r in reqs if any(f":{repo}:" in s for s in r["scopes"])]

    class handler(_Quiet):
        def do_GET(self):
            ts = self.server.owner
            u = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(u.query)
            if self.command == "POST":  # the OAuth2 form: grant_type=password
                n = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                query = {**query, **form}
                creds = (form["username"][0], form.get("password", [""])[0]) if "username" in form else None
            else:
                creds = _basic(self.headers)
            rec = {"path": u.path, "query": query, "auth": "Authorization" in self.headers or creds is not None,
                   "user": creds[0] if creds else None, "scopes": query.get("scope", []), "status": None,
                   "granted": None, "time": time.time()}
            with ts.lock:
                ts.requests.append(rec)
            status, body = self.answer(ts, u.path, query, creds)
            rec["status"] = status
            hdrs = [("WWW-Authenticate", 'Basic realm="minicontainer-test-token"')] if status == 401 else []
            self.send_bytes(status, json.dumps(body).encode(), hdrs)
            rec["granted"] = body.get("granted")

        do_POST = do_GET

        def answer(self, ts, path, query, creds):
            if path != "/token":
                return 404, {"error": "not found"}
            if query.get("service", [ts.service])[0] != ts.service:
                return 400, {"error": "wrong service"}
            if creds is not None:
                if ts.users.get(creds[0]) != creds[1] or creds[0] not in ts.users:
                    return 401, {"error": "bad credentials"}
                subject, allowed = creds[0], None
            elif ts.anonymous:
                subject, allowed = "", {"pull"}
            else:
                return 401, {"error": "credentials required"}
            access = []
            for scope in query.get("scope", []):
                for one in scope.split(" "):
                    kind, name, actions = ts.parse_scope(one)
                    if kind != "repository" or not name:
                        continue
                    granted = [a for a in actions if allowed is None or a in allowed]
                    access.append({"type": "repository", "name": name, "actions": granted})
            token = ts.issue(subject, access)
            issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            return 200, {"token": token, "access_token": token, "expires_in": ts.expires_in, "issued_at": issued,
                         "granted": access}


# MARK: - the registry

class Registry:
    """docker-registry serving one tmp directory; see the module docstring."""

    def __init__(self, root, *, htpasswd=None, token=None, tls=None, name="registry"):
        assert not (htpasswd and token)
        self.dir = os.path.join(str(root), name)
        os.makedirs(self.dir, exist_ok=True)
        self.storage = os.path.join(self.dir, "storage")
        self.users = dict(htpasswd or {})
        self.token = token
        self.ca = tls
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.scheme = "https" if tls else "http"
        self.url = f"{self.scheme}://{self.host}"
        self.log_path = os.path.join(self.dir, "registry.log")
        self.config_path = os.path.join(self.dir, "config.yml")
        self.proc = None
        self._log = None
        self.cert = None  # the server certificate, with tls

    def config(self):
        cfg = {
            "version": "0.1",
            "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": self.storage}, "delete": {"enabled": True},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": {"addr": self.host, "secret": "minicontainer-test-" + os.urandom(8).hex(),
                     "relativeurls": True},
        }
        if self.users:
            path = os.path.join(self.dir, "htpasswd")
            with open(path, "w") as f:
                for user, pw in self.users.items():
                    f.write(bcrypt_line(user, pw))
            cfg["auth"] = {"htpasswd": {"realm": "minicontainer-test", "path": path}}
        if self.token:
            cfg["auth"] = {"token": {"realm": self.token.realm, "service": self.token.service,
                                     "issuer": self.token.issuer, "rootcertbundle": self.token.rootcertbundle}}
        if self.ca:
            self.cert, key = self.ca.issue("registry-" + str(self.port), ip=["127.0.0.1"], dns=["localhost"])
            cfg["http"]["tls"] = {"certificate": self.cert, "key": key}
        return cfg

    def start(self):
        # YAML is a superset of JSON: the config is written as JSON.
        with open(self.config_path, "w") as f:
            json.dump(self.config(), f, indent=1)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "OTEL_"))}
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self.config_path], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log, env=env, start_new_session=True)
        deadline = time.time() + 20
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"docker-registry exited ({self.proc.returncode}): {self.log()}")
            try:
                status, _, _ = get(self.url, "/v2/", timeout=2)
                if status in (200, 401):
                    return self
            except (OSError, http.client.HTTPException):
                pass
            if time.time() > deadline:
                self.stop()
                raise AssertionError(f"docker-registry on {self.host} never answered: {self.log()}")
            time.sleep(0.05)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", "sha256", hexd[:2], hexd, "data")

    def creds(self):
        """"user:password" of the first user (htpasswd or token), or None."""
        users = self.users or (self.token.users if self.token else {})
        for u, p in users.items():
            return f"{u}:{p}"
        return None


def bcrypt_line(user, password):
    """An htpasswd line with a bcrypt hash (what distribution accepts)."""
    if shutil.which("htpasswd"):
        return ik.sh("htpasswd", "-nbB", user, password).strip() + "\n"
    import crypt  # Python < 3.13 with libxcrypt: $2b$ hashes
    return f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"


# MARK: - the fault-injecting proxy

class Rule:
    """One fault: applies to requests whose path (without the query)
    matches `regex` and whose method is in `methods`, `times` times (None:
    every time). `.hits` counts the requests it applied to; `.cancel()`
    ends it (and lets a stalled response go on)."""

    def __init__(self, kind, regex, methods, times, **params):
        self.kind = kind
        self.regex = re.compile(regex)
        self.methods = tuple(methods)
        self.times = times
        self.params = params
        self.hits = 0
        self.released = threading.Event()

    def active(self):
        return self.times is None or self.hits < self.times

    def cancel(self):
        self.times = 0
        self.released.set()

    def __repr__(self):
        return f"Rule({self.kind}, {self.regex.pattern!r}, hits={self.hits}, {self.params})"


class _On:
    def __init__(self, proxy, regex, methods):
        self.proxy, self.regex, self.methods = proxy, regex, methods

    def _add(self, kind, times, **params):
        return self.proxy.add(Rule(kind, self.regex, self.methods, times, **params))

    def drop_after(self, n_bytes, times=1, rst=False):
        """Headers and the first n_bytes of the body, then the connection closes
        (a FIN, or an RST with rst=True) with the rest of the body unsent."""
        return self._add("drop", times, n=n_bytes, rst=rst)

    def status(self, code, retry_after=None, times=1):
        """Answers `code` (503, 429, ...) with an error body, without asking upstream."""
        return self._add("status", times, code=code, retry_after=retry_after)

    def stall(self, seconds, after_bytes=0, times=1):
        """Sends headers and after_bytes of the body, then nothing for `seconds`
        (or until cancel()), then the rest."""
        return self._add("stall", times, seconds=seconds, after=after_bytes)

    def corrupt(self, offset, times=None):
        """Flips the byte at `offset` of the blob (counted from the blob's start,
        so a ranged response is corrupted at the same place)."""
        return self._add("corrupt", times, offset=offset)

    def redirect(self, to_base_url, times=None, code=307):
        """Answers 307 with Location: to_base_url + the request's path and query."""
        return self._add("redirect", times, to=to_base_url.rstrip("/"), code=code)

    def reply(self, body, content_type, status=200, headers=(), times=None):
        """Answers with this body itself (HEAD: its headers)."""
        return self._add("reply", times, body=body, content_type=content_type, code=status, headers=tuple(headers))

    def unauthorized(self, times=1):
        """Forwards the request without its Authorization header: the registry's
        own 401 and challenge come back."""
        return self._add("unauthorized", times)


class Entry:
    """One request through the proxy; filled in as the response goes out."""
    __slots__ = ("time", "method", "path", "query", "range", "auth", "status", "sent", "fault", "done", "error",
                 "end")

    def __init__(self, method, path, query, rng, auth):
        self.time, self.method, self.path, self.query, self.range, self.auth = time.time(), method, path, query, rng, auth
        self.status, self.sent, self.fault, self.done, self.error, self.end = None, 0, None, False, None, None

    def range_start(self):
        """N of a `Range: bytes=N-...` header, else None."""
        m = re.match(r"bytes=(\d+)-", self.range or "")
        return int(m.group(1)) if m else None

    def __repr__(self):
        a = "auth" if self.auth else "noauth"
        r = f" Range={self.range}" if self.range else ""
        f = f" fault={self.fault}" if self.fault else ""
        e = f" error={self.error}" if self.error else ""
        return f"<{self.method} {self.path}{r} {a} -> {self.status} {self.sent}B{f}{e}>"


class _Abort(Exception):
    pass


HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade"}


class FaultProxy(_Service):
    """A plain-HTTP reverse proxy in front of `upstream_url` (http or
    https, not verified). The registry is configured with relative URLs,
    so nothing needs rewriting."""

    def __init__(self, upstream_url):
        super().__init__()
        u = urllib.parse.urlsplit(upstream_url)
        self.up_scheme, self.up_host, self.up_port = u.scheme, u.hostname, u.port
        self.rules = []
        self.log = []
        self.lock = threading.Lock()

    @classmethod
    def to(cls, registry):
        """A started proxy in front of a Registry (its credentials are the
        registry's, for push and inspect)."""
        p = cls(registry.url)
        p.registry = registry
        return p.start()

    registry = None
    _blob_hosts = ()

    def creds(self):
        return self.registry.creds() if self.registry else None

    def blob_host(self):
        """A started BlobHost for the registry behind this proxy (made with
        FaultProxy.to), stopped with the proxy: the place to redirect to."""
        bh = BlobHost(self.registry).start()
        self._blob_hosts = tuple(self._blob_hosts) + (bh,)
        return bh

    def stop(self):
        super().stop()
        for bh in self._blob_hosts:
            bh.stop()
        self._blob_hosts = ()

    def on(self, regex, methods=("GET",)):
        return _On(self, regex, methods)

    def add(self, rule):
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        with self.lock:
            rules, self.rules = self.rules, []
        for r in rules:
            r.cancel()

    def _release(self):
        self.clear()

    def reset_log(self):
        with self.lock:
            self.log = []

    def settle(self, timeout=5):
        """Waits (at most timeout) until every logged request is answered or
        ended: a client can have all the bytes before the handler has
        counted them."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if all(e.end is not None for e in self.log):
                    return True
            time.sleep(0.02)
        return False

    def log_for(self, regex, method=None, settle=True):
        """The requests whose path matches (settled first, unless settle=False)."""
        if settle:
            self.settle()
        rx = re.compile(regex)
        with self.lock:
            return [e for e in self.log if rx.search(e.path) and (method is None or e.method == method)]

    def count(self, method, regex, ranged=None):
        """Requests with that method whose path matches; ranged=True/False
        counts only those with/without a Range header."""
        return len([e for e in self.log_for(regex, method) if ranged is None or bool(e.range) == ranged])

    def _match(self, method, path):
        with self.lock:
            for r in self.rules:
                if r.active() and method in r.methods and r.regex.search(path):
                    r.hits += 1
                    return r
        return None

    def _upstream(self):
        if self.up_scheme == "https":
            return http.client.HTTPSConnection(self.up_host, self.up_port, timeout=120,
                                               context=ssl._create_unverified_context())
        return http.client.HTTPConnection(self.up_host, self.up_port, timeout=120)

    class handler(_Quiet):
        def do_GET(self):
            self.server.owner._handle(self)

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self, h):
        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(h.rfile.read(size))
                h.rfile.readline()
        n = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(n) if n else b""

    def _handle(self, h):
        u = urllib.parse.urlsplit(h.path)
        e = Entry(h.command, u.path, u.query, h.headers.get("Range"), "Authorization" in h.headers)
        with self.lock:
            self.log.append(e)
        body = self._read_body(h)
        rule = self._match(h.command, u.path)
        e.fault = rule.kind if rule else None
        try:
            if rule and rule.kind == "status":
                self._status(h, e, rule)
            elif rule and rule.kind == "redirect":
                e.status = rule.params["code"]
                h.send_response_only(e.status)
                h.send_header("Location", rule.params["to"] + h.path)
                h.send_header("Content-Length", "0")
                h.end_headers()
            elif rule and rule.kind == "reply":
                self._reply(h, e, rule)
            else:
                self._forward(h, e, body, rule)
            e.done = True
        except _Abort:
            e.error = "dropped"
            h.close_connection = True
        except (OSError, http.client.HTTPException) as x:
            e.error = type(x).__name__
            h.close_connection = True
        finally:
            e.end = time.time()

    def _status(self, h, e, rule):
        code = rule.params["code"]
        errcode = {429: "TOOMANYREQUESTS", 503: "UNAVAILABLE"}.get(code, "UNKNOWN")
        body = json.dumps({"errors": [{"code": errcode, "message": f"injected {code}", "detail": None}]}).encode()
        hdrs = [("Retry-After", str(rule.params["retry_after"]))] if rule.params["retry_after"] is not None else []
        e.status = code
        h.send_bytes(code, body, hdrs)
        e.sent = len(body) if h.command != "HEAD" else 0

    def _reply(self, h, e, rule):
        p = rule.params
        data = p["body"]
        e.status = p["code"]
        h.send_response_only(p["code"])
        h.send_header("Content-Type", p["content_type"])
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(data).hexdigest())
        for k, v in p["headers"]:
            h.send_header(k, v)
        h.end_headers()
        if h.command == "HEAD":
            return
        for i in range(0, len(data), 65536):
            h.wfile.write(data[i:i + 65536])
            e.sent += len(data[i:i + 65536])

    def _forward(self, h, e, body, rule):
        # Header by header, so that repeated ones (Accept) stay as they came.
        headers = []
        for k, v in h.headers.items():
            kl = k.lower()
            if kl in HOP_BY_HOP or kl == "content-length":
                continue
            if kl == "authorization" and rule and rule.kind == "unauthorized":
                continue
            headers.append((k, v))
        if body or h.command in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(body))))
        up = self._upstream()
        try:
            try:
                up.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    up.putheader(k, v)
                up.endheaders(body if body else None)
                resp = up.getresponse()
            except OSError as x:
                e.status = 502
                h.send_bytes(502, json.dumps({"error": f"upstream: {x}"}).encode())
                return
            self._relay(h, e, resp, rule)
        finally:
            up.close()

    def _relay(self, h, e, resp, rule):
        no_body = h.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
        length = resp.getheader("Content-Length")
        chunked = not no_body and length is None and "chunked" in (resp.getheader("Transfer-Encoding") or "").lower()
        until_close = not no_body and length is None and not chunked
        e.status = resp.status
        h.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP:
                h.send_header(k, v)
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        if until_close:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()
        if no_body:
            resp.read()
            return
        start = 0
        m = re.match(r"bytes (\d+)-", resp.getheader("Content-Range") or "")
        if resp.status == 206 and m:
            start = int(m.group(1))
        kind = rule.kind if rule else None
        p = rule.params if rule else {}
        stalled = False
        pos = 0

        def send(data):
            if not data:
                return
            if chunked:
                h.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            else:
                h.wfile.write(data)
            e.sent += len(data)

        while True:
            data = resp.read(65536)
            if not data:
                break
            if kind == "corrupt":
                o = p["offset"] - start - pos
                if 0 <= o < len(data):
                    b = bytearray(data)
                    b[o] ^= 0xFF
                    data = bytes(b)
            if kind == "drop" and pos + len(data) >= p["n"]:
                send(data[:p["n"] - pos])
                self._abort(h, p["rst"])
            if kind == "stall" and not stalled and pos + len(data) >= p["after"]:
                cut = p["after"] - pos
                send(data[:cut])
                rule.released.wait(p["seconds"])
                stalled = True
                if self.server is None or self.server.stopping.is_set():
                    self._abort(h, False)
                pos += cut
                data = data[cut:]
            send(data)
            pos += len(data)
        if kind == "stall" and not stalled:  # a body shorter than after_bytes
            rule.released.wait(p["seconds"])
        if chunked:
            h.wfile.write(b"0\r\n\r\n")

    def _abort(self, h, rst):
        s = h.connection
        try:
            if rst:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            else:
                s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Abort()


# MARK: - a plain blob host (a CDN to redirect to)

class BlobHost(_Service):
    """Serves GET/HEAD /v2/NAME/blobs/sha256:HEX from a registry's storage
    directory, with Range; logs {"method", "path", "range", "auth", "status",
    "sent"} in .log."""

    def __init__(self, registry):
        super().__init__()
        self.registry = registry
        self.log = []
        self.lock = threading.Lock()

    def saw_authorization(self):
        with self.lock:
            return any(r["auth"] for r in self.log)

    class handler(_Quiet):
        def do_GET(self):
            bh = self.server.owner
            u = urllib.parse.urlsplit(self.path)
            rng = self.headers.get("Range")
            rec = {"method": self.command, "path": u.path, "range": rng, "auth": "Authorization" in self.headers,
                   "status": None, "sent": 0}
            with bh.lock:
                bh.log.append(rec)
            m = re.match(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$", u.path)
            path = bh.registry.blob_path(m.group(2)) if m else None
            if not path or not os.path.exists(path):
                rec["status"] = 404
                self.send_bytes(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
                return
            size = os.path.getsize(path)
            first, last = 0, size - 1
            rm = re.match(r"bytes=(\d+)-(\d*)$", rng or "")
            status = 200
            if rm:
                first = int(rm.group(1))
                last = min(int(rm.group(2)), size - 1) if rm.group(2) else size - 1
                if first >= size:
                    rec["status"] = 416
                    self.send_bytes(416, b"", [("Content-Range", f"bytes */{size}")])
                    return
                status = 206
            rec["status"] = status
            self.send_response_only(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(last - first + 1))
            self.send_header("Docker-Content-Digest", m.group(2))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            with open(path, "rb") as f:
                f.seek(first)
                left = last - first + 1
                while left > 0:
                    data = f.read(min(65536, left))
                    if not data:
                        break
                    self.wfile.write(data)
                    rec["sent"] += len(data)
                    left -= len(data)

        do_HEAD = do_GET


# MARK: - seeding with skopeo

def _skopeo_env():
    env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG")}
    return env


def push(layout_dir, tag, registry, ref, *, format="oci", compress=None, creds=None, tls_verify=False,
         cert_dir=None, all=False):
    """skopeo copy oci:LAYOUT:TAG docker://HOST/REF; returns the manifest
    digest the registry has. format "oci" or "v2s2" (None: as the source);
    compress "zstd" recompresses the layers; creds "user:password";
    all=True copies a whole index (a multi-platform image)."""
    host = _host_of(registry)
    if creds is None and hasattr(registry, "creds"):
        creds = registry.creds()
    if compress:
        # Recompressed in a layout of its own first: pushed straight, skopeo
        # would reuse the gzip blobs the registry already has.
        tmp = tempfile.mkdtemp(prefix="mc-recompress-")
        try:
            ik.skopeo_copy(f"oci:{layout_dir}:{tag}", f"oci:{tmp}/layout:{tag}", "--dest-compress",
                           "--dest-compress-format", compress, *(["--all"] if all else []))
            return push(f"{tmp}/layout", tag, registry, ref, format=format, creds=creds, tls_verify=tls_verify,
                        cert_dir=cert_dir, all=all)
        finally:
            shutil.rmtree(tmp)
    with tempfile.NamedTemporaryFile(prefix="mc-digest-", delete=False) as f:
        digestfile = f.name
    args = ["skopeo", "copy", "--quiet", "--retry-times", "0", "--digestfile", digestfile,
            f"--dest-tls-verify={'true' if tls_verify else 'false'}"]
    if format:
        args += ["--format", format]
    args += ["--dest-creds", creds] if creds else ["--dest-no-creds"]
    if cert_dir:
        args += ["--dest-cert-dir", cert_dir]
    if all:
        args += ["--all"]
    args += [f"oci:{layout_dir}:{tag}", f"docker://{host}/{ref}"]
    try:
        r = subprocess.run(args, capture_output=True, text=True, env=_skopeo_env(), timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr}")
        with open(digestfile) as f:
            return f.read().strip()
    finally:
        os.unlink(digestfile)


def _skopeo_src(registry, creds, tls_verify, cert_dir):
    if creds is None and hasattr(registry, "creds"):
        creds = registry.creds()
    args = [f"--tls-verify={'true' if tls_verify else 'false'}"]
    args += ["--creds", creds] if creds else ["--no-creds"]
    if cert_dir:
        args += ["--cert-dir", cert_dir]
    return args


def skopeo(*args, check=True, timeout=120):
    r = subprocess.run(["skopeo", *args], capture_output=True, text=True, env=_skopeo_env(), timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r


def inspect(registry, ref, *, creds=None, tls_verify=False, cert_dir=None, raw=False, config=False, arch=None):
    """`skopeo inspect` of docker://HOST/REF, as parsed JSON."""
    args = ["inspect", *_skopeo_src(registry, creds, tls_verify, cert_dir)]
    if raw:
        args.append("--raw")
    if config:
        args.append("--config")
    if arch:
        args += ["--override-arch", arch]
    return json.loads(skopeo(*args, f"docker://{_host_of(registry)}/{ref}").stdout)


def raw_manifest(registry, ref, **kw):
    return inspect(registry, ref, raw=True, **kw)


def image_with(layout, tag, files, base="base", arch=None):
    """A new tag: `base`'s layers plus one layer with `files` ({path: bytes}),
    optionally with a config saying `arch`."""
    layout.copy_tag(base, tag)
    layout.add_tar(tag, [{"name": n, "data": d} for n, d in files.items()])
    if arch:
        layout.config(tag, "--architecture", arch)
    return layout


def multiarch(layout, tag="multi", base="base"):
    """An index `tag` with a linux/amd64 and a linux/arm64/v8 image: the same
    base layers plus a /marker saying amd64 or arm64 (the arm64 config says
    arm64). Push it with push(..., all=True)."""
    image_with(layout, tag + "-amd64", {"marker": b"amd64\n"}, base=base)
    image_with(layout, tag + "-arm64", {"marker": b"arm64\n"}, base=base, arch="arm64")
    entries = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        desc, _ = layout.manifest_of(f"{tag}-{arch}")
        plat = {"architecture": arch, "os": "linux"}
        if variant:
            plat["variant"] = variant
        entries.append({"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"],
                        "platform": plat})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    d, n = layout.write_blob(json.dumps(index).encode())
    top = layout.index()
    top["manifests"] = [m for m in top["manifests"]
                        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    top["manifests"].append({"mediaType": OCI_INDEX, "digest": d, "size": n,
                             "annotations": {"org.opencontainers.image.ref.name": tag}})
    layout.set_index(top)
    return layout


def base_layout(root, rootfs, tag="base"):
    """The busybox rootfs as one layer, in the OCI layout root/layout."""
    return ik.busybox_layout(str(root), rootfs, tag=tag)


def big_image(root, rootfs, *, layers=5, mb=100, tag="big"):
    """busybox plus `layers` layers of random (incompressible) data, `mb`
    MiB in all, for benchmarks; returns the Layout (its tag `tag`)."""
    lay = ik.Layout(str(root))
    lay.new(tag).add_dir(tag, rootfs, "/")
    lay.config(tag, "--config.cmd", "/bin/sh")
    each = (mb << 20) // layers
    for i in range(layers):
        data = os.urandom(each)
        lay.add_tar(tag, [{"name": f"data/layer{i}.bin", "data": data}])
    return lay


def _main(argv):
    import argparse
    p = argparse.ArgumentParser(prog="registrykit.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("big-image", help="an OCI layout (tag big) of busybox plus random layers")
    b.add_argument("dir")
    b.add_argument("--rootfs", default=os.environ.get("ROOTFS", "/var/lib/minicontainer/rootfs/busybox"))
    b.add_argument("--layers", type=int, default=5)
    b.add_argument("--mb", type=int, default=100)
    b.add_argument("--tag", default="big")
    a = p.parse_args(argv)
    if a.cmd == "big-image":
        lay = big_image(a.dir, a.rootfs, layers=a.layers, mb=a.mb, tag=a.tag)
        print(lay.path)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
