"""Health-gated replacement (`spec.update`): the pure decision and the planner's part."""

from __future__ import annotations

import dataclasses

import pytest

from controller import rollout
from controller.errors import ManifestError
from controller.healthstatus import health_gate
from controller.manifests import parse_manifest
from controller.model import (
    CheckKind,
    HealthCheck,
    HealthState,
    HealthView,
    Hold,
    HoldReason,
    PodState,
    PodUUID,
    Reason,
    SpecHash,
    Start,
    Stop,
    TaskName,
    UpdateOrder,
)
from controller.phase import Facts, TaskPhase
from controller.phase import decide as decide_phase
from controller.plan import plan
from tests.factories import desired, observation, pod, task

NOW = 10_000.0
CHECK = HealthCheck(kind=CheckKind.EXEC, command=("true",))
OLD = task("web", health=CHECK, env={"V": "1"}, update_order=UpdateOrder.START_FIRST,
           min_healthy_time_s=10, healthy_deadline_s=60)  # fmt: skip
NEW = dataclasses.replace(OLD, env={"V": "2"}, spec_hash=SpecHash("sha256:new"))
HEALTHY = rollout.Record(healthy_manifest_hash=OLD.spec_hash, healthy_hash=OLD.spec_hash,
                         healthy_manifest="text of v1", healthy_source="web.yaml")  # fmt: skip


def _view(uuid: PodUUID, state: HealthState, since: float) -> HealthView:
    return HealthView(pod=uuid, state=state, since=since)


def test_the_old_pod_serves_while_the_new_spec_has_not_been_healthy_long_enough() -> None:
    old, new = pod(spec_hash=OLD.spec_hash), pod(spec_hash=NEW.spec_hash)
    view = _view(new.uuid, HealthState.HEALTHY, NOW - 4)
    d = rollout.decide(NEW, NEW.spec_hash, HEALTHY, [old, new], view, now=NOW)
    assert d.serving == old.uuid
    assert d.failed is None and not d.promote
    assert d.record.rollout_manifest_hash == NEW.spec_hash
    assert d.record.rollout_since == NOW
    assert d.requeue_after == 6  # min_healthy_time left
    the_plan = plan(desired(NEW), observation(old, new), now=NOW, serving={"web": old.uuid})
    assert the_plan.actions == ()


def test_start_first_with_a_serving_pod_starts_the_new_spec_and_stops_nothing() -> None:
    old = pod(spec_hash=OLD.spec_hash)
    the_plan = plan(desired(NEW), observation(old), now=NOW, serving={"web": old.uuid})
    assert [type(a) for a in the_plan.actions] == [Start]


def test_healthy_for_min_healthy_time_promotes_and_the_old_pod_is_then_stopped() -> None:
    old, new = pod(spec_hash=OLD.spec_hash), pod(spec_hash=NEW.spec_hash)
    rec = dataclasses.replace(HEALTHY, rollout_manifest_hash=NEW.spec_hash, rollout_since=NOW - 30)
    view = _view(new.uuid, HealthState.HEALTHY, NOW - 10)
    d = rollout.decide(NEW, NEW.spec_hash, rec, [old, new], view, now=NOW)
    assert d.promote and d.serving is None
    assert d.record.healthy_hash == NEW.spec_hash and not d.record.rollout_manifest_hash
    the_plan = plan(desired(NEW), observation(old, new), now=NOW)
    stops = [a for a in the_plan.actions if isinstance(a, Stop)]
    assert [(s.uuid, s.reason) for s in stops] == [(old.uuid, Reason.SPEC_CHANGED)]


def test_past_the_deadline_the_rollout_fails_naming_the_spec_and_why() -> None:
    old, new = pod(spec_hash=OLD.spec_hash), pod(spec_hash=NEW.spec_hash)
    rec = dataclasses.replace(HEALTHY, rollout_manifest_hash=NEW.spec_hash, rollout_since=NOW - 61)
    view = _view(new.uuid, HealthState.UNHEALTHY, NOW - 50)
    d = rollout.decide(NEW, NEW.spec_hash, rec, [old, new], view, now=NOW)
    assert d.failed is not None and "not Healthy for 10s within 60s" in d.failed
    assert d.record.failed_manifest_hash == NEW.spec_hash
    assert d.record.failed_hash == NEW.spec_hash
    assert d.serving == old.uuid  # never stopped on the way to the revert
    assert rollout.reverting(NEW, NEW.spec_hash, d.record)
    assert not rollout.reverting(dataclasses.replace(NEW, auto_revert=False), NEW.spec_hash,
                                 d.record)  # fmt: skip
    assert "rollout of spec sha256:new failed" in rollout.message(d.record, reverted=True)


def test_a_changed_manifest_after_a_failure_is_rolled_out_again() -> None:
    failed = dataclasses.replace(HEALTHY, failed_manifest_hash=NEW.spec_hash)
    newer = dataclasses.replace(NEW, spec_hash=SpecHash("sha256:newer"))
    assert not rollout.reverting(newer, newer.spec_hash, failed)
    d = rollout.decide(newer, newer.spec_hash, failed, [pod(spec_hash=OLD.spec_hash)], None,
                       now=NOW)  # fmt: skip
    assert d.record.rollout_manifest_hash == newer.spec_hash and d.failed is None


def test_a_task_that_never_was_healthy_has_no_rollout_to_fail() -> None:
    d = rollout.decide(NEW, NEW.spec_hash, None, [pod(spec_hash=NEW.spec_hash)], None,
                       now=NOW + 10_000)  # fmt: skip
    assert d.record == rollout.Record() and d.failed is None and d.serving is None


def test_a_restart_mid_rollout_keeps_the_rollout_start_from_the_record() -> None:
    rec = dataclasses.replace(HEALTHY, rollout_manifest_hash=NEW.spec_hash, rollout_since=NOW - 5)
    loaded = rollout.load(rollout.dump({"web": rec}))
    assert loaded == {"web": rec}
    d = rollout.decide(NEW, NEW.spec_hash, loaded["web"], [], None, now=NOW)
    assert d.record.rollout_since == NOW - 5 and d.requeue_after == 55


def test_stop_first_keeps_no_pod_serving() -> None:
    stop_first = dataclasses.replace(NEW, update_order=UpdateOrder.STOP_FIRST)
    old = pod(spec_hash=OLD.spec_hash)
    d = rollout.decide(stop_first, NEW.spec_hash, HEALTHY, [old], None, now=NOW)
    assert d.serving is None


def test_a_pod_in_the_prepared_state_is_not_serving() -> None:
    old = pod(spec_hash=OLD.spec_hash, state=PodState.PREPARED)
    assert rollout.decide(NEW, NEW.spec_hash, HEALTHY, [old], None, now=NOW).serving is None


_MANIFEST = """apiVersion: rktctl.io/v1
kind: Task
metadata: {name: web}
spec:
  config: {image: example.com/web:1.0}
  health: {exec: {command: ["true"]}}
"""


def test_update_keys_parse_with_safe_defaults_and_do_not_move_the_hash() -> None:
    plain = parse_manifest(_MANIFEST, source="web.yaml")
    assert (plain.min_healthy_time_s, plain.healthy_deadline_s, plain.auto_revert) == (
        10.0, 300.0, True)  # fmt: skip
    tight = parse_manifest(
        _MANIFEST + "  update: {min_healthy_time: 1s, healthy_deadline: 8s, auto_revert: false}\n",
        source="web.yaml",
    )
    assert (tight.min_healthy_time_s, tight.healthy_deadline_s, tight.auto_revert) == (
        1.0, 8.0, False)  # fmt: skip
    assert tight.spec_hash == plain.spec_hash


def test_a_deadline_not_longer_than_min_healthy_time_is_refused() -> None:
    with pytest.raises(ManifestError, match="must be longer than min_healthy_time"):
        parse_manifest(
            _MANIFEST + "  update: {min_healthy_time: 30s, healthy_deadline: 30s}\n",
            source="web.yaml",
        )


def test_a_failed_rollout_is_stalled_while_the_old_spec_runs_and_may_be_ready() -> None:
    running = pod(spec_hash=OLD.spec_hash)
    hold = Hold(reason=HoldReason.ROLLOUT_FAILED, task=TaskName("web"), message="rollout of X")
    facts = Facts(name=TaskName("web"), entry=OLD, duplicate_sources=(), pods=(running,),
                  observed=True, outcomes=(), holds=(hold,), global_holds=(), restart=None,
                  blocked=None, error=None, prior_error=None, termination=None,
                  now=NOW)  # fmt: skip
    verdict = decide_phase(facts)
    assert (verdict.phase, verdict.reason, verdict.stalled) == (
        TaskPhase.RUNNING, "RolloutFailed", "True")  # fmt: skip
    assert verdict.message.startswith("rollout of X; pod ")
    checking = health_gate(verdict, OLD, None)
    assert (checking.reason, checking.ready) == ("RolloutFailed", "False")
    view = _view(running.uuid, HealthState.HEALTHY, NOW - 1)
    assert health_gate(verdict, OLD, view).ready == "True"
