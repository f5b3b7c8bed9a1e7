"""Which YAML scalars and tags a manifest may hold, and what a scalar reads as.

PURE. Part of the loader (yamlload): only the standard scalar tags are allowed
(no !!binary, !!python/..., custom tags, merge keys); a plain scalar whose first
character cannot start a YAML 1.1 number, boolean or null skips the resolver.
"""

from __future__ import annotations

from typing import Final

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from controller.manifests.problems import FatalError, Path, Problem, clip, format_path, quote

TAG = "tag:yaml.org,2002:"
_ALLOWED_SCALAR_TAGS: Final = frozenset(
    TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")
)
COLLECTION_TAGS: Final = frozenset({None, "!", TAG + "map", TAG + "seq"})
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()

STR_TAG: Final = TAG + "str"
MERGE_TAG: Final = TAG + "merge"
# First characters for which YAML 1.1 may read a plain scalar as something other than a
# string (digits, signs, y/n/t/f/o for booleans, ~ for null, ...): others skip the resolver.
IMPLICIT_FIRST: Final = frozenset(k for k in Resolver.yaml_implicit_resolvers if k)


def scalar_tag(event: yaml.ScalarEvent) -> str:
    """The tag a scalar resolves to: explicit, quoted (a string), or read by YAML 1.1 rules."""
    explicit = event.tag
    if explicit is None:
        if not event.implicit[0]:  # quoted
            return STR_TAG
        value = event.value
        if value and value[0] not in IMPLICIT_FIRST:
            return STR_TAG
        resolved: str = _RESOLVER.resolve(  # type: ignore[no-untyped-call]
            yaml.ScalarNode, value, (True, False)
        )
        return resolved
    if explicit == "!":
        return STR_TAG
    return explicit


def construct(event: yaml.ScalarEvent, tag: str, path: Path) -> object:
    """The value of a scalar with a non-string tag; FatalError for a tag not allowed."""
    if tag not in _ALLOWED_SCALAR_TAGS:
        raise FatalError(Problem(event_line(event), format_path(path), tag_message(tag)))
    node = yaml.ScalarNode(tag, event.value, style=event.style)
    try:
        return SafeConstructor.yaml_constructors[tag](_CONSTRUCTOR, node)
    except (ValueError, TypeError, yaml.YAMLError):
        raise FatalError(
            Problem(
                event_line(event),
                format_path(path),
                f"{quote(event.value)} cannot be read as {tag.replace(TAG, '!!')}",
            )
        ) from None


def event_line(event: yaml.Event) -> int:
    """The 1-based line where `event` starts (0 when PyYAML gives no mark)."""
    mark = event.start_mark
    return 0 if mark is None else mark.line + 1


def tag_message(tag: str) -> str:
    """The problem for a tag a manifest may not use."""
    short = clip(tag.replace(TAG, "!!"))
    return f"YAML tag {short} is not allowed in a manifest; remove it"
