"""Stage 5: a directory's manifests -> the DesiredState (tasks, broken files, duplicates).

PURE. The shell reads the files (reconcile, through its stat + content-hash cache)
and passes their bytes here. A broken file still names its task when the name can
be read (`guess_name`), so a bad edit of `web.yaml` protects task "web"'s pod.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence

from controller.errors import ManifestError
from controller.manifests.problems import FatalError
from controller.manifests.rules.document import get
from controller.manifests.rules.metadata import is_task_name
from controller.manifests.spec import SPEC_HASH_HEX_CHARS, SPEC_HASH_PREFIX, parse_manifest
from controller.manifests.yamlload import MAX_BYTES, decode, load
from controller.model import DesiredState, Invalid, TaskName, TaskSpec


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
        value, _index, _problems = load(decode(head))
    except FatalError:
        value = None
    name = get(value, "metadata", "name")
    if isinstance(name, str):
        return TaskName(name) if is_task_name(name) else None
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
                return TaskName(flow[1]) if is_task_name(flow[1]) else None
            in_metadata = re.match(r"metadata[ \t]*:[ \t]*(#.*)?$", line) is not None
            child_indent = None
            continue
        if not in_metadata:
            continue
        child_indent = indent if child_indent is None else child_indent
        found = _NAME_LINE.fullmatch(line)
        if found and indent == child_indent:
            return TaskName(found[1]) if is_task_name(found[1]) else None
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
        revision = directory_revision([(source, content_hash(data)) for source, data in files])
    return DesiredState(
        tasks=tasks,
        duplicates=duplicates,
        unnamed_invalid=tuple(sorted(unnamed, key=lambda i: i.source)),
        ignored=tuple(ignored),
        dir_missing=dir_missing,
        revision=revision,
    )


def directory_revision(digests: Iterable[tuple[str, str]]) -> str:
    """The revision of a directory git does not name: a hash over its sorted (source,
    content hash) pairs, so the same files give the same revision on every host."""
    canonical = json.dumps(sorted(digests), separators=(",", ":")).encode()
    return SPEC_HASH_PREFIX + hashlib.sha256(canonical).hexdigest()[:SPEC_HASH_HEX_CHARS]
