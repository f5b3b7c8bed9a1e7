"""Where a finished pod's output is read from (shell), and when a pass captures it.

The detached launcher's per-pod log file and the systemd-run launcher's journal (a stand-in
`journalctl` script here), then `Reconciler` on the fake rkt: a pod seen finished has its
exit code and output captured in the pass that removes it, and `settle` (reconcile --once)
turns a start whose pod died at once into a failure, unless it was a job that did its work.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from controller.config import Config
from controller.launchers import DetachedLauncher, SystemdRunLauncher
from controller.model import PassResult, PodUUID, Reason, Remove, TaskName
from controller.reconcile import Reconciler
from controller.runtime import RktCli, pod_log_path
from tests.e2e.harness import manifest_yaml, wait_for
from tests.factories import task
from tests.fakes import fakerkt
from tests.integration.conftest import fake_rkt_run

UUID = PodUUID("0123abcd-0000-4000-8000-000000000001")


def test_detached_output_is_the_end_of_the_pod_log(tmp_path: Path) -> None:
    log = tmp_path / "web-0123abcd.log"
    log.write_bytes(b"x" * 5000 + b"\nthe end\n")
    out = DetachedLauncher(env={}).output(uuid=UUID, task=TaskName("web"), log_path=log)
    assert (len(out.tail), out.truncated, out.location, out.error) == (2048, True, str(log), None)
    assert out.tail.endswith(b"\nthe end\n")

    log.write_bytes(b"short\n")
    out = DetachedLauncher(env={}).output(uuid=UUID, task=TaskName("web"), log_path=log)
    assert (out.tail, out.truncated) == (b"short\n", False)


def test_an_unreadable_log_is_reported_not_raised(tmp_path: Path) -> None:
    log = tmp_path / "gone.log"
    out = DetachedLauncher(env={}).output(uuid=UUID, task=TaskName("web"), log_path=log)
    assert (out.tail, out.location) == (b"", str(log))
    assert out.error is not None and str(log) in out.error


def test_rkt_cli_reads_the_log_the_detached_launcher_writes(fake_config: Config) -> None:
    path = pod_log_path(fake_config, "web", UUID)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"boom\n")
    out = RktCli(fake_config).pod_output(TaskName("web"), UUID)
    assert (out.tail, out.location) == (b"boom\n", str(path))


def _script(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_systemd_run_output_comes_from_the_unit_journal(tmp_path: Path) -> None:
    args = tmp_path / "args"
    journalctl = _script(tmp_path / "journalctl", f'echo "$@" > {args}; echo boom')
    launcher = SystemdRunLauncher(env={"PATH": "/usr/bin:/bin"}, journalctl=journalctl)
    out = launcher.output(uuid=UUID, task=TaskName("web"), log_path=tmp_path / "unused")
    assert (out.tail, out.error) == (b"boom\n", None)
    assert out.location == f"{journalctl} --unit=rktctl-web-0123abcd.service"
    assert args.read_text().split() == [
        "--unit=rktctl-web-0123abcd.service",
        "--lines=20",
        "--output=cat",
        "--no-pager",
        "--quiet",
    ]


def test_a_failing_journalctl_is_reported_not_raised(tmp_path: Path) -> None:
    journalctl = _script(tmp_path / "journalctl", "echo 'no journal' >&2; exit 1")
    launcher = SystemdRunLauncher(env={"PATH": "/usr/bin:/bin"}, journalctl=journalctl)
    out = launcher.output(uuid=UUID, task=TaskName("web"), log_path=tmp_path / "unused")
    assert out.tail == b""
    assert out.error is not None and "no journal" in out.error


# --- the reconciler on the fake ------------------------------------------------------------


@pytest.fixture
def cfg(make_config: Callable[..., Config], tmp_path: Path) -> Config:
    (tmp_path / "desired").mkdir()
    return make_config(gc_interval_s=0.0)


def _write(cfg: Config, name: str, text: str) -> None:
    (Path(cfg.desired_dir) / f"{name}.yaml").write_text(text)


def _exited(rkt_dir: Path) -> bool:
    pods = json.loads(fake_rkt_run(rkt_dir, "list", "--format=json").stdout) or []
    return any(p["state"] == "exited" for p in pods)


def test_a_pass_captures_a_crash_before_it_removes_the_pod(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    crash = manifest_yaml("crashy", command="/bin/sh", args=("-c", "echo boom >&2; exit 3"))
    _write(cfg, "crashy", crash)
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    first = reconciler.run_pass("startup")
    assert first.terminations == {}
    uuid = first.outcomes[0].pod_uuid
    wait_for(lambda: _exited(rkt_dir), what="the crash")
    with capture_logs() as logs:
        report = reconciler.run_pass("retry")
    assert report.plan.actions == (
        Remove(task=TaskName("crashy"), uuid=uuid, reason=Reason.EXITED, exit_code=3),  # type: ignore[arg-type]
    )
    term = report.terminations[TaskName("crashy")]
    assert (term.uuid, term.exit_code, term.started) == (uuid, 3, True)
    assert b"boom" in term.output.tail
    assert term.output.location == str(pod_log_path(cfg, "crashy", uuid))  # type: ignore[arg-type]
    exited = [e for e in logs if e["event"] == "pod_exited"]
    assert exited == [
        {
            "event": "pod_exited",
            "log_level": "warning",
            "task": "crashy",
            "pod_uuid": uuid,
            "exit_code": 3,
            "path": term.output.location,
            "error": None,
        }
    ]


def test_a_dry_run_captures_nothing(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    _write(cfg, "crashy", manifest_yaml("crashy", command="/bin/sh", args=("-c", "exit 3")))
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    reconciler.run_pass("startup")
    wait_for(lambda: _exited(rkt_dir), what="the crash")
    assert reconciler.run_pass("startup", dry_run=True).terminations == {}


@pytest.mark.parametrize(
    ("script", "policy", "result", "ok"),
    [
        pytest.param("echo boom >&2; exit 3", "always", PassResult.DEGRADED, False, id="crash"),
        pytest.param("exit 0", "always", PassResult.DEGRADED, False, id="service-ended"),
        pytest.param("exit 0", "never", PassResult.OK, True, id="job-done"),
        pytest.param("exit 3", "on-failure", PassResult.DEGRADED, False, id="job-failed"),
    ],
)
def test_settle_turns_a_start_whose_pod_died_into_a_failure(
    cfg: Config,
    make_rkt_cli: Callable[..., RktCli],
    script: str,
    policy: str,
    result: PassResult,
    ok: bool,
) -> None:
    spec = f"  restart: {{policy: {policy}}}\n"
    _write(cfg, "t", manifest_yaml("t", command="/bin/sh", args=("-c", script), extra_spec=spec))
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    report = reconciler.run_pass("startup")
    assert report.result == PassResult.OK
    settled = reconciler.settle(report, window_s=10.0)
    (outcome,) = settled.outcomes
    assert (settled.result, outcome.ok) == (result, ok)
    term = settled.terminations[TaskName("t")]
    assert (term.uuid, term.exited_within_s) == (outcome.pod_uuid, 10.0)
    if not ok:
        assert outcome.error_code == "pod_exited"
        assert outcome.message.startswith(f"pod {term.uuid[:8]} exited with code ")


def test_settle_leaves_a_running_pod_and_a_zero_window_alone(
    cfg: Config, make_rkt_cli: Callable[..., RktCli]
) -> None:
    _write(cfg, "web", manifest_yaml("web"))
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    report = reconciler.run_pass("startup")
    assert reconciler.settle(report, window_s=0) is report
    assert reconciler.settle(report, window_s=0.5) == report


def test_a_finished_pod_that_stays_is_captured_once(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    """An invalid manifest leaves its task's exited pod in place: read and log it once."""
    crash = manifest_yaml("crashy", command="/bin/sh", args=("-c", "exit 3"))
    _write(cfg, "crashy", crash)
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    reconciler.run_pass("startup")
    wait_for(lambda: _exited(rkt_dir), what="the crash")
    _write(cfg, "crashy", crash.replace("image:", "imagee:"))
    first = reconciler.run_pass("file")
    assert first.plan.actions == ()
    assert list(first.terminations) == ["crashy"]
    with capture_logs() as logs:
        second = reconciler.run_pass("resync")
    assert second.terminations == {}
    assert not [e for e in logs if e["event"] == "pod_exited"]


def test_a_pod_that_ran_and_ended_before_the_launcher_was_looked_at_is_no_failed_launch(
    rkt_cli: RktCli, rkt_dir: Path
) -> None:
    """The race `reconcile --once` hit under load: `rkt status` said prepared, then the app
    ran and exited 3 and its `rkt run-prepared` too, all before rktctl looked at the
    launcher. The pod ran: rkt's record of it decides, not the order of the polls."""
    spec = task("crashy", command="/bin/sh", args=("-c", "exit 3"))
    uuid = rkt_cli.prepare(spec)
    prepared = fake_rkt_run(rkt_dir, "status", "--format=json", uuid).stdout
    # The first status (the check before launching) is real; the second answers with the
    # prepared snapshot, late enough for the pod and its launcher to be gone already.
    fakerkt.add_fault(
        rkt_dir, cmd="status", match=uuid, skip=1, times=1, delay_s=1.0, stdout=prepared
    )
    rkt_cli.run_prepared(spec, uuid)  # returns: the pod ran
    assert rkt_cli.status(uuid).exit_code == 3  # type: ignore[union-attr]
