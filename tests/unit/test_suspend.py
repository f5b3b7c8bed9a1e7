"""Suspend and report-only (controller/suspend.py + the status phase it yields).

The planner runs as usual; the actions of suspended tasks (all tasks in report-only
mode) are withheld, the task's hold says what would happen, and the status document
shows phase Suspended with that message.
"""

from __future__ import annotations

from controller.model import (
    PassReport,
    PassResult,
    PodState,
    Reason,
    TaskName,
)
from controller.plan import plan
from controller.status import build_task_statuses
from controller.suspend import suspended_tasks, withhold
from tests.factories import BASE_TIME, desired, observation, pod, task

NOW = float(BASE_TIME + 100)
WEB = task("web", command="/bin/web")
DB = task("db", command="/bin/db")


def test_suspend_does_not_change_the_spec_hash() -> None:
    assert task("web", suspend=True).spec_hash == task("web").spec_hash


def test_a_suspended_task_s_actions_are_withheld_the_others_go_ahead() -> None:
    paused = task("web", command="/bin/web2", suspend=True)  # spec changed: would replace
    want = desired(paused, DB)
    old = pod("web", spec_hash=WEB.spec_hash)
    raw = plan(want, observation(old), now=NOW)
    assert {a.task for a in raw.actions} == {"web", "db"}
    out = withhold(raw, suspended_tasks(want.tasks), report_only=False)
    assert {a.task for a in out.actions} == {"db"}
    assert {a.task for a in out.withheld} == {"web"}
    (hold,) = [h for h in out.holds if h.task == "web"]
    assert hold.message.startswith("suspended (spec.suspend is true); would stop pod ")
    assert f"{old.uuid[:8]} ({Reason.SPEC_CHANGED})" in hold.message


def test_a_suspended_task_with_nothing_to_do_is_still_reported() -> None:
    paused = task("web", suspend=True)
    want = desired(paused)
    raw = plan(want, observation(pod("web", spec_hash=paused.spec_hash)), now=NOW)
    out = withhold(raw, suspended_tasks(want.tasks), report_only=False)
    assert out.actions == () and out.withheld == ()
    assert [h.message for h in out.holds] == [
        "suspended (spec.suspend is true); nothing to do: the pods match the manifest"
    ]


def test_report_only_withholds_everything_also_stops_of_undesired_tasks() -> None:
    want = desired(DB)
    orphan = pod("web", spec_hash=WEB.spec_hash)
    running_db = pod("db", spec_hash=DB.spec_hash)
    raw = plan(want, observation(orphan, running_db), now=NOW)
    assert raw.actions  # stop + remove of the orphan
    out = withhold(raw, frozenset(), report_only=True)
    assert out.actions == ()
    assert out.withheld == raw.actions
    # db is converged: no hold for it, its status stays what it is
    assert [h.task for h in out.holds] == ["web"]
    assert "mode is report-only" in out.holds[0].message


def test_unsuspended_plan_is_returned_unchanged() -> None:
    want = desired(WEB)
    raw = plan(want, observation(), now=NOW)
    assert withhold(raw, frozenset(), report_only=False) is raw


def _doc(report_plan_want: tuple[object, ...]) -> dict[str, object]:
    the_plan, want, obs = report_plan_want
    rep = PassReport(id="p", trigger="t", started_at=NOW, finished_at=NOW,
                     result=PassResult.OK, desired=want, observation=obs, plan=the_plan)  # type: ignore[arg-type]  # fmt: skip
    return build_task_statuses(rep, previous={}, now=NOW)[TaskName("web")]


def test_status_says_suspended_with_the_withheld_actions_and_keeps_the_pod() -> None:
    paused = task("web", suspend=True)
    want = desired(paused)
    exited = pod("web", PodState.EXITED, spec_hash=paused.spec_hash, exit_code=1)
    obs = observation(exited)
    out = withhold(plan(want, obs, now=NOW), suspended_tasks(want.tasks), report_only=False)
    doc = _doc((out, want, obs))
    assert doc["phase"] == "Suspended"
    assert "would remove pod" in str(doc["message"])
    assert doc["pod"]["uuid"] == exited.uuid  # type: ignore[index]
    reasons = {c["reason"] for c in doc["conditions"]}  # type: ignore[attr-defined]
    assert reasons == {"Suspended"}
