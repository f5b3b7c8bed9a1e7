"""Digests of the host files `spec.reload` watches, read again only when they change.

SHELL (stat, read). A file is re-read only when its stat (`fsio.stat_key`) changed and
was not racily recent (`fsio.is_racy`), so a pass over unchanged config files costs one
stat each. A directory is
digested by its entries' names and stat keys, a missing or unreadable path by what
went wrong, so appearing, vanishing and being fixed are changes too.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from controller import fsio

_CHUNK = 1 << 20
StatKey = tuple[int, int, int, int, int]


def stat_key(path: str) -> StatKey | str:
    """What changes when `path` changes: `fsio.stat_key`, or why it cannot be read."""
    st = _stat(path)
    return st if isinstance(st, str) else fsio.stat_key(st)


def _stat(path: str) -> os.stat_result | str:
    try:
        return Path(path).stat()
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


class FileDigests:
    """Content digests by path, cached on the stat key."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[StatKey, str]] = {}

    def digests(self, paths: Iterable[str]) -> dict[str, str]:
        return {path: self.digest(path) for path in paths}

    def digest(self, path: str) -> str:
        st = _stat(path)
        if isinstance(st, str):
            self._cache.pop(path, None)
            return st
        key = fsio.stat_key(st)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            value = _directory_digest(path) if stat.S_ISDIR(st.st_mode) else _file_digest(path)
        except OSError as exc:
            return f"unreadable: {exc.strerror}"
        if not fsio.is_racy(st):
            # As the manifest cache: a file changed within the last timestamp tick may
            # change again with the same stat, so such a digest is not trusted later.
            self._cache[path] = (key, value)
        return value

    def forget_except(self, paths: Iterable[str]) -> None:
        """Drop the cache entries of paths no longer watched."""
        keep = set(paths)
        for path in [p for p in self._cache if p not in keep]:
            del self._cache[path]


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _directory_digest(path: str) -> str:
    digest = hashlib.sha256()
    for entry in sorted(Path(path).iterdir()):
        digest.update(f"{entry.name}\0{stat_key(str(entry))}\0".encode())
    return "dir:" + digest.hexdigest()[:16]
