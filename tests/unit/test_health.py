"""spec.health: the check's timing and verdict on a fake clock, its manifest form and
spec hash, the planner's liveness restart and the Ready gate in status."""

from __future__ import annotations

import dataclasses

import pytest

from controller import health, probes
from controller.manifests import parse_manifest
from controller.manifests.spec import compute_spec_hash
from controller.model import (
    CheckKind,
    CheckResult,
    HealthCheck,
    HealthState,
    PodUUID,
    Reason,
    Remove,
    Restart,
    RestartPolicy,
    Stop,
)

CHECK = HealthCheck(kind=CheckKind.TCP, port="p", interval_s=5, start_period_s=10,
                    failure_threshold=3, success_threshold=2)  # fmt: skip
POD = PodUUID("0000-pod")


def _fail(at: float) -> CheckResult:
    return CheckResult(ok=False, at=at, duration_s=0.1, output="refused")


def _ok(at: float) -> CheckResult:
    return CheckResult(ok=True, at=at, duration_s=0.1, output="ok")


def test_first_check_is_due_at_start_then_every_interval_after_the_last() -> None:
    view = health.begin(POD, now=100)
    assert health.due_at(view, CHECK, started_at=100) == 100
    view = health.record(view, CHECK, _ok(101), started_at=100)
    assert health.due_at(view, CHECK, started_at=100) == 106


def test_failures_inside_start_period_do_not_count() -> None:
    view = health.begin(POD, now=0)
    for t in (1, 4, 9):
        view = health.record(view, CHECK, _fail(t), started_at=0)
    assert view.state == HealthState.STARTING
    assert view.live and view.consecutive_failures == 0
    assert view.last is not None and view.last.output == "refused"


def test_failure_threshold_after_start_period_makes_it_unhealthy_and_not_live() -> None:
    view = health.begin(POD, now=0)
    for t in (11, 16):
        view = health.record(view, CHECK, _fail(t), started_at=0)
    assert view.live and view.state == HealthState.STARTING
    view = health.record(view, CHECK, _fail(21), started_at=0)
    assert view.state == HealthState.UNHEALTHY and not view.live
    assert view.since == 21 and view.consecutive_failures == 3


def test_a_pod_found_not_live_keeps_the_failure_that_condemned_it() -> None:
    # While the pass stops it, its server goes away: those checks are no reason of its own.
    view = health.begin(POD, now=0)
    for t in (11, 16, 21):
        view = health.record(view, CHECK, _fail(t), started_at=0)
    condemned = view
    later = CheckResult(ok=False, at=26, duration_s=0.1, output="connection refused")
    assert health.record(condemned, CHECK, later, started_at=0) == condemned
    assert health.record(condemned, CHECK, _ok(31), started_at=0) == condemned


def test_success_threshold_makes_it_healthy_and_a_success_resets_failures() -> None:
    view = health.begin(POD, now=0)
    view = health.record(view, CHECK, _ok(1), started_at=0)
    assert view.state == HealthState.STARTING
    view = health.record(view, CHECK, _ok(6), started_at=0)
    assert view.state == HealthState.HEALTHY and view.since == 6
    view = health.record(view, CHECK, _fail(11), started_at=0)
    view = health.record(view, CHECK, _ok(16), started_at=0)
    assert view.consecutive_failures == 0 and view.state == HealthState.HEALTHY


def test_output_is_bounded_to_one_line_of_256_bytes() -> None:
    noisy = dataclasses.replace(_ok(1), output="é\x1b\n" * 500)
    view = health.record(health.begin(POD, now=0), CHECK, noisy, started_at=0)
    assert view.last is not None
    assert len(view.last.output.encode()) <= health.OUTPUT_MAX_BYTES
    assert "\n" not in view.last.output and "\x1b" not in view.last.output


def test_address_is_the_pod_ip_on_its_own_network_else_the_host() -> None:
    assert probes.address(("default:ip4=172.16.28.2",), 31000, 80) == ("172.16.28.2", 80)
    assert probes.address((), 31000, None) == ("127.0.0.1", 31000)


MANIFEST = """\
apiVersion: rktctl.io/v1
kind: Task
metadata: {name: web}
spec:
  config: {image: example.com/web, net: [host]}
  resources: {ports: {http: {}}}
HEALTH"""


def test_health_is_parsed_with_defaults_and_absent_health_keeps_the_old_hash() -> None:
    bare = parse_manifest(MANIFEST.replace("HEALTH", ""), source="w.yaml")
    assert bare.health is None
    spec = parse_manifest(MANIFEST.replace("HEALTH", "  health:\n    http: {port: http}\n"),
                          source="w.yaml")  # fmt: skip
    assert spec.health == HealthCheck(kind=CheckKind.HTTP, port="http")
    assert spec.spec_hash != bare.spec_hash
    assert compute_spec_hash(dataclasses.replace(spec, health=None)) == bare.spec_hash


@pytest.mark.parametrize(
    ("health_yaml", "message"),
    [
        ("    tcp: {port: nope}\n", "is not declared in spec.resources.ports"),
        ("    interval: 5s\n", "exactly one of http, tcp or exec"),
        ("    tcp: {port: http}\n    exec: {command: [x]}\n", "exactly one of"),
        ("    exec: {command: []}\n", "the command is empty"),
        ("    tcp: {port: http}\n    timeout: 0s\n", "longer than 0s"),
        ('    http: {port: http, expected_status: "300-200"}\n', "empty range"),
    ],
)
def test_bad_health_sections_are_refused(health_yaml: str, message: str) -> None:
    from controller.errors import ManifestError

    with pytest.raises(ManifestError, match=message):
        parse_manifest(MANIFEST.replace("HEALTH", "  health:\n" + health_yaml), source="w.yaml")


def test_the_planner_restarts_an_unhealthy_running_pod_and_nothing_else() -> None:
    from controller.model import DesiredState
    from controller.plan import plan
    from tests.factories import observation, pod, task

    spec = task("web")
    running = pod(task="web", spec_hash=spec.spec_hash)
    desired = DesiredState(tasks={spec.name: spec})
    obs = observation(running)
    assert plan(desired, obs, now=1000).actions == ()
    actions = plan(desired, obs, now=1000, unhealthy=frozenset({running.uuid})).actions
    assert actions == (
        Stop(task=spec.name, uuid=running.uuid, reason=Reason.UNHEALTHY),
        Remove(task=spec.name, uuid=running.uuid, reason=Reason.UNHEALTHY),
    )
    # Under restart policy never nothing would start again: the pod is left running.
    never = task("web", restart=Restart(policy=RestartPolicy.NEVER))
    running = pod(task="web", spec_hash=never.spec_hash)
    held = plan(DesiredState(tasks={never.name: never}), observation(running), now=1000,
                unhealthy=frozenset({running.uuid}))  # fmt: skip
    assert held.actions == ()


def test_status_is_ready_only_once_the_check_passes_and_says_why_not() -> None:
    from controller.model import HealthView, PassReport, PassResult, TaskName
    from controller.status import build_task_statuses
    from tests.factories import BASE_TIME, desired, observation, pod, task

    check = HealthCheck(kind=CheckKind.TCP, port="p")
    spec = task("web", health=check)
    running = pod("web", spec_hash=spec.spec_hash)
    now = float(BASE_TIME + 100)

    def doc(view: HealthView | None) -> dict[str, object]:
        rep = PassReport(
            id="x",
            trigger="t",
            started_at=now,
            finished_at=now,
            result=PassResult.OK,
            desired=desired(spec),
            observation=observation(running),
            health={TaskName("web"): view} if view else {},
        )
        return build_task_statuses(rep, previous={}, now=now)["web"]

    def ready(d: dict[str, object]) -> tuple[str, str]:
        cond = next(c for c in d["conditions"] if c["type"] == "Ready")  # type: ignore[attr-defined]
        return cond["status"], cond["reason"]

    unchecked = doc(None)
    assert unchecked["phase"] == "Running" and ready(unchecked) == ("False", "HealthChecking")
    assert unchecked["health"] is None
    view = health.begin(running.uuid, now=now)
    good = doc(health.record(view, check, _ok(now), started_at=now))
    assert ready(good) == ("True", "Running")
    assert good["health"]["state"] == "Healthy"  # type: ignore[index]
    bad = view
    for _ in range(3):
        bad = health.record(bad, check, _fail(now + 100), started_at=now)
    unhealthy = doc(bad)
    assert ready(unhealthy) == ("False", "Unhealthy")
    assert "refused" in str(unhealthy["message"])
    plain = task("plain")
    rep = PassReport(id="x", trigger="t", started_at=now, finished_at=now, result=PassResult.OK,
                     desired=desired(plain), observation=observation(pod("plain",
                     spec_hash=plain.spec_hash)))  # fmt: skip
    plain_doc = build_task_statuses(rep, previous={}, now=now)["plain"]
    assert "health" not in plain_doc
    assert next(c for c in plain_doc["conditions"] if c["type"] == "Ready")["status"] == "True"
