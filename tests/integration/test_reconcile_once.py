"""One pass at a time, in-process: Reconciler + RktCli + the fake rkt, and the CLI around them."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from controller.actuate import apply
from controller.cli import main
from controller.config import Config
from controller.model import (
    Plan,
    PodUUID,
    Reason,
    Remove,
    RunPrepared,
    Start,
    Stop,
    TaskName,
    TaskSpec,
)
from controller.reconcile import Reconciler
from controller.runtime import RktCli
from tests.e2e.harness import manifest_yaml
from tests.factories import task
from tests.fakes import fakerkt
from tests.integration.conftest import fake_rkt_run, wait_for_an_exited_pod
from tests.statuscheck import assert_valid_status_dir


@pytest.fixture
def cfg(make_config: Callable[..., Config], tmp_path: Path) -> Config:
    (tmp_path / "desired").mkdir()
    return make_config(gc_interval_s=0.0)


def _write(cfg: Config, name: str, text: str) -> None:
    (Path(cfg.desired_dir) / f"{name}.yaml").write_text(text)


def _running(rkt_dir: Path) -> dict[str, str]:
    """task -> uuid of running pods, straight from the fake rkt."""
    out = fake_rkt_run(rkt_dir, "list", "--format=json")
    pods = json.loads(out.stdout) or []
    return {
        p["apps"][0].get("user_annotations", {}).get("rktctl.io/task", "?"): p["name"]
        for p in pods
        if p["state"] == "running"
    }


def _prepares(rkt_dir: Path) -> int:
    return len(fakerkt.calls(rkt_dir, "prepare"))


def test_a_pass_starts_missing_tasks_and_the_next_pass_does_nothing(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    _write(cfg, "web", manifest_yaml("web"))
    _write(cfg, "db", manifest_yaml("db"))
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    with capture_logs() as logs:
        first = reconciler.run_pass("startup")
    assert [(type(a).__name__, a.task, a.reason) for a in first.plan.actions] == [
        ("Start", "db", Reason.MISSING),
        ("Start", "web", Reason.MISSING),
    ]
    assert all(o.ok for o in first.outcomes)
    assert set(_running(rkt_dir)) == {"web", "db"}
    started = [e for e in logs if e["event"] == "pod_started"]
    assert {e["task"] for e in started} == {"web", "db"}
    assert all("env" not in e for e in started)

    second = reconciler.run_pass("resync")
    assert second.plan.actions == ()
    assert _prepares(rkt_dir) == 2


def test_dry_run_plans_but_never_calls_rkt_to_act(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    _write(cfg, "web", manifest_yaml("web"))
    report = Reconciler(cfg, make_rkt_cli(cfg)).run_pass("startup", dry_run=True)
    assert [a.task for a in report.plan.actions] == ["web"]
    assert report.outcomes == ()
    assert _prepares(rkt_dir) == 0


def test_invalid_edit_keeps_the_last_good_pod_running(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    _write(cfg, "web", manifest_yaml("web"))
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    reconciler.run_pass("startup")
    before = _running(rkt_dir)
    _write(cfg, "web", manifest_yaml("web").replace("image:", "imagee:"))
    with capture_logs() as logs:
        report = reconciler.run_pass("file")
        reconciler.run_pass("resync")
    assert report.plan.actions == ()
    assert _running(rkt_dir) == before
    warnings = [e for e in logs if e["event"] == "manifest_invalid"]
    assert len(warnings) == 1, "an invalid manifest is reported once per content, not per pass"
    assert "imagee" in json.dumps(warnings[0]["errors"])


def test_removed_manifest_stops_and_removes_only_its_pod(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    _write(cfg, "web", manifest_yaml("web"))
    _write(cfg, "db", manifest_yaml("db"))
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    reconciler.run_pass("startup")
    web_uuid = _running(rkt_dir)["web"]
    (Path(cfg.desired_dir) / "web.yaml").unlink()
    report = reconciler.run_pass("file")
    assert [(type(a).__name__, a.reason) for a in report.plan.actions] == [
        ("Stop", Reason.NOT_DESIRED),
        ("Remove", Reason.NOT_DESIRED),
    ]
    assert all(o.ok for o in report.outcomes)
    assert set(_running(rkt_dir)) == {"db"}
    status = fake_rkt_run(rkt_dir, "status", web_uuid)
    assert "no matches found" in status.stderr


def test_emptied_desired_dir_is_held_by_the_deletion_guard(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    _write(cfg, "web", manifest_yaml("web"))
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    reconciler.run_pass("startup")
    (Path(cfg.desired_dir) / "web.yaml").unlink()
    report = reconciler.run_pass("file")
    assert report.plan.actions == ()
    assert [h.reason for h in report.plan.holds] == ["deletion_guard"]
    assert set(_running(rkt_dir)) == {"web"}

    forced = Reconciler(replace(cfg, allow_empty=True), make_rkt_cli(cfg)).run_pass("file")
    assert [type(a).__name__ for a in forced.plan.actions] == ["Stop", "Remove"]
    assert _running(rkt_dir) == {}


def test_failed_prepare_backs_off_the_task_and_not_the_others(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    fakerkt.add_fault(
        rkt_dir, cmd="prepare", match="task=web", exit=254, stderr="prepare: injected\n", times=1
    )
    _write(cfg, "web", manifest_yaml("web"))
    _write(cfg, "db", manifest_yaml("db"))
    now = [1_000_000.0]
    reconciler = Reconciler(cfg, make_rkt_cli(cfg), clock=lambda: now[0])
    report = reconciler.run_pass("startup")
    failed = [o for o in report.outcomes if not o.ok]
    assert [(o.action.task, o.error_code) for o in failed] == [("web", "rkt_command_failed")]
    assert set(_running(rkt_dir)) == {"db"}
    assert report.restarts[TaskName("web")].not_before == pytest.approx(now[0] + 1.0, abs=0.01)

    held = reconciler.run_pass("retry")  # still within the backoff
    assert held.plan.actions == ()
    now[0] += 1.5
    retried = reconciler.run_pass("retry")
    assert [a.task for a in retried.plan.actions] == ["web"]
    assert set(_running(rkt_dir)) == {"web", "db"}


def test_restart_bookkeeping_survives_a_new_reconciler(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    spec = "  restart: {policy: always, initial_delay: 1m, max_delay: 5m}\n"
    _write(
        cfg,
        "crashy",
        manifest_yaml("crashy", command="/bin/sh", args=("-c", "exit 3"), extra_spec=spec),
    )
    first = Reconciler(cfg, make_rkt_cli(cfg))
    first.run_pass("startup")
    wait_for_an_exited_pod(rkt_dir)  # the app exits at once; wait until rkt says so
    removed = first.run_pass("retry")
    assert [(type(a).__name__, a.reason) for a in removed.plan.actions] == [
        ("Remove", Reason.EXITED)
    ]
    assert removed.plan.actions[0].exit_code == 3  # type: ignore[union-attr]
    state = removed.restarts[TaskName("crashy")]
    assert (state.restarts, state.last_exit_code) == (1, 3)

    again = Reconciler(cfg, make_rkt_cli(cfg)).run_pass("startup")
    assert again.plan.actions == ()
    assert [h.reason for h in again.plan.holds] == ["backoff"]


class RecordingRuntime:
    """A Runtime test double that records calls and fails on request (not a mock of rktctl)."""

    def __init__(self, fail: Mapping[str, str] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = dict(fail or {})

    def _call(self, verb: str, target: str) -> None:
        self.calls.append((verb, target))
        if self.fail.get(target) == verb:
            from controller.errors import RktCommandFailed

            raise RktCommandFailed(["rkt", verb, target], 254, f"{verb}: injected")

    def prepare(self, spec: TaskSpec, *, extra_env: Any = None, host_ports: Any = None) -> PodUUID:
        self._call("prepare", spec.name)
        return PodUUID(f"uuid-{spec.name}")

    def run_prepared(self, spec: TaskSpec, uuid: PodUUID, *, just_prepared: bool = False) -> None:
        self._call("run_prepared", uuid)

    def stop(self, uuid: PodUUID, *, kill_timeout_s: float) -> None:
        self._call("stop", uuid)

    def remove(self, uuid: PodUUID) -> None:
        self._call("remove", uuid)


def test_apply_refuses_pods_it_does_not_own_and_isolates_task_failures() -> None:
    web, db = task("web"), task("db")
    plan = Plan(
        actions=(
            Stop(task=TaskName("db"), uuid=PodUUID("old-db"), reason=Reason.SPEC_CHANGED),
            Remove(task=TaskName("db"), uuid=PodUUID("old-db"), reason=Reason.SPEC_CHANGED),
            Start(task=TaskName("db"), spec_hash=db.spec_hash, reason=Reason.SPEC_CHANGED),
            RunPrepared(task=TaskName("web"), uuid=PodUUID("foreign"), reason=Reason.MISSING),
        )
    )
    runtime = RecordingRuntime(fail={"old-db": "stop"})
    outcomes = apply(
        plan, runtime, specs={web.name: web, db.name: db}, owned=frozenset({PodUUID("old-db")})
    )
    assert [(o.ok, o.skipped, o.error_code) for o in outcomes] == [
        (False, False, "rkt_command_failed"),
        (False, True, None),
        (False, True, None),
        (False, False, "not_owned"),
    ]
    assert runtime.calls == [("stop", "old-db")]


def test_cli_plan_reconcile_and_status(
    cfg: Config, tmp_path: Path, rkt_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(cfg, "web", manifest_yaml("web", env={"SECRET": "hunter2"}))
    config = tmp_path / "config.toml"
    config.write_text(
        "\n".join(
            f"{k} = {json.dumps(v)}"
            for k, v in {
                "desired_dir": cfg.desired_dir,
                "status_dir": cfg.status_dir,
                "state_dir": cfg.state_dir,
                "rkt": cfg.rkt,
                "rkt_dir": cfg.rkt_dir,
                "rkt_local_config": cfg.rkt_local_config,
                "log_level": "error",
            }.items()
        )
        + "\n"
    )
    assert main(["plan", "--config", str(config), "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert [(s["task"], s["action"], s["reason"]) for s in doc["actions"]] == [
        ("web", "start", "missing")
    ]
    words = [next(w for w in a[1:] if not w.startswith("-")) for a in doc["actions"][0]["argv"]]
    assert words == ["fetch", "prepare", "run-prepared"]  # the fetch phase comes first
    fetch, prepare = doc["actions"][0]["argv"][:2]
    assert fetch[-2] == "--pull-policy=new"
    assert "--set-env=SECRET=<redacted>" in prepare
    assert prepare[prepare.index("--pull-policy=never") + 1] == "<image-id>"
    assert "hunter2" not in json.dumps(doc)

    assert main(["reconcile", "--once", "--config", str(config)]) == 0
    assert "web: start (missing)" in capsys.readouterr().out
    assert set(_running(rkt_dir)) == {"web"}
    assert main(["plan", "--config", str(config)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert_valid_status_dir(Path(cfg.status_dir))
    assert main(["status", "--status-dir", cfg.status_dir, "web"]) == 0
    # The pass observed before it acted: the pod it just launched is reported as Starting.
    assert json.loads(capsys.readouterr().out)["phase"] == "Starting"
    assert main(["reconcile", "--once", "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["status", "--status-dir", cfg.status_dir, "web"]) == 0
    assert json.loads(capsys.readouterr().out)["phase"] == "Running"


@pytest.mark.parametrize("command", ["run", "plan", "reconcile --once"])
def test_a_bad_config_exits_78_without_a_traceback(tmp_path: Path, command: str) -> None:
    import subprocess
    import sys

    config = tmp_path / "config.toml"
    config.write_text('launcher = "docker"\nresync_interval = 5\n')
    result = subprocess.run(
        [sys.executable, "-m", "controller", *command.split(), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 78
    assert "launcher: 'docker' is not one of detached, systemd-run" in result.stderr
    assert "did you mean 'resync_interval_s'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_fifo_or_unreadable_manifest_never_blocks_and_stops_nothing(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    """A FIFO named like a manifest would block a naive read forever; it is an invalid
    manifest of unknown task instead, so no pod that might be its task is stopped."""
    import os

    _write(cfg, "web", manifest_yaml("web"))
    _write(cfg, "db", manifest_yaml("db"))
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    reconciler.run_pass("startup")
    web_file = Path(cfg.desired_dir) / "web.yaml"
    web_file.unlink()
    os.mkfifo(web_file)
    report = reconciler.run_pass("file")
    assert report.plan.actions == ()
    assert [i.source for i in report.desired.unnamed_invalid] == [str(web_file)]
    assert "not a regular file" in report.desired.unnamed_invalid[0].messages[0]
    assert set(_running(rkt_dir)) == {"web", "db"}
    web_file.unlink()
    _write(cfg, "web", manifest_yaml("web"))
    assert reconciler.run_pass("file").plan.actions == ()
