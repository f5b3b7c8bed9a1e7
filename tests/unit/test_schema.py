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
