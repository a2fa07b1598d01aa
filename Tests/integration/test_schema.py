"""The project's JSON Schemas (schema/*.schema.json) and their fixtures.

- every schema is itself a valid Draft 2020-12 schema;
- every fixture under schema/fixtures/<kind>/good validates, and every one
  under schema/fixtures/<kind>/bad fails, at exactly the place listed in
  BAD_CONFIG / BAD_STATE below (so a bad fixture cannot pass this test by
  failing for some accidental reason);
- every golden Specs/*/config.json in the repo validates against
  config.schema.json (there may be none yet; that set is then empty). The
  goldens write the host paths they were compiled with as $ROOTFS and
  $VOLUME (see Specs/README.md); absolute stand-ins are put back first.

One test per file, so a failure names the fixture.
"""

import json
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # also works under --import-mode=importlib
    sys.path.insert(0, str(HERE))

import schemas  # noqa: E402

REPO_ROOT = HERE.parents[1]
FIXTURES = REPO_ROOT / "schema" / "fixtures"

# Bad fixture name -> where its one problem is, as a JSON pointer. For a
# missing required property the pointer names the missing property.
BAD_CONFIG = {
    "missing-ociversion": "/ociVersion",
    "ociversion-not-1x": "/ociVersion",
    "ociversion-not-string": "/ociVersion",
    "relative-cwd": "/process/cwd",
    "process-missing-cwd": "/process/cwd",
    "process-missing-user": "/process/user",
    "user-missing-gid": "/process/user/gid",
    "uid-above-uint32": "/process/user/uid",
    "args-empty": "/process/args",
    "env-without-equals": "/process/env/1",
    "capability-without-cap-prefix": "/process/capabilities/bounding/0",
    "rlimit-above-uint64": "/process/rlimits/0/hard",
    "rlimit-negative-soft": "/process/rlimits/0/soft",
    "rlimit-unknown-type": "/process/rlimits/0/type",
    "root-missing-path": "/root/path",
    "relative-mount-destination": "/mounts/0/destination",
    "mount-destination-dotdot": "/mounts/0/destination",
    "mount-missing-destination": "/mounts/0/destination",
    "hook-negative-timeout": "/hooks/poststop/0/timeout",
    "hook-zero-timeout": "/hooks/poststop/0/timeout",
    "hook-relative-path": "/hooks/poststop/0/path",
    "unknown-namespace-type": "/linux/namespaces/1/type",
    "namespace-relative-path": "/linux/namespaces/0/path",
    "memory-limit-string": "/linux/resources/memory/limit",
    "memory-limit-above-int64": "/linux/resources/memory/limit",
    "memory-limit-fractional": "/linux/resources/memory/limit",
    "rootfs-propagation-unknown": "/linux/rootfsPropagation",
    "device-unknown-type": "/linux/devices/0/type",
    "cgroup-device-bad-access": "/linux/resources/devices/0/access",
    "seccomp-unknown-action": "/linux/seccomp/defaultAction",
    "personality-unknown-domain": "/linux/personality/domain",
    "netdevice-name-colon": "/linux/netDevices/eth1/name",
    "time-offset-nanosecs-above-second": "/linux/timeOffsets/boottime/nanosecs",
    "intelrdt-membw-without-prefix": "/linux/intelRdt/memBwSchema",
    "personality-with-flag": "/linux/personality/flags",
    "scheduler-unknown-policy": "/process/scheduler/policy",
    "io-priority-above-7": "/process/ioPriority/priority",
    "io-priority-missing-priority": "/process/ioPriority/priority",
    "exec-cpu-affinity-letters": "/process/execCPUAffinity/final",
    "memory-policy-default-with-nodes": "/linux/memoryPolicy/nodes",
    "memory-policy-bind-without-nodes": "/linux/memoryPolicy/nodes",
    "masked-path-relative": "/linux/maskedPaths/0",
    "annotation-value-not-string": "/annotations/org.example.replicas",
    "annotation-empty-key": "/annotations",
    "annotation-name-leading-dash": "/annotations/org.minicontainer.name",
    "annotation-name-trailing-newline": "/annotations/org.minicontainer.name",
    "annotation-network-unknown-mode": "/annotations/org.minicontainer.network",
    "annotation-network-container-without-id": "/annotations/org.minicontainer.network",
    "annotation-network-container-dotdot": "/annotations/org.minicontainer.network",
    "annotation-ports-missing-proto": "/annotations/org.minicontainer.ports",
    "annotation-ports-port-zero": "/annotations/org.minicontainer.ports",
    "annotation-restart-zero": "/annotations/org.minicontainer.restart",
    "annotation-add-hosts-space": "/annotations/org.minicontainer.add-hosts",
    "annotation-dns-search-newline": "/annotations/org.minicontainer.dns-search",
    "annotation-dns-options-hash": "/annotations/org.minicontainer.dns-options",
    "annotation-ports-port-above-65535": "/annotations/org.minicontainer.ports",
    "annotation-ports-bad-host-ip": "/annotations/org.minicontainer.ports",
    "annotation-ports-sctp": "/annotations/org.minicontainer.ports",
    "annotation-ports-space-after-comma": "/annotations/org.minicontainer.ports",
    "annotation-ports-trailing-comma": "/annotations/org.minicontainer.ports",
    "annotation-ports-empty": "/annotations/org.minicontainer.ports",
    "annotation-interactive-yes": "/annotations/org.minicontainer.interactive",
    "annotation-interactive-boolean": "/annotations/org.minicontainer.interactive",
    "annotation-rootfs-relative": "/annotations/org.minicontainer.rootfs",
}

BAD_STATE = {
    "bad-status": "/status",
    "status-capitalised": "/status",
    "id-with-slash": "/id",
    "id-with-space": "/id",
    "id-dot": "/id",
    "id-dotdot": "/id",
    "id-empty": "/id",
    "missing-id": "/id",
    "missing-ociversion": "/ociVersion",
    "missing-bundle": "/bundle",
    "relative-bundle": "/bundle",
    "running-without-pid": "/pid",
    "created-without-pid": "/pid",
    "paused-without-pid": "/pid",
    "negative-pid": "/pid",
    "pid-string": "/pid",
    "annotation-value-not-string": "/annotations/org.example.replicas",
    "annotation-ip-with-prefix": "/annotations/org.minicontainer.ip",
    "created-not-rfc3339": "/created",
    "rootfs-not-string": "/rootfs",
}

EXPECTED_BAD = {"config": BAD_CONFIG, "state": BAD_STATE}


def fixtures(kind, verdict):
    files = sorted((FIXTURES / kind / verdict).glob("*.json"))
    return [pytest.param(f, id=f"{kind}/{verdict}/{f.name}") for f in files]


# Placeholders the Specs goldens use for host paths, and absolute stand-ins.
GOLDEN_PLACEHOLDERS = {
    "$ROOTFS": "/var/lib/minicontainer/rootfs/busybox",
    "$VOLUME": "/tmp/minicontainer-test/vol",
}


def goldens():
    files = sorted(REPO_ROOT.glob("Specs/*/config.json"))
    return [pytest.param(f, id=str(f.relative_to(REPO_ROOT))) for f in files]


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def pointer(error):
    """JSON pointer of an error; a missing required property is named in it."""
    parts = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [p for p in error.validator_value if p not in error.instance]
        parts += missing[:1]
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


# ------------------------------------------------------------------ schemas

@pytest.mark.parametrize("name", schemas.SCHEMA_FILES)
def test_schema_is_valid(name):
    schema = schemas.load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/" + name)


def test_config_refers_to_annotations_schema():
    assert schemas.load_schema("config.schema.json")["properties"]["annotations"] == {"$ref": "annotations.schema.json"}


@pytest.mark.parametrize("kind,verdict,minimum", [
    ("config", "good", 6), ("config", "bad", 8), ("state", "good", 4), ("state", "bad", 5),
])
def test_fixture_sets_are_populated(kind, verdict, minimum):
    assert len(fixtures(kind, verdict)) >= minimum


@pytest.mark.parametrize("kind", ["config", "state"])
def test_every_bad_fixture_has_an_expected_location(kind):
    names = {p.values[0].stem for p in fixtures(kind, "bad")}
    assert names == set(EXPECTED_BAD[kind]), (
        f"fixtures without an entry in BAD_{kind.upper()}: {sorted(names - set(EXPECTED_BAD[kind]))}; "
        f"entries without a fixture: {sorted(set(EXPECTED_BAD[kind]) - names)}")


# ----------------------------------------------------------------- fixtures

@pytest.mark.parametrize("path", fixtures("config", "good"))
def test_good_config(path):
    schemas.validate_config(load(path))


@pytest.mark.parametrize("path", fixtures("state", "good"))
def test_good_state(path):
    schemas.validate_state(load(path))


def check_bad(kind, path):
    errors = list(schemas.validator(f"{kind}.schema.json").iter_errors(load(path)))
    assert errors, f"{path.name} should not validate against {kind}.schema.json"
    where = {pointer(e) for e in errors}
    expected = EXPECTED_BAD[kind].get(path.stem)
    assert where == {expected}, f"{path.name}: expected one problem at {expected!r}, got " + "; ".join(
        f"{pointer(e)}: {e.message}" for e in errors)
    validate = schemas.validate_config if kind == "config" else schemas.validate_state
    with pytest.raises(schemas.SchemaViolation):
        validate(load(path))


@pytest.mark.parametrize("path", fixtures("config", "bad"))
def test_bad_config(path):
    check_bad("config", path)


@pytest.mark.parametrize("path", fixtures("state", "bad"))
def test_bad_state(path):
    check_bad("state", path)


# ------------------------------------------------------------------ helpers

def test_helpers_accept_json_text():
    text = (FIXTURES / "state" / "good" / "running.json").read_text()
    assert schemas.validate_state(text)["status"] == "running"
    assert schemas.validate_state(text.encode())["status"] == "running"
    assert schemas.validate_config('{"ociVersion": "1.1.0"}') == {"ociVersion": "1.1.0"}


def test_violation_lists_every_problem():
    with pytest.raises(schemas.SchemaViolation) as info:
        schemas.validate_state({"ociVersion": "1.1.0", "id": "a/b", "status": "running", "bundle": "rel"})
    assert len(info.value.errors) == 3  # id, bundle, missing pid
    assert isinstance(info.value, AssertionError)


# ------------------------------------------------------------------ goldens

def expand_placeholders(text):
    for placeholder, stand_in in GOLDEN_PLACEHOLDERS.items():
        text = text.replace(placeholder, stand_in)
    return text


@pytest.mark.parametrize("path", goldens())
def test_golden_config(path):
    schemas.validate_config(expand_placeholders(path.read_text(encoding="utf-8")))
