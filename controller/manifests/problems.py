"""What is wrong with a manifest, worded for people: `Problem`, the error that carries them.

PURE. Every stage (yamlload, schema, rules, spec) reports `Problem`s; the helpers here
quote values read from a file the same way everywhere: escaped and cut to EXCERPT_CHARS,
because a file may not be a manifest at all (a symlink to a secret) and messages reach
world-readable status files and the log.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from controller.errors import ManifestError

EXCERPT_CHARS: Final = 40
"""Messages quote at most this many characters of any one value read from a file."""

Path = tuple[str | int, ...]
"""A JSON path as keys and list indexes: ("spec", "config", "args", 0)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a manifest: where (line, JSON path) and what to do."""

    line: int | None
    """1-based line in the file, None when it cannot be known."""
    path: str
    """JSON path such as `spec.config.volumes[1]`; "" for the document as a whole."""
    message: str
    """What is wrong and what to do, without the file name."""

    def format(self, source: str) -> str:
        """Return `<source>:<line>: <path>: <message>` (line and path omitted when unknown)."""
        where = source if self.line is None else f"{source}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestInvalidError(ManifestError):
    """A ManifestError that also carries the structured problems (for `validate --json`)."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        ordered = tuple(sorted(set(problems), key=_problem_order))
        self.problems = ordered
        super().__init__(source, [p.format(source) for p in ordered])


def _problem_order(p: Problem) -> tuple[int, str, str]:
    return (0 if p.line is None else p.line, p.path, p.message)


def format_path(path: Path) -> str:
    """Return a JSON path for people: `spec.env.HOME`, `spec.config.args[0]`, `a["x.y"]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif len(part) <= EXCERPT_CHARS and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{quote(part)}]"
    return out


def quote(text: str) -> str:
    """Quote a value read from a file for a message: escaped, at most EXCERPT_CHARS long."""
    if len(text) <= EXCERPT_CHARS:
        return json.dumps(text)
    return f"{json.dumps(text[:EXCERPT_CHARS])}... ({len(text)} characters)"


def quote_key(text: str) -> str:
    """Like `quote`, in the 'single quotes' style messages use for keys and names."""
    if len(text) <= EXCERPT_CHARS:
        return repr(text)
    return f"{text[:EXCERPT_CHARS]!r}... ({len(text)} characters)"


def clip(text: str) -> str:
    """Like `quote` without the quotes, for words shown inside other syntax (`${...}`, tags)."""
    return quote(text)[1:-1] if len(text) <= EXCERPT_CHARS else quote(text)


class FatalError(Exception):
    """The file cannot be read as YAML at all: no further stage runs."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def did_you_mean(value: str, choices: Sequence[str]) -> str:
    """The suffix `; did you mean 'x'?` for the closest of `choices`, or nothing."""
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def kind_of(value: object) -> str:
    """What a value is, without showing it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return describe(value) if isinstance(value, (dict, list)) or value is None else "a date"


def describe(value: object) -> str:
    """A value for a message, shown (cut to EXCERPT_CHARS): `the number 8080`."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {clip(str(value))}"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {quote(value)}"
    return f"a {type(value).__name__} ({value})"


def show(value: object) -> str:
    """A value as a manifest would write it: strings quoted, booleans lowercase."""
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return describe(value)
    return str(value)
