"""A small client of the Kubernetes Container Runtime Interface (CRI,
runtime.v1) for the tests: gRPC through grpcio's generic calls, the protobuf
messages encoded and decoded here by hand from the subset of the published
api.proto written below (field numbers as in k8s.io/cri-api), and the
streaming server's exec over a WebSocket (the "v4.channel.k8s.io" protocol
kubelet's streaming library speaks), all on loopback or a unix socket.

Messages are plain dicts keyed by field name; a decoded message has the
fields that were on the wire (proto3 leaves zero values out), so read them
with .get(name, default).
"""
import base64
import json
import os
import re
import socket
import struct
import urllib.parse

import grpc

# The messages the tests use, as in runtime.v1's api.proto (same names,
# types and numbers; fields the tests never send or read are left out).
# Enums travel as varints: their values are the constants further down.
PROTO = """
message VersionRequest { string version = 1; }
message VersionResponse { string version = 1; string runtime_name = 2; string runtime_version = 3;
    string runtime_api_version = 4; }
message NamespaceOption { int32 network = 1; int32 pid = 2; int32 ipc = 3; string target_id = 4; }
message Int64Value { int64 value = 1; }
message UInt64Value { uint64 value = 1; }
message LinuxSandboxSecurityContext { NamespaceOption namespace_options = 1; bool privileged = 6; }
message LinuxPodSandboxConfig { string cgroup_parent = 1; LinuxSandboxSecurityContext security_context = 2;
    map<string, string> sysctls = 3; }
message PodSandboxMetadata { string name = 1; string uid = 2; string namespace = 3; uint32 attempt = 4; }
message PodSandboxConfig { PodSandboxMetadata metadata = 1; string hostname = 2; string log_directory = 3;
    map<string, string> labels = 6; map<string, string> annotations = 7; LinuxPodSandboxConfig linux = 8; }
message RunPodSandboxRequest { PodSandboxConfig config = 1; string runtime_handler = 2; }
message RunPodSandboxResponse { string pod_sandbox_id = 1; }
message StopPodSandboxRequest { string pod_sandbox_id = 1; }
message StopPodSandboxResponse { }
message RemovePodSandboxRequest { string pod_sandbox_id = 1; }
message RemovePodSandboxResponse { }
message PodSandboxStatusRequest { string pod_sandbox_id = 1; bool verbose = 2; }
message PodIP { string ip = 1; }
message PodSandboxNetworkStatus { string ip = 1; repeated PodIP additional_ips = 2; }
message PodSandboxStatus { string id = 1; PodSandboxMetadata metadata = 2; int32 state = 3; int64 created_at = 4;
    PodSandboxNetworkStatus network = 5; string runtime_handler = 9; }
message PodSandboxStatusResponse { PodSandboxStatus status = 1; map<string, string> info = 2; }
message PodSandboxFilter { string id = 1; }
message ListPodSandboxRequest { PodSandboxFilter filter = 1; }
message PodSandbox { string id = 1; PodSandboxMetadata metadata = 2; int32 state = 3; string runtime_handler = 7; }
message ListPodSandboxResponse { repeated PodSandbox items = 1; }
message ImageSpec { string image = 1; }
message KeyValue { string key = 1; string value = 2; }
message LinuxContainerResources { int64 cpu_period = 1; int64 cpu_quota = 2; int64 cpu_shares = 3;
    int64 memory_limit_in_bytes = 4; int64 oom_score_adj = 5; string cpuset_cpus = 6; string cpuset_mems = 7;
    map<string, string> unified = 9; int64 memory_swap_limit_in_bytes = 10; }
message Capability { repeated string add_capabilities = 1; repeated string drop_capabilities = 2; }
message LinuxContainerSecurityContext { Capability capabilities = 1; bool privileged = 2;
    NamespaceOption namespace_options = 3; Int64Value run_as_user = 5; bool readonly_rootfs = 7;
    repeated string masked_paths = 13; repeated string readonly_paths = 14; }
message Mount { string container_path = 1; string host_path = 2; bool readonly = 3; }
message LinuxContainerConfig { LinuxContainerResources resources = 1; LinuxContainerSecurityContext security_context = 2; }
message ContainerMetadata { string name = 1; uint32 attempt = 2; }
message ContainerConfig { ContainerMetadata metadata = 1; ImageSpec image = 2; repeated string command = 3;
    repeated string args = 4; string working_dir = 5; repeated KeyValue envs = 6; repeated Mount mounts = 7;
    map<string, string> labels = 9;
    string log_path = 11; bool stdin = 12; bool tty = 14; LinuxContainerConfig linux = 15; }
message CreateContainerRequest { string pod_sandbox_id = 1; ContainerConfig config = 2;
    PodSandboxConfig sandbox_config = 3; }
message CreateContainerResponse { string container_id = 1; }
message StartContainerRequest { string container_id = 1; }
message StartContainerResponse { }
message StopContainerRequest { string container_id = 1; int64 timeout = 2; }
message StopContainerResponse { }
message RemoveContainerRequest { string container_id = 1; }
message RemoveContainerResponse { }
message ContainerFilter { string id = 1; string pod_sandbox_id = 3; }
message ListContainersRequest { ContainerFilter filter = 1; }
message Container { string id = 1; string pod_sandbox_id = 2; ContainerMetadata metadata = 3; int32 state = 6; }
message ListContainersResponse { repeated Container containers = 1; }
message ContainerStatusRequest { string container_id = 1; bool verbose = 2; }
message ContainerResources { LinuxContainerResources linux = 1; }
message ContainerStatus { string id = 1; ContainerMetadata metadata = 2; int32 state = 3; int64 created_at = 4;
    int64 started_at = 5; int64 finished_at = 6; int32 exit_code = 7; string reason = 10; string message = 11;
    string log_path = 15; ContainerResources resources = 16; }
message ContainerStatusResponse { ContainerStatus status = 1; map<string, string> info = 2; }
message UpdateContainerResourcesRequest { string container_id = 1; LinuxContainerResources linux = 2; }
message UpdateContainerResourcesResponse { }
message ExecSyncRequest { string container_id = 1; repeated string cmd = 2; int64 timeout = 3; }
message ExecSyncResponse { bytes stdout = 1; bytes stderr = 2; int32 exit_code = 3; }
message ExecRequest { string container_id = 1; repeated string cmd = 2; bool tty = 3; bool stdin = 4;
    bool stdout = 5; bool stderr = 6; }
message ExecResponse { string url = 1; }
message AttachRequest { string container_id = 1; bool stdin = 2; bool tty = 3; bool stdout = 4; bool stderr = 5; }
message AttachResponse { string url = 1; }
message StatusRequest { bool verbose = 1; }
message RuntimeCondition { string type = 1; bool status = 2; string reason = 3; string message = 4; }
message RuntimeStatus { repeated RuntimeCondition conditions = 1; }
message StatusResponse { RuntimeStatus status = 1; map<string, string> info = 2; }
message ContainerStatsRequest { string container_id = 1; }
message ContainerAttributes { string id = 1; ContainerMetadata metadata = 2; }
message CpuUsage { int64 timestamp = 1; UInt64Value usage_core_nano_seconds = 2; UInt64Value usage_nano_cores = 3; }
message MemoryUsage { int64 timestamp = 1; UInt64Value working_set_bytes = 2; UInt64Value available_bytes = 3;
    UInt64Value usage_bytes = 4; UInt64Value rss_bytes = 5; UInt64Value page_faults = 6;
    UInt64Value major_page_faults = 7; }
message ContainerStats { ContainerAttributes attributes = 1; CpuUsage cpu = 2; MemoryUsage memory = 3; }
message ContainerStatsResponse { ContainerStats stats = 1; }
message ImageStatusRequest { ImageSpec image = 1; bool verbose = 2; }
message Image { string id = 1; repeated string repo_tags = 2; uint64 size = 4; bool pinned = 8; }
message ImageStatusResponse { Image image = 1; }
"""

# NamespaceMode, PodSandboxState, ContainerState.
POD, CONTAINER, NODE, TARGET = 0, 1, 2, 3
SANDBOX_READY, SANDBOX_NOTREADY = 0, 1
CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED, CONTAINER_UNKNOWN = 0, 1, 2, 3

SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64"}


def parse_proto(text):
    """{message: {field: (number, type, repeated)}} from the subset above;
    a map<string, string> field is a repeated entry message (key 1, value 2)."""
    messages = {}
    for name, body in re.findall(r"message (\w+) \{([^}]*)\}", text):
        fields = {}
        for rep, typ, fname, num in re.findall(r"(repeated )?(map<string, string>|\w+) (\w+) = (\d+);", body):
            fields[fname] = (int(num), typ, bool(rep))
        messages[name] = fields
    for fields in messages.values():
        for fname, (num, typ, _) in fields.items():
            assert typ in SCALARS or typ in messages or typ.startswith("map<"), f"unknown type {typ}"
    return messages


MESSAGES = parse_proto(PROTO)


def _varint(n):
    n &= (1 << 64) - 1  # negative int32/int64 as ten-byte two's complement, as protobuf does
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(num, wire):
    return _varint(num << 3 | wire)


def _delimited(num, payload):
    return _key(num, 2) + _varint(len(payload)) + payload


def encode(mtype, msg):
    """The wire bytes of dict `msg` as message `mtype`."""
    fields = MESSAGES[mtype]
    out = b""
    for fname, value in msg.items():
        if fname not in fields:
            raise KeyError(f"{mtype} has no field {fname} here")
        num, typ, repeated = fields[fname]
        if typ.startswith("map<"):
            for k, v in value.items():
                out += _delimited(num, _delimited(1, k.encode()) + _delimited(2, v.encode()))
            continue
        for v in (value if repeated else [value]):
            if typ == "string":
                out += _delimited(num, v.encode())
            elif typ == "bytes":
                out += _delimited(num, bytes(v))
            elif typ in SCALARS:
                out += _key(num, 0) + _varint(int(v))
            else:
                out += _delimited(num, encode(typ, v))
    return out


def _read_varint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def _signed(n, bits):
    return n - (1 << bits) if n >> (bits - 1) & 1 else n


def decode(mtype, b):
    """The dict of message `mtype` from its wire bytes; unknown fields are skipped."""
    by_num = {num: (fname, typ, rep) for fname, (num, typ, rep) in MESSAGES[mtype].items()}
    out = {}
    i = 0
    while i < len(b):
        key, i = _read_varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            raw, i = _read_varint(b, i)
        elif wire == 2:
            n, i = _read_varint(b, i)
            raw, i = b[i:i + n], i + n
        elif wire == 1:
            raw, i = b[i:i + 8], i + 8
        elif wire == 5:
            raw, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"{mtype}: wire type {wire} unsupported")
        if num not in by_num:
            continue
        fname, typ, repeated = by_num[num]
        if typ.startswith("map<"):
            entry = {1: "", 2: ""}
            j = 0
            while j < len(raw):
                k, j = _read_varint(raw, j)
                n, j = _read_varint(raw, j)
                entry[k >> 3] = raw[j:j + n].decode()
                j += n
            out.setdefault(fname, {})[entry[1]] = entry[2]
            continue
        if typ == "string":
            v = raw.decode()
        elif typ == "bytes":
            v = bytes(raw)
        elif typ == "bool":
            v = bool(raw)
        elif typ == "int64":
            v = _signed(raw, 64)
        elif typ == "int32":
            v = _signed(raw & ((1 << 64) - 1), 64)
        elif typ in SCALARS:
            v = raw
        else:
            v = decode(typ, raw)
        if repeated:
            out.setdefault(fname, []).append(v)
        else:
            out[fname] = v
    return out


class Client:
    """The CRI's RuntimeService and ImageService on a unix socket: each
    method name is the RPC's, taking and returning dicts."""

    def __init__(self, socket_path, timeout=60):
        self.channel = grpc.insecure_channel("unix://" + socket_path)
        self.timeout = timeout

    def close(self):
        self.channel.close()

    def call(self, service, method, request, timeout=None):
        rpc = self.channel.unary_unary(f"/runtime.v1.{service}/{method}")
        raw = rpc(encode(method + "Request", request), timeout=timeout or self.timeout)
        return decode(method + "Response", raw)

    def __getattr__(self, method):
        if not method[:1].isupper():
            raise AttributeError(method)
        service = "ImageService" if method.startswith("Image") else "RuntimeService"
        return lambda request=None, timeout=None: self.call(service, method, request or {}, timeout)


class WebSocketExec:
    """One exec or attach through the CRI streaming server's URL
    (ExecResponse.url, AttachResponse.url), over a WebSocket speaking
    v4.channel.k8s.io: every binary message starts
    with its channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize); the
    error channel's last message is a JSON metav1.Status with the exit code."""

    PROTOCOL = "v4.channel.k8s.io"

    def __init__(self, url, timeout=30):
        u = urllib.parse.urlsplit(url)
        assert u.scheme == "http" and u.hostname in ("127.0.0.1", "localhost", "::1"), \
            f"the streaming server must be on loopback: {url}"
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = u.path + (("?" + u.query) if u.query else "")
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Sec-WebSocket-Protocol: {self.PROTOCOL}\r\nOrigin: http://{u.netloc}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            d = self.sock.recv(4096)
            if not d:
                raise ConnectionError(f"no upgrade: {head!r}")
            head += d
        head, self.buf = head.split(b"\r\n\r\n", 1)
        self.response_head = head.decode(errors="replace")
        if not self.response_head.startswith("HTTP/1.1 101"):
            raise ConnectionError(f"no upgrade: {self.response_head}")

    def _read(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self):
        """(opcode, payload) of the next frame (the server's are not masked)."""
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        mask = self._read(4) if b1 & 0x80 else None
        payload = self._read(n)
        if mask:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return b0 & 0x0F, payload

    def send(self, opcode, payload):
        """A client frame: FIN set and masked, as RFC 6455 requires."""
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))

    def stdin(self, data):
        self.send(2, b"\x00" + data)

    def run(self):
        """Reads until the server closes: (stdout, stderr, status dict or None)."""
        chans = {1: b"", 2: b"", 3: b""}
        try:
            while True:
                op, payload = self._frame()
                if op == 8:
                    break
                if op == 9:
                    self.send(10, payload)
                elif op in (0, 1, 2) and payload:
                    chans.setdefault(payload[0], b"")
                    chans[payload[0]] += payload[1:]
        except EOFError:
            pass
        finally:
            self.sock.close()
        status = json.loads(chans[3]) if chans[3].strip() else None
        return chans[1], chans[2], status


def exit_code(status):
    """The exit code a metav1.Status from the error channel carries (0 for Success)."""
    if status is None or status.get("status") == "Success":
        return 0
    for cause in status.get("details", {}).get("causes", []):
        if cause.get("reason") == "ExitCode":
            return int(cause["message"])
    raise AssertionError(f"exec failed: {status}")
