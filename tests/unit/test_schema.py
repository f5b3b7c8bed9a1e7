"""The task JSON Schema itself, and how the manifests package checks documents with it.

The schema is checked by jsonschema's Draft 2020-12 validator (controller.manifests.schema);
these tests keep the schema honest (valid 2020-12, usable by editors, closed everywhere,
documented) and pin the few places where rktctl asks more of the library than its
defaults: patterns match the whole string, and every keyword the schema uses is worded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from controller.manifests import ManifestInvalidError, parse_manifest
from controller.manifests.schema import SCHEMA_NAME, validator
from controller.resources import load_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = load_schema(SCHEMA_NAME)


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


def test_the_schema_is_usable_by_editors() -> None:
    """yaml-language-server picks the dialect from $schema and caches by $id."""
    assert SCHEMA["$id"] == "https://rktctl.io/schemas/task.schema.json"
    Draft202012Validator(Draft202012Validator.META_SCHEMA).validate(SCHEMA)


def test_the_validator_is_jsonschemas_draft_2020_12() -> None:
    checker = validator()
    ours, theirs = type(checker).VALIDATORS, Draft202012Validator.VALIDATORS
    assert checker.META_SCHEMA == Draft202012Validator.META_SCHEMA
    assert {k for k in theirs if ours.get(k) is not theirs[k]} == {"pattern"}
    assert checker.schema == SCHEMA
    assert validator() is checker  # built once per process


def test_every_pattern_is_anchored() -> None:
    """The validator matches patterns in full (ECMA-262's `$`); that equals JSON Schema's
    search only for patterns anchored at both ends."""
    for where, node in subschemas(SCHEMA):
        pattern = node.get("pattern")
        if pattern is not None:
            assert pattern.startswith("^") and pattern.endswith("$"), where


@pytest.mark.parametrize(
    ("yaml_value", "path"),
    [
        ('"web\\n"', "metadata.name"),
        ('"docker://nginx\\n"', "spec.config.image"),
    ],
)
def test_a_trailing_newline_does_not_slip_past_a_pattern(yaml_value: str, path: str) -> None:
    """Python's `$` matches before a final newline; JSON Schema's (ECMA-262) does not."""
    name, image = ("web", "docker://nginx")
    if path == "metadata.name":
        name = yaml_value
    else:
        image = yaml_value
    text = (
        f"apiVersion: rktctl.io/v1\nkind: Task\nmetadata:\n  name: {name}\n"
        f"spec:\n  config:\n    image: {image}\n"
    )
    with pytest.raises(ManifestInvalidError) as caught:
        parse_manifest(text, source="t.yaml")
    assert path in {p.path for p in caught.value.problems}


WORDED = {"type", "const", "enum", "required", "additionalProperties", "propertyNames",
          "minLength", "maxLength", "pattern", "minimum", "maximum", "uniqueItems", "minItems",
          "maxItems"}  # fmt: skip
ANNOTATIONS = {"$schema", "$id", "$defs", "$ref", "title", "description", "default", "x-hint",
               "properties", "items"}  # fmt: skip


def test_every_keyword_of_the_schema_has_its_own_wording() -> None:
    """A new keyword in the schema would be reported as a bare 'is not valid': word it in
    controller/manifests/schema.py (and add it here) first."""
    used: set[str] = set()
    for _where, node in subschemas(SCHEMA):
        used.update(node)
    assert used - WORDED - ANNOTATIONS == set()


# --- the fast path: jsonschema-rs says yes/no, jsonschema words the no ----------------------

# Values that break a leaf in every way the schema can object to: wrong types, empty,
# negative, a trailing newline (ECMA `$`), too long, a float, a 65-bit integer.
_BAD_LEAVES: tuple[object, ...] = (
    None, True, 0, -1, 1.5, "", "x", "a\n", "x" * 300, [], {}, ["x", "x"], 2**65,
)  # fmt: skip


def _mutations(node: Any) -> Iterator[Any]:
    """Every document that differs from `node` in one place: each value replaced by each
    of _BAD_LEAVES, each list extended by a copy of its first item, an unknown key added
    to each mapping, each key removed."""
    yield from _BAD_LEAVES
    if isinstance(node, dict):
        yield {**node, "unknownKey": "x"}
        for key, value in node.items():
            yield {k: v for k, v in node.items() if k != key}
            for changed in _mutations(value):
                yield {**node, key: changed}
    elif isinstance(node, list):
        if node:
            yield [*node, node[0]]
        for i, value in enumerate(node):
            for changed in _mutations(value):
                yield [*node[:i], changed, *node[i + 1 :]]


def _has_big_int(node: Any) -> bool:
    if isinstance(node, dict):
        return any(_has_big_int(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_big_int(v) for v in node)
    return type(node) is int and not -(2**63) <= node < 2**64


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "desired").glob("*.yaml")))
def test_the_fast_validator_agrees_with_jsonschema(example: str) -> None:
    """jsonschema-rs must never pass what jsonschema fails: a manifest it passes is never
    worded, so a disagreement would let a broken one through. It should also pass what
    jsonschema passes (else the fast path only costs), except values it cannot convert."""
    from controller.manifests.schema import fast_is_valid
    from controller.manifests.yamlload import load

    document, _index, problems = load((ROOT / "desired" / example).read_text())
    assert not problems and fast_is_valid(document)
    checked = invalid = 0
    for mutated in _mutations(document):
        fast = fast_is_valid(mutated)
        full = not any(True for _ in validator().iter_errors(mutated))
        if fast:
            assert full, f"jsonschema-rs passes what jsonschema fails: {mutated!r}"
        elif not _has_big_int(mutated):
            assert not full, f"jsonschema passes what jsonschema-rs fails: {mutated!r}"
        checked += 1
        invalid += not full
    assert checked > 300 and invalid > checked // 2  # the corpus is mostly broken documents
