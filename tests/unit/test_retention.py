"""Retention (controller/retention.py): each task keeps its newest exited pods.

The planner still plans the Remove of an exited pod (so the crash-loop bookkeeping
follows it); `retain` turns it into a retention when the pod is among the task's
newest `keep`, prunes retained pods past that, and `split` hides retained pods from
the planner so a kept pod is never counted twice.
"""

from __future__ import annotations

from controller.model import Plan, PodState, Reason, Remove, Start, TaskName
from controller.plan import plan
from controller.retention import retain, split
from tests.factories import BASE_TIME, desired, observation, pod, task

NOW = float(BASE_TIME + 1000)
WEB = task("web")


def exited(n: int, **kw: object) -> object:
    return pod("web", PodState.EXITED, spec_hash=WEB.spec_hash, exit_code=1,
               started_at=BASE_TIME + n, created_at=BASE_TIME + n, **kw)  # fmt: skip


def test_an_exit_is_retained_instead_of_removed_and_hidden_from_the_next_plan() -> None:
    want = desired(WEB)
    dead = exited(1)
    obs = observation(dead)  # type: ignore[arg-type]
    raw = plan(want, obs, now=NOW)
    assert [type(a) for a in raw.actions] == [Remove]
    out, kept = retain(raw, obs, {}, want, keep=2, frozen=lambda t: False)
    assert out.actions == () and [a.uuid for a in kept] == [dead.uuid]  # type: ignore[attr-defined]
    seen, by_task = split(obs, frozenset({dead.uuid}))  # type: ignore[attr-defined]
    assert seen.pods == () and by_task == {TaskName("web"): (dead,)}
    # the next pass plans a start (restart), not a second exit
    assert [type(a) for a in plan(want, seen, now=NOW).actions] == [Start]


def test_the_oldest_retained_pod_is_pruned_past_keep() -> None:
    want = desired(WEB)
    old1, old2, new = exited(1), exited(2), exited(3)
    obs = observation(old1, old2, new)  # type: ignore[arg-type]
    seen, by_task = split(obs, frozenset({old1.uuid, old2.uuid}))  # type: ignore[attr-defined]
    raw = plan(want, seen, now=NOW)
    out, kept = retain(raw, seen, by_task, want, keep=2, frozen=lambda t: False)
    assert [a.uuid for a in kept] == [new.uuid]  # type: ignore[attr-defined]
    assert out.actions == (
        Remove(task=TaskName("web"), uuid=old1.uuid, reason=Reason.PRUNED, exit_code=1),  # type: ignore[attr-defined]
    )


def test_keep_zero_removes_as_before() -> None:
    want = desired(WEB)
    obs = observation(exited(1))  # type: ignore[arg-type]
    raw = plan(want, obs, now=NOW)
    assert retain(raw, obs, {}, want, keep=0, frozen=lambda t: False) == (raw, ())


def test_a_task_no_manifest_declares_keeps_nothing_unless_the_desired_dir_is_untrusted() -> None:
    dead = exited(1)
    obs = observation(dead)  # type: ignore[arg-type]
    seen, by_task = split(obs, frozenset({dead.uuid}))  # type: ignore[attr-defined]
    other = desired(task("db"))
    out, _ = retain(Plan(), seen, by_task, other, keep=2, frozen=lambda t: False)
    assert [(a.uuid, a.reason) for a in out.actions] == [(dead.uuid, Reason.PRUNED)]  # type: ignore[attr-defined]
    # an empty desired dir: the deletion guard's case, nothing is removed
    assert retain(Plan(), seen, by_task, desired(), keep=2, frozen=lambda t: False) == (Plan(), ())


def test_a_suspended_task_keeps_its_plan_untouched() -> None:
    want = desired(WEB)
    obs = observation(exited(1))  # type: ignore[arg-type]
    raw = plan(want, obs, now=NOW)
    assert retain(raw, obs, {}, want, keep=2, frozen=lambda t: True) == (raw, ())


def test_a_pod_that_never_ran_is_not_retained() -> None:
    want = desired(WEB)
    aborted = pod("web", PodState.ABORTED_PREPARE, spec_hash=WEB.spec_hash)
    obs = observation(aborted)
    raw = plan(want, obs, now=NOW)
    out, kept = retain(raw, obs, {}, want, keep=2, frozen=lambda t: False)
    assert kept == () and out == raw


def test_a_kept_pod_marked_garbage_is_not_a_new_exit() -> None:
    want = desired(WEB)
    dead = pod("web", PodState.EXITED_GARBAGE, spec_hash=WEB.spec_hash, exit_code=1)
    seen, by_task = split(observation(dead), frozenset({dead.uuid}))
    assert seen.pods == () and by_task == {TaskName("web"): (dead,)}
    assert [type(a) for a in plan(want, seen, now=NOW).actions] == [Start]
