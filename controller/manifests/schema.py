"""Stage 2: check the loaded document against `schemas/task.schema.json`, worded for people.

PURE. The checking is jsonschema's Draft 2020-12 validator, built once per process;
this module only turns each of its errors into rktctl's `Problem`: the line of the
key, the JSON path, did-you-mean for unknown keys and enum words, the schema's
`x-hint` as the fix. Its one read is the packaged schema, once.

Two validators, one schema. jsonschema-rs (Rust) answers "is it valid?" in about
1.5 us per small manifest; jsonschema (Python, ~150 us) runs only for a document that
fails, because its errors carry what the wording needs (the failing keyword, the
schema and instance at each path). At 10,000 manifests the cold start spent ~3 s in
jsonschema alone (bench/bench_pass.py). Both are Draft 2020-12 with ECMA regexes (Rust
regex's `$` is the end of the string, as `_ecma_pattern` makes it for jsonschema);
tests/unit/test_schema.py checks they agree on a corpus of valid and broken documents.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import jsonschema_rs

from controller.manifests.problems import (
    Path,
    Problem,
    clip,
    describe,
    did_you_mean,
    format_path,
    kind_of,
    quote,
    quote_key,
    show,
)
from controller.manifests.yamlload import LineIndex
from controller.resources import load_schema

if TYPE_CHECKING:  # imported when a document fails: a daemon whose manifests are all
    # valid never loads jsonschema and what it pulls in (~8 MB of resident memory)
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

SCHEMA_NAME: Final = "task.schema.json"


def _ecma_pattern(
    validator: Validator, pattern: str, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """`pattern` as JSON Schema means it (ECMA-262): `$` is the end of the string.

    Python's `re.search` lets `$` match before a trailing newline, so jsonschema's own
    keyword would pass "web\\n" where editors and every ECMA engine refuse it. Every
    pattern of the task schema is anchored `^...$` (a test checks), so a full match is
    the ECMA meaning.
    """
    from jsonschema import ValidationError

    if isinstance(instance, str) and _compiled(pattern).fullmatch(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@cache
def validator() -> Validator:
    """The task schema's validator, built once per process."""
    import jsonschema

    schema = load_schema(SCHEMA_NAME)
    cls = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        jsonschema.Draft202012Validator, {"pattern": _ecma_pattern}
    )
    built: Validator = cls(schema)
    return built


@cache
def fast_validator() -> jsonschema_rs.Validator:
    """The same schema's Rust validator: the yes/no before the wording."""
    return jsonschema_rs.validator_for(load_schema(SCHEMA_NAME))


def fast_is_valid(document: object) -> bool:
    """True if jsonschema-rs passes `document`; False if it fails or cannot take it.

    A value it cannot convert (YAML gives only JSON types, but an integer beyond 64
    bits, say) counts as "not known valid", so the full validator decides.
    """
    try:
        return fast_validator().is_valid(document)
    except (ValueError, TypeError, OverflowError):
        return False


# Where a path gets problems from more than one keyword, the first of this order is the
# one reported (one mistake, one message: "" fails both minLength and pattern). A key's
# own path hears first from its parent (required, propertyNames, additionalProperties),
# then from its value's subschema, most basic keyword first.
_RANK: Final = {
    kw: i
    for i, kw in enumerate(
        (
            "required", "propertyNames", "additionalProperties", "type", "const", "enum",
            "minLength", "maxLength", "pattern", "minimum", "maximum", "uniqueItems",
        )
    )
}  # fmt: skip


def schema_problems(document: object, index: LineIndex) -> list[Problem]:
    """Return every schema problem of `document`, one per JSON path.

    For each path the problem of the most basic keyword wins (see _RANK).
    """
    if fast_is_valid(document):
        return []
    ranked: list[tuple[str, int, int, Problem]] = []
    for error in validator().iter_errors(document):  # type: ignore[arg-type]
        for rank, problem in _problems(error, index):
            ranked.append((problem.path, rank, len(ranked), problem))
    ranked.sort(key=lambda r: r[:3])
    out: list[Problem] = []
    seen: set[str] = set()
    for path, _rank, _order, problem in ranked:
        if path not in seen:
            seen.add(path)
            out.append(problem)
    return out


def _problems(error: ValidationError, index: LineIndex) -> Iterator[tuple[int, Problem]]:
    """Word one jsonschema error as rktctl's problems, each with its keyword's rank."""
    keyword = "propertyNames" if "propertyNames" in error.schema_path else str(error.validator)
    rank = _RANK.get(keyword, len(_RANK))
    path: Path = tuple(error.absolute_path)
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    instance = error.instance

    def at(where: Path, message: str, line_of: Path | None = None) -> tuple[int, Problem]:
        line = index.line(where if line_of is None else line_of)
        return rank, Problem(line, format_path(where), message)

    if keyword == "required":
        # One error per missing key, which its message names only in prose.
        assert isinstance(instance, dict)
        for key in schema["required"]:
            if key not in instance and error.message.startswith(repr(key)):
                yield at((*path, key), "required key is missing; add it", line_of=path)
    elif keyword == "additionalProperties":
        # One error for all unknown keys: rktctl reports each at its own line.
        assert isinstance(instance, dict)
        known = schema.get("properties", {})
        for key in instance:
            if key not in known:
                yield at((*path, key), _unknown_key(key, schema, path))
    elif keyword == "propertyNames":
        # jsonschema checks the key as an instance at the mapping's own path.
        key = str(instance)
        yield at((*path, key), f"key {quote_key(key)} is not valid; {schema.get('x-hint')}")
    elif keyword == "uniqueItems":
        assert isinstance(instance, list)
        repeat = _first_repeat(instance)
        yield at((*path, repeat), f"{show(instance[repeat])} is listed twice")
    else:
        yield rank, _value_problem(keyword, schema, instance, path, index)


def _first_repeat(items: Sequence[object]) -> int:
    """The index of the first item equal (as JSON) to an earlier one."""
    for i, item in enumerate(items):
        if any(_json_equal(item, earlier) for earlier in items[:i]):
            return i
    return 0


def _json_equal(a: object, b: object) -> bool:
    """JSON equality: true is not 1, and 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_num(a) and _is_num(b):
        return a == b
    return type(a) is type(b) and a == b


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _value_problem(
    kw: str, schema: Mapping[str, Any], inst: object, path: Path, index: LineIndex
) -> Problem:
    hint = schema.get("x-hint")
    line = index.line(path)
    where = format_path(path)
    if kw == "type":
        # Environment values may be secrets: a wrong type is named, never its value.
        secret = len(path) == 3 and path[:2] == ("spec", "env")
        raw = index.raw.get(path)
        return Problem(line, where, _type_message(schema["type"], inst, raw, secret=secret))
    if kw == "const":
        return Problem(line, where, f"must be {show(schema['const'])}, not {show(inst)}")
    if kw == "enum":
        choices = [str(c) for c in schema["enum"]]
        return Problem(line, where, f"{show(inst)} is not one of {', '.join(choices)}" + (
            did_you_mean(inst, choices) if isinstance(inst, str) else ""))  # fmt: skip
    if kw == "minLength" and schema["minLength"] == 1:
        return Problem(line, where, "must not be empty" + (f"; {hint}" if hint else ""))
    if kw == "maxLength":
        return Problem(
            line, where, f"is longer than {schema['maxLength']} characters ({len(str(inst))})"
        )
    if kw == "minItems" and isinstance(inst, list):
        return Problem(line, where, f"needs at least {schema['minItems']} item(s), has {len(inst)}")
    if kw == "maxItems" and isinstance(inst, list):
        return Problem(line, where, f"takes at most {schema['maxItems']} items, has {len(inst)}")
    if kw == "minimum":
        return Problem(
            line, where, f"{clip(str(inst))} is less than the minimum of {schema['minimum']}"
        )
    if kw == "maximum":
        return Problem(
            line,
            where,
            f"{clip(str(inst))} is greater than the maximum of {schema['maximum']}",
        )
    return Problem(line, where, f"{show(inst)} is not valid" + (f"; {hint}" if hint else ""))


def _unknown_key(key: str, schema: Mapping[str, Any], parent: Path) -> str:
    allowed = sorted(schema.get("properties", {}))
    message = f"unknown key {quote_key(key)}"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    homes = [h for h in _key_homes().get(key, ()) if h != format_path(parent)]
    if homes:
        return f"{message} here; it belongs in {' or '.join(homes)}"
    return f"{message}; allowed keys here: {', '.join(allowed)}"


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
            f"expected {want}, got {kind_of(inst)}; quote the value "
            "(it is not shown here: environment values may be secrets)"
        )
    message = f"expected {want}, got {describe(inst)}"
    if "string" in names and not isinstance(inst, (dict, list)):
        text = raw if raw is not None else str(inst)
        message += f"; quote it: {quote(text)}"
    return message


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
