"""Task manifests: YAML bytes -> a validated, defaulted `TaskSpec`, its spec hash, the desired set.

PURE. `parse_manifest` loads (size cap, UTF-8, one document, safe scalars only, duplicate
keys, depth/alias/node caps against YAML bombs, a line for every key), checks the JSON
Schema `schemas/task.schema.json`, then the rules a schema cannot express (quantities,
volumes, DNS, ports, ${...}), and converts to frozen model values; every problem of a
file is reported at once. Called by `reconcile` (via `build_desired`), `cli validate`
and `placement` (`compute_spec_hash` on an interpolated spec). It never reads files or
the clock, never logs, and raises only `ManifestError` for bad input; its one read is
the packaged schema, once.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any, Final

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from controller import extraargs
from controller.errors import ManifestError
from controller.model import (
    API_VERSION,
    RKT_INSECURE_OPTIONS,
    Constraint,
    DesiredState,
    Invalid,
    PortRequest,
    Resources,
    Restart,
    RestartPolicy,
    SpecHash,
    TaskName,
    TaskSpec,
    UpdateOrder,
    Volume,
    frozen_map,
)
from controller.resources import load_schema

try:  # libyaml is ~20x faster; the pure-Python parser yields the same events.
    from yaml import CSafeLoader as _EventSource
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _EventSource  # type: ignore[assignment]

SCHEMA_NAME: Final = "task.schema.json"
MAX_BYTES: Final = 1024 * 1024
"""Files larger than this are refused before parsing."""
MAX_DEPTH: Final = 32
"""Deepest nesting of mappings/lists; a manifest needs 5."""
MAX_ALIASES: Final = 100
"""YAML aliases (`*name`) allowed in one file."""
MAX_NODES: Final = 20_000
"""Values in a file after alias expansion (a billion-laughs file expands to 10^9)."""
MIN_MEMORY_BYTES: Final = 4096
"""rkt refuses memory limits under 4 KiB."""
MAX_PLAIN_CORES: Final = 100
"""A unit-less cpu string at or above this is almost surely millicores without the `m`."""
EXCERPT_CHARS: Final = 40
"""Messages quote at most this many characters of any one value read from a file: the
file may not be a manifest at all (a symlink to a secret), and messages reach
world-readable status files and the log."""
SPEC_HASH_PREFIX: Final = "sha256:"
SPEC_HASH_HEX_CHARS: Final = 16

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
AC_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
"""rkt's ACName: the syntax of an image's port names such as `6379-tcp`."""
INSECURE_OPTIONS: Final = RKT_INSECURE_OPTIONS
_INSECURE_WITHOUT_KEYSTORE: Final = frozenset({"image", "all-fetch", "all"})
CONSTRAINT_OPERATORS: Final = (
    "=", "==", "!=", ">", ">=", "<", "<=", "regexp", "set_contains",
    "is_set", "is_not_set", "version", "semver",
)  # fmt: skip
_UNARY_OPERATORS: Final = frozenset({"is_set", "is_not_set"})
_SPECIAL_NETS: Final = frozenset({"host", "none"})
_SPECIAL_DNS: Final = frozenset({"host", "none"})

Path = tuple[str | int, ...]


# --- Problems ------------------------------------------------------------------------


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
            out += f"[{_q(part)}]"
    return out


def _q(text: str) -> str:
    """Quote a value read from a file for a message: escaped, at most EXCERPT_CHARS long."""
    if len(text) <= EXCERPT_CHARS:
        return json.dumps(text)
    return f"{json.dumps(text[:EXCERPT_CHARS])}... ({len(text)} characters)"


def _qk(text: str) -> str:
    """Like `_q`, in the 'single quotes' style messages use for keys and names."""
    if len(text) <= EXCERPT_CHARS:
        return repr(text)
    return f"{text[:EXCERPT_CHARS]!r}... ({len(text)} characters)"


def _clip(text: str) -> str:
    """Like `_q` without the quotes, for words shown inside other syntax (`${...}`, tags)."""
    return _q(text)[1:-1] if len(text) <= EXCERPT_CHARS else _q(text)


class _FatalError(Exception):
    """The file cannot be read as YAML at all: no further stage runs."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


# --- Loading ---------------------------------------------------------------------------


_TAG = "tag:yaml.org,2002:"
_ALLOWED_SCALAR_TAGS: Final = frozenset(
    _TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")
)
_COLLECTION_TAGS: Final = frozenset({None, "!", _TAG + "map", _TAG + "seq"})
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()
_MISSING: Any = object()


@dataclass(slots=True)
class _Index:
    """Lines of keys and list items, and the source text of non-string scalars."""

    lines: dict[Path, int] = dataclasses.field(default_factory=dict)
    raw: dict[Path, str] = dataclasses.field(default_factory=dict)

    def line(self, path: Path) -> int | None:
        """Return the line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return None


@dataclass(slots=True)
class _Frame:
    """A mapping or list being composed. Exactly one of `mapping`/`items` is set."""

    path: Path
    anchor: str | None
    mapping: dict[str, object] | None = None
    items: list[object] | None = None
    size: int = 1
    key: str = ""
    key_path: Path | None = None
    """Mappings: the path of the key whose value comes next; None while a key is awaited."""


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        # A character is at most 4 bytes: only long texts need encoding to be measured.
        if len(data) * 4 > MAX_BYTES:
            size = len(data.encode("utf-8", "surrogatepass"))
            if size > MAX_BYTES:
                raise _FatalError(Problem(None, "", _too_big(size)))
        return data.removeprefix("\ufeff")
    if len(data) > MAX_BYTES:
        raise _FatalError(Problem(None, "", _too_big(len(data))))
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise _FatalError(
            Problem(
                line,
                "",
                f"not UTF-8 text (byte 0x{bad} at offset {exc.start}); "
                "a manifest must be a UTF-8 YAML file",
            )
        ) from None


def _too_big(size: int) -> str:
    return (
        f"file is {size} bytes or more, over the {MAX_BYTES // 1024} KiB limit; "
        "a task manifest is a few hundred bytes - is this the right file?"
    )


_SCALAR, _MAPPING, _SEQUENCE, _END, _ALIAS, _DOCUMENT = range(6)
_EVENT_KINDS: Final[Mapping[type, int]] = {
    yaml.ScalarEvent: _SCALAR,
    yaml.MappingStartEvent: _MAPPING,
    yaml.SequenceStartEvent: _SEQUENCE,
    yaml.MappingEndEvent: _END,
    yaml.SequenceEndEvent: _END,
    yaml.AliasEvent: _ALIAS,
    yaml.DocumentStartEvent: _DOCUMENT,
}


def _load(text: str) -> tuple[object, _Index, list[Problem]]:
    """Compose the single YAML document of `text` into plain values, with an index.

    Raise _FatalError for anything that stops reading (syntax, caps, multiple documents);
    return recoverable problems (duplicate or non-string keys) alongside the value.
    The composer is iterative: deep nesting is refused at MAX_DEPTH before libyaml
    has to scan further (its cost grows quadratically with flow nesting). Plain
    string keys and values take an inlined fast path: this loop is most of the cost
    of validating a manifest.
    """
    index = _Index()
    lines = index.lines
    problems: list[Problem] = []
    anchors: dict[str, tuple[object, int]] = {}
    stack: list[_Frame] = []
    parent: _Frame | None = None
    root: object = _MISSING
    documents = 0
    aliases = 0
    total = 0
    loader = _EventSource(text)
    try:
        while loader.check_event():
            event: Any = loader.get_event()
            kind = _EVENT_KINDS.get(type(event))
            if kind is None:
                continue  # stream start/end, document end
            if kind == _DOCUMENT:
                documents += 1
                if documents > 1:
                    raise _FatalError(
                        Problem(
                            _line(event),
                            "",
                            "a second YAML document starts here; a manifest holds exactly one "
                            "task, so put each task in its own file",
                        )
                    )
                continue
            value: object
            if kind == _END:
                assert parent is not None
                frame = stack.pop()
                value = frame.mapping if frame.mapping is not None else frame.items
                size = frame.size
                if frame.anchor is not None:
                    anchors[frame.anchor] = (value, size)
                parent = stack[-1] if stack else None
            else:
                if parent is not None and parent.mapping is not None and parent.key_path is None:
                    if (
                        kind == _SCALAR
                        and event.tag is None
                        and (
                            not event.implicit[0]
                            or (event.value and event.value[0] not in _IMPLICIT_FIRST)
                        )
                    ):
                        key = event.value
                        key_path = (*parent.path, key)
                        if key in parent.mapping:
                            _duplicate(event, key, key_path, index, problems)
                        else:
                            lines[key_path] = event.start_mark.line + 1
                    else:
                        key, key_path = _read_key(event, parent, index, problems)
                    parent.key = key
                    parent.key_path = key_path
                    continue
                if parent is None:
                    path: Path = ()
                    lines[path] = _line(event)
                elif parent.key_path is not None:
                    path = parent.key_path
                else:
                    assert parent.items is not None
                    path = (*parent.path, len(parent.items))
                    lines[path] = event.start_mark.line + 1
                total += 1
                if kind == _SCALAR:
                    tag = event.tag
                    if tag == "!" or (
                        tag is None
                        and (
                            not event.implicit[0]
                            or (event.value and event.value[0] not in _IMPLICIT_FIRST)
                        )
                    ):
                        value = event.value  # a string for sure: skip the resolver
                    else:
                        value = _read_scalar(event, path, index)
                    size = 1
                    if event.anchor is not None:
                        anchors[event.anchor] = (value, 1)
                elif kind == _ALIAS:
                    value, size = _alias(event, path, anchors)
                    aliases += 1
                    total += size - 1
                    if aliases > MAX_ALIASES:
                        raise _FatalError(
                            Problem(
                                _line(event),
                                format_path(path),
                                f"more than {MAX_ALIASES} YAML aliases; write the values out",
                            )
                        )
                else:
                    parent = _open(event, kind, path, len(stack))
                    stack.append(parent)
                    continue
                if total > MAX_NODES:
                    raise _FatalError(_bomb(_line(event), path))
            if parent is None:
                root = value
            else:
                parent.size += size
                if parent.mapping is not None:
                    parent.mapping[parent.key] = value
                    parent.key_path = None
                else:
                    assert parent.items is not None
                    parent.items.append(value)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = None if mark is None else mark.line + 1
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        if len(what) > 4 * EXCERPT_CHARS:  # PyYAML quotes tag handles and the like
            what = what[: 4 * EXCERPT_CHARS] + "..."
        raise _FatalError(Problem(at, "", f"invalid YAML: {what}; fix the syntax")) from None
    except yaml.YAMLError as exc:  # ReaderError: control characters and the like
        position = getattr(exc, "position", None)
        at = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        reason = (getattr(exc, "reason", None) or str(exc).splitlines()[0])[: 4 * EXCERPT_CHARS]
        raise _FatalError(Problem(at, "", f"invalid YAML: {reason}; remove it")) from None
    finally:
        loader.dispose()
    if root is _MISSING or root is None:
        raise _FatalError(
            Problem(
                None,
                "",
                "the file is empty; a manifest needs apiVersion, kind, metadata and spec "
                "(see README.md, 'Task manifests')",
            )
        )
    return root, index, problems


def _alias(
    event: yaml.Event, path: Path, anchors: Mapping[str, tuple[object, int]]
) -> tuple[object, int]:
    anchor = getattr(event, "anchor", None) or ""
    if anchor not in anchors:
        raise _FatalError(
            Problem(
                _line(event),
                format_path(path),
                f"alias *{_clip(anchor)} refers to no complete anchor &{_clip(anchor)} "
                "(undefined, or it refers to a node that contains it)",
            )
        )
    return anchors[anchor]


def _open(event: yaml.Event, kind: int, path: Path, depth: int) -> _Frame:
    tag = getattr(event, "tag", None)
    if tag not in _COLLECTION_TAGS:
        raise _FatalError(Problem(_line(event), format_path(path), _tag_message(str(tag))))
    if depth >= MAX_DEPTH:
        raise _FatalError(
            Problem(
                _line(event),
                format_path(path),
                f"nested deeper than {MAX_DEPTH} levels; a manifest needs about 5",
            )
        )
    anchor = getattr(event, "anchor", None)
    if kind == _MAPPING:
        return _Frame(path=path, anchor=anchor, mapping={})
    return _Frame(path=path, anchor=anchor, items=[])


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return 0 if mark is None else mark.line + 1


def _bomb(line: int, path: Path) -> Problem:
    return Problem(
        line,
        format_path(path),
        f"more than {MAX_NODES} values after expanding YAML aliases (a YAML bomb?); "
        "write the manifest without aliases",
    )


def _read_key(
    event: yaml.Event, parent: _Frame, index: _Index, problems: list[Problem]
) -> tuple[str, Path]:
    if not isinstance(event, yaml.ScalarEvent):
        raise _FatalError(
            Problem(
                _line(event),
                format_path(parent.path),
                "a mapping key must be a plain string, not a list, map or alias",
            )
        )
    tag = _scalar_tag(event)
    key = event.value
    if tag != _STR_TAG:
        if tag == _MERGE_TAG:
            raise _FatalError(
                Problem(
                    _line(event),
                    format_path(parent.path),
                    "YAML merge keys ('<<') are not supported; write the keys out",
                )
            )
        value = _construct(event, tag, parent.path)
        if not isinstance(value, str):
            problems.append(
                Problem(
                    _line(event),
                    format_path((*parent.path, key)),
                    f"key {_clip(key)} is read as {_describe(value)}; quote it: {_q(key)}",
                )
            )
        else:
            key = value
    path = (*parent.path, key)
    if (parent.mapping is not None and key in parent.mapping) or path in index.lines:
        _duplicate(event, key, path, index, problems)
    else:
        index.lines[path] = _line(event)
    return key, path


def _duplicate(
    event: yaml.Event, key: str, path: Path, index: _Index, problems: list[Problem]
) -> None:
    line = _line(event)
    first = index.lines.get(path)
    problems.append(
        Problem(
            line,
            format_path(path),
            f"duplicate key {_qk(key)} (first at line {first}, again at line {line}); "
            "keep only one",
        )
    )


_STR_TAG: Final = _TAG + "str"
_MERGE_TAG: Final = _TAG + "merge"
# First characters for which YAML 1.1 may read a plain scalar as something other than a
# string (digits, signs, y/n/t/f/o for booleans, ~ for null, ...): others skip the resolver.
_IMPLICIT_FIRST: Final = frozenset(k for k in Resolver.yaml_implicit_resolvers if k)


def _scalar_tag(event: yaml.ScalarEvent) -> str:
    explicit = event.tag
    if explicit is None:
        if not event.implicit[0]:  # quoted
            return _STR_TAG
        value = event.value
        if value and value[0] not in _IMPLICIT_FIRST:
            return _STR_TAG
        resolved: str = _RESOLVER.resolve(  # type: ignore[no-untyped-call]
            yaml.ScalarNode, value, (True, False)
        )
        return resolved
    if explicit == "!":
        return _STR_TAG
    return explicit


def _construct(event: yaml.ScalarEvent, tag: str, path: Path) -> object:
    if tag not in _ALLOWED_SCALAR_TAGS:
        raise _FatalError(Problem(_line(event), format_path(path), _tag_message(tag)))
    node = yaml.ScalarNode(tag, event.value, style=event.style)
    try:
        return SafeConstructor.yaml_constructors[tag](_CONSTRUCTOR, node)
    except (ValueError, TypeError, yaml.YAMLError):
        raise _FatalError(
            Problem(
                _line(event),
                format_path(path),
                f"{_q(event.value)} cannot be read as {tag.replace(_TAG, '!!')}",
            )
        ) from None


def _read_scalar(event: yaml.ScalarEvent, path: Path, index: _Index) -> object:
    tag = _scalar_tag(event)
    if tag == _STR_TAG:
        return event.value
    value = _construct(event, tag, path)
    if not isinstance(value, str):
        index.raw[path] = event.value
    return value


def _tag_message(tag: str) -> str:
    short = _clip(tag.replace(_TAG, "!!"))
    return f"YAML tag {short} is not allowed in a manifest; remove it"


# --- JSON Schema (the subset the task schema uses) ----------------------------------


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One JSON Schema failure: where, which keyword, and the subschema holding it."""

    path: Path
    keyword: str
    schema: Mapping[str, Any]
    instance: object
    key: str | None = None
    """For `additionalProperties`, `propertyNames` and `required`: the key concerned."""
    index: int | None = None
    """For `uniqueItems`: the first repeated item."""


class SchemaChecker:
    """A small Draft 2020-12 validator for exactly the keywords task.schema.json uses.

    jsonschema's validator costs ~0.7 ms per manifest, most of the 1 ms budget; this
    interpreter of the same schema document costs a few tens of microseconds. It
    refuses schemas with keywords it does not implement, and tests/unit/test_schema.py
    checks that it agrees with jsonschema's Draft202012Validator on every corpus file.
    Patterns must match the whole string (no trailing newline slips past `$`).
    """

    SUPPORTED: Final = frozenset(
        {
            "$schema", "$id", "$defs", "$ref", "title", "description", "default", "x-hint",
            "type", "const", "enum", "required", "properties", "additionalProperties",
            "propertyNames", "pattern", "minLength", "maxLength", "minimum", "maximum",
            "uniqueItems", "items",
        }
    )  # fmt: skip

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._defs: Mapping[str, Any] = schema.get("$defs", {})
        self._root = schema
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._audit(schema)

    def _audit(self, schema: object) -> None:
        if not isinstance(schema, Mapping):
            return
        unknown = set(schema) - self.SUPPORTED
        if unknown:
            raise ValueError(f"schema keyword(s) not supported: {sorted(unknown)}")
        if "pattern" in schema:
            self._patterns[schema["pattern"]] = re.compile(schema["pattern"])
        if "$ref" in schema and not str(schema["$ref"]).startswith("#/$defs/"):
            raise ValueError(f"only local $refs are supported: {schema['$ref']}")
        for key in ("properties", "$defs"):
            for sub in schema.get(key, {}).values():
                self._audit(sub)
        for key in ("additionalProperties", "propertyNames", "items"):
            self._audit(schema.get(key))

    def errors(self, instance: object) -> list[SchemaError]:
        """Return every failure of `instance` against the schema, in document order."""
        out: list[SchemaError] = []
        self._check(self._root, instance, (), out)
        return out

    def _check(
        self, schema: Mapping[str, Any], inst: object, path: Path, out: list[SchemaError]
    ) -> None:
        ref = schema.get("$ref")
        if ref is not None:
            self._check(self._defs[ref.rsplit("/", 1)[1]], inst, path, out)
        expected = schema.get("type")
        if expected is not None and not _type_ok(expected, inst):
            out.append(SchemaError(path, "type", schema, inst))
        if "const" in schema and not _json_equal(inst, schema["const"]):
            out.append(SchemaError(path, "const", schema, inst))
        if "enum" in schema and not any(_json_equal(inst, e) for e in schema["enum"]):
            out.append(SchemaError(path, "enum", schema, inst))
        if isinstance(inst, str):
            self._check_string(schema, inst, path, out)
        elif isinstance(inst, (int, float)) and not isinstance(inst, bool):
            if "minimum" in schema and inst < schema["minimum"]:
                out.append(SchemaError(path, "minimum", schema, inst))
            if "maximum" in schema and inst > schema["maximum"]:
                out.append(SchemaError(path, "maximum", schema, inst))
        elif isinstance(inst, dict):
            self._check_object(schema, inst, path, out)
        elif isinstance(inst, list):
            items = schema.get("items")
            if items is not None:
                for i, item in enumerate(inst):
                    self._check(items, item, (*path, i), out)
            if schema.get("uniqueItems"):
                seen: list[object] = []
                for i, item in enumerate(inst):
                    if any(_json_equal(item, s) for s in seen):
                        out.append(SchemaError(path, "uniqueItems", schema, inst, index=i))
                        break
                    seen.append(item)

    def _check_string(
        self, schema: Mapping[str, Any], inst: str, path: Path, out: list[SchemaError]
    ) -> None:
        if "minLength" in schema and len(inst) < schema["minLength"]:
            out.append(SchemaError(path, "minLength", schema, inst))
        if "maxLength" in schema and len(inst) > schema["maxLength"]:
            out.append(SchemaError(path, "maxLength", schema, inst))
        pattern = schema.get("pattern")
        if pattern is not None and not self._patterns[pattern].fullmatch(inst):
            out.append(SchemaError(path, "pattern", schema, inst))

    def _check_object(
        self, schema: Mapping[str, Any], inst: dict[str, object], path: Path, out: list[SchemaError]
    ) -> None:
        for key in schema.get("required", ()):
            if key not in inst:
                out.append(SchemaError(path, "required", schema, inst, key=key))
        names = schema.get("propertyNames")
        if names is not None:
            for key in inst:
                failed: list[SchemaError] = []
                self._check(names, key, path, failed)
                out.extend(dataclasses.replace(e, keyword="propertyNames", key=key) for e in failed)
        props: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in inst.items():
            if key in props:
                self._check(props[key], value, (*path, key), out)
            elif extra is False:
                out.append(SchemaError(path, "additionalProperties", schema, inst, key=key))
            elif isinstance(extra, Mapping):
                self._check(extra, value, (*path, key), out)


def _type_ok(expected: str | Sequence[str], inst: object) -> bool:
    names = (expected,) if isinstance(expected, str) else expected
    return any(_TYPE_TESTS[name](inst) for name in names)


_TYPE_TESTS: Final[Mapping[str, Callable[[object], bool]]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    # JSON Schema counts 2.0 as an integer
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}


def _json_equal(a: object, b: object) -> bool:
    """JSON equality: true is not 1, and 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_num(a) and _is_num(b):
        return a == b
    return type(a) is type(b) and a == b


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@cache
def _checker() -> SchemaChecker:
    return SchemaChecker(load_schema(SCHEMA_NAME))


@cache
def _key_homes() -> Mapping[str, tuple[str, ...]]:
    """Map each key the schema knows to the JSON paths of the objects that accept it."""
    schema = load_schema(SCHEMA_NAME)
    defs = schema["$defs"]
    homes: dict[str, list[str]] = {}

    def walk(node: Mapping[str, Any], where: str, depth: int) -> None:
        # The schema is not recursive; the depth bound only guards against a future one.
        if "$ref" in node:
            node = {**defs[node["$ref"].rsplit("/", 1)[1]], **node}
            node.pop("$ref")
        for key, sub in node.get("properties", {}).items():
            homes.setdefault(key, []).append(where or "the top level")
            if depth < 6:
                walk(sub, f"{where}.{key}" if where else key, depth + 1)
        items = node.get("items")
        if isinstance(items, Mapping) and depth < 6:
            walk(items, f"{where}[]", depth + 1)

    walk(schema, "", 0)
    return {k: tuple(v) for k, v in homes.items()}


def _schema_problem(err: SchemaError, index: _Index) -> Problem:
    hint = err.schema.get("x-hint")
    kw = err.keyword
    if kw in ("additionalProperties", "propertyNames", "required"):
        assert err.key is not None
        path = (*err.path, err.key)
        line = index.line(path) if kw != "required" else index.line(err.path)
        if kw == "required":
            return Problem(line, format_path(path), "required key is missing; add it")
        if kw == "propertyNames":
            return Problem(line, format_path(path), f"key {_qk(err.key)} is not valid; {hint}")
        return Problem(line, format_path(path), _unknown_key(err.key, err.schema, err.path))
    if kw == "uniqueItems":
        assert isinstance(err.instance, list)
        assert err.index is not None
        path = (*err.path, err.index)
        item = err.instance[err.index]
        return Problem(index.line(path), format_path(path), f"{_show(item)} is listed twice")
    path = err.path
    line = index.line(path)
    where = format_path(path)
    inst = err.instance
    if kw == "type":
        # Environment values may be secrets: a wrong type is named, never its value.
        secret = len(path) == 3 and path[:2] == ("spec", "env")
        raw = index.raw.get(path)
        return Problem(line, where, _type_message(err.schema["type"], inst, raw, secret=secret))
    if kw == "const":
        return Problem(line, where, f"must be {_show(err.schema['const'])}, not {_show(inst)}")
    if kw == "enum":
        choices = [str(c) for c in err.schema["enum"]]
        return Problem(line, where, f"{_show(inst)} is not one of {', '.join(choices)}" + (
            _did_you_mean(inst, choices) if isinstance(inst, str) else ""))  # fmt: skip
    if kw == "minLength" and err.schema["minLength"] == 1:
        return Problem(line, where, "must not be empty" + (f"; {hint}" if hint else ""))
    if kw == "maxLength":
        return Problem(
            line, where, f"is longer than {err.schema['maxLength']} characters ({len(str(inst))})"
        )
    if kw == "minimum":
        return Problem(
            line, where, f"{_clip(str(inst))} is less than the minimum of {err.schema['minimum']}"
        )
    if kw == "maximum":
        return Problem(
            line,
            where,
            f"{_clip(str(inst))} is greater than the maximum of {err.schema['maximum']}",
        )
    return Problem(line, where, f"{_show(inst)} is not valid" + (f"; {hint}" if hint else ""))


def _unknown_key(key: str, schema: Mapping[str, Any], parent: Path) -> str:
    allowed = sorted(schema.get("properties", {}))
    message = f"unknown key {_qk(key)}"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    homes = [h for h in _key_homes().get(key, ()) if h != format_path(parent)]
    if homes:
        return f"{message} here; it belongs in {' or '.join(homes)}"
    return f"{message}; allowed keys here: {', '.join(allowed)}"


def _did_you_mean(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


_TYPE_WORDS: Final = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "boolean": "true or false",
    "integer": "an integer",
    "number": "a number",
    "null": "nothing",
}


def _type_message(
    expected: str | Sequence[str], inst: object, raw: str | None, *, secret: bool = False
) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    want = " or ".join(_TYPE_WORDS[n] for n in names if n != "null")
    if inst is None:
        return f"is empty; expected {want} (fill it in or remove the key)"
    if secret:
        return (
            f"expected {want}, got {_kind(inst)}; quote the value "
            "(it is not shown here: environment values may be secrets)"
        )
    message = f"expected {want}, got {_describe(inst)}"
    if "string" in names and not isinstance(inst, (dict, list)):
        text = raw if raw is not None else str(inst)
        message += f"; quote it: {_q(text)}"
    return message


def _kind(value: object) -> str:
    """What a value is, without showing it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return _describe(value) if isinstance(value, (dict, list)) or value is None else "a date"


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {_clip(str(value))}"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {_q(value)}"
    return f"a {type(value).__name__} ({value})"


def _show(value: object) -> str:
    if isinstance(value, str):
        return _q(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return _describe(value)
    return str(value)


# --- Quantities and durations (public: rktargs, config and status use them) --------


_MEMORY_UNITS: Final[Mapping[str, int]] = {
    "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
}  # fmt: skip
_MEMORY_FORMAT_ORDER: Final = ("Ti", "T", "Gi", "G", "Mi", "M", "Ki", "k")
_DURATION_UNITS: Final[Mapping[str, Decimal]] = {
    "ns": Decimal("1e-9"), "us": Decimal("1e-6"), "µs": Decimal("1e-6"), "ms": Decimal("1e-3"),
    "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600),
}  # fmt: skip
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)([A-Za-z]*)")


def parse_cpu(text: str) -> int:
    """Given a CPU quantity, return millicores: "500m" -> 500, "2" -> 2000, "1.5" -> 1500.

    Unit-less strings are cores (YAML numbers never reach here: the manifest rejects
    them as ambiguous). Raise ValueError with advice for anything else, for values
    finer than 1m, for zero, and for unit-less values of 100 cores or more (almost
    surely millicores missing their `m`).
    """
    m = re.fullmatch(r"(\d+)m", text)
    if m:
        millis = int(m[1])
    elif re.fullmatch(r"\d+(\.\d+)?", text):
        cores = Decimal(text)
        if cores >= MAX_PLAIN_CORES:
            raise ValueError(
                f'{_q(text)} would mean {text} cores; write "{text}m" for millicores, '
                f'or "{int(cores * 1000)}m" if you really mean {text} cores'
            )
        scaled = cores * 1000
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{_q(text)} is finer than 1m; round it to whole millicores")
        millis = int(scaled)
    elif re.fullmatch(r"\d+M", text):
        raise ValueError(f'{_q(text)}: millicores are a lowercase m; write "{text[:-1]}m"')
    else:
        raise ValueError(
            f'{_q(text)} is not a CPU quantity; write millicores such as "500m" '
            'or cores as a string such as "2"'
        )
    if millis <= 0:
        raise ValueError(f'{_q(text)} is zero; a CPU limit must be at least "1m"')
    return millis


def parse_memory(text: str) -> int:
    """Given a memory quantity, return bytes: "256Mi" -> 268435456, "1G" -> 10**9.

    Units: Ki, Mi, Gi, Ti (powers of 1024) and k, M, G, T (powers of 1000); a fraction
    is fine when the result is whole bytes ("1.5Gi"). Raise ValueError with advice for
    bare numbers ("256" -> write "256Mi"), unknown units and fractional bytes.
    """
    m = _QUANTITY.fullmatch(text)
    if not m:
        raise ValueError(f'{_q(text)} is not a memory quantity; write e.g. "256Mi" or "1Gi"')
    number, unit = m[1], m[2]
    if not unit:
        raise ValueError(f'{_q(text)} has no unit; write "{number}Mi"')
    if unit not in _MEMORY_UNITS:
        raise ValueError(
            f"{_q(text)} has an unknown unit {_q(unit)}; {_memory_unit_hint(number, unit)}"
        )
    total = Decimal(number) * _MEMORY_UNITS[unit]
    if total != total.to_integral_value():
        raise ValueError(f"{_q(text)} is not a whole number of bytes")
    return int(total)


def _memory_unit_hint(number: str, unit: str) -> str:
    if unit == "m":
        return f'"m" means milli (thousandths of a byte) in quantities; write "{number}Mi"'
    fixed = {"K": "k", "KB": "k", "KIB": "Ki", "MB": "M", "MIB": "Mi", "GB": "G", "GIB": "Gi",
             "TB": "T", "TIB": "Ti"}.get(unit.upper())  # fmt: skip
    if fixed is None and unit.upper() in {"KI", "MI", "GI", "TI"}:
        fixed = unit[0].upper() + "i"
    if fixed is None and unit.upper() in {"G", "T"}:
        fixed = unit.upper()
    known = "use Ki, Mi, Gi, Ti (binary) or k, M, G, T (decimal)"
    return f'write "{number}{fixed}"; {known}' if fixed else known


def format_memory(n: int) -> str:
    """Return `n` bytes in the largest unit that divides it exactly: 268435456 -> "256Mi".

    Falls back to the bare byte count (rkt's --memory accepts it) when no unit divides n.
    """
    for unit in _MEMORY_FORMAT_ORDER:
        size = _MEMORY_UNITS[unit]
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def parse_duration(text: str) -> float:
    """Given a Go-style duration ("10s", "5m", "1h30m", "250ms", "1.5h"), return seconds.

    Units: ns, us (µs), ms, s, m, h; parts may repeat ("1h30m"). Signs and bare
    numbers are refused. Raise ValueError with advice otherwise.
    """
    if re.fullmatch(r"\d+(\.\d+)?", text):
        raise ValueError(f'{_q(text)} has no unit; write "{text}s" (or m, h, ms)')
    if re.fullmatch(r"\d+(\.\d+)?d", text):
        return_hint = f'"{int(Decimal(text[:-1]) * 24)}h"' if text[:-1].isdigit() else '"24h"'
        raise ValueError(f"{_q(text)}: days are not a duration unit; write {return_hint}")
    total = Decimal(0)
    pos = 0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            break
        total += Decimal(m[1]) * _DURATION_UNITS[m[2]]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(
            f'{_q(text)} is not a duration; write e.g. "30s", "5m", "1h30m" or "250ms"'
        )
    return float(total)


# --- ${...} variables --------------------------------------------------------------------


_VAR_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_PORT_VAR = re.compile(r"(RKTCTL|NOMAD)_(HOST_PORT|PORT|IP|ADDR)_(.+)")
_NAMESPACES: Final = ("meta", "attr", "node", "driver", "env", "task")
VARIABLE_FORMS: Final = (
    "${RKTCTL_PORT_<label>} (also _HOST_PORT_, _IP_, _ADDR_; NOMAD_ for RKTCTL_), "
    "${meta.*}, ${attr.*}, ${node.*}, ${driver.*}, ${env.*}, ${task.name}"
)


def iter_variables(text: str) -> Iterator[tuple[int, str | None]]:
    """Yield (offset, name) for every `${name}` in `text`; name is None for an unclosed `${`.

    `$${` is an escape for a literal `${` and yields nothing.
    """
    pos = 0
    while True:
        start = text.find("$", pos)
        if start < 0:
            return
        if text.startswith("$${", start):
            pos = start + 3
            continue
        if not text.startswith("${", start):
            pos = start + 1
            continue
        end = text.find("}", start + 2)
        if end < 0:
            yield start, None
            return
        yield start, text[start + 2 : end]
        pos = end + 1


def _variable_problems(text: str, ports: Sequence[str]) -> list[str]:
    out: list[str] = []
    for _offset, name in iter_variables(text):
        if name is None:
            out.append("has an unclosed '${'; close it with '}' or write '$${' for a literal '${'")
            continue
        shown = "${" + _clip(name) + "}"
        if not _VAR_NAME.fullmatch(name):
            out.append(
                f"{shown} is not a valid variable; names use letters, digits, '_', '.' and '-'"
            )
            continue
        if name == "NOMAD_TASK_NAME":  # Nomad's spelling of ${task.name}
            continue
        port = _PORT_VAR.fullmatch(name)
        if port:
            label = port[3]
            if label not in ports:
                declared = ", ".join(ports) if ports else "none"
                out.append(
                    f"{shown} refers to port {_qk(label)}, which spec.resources.ports does not "
                    f"declare (declared: {declared})" + _did_you_mean(label, ports)
                )
            continue
        namespace, _, rest = name.partition(".")
        if namespace in _NAMESPACES and rest:
            if namespace == "env" and not ENV_NAME.fullmatch(rest):
                out.append(f"{shown}: {_qk(rest)} is not an environment variable name")
            elif namespace == "task" and rest != "name":
                out.append(f"{shown} is unknown; the only task variable is ${{task.name}}")
            continue
        hint = ""
        if ENV_NAME.fullmatch(name):
            hint = f"; for the controller's environment write ${{env.{_clip(name)}}}"
        out.append(
            f"{shown} is not a known variable{hint}; use {VARIABLE_FORMS}, "
            f"or write $${{{_clip(name)}}} for a literal"
        )
    return out


# --- Logical checks ------------------------------------------------------------------------


def _get(data: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _strings(data: object) -> Iterator[tuple[Path, str]]:
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


def _strs(value: object) -> list[tuple[int, str]]:
    """The string items of a list, with their indexes (other items are the schema's job)."""
    if not isinstance(value, list):
        return []
    return [(i, v) for i, v in enumerate(value) if isinstance(v, str)]


class _Logic:
    """Checks JSON Schema cannot express; every method tolerates ill-typed input."""

    def __init__(self, data: dict[str, object], index: _Index) -> None:
        self.data = data
        self.index = index
        self.problems: list[Problem] = []
        ports = _get(data, "spec", "resources", "ports")
        self.ports: list[str] = sorted(k for k in ports) if isinstance(ports, dict) else []
        net = _get(data, "spec", "config", "net")
        self.net: list[str] = [n for _, n in _strs(net)]

    def add(self, path: Path, message: str) -> None:
        self.problems.append(Problem(self.index.line(path), format_path(path), message))

    def run(self) -> list[Problem]:
        self.argv_words()
        self.name()
        self.insecure_and_trust()
        self.dns()
        self.net_()
        self.ports_and_port_map()
        self.volumes()
        self.quantities()
        self.durations()
        self.constraints()
        self.stage1()
        self.update_order()
        self.variables()
        for path, message in extraargs.manifest_problems(self.data):
            self.add(path, message)
        return self.problems

    def argv_words(self) -> None:
        """Values become rkt argv words: none may hold NUL or be read by rkt as a flag."""
        for path, text in _strings(self.data):
            if "\x00" in text:
                self.add(
                    path,
                    "contains a NUL character (\\0), which no rkt argument, environment value "
                    "or path can hold; remove it",
                )
        image = _get(self.data, "spec", "config", "image")
        if isinstance(image, str) and image.startswith("-"):
            self.add(
                ("spec", "config", "image"),
                "must not start with '-': rkt would read it as a flag, not as an image; write "
                "an image name, a sha512- hash, an ACI URL or docker://...",
            )
        base = ("spec", "config", "args")
        for i, arg in _strs(_get(self.data, *base)):
            if arg == "---":
                self.add(
                    (*base, i),
                    "a lone '---' cannot be passed: rkt ends the app's arguments there and "
                    "reads the words after it as another image and its flags; remove it",
                )

    def name(self) -> None:
        name = _get(self.data, "metadata", "name")
        if isinstance(name, str) and name and not _is_task_name(name):
            fixed = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
            hint = f"; try {_qk(fixed)}" if fixed and _is_task_name(fixed) else ""
            self.add(
                ("metadata", "name"),
                f"{_q(name)} is not a DNS-1123 label (lowercase letters, digits and '-', "
                f"starting and ending with a letter or digit, at most 63 characters){hint}",
            )

    def insecure_and_trust(self) -> None:
        base = ("spec", "config", "insecure_options")
        options = _strs(_get(self.data, *base))
        words = [w for _, w in options]
        if "none" in words and len(set(words)) > 1:
            i = next(i for i, w in options if w == "none")
            self.add((*base, i), '"none" turns every option off; list it alone or remove it')
        trust = _get(self.data, "spec", "config", "trust_prefix")
        if isinstance(trust, str):
            for i, word in options:
                if word in _INSECURE_WITHOUT_KEYSTORE:
                    self.add(
                        (*base, i),
                        f"{_q(word)} disables rkt's keystore, so `rkt trust` for trust_prefix "
                        "would fail; remove it or remove trust_prefix",
                    )

    def dns(self) -> None:
        base = ("spec", "config", "dns_servers")
        servers = _strs(_get(self.data, *base))
        special = [w for _, w in servers if w in _SPECIAL_DNS]
        for i, server in servers:
            if server in _SPECIAL_DNS:
                if len(servers) > 1:
                    self.add(
                        (*base, i),
                        f"{_q(server)} must be the only entry (dns_servers: [{_q(server)}])",
                    )
                continue
            try:
                ipaddress.ip_address(server)
            except ValueError:
                self.add(
                    (*base, i),
                    f"{_q(server)} is not an IP address; list IPv4/IPv6 addresses, "
                    'or use ["host"] or ["none"] alone',
                )
        search = _get(self.data, "spec", "config", "dns_search_domains")
        if special and isinstance(search, list) and search:
            self.add(
                ("spec", "config", "dns_search_domains"),
                f'cannot be combined with dns_servers ["{special[0]}"] (rkt refuses '
                "--dns-search with --dns=host|none); remove one of them",
            )

    def net_(self) -> None:
        base = ("spec", "config", "net")
        items = _strs(_get(self.data, *base))
        for i, item in items:
            name, _, args = item.partition(":")
            if name in _SPECIAL_NETS:
                if args:
                    self.add((*base, i), f"network {_q(name)} takes no arguments; write {_q(name)}")
                elif len(items) > 1:
                    self.add((*base, i), f"{_q(name)} must be the only network (net: [{_q(name)}])")

    def ports_and_port_map(self) -> None:
        ports = _get(self.data, "spec", "resources", "ports")
        port_map = _get(self.data, "spec", "config", "port_map")
        pm_path: Path = ("spec", "config", "port_map")
        special = self.net[0] if len(self.net) == 1 and self.net[0] in _SPECIAL_NETS else None
        if isinstance(ports, dict):
            seen_static: dict[int, str] = {}
            for label, request in ports.items():
                static = _get(request, "static")
                if isinstance(static, int) and not isinstance(static, bool):
                    if static in seen_static:
                        self.add(
                            ("spec", "resources", "ports", label, "static"),
                            f"host port {static} is already used by port {seen_static[static]!r}",
                        )
                    seen_static.setdefault(static, label)
            if special == "none" and ports:
                self.add(
                    ("spec", "resources", "ports"),
                    'a task with net ["none"] has no network to publish ports on; remove the ports',
                )
            elif special is None and (port_map is None or isinstance(port_map, dict)):
                for label in ports:
                    if not isinstance(port_map, dict) or label not in port_map:
                        self.add(
                            ("spec", "resources", "ports", label),
                            f"port {_qk(label)} has no entry in spec.config.port_map; map it to "
                            "the image's port name or container port "
                            f'(e.g. {_clip(label)}: "8080-tcp"), or use net: ["host"]',
                        )
        if not isinstance(port_map, dict):
            return
        if special is not None and port_map:
            self.add(
                pm_path,
                f'rkt cannot publish ports with net ["{special}"]; remove port_map '
                "(with host networking the app binds the host ports itself)",
            )
            return
        targets: dict[str, str] = {}
        for label, target in port_map.items():
            path = (*pm_path, label)
            if label not in self.ports:
                self.add(
                    path,
                    f"{_qk(label)} is not a port declared in spec.resources.ports; declare it "
                    "there or remove it" + _did_you_mean(label, self.ports),
                )
            if isinstance(target, str):
                if target.isdigit():
                    if not 1 <= int(target) <= 65535:
                        self.add(path, f"{_q(target)} is not a port number (1-65535)")
                elif "/" in target and AC_NAME.fullmatch(target.replace("/", "-")):
                    self.add(
                        path,
                        f'{_q(target)}: rkt port names use "-"; write "{target.replace("/", "-")}"',
                    )
                elif not AC_NAME.fullmatch(target):
                    self.add(
                        path,
                        f"{_q(target)} is not a port name; use the image's port name such as "
                        '"6379-tcp" or a container port number',
                    )
            if isinstance(target, (str, int, float)) and not isinstance(target, bool):
                normal = _port_target(target) if _finite(target) else str(target)
                if normal in targets:
                    self.add(
                        path,
                        f"container port {_show(target)} is already mapped by {targets[normal]!r}",
                    )
                targets.setdefault(normal, label)

    def volumes(self) -> None:
        base = ("spec", "config", "volumes")
        targets: dict[str, int] = {}
        for i, entry in _strs(_get(self.data, *base)):
            path = (*base, i)
            parts = entry.split(":")
            if len(parts) == 1:
                self.add(
                    path, f'{_q(entry)} has no ":"; write "host:container" such as "data:/data"'
                )
                continue
            if len(parts) > 3:
                self.add(
                    path,
                    f'{_q(entry)} has too many ":"; write "host:container" or '
                    '"host:container:readOnly" (paths cannot contain ":")',
                )
                continue
            host, container = parts[0], parts[1]
            if len(parts) == 3 and parts[2] != "readOnly":
                why = " (the spelling is case-sensitive)" if parts[2].lower() == "readonly" else ""
                self.add(
                    path,
                    f'the third part {_q(parts[2])} must be exactly "readOnly"{why}; '
                    "Nomad silently mounted such volumes read-write",
                )
            if not host:
                self.add(path, f"{_q(entry)} has an empty host path")
            elif host.startswith("~"):
                self.add(path, f'{_q(host)}: "~" is not expanded; write an absolute path')
            elif not host.startswith("/") and ".." in host.split("/"):
                self.add(
                    path,
                    f"relative host path {_q(host)} must stay inside the task's data directory "
                    "(no '..'); use an absolute path instead",
                )
            elif "," in host:
                self.add(
                    path,
                    f"host path {_q(host)} contains ',': rkt splits --volume on commas, so "
                    "the rest would be read as volume options; rename the directory",
                )
            if not container.startswith("/"):
                self.add(path, f'container path {_q(container)} must be absolute (start with "/")')
            elif container in targets:
                first = targets[container]
                self.add(
                    path, f"container path {_q(container)} is already mounted by volumes[{first}]"
                )
            else:
                targets[container] = i

    def quantities(self) -> None:
        base = ("spec", "resources")
        cpu = _get(self.data, *base, "cpu")
        if isinstance(cpu, (int, float)) and not isinstance(cpu, bool) and _finite(cpu):
            millis = Decimal(str(cpu)) * 1000
            self.add(
                (*base, "cpu"),
                f"{cpu} is a bare number, which is ambiguous (cores? millicores? MHz?); "
                f'write "{millis.normalize():f}m" or quote cores: "{cpu}"',
            )
        elif isinstance(cpu, str):
            try:
                parse_cpu(cpu)
            except ValueError as exc:
                self.add((*base, "cpu"), str(exc))
        memory = _get(self.data, *base, "memory")
        if isinstance(memory, int) and not isinstance(memory, bool):
            self.add((*base, "memory"), f'{memory} has no unit; write "{_memory_guess(memory)}"')
        elif isinstance(memory, str):
            try:
                size = parse_memory(memory)
            except ValueError as exc:
                self.add((*base, "memory"), str(exc))
            else:
                if size < MIN_MEMORY_BYTES:
                    self.add(
                        (*base, "memory"),
                        f'{_q(memory)} is below rkt\'s minimum of 4Ki; raise it (e.g. "64Mi")',
                    )

    def durations(self) -> None:
        restart: Path = ("spec", "restart")
        seconds: dict[str, float] = {}
        for path in (
            (*restart, "initial_delay"),
            (*restart, "max_delay"),
            (*restart, "stable_after"),
            ("spec", "kill_timeout"),
        ):
            value = _get(self.data, *(str(p) for p in path))
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.add(path, f'{value} has no unit; write "{value}s"')
            elif isinstance(value, str):
                try:
                    seconds[str(path[-1])] = parse_duration(value)
                except ValueError as exc:
                    self.add(path, str(exc))
        for key in ("initial_delay", "max_delay", "stable_after"):
            if seconds.get(key) == 0:
                self.add(
                    (*restart, key), "must be longer than 0s (a zero delay restarts in a hot loop)"
                )
        initial, maximum = seconds.get("initial_delay"), seconds.get("max_delay")
        if initial is None and maximum is not None:
            initial = Restart().initial_delay_s
        if maximum is None and initial is not None:
            maximum = Restart().max_delay_s
        if initial is not None and maximum is not None and initial > maximum:
            self.add(
                (*restart, "initial_delay"),
                f"initial_delay ({initial:g}s) is longer than max_delay ({maximum:g}s); "
                "make max_delay at least as long",
            )

    def constraints(self) -> None:
        base = ("spec", "constraints")
        items = _get(self.data, *base)
        if not isinstance(items, list):
            return
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            operator = item.get("operator", "=")
            if not isinstance(operator, str) or operator not in CONSTRAINT_OPERATORS:
                continue
            value = item.get("value")
            if operator in _UNARY_OPERATORS:
                if "value" in item:
                    self.add(
                        (*base, i, "value"), f"operator {_qk(operator)} takes no value; remove it"
                    )
            elif "value" not in item:
                self.add((*base, i, "value"), f"operator {_qk(operator)} needs a value; add one")
            elif operator == "regexp" and isinstance(value, str):
                try:
                    re.compile(value)
                except re.error as exc:
                    self.add((*base, i, "value"), f"{_q(value)} is not a valid regexp: {exc}")
            elif operator in ("version", "semver", "set_contains") and value == "":
                self.add((*base, i, "value"), f"operator {_qk(operator)} needs a non-empty value")

    def stage1(self) -> None:
        stage1 = _get(self.data, "spec", "stage1")
        if not isinstance(stage1, str) or not stage1:
            return
        if stage1.startswith(("./", "../", "~")) or (
            not stage1.startswith("/") and "://" not in stage1 and stage1.endswith(".aci")
        ):
            self.add(
                ("spec", "stage1"),
                f"{_q(stage1)} looks like a relative path; write an absolute path, a URL "
                "or an image name such as coreos.com/rkt/stage1-fly:1.30.0",
            )

    def update_order(self) -> None:
        order = _get(self.data, "spec", "update", "order")
        ports = _get(self.data, "spec", "resources", "ports")
        if order == UpdateOrder.START_FIRST and isinstance(ports, dict):
            static = [k for k, v in ports.items() if isinstance(_get(v, "static"), int)]
            if static:
                self.add(
                    ("spec", "update", "order"),
                    f"start-first cannot work with static ports ({', '.join(static)}): the new "
                    "pod could not bind them while the old one runs; use stop-first",
                )

    def variables(self) -> None:
        targets: list[tuple[Path, object]] = [  # (path, text)
            (("spec", "config", "command"), _get(self.data, "spec", "config", "command"))
        ]
        for key in ("args", "volumes"):
            for i, text in _strs(_get(self.data, "spec", "config", key)):
                targets.append((("spec", "config", key, i), text))
        env = _get(self.data, "spec", "env")
        if isinstance(env, dict):
            targets.extend((("spec", "env", k), v) for k, v in env.items())
        constraints = _get(self.data, "spec", "constraints")
        if isinstance(constraints, list):
            for i, item in enumerate(constraints):
                if isinstance(item, dict):
                    for key in ("attribute", "value"):
                        targets.append((("spec", "constraints", i, key), item.get(key)))
        for path, value in targets:
            if isinstance(value, str) and "$" in value:
                for message in _variable_problems(value, self.ports):
                    self.add(path, message)


def _finite(number: str | float) -> bool:
    return not isinstance(number, float) or math.isfinite(number)


def _memory_guess(n: int) -> str:
    if n >= 1 << 16 and format_memory(n) != str(n):
        return format_memory(n)
    return f"{n}Mi"


def _is_task_name(name: str) -> bool:
    return len(name) <= 63 and DNS_LABEL.fullmatch(name) is not None


# --- Conversion ---------------------------------------------------------------------------


def _to_spec(data: dict[str, Any], source: str) -> TaskSpec:
    """Build the TaskSpec of a manifest that passed every check (so no type tests here)."""
    meta = data["metadata"]
    spec = data["spec"]
    cfg = spec["config"]
    res = spec.get("resources", {})
    rst = spec.get("restart", {})
    ports = res.get("ports") or {}
    defaults = Restart()
    built = TaskSpec(
        name=TaskName(meta["name"]),
        image=cfg["image"],
        spec_hash=SpecHash(""),
        source=source,
        labels=_sorted_map(meta.get("labels", {})),
        command=cfg.get("command"),
        args=tuple(cfg.get("args", ())),
        trust_prefix=cfg.get("trust_prefix"),
        insecure_options=tuple(cfg.get("insecure_options", ())),
        dns_servers=tuple(cfg.get("dns_servers", ())),
        dns_search_domains=tuple(cfg.get("dns_search_domains", ())),
        net=tuple(cfg.get("net", ())),
        port_map=_sorted_map({k: _port_target(v) for k, v in cfg.get("port_map", {}).items()}),
        debug=cfg.get("debug", False),
        no_overlay=cfg.get("no_overlay", False),
        volumes=tuple(_volume(v) for v in cfg.get("volumes", ())),
        group=cfg.get("group"),
        user=spec.get("user"),
        env=_sorted_map(spec.get("env", {})),
        resources=Resources(
            cpu_millis=parse_cpu(res["cpu"]) if "cpu" in res else None,
            memory_bytes=parse_memory(res["memory"]) if "memory" in res else None,
            ports=tuple(
                PortRequest(label=label, static=_static(ports[label])) for label in sorted(ports)
            ),
        ),
        restart=Restart(
            policy=RestartPolicy(rst.get("policy", defaults.policy)),
            initial_delay_s=_seconds(rst, "initial_delay", defaults.initial_delay_s),
            max_delay_s=_seconds(rst, "max_delay", defaults.max_delay_s),
            stable_after_s=_seconds(rst, "stable_after", defaults.stable_after_s),
        ),
        kill_timeout_s=_seconds(spec, "kill_timeout", _DEFAULT_KILL_TIMEOUT_S),
        constraints=tuple(
            Constraint(
                attribute=c["attribute"], operator=c.get("operator", "="), value=c.get("value", "")
            )
            for c in spec.get("constraints", ())
        ),
        stage1=spec.get("stage1"),
        update_order=UpdateOrder(spec.get("update", {}).get("order", UpdateOrder.STOP_FIRST)),
        suspend=spec.get("suspend", False),
        **extraargs.spec_fields(spec),
    )
    return dataclasses.replace(built, spec_hash=compute_spec_hash(built))


_MANIFEST_KEYS: Final = frozenset({"apiVersion", "kind", "metadata", "spec"})
_DEFAULT_KILL_TIMEOUT_S: Final = 30.0  # TaskSpec.kill_timeout_s's default


def _sorted_map(items: Mapping[str, str]) -> Mapping[str, str]:
    return frozen_map(dict(sorted(items.items())))


def _port_target(target: str | float) -> str:
    """A port name stays as written; a number (JSON Schema lets 80.0 be one) becomes "80"."""
    return target if isinstance(target, str) else str(int(target))


def _volume(entry: str) -> Volume:
    parts = entry.split(":")
    return Volume(host=parts[0], container=parts[1], read_only=len(parts) == 3)


def _static(request: object) -> int | None:
    static = _get(request, "static")
    return int(static) if isinstance(static, (int, float)) else None


def _seconds(section: Mapping[str, Any], key: str, default: Any) -> float:
    return parse_duration(section[key]) if key in section else float(default)


# --- Public API ---------------------------------------------------------------------------


def parse_manifest(data: bytes | str, *, source: str) -> TaskSpec:
    """Given a manifest's raw bytes (or text) and its path for messages, return its TaskSpec.

    The spec carries every default and its `spec_hash`; `source` is kept for messages
    only (it does not affect the hash). Raise ManifestInvalidError (a ManifestError)
    listing every problem, sorted by line, each formatted
    `<source>:<line>: <json.path>: <what is wrong; what to do>`.
    """
    try:
        text = _decode(data)
        value, index, problems = _load(text)
    except _FatalError as fatal:
        raise ManifestInvalidError(source, [fatal.problem]) from None
    if not isinstance(value, dict):
        raise ManifestInvalidError(
            source,
            [
                Problem(
                    index.line(()),
                    "",
                    # A file that is not a mapping is likely no manifest at all (a symlink
                    # to /etc/shadow reads as one long string): say what, never quote it.
                    f"the top level must be a mapping with apiVersion, kind, metadata and spec, "
                    f"not {_kind(value)}; is this a task manifest?",
                )
            ],
        )
    if not _MANIFEST_KEYS & set(value):
        # Not a manifest at all (`key: value` lines, or /etc/shadow, whose lines end in
        # ":::" and so read as keys): one problem, quoting nothing of the file.
        raise ManifestInvalidError(
            source,
            [
                Problem(
                    index.line(()),
                    "",
                    "none of apiVersion, kind, metadata and spec is here; is this a task "
                    "manifest? (see README.md, 'Task manifests')",
                )
            ],
        )
    logic = _Logic(value, index).run()
    claimed = {p.path for p in logic}
    for err in _checker().errors(value):
        problem = _schema_problem(err, index)
        # One message per path: a logical check says it better than the schema, and the
        # first schema failure (type, then enum/const, then length, then pattern) says
        # enough - "" fails both minLength and pattern, for one mistake.
        if problem.path not in claimed:
            claimed.add(problem.path)
            problems.append(problem)
    problems.extend(logic)
    if problems:
        raise ManifestInvalidError(source, problems)
    return _to_spec(value, source)


def compute_spec_hash(spec: TaskSpec) -> SpecHash:
    """Return `sha256:<16 hex>` over the canonical JSON of the spec.

    Every field counts except `source` (the file name), `labels` and `spec_hash`
    itself: any edit of the task replaces its pod, while renaming or moving the file,
    relabelling, comments, key order and YAML style never do. Values are the
    validated, defaulted ones ("10000ms" and "10s" hash alike); mappings are
    key-sorted; list order is kept because it is meaningful (args, volumes).
    """
    doc = {
        "apiVersion": API_VERSION,
        "name": spec.name,
        "image": spec.image,
        "command": spec.command,
        "args": list(spec.args),
        "trust_prefix": spec.trust_prefix,
        "insecure_options": list(spec.insecure_options),
        "dns_servers": list(spec.dns_servers),
        "dns_search_domains": list(spec.dns_search_domains),
        "net": list(spec.net),
        "port_map": dict(spec.port_map),
        "debug": spec.debug,
        "no_overlay": spec.no_overlay,
        "volumes": [[v.host, v.container, v.read_only] for v in spec.volumes],
        "group": spec.group,
        "user": spec.user,
        "env": dict(spec.env),
        "cpu_millis": spec.resources.cpu_millis,
        "memory_bytes": spec.resources.memory_bytes,
        "ports": sorted([p.label, p.static] for p in spec.resources.ports),
        "restart": [
            str(spec.restart.policy),
            spec.restart.initial_delay_s,
            spec.restart.max_delay_s,
            spec.restart.stable_after_s,
        ],
        "kill_timeout_s": spec.kill_timeout_s,
        "constraints": [[c.attribute, c.operator, c.value] for c in spec.constraints],
        "stage1": spec.stage1,
        "update_order": str(spec.update_order),
        **extraargs.hash_fields(spec.extra_prepare_args, spec.extra_run_args),
    }
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return SpecHash(SPEC_HASH_PREFIX + digest[:SPEC_HASH_HEX_CHARS])


def content_hash(data: bytes) -> str:
    """Return `sha256:<64 hex>` of a file's raw bytes (cache keys, log-once dedupe)."""
    return SPEC_HASH_PREFIX + hashlib.sha256(data).hexdigest()


_NAME_LINE = re.compile(r"""[ \t]+name[ \t]*:[ \t]*["']?([^"'#\s]+)["']?[ \t]*(?:#.*)?""")
_FLOW_NAME = re.compile(r"""^metadata[ \t]*:[ \t]*\{[^}]*?\bname[ \t]*:[ \t]*["']?([^"',}\s]+)""")


def guess_name(data: bytes) -> TaskName | None:
    """Return the task name a possibly broken manifest declares, or None.

    Best effort, so that a broken edit of `web.yaml` still protects task "web"'s
    running pod: a YAML parse when that works, else a line scan for `name:` directly
    under a top-level `metadata:`. Only a valid task name (DNS-1123 label) is returned.
    """
    head = data[:MAX_BYTES]
    try:
        value, _index, _problems = _load(_decode(head))
    except _FatalError:
        value = None
    name = _get(value, "metadata", "name")
    if isinstance(name, str):
        return TaskName(name) if _is_task_name(name) else None
    text = head.decode("utf-8", errors="replace")
    in_metadata = False
    child_indent: int | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" \t"))
        if indent == 0:
            flow = _FLOW_NAME.match(line)
            if flow:
                return TaskName(flow[1]) if _is_task_name(flow[1]) else None
            in_metadata = re.match(r"metadata[ \t]*:[ \t]*(#.*)?$", line) is not None
            child_indent = None
            continue
        if not in_metadata:
            continue
        child_indent = indent if child_indent is None else child_indent
        found = _NAME_LINE.fullmatch(line)
        if found and indent == child_indent:
            return TaskName(found[1]) if _is_task_name(found[1]) else None
    return None


def duplicate_names(
    named: Iterable[tuple[str, TaskName | None]],
) -> dict[TaskName, tuple[str, ...]]:
    """Given (source, task name or None) pairs, return names declared by 2+ sources."""
    sources: dict[TaskName, list[str]] = {}
    for source, name in named:
        if name is not None:
            sources.setdefault(name, []).append(source)
    return {n: tuple(sorted(s)) for n, s in sorted(sources.items()) if len(s) > 1}


def build_desired(
    files: Sequence[tuple[str, bytes]],
    *,
    ignored: Sequence[str] = (),
    dir_missing: bool = False,
    revision: str | None = None,
    parse: Callable[[bytes, str], TaskSpec] | None = None,
) -> DesiredState:
    """Given (source path, raw bytes) of every manifest, return the DesiredState.

    Each file becomes a TaskSpec or, when broken, an Invalid named by `guess_name`
    (`unnamed_invalid` when no name can be read). A name declared by two or more files
    (valid or not) goes to `duplicates` and none of those files is in `tasks`.
    `revision` defaults to a hash over the sorted (source, content hash) pairs.
    `parse(data, source)` replaces `parse_manifest` (the shell passes a caching one);
    it must raise ManifestError for a broken file.
    """
    parsed: list[tuple[str, TaskSpec | Invalid]] = []
    unnamed: list[Invalid] = []
    for source, data in files:
        try:
            spec = parse_manifest(data, source=source) if parse is None else parse(data, source)
            parsed.append((source, spec))
        except ManifestError as exc:
            name = guess_name(data)
            broken = Invalid(
                name=name or TaskName(""),
                source=source,
                messages=exc.messages,
                content_hash=content_hash(data),
            )
            if name is None:
                unnamed.append(broken)
            else:
                parsed.append((source, broken))
    duplicates = duplicate_names((source, item.name) for source, item in parsed)
    tasks = {
        item.name: item for _source, item in sorted(parsed, key=lambda p: p[0])
        if item.name not in duplicates
    }  # fmt: skip
    if revision is None:
        pairs = sorted((source, content_hash(data)) for source, data in files)
        digest = hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode()).hexdigest()
        revision = SPEC_HASH_PREFIX + digest[:SPEC_HASH_HEX_CHARS]
    return DesiredState(
        tasks=tasks,
        duplicates=duplicates,
        unnamed_invalid=tuple(sorted(unnamed, key=lambda i: i.source)),
        ignored=tuple(ignored),
        dir_missing=dir_missing,
        revision=revision,
    )
