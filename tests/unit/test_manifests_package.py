"""The manifests package's public surface: the rest of rktctl uses only its __init__.

The stages inside (yamlload, schema, rules, spec, desired) may be rearranged freely
as long as the names in controller/manifests/__init__.py keep their meaning; the
import-linter contracts in .importlinter hold the direction of imports inside.
"""

from __future__ import annotations

import ast
from pathlib import Path

import controller.manifests

CONTROLLER = Path(__file__).resolve().parents[2] / "controller"


def outside_uses() -> list[tuple[str, str]]:
    """(file, imported name) for every use of the package by a module outside it."""
    found: list[tuple[str, str]] = []
    for path in sorted(CONTROLLER.rglob("*.py")):
        if "manifests" in path.relative_to(CONTROLLER).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "controller.manifests"
            ):
                found.extend((f"{path.name}: {node.module}", a.name) for a in node.names)
            elif isinstance(node, ast.Import):
                found.extend(
                    (path.name, a.name)
                    for a in node.names
                    if a.name.startswith("controller.manifests.")
                )
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "manifests"
            ):
                found.append((f"{path.name}: manifests", node.attr))
    return found


def test_other_modules_use_only_the_names_in_init() -> None:
    uses = outside_uses()
    assert uses, "the scan found no use at all: it is broken"
    stray = [(where, name) for where, name in uses if not where.endswith(": manifests")
             and not where.endswith(": controller.manifests")]  # fmt: skip
    assert stray == []  # no submodule imports
    assert {name for _where, name in uses} <= set(controller.manifests.__all__)


def test_the_public_names_exist() -> None:
    for name in controller.manifests.__all__:
        assert hasattr(controller.manifests, name), name
