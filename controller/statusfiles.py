"""Status files on disk: `tasks/<name>.json`, `controller.json` and `rktctl.prom`.

SHELL. The daemon owns one `StatusWriter` and calls `publish()` after every
pass; it builds the documents with the pure `status` module and writes each
changed one with `fsio.atomic_write` (readers see the old or the new file,
never half), deletes the documents of tasks that are gone, and rewrites the
controller document and the Prometheus textfile every time (they carry the
heartbeat). A task whose inputs did not change costs neither a build nor a write
(`status.build_task_statuses_memo`); each file is fsynced before its rename and
each directory once per publish, after its renames. `rktctl status` uses
`read_controller_status()` and `read_task_statuses()`: they read files only, never
rkt, so no root is needed.
Never writes outside the status directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from controller import __version__
from controller.config import Config
from controller.controllerstatus import DaemonInfo, build_controller_status
from controller.errors import RktctlError, StatusWriteError
from controller.fsio import atomic_write, fsync_dir
from controller.metrics import Metrics
from controller.model import PassReport
from controller.status import TaskMemo, build_task_statuses_memo, pass_inputs, summaries

TASKS_DIR = "tasks"
CONTROLLER_FILE = "controller.json"
METRICS_FILE = "rktctl.prom"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class StatusFileError(RktctlError):
    """Raised when a status file exists but cannot be read or is not a JSON object."""

    code = "status_file_invalid"


def task_file_name(name: str) -> str:
    """Return the file name of task `name`'s document: `<name>.json` for plain names.

    Names that could escape the directory or clash (slashes, leading dots, odd
    characters: possible on a pod stamped by hand) are percent-encoded; `%` is never
    in a plain name, so the two kinds cannot collide. Very long names get a hash.
    """
    if _SAFE_NAME.fullmatch(name):
        return f"{name}.json"
    encoded = quote(name, safe="").replace(".", "%2E")
    if len(encoded) > 200:
        encoded = encoded[:150] + "%" + hashlib.sha256(name.encode()).hexdigest()[:32]
    return f"{encoded}.json"


def _dump(doc: Any) -> bytes:
    """A document as its file's bytes: indented JSON, UTF-8, a final newline.

    orjson writes the same layout as `json.dumps(indent=2)` (a float may print as
    1e-7 rather than 1e-07) ~20x faster: with indentation json falls back to its pure
    Python encoder, which took ~1 s of a cold start at 10k tasks. A document orjson
    refuses (a key that is not exactly a str) is written by json as before.
    """
    try:
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # orjson.JSONEncodeError
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _pack(data: bytes) -> bytes:
    """A task file's bytes as kept in memory: zlib shrinks a document ~4x (kept for
    every task between passes), the same bytes always pack the same."""
    return zlib.compress(data, 1)


def _file_key(data: bytes) -> bytes:
    """What identifies a task file's content: a 128-bit digest of its bytes."""
    return hashlib.blake2b(data, digest_size=16).digest()


class _Encoded(Mapping[str, Mapping[str, Any]]):
    """Task documents kept as their files' packed bytes, decoded only when one is read.

    A document is ~5 KB as Python objects, ~1.9 KB as its file and ~0.5 KB packed;
    an idle pass reads none of them (`status.build_task_statuses_memo`). The files a
    previous daemon left are kept as read (a JSON object starts with "{", a zlib
    stream never does) until the first build replaces them: a start packs only what
    it builds.
    """

    def __init__(self, data: Mapping[str, bytes]) -> None:
        self._data = data

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        data = self._data[name]
        doc = orjson.loads(data if data[:1] == b"{" else zlib.decompress(data))
        return doc if isinstance(doc, dict) else {}

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class StatusWriter:
    """Writes the status directory after each pass; remembers what is on disk."""

    def __init__(
        self, status_dir: str | os.PathLike[str], *, metrics: Metrics | None = None
    ) -> None:
        self.status_dir = Path(status_dir)
        self.tasks_dir = self.status_dir / TASKS_DIR
        self.metrics = metrics or Metrics()
        self._latest: dict[str, bytes] | None = None
        """Every task's newest document (encoded): `previous` of the next build."""
        self._on_disk: dict[str, bytes] = {}
        """The `_file_key` of what each tasks/<name>.json holds now, so unchanged files
        are not rewritten."""
        self._strays: list[Path] = []
        self._memo: dict[str, TaskMemo] = {}
        self._settled_inputs: tuple[object, ...] | None = None
        """`status.pass_inputs` of the last build, if it left every task settled."""
        self._summaries: dict[str, Mapping[str, Any]] = {}

    def publish(self, report: PassReport, *, daemon: DaemonInfo, now: float) -> None:
        """Build and write every status file for `report`.

        Changed task documents are rewritten, gone tasks' documents deleted,
        controller.json and rktctl.prom always rewritten. Every file is attempted
        even when one fails; raise StatusWriteError naming every failure afterwards.
        """
        if self._latest is None:
            self._latest = self._load_previous()
            self._on_disk = {name: _file_key(data) for name, data in self._latest.items()}
        latest: dict[str, bytes] = {}
        problems: list[str] = []
        failed: list[str] = []
        wrote = False

        def write(name: str, doc: dict[str, Any]) -> None:
            nonlocal wrote
            data = _dump(doc)
            latest[name] = _pack(data)
            key = _file_key(data)
            if self._on_disk.get(name) == key:
                return
            try:
                atomic_write(self.tasks_dir / task_file_name(name), data, sync_dir=False)
            except StatusWriteError as exc:
                problems.append(str(exc))
                self._on_disk.pop(name, None)  # unknown now: rewrite next time
                failed.append(name)  # ... which needs it built again
            else:
                self._on_disk[name] = key
                wrote = True

        inputs = pass_inputs(report, now)
        if inputs is not None and inputs == self._settled_inputs:
            # Nothing a document depends on changed since a build that settled them all.
            latest, memo = self._latest, self._memo
        else:
            _, memo = build_task_statuses_memo(
                report, previous=_Encoded(self._latest), now=now, memo=self._memo, sink=write
            )
            for name in memo:
                if name not in latest:
                    latest[name] = self._latest[name]
            for name in failed:
                memo[name] = dataclasses.replace(memo[name], settled=False)
            settled = all(entry.settled for entry in memo.values())
            self._settled_inputs = inputs if settled else None
            self._summaries = summaries(memo)
        stale = [self.tasks_dir / task_file_name(n) for n in self._on_disk if n not in latest]
        for path in stale + self._strays:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                problems.append(f"cannot delete {path}: {exc}")
            else:
                wrote = True
        self._strays = []
        if stale:
            self._on_disk = {n: d for n, d in self._on_disk.items() if n in latest}
        self._latest, self._memo = latest, memo
        if wrote:
            try:
                fsync_dir(self.tasks_dir)  # once for every rename and unlink above
            except StatusWriteError as exc:
                problems.append(str(exc))

        docs = self._summaries  # the same object while nothing changed: metrics skip it
        controller = build_controller_status(report, task_docs=docs, daemon=daemon, now=now)
        self.metrics.observe_pass(report, docs, now)
        for path, payload in (
            (self.status_dir / CONTROLLER_FILE, _dump(controller)),
            (self.status_dir / METRICS_FILE, self.metrics.render()),
        ):
            try:
                atomic_write(path, payload, sync_dir=False)
            except StatusWriteError as exc:
                problems.append(str(exc))
        try:
            fsync_dir(self.status_dir)
        except StatusWriteError as exc:
            problems.append(str(exc))
        if problems:
            raise StatusWriteError("; ".join(problems))

    def publish_stopped(self) -> None:
        """Rewrite rktctl.prom with `rktctl_up` 0: the daemon's last write on its way out.

        Without it the file keeps the 1 of the last pass, and a stopped controller
        looks up until the heartbeat goes stale. Raise StatusWriteError if it fails.
        """
        self.metrics.set_up(False)
        atomic_write(self.status_dir / METRICS_FILE, self.metrics.render())

    def record_rkt_failure(self, subcommand: str) -> None:
        """Count a failed rkt invocation; it shows in rktctl.prom from the next publish."""
        self.metrics.record_rkt_failure(subcommand)

    def record_fetch(self, result: str, seconds: float) -> None:
        """Count a fetch phase; it shows in rktctl.prom from the next publish."""
        self.metrics.record_fetch(result, seconds)

    def _load_previous(self) -> dict[str, bytes]:
        """Read the documents a previous daemon left, so conditions keep their history.

        Unreadable files and temp files left by a crash are queued for deletion
        rather than trusted.
        """
        docs: dict[str, bytes] = {}
        for directory in (self.status_dir, self.tasks_dir):
            with contextlib.suppress(OSError):
                self._strays += [p for p in directory.glob(".*.tmp") if p.is_file()]
        try:
            files = _task_files(self.tasks_dir)
        except StatusFileError:
            files = []  # unlistable: the first write will say why
        for path in files:
            try:
                doc, raw = _read_json_raw(path)
            except (StatusFileError, FileNotFoundError):
                self._strays.append(path)
                continue
            name = doc.get("name")
            if isinstance(name, str) and task_file_name(name) == path.name:
                # What this writer wrote (equal to its dump if unchanged), kept as read
                # unless it does not start with "{" (edited by hand): then packed.
                docs[name] = raw if raw[:1] == b"{" else _pack(raw)
            else:
                self._strays.append(path)
        return docs


def _task_files(tasks_dir: Path) -> list[Path]:
    try:
        return sorted(
            p for p in tasks_dir.iterdir() if p.suffix == ".json" and not p.name.startswith(".")
        )
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StatusFileError(f"cannot list {tasks_dir}: {exc}") from exc


def _read_json(path: Path) -> dict[str, Any]:
    """Return the JSON object in `path`; FileNotFoundError passes through."""
    return _read_json_raw(path)[0]


def _read_json_raw(path: Path) -> tuple[dict[str, Any], bytes]:
    """Return the JSON object in `path` and the file's bytes (see `_read_json`)."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise StatusFileError(f"cannot read {path}: {exc}") from exc
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise StatusFileError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise StatusFileError(f"{path}: expected a JSON object")
    return doc, raw


def read_controller_status(status_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Return the parsed controller.json of `status_dir`, or None if it does not exist.

    Raise StatusFileError if it exists but is unreadable or not a JSON object.
    """
    try:
        return _read_json(Path(status_dir) / CONTROLLER_FILE)
    except FileNotFoundError:
        return None


def read_task_statuses(status_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Return every task document of `status_dir` by task name (empty if there are none).

    A file deleted while listing is skipped (its task just went away). Raise
    StatusFileError for a file that is unreadable or not a JSON object.
    """
    docs: dict[str, dict[str, Any]] = {}
    for path in _task_files(Path(status_dir) / TASKS_DIR):
        try:
            doc = _read_json(path)
        except FileNotFoundError:
            continue
        name = doc.get("name")
        docs[name if isinstance(name, str) else path.stem] = doc
    return docs


def process_info(
    cfg: Config,
    *,
    config_path: str | None,
    started_at: float,
    node: Mapping[str, str],
    config_error: Mapping[str, Any] | None = None,
) -> DaemonInfo:
    """Return the DaemonInfo of this process (version, pid) running with `cfg`."""
    return DaemonInfo(
        version=__version__,
        pid=os.getpid(),
        started_at=started_at,
        config_path=config_path,
        resync_interval_s=cfg.resync_interval_s,
        node=node,
        config_error=config_error,
    )
