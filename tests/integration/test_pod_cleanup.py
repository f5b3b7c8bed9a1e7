"""Cleaning up, in-process on the fake rkt: `rkt gc` output, trimming files, tidying pod logs."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from controller import observe
from controller.config import Config
from controller.fsio import trim_head
from controller.model import PodUUID
from controller.podlogs import trimmed
from controller.reconcile import Reconciler
from controller.runtime import RktCli, pod_log_path
from tests.e2e.harness import manifest_yaml
from tests.factories import task
from tests.integration.test_fake_rkt import transcript
from tests.integration.test_runtime import run_task

MAX = 4096


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("115-gc-grace-0s.txt", 5),
        ("121-gc-grace0-on-unmarked-exited.txt", 1),
        ("114-gc-default-grace.txt", 0),
        ("110-gc-mark-only.txt", 0),
    ],
)
def test_gc_output_names_the_pods_rkt_deleted(name: str, count: int) -> None:
    golden = transcript(name)
    collected = observe.parse_gc_output(golden.stdout.encode())
    assert len(collected) == count
    assert all(f'Garbage collecting pod "{uuid}"' in golden.stdout for uuid in collected)


def test_gc_returns_the_collected_pods(rkt_cli: RktCli) -> None:
    """On the fake; tests/contract/test_gc.py checks rkt's gc output on every backend."""
    uuid = run_task(rkt_cli, task("web", command="/bin/sleep", args=("1000",)))
    rkt_cli.stop(uuid, kill_timeout_s=10)
    assert rkt_cli.gc(grace_period_s=0) == (uuid,)
    assert rkt_cli.gc(grace_period_s=0) == ()


def _lines(first: int, last: int) -> bytes:
    return b"".join(b"line %d %s\n" % (i, b"x" * 60) for i in range(first, last))


def test_trim_in_place_keeps_an_appending_writer_writing_to_the_file(tmp_path: Path) -> None:
    """rkt holds a pod's log open with O_APPEND: after the cut its output follows the tail."""
    path = tmp_path / "web-0123abcd.log"
    writer = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(writer, _lines(0, 200))
        rewrite = lambda tail: trimmed(tail, max_bytes=MAX)  # noqa: E731
        assert trim_head(path, max_bytes=MAX, keep_bytes=MAX // 2, rewrite=rewrite, in_place=True)
        os.write(writer, b"after the cut\n")
    finally:
        os.close(writer)
    data = path.read_bytes()
    assert b"\0" not in data  # no hole where the old head was
    assert data.startswith(b"--- rktctl: older output removed")
    assert data.endswith(_lines(199, 200) + b"after the cut\n")
    assert len(data) <= MAX


def test_trim_of_a_finished_log_is_atomic_and_keeps_mode_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "web-0123abcd.log"
    path.write_bytes(_lines(0, 200))
    path.chmod(0o640)
    os.utime(path, ns=(1_000_000_000, 2_000_000_000))
    inode = path.stat().st_ino
    rewrite = lambda tail: trimmed(tail, max_bytes=MAX)  # noqa: E731
    assert trim_head(path, max_bytes=MAX, keep_bytes=MAX // 2, rewrite=rewrite, in_place=False)
    st = path.stat()
    assert st.st_ino != inode  # a new file renamed over the old one
    assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (0o640, 2_000_000_000)
    assert path.read_bytes().endswith(_lines(199, 200))
    assert not trim_head(path, max_bytes=MAX, keep_bytes=MAX // 2, rewrite=rewrite, in_place=False)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.fixture
def cfg(make_config: Callable[..., Config], tmp_path: Path) -> Config:
    (tmp_path / "desired").mkdir()
    return make_config(pod_logs_keep=1, pod_log_max_bytes=MAX)


def _logs(cfg: Config) -> set[str]:
    return {p.name for p in (Path(cfg.state_dir) / "logs").iterdir()}


def test_a_pass_tidies_the_pod_logs(cfg: Config, make_rkt_cli: Callable[..., RktCli]) -> None:
    (Path(cfg.desired_dir) / "web.yaml").write_text(manifest_yaml("web"))
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    reconciler.run_pass("startup")
    (running,) = _logs(cfg)
    logs = Path(cfg.state_dir) / "logs"
    gone = [pod_log_path(cfg, "web", PodUUID(f"{n:08x}-0000")) for n in range(3)]
    for n, path in enumerate(gone):  # logs of web pods removed earlier, oldest first
        path.write_bytes(_lines(0, 200 if n == 2 else 10))
        os.utime(path, ns=(n, n))
    deleted_task = pod_log_path(cfg, "old", PodUUID("ffffffff-0000"))
    deleted_task.write_bytes(b"bye\n")
    (logs / "notes.txt").write_text("an operator's file\n")
    (logs / (running + ".1")).write_text("not a pod log name\n")

    reconciler.run_pass("startup", dry_run=True)  # `rktctl plan` changes nothing
    assert len(_logs(cfg)) == 7

    with capture_logs() as events:
        reconciler.run_pass("resync")
    assert _logs(cfg) == {running, gone[2].name, "notes.txt", running + ".1"}
    assert gone[2].read_bytes().startswith(b"--- rktctl: older output removed")
    assert gone[2].stat().st_mtime_ns == 2  # still ranks by when the pod last wrote
    removed = {(e["path"], e["reason"]) for e in events if e["event"] == "pod_log_removed"}
    assert removed == {
        (str(gone[0]), "pod_removed"),
        (str(gone[1]), "pod_removed"),
        (str(deleted_task), "not_desired"),
    }
    trims = [e for e in events if e["event"] == "pod_log_trimmed"]
    assert [(e["log_level"], e["task"], e["path"]) for e in trims] == [
        ("info", "web", str(gone[2]))
    ]
