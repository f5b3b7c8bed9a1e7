"""podlogs: which pod logs go, which stay, which are trimmed, and what a trimmed log holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.config import Config
from controller.model import PodState, PodUUID, TaskName
from controller.podlogs import (
    LogFile,
    RemoveLog,
    TrimLog,
    parse_log_name,
    plan_pod_logs,
    trimmed,
)
from controller.runtime import pod_log_path
from tests.factories import foreign_pod, observation, pod

WEB = TaskName("web")
MAX = 4096
DECLARED = frozenset({WEB, TaskName("db")})


def log(task: str, uuid: str, *, size: int = 100, mtime: int = 0) -> LogFile:
    return LogFile(name=f"{task}-{uuid[:8]}.log", size=size, mtime_ns=mtime)


def uuid(n: int) -> str:
    return f"{n:08x}-aaaa-4000-8000-{n:012x}"


def run(files: list[LogFile], *pods, declared=DECLARED, keep: int = 3, complete: bool = True):  # type: ignore[no-untyped-def]
    obs = observation(*pods, complete=complete)
    return plan_pod_logs(files, obs, declared=declared, keep=keep, max_bytes=MAX)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web-0123abcd.log", ("web", "0123abcd")),
        ("my-web-app-0123abcd.log", ("my-web-app", "0123abcd")),
        ("web-0123ABCD.log", None),
        ("web-0123abc.log", None),
        ("web-0123abcd.log.1", None),
        (".web-0123abcd.log.x1y2.tmp", None),  # atomic_write's temp file
        ("notes.txt", None),
    ],
)
def test_parse_log_name(name: str, expected: tuple[str, str] | None) -> None:
    assert parse_log_name(name) == expected


@given(
    task=st.from_regex(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?", fullmatch=True),
    n=st.integers(0, 2**32 - 1),
)
def test_the_launchers_file_names_parse_back(task: str, n: int) -> None:
    path = pod_log_path(Config(state_dir="/s"), task, PodUUID(uuid(n)))
    assert path.parent == Path("/s/logs")
    assert parse_log_name(path.name) == (task, uuid(n)[:8])


def test_a_log_whose_pod_is_listed_stays_in_any_state() -> None:
    """The pass that notices an exit reads the log; rktctl removes the pod later."""
    pods = [pod("web", state, uuid=uuid(i)) for i, state in enumerate(PodState)]
    files = [log("web", p.uuid) for p in pods]
    assert run(files, *pods, keep=0) == ()


def test_logs_of_removed_pods_beyond_the_newest_keep_go() -> None:
    files = [log("web", uuid(i), mtime=i) for i in range(6)]
    assert run(files, keep=2) == tuple(
        RemoveLog(name=f"web-{uuid(i)[:8]}.log", task=WEB, reason="pod_removed") for i in range(4)
    )


def test_keep_0_removes_a_log_once_its_pod_is_gone() -> None:
    running = pod("web", uuid=uuid(9))
    files = [log("web", uuid(1)), log("web", running.uuid)]
    assert run(files, running, keep=0) == (
        RemoveLog(name=f"web-{uuid(1)[:8]}.log", task=WEB, reason="pod_removed"),
    )


def test_each_task_keeps_its_own_newest_logs() -> None:
    files = [log("web", uuid(i), mtime=i) for i in range(3)]
    files += [log("db", uuid(10 + i), mtime=100 + i) for i in range(3)]
    removed = {a.name for a in run(files, keep=1)}
    assert removed == {f"web-{uuid(0)[:8]}.log", f"web-{uuid(1)[:8]}.log"} | {
        f"db-{uuid(10)[:8]}.log",
        f"db-{uuid(11)[:8]}.log",
    }


def test_a_task_no_manifest_declares_keeps_no_log_once_its_pods_are_gone() -> None:
    still_running = pod("old", uuid=uuid(5))
    files = [log("old", uuid(1)), log("old", still_running.uuid)]
    assert run(files, still_running) == (
        RemoveLog(name=f"old-{uuid(1)[:8]}.log", task=TaskName("old"), reason="not_desired"),
    )


def test_without_a_trustworthy_desired_state_no_task_counts_as_gone() -> None:
    files = [log("old", uuid(1))]
    assert run(files, declared=None) == ()


def test_an_incomplete_observation_plans_nothing() -> None:
    """A pod rkt hid would look removed."""
    files = [log("web", uuid(i), size=10 * MAX) for i in range(5)]
    assert run(files, keep=0, complete=False) == ()


def test_foreign_pods_and_other_files_do_not_count() -> None:
    foreign = foreign_pod(PodState.EXITED, uuid=uuid(1))
    files = [log("web", foreign.uuid), LogFile(name="README", size=10 * MAX, mtime_ns=0)]
    assert run(files, foreign, keep=0) == (
        RemoveLog(name=f"web-{uuid(1)[:8]}.log", task=WEB, reason="pod_removed"),
    )


def test_big_logs_are_trimmed_in_place_only_while_the_pod_may_still_write() -> None:
    running = pod("web", uuid=uuid(1))
    exited = pod("web", PodState.EXITED, uuid=uuid(2))
    files = [
        log("web", running.uuid, size=MAX + 1),
        log("web", exited.uuid, size=MAX + 1),
        log("web", uuid(3), size=MAX + 1, mtime=3),  # removed, kept
        log("web", uuid(4), size=MAX, mtime=4),  # at the cap: left alone
    ]
    assert run(files, running, exited) == (
        TrimLog(name=files[0].name, task=WEB, keep_bytes=MAX // 2, live=True),
        TrimLog(name=files[1].name, task=WEB, keep_bytes=MAX // 2, live=False),
        TrimLog(name=files[2].name, task=WEB, keep_bytes=MAX // 2, live=False),
    )


def test_a_trimmed_log_starts_with_a_marker_and_a_whole_line() -> None:
    assert trimmed(b"tial line\nline 2\nline 3\n", max_bytes=MAX) == (
        b"--- rktctl: older output removed to keep this log under pod_log_max_bytes = 4096 ---\n"
        b"line 2\nline 3\n"
    )


@pytest.mark.parametrize("tail", [b"one long line without an end", b"one long line\n", b""])
def test_a_tail_of_one_line_is_kept_whole(tail: bytes) -> None:
    assert trimmed(tail, max_bytes=MAX).endswith(tail)


@given(st.binary(max_size=MAX // 2))
def test_a_trimmed_log_fits_the_cap_and_ends_with_the_newest_bytes(tail: bytes) -> None:
    out = trimmed(tail, max_bytes=MAX)
    assert len(out) <= MAX
    last_line = tail.rsplit(b"\n", 1)[-1]
    assert out.endswith(last_line)
