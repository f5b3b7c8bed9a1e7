"""rktctl.prom as node_exporter reads it, parsed with prometheus-client's own parser."""

from __future__ import annotations

import stat
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from controller.controllerstatus import DaemonInfo
from controller.model import (
    DesiredState,
    Hold,
    HoldReason,
    Observation,
    Outcome,
    PassReport,
    PassResult,
    Plan,
    PodState,
    PodUUID,
    Reason,
    Remove,
    RestartState,
    Start,
    TaskName,
)
from controller.statusfiles import StatusWriter
from tests.factories import BASE_TIME, desired, invalid, observation, pod, task

NOW = float(BASE_TIME + 1000)
DAEMON = DaemonInfo(version="0.1.0", pid=1, started_at=NOW - 5, config_path=None,
                    resync_interval_s=30.0)  # fmt: skip
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(status_dir: Path) -> Samples:
    text = (status_dir / "rktctl.prom").read_text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def test_textfile_after_a_busy_pass(tmp_path: Path) -> None:
    web = task("web")
    crashed = PodUUID("c0ffee00-0000-4000-8000-000000000001")
    rep = PassReport(
        id="p1",
        trigger="file",
        started_at=NOW - 0.3,
        finished_at=NOW,
        result=PassResult.DEGRADED,
        desired=desired(web, task("api"), invalid("db", "bad"), ignored=["x~", ".y.swp"]),
        observation=observation(
            pod("api"), pod("web", PodState.EXITED, uuid=crashed, exit_code=3), pod("old")
        ),
        plan=Plan(holds=(Hold(reason=HoldReason.DELETION_GUARD, message="guard"),)),
        outcomes=(
            Outcome(
                action=Remove(
                    task=TaskName("web"), uuid=crashed, reason=Reason.EXITED, exit_code=3
                ),
                ok=True,
            ),
            Outcome(
                action=Start(task=TaskName("web"), spec_hash=web.spec_hash, reason=Reason.EXITED),
                ok=False,
                error_code="rkt_command_failed",
                message="rkt prepare exited 254",
            ),
        ),
        restarts={TaskName("web"): RestartState(restarts=2, last_exit_code=3, not_before=NOW + 40)},
    )
    writer = StatusWriter(tmp_path)
    writer.record_rkt_failure("prepare")
    writer.publish(rep, daemon=DAEMON, now=NOW + 0.5)
    assert stat.S_IMODE((tmp_path / "rktctl.prom").stat().st_mode) == 0o644

    found = samples(tmp_path)
    tasks = {p: value(found, "rktctl_tasks", phase=p) for p in
             ("Running", "Backoff", "Invalid", "Held", "Pending", "Starting")}  # fmt: skip
    # "old" is not desired but its pod runs; the guard holds its stop.
    assert tasks == {"Running": 1, "Backoff": 1, "Invalid": 1, "Held": 1, "Pending": 0,
                     "Starting": 0}  # fmt: skip
    assert value(found, "rktctl_task_phase", task="web", phase="Backoff") == 1
    assert value(found, "rktctl_task_restarts", task="web") == 2
    assert value(found, "rktctl_task_last_exit_code", task="web") == 3
    assert value(found, "rktctl_task_last_exit_code", task="api") is None
    assert value(found, "rktctl_rkt_command_failures_total", subcommand="prepare") == 1
    assert value(found, "rktctl_rkt_command_failures_total", subcommand="list") == 0
    assert value(found, "rktctl_actions_total", action="remove", result="ok") == 1
    assert value(found, "rktctl_actions_total", action="start", result="failed") == 1
    assert value(found, "rktctl_passes_total", result="degraded") == 1
    assert value(found, "rktctl_pass_duration_seconds_count") == 1
    assert value(found, "rktctl_pass_duration_seconds_bucket", le="0.5") == 1
    assert value(found, "rktctl_pass_duration_seconds_bucket", le="0.25") == 0
    assert value(found, "rktctl_last_successful_pass_timestamp_seconds") == NOW
    assert value(found, "rktctl_heartbeat_timestamp_seconds") == NOW + 0.5
    assert value(found, "rktctl_deletion_guard_held") == 1
    assert value(found, "rktctl_ignored_files") == 2
    assert value(found, "rktctl_up") == 1
    assert value(found, "rktctl_ready") == 1
    assert value(found, "rktctl_build_info", version="0.1.0") == 1


def test_series_of_gone_tasks_disappear_and_counters_accumulate(tmp_path: Path) -> None:
    writer = StatusWriter(tmp_path)

    def publish(
        want: DesiredState, obs: Observation | None, result: PassResult, at: float
    ) -> Samples:
        rep = PassReport(
            id="p",
            trigger="resync",
            started_at=at - 1,
            finished_at=at,
            result=result,
            desired=want,
            observation=obs,
        )
        writer.publish(rep, daemon=DAEMON, now=at)
        return samples(tmp_path)

    first = publish(desired(task("web")), observation(pod("web")), PassResult.OK, NOW)
    assert value(first, "rktctl_task_phase", task="web", phase="Running") == 1
    second = publish(desired(), observation(), PassResult.OK, NOW + 30)
    assert [k for k in second if ("task", "web") in k[1]] == []
    third = publish(desired(), None, PassResult.FAILED, NOW + 60)
    assert value(third, "rktctl_last_successful_pass_timestamp_seconds") == NOW + 30
    assert value(third, "rktctl_passes_total", result="ok") == 2
    assert value(third, "rktctl_passes_total", result="failed") == 1
    assert value(third, "rktctl_pass_duration_seconds_count") == 3
    assert value(third, "rktctl_ready") == 1  # stays 1 once reached


def test_not_ready_before_a_complete_observation(tmp_path: Path) -> None:
    rep = PassReport(id="p", trigger="startup", started_at=NOW - 1, finished_at=NOW,
                     result=PassResult.HELD, desired=desired(task("web")),
                     observation=observation(complete=False))  # fmt: skip
    writer = StatusWriter(tmp_path)
    writer.publish(rep, daemon=DAEMON, now=NOW)
    assert value(samples(tmp_path), "rktctl_ready") == 0


def test_label_values_are_escaped(tmp_path: Path) -> None:
    odd = 'we"ird\\name\nx'
    rep = PassReport(id="p", trigger="resync", started_at=NOW - 1, finished_at=NOW,
                     result=PassResult.OK, desired=desired(),
                     observation=observation(pod(odd)))  # fmt: skip
    StatusWriter(tmp_path).publish(rep, daemon=DAEMON, now=NOW)
    assert value(samples(tmp_path), "rktctl_task_phase", task=odd, phase="Stopping") == 1
