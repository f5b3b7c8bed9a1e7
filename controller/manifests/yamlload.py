"""Stage 1 of reading a manifest: bytes -> plain values and a line index, within bounds.

PURE. A bounded YAML event loader: size cap, UTF-8, exactly one document, safe scalar
tags only, duplicate keys, depth/alias/node caps against YAML bombs, and the line of
every key and list item (so later stages can say where a problem is). Anything that
stops reading raises `FatalError`; recoverable problems (duplicate or non-string keys)
come back alongside the value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

from controller.manifests.problems import (
    EXCERPT_CHARS,
    FatalError,
    Path,
    Problem,
    clip,
    describe,
    format_path,
    quote,
    quote_key,
)
from controller.manifests.yamlscalars import (
    COLLECTION_TAGS,
    IMPLICIT_FIRST,
    MERGE_TAG,
    STR_TAG,
    construct,
    event_line,
    scalar_tag,
    tag_message,
)

try:  # libyaml is ~20x faster; the pure-Python parser yields the same events.
    from yaml import CSafeLoader as _EventSource
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _EventSource  # type: ignore[assignment]

MAX_BYTES: Final = 1024 * 1024
"""Files larger than this are refused before parsing."""
MAX_DEPTH: Final = 32
"""Deepest nesting of mappings/lists; a manifest needs 5."""
MAX_ALIASES: Final = 100
"""YAML aliases (`*name`) allowed in one file."""
MAX_NODES: Final = 20_000
"""Values in a file after alias expansion (a billion-laughs file expands to 10^9)."""


_MISSING: Any = object()


@dataclass(slots=True)
class LineIndex:
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


_WORD_KEYS: dict[Path, frozenset[str]] = {("spec", "reload"): frozenset({"on"})}
"""Keys the manifest format names with a YAML 1.1 boolean word: there the plain word is
the key itself (`reload: {on: [...]}` as the issue and Nomad users write it), where
anywhere else it is refused as the boolean it reads as."""


def decode(data: bytes | str) -> str:
    if isinstance(data, str):
        # A character is at most 4 bytes: only long texts need encoding to be measured.
        if len(data) * 4 > MAX_BYTES:
            size = len(data.encode("utf-8", "surrogatepass"))
            if size > MAX_BYTES:
                raise FatalError(Problem(None, "", _too_big(size)))
        return data.removeprefix("\ufeff")
    if len(data) > MAX_BYTES:
        raise FatalError(Problem(None, "", _too_big(len(data))))
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise FatalError(
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


def read_yaml(text: str) -> object:
    """The plain values of a manifest's YAML, read as rktctl reads them (`reload: {on:
    ...}` keeps its key), for code that rewrites a manifest (the demo). Raise FatalError
    where reading stops; the recoverable problems are left to validation."""
    return load(text)[0]


def load(text: str) -> tuple[object, LineIndex, list[Problem]]:
    """Compose the single YAML document of `text` into plain values, with an index.

    Raise FatalError for anything that stops reading (syntax, caps, multiple documents);
    return recoverable problems (duplicate or non-string keys) alongside the value.
    The composer is iterative: deep nesting is refused at MAX_DEPTH before libyaml
    has to scan further (its cost grows quadratically with flow nesting). Plain
    string keys and values take an inlined fast path: this loop is most of the cost
    of validating a manifest.
    """
    index = LineIndex()
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
                    raise FatalError(
                        Problem(
                            event_line(event),
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
                            or (event.value and event.value[0] not in IMPLICIT_FIRST)
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
                    lines[path] = event_line(event)
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
                            or (event.value and event.value[0] not in IMPLICIT_FIRST)
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
                        raise FatalError(
                            Problem(
                                event_line(event),
                                format_path(path),
                                f"more than {MAX_ALIASES} YAML aliases; write the values out",
                            )
                        )
                else:
                    parent = _open(event, kind, path, len(stack))
                    stack.append(parent)
                    continue
                if total > MAX_NODES:
                    raise FatalError(_bomb(event_line(event), path))
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
        raise FatalError(Problem(at, "", f"invalid YAML: {what}; fix the syntax")) from None
    except yaml.YAMLError as exc:  # ReaderError: control characters and the like
        position = getattr(exc, "position", None)
        at = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        reason = (getattr(exc, "reason", None) or str(exc).splitlines()[0])[: 4 * EXCERPT_CHARS]
        raise FatalError(Problem(at, "", f"invalid YAML: {reason}; remove it")) from None
    finally:
        loader.dispose()
    if root is _MISSING or root is None:
        raise FatalError(
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
        raise FatalError(
            Problem(
                event_line(event),
                format_path(path),
                f"alias *{clip(anchor)} refers to no complete anchor &{clip(anchor)} "
                "(undefined, or it refers to a node that contains it)",
            )
        )
    return anchors[anchor]


def _open(event: yaml.Event, kind: int, path: Path, depth: int) -> _Frame:
    tag = getattr(event, "tag", None)
    if tag not in COLLECTION_TAGS:
        raise FatalError(Problem(event_line(event), format_path(path), tag_message(str(tag))))
    if depth >= MAX_DEPTH:
        raise FatalError(
            Problem(
                event_line(event),
                format_path(path),
                f"nested deeper than {MAX_DEPTH} levels; a manifest needs about 5",
            )
        )
    anchor = getattr(event, "anchor", None)
    if kind == _MAPPING:
        return _Frame(path=path, anchor=anchor, mapping={})
    return _Frame(path=path, anchor=anchor, items=[])


def _bomb(line: int, path: Path) -> Problem:
    return Problem(
        line,
        format_path(path),
        f"more than {MAX_NODES} values after expanding YAML aliases (a YAML bomb?); "
        "write the manifest without aliases",
    )


def _read_key(
    event: yaml.Event, parent: _Frame, index: LineIndex, problems: list[Problem]
) -> tuple[str, Path]:
    if not isinstance(event, yaml.ScalarEvent):
        raise FatalError(
            Problem(
                event_line(event),
                format_path(parent.path),
                "a mapping key must be a plain string, not a list, map or alias",
            )
        )
    tag = scalar_tag(event)
    key = event.value
    if tag != STR_TAG:
        if tag == MERGE_TAG:
            raise FatalError(
                Problem(
                    event_line(event),
                    format_path(parent.path),
                    "YAML merge keys ('<<') are not supported; write the keys out",
                )
            )
        value = construct(event, tag, parent.path)
        if key in _WORD_KEYS.get(parent.path, ()):
            value = key
        if not isinstance(value, str):
            problems.append(
                Problem(
                    event_line(event),
                    format_path((*parent.path, key)),
                    f"key {clip(key)} is read as {describe(value)}; quote it: {quote(key)}",
                )
            )
        else:
            key = value
    path = (*parent.path, key)
    if (parent.mapping is not None and key in parent.mapping) or path in index.lines:
        _duplicate(event, key, path, index, problems)
    else:
        index.lines[path] = event_line(event)
    return key, path


def _duplicate(
    event: yaml.Event, key: str, path: Path, index: LineIndex, problems: list[Problem]
) -> None:
    line = event_line(event)
    first = index.lines.get(path)
    problems.append(
        Problem(
            line,
            format_path(path),
            f"duplicate key {quote_key(key)} (first at line {first}, again at line {line}); "
            "keep only one",
        )
    )


def _read_scalar(event: yaml.ScalarEvent, path: Path, index: LineIndex) -> object:
    tag = scalar_tag(event)
    if tag == STR_TAG:
        return event.value
    value = construct(event, tag, path)
    if not isinstance(value, str):
        index.raw[path] = event.value
    return value
