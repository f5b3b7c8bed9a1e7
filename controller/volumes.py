"""The host side of a task's volumes: create its relative directories, find missing paths.

SHELL. rkt refuses to run a pod whose host volume path does not exist (fly: `run: stat
of host path X: ...`, exit 254; host stage1: systemd-nspawn fails after the pod has
started), and `prepare` does not check it. So:
- a relative host path (`data:/data`) belongs to the task: `ensure_task_dirs` creates
  `<state_dir>/tasks/<task>/data` right before `rkt prepare` (`RktCli.prepare`);
- an absolute one belongs to the operator: `missing_host_paths` names each missing one,
  and the reconciler holds the task's start (status Blocked, `HostPathMissing`) before
  any rkt command runs; `RktCli.prepare` checks again, in case it vanished meanwhile.
Nothing here removes or changes an existing file or directory.

New directories get mode 0755 whatever the umask, owned by root (rktctl's user): the
pod's root, rkt's default app user, can write; other host users can read, never write
(no world-writable directory on the host). With a numeric `user`/`group` in the spec
the new volume directory is chowned to them, so such an app can write too; a named user
exists only in the image, so its directory must be chowned once by hand. An existing
directory is never touched: an operator's chown or chmod sticks.
"""

from __future__ import annotations

import os
from pathlib import Path

from controller import rktargs
from controller.errors import VolumeError
from controller.model import TaskSpec, Volume

DIR_MODE = 0o755


def task_data_dir(state_dir: str) -> str:
    """Return the directory under which each task's relative volumes live."""
    return str(Path(state_dir) / "tasks")


def missing_host_paths(spec: TaskSpec, *, data_dir: str) -> tuple[str, ...]:
    """Given a placed spec, return one message per absolute host path that does not exist.

    Relative paths are not reported: `ensure_task_dirs` creates them. Each message names
    the volume, the path and the fix.
    """
    problems: list[str] = []
    for index, volume in enumerate(spec.volumes):
        if not volume.host.startswith("/"):
            continue
        path = rktargs.host_path(spec.name, volume.host, data_dir)
        if not Path(path).exists():
            problems.append(_missing_message(spec, index, volume, path, data_dir))
    return tuple(problems)


def ensure_task_dirs(spec: TaskSpec, *, data_dir: str) -> tuple[Path, ...]:
    """Create the missing directories of `spec`'s relative volumes; return those created.

    Raise VolumeError naming the volume if one cannot be created (or a relative path
    leaves the task's directory, which validation refuses first).
    """
    created: list[Path] = []
    for index, volume in enumerate(spec.volumes):
        if volume.host.startswith("/"):
            continue
        where = f"spec.config.volumes[{index}] ({volume.host}:{volume.container})"
        try:
            path = Path(rktargs.host_path(spec.name, volume.host, data_dir))
            made = _make_dirs(path)
            if made and path in made:
                _chown_for(spec, path)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise VolumeError(
                f"task {spec.name}: cannot create the host directory of {where}: {reason}"
            ) from exc
        created.extend(made)
    return tuple(created)


def _make_dirs(path: Path) -> list[Path]:
    """mkdir -p with DIR_MODE on every level created (chmod: the umask must not narrow it)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    made: list[Path] = []
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # created concurrently: it is not ours to change
        directory.chmod(DIR_MODE)
        made.append(directory)
    return made


def _chown_for(spec: TaskSpec, path: Path) -> None:
    """Give a new volume directory to the app's numeric uid/gid (root only: rkt's case)."""
    uid = int(spec.user) if spec.user is not None and spec.user.isdigit() else -1
    gid = int(spec.group) if spec.group is not None and spec.group.isdigit() else -1
    if (uid, gid) != (-1, -1) and os.geteuid() == 0:
        os.chown(path, uid, gid)


def _missing_message(spec: TaskSpec, index: int, volume: Volume, path: str, data_dir: str) -> str:
    relative = f"{Path(data_dir) / spec.name}/"
    return (
        f"spec.config.volumes[{index}] ({volume.host}:{volume.container}): host path {path} "
        "does not exist on this host, and rkt refuses to run a pod without it; create it "
        f"(mkdir -p {path}) or change the volume (a relative host path such as "
        f'"data:{volume.container}" is created by rktctl under {relative})'
    )
