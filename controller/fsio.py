"""File I/O at the edges: atomic writes and reading the desired directory.

SHELL. `atomic_write` is the only way rktctl writes a file that others read
(status, metrics, state): temp file in the same directory, fsync, chmod 0644,
rename, fsync of the directory, so a reader never sees a partial document.
`is_manifest_name` is the single definition of which files are manifests, and
`TrustPolicy` (sshd's StrictModes for the desired tree) of which may be read at
all: `list_manifest_files` refuses untrusted or unreadable directories and
`check_manifest` untrusted files, FIFOs, devices and symlinks that leave the tree,
all before anything is opened. `read_manifest` never returns a file that changed
while it was read. `trim_head` cuts a file down to its newest bytes (pod logs).
`instance_lock` keeps a second rktctl from acting on the same state dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import structlog

from controller.errors import StateLocked, StatusWriteError

log = structlog.get_logger()

MANIFEST_SUFFIXES = (".yaml", ".yml")
# Editor, package-manager and VCS leftovers that must never be read as manifests
# (kubernetes#136962, #83708: kubelet loaded `web.yaml~` and `.web.yaml.swp`).
_IGNORED_SUFFIXES = (
    "~",
    ".swp",
    ".swx",
    ".swo",
    ".bak",
    ".orig",
    ".rej",
    ".tmp",
    ".rpmnew",
    ".rpmsave",
    ".rpmorig",
    ".dpkg-new",
    ".dpkg-old",
    ".dpkg-dist",
    ".dpkg-tmp",
    ".dpkg-bak",
)
_VIM_PROBE = re.compile(r"^\d+$")  # vim writes numeric probe files such as "4913"
IGNORED_DIRS = frozenset({".git", ".svn", ".hg"})


@lru_cache(maxsize=1 << 16)  # asked for every file of the tree on every pass
def is_manifest_name(name: str) -> bool:
    """Return True if a file called `name` is read as a manifest."""
    if name.startswith(".") or (name.startswith("#") and name.endswith("#")):
        return False
    if _VIM_PROBE.match(name) or ".dpkg-" in name:
        return False
    if name.endswith(_IGNORED_SUFFIXES):
        return False
    return name.endswith(MANIFEST_SUFFIXES)


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """Who may decide what runs as root: sshd's StrictModes for the desired tree."""

    strict: bool = True
    """Check owners and modes; False (`strict_modes = false`) is for development only."""
    owners: frozenset[int] = frozenset({0})
    """uids that may own manifests and the directories above them up to the root."""


class Refused(Exception):
    """A manifest the trust policy does not read: the message says why and the fix."""


@dataclass(frozen=True, slots=True)
class DirListing:
    manifests: tuple[str, ...]
    """Manifest files, sorted by path relative to the root."""
    ignored: tuple[str, ...]
    """Files seen but not read (temp files, dotfiles, other extensions)."""
    missing: bool = False
    refused: tuple[tuple[str, str], ...] = ()
    """Directories not read (untrusted or unreadable) with why: their manifests are unknown."""
    root_real: str = ""
    """The root with every symlink resolved (git-sync swaps a symlinked root)."""
    read_dirs: frozenset[str] = field(default_factory=frozenset)
    """Real paths of the directories read: where a symlink inside the tree may point."""


def list_manifest_files(
    root: str | os.PathLike[str], *, trust: TrustPolicy | None = None
) -> DirListing:
    """Walk `root` (following a symlinked root) and split files into manifests and ignored.

    Dot-directories such as `.git` are skipped entirely. A missing root gives
    `missing=True`; a directory that cannot be listed, or (with `trust`) one others
    may write, is not descended into and is listed in `refused` with the reason.
    Paths are strings: at 10,000 files a Path per file cost more than the walk.
    """
    base = os.fspath(root)
    if not Path(base).is_dir():
        return DirListing(manifests=(), ignored=(), missing=True)
    root_real = os.path.realpath(base)
    manifests: list[str] = []
    ignored: list[str] = []
    refused: list[tuple[str, str]] = []
    read_dirs: set[str] = set()
    errors: list[OSError] = []
    join = os.path.join
    for dirpath, dirnames, filenames in os.walk(base, onerror=errors.append):
        real = os.path.normpath(join(root_real, os.path.relpath(dirpath, base)))
        if trust is not None and trust.strict:
            problem = _untrusted(Path(dirpath).stat(), trust, "directory", dirpath)
            if problem is not None:
                refused.append((dirpath, f"{problem}; no manifest under it is read"))
                dirnames[:] = []
                continue
        read_dirs.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in IGNORED_DIRS)
        for name in sorted(filenames):
            (manifests if is_manifest_name(name) else ignored).append(join(dirpath, name))
    for exc in errors:
        # Without this, an unreadable directory looked empty and its tasks' pods stopped.
        refused.append(
            (
                os.fspath(exc.filename or base),
                f"cannot read this directory: {exc.strerror}; the manifests in it are "
                "unknown, so no pod of a task missing from the other manifests is stopped "
                "until it can be read (fix its permissions or the mount)",
            )
        )
    return DirListing(
        manifests=tuple(manifests),
        ignored=tuple(ignored),
        refused=tuple(sorted(refused)),
        root_real=root_real,
        read_dirs=frozenset(read_dirs),
    )


def check_manifest(path: str, listing: DirListing, trust: TrustPolicy) -> os.stat_result:
    """Given a manifest of `listing`, return the stat of the file to read; nothing is opened.

    Raise Refused for a symlink that leaves the directories the listing read (how a
    secret file would be read as a manifest), a dangling symlink, anything but a regular
    file (opening a FIFO or a device can block or act) and, with `trust.strict`, a file
    others may write. Raise FileNotFoundError if `path` itself vanished.
    """
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        if str(Path(target).parent) not in listing.read_dirs:
            inside = target == listing.root_real or target.startswith(listing.root_real + "/")
            where = (
                "outside the directories rktctl reads (dot-directories and refused ones)"
                if inside
                else f"outside the desired directory {listing.root_real}"
            )
            raise Refused(
                f"is a symlink to {target}, {where}; it is not read. Fix: copy the manifest "
                "into the directory, or link to a file inside it"
            )
        try:
            st = Path(target).stat()
        except FileNotFoundError:
            raise Refused(f"is a dangling symlink to {target}; fix the link or remove it") from None
        except OSError as exc:
            raise Refused(
                f"is a symlink to {target}, which cannot be read: {exc.strerror}"
            ) from None
    if not stat.S_ISREG(st.st_mode):
        raise Refused(
            f"is a {_file_kind(st.st_mode)}, not a regular file; only regular files can be "
            "manifests (it is never opened)"
        )
    if trust.strict:
        problem = _untrusted(st, trust, "file", path)
        if problem is not None:
            raise Refused(problem)
    return st


def _untrusted(st: os.stat_result, trust: TrustPolicy, what: str, path: str) -> str | None:
    if st.st_uid not in trust.owners:
        owners = ", ".join(str(u) for u in sorted(trust.owners))
        return (
            f"this {what} is owned by uid {st.st_uid}, not by a trusted uid ({owners}): whoever "
            f"owns it decides what runs as root. Fix: chown root {path}, or add the uid to "
            "trusted_uids (strict_modes = false turns these checks off, for development only)"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "world-writable" if st.st_mode & stat.S_IWOTH else "group-writable"
        return (
            f"this {what} is {who} (mode {stat.S_IMODE(st.st_mode):04o}): anyone who can write "
            f"it decides what runs as root. Fix: chmod go-w {path} (strict_modes = false turns "
            "these checks off, for development only)"
        )
    return None


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISDIR, "directory"),
    ):
        if test(mode):
            return kind
    return "special file"


READ_ATTEMPTS = 3
RACY_NS = 1_000_000_000
"""A file changed this recently may change again within the same timestamp tick,
unseen by its stat: such a read is not cached (git's "racily clean" entries)."""


def stat_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What identifies one version of a file: ctime too, since mtime can be set back."""
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)


def is_racy(st: os.stat_result, window_ns: int = RACY_NS) -> bool:
    """True if `st` is too recent for its stat to prove later reads would match."""
    return time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < window_ns


def read_manifest(
    path: str | os.PathLike[str], *, limit: int, expect: os.stat_result | None = None
) -> tuple[bytes, os.stat_result]:
    """Return at most `limit + 1` bytes of the regular file `path` and its stat then.

    The extra byte lets the parser say "too big" without reading a huge file. The type
    is checked before opening (a FIFO or a device is never opened); `expect`, the stat
    `check_manifest` approved, must still be the file opened. A file that changed while
    it was read (size, times or content, e.g. rewritten in place) is read again, and
    after READ_ATTEMPTS refused. Raise OSError with a message a person can act on.
    """
    for _attempt in range(READ_ATTEMPTS):
        st = Path(path).stat()
        if not stat.S_ISREG(st.st_mode):
            raise OSError(
                f"{path} is a {_file_kind(st.st_mode)}, not a regular file; only regular "
                "files can be manifests"
            )
        if expect is not None and (st.st_dev, st.st_ino) != (expect.st_dev, expect.st_ino):
            raise _Replaced(str(path))  # since it was checked: check the new one first
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            before = os.fstat(fd)
            if (before.st_dev, before.st_ino) != (st.st_dev, st.st_ino):
                raise _Replaced(str(path))
            data = os.pread(fd, limit + 1, 0)
            again = os.pread(fd, limit + 1, 0)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        whole = len(data) > limit or len(data) == after.st_size
        if stat_key(after) == stat_key(before) and data == again and whole:
            return data, after
    raise OSError(
        f"{path} kept changing while it was read (rewritten in place?); it is read again "
        "on the next pass. Write manifests atomically: a temp file, then rename"
    )


class _Replaced(FileNotFoundError):
    """The path now names another file than the one checked: look again next pass."""


def read_manifest_bytes(path: str | os.PathLike[str], *, limit: int) -> bytes:
    """Return at most `limit + 1` bytes of the regular file `path` (see `read_manifest`)."""
    return read_manifest(path, limit=limit)[0]


def read_json(path: str | os.PathLike[str]) -> object:
    """The JSON document in `path`, or None if it is missing, unreadable or not JSON.

    For rktctl's state files: one that cannot be read is started afresh, never fatal.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def save_state(path: str | os.PathLike[str], document: object) -> None:
    """Write the state file `path`: `document` as indented, key-sorted JSON, atomically.

    A state file that cannot be written is logged (`state_write_failed`), never fatal:
    what it holds is kept in memory and written again with its next change.
    """
    try:
        atomic_write(path, json.dumps(document, indent=1, sort_keys=True) + "\n")
    except StatusWriteError as exc:
        log.error("state_write_failed", path=str(path), error=str(exc))


def atomic_write(
    path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o644, sync_dir: bool = True
) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never half.

    The file is fsynced before the rename. `sync_dir=False` leaves the directory's fsync
    (what makes the rename itself durable) to the caller, who writes a batch of files
    and then calls `fsync_dir` once. Raise StatusWriteError if any step fails; the
    temp file is removed in that case.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise StatusWriteError(f"cannot write {target}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; monitoring runs as another user and must read it.
        Path(tmp_name).chmod(mode)
        Path(tmp_name).replace(target)
        if sync_dir:
            _fsync_dir(target.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            Path(tmp_name).unlink()
        raise StatusWriteError(f"cannot write {target}: {exc}") from exc


def trim_head(
    path: str | os.PathLike[str],
    *,
    max_bytes: int,
    keep_bytes: int,
    rewrite: Callable[[bytes], bytes],
    in_place: bool,
) -> bool:
    """If `path` is larger than `max_bytes`, replace it by `rewrite(its newest keep_bytes)`.

    Return True if the file was trimmed. Without `in_place` the file is replaced
    atomically (`atomic_write`) and keeps its mode and mtime, so readers never see half
    of it and "newest" still means "last written to". `in_place` is for a file another
    process still appends to (O_APPEND): a new file would leave that writer writing to
    the unlinked old one, so the file is truncated and rewritten through the same inode;
    the writer's appends then land after the kept tail. Output written between reading
    the tail and truncating (microseconds) is lost. Raise OSError or StatusWriteError.
    """
    target = Path(path)
    fd = os.open(target, (os.O_RDWR | os.O_APPEND if in_place else os.O_RDONLY) | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if st.st_size <= max_bytes:
            return False
        tail = os.pread(fd, keep_bytes, max(0, st.st_size - keep_bytes))
        if not in_place:
            atomic_write(target, rewrite(tail), mode=stat.S_IMODE(st.st_mode))
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
            return True
        grown = os.fstat(fd).st_size
        if grown > st.st_size:  # the writer went on while we read: keep that too
            tail += os.pread(fd, grown - st.st_size, st.st_size)
        os.ftruncate(fd, 0)
        os.write(fd, rewrite(tail))
        return True
    finally:
        os.close(fd)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make the renames done in `directory` durable (after `atomic_write(sync_dir=False)`).

    Raise StatusWriteError if the directory cannot be synced.
    """
    try:
        _fsync_dir(Path(directory))
    except OSError as exc:
        raise StatusWriteError(f"cannot sync {directory}: {exc}") from exc


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked_file(path: str | os.PathLike[str], *, blocking: bool = True) -> Iterator[int]:
    """Hold an exclusive flock on `path` (created if needed) for the with-block.

    The fd is close-on-exec, so no child (a detached pod's rkt) keeps the lock after
    this process dies, even by kill -9. With `blocking=False`, raise BlockingIOError
    at once if another process holds it.
    """
    import fcntl

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield fd
    finally:
        os.close(fd)


INSTANCE_LOCK_FILE = "rktctl.lock"


@contextlib.contextmanager
def instance_lock(state_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold `<state_dir>/rktctl.lock` for the with-block: one acting rktctl per state dir.

    The holder writes its pid into the file. Raise StateLocked, naming the holder's
    pid, if another process holds it; StateLocked too if the file cannot be created.
    """
    path = Path(state_dir) / INSTANCE_LOCK_FILE
    with contextlib.ExitStack() as stack:
        try:
            fd = stack.enter_context(locked_file(path, blocking=False))
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BlockingIOError:
            raise StateLocked(
                f"another rktctl (pid {_lock_holder(path)}) is acting on state_dir "
                f"{state_dir} (it holds {path}); run one controller per state dir: stop "
                "that one first, or give this one its own state_dir"
            ) from None
        except OSError as exc:
            raise StateLocked(f"cannot lock state_dir {state_dir}: {exc}") from exc
        yield


def _lock_holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def read_git_revision(desired_dir: str | os.PathLike[str]) -> str | None:
    """Return the git commit the desired directory comes from, or None if unknown.

    Two layouts are recognised without running git: a git-sync style symlink whose
    target is named after the commit (`desired -> rev-<sha>` or `.../<sha>`), and a
    directory inside a git checkout (reads `.git/HEAD` and the ref it names).
    """
    target = Path(os.path.realpath(desired_dir))
    for name in (target.name, target.name.removeprefix("rev-")):
        if _SHA.match(name):
            return name
    try:
        return _git_revision(target)
    except OSError:  # an unreadable tree holds elsewhere; the revision is just unknown
        return None


def _git_revision(target: Path) -> str | None:
    for directory in (target, *target.parents):
        git = directory / ".git"
        if git.is_dir():
            return _resolve_head(git)
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = git.read_text(encoding="utf-8", errors="replace").strip()
            if text.startswith("gitdir:"):
                return _resolve_head((directory / text[7:].strip()).resolve())
            return None
    return None


def _resolve_head(git_dir: Path) -> str | None:
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref:"):
            return head if _SHA.match(head) else None
        ref = head[4:].strip()
        ref_file = git_dir / ref
        if ref_file.is_file():
            sha = ref_file.read_text(encoding="utf-8").strip()
            return sha if _SHA.match(sha) else None
        packed = git_dir / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                sha, _, name = line.partition(" ")
                if name == ref and _SHA.match(sha):
                    return sha
    except OSError:
        return None
    return None
