"""File I/O at the edges: atomic writes and reading the desired directory.

SHELL. `atomic_write` is the only way rktctl writes a file that others read
(status, metrics, state): temp file in the same directory, fsync, chmod 0644,
rename, fsync of the directory, so a reader never sees a partial document.
`is_manifest_name` is the single definition of which files are manifests.
`instance_lock` keeps a second rktctl from acting on the same state dir.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from controller.errors import StateLocked, StatusWriteError

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
class DirListing:
    manifests: tuple[Path, ...]
    """Manifest files, sorted by path relative to the root."""
    ignored: tuple[Path, ...]
    """Files seen but not read (temp files, dotfiles, other extensions)."""
    missing: bool = False


def list_manifest_files(root: str | os.PathLike[str]) -> DirListing:
    """Walk `root` (following a symlinked root) and split files into manifests and ignored.

    Dot-directories such as `.git` are skipped entirely. A missing or unreadable root
    gives `missing=True` rather than an exception.
    """
    base = Path(root)
    if not base.is_dir():
        return DirListing(manifests=(), ignored=(), missing=True)
    manifests: list[Path] = []
    ignored: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in IGNORED_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            (manifests if is_manifest_name(name) else ignored).append(path)
    return DirListing(manifests=tuple(manifests), ignored=tuple(ignored))


def read_manifest_bytes(path: str | os.PathLike[str], *, limit: int) -> bytes:
    """Return at most `limit + 1` bytes of the regular file `path` (following symlinks).

    The extra byte lets the parser say "too big" without reading a huge file; FIFOs,
    devices and sockets are refused (reading them could block the daemon forever).
    Raise OSError, with a message a person can act on, if the file cannot be read.
    """
    # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file; only files can be manifests")
        return handle.read(limit + 1)


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never half.

    Raise StatusWriteError if any step fails; the temp file is removed in that case.
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
        _fsync_dir(target.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            Path(tmp_name).unlink()
        raise StatusWriteError(f"cannot write {target}: {exc}") from exc


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
