"""The example manifests in desired/ and the YAML examples in the docs are valid.

desired/ is what the live demo runs and what people copy from: each file must
validate, be named after its task, and together they must use every key of the
schema. The manifest examples in README.md must validate too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from controller.manifests import parse_manifest, yamlload
from controller.model import RestartPolicy
from controller.resources import load_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "desired").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_is_valid_and_named_after_its_file(path: Path) -> None:
    spec = parse_manifest(path.read_bytes(), source=str(path))
    assert spec.name == path.stem


def test_there_are_the_four_promised_examples() -> None:
    specs = {p.stem: parse_manifest(p.read_bytes(), source=str(p)) for p in EXAMPLES}
    assert set(specs) >= {"redis", "web", "nightly-report", "etcd"}
    assert specs["redis"].port_map["db"] == "6379-tcp"
    assert specs["redis"].has_static_ports
    web = specs["web"]
    assert any(v.host[0] != "/" for v in web.volumes)  # a relative (per-task) host path
    assert any(p.static is None for p in web.resources.ports)  # a dynamic port
    assert specs["nightly-report"].restart.policy == RestartPolicy.ON_FAILURE
    assert specs["etcd"].trust_prefix == "coreos.com/etcd"


def key_paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of the keys of a document; map-like keys (env, ports, ...) as `*`."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{prefix}.{key}" if prefix else str(key)
            yield here
            yield from key_paths(value, here)
    elif isinstance(node, list):
        for item in node:
            yield from key_paths(item, f"{prefix}[]")


def schema_paths(node: Mapping[str, Any], defs: Mapping[str, Any], prefix: str = "") -> set[str]:
    if "$ref" in node:
        node = {**defs[node["$ref"].rsplit("/", 1)[1]], **node}
    found: set[str] = set()
    for key, sub in node.get("properties", {}).items():
        here = f"{prefix}.{key}" if prefix else key
        found.add(here)
        found |= schema_paths(sub, defs, here)
    items = node.get("items")
    if isinstance(items, Mapping):
        found |= schema_paths(items, defs, f"{prefix}[]")
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        found |= schema_paths(extra, defs, f"{prefix}.*")
    return found


def normalise(path: str) -> str:
    """Replace the user-chosen keys of maps (labels, env, ports, port_map) by `*`."""
    return re.sub(r"(labels|env|ports|port_map)\.[^.\[]+", lambda m: f"{m.group(1)}.*", path)


def test_the_examples_together_use_every_key_of_the_schema() -> None:
    schema = load_schema("task.schema.json")
    wanted = schema_paths(schema, schema["$defs"])
    used: set[str] = set()
    for path in EXAMPLES:
        # rktctl's own loader: where the format names a key `on`, plain YAML reads `true`.
        data, _index, problems = yamlload.load(path.read_text(encoding="utf-8"))
        assert problems == [], problems
        used |= {normalise(p) for p in key_paths(data)}
    # TODO(issue 14): spec.health is not in desired/ yet: the demo's stand-in apps serve
    # no health endpoint on every backend, and a failing check would restart them.
    # tests/unit/test_health.py covers its parsing until an example carries it.
    unused = {p for p in wanted - used if not p.startswith("spec.health")}
    assert sorted(unused) == []


def yaml_blocks(markdown: Path) -> list[str]:
    text = markdown.read_text(encoding="utf-8")
    return [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "apiVersion:" in b]


@pytest.mark.parametrize("doc", ["README.md"])
def test_manifest_examples_in_the_docs_are_valid(doc: str) -> None:
    path = ROOT / doc
    if not path.exists():
        pytest.skip(f"{doc} is not in this checkout")
    blocks = yaml_blocks(path)
    assert blocks, f"{doc} has no manifest example"
    for i, block in enumerate(blocks):
        parse_manifest(block, source=f"{doc} example {i + 1}")
