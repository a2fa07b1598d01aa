"""Validation against the project's JSON Schemas in schema/.

Other tests import this to check what the runtime emits, e.g.

    from schemas import validate_state
    validate_state(json.loads(out))      # or validate_state(out)

validate_config / validate_state accept a parsed JSON value, or JSON text
(str or bytes). They return the parsed value and raise SchemaViolation (an
AssertionError, so pytest reports it as a plain failure) listing every
problem with its JSON path. config_errors / state_errors return those
problems as a list of strings instead of raising.
"""

import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "schema"
SCHEMA_FILES = ("config.schema.json", "state.schema.json", "annotations.schema.json")


class SchemaViolation(AssertionError):
    def __init__(self, what, errors):
        self.errors = errors
        super().__init__(f"{what} does not match its schema:\n  " + "\n  ".join(errors))


def load_schema(name):
    with open(SCHEMA_DIR / name, encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=None)
def _registry():
    # Every schema is registered under its $id, so relative $refs between
    # them ("annotations.schema.json") resolve locally, never over the network.
    resources = []
    for name in SCHEMA_FILES:
        schema = load_schema(name)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@lru_cache(maxsize=None)
def validator(name):
    """A Draft 2020-12 validator for schema/<name>, with formats asserted."""
    return Draft202012Validator(
        load_schema(name),
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _parse(obj):
    if isinstance(obj, (bytes, bytearray)):
        obj = obj.decode("utf-8")
    if isinstance(obj, str):
        obj = json.loads(obj)
    return obj


def errors(name, obj):
    """Every problem of obj against schema/<name>, as 'path: message' strings."""
    out = []
    for e in sorted(validator(name).iter_errors(_parse(obj)), key=lambda e: list(map(str, e.absolute_path))):
        out.append(f"{e.json_path}: {e.message}")
    return out


def config_errors(obj):
    return errors("config.schema.json", obj)


def state_errors(obj):
    return errors("state.schema.json", obj)


def validate_config(obj):
    """Check a config.json value (or its text); return it parsed."""
    obj = _parse(obj)
    problems = config_errors(obj)
    if problems:
        raise SchemaViolation("config", problems)
    return obj


def validate_state(obj):
    """Check `minicontainer state ID` output (parsed or text); return it parsed."""
    obj = _parse(obj)
    problems = state_errors(obj)
    if problems:
        raise SchemaViolation("state", problems)
    return obj
