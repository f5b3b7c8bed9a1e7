"""The planner's rule for a task whose absolute volume host path is missing (issue 10).

rkt would refuse its pod at run-prepared, after prepare: the shell finds the missing
paths, and the planner starts nothing and ends no live pod for such a task.
"""

from __future__ import annotations

import pytest

from controller.model import Hold, HoldReason, Plan, PodState, Reason, Remove, Start, Stop, TaskName
from controller.plan import plan
from tests.factories import BASE_TIME, desired, observation, pod, task

NOW = BASE_TIME + 100
WHY = "spec.config.volumes[0] (/srv/x:/data): host path /srv/x does not exist on this host"
WEB = task("web")
OLD = task("web", args=("--old",)).spec_hash
HOLD = Hold(reason=HoldReason.HOST_PATH_MISSING, task=TaskName("web"), message=WHY)


@pytest.mark.parametrize(
    ("pods", "want"),
    [
        pytest.param((), Plan(holds=(HOLD,)), id="no-pod-no-start"),
        pytest.param((pod("web"),), Plan(), id="running-current-spec-left-alone"),
        pytest.param(
            (pod("web", spec_hash=OLD),), Plan(holds=(HOLD,)), id="old-spec-keeps-running"
        ),
        pytest.param(
            (pod("web", PodState.PREPARED, started_at=None),),
            Plan(holds=(HOLD,)),
            id="prepared-leftover-not-run",
        ),
    ],
)
def test_a_missing_host_path_holds_the_start_and_ends_nothing(pods: tuple, want: Plan) -> None:
    got = plan(desired(WEB), observation(*pods), now=NOW, missing_host_paths={WEB.name: WHY})
    assert got == want


def test_a_finished_pod_is_still_removed() -> None:
    exited = pod("web", PodState.EXITED, exit_code=1)
    got = plan(desired(WEB), observation(exited), now=NOW, missing_host_paths={WEB.name: WHY})
    assert got.actions == (
        Remove(task=WEB.name, uuid=exited.uuid, reason=Reason.EXITED, exit_code=1),
    )
    assert got.holds == (HOLD,)


def test_other_tasks_are_planned_as_usual() -> None:
    db = task("db")
    old = pod("db", spec_hash=task("db", args=("x",)).spec_hash)
    got = plan(desired(WEB, db), observation(old), now=NOW, missing_host_paths={WEB.name: WHY})
    assert [type(a) for a in got.actions] == [Stop, Remove, Start]
    assert {a.task for a in got.actions} == {"db"}
    assert got.holds == (HOLD,)
