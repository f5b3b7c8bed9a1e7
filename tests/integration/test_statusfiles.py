"""StatusWriter on a real directory: atomic files, modes, deletion, restart, failures."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.controllerstatus import DaemonInfo
from controller.errors import StatusWriteError
from controller.model import (
    Observation,
    PassReport,
    PassResult,
    PodState,
    RestartState,
    TaskName,
)
from controller.statusfiles import (
    StatusFileError,
    StatusWriter,
    read_controller_status,
    read_task_statuses,
    task_file_name,
)
from controller.timefmt import iso
from tests.factories import BASE_TIME, desired, invalid, observation, pod, task

NOW = float(BASE_TIME + 1000)
DAEMON = DaemonInfo(version="0.1.0", pid=99, started_at=NOW - 60, config_path=None,
                    resync_interval_s=30.0)  # fmt: skip


def report(
    want: Any = None,
    obs: Observation | None = None,
    *,
    restarts: dict[str, RestartState] | None = None,
    at: float = NOW,
) -> PassReport:
    return PassReport(
        id="p1",
        trigger="resync",
        started_at=at - 0.1,
        finished_at=at,
        result=PassResult.OK,
        desired=want if want is not None else desired(task("web")),
        observation=obs if obs is not None else observation(),
        restarts={TaskName(k): v for k, v in (restarts or {}).items()},
    )


def test_publish_writes_every_file_readable_by_others(tmp_path: Path) -> None:
    writer = StatusWriter(tmp_path)
    writer.publish(report(desired(task("web"), invalid("db", "bad"))), daemon=DAEMON, now=NOW)
    names = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert names == ["controller.json", "rktctl.prom", "tasks/db.json", "tasks/web.json"]
    for name in names:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    tasks = read_task_statuses(tmp_path)
    assert {n: d["phase"] for n, d in tasks.items()} == {"web": "Pending", "db": "Invalid"}
    controller = read_controller_status(tmp_path)
    assert controller is not None
    assert (controller["heartbeat_at"], controller["counts"]["Invalid"]) == (iso(NOW), 1)


def test_unchanged_task_file_is_not_rewritten(tmp_path: Path) -> None:
    writer = StatusWriter(tmp_path)
    writer.publish(report(), daemon=DAEMON, now=NOW)
    task_inode = (tmp_path / "tasks/web.json").stat().st_ino
    controller_inode = (tmp_path / "controller.json").stat().st_ino
    writer.publish(report(at=NOW + 30), daemon=DAEMON, now=NOW + 30)
    assert (tmp_path / "tasks/web.json").stat().st_ino == task_inode
    assert (tmp_path / "controller.json").stat().st_ino != controller_inode
    controller = read_controller_status(tmp_path)
    assert controller is not None and controller["heartbeat_at"] == iso(NOW + 30)


def test_removed_task_status_deleted_only_after_its_pod_is_gone(tmp_path: Path) -> None:
    writer = StatusWriter(tmp_path)
    writer.publish(report(obs=observation(pod("web"))), daemon=DAEMON, now=NOW)
    # The manifest is deleted; the pod still exists: Stopping.
    writer.publish(report(desired(), observation(pod("web"))), daemon=DAEMON, now=NOW + 1)
    assert read_task_statuses(tmp_path)["web"]["phase"] == "Stopping"
    writer.publish(report(desired(), observation(pod("web", PodState.EXITED))),
                   daemon=DAEMON, now=NOW + 2)  # fmt: skip
    assert read_task_statuses(tmp_path)["web"]["phase"] == "Stopping"
    writer.publish(report(desired(), observation()), daemon=DAEMON, now=NOW + 3)
    assert read_task_statuses(tmp_path) == {}
    assert not (tmp_path / "tasks/web.json").exists()


def test_restarted_writer_keeps_history_and_cleans_leftovers(tmp_path: Path) -> None:
    StatusWriter(tmp_path).publish(report(), daemon=DAEMON, now=NOW)
    tasks = tmp_path / "tasks"
    (tasks / "broken.json").write_text("{not json")
    (tasks / ".web.json.abc123.tmp").write_text("half")
    (tmp_path / ".controller.json.x.tmp").write_text("half")
    (tasks / "gone.json").write_text(json.dumps({"name": "gone", "phase": "Running"}))
    (tasks / "README").write_text("not ours to delete")

    StatusWriter(tmp_path).publish(report(at=NOW + 50), daemon=DAEMON, now=NOW + 50)
    left = sorted(p.name for p in tasks.iterdir())
    assert left == ["README", "web.json"]
    assert not (tmp_path / ".controller.json.x.tmp").exists()
    web = read_task_statuses(tmp_path)["web"]
    # Still Pending: the new daemon continued the old document's conditions.
    assert {c["last_transition_time"] for c in web["conditions"]} == {iso(NOW)}


def test_odd_task_names_stay_inside_the_tasks_dir(tmp_path: Path) -> None:
    odd = ["../escape", ".hidden", "a/b", "x" * 300, "ünïcode"]
    obs = observation(*(pod(name) for name in odd))
    StatusWriter(tmp_path).publish(report(desired(), obs), daemon=DAEMON, now=NOW)
    files = sorted(p.name for p in (tmp_path / "tasks").iterdir())
    assert len(files) == len(odd)
    assert all(not f.startswith(".") and "/" not in f and len(f) <= 255 for f in files)
    assert sorted(read_task_statuses(tmp_path)) == sorted(odd)


@pytest.mark.parametrize(
    ("name", "file"),
    [("web", "web.json"), ("web-1.prod_2", "web-1.prod_2.json"), ("a/b", "a%2Fb.json"),
     (".x", "%2Ex.json"), ("..", "%2E%2E.json")],
)  # fmt: skip
def test_task_file_name(name: str, file: str) -> None:
    assert task_file_name(name) == file


def test_a_failed_write_is_reported_after_writing_the_rest(tmp_path: Path) -> None:
    (tmp_path / "tasks").write_text("a file where the tasks dir should be")
    writer = StatusWriter(tmp_path)
    with pytest.raises(StatusWriteError, match=r"web\.json"):
        writer.publish(report(), daemon=DAEMON, now=NOW)
    assert read_controller_status(tmp_path) is not None
    assert (tmp_path / "rktctl.prom").exists()
    # Once the directory is fixed the document is written: nothing is assumed on disk.
    (tmp_path / "tasks").unlink()
    writer.publish(report(at=NOW + 1), daemon=DAEMON, now=NOW + 1)
    assert read_task_statuses(tmp_path)["web"]["phase"] == "Pending"


def test_readers(tmp_path: Path) -> None:
    assert (read_controller_status(tmp_path), read_task_statuses(tmp_path)) == (None, {})
    (tmp_path / "controller.json").write_text("[1, 2]")
    with pytest.raises(StatusFileError, match="expected a JSON object"):
        read_controller_status(tmp_path)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "web.json").write_text("{")
    with pytest.raises(StatusFileError, match="not valid JSON"):
        read_task_statuses(tmp_path)


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs when there is one: rename is just as atomic there, and
    without the disk's fsync latency thousands of rewrites take seconds, not minutes."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(prefix="rktctl-status-", dir=shm))
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def test_reader_never_sees_a_partial_file(fast_dir: Path) -> None:
    """A reader thread parses the files while 2000 publishes rewrite each of them."""
    writer = StatusWriter(fast_dir)
    writer.publish(report(), daemon=DAEMON, now=NOW)
    targets = [fast_dir / "tasks" / "web.json", fast_dir / "controller.json"]
    done = threading.Event()
    bad: list[str] = []
    seen: set[str] = set()
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not done.is_set():
            for path in targets:
                text = path.read_text()
                try:
                    doc = json.loads(text)
                except json.JSONDecodeError as exc:
                    bad.append(f"{path.name}: {exc}: {text[:80]!r}")
                    continue
                reads += 1
                seen.add(str(doc.get("updated_at") or doc.get("heartbeat_at")))

    thread = threading.Thread(target=reader)
    # The writer gives up the GIL at each syscall and would wait up to a whole
    # switch interval (5 ms) to get it back from the busy reader.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    thread.start()
    try:
        for i in range(1, 2001):
            # The restart count changes every time, so the task document is rewritten too.
            restarts = {"web": RestartState(restarts=i, not_before=NOW + i + 100)}
            writer.publish(report(restarts=restarts, at=NOW + i), daemon=DAEMON, now=NOW + i)
    finally:
        done.set()
        thread.join(timeout=30)
        sys.setswitchinterval(interval)
    assert bad == []
    assert reads > 0 and len(seen) > 1, (reads, len(seen))


def test_a_document_is_written_as_json_would_indent_it() -> None:
    """orjson writes the files; the layout readers and diffs see is json's indent=2."""
    import json as stdlib_json
    from enum import StrEnum

    from controller.statusfiles import _dump

    doc = {"phase": "Running", "pod": {"uuid": "u", "apps": [{"exit": 0}], "env": {}},
           "ratio": 0.25, "list": [], "text": "ü", "none": None}  # fmt: skip
    assert _dump(doc) == (stdlib_json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()

    class Key(StrEnum):  # orjson refuses a key that is a str subclass: json writes it
        PHASE = "phase"

    assert stdlib_json.loads(_dump({Key.PHASE: "Running"})) == {"phase": "Running"}


def test_a_previous_document_edited_to_start_with_a_blank_is_still_read(tmp_path: Path) -> None:
    """Files a previous daemon left are kept as read until rebuilt; one that does not
    start with "{" (an editor's blank line) must not be mistaken for packed bytes."""
    from controller.statusfiles import StatusWriter as Writer

    writer = Writer(tmp_path)
    rep = report(want=desired(task("web")), obs=observation())
    writer.publish(rep, daemon=DAEMON, now=100.0)
    path = tmp_path / "tasks" / "web.json"
    path.write_text("\n" + path.read_text())
    again = Writer(tmp_path)  # a restarted daemon
    again.publish(rep, daemon=DAEMON, now=101.0)
    assert json.loads(path.read_text())["name"] == "web"
    assert path.read_text().startswith("{")  # rewritten as rktctl writes it


def test_a_state_file_that_cannot_be_written_is_logged_not_raised(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    from controller.fsio import read_json, save_state

    save_state(tmp_path / "restarts.json", {"web": {"restarts": 1}})
    assert read_json(tmp_path / "restarts.json") == {"web": {"restarts": 1}}
    (tmp_path / "not-a-dir").write_text("")
    with capture_logs() as logs:
        save_state(tmp_path / "not-a-dir" / "restarts.json", {})  # its parent is a file
    assert [e["event"] for e in logs] == ["state_write_failed"]
    assert logs[0]["path"] == str(tmp_path / "not-a-dir" / "restarts.json")
