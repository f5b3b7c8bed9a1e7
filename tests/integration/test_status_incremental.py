"""Incremental passes: a task whose inputs did not change costs no rewrite of its files.

Whole passes (ManifestCache -> Reconciler -> StatusWriter) over a real desired and
status directory, with an in-memory runtime whose pods are stand-ins. Checks which
files a pass rewrites (inode and mtime), where the directory's and each task's
revision live, and that a memoised document still follows time (a backoff that ends)
and metrics follow removed tasks.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from controller import manifests as manifest
from controller.config import Config
from controller.controllerstatus import DaemonInfo
from controller.model import (
    STAMP_MANAGED_BY,
    STAMP_MANAGED_BY_VALUE,
    STAMP_SPEC_HASH,
    STAMP_TASK,
    Observation,
    PodUUID,
    RestartState,
    TaskName,
    TaskSpec,
)
from controller.observe import parse_pod_list
from controller.reconcile import Reconciler
from controller.status import build_task_statuses_memo
from controller.statusfiles import StatusWriter
from tests.factories import desired, observation, task
from tests.unit.test_status import report

MANIFEST = """apiVersion: rktctl.io/v1
kind: Task
metadata:
  name: {name}
  labels: {{team: {label}}}
spec:
  config:
    image: example.com/app:1.0
    command: /bin/sleep
    args: ["{sleep}"]
"""
DAEMON = DaemonInfo(version="0.1.0", pid=99, started_at=0.0, config_path=None,
                    resync_interval_s=30.0)  # fmt: skip


class StandIns:
    """A runtime whose started pods run until stopped; `rkt list` is parsed from JSON."""

    def __init__(self) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.started = 0

    def version(self) -> dict[str, str]:
        return {"driver.rkt": "1", "driver.rkt.version": "1.30.0", "driver.rkt.appc.version": "0"}

    def list_pods(self) -> Observation:
        return parse_pod_list(json.dumps(list(self.pods.values())).encode())

    def pod_store_exists(self) -> bool:
        return True

    def prepare(
        self,
        spec: TaskSpec,
        *,
        extra_env: Mapping[str, str] = {},
        host_ports: Mapping[str, int] = {},
    ) -> PodUUID:
        self.started += 1
        uuid = f"{self.started:08x}-0000-4000-8000-000000000000"
        stamp = {STAMP_TASK: spec.name, STAMP_SPEC_HASH: spec.spec_hash}
        self.pods[uuid] = {
            "name": uuid,
            "state": "running",
            "created_at": 1_700_000_000,
            "started_at": 1_700_000_000,
            "apps": [
                {
                    "name": spec.name,
                    "state": "running",
                    "user_annotations": stamp,
                    "user_labels": {STAMP_MANAGED_BY: STAMP_MANAGED_BY_VALUE},
                }
            ],
        }
        return PodUUID(uuid)

    def run_prepared(self, spec: TaskSpec, uuid: PodUUID, *, just_prepared: bool = False) -> None:
        return None

    def stop(self, uuid: PodUUID, *, kill_timeout_s: float) -> None:
        self.pods.pop(uuid, None)

    def request_stop(self, uuid: PodUUID) -> bool:
        self.pods.pop(uuid, None)
        return False

    def force_stop(self, uuid: PodUUID) -> None:
        self.pods.pop(uuid, None)

    def remove(self, uuid: PodUUID) -> None:
        self.pods.pop(uuid, None)

    def gc(self, *, grace_period_s: float) -> tuple[PodUUID, ...]:
        return ()

    def status(self, uuid: PodUUID) -> Any:
        return None

    def pod_output(self, task: TaskName, uuid: PodUUID) -> Any:
        raise AssertionError("no pod of these tests ends")


class Host:
    """A desired dir, a status dir and the daemon's pass: run_pass, then publish."""

    def __init__(self, tmp: Path, names: list[str]) -> None:
        self.desired, self.status = tmp / "desired", tmp / "status"
        for directory in (self.desired, self.status, tmp / "state"):
            directory.mkdir()
        for name in names:
            self.write(name)
        cfg = Config(desired_dir=str(self.desired), status_dir=str(self.status),
                     state_dir=str(tmp / "state"), strict_modes=False, overcommit=True,
                     max_delete_fraction=1.0)  # fmt: skip
        self.runtime = StandIns()
        self.reconciler = Reconciler(cfg, self.runtime, environ={})
        self.writer = StatusWriter(self.status)

    def write(self, name: str, *, sleep: int = 60, label: str = "a") -> Path:
        path = self.desired / f"{name}.yaml"
        path.write_text(MANIFEST.format(name=name, sleep=sleep, label=label))
        old = time.time() - 10  # older than the racy window: its stat vouches for it
        os.utime(path, (old, old))
        return path

    def run(self) -> None:
        report = self.reconciler.run_pass("test")
        self.writer.publish(report, daemon=DAEMON, now=time.time())

    def files(self) -> dict[str, tuple[int, int]]:
        return {
            str(p.relative_to(self.status)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in self.status.rglob("*")
            if p.is_file()
        }

    def rewritten(self, before: Mapping[str, tuple[int, int]]) -> set[str]:
        return {name for name, key in self.files().items() if before.get(name) != key}

    def doc(self, name: str) -> dict[str, Any]:
        return json.loads((self.status / "tasks" / f"{name}.json").read_text())  # type: ignore[no-any-return]

    def controller(self) -> dict[str, Any]:
        return json.loads((self.status / "controller.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def host(tmp_path: Path) -> Host:
    h = Host(tmp_path, ["alpha", "bravo", "charlie"])
    h.run()  # starts the pods
    h.run()  # sees them running
    assert {h.doc(n)["phase"] for n in ("alpha", "bravo", "charlie")} == {"Running"}
    return h


def test_a_pass_with_nothing_changed_rewrites_no_task_file(host: Host) -> None:
    before = host.files()
    host.run()
    assert host.rewritten(before) == {"controller.json", "rktctl.prom"}


@pytest.mark.parametrize("edit", ["label", "added"])
def test_one_file_changed_rewrites_only_that_tasks_document(host: Host, edit: str) -> None:
    before = host.files()
    if edit == "label":
        pods = set(host.runtime.pods)
        host.write("bravo", label="b")  # spec hash unchanged: the pod keeps running
        host.run()
        assert set(host.runtime.pods) == pods
    else:
        host.write("delta")
        host.run()
        host.run()  # sees it running
        assert host.doc("delta")["phase"] == "Running"
    touched = "tasks/bravo.json" if edit == "label" else "tasks/delta.json"
    assert host.rewritten(before) == {touched, "controller.json", "rktctl.prom"}


def test_the_directory_revision_is_in_controller_json_and_each_task_has_its_own(
    host: Host,
) -> None:
    revision = host.controller()["revision"]
    alpha = host.doc("alpha")["revision"]
    assert alpha == manifest.content_hash((host.desired / "alpha.yaml").read_bytes())
    host.write("bravo", label="b")
    host.run()
    assert host.controller()["revision"] != revision  # any file moves the directory's
    assert host.doc("alpha")["revision"] == alpha  # but not another task's
    assert host.doc("bravo")["revision"] == manifest.content_hash(
        (host.desired / "bravo.yaml").read_bytes()
    )


def test_a_spec_edit_and_a_removal_rewrite_only_their_tasks(host: Host) -> None:
    before = host.files()
    host.write("alpha", sleep=120)
    (host.desired / "charlie.yaml").unlink()
    host.run()  # replaces alpha's pod (stop-first: stop now), stops charlie's
    host.run()
    host.run()
    assert host.doc("alpha")["phase"] == "Running"
    assert not (host.status / "tasks/charlie.json").exists()
    assert host.rewritten(before) == {"tasks/alpha.json", "controller.json", "rktctl.prom"}
    prom = (host.status / "rktctl.prom").read_text()
    assert 'task="charlie"' not in prom  # no stale series of the removed task
    assert 'rktctl_task_phase{phase="Running",task="alpha"} 1.0' in prom
    assert 'rktctl_tasks{phase="Running"} 2.0' in prom


def test_a_memoised_document_still_sees_its_backoff_end() -> None:
    # Nothing changes between the builds but the clock: the backoff ends.
    web = task("web")
    restarts = {TaskName("web"): RestartState(not_before=200.0, spec_hash=web.spec_hash)}
    rep = report(want=desired(web), obs=observation(), restarts=restarts)
    docs, memo = build_task_statuses_memo(rep, previous={}, now=100.0, memo={})
    latest = dict(docs)
    for now in (150.0, 160.0):
        docs, memo = build_task_statuses_memo(rep, previous=latest, now=now, memo=memo)
        latest.update(docs)
    assert docs == {}  # settled: not built again
    assert memo["web"].summary["phase"] == latest["web"]["phase"] == "Backoff"
    docs, memo = build_task_statuses_memo(rep, previous=latest, now=201.0, memo=memo)
    assert docs["web"]["phase"] == memo["web"].summary["phase"] == "Pending"


def test_a_memoised_document_follows_its_pod(host: Host) -> None:
    # Only the observation changes: bravo's pod vanished (removed behind rktctl's back).
    gone = next(u for u, p in host.runtime.pods.items() if p["apps"][0]["name"] == "bravo")
    del host.runtime.pods[gone]
    before = host.files()
    host.run()  # starts a new pod of bravo
    assert host.doc("bravo")["pod"]["uuid"] != gone
    assert host.rewritten(before) == {"tasks/bravo.json", "controller.json", "rktctl.prom"}


def test_a_restarted_daemon_rewrites_no_unchanged_task_file(host: Host) -> None:
    before = host.files()
    host.writer = StatusWriter(host.status)  # a new daemon: nothing remembered but the files
    host.reconciler = Reconciler(host.reconciler.cfg, host.runtime, environ={})
    host.run()
    assert host.rewritten(before) == {"controller.json", "rktctl.prom"}


def _count_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import controller.statusfiles as statusfiles

    calls: list[int] = []
    real = statusfiles.build_task_statuses_memo

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(statusfiles, "build_task_statuses_memo", counted)
    return calls


def test_a_pass_with_the_inputs_of_a_settled_build_skips_the_build(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = _count_builds(monkeypatch)
    host.run()  # settles whatever the fixture's last pass left to settle
    before, prom = host.files(), (host.status / "rktctl.prom").read_text()
    host.run()
    host.run()
    assert len(builds) == 1  # the two no-change passes built nothing
    assert host.rewritten(before) == {"controller.json", "rktctl.prom"}
    assert 'rktctl_tasks{phase="Running"} 3.0' in prom
    assert (host.status / "rktctl.prom").read_text().count('phase="Running",task=') == 3
    # Any input moving builds again, and the documents follow it.
    host.write("bravo", label="b")
    host.run()
    assert len(builds) == 2 and host.rewritten(before) >= {"tasks/bravo.json"}


def test_a_backoff_ending_between_identical_passes_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the clock moves: the shortcut must still see a backoff end (`pass_inputs`)."""
    from controller.statusfiles import StatusWriter as Writer

    web = task("web")
    restarts = {TaskName("web"): RestartState(not_before=200.0, spec_hash=web.spec_hash)}
    rep = report(want=desired(web), obs=observation(), restarts=restarts)
    writer = Writer(tmp_path)
    builds = _count_builds(monkeypatch)
    for now in (100.0, 150.0, 160.0):
        writer.publish(rep, daemon=DAEMON, now=now)
    phase = json.loads((tmp_path / "tasks" / "web.json").read_text())["phase"]
    assert phase == "Backoff" and len(builds) == 2  # the third pass: settled, skipped
    writer.publish(rep, daemon=DAEMON, now=201.0)
    assert len(builds) == 3
    assert json.loads((tmp_path / "tasks" / "web.json").read_text())["phase"] == "Pending"
