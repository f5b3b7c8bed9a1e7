"""The loaded manifest as the rules read it: tolerant lookups and a problem list.

PURE. Rules run on documents that may also fail the schema, so every lookup here
returns None or nothing for a value of the wrong type instead of raising.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from controller.manifests.problems import Path, Problem, format_path
from controller.manifests.yamlload import LineIndex


class Document:
    """A manifest being checked: its data, its line index, and the problems found."""

    def __init__(self, data: dict[str, object], index: LineIndex) -> None:
        self.data = data
        self.index = index
        self.problems: list[Problem] = []
        ports = get(data, "spec", "resources", "ports")
        self.ports: list[str] = sorted(k for k in ports) if isinstance(ports, dict) else []
        """The declared port labels (${RKTCTL_PORT_<label>} and port_map refer to them)."""
        net = get(data, "spec", "config", "net")
        self.net: list[str] = [n for _, n in strs(net)]

    def add(self, path: Path, message: str) -> None:
        """Report `message` at `path` (its line found through the index)."""
        self.problems.append(Problem(self.index.line(path), format_path(path), message))


def get(data: object, *keys: str) -> object:
    """`data[k1][k2]...`, or None where a step is missing or not a mapping."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def strings(data: object) -> Iterator[tuple[Path, str]]:
    """Yield (path, text) for every string in `data`, mapping keys included."""
    stack: list[tuple[Path, object]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield (*path, key), key
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, i), item) for i, item in enumerate(value))


def strs(value: object) -> list[tuple[int, str]]:
    """The string items of a list, with their indexes (other items are the schema's job)."""
    if not isinstance(value, list):
        return []
    return [(i, v) for i, v in enumerate(value) if isinstance(v, str)]


def finite(number: str | float) -> bool:
    """False for inf and nan (YAML reads `.inf`), which no port or quantity can be."""
    return not isinstance(number, float) or math.isfinite(number)
