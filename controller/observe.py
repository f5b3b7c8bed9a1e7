"""Observation: rkt's JSON and version output -> Observation / ObservedPod / attributes.

PURE. `runtime.RktCli` feeds it the bytes `rkt list --format=json`, `rkt status
--format=json UUID`, `rkt version` and `rkt config` printed; the planner consumes the result.
It never runs rkt, never logs, never looks at a clock, and never crashes on data a
later rkt might add: unknown states become PodState.UNKNOWN, unknown keys are
ignored. Output that breaks the documented shape raises RktOutputError.

Facts it relies on (verified on rkt 1.30.0, ../shared/rkt/transcripts):
- an empty store lists as `null`, not `[]`; every `omitempty` field may be absent
  (`created_at` is missing before rkt 1.29);
- pod times are Unix seconds, app times nanoseconds;
- pods still preparing are left out of the JSON with an error block on stderr
  while the exit code stays 0: such an observation is marked incomplete;
- the ownership stamp lives in `apps[i].user_annotations` / `apps[i].user_labels`.
`is_owned` / `stamp_of` are the single definition of which pods rktctl may touch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from hashlib import blake2b
from types import MappingProxyType

import orjson

from controller.errors import RktOutputError, RktUnsupported
from controller.model import (
    STAMP_MANAGED_BY,
    STAMP_MANAGED_BY_VALUE,
    STAMP_SPEC_HASH,
    STAMP_TASK,
    Observation,
    ObservedApp,
    ObservedPod,
    PodState,
    PodUUID,
    SpecHash,
    TaskName,
    frozen_map,
)

MINIMUM_RKT_VERSION = "1.27.0"
# rkt's data dir when neither --dir nor a paths.d `data` entry names one (rkt's
# common/common.go); `rkt config` prints "" for it.
RKT_DEFAULT_DATA_DIR = "/var/lib/rkt"
# Nomad's fingerprint regexes (client/driver/rkt.go): both must match.
_RKT_VERSION = re.compile(r"rkt [vV]ersion[:]? (\d[.\d]+)")
_APPC_VERSION = re.compile(r"appc [vV]ersion[:]? (\d[.\d]+)")
_SNIPPET = 200
_GC_LINE = re.compile(r'^Garbage collecting pod "([0-9a-f-]{36})"$', re.M)


def parse_pod_list(
    stdout: bytes, stderr: bytes = b"", previous: Observation | None = None
) -> Observation:
    """Given what `rkt list --format=json` printed (exit 0), return the Observation.

    `null` means no pods. Non-blank stderr means rkt skipped pods it could not
    convert (a pod still preparing): the result has `complete=False` and the
    stderr lines in `errors`. Raise RktOutputError if stdout is not a JSON array
    (or `null`) of pod objects.

    `previous` (the last call's result) only makes it cheaper: a pod whose entry
    is the same JSON as before is that ObservedPod object again instead of a new
    equal one, so the result is equal to what parsing without it gives.
    """
    # Between resyncs the whole output is usually byte for byte the last one: a digest
    # of it (~6 ms at 10k pods) answers with the last result, before any decoding.
    output_key = _digest(len(stdout).to_bytes(8, "little"), stdout, stderr)
    if previous is not None and previous.output_key == output_key:
        return previous
    data = _load(stdout, "rkt list --format=json")
    errors = _stderr_lines(stderr)
    if data is None:  # rkt prints "null", not "[]", when there are no pods
        return Observation(pods=(), complete=not errors, errors=errors)
    if not isinstance(data, list):
        raise RktOutputError(
            f"rkt list --format=json: expected a JSON array or null, got {_kind(data)}"
        )
    # Building an ObservedPod costs ~3x decoding its entry; between resyncs almost every
    # entry is unchanged. orjson re-encodes an entry in ~3 us (in the order it was read,
    # so the same text gives the same bytes), and a digest of that finds last pass's pod.
    known = {}
    if previous is not None:
        known = {k: p for k, p in zip(previous.entry_keys, previous.pods, strict=False) if k}
    keys = _entry_keys(data)
    pods = tuple(
        known.get(key) or _pod(item, f"[{i}]")
        for i, (key, item) in enumerate(zip(keys, data, strict=True))
    )
    return Observation(
        pods=pods, complete=not errors, errors=errors, output_key=output_key, entry_keys=keys
    )


def _digest(*parts: bytes) -> bytes:
    h = blake2b(digest_size=16)
    for part in parts:
        h.update(part)
    return h.digest()


def _entry_keys(data: list[object]) -> tuple[bytes, ...]:
    """A 128-bit digest of each entry's canonical bytes; b"" for none (never reused)."""
    try:
        return tuple(_digest(orjson.dumps(item)) for item in data)
    except orjson.JSONEncodeError:  # a lone surrogate, which only json's fallback reads
        return tuple(b"" for _ in data)


def parse_pod_status(stdout: bytes) -> ObservedPod:
    """Given what `rkt status --format=json UUID` printed (exit 0), return the pod.

    Raise RktOutputError if stdout is not one JSON pod object.
    """
    return _pod(_load(stdout, "rkt status --format=json"), "")


def parse_gc_output(stdout: bytes) -> tuple[PodUUID, ...]:
    """Given what `rkt gc` printed on stdout, return the UUIDs of the pods it deleted.

    rkt prints one `Garbage collecting pod "<uuid>"` line per deleted pod and nothing
    else on stdout (its marking and grace-period notes go to stderr).
    """
    text = stdout.decode("utf-8", errors="replace")
    return tuple(PodUUID(m) for m in _GC_LINE.findall(text))


def parse_version(stdout: bytes) -> dict[str, str]:
    """Given what `rkt version` printed, return rkt's fingerprint attributes.

    The keys are `driver.rkt` ("1"), `driver.rkt.version` and
    `driver.rkt.appc.version`, as Nomad's rkt driver reported them. Raise
    RktUnsupported if either version line is missing or unreadable.
    """
    text = stdout.decode("utf-8", errors="replace")
    rkt = _RKT_VERSION.search(text)
    appc = _APPC_VERSION.search(text)
    if rkt is None or appc is None:
        first = text.strip().splitlines()[0] if text.strip() else "(no output)"
        raise RktUnsupported(
            "cannot read the version from `rkt version` (expected lines 'rkt Version: X' and "
            f"'appc Version: Y', got {first[:_SNIPPET]!r}); is the configured `rkt` binary "
            "really rkt?"
        )
    return {
        "driver.rkt": "1",
        "driver.rkt.version": rkt.group(1).rstrip("."),
        "driver.rkt.appc.version": appc.group(1).rstrip("."),
    }


def parse_data_dir(stdout: bytes) -> str:
    """Given what `rkt config` printed, return rkt's data dir (its paths.d `data` setting).

    rkt merges the system and local paths.d files and prints one `paths` entry under
    `stage0`; an empty `data` means rkt's default. `rkt config` does not reflect a
    `--dir` flag: the caller handles that. Raise RktOutputError if the output is not
    that document.
    """
    doc = _load(stdout, "rkt config")
    stage0 = doc.get("stage0") if isinstance(doc, dict) else None
    if not isinstance(stage0, list):
        raise RktOutputError(
            f"rkt config: expected an object with a 'stage0' list, got {_kind(doc)}"
        )
    data = ""
    for entry in stage0:
        if isinstance(entry, dict) and entry.get("rktKind") == "paths":
            value = entry.get("data")
            data = value if isinstance(value, str) and value else data
    return data or RKT_DEFAULT_DATA_DIR


def check_supported(attrs: Mapping[str, str], minimum: str = MINIMUM_RKT_VERSION) -> None:
    """Raise RktUnsupported unless `attrs` (from parse_version) name rkt >= `minimum`.

    rktctl refuses to act on an older rkt: `rkt status --format=json` is broken
    before 1.27 (rkt PR #3699), the reason Nomad raised its minimum to 1.27.0.
    """
    version = attrs.get("driver.rkt.version", "")
    if not _version_tuple(version):
        raise RktUnsupported(f"rkt version is unknown ({version!r}); rktctl needs rkt >= {minimum}")
    if _version_tuple(version) < _version_tuple(minimum):
        raise RktUnsupported(
            f"rkt {version} is older than {minimum}, the oldest version rktctl supports "
            "(its JSON status output is broken); install rkt >= "
            f"{minimum} or point the `rkt` setting (RKTCTL_RKT) at a newer binary"
        )


def is_owned(pod: ObservedPod | Mapping[str, object]) -> bool:
    """Return True if rktctl may touch `pod` (an ObservedPod or a raw rkt pod object).

    A pod is owned only if it has apps, every app carries the label
    `rktctl.io/managed-by=rktctl`, and all apps carry the same non-empty
    `rktctl.io/task` annotation. Anything else is foreign and never touched.
    For an ObservedPod this is `pod.task is not None`: the parser fills `task`
    from the same rule (`stamp_of`).
    """
    if isinstance(pod, ObservedPod):
        return pod.task is not None
    raw_apps = pod.get("apps")
    if not isinstance(raw_apps, list):
        return False
    try:
        apps = tuple(_app(app, f".apps[{i}]") for i, app in enumerate(raw_apps))
    except RktOutputError:
        return False
    return stamp_of(apps) is not None


def stamp_of(apps: Sequence[ObservedApp]) -> tuple[TaskName, SpecHash | None] | None:
    """Return (task, spec_hash) from the apps' ownership stamp, or None if not owned.

    rktctl stamps every app with the same values; if the apps disagree on the
    spec hash, the hash is None (the planner then sees a changed spec and
    replaces the pod) but the pod is still owned.
    """
    if not apps:
        return None
    tasks: set[str] = set()
    hashes: set[str | None] = set()
    for app in apps:
        if app.user_labels.get(STAMP_MANAGED_BY) != STAMP_MANAGED_BY_VALUE:
            return None
        task = app.user_annotations.get(STAMP_TASK)
        if not task:
            return None
        tasks.add(task)
        hashes.add(app.user_annotations.get(STAMP_SPEC_HASH) or None)
    if len(tasks) != 1:
        return None
    spec_hash = hashes.pop() if len(hashes) == 1 else None
    return TaskName(tasks.pop()), (SpecHash(spec_hash) if spec_hash else None)


def _load(stdout: bytes, what: str) -> object:
    try:
        return orjson.loads(stdout)
    except orjson.JSONDecodeError:
        pass  # orjson refuses a little that json takes (a lone surrogate): keep taking it
    try:
        return json.loads(stdout)
    except ValueError as exc:
        snippet = stdout[:_SNIPPET].decode("utf-8", errors="replace")
        raise RktOutputError(f"{what}: output is not JSON ({exc}): {snippet!r}") from exc


def _pod(obj: object, path: str) -> ObservedPod:
    where = f"rkt pod{path}"
    if not isinstance(obj, dict):
        raise RktOutputError(f"{where}: expected an object, got {_kind(obj)}")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise RktOutputError(f"{where}: missing the pod UUID ('name')")
    apps = tuple(_app(app, f"{path}.apps[{i}]") for i, app in enumerate(_list(obj, "apps", where)))
    stamp = stamp_of(apps)
    return ObservedPod(
        uuid=PodUUID(name),
        state=PodState.parse(obj.get("state")),
        task=stamp[0] if stamp else None,
        spec_hash=stamp[1] if stamp else None,
        apps=apps,
        created_at=_int(obj, "created_at", where),
        started_at=_int(obj, "started_at", where),
        networks=tuple(_network(net, where) for net in _list(obj, "networks", where)),
    )


def _app(obj: object, path: str) -> ObservedApp:
    where = f"rkt pod{path}"
    if not isinstance(obj, dict):
        raise RktOutputError(f"{where}: expected an object, got {_kind(obj)}")
    name = obj.get("name")
    if not isinstance(name, str):
        raise RktOutputError(f"{where}: missing the app name")
    state = obj.get("state", "unknown")
    image_id = obj.get("image_id", "")
    if isinstance(image_id, str):  # one copy per image, not one per pod
        shared_id = _IMAGE_IDS.get(image_id)
        if shared_id is None and len(_IMAGE_IDS) < _SHARED_MAPS_MAX:
            _IMAGE_IDS[image_id] = image_id
        image_id = shared_id or image_id
    return ObservedApp(
        name=name,
        state=state if isinstance(state, str) else "unknown",
        exit_code=_int(obj, "exit_code", where),
        image_id=image_id if isinstance(image_id, str) else "",
        created_at_ns=_int(obj, "created_at", where),
        started_at_ns=_int(obj, "started_at", where),
        finished_at_ns=_int(obj, "finished_at", where),
        user_annotations=_str_map(obj, "user_annotations", where),
        user_labels=_str_map(obj, "user_labels", where),
    )


def _network(obj: object, where: str) -> str:
    # The same "name:ip4=IP" rendering rkt's own table uses (list.go fmtNets).
    if not isinstance(obj, dict):
        raise RktOutputError(f"{where}.networks: expected objects, got {_kind(obj)}")
    name = obj.get("netName", "")
    ip = obj.get("ip", "")
    return f"{name if isinstance(name, str) else ''}:ip4={ip if isinstance(ip, str) else ''}"


def _list(obj: Mapping[str, object], key: str, where: str) -> list[object]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RktOutputError(f"{where}.{key}: expected an array, got {_kind(value)}")
    return value


def _int(obj: Mapping[str, object], key: str, where: str) -> int | None:
    value = obj.get(key)
    if value is None or type(value) is int:  # the common case first: 60,000 calls at 10k pods
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise RktOutputError(f"{where}.{key}: expected an integer, got {_kind(value)}")
    return value


def _str_map(obj: Mapping[str, object], key: str, where: str) -> Mapping[str, str]:
    value = obj.get(key)
    if value is None:
        return frozen_map()
    if not isinstance(value, dict):
        raise RktOutputError(f"{where}.{key}: expected an object, got {_kind(value)}")
    items = tuple((k, v) for k, v in value.items() if isinstance(v, str))
    shared = _SHARED_MAPS.get(items)
    if shared is None:
        shared = MappingProxyType(dict(items))
        if len(_SHARED_MAPS) < _SHARED_MAPS_MAX:
            _SHARED_MAPS[items] = shared
    return shared


# Read-only maps are shared between pods that carry the same one: every owned pod's
# user_labels are {managed-by: rktctl}, ~300 bytes each at 10,000 pods. Bounded, so
# pods with labels of their own cannot grow it without end (they get a map each).
_SHARED_MAPS: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}
_SHARED_MAPS_MAX = 1024
_IMAGE_IDS: dict[str, str] = {}


def _stderr_lines(stderr: bytes) -> tuple[str, ...]:
    text = stderr.decode("utf-8", errors="replace")
    if not text.strip():
        return ()
    # rkt's error block is framed by "list: ----" rules and bare "list: " lines: keep the words.
    lines = tuple(
        line.rstrip()
        for line in text.splitlines()
        if line.strip() and line.removeprefix("list:").strip(" -\t")
    )
    return lines or (text.strip(),)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = [int(part) for part in version.split(".") if part.isdigit()]
    # "1.27" and "1.27.0" are the same version: pad to major.minor.patch.
    return tuple(parts + [0] * (3 - len(parts))) if parts else ()


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
