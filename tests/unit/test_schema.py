"""The task JSON Schema itself, and manifest.SchemaChecker's agreement with jsonschema.

manifest.py validates with its own small interpreter of schemas/task.schema.json
(jsonschema's costs most of the per-manifest budget). These tests keep the two
honest: the schema is valid Draft 2020-12, closed everywhere, documented, and on
every corpus document and on random documents both validators find the same
failures at the same places.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from controller.manifest import SchemaChecker, _decode, _FatalError, _load
from controller.resources import load_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = load_schema("task.schema.json")
CHECKER = SchemaChecker(SCHEMA)
REFERENCE = Draft202012Validator(SCHEMA)


def subschemas(node: Any, where: str = "#") -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(node, Mapping):
        yield where, node
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for name, sub in value.items():
                    yield from subschemas(sub, f"{where}/{key}/{name}")
            elif key in ("items", "additionalProperties", "propertyNames"):
                yield from subschemas(value, f"{where}/{key}")


def test_the_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_installed_schema_is_the_top_level_file() -> None:
    assert json.loads((ROOT / "schemas" / "task.schema.json").read_text(encoding="utf-8")) == SCHEMA


def test_every_object_schema_is_closed() -> None:
    """`additionalProperties: false` everywhere, or a schema for the values of a map."""
    for where, node in subschemas(SCHEMA):
        if node.get("type") == "object" or "properties" in node:
            assert "additionalProperties" in node, where
            if "properties" in node:
                assert node["additionalProperties"] is False, where


def schema_keys(node: Mapping[str, Any]) -> set[str]:
    keys: set[str] = set()
    for _where, sub in subschemas(node):
        keys.update(sub.get("properties", {}))
    return keys


def test_every_schema_key_is_documented_in_the_manifest_reference() -> None:
    doc = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(?:[\w.]+\.)?(\w+)`", doc))  # `cpu`, `resources.cpu`
    missing = sorted(schema_keys(SCHEMA) - documented)
    assert missing == []


@pytest.mark.parametrize(
    ("schema", "error"),
    [
        ({"oneOf": []}, "not supported"),
        ({"properties": {"a": {"format": "ipv4"}}}, "not supported"),
        ({"$ref": "other.json#/x"}, "only local"),
    ],
)
def test_the_checker_refuses_keywords_it_does_not_implement(
    schema: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        SchemaChecker(schema)


def ours(instance: object) -> set[tuple[tuple[object, ...], str]]:
    return {(e.path, e.keyword) for e in CHECKER.errors(instance)}


def reference(instance: object) -> set[tuple[tuple[object, ...], str]]:
    found = set()
    for error in REFERENCE.iter_errors(instance):
        keyword = "propertyNames" if "propertyNames" in error.schema_path else str(error.validator)
        found.add((tuple(error.absolute_path), keyword))
    return found


def corpus_documents() -> Iterator[Any]:
    """Every corpus file that loads as YAML, through manifest's loader (so the YAML
    bombs are refused here too: yaml.safe_load would hand back a billion-laughs
    structure whose JSON form does not fit in memory)."""
    paths = sorted((ROOT / "tests" / "data" / "invalid").glob("*.yaml"))
    paths += sorted((ROOT / "desired").glob("*.yaml"))
    for path in paths:
        try:
            doc, _index, _problems = _load(_decode(path.read_bytes()))
        except _FatalError:
            continue
        yield pytest.param(doc, id=f"{path.parent.name}-{path.stem}")


@pytest.mark.parametrize("doc", list(corpus_documents()))
def test_the_checker_agrees_with_jsonschema_on_the_corpus(doc: object) -> None:
    doc = json.loads(json.dumps(doc, default=str))  # dates become strings, as in JSON
    assert ours(doc) == reference(doc)


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=False),
    st.sampled_from(["", "x y", "500m", "256Mi", "10s", "rktctl.io/v1", "Task", "always",
                     "image", "6379-tcp", "/a:/b:readOnly", "web", "Web", "start-first"]),
)  # fmt: skip
KEYS = st.sampled_from(
    ["apiVersion", "kind", "metadata", "spec", "name", "labels", "config", "image", "args",
     "env", "resources", "cpu", "memory", "ports", "static", "port_map", "net", "restart",
     "policy", "update", "order", "constraints", "attribute", "operator", "value", "volumes",
     "insecure_options", "dns_servers", "x", "1bad", "A_B"]
)  # fmt: skip
DOCS = st.recursive(
    VALUES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(DOCS)
def test_the_checker_agrees_with_jsonschema_on_random_documents(doc: object) -> None:
    assert ours(doc) == reference(doc)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, DOCS, max_size=4))
def test_the_checker_agrees_with_jsonschema_inside_a_valid_shell(spec_extra: object) -> None:
    doc = {
        "apiVersion": "rktctl.io/v1",
        "kind": "Task",
        "metadata": {"name": "web"},
        "spec": {"config": {"image": "x", **spec_extra}, **spec_extra},
    }
    assert ours(doc) == reference(doc)
