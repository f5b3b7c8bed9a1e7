"""Checked manifest documents kept across restarts, so a cold start does not check them again.

SHELL (one state file). A manifest's document (what the YAML loader made of its bytes,
after the schema and every rule passed it) is kept in `<state_dir>/documents.json`
under the file's content hash. A daemon that starts over an unchanged desired
directory builds each TaskSpec from its document (`manifests.spec_from_document`,
~40 us) instead of loading and checking the YAML (~160 us): at 10,000 manifests the
cold start's read drops from ~2.3 s to under 1 s (bench/bench_pass.py).

What keeps it honest:
- the key is the content hash of the bytes read, so an edited file misses;
- the file names the checker it came from (`checker_fingerprint`: a digest of the
  manifests package's sources and the task schema); any other checker ignores it;
- it is trusted like a state file and more: a regular file of the daemon's own user,
  writable by no one else, in the daemon's state directory; anything else is ignored;
- it is only ever a shortcut: a missing, foreign or unreadable file means every
  manifest is checked, never an error; a document that no longer builds is checked.

It is read on the first pass only and written once after it, when that pass checked a
manifest the file did not hold (or the file holds others): later edits are checked as
they come and reach the file at the next start. Nothing of it stays in memory.
"""

from __future__ import annotations

import hashlib
import os
import stat
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import structlog

from controller.errors import StatusWriteError
from controller.fsio import atomic_write
from controller.resources import load_schema_bytes

log = structlog.get_logger()

FILE_NAME = "documents.json"
FORMAT = 1


@cache
def checker_fingerprint() -> str:
    """A digest of everything that decides whether a document is valid and what it is:
    the manifests package's sources and the task schema."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent / "manifests"
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    digest.update(load_schema_bytes("task.schema.json"))
    return digest.hexdigest()


class DocumentCache:
    """The documents of one start: `lookup` and `add` during the first read, then `close`."""

    def __init__(self, state_dir: str) -> None:
        self._path = Path(state_dir) / FILE_NAME
        self._stored: dict[str, str] = self._load()
        """What the file held: content hash -> the document as JSON text."""
        self._used: dict[str, str] = {}
        """The documents of the manifests this read met (the file's next content)."""
        self.hits = 0
        self.misses = 0
        self._open = True

    def _load(self) -> dict[str, str]:
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return {}  # none yet (or not readable): every manifest is checked
        try:
            st = os.fstat(fd)
            if not _trusted(st):
                log.warning(
                    "document_cache_ignored",
                    path=str(self._path),
                    reason="not a regular file of this user writable by it alone",
                )
                return {}
            with os.fdopen(fd, "rb", closefd=False) as fh:
                raw = fh.read()
        except OSError:
            return {}
        finally:
            os.close(fd)
        try:
            content = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}
        if (
            not isinstance(content, dict)
            or content.get("format") != FORMAT
            or content.get("checker") != checker_fingerprint()
            or not isinstance(content.get("documents"), dict)
        ):
            return {}  # another version of rktctl wrote it: check everything once
        return {k: v for k, v in content["documents"].items() if isinstance(v, str)}

    def lookup(self, content_hash: str) -> dict[str, Any] | None:
        """The checked document of a manifest with this content hash, or None."""
        if not self._open:
            return None
        text = self._stored.get(content_hash)
        if text is None:
            return None
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(document, dict):
            return None
        self._used[content_hash] = text
        self.hits += 1
        return document

    def forget(self, content_hash: str) -> None:
        """A looked-up document that did not build: the manifest is checked instead."""
        self._used.pop(content_hash, None)
        self._stored.pop(content_hash, None)
        self.hits -= 1

    def add(self, content_hash: str, document: dict[str, Any]) -> None:
        """A manifest checked this read: keep its document for the next start."""
        if not self._open:
            return
        self.misses += 1
        try:
            text = orjson.dumps(document).decode()
        except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits
            return
        # Only a document that reads back as itself (NaN and infinity would not).
        if orjson.loads(text) == document:
            self._used[content_hash] = text

    def close(self) -> None:
        """Write the file if this read changed what it should hold; then keep nothing."""
        if not self._open:
            return
        self._open = False
        if self._used.keys() != self._stored.keys():
            content = {"format": FORMAT, "checker": checker_fingerprint(), "documents": self._used}
            try:
                atomic_write(self._path, orjson.dumps(content), mode=0o600)
            except StatusWriteError as exc:  # a shortcut lost, no harm
                log.warning("document_cache_not_written", path=str(self._path), error=str(exc))
        log.debug("document_cache_closed", hits=self.hits, misses=self.misses)
        self._stored, self._used = {}, {}


def _trusted(st: os.stat_result) -> bool:
    return (
        stat.S_ISREG(st.st_mode)
        and st.st_uid == os.geteuid()
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )
