"""plan(): one table per planner rule, each row asserting the whole Plan.

The rules are numbered as in controller/plan.py's contract (issue 4): a failing
row's id names the rule and the situation.
"""

from __future__ import annotations

from typing import Any

import pytest

from controller.model import (
    DesiredState,
    Hold,
    HoldReason,
    Observation,
    Plan,
    PodState,
    PortRequest,
    Reason,
    Remove,
    Resources,
    Restart,
    RestartPolicy,
    RestartState,
    RunPrepared,
    Start,
    Stop,
    TaskName,
    UpdateOrder,
)
from controller.plan import PlanPolicy, plan
from tests.factories import BASE_TIME, desired, foreign_pod, invalid, observation, pod, task

NOW = BASE_TIME + 1000.0
WEB = task("web")
WEB_OLD = task("web", args=("--old",))
WEB_NEVER = task("web", restart=Restart(policy=RestartPolicy.NEVER))
WEB_START_FIRST = task("web", update_order=UpdateOrder.START_FIRST)
WEB_START_FIRST_STATIC = task(
    "web",
    update_order=UpdateOrder.START_FIRST,
    resources=Resources(ports=(PortRequest(label="http", static=8080),)),
)
DB = task("db")
H = WEB.spec_hash
OLD = WEB_OLD.spec_hash
web = TaskName("web")
db = TaskName("db")
old = TaskName("old")


def start(reason: Reason, name: TaskName = web, spec_hash: str = H) -> Start:
    return Start(task=name, spec_hash=spec_hash, reason=reason)  # type: ignore[arg-type]


def stop_remove(uuid: str, reason: Reason, name: TaskName = web) -> tuple[Stop, Remove]:
    return (
        Stop(task=name, uuid=uuid, reason=reason),  # type: ignore[arg-type]
        Remove(task=name, uuid=uuid, reason=reason),  # type: ignore[arg-type]
    )


def remove(uuid: str, reason: Reason, name: TaskName = web, exit_code: int | None = None) -> Remove:
    return Remove(task=name, uuid=uuid, reason=reason, exit_code=exit_code)  # type: ignore[arg-type]


def check(want: DesiredState, obs: Observation, expected: Plan, **kwargs: Any) -> None:
    kwargs.setdefault("now", NOW)
    assert plan(want, obs, **kwargs) == expected


# --- Rule 1: a desired task without a live owned pod is started, unless held ----------

BACKOFF = RestartState(restarts=2, not_before=NOW + 7.5, last_exit_code=1, spec_hash=H)


@pytest.mark.parametrize(
    ("want", "obs", "kwargs", "expected"),
    [
        pytest.param(
            desired(WEB),
            observation(),
            {},
            Plan(actions=(start(Reason.MISSING),)),
            id="no-pod-starts",
        ),
        pytest.param(
            desired(WEB),
            observation(pod("web", uuid="w1")),
            {},
            Plan(),
            id="running-current-pod-converged",
        ),
        pytest.param(
            desired(WEB),
            observation(),
            {"restarts": {web: BACKOFF}},
            Plan(
                holds=(
                    Hold(
                        reason=HoldReason.BACKOFF,
                        task=web,
                        message="backing off: next start in 7.5s (2 restart(s), last exit code 1)",
                    ),
                ),
                requeue_after=7.5,
            ),
            id="backoff-holds-start-and-requeues-at-its-end",
        ),
        pytest.param(
            desired(WEB),
            observation(),
            {"restarts": {web: RestartState(not_before=NOW + 3)}},
            Plan(
                holds=(
                    Hold(
                        reason=HoldReason.BACKOFF,
                        task=web,
                        message="backing off: next start in 3.0s",
                    ),
                ),
                requeue_after=3.0,
            ),
            id="failed-action-backoff-without-spec-holds-start",
        ),
        pytest.param(
            desired(WEB),
            observation(),
            {"restarts": {web: BACKOFF}, "now": NOW + 7.5},
            Plan(actions=(start(Reason.RESTART),)),
            id="backoff-over-restarts",
        ),
        pytest.param(
            desired(WEB),
            observation(),
            {"restarts": {web: RestartState(restarts=0, not_before=NOW - 1, last_exit_code=0)}},
            Plan(actions=(start(Reason.MISSING),)),
            id="no-recorded-restarts-is-missing-not-restart",
        ),
        pytest.param(
            desired(WEB),
            observation(),
            {"restarts": {web: RestartState(restarts=5, not_before=NOW + 100, spec_hash=OLD)}},
            Plan(actions=(start(Reason.MISSING),)),
            id="backoff-of-another-spec-does-not-delay",
        ),
        pytest.param(
            desired(WEB_NEVER),
            observation(),
            {
                "restarts": {
                    web: RestartState(
                        last_exit_code=0, completed_hash=WEB_NEVER.spec_hash, spec_hash=H
                    )
                }
            },
            Plan(
                holds=(
                    Hold(
                        reason=HoldReason.RESTART_NEVER,
                        task=web,
                        message="the task's pod finished (exit code 0) and restart policy "
                        "'never' does not run it again; change the manifest to run it again",
                    ),
                ),
            ),
            id="completed-spec-is-not-started-again",
        ),
        pytest.param(
            desired(WEB),
            observation(),
            {"restarts": {web: RestartState(last_exit_code=0, completed_hash=OLD)}},
            Plan(actions=(start(Reason.MISSING),)),
            id="completion-of-another-spec-does-not-hold",
        ),
        pytest.param(
            desired(WEB),
            observation(),
            {"blocked": {web: "constraint ${attr.kernel.name} = linux is not met"}},
            Plan(
                holds=(
                    Hold(
                        reason=HoldReason.BLOCKED,
                        task=web,
                        message="constraint ${attr.kernel.name} = linux is not met",
                    ),
                ),
            ),
            id="blocked-task-is-not-started",
        ),
        pytest.param(
            desired(WEB),
            observation(),
            {"blocked": {web: "port 8080 is taken"}, "restarts": {web: BACKOFF}},
            Plan(
                holds=(Hold(reason=HoldReason.BLOCKED, task=web, message="port 8080 is taken"),),
            ),
            id="blocked-wins-over-backoff",
        ),
    ],
)
def test_rule1_missing_pod_is_started_unless_held(
    want: DesiredState, obs: Observation, kwargs: dict[str, Any], expected: Plan
) -> None:
    check(want, obs, expected, **kwargs)


# --- Rule 2: a live pod of an old spec is replaced ---------------------------------------


@pytest.mark.parametrize(
    ("want", "obs", "kwargs", "expected"),
    [
        pytest.param(
            desired(WEB),
            observation(pod("web", spec_hash=OLD, uuid="w-old")),
            {},
            Plan(actions=(*stop_remove("w-old", Reason.SPEC_CHANGED), start(Reason.SPEC_CHANGED))),
            id="stop-first-by-default",
        ),
        pytest.param(
            desired(WEB_START_FIRST),
            observation(pod("web", spec_hash=OLD, uuid="w-old")),
            {},
            Plan(
                actions=(
                    start(Reason.SPEC_CHANGED, spec_hash=WEB_START_FIRST.spec_hash),
                    *stop_remove("w-old", Reason.SPEC_CHANGED),
                )
            ),
            id="start-first-when-asked",
        ),
        pytest.param(
            desired(WEB_START_FIRST_STATIC),
            observation(pod("web", spec_hash=OLD, uuid="w-old")),
            {},
            Plan(
                actions=(
                    *stop_remove("w-old", Reason.SPEC_CHANGED),
                    start(Reason.SPEC_CHANGED, spec_hash=WEB_START_FIRST_STATIC.spec_hash),
                )
            ),
            id="start-first-with-static-ports-falls-back-to-stop-first",
        ),
        pytest.param(
            desired(WEB),
            observation(pod("web", spec_hash=None, uuid="w-nohash")),
            {},
            Plan(
                actions=(*stop_remove("w-nohash", Reason.SPEC_CHANGED), start(Reason.SPEC_CHANGED))
            ),
            id="pod-without-hash-stamp-counts-as-old",
        ),
        pytest.param(
            desired(WEB),
            observation(pod("web", spec_hash=OLD, uuid="w-old")),
            {"restarts": {web: RestartState(restarts=6, not_before=NOW + 300, spec_hash=OLD)}},
            Plan(actions=(*stop_remove("w-old", Reason.SPEC_CHANGED), start(Reason.SPEC_CHANGED))),
            id="old-spec-backoff-does-not-delay-the-replacement",
        ),
        pytest.param(
            desired(WEB),
            observation(pod("web", spec_hash=OLD, uuid="w-old")),
            {"restarts": {web: BACKOFF}},
            Plan(
                actions=stop_remove("w-old", Reason.SPEC_CHANGED),
                holds=(
                    Hold(
                        reason=HoldReason.BACKOFF,
                        task=web,
                        message="backing off: next start in 7.5s (2 restart(s), last exit code 1)",
                    ),
                ),
                requeue_after=7.5,
            ),
            id="stop-first-backing-off-new-spec-stops-old-then-waits",
        ),
        pytest.param(
            desired(WEB_START_FIRST),
            observation(pod("web", spec_hash=OLD, uuid="w-old")),
            {
                "restarts": {
                    web: RestartState(not_before=NOW + 2, spec_hash=WEB_START_FIRST.spec_hash)
                }
            },
            Plan(
                holds=(
                    Hold(
                        reason=HoldReason.BACKOFF,
                        task=web,
                        message="backing off: next start in 2.0s",
                    ),
                ),
                requeue_after=2.0,
            ),
            id="start-first-backing-off-keeps-old-pod-serving",
        ),
    ],
)
def test_rule2_old_spec_is_replaced(
    want: DesiredState, obs: Observation, kwargs: dict[str, Any], expected: Plan
) -> None:
    check(want, obs, expected, **kwargs)


# --- Rule 3: several live pods of one task: keep one -------------------------------------


@pytest.mark.parametrize(
    ("obs", "expected"),
    [
        pytest.param(
            observation(
                pod("web", uuid="w-new", started_at=BASE_TIME + 20),
                pod("web", uuid="w-older", started_at=BASE_TIME + 10),
            ),
            Plan(actions=stop_remove("w-older", Reason.DUPLICATE)),
            id="keeps-the-newest",
        ),
        pytest.param(
            observation(
                pod("web", uuid="w-old-spec", spec_hash=OLD, started_at=BASE_TIME + 99),
                pod("web", uuid="w-current", started_at=BASE_TIME + 1),
            ),
            Plan(actions=stop_remove("w-old-spec", Reason.DUPLICATE)),
            id="prefers-current-spec-over-newer",
        ),
        pytest.param(
            observation(
                pod("web", PodState.PREPARED, uuid="w-prep", created_at=BASE_TIME + 99),
                pod("web", uuid="w-run", spec_hash=OLD),
            ),
            Plan(
                actions=(
                    remove("w-prep", Reason.STALE_PREPARED),
                    *stop_remove("w-run", Reason.SPEC_CHANGED),
                    start(Reason.SPEC_CHANGED),
                )
            ),
            id="prefers-running-over-prepared-then-replaces-it",
        ),
        pytest.param(
            observation(
                pod("web", uuid="w-b", spec_hash=OLD, started_at=BASE_TIME + 5),
                pod("web", uuid="w-a", spec_hash=OLD, started_at=BASE_TIME + 6),
            ),
            Plan(
                actions=(
                    *stop_remove("w-b", Reason.DUPLICATE),
                    *stop_remove("w-a", Reason.SPEC_CHANGED),
                    start(Reason.SPEC_CHANGED),
                )
            ),
            id="all-old-keeps-newest-and-replaces-it",
        ),
        pytest.param(
            observation(
                pod("web", uuid="w-2", started_at=BASE_TIME + 5, created_at=BASE_TIME + 2),
                pod("web", uuid="w-1", started_at=BASE_TIME + 5, created_at=BASE_TIME + 3),
            ),
            Plan(actions=stop_remove("w-2", Reason.DUPLICATE)),
            id="same-start-time-newest-created-wins",
        ),
        pytest.param(
            observation(
                pod("web", uuid="w-1", started_at=BASE_TIME + 5),
                pod("web", uuid="w-2", started_at=BASE_TIME + 5),
            ),
            Plan(actions=stop_remove("w-1", Reason.DUPLICATE)),
            id="full-tie-highest-uuid-wins",
        ),
        pytest.param(
            observation(
                pod("web", uuid="w-known", started_at=BASE_TIME + 1),
                pod("web", uuid="w-unknown", started_at=None),
            ),
            Plan(actions=stop_remove("w-unknown", Reason.DUPLICATE)),
            id="unknown-start-time-counts-as-oldest",
        ),
        pytest.param(
            observation(
                pod("web", PodState.PREPARED, uuid="w-p1"),
                pod("web", PodState.PREPARED, uuid="w-p2"),
            ),
            Plan(
                actions=(
                    remove("w-p1", Reason.STALE_PREPARED),
                    RunPrepared(task=web, uuid="w-p2", reason=Reason.PREPARED_LEFTOVER),  # type: ignore[arg-type]
                )
            ),
            id="two-prepared-runs-one-removes-other",
        ),
    ],
)
def test_rule3_duplicates_keep_one(obs: Observation, expected: Plan) -> None:
    check(desired(WEB), obs, expected)


# --- Rule 4: owned pods of tasks no manifest declares ------------------------------------


@pytest.mark.parametrize(
    ("obs", "expected"),
    [
        pytest.param(
            observation(pod("web", uuid="w1"), pod("old", uuid="o1")),
            Plan(actions=stop_remove("o1", Reason.NOT_DESIRED, name=old)),
            id="running-is-stopped-and-removed",
        ),
        pytest.param(
            observation(pod("web", uuid="w1"), pod("old", PodState.PREPARED, uuid="o1")),
            Plan(actions=(remove("o1", Reason.NOT_DESIRED, name=old),)),
            id="prepared-is-only-removed",
        ),
        pytest.param(
            observation(pod("web", uuid="w1"), pod("old", PodState.EXITED, uuid="o1", exit_code=3)),
            Plan(actions=(remove("o1", Reason.NOT_DESIRED, name=old, exit_code=3),)),
            id="exited-is-only-removed",
        ),
        pytest.param(
            observation(pod("web", uuid="w1"), pod("old", PodState.EXITED_GARBAGE, uuid="o1")),
            Plan(actions=(remove("o1", Reason.NOT_DESIRED, name=old),)),
            id="exited-garbage-is-only-removed",
        ),
    ],
)
def test_rule4_not_desired_pods_are_stopped_and_removed(obs: Observation, expected: Plan) -> None:
    check(desired(WEB), obs, expected)


def test_rule4_one_task_host_can_swap_its_only_task() -> None:
    """max(1, floor(0.5 * 1)) = 1: replacing the only task by another is not a mass deletion."""
    check(
        desired(DB),
        observation(pod("web", uuid="w1")),
        Plan(
            actions=(
                start(Reason.MISSING, name=db, spec_hash=DB.spec_hash),
                *stop_remove("w1", Reason.NOT_DESIRED),
            )
        ),
    )


# --- Rule 5: finished pods of desired tasks ----------------------------------------------


@pytest.mark.parametrize(
    ("obs", "expected"),
    [
        pytest.param(
            observation(pod("web", PodState.EXITED, uuid="w1", exit_code=1)),
            Plan(actions=(remove("w1", Reason.EXITED, exit_code=1),), requeue_after=1.0),
            id="current-spec-exit-is-removed-and-restarted-next-pass",
        ),
        pytest.param(
            observation(pod("web", PodState.EXITED, uuid="w1")),
            Plan(actions=(remove("w1", Reason.EXITED),), requeue_after=1.0),
            id="unknown-exit-code-is-passed-on-as-none",
        ),
        pytest.param(
            observation(pod("web", PodState.EXITED_GARBAGE, uuid="w1", exit_code=0)),
            Plan(actions=(remove("w1", Reason.EXITED, exit_code=0),), requeue_after=1.0),
            id="exited-garbage-counts-as-exit",
        ),
        pytest.param(
            observation(pod("web", PodState.EXITED, uuid="w1", spec_hash=OLD, exit_code=143)),
            Plan(actions=(remove("w1", Reason.SPEC_CHANGED, exit_code=143), start(Reason.MISSING))),
            id="old-spec-exit-is-not-a-crash-start-now",
        ),
        pytest.param(
            observation(pod("web", PodState.ABORTED_PREPARE, uuid="w1")),
            Plan(actions=(remove("w1", Reason.ABORTED), start(Reason.MISSING))),
            id="aborted-prepare-is-not-a-crash-start-now",
        ),
        pytest.param(
            observation(pod("web", PodState.GARBAGE, uuid="w1")),
            Plan(actions=(remove("w1", Reason.ABORTED), start(Reason.MISSING))),
            id="garbage-never-ran",
        ),
        pytest.param(
            observation(pod("web", PodState.EXITED, uuid="w1", exit_code=2), pod("web", uuid="w2")),
            Plan(actions=(remove("w1", Reason.EXITED, exit_code=2),)),
            id="exit-beside-a-running-pod-needs-no-requeue",
        ),
        pytest.param(
            observation(
                pod("web", PodState.EXITED, uuid="w2", exit_code=0),
                pod("web", PodState.EXITED, uuid="w1", exit_code=1),
            ),
            Plan(
                actions=(
                    remove("w1", Reason.EXITED, exit_code=1),
                    remove("w2", Reason.EXITED, exit_code=0),
                ),
                requeue_after=1.0,
            ),
            id="several-exits-removed-in-uuid-order",
        ),
    ],
)
def test_rule5_finished_pods_are_removed(obs: Observation, expected: Plan) -> None:
    check(desired(WEB), obs, expected)


# --- Rule 6: pods left `prepared` by a crash between prepare and run-prepared -------------


@pytest.mark.parametrize(
    ("want", "obs", "kwargs", "expected"),
    [
        pytest.param(
            desired(WEB),
            observation(pod("web", PodState.PREPARED, uuid="w1")),
            {},
            Plan(actions=(RunPrepared(task=web, uuid="w1", reason=Reason.PREPARED_LEFTOVER),)),  # type: ignore[arg-type]
            id="current-is-run",
        ),
        pytest.param(
            desired(WEB),
            observation(pod("web", PodState.PREPARED, uuid="w1", spec_hash=OLD)),
            {},
            Plan(actions=(remove("w1", Reason.STALE_PREPARED), start(Reason.MISSING))),
            id="old-spec-is-removed-and-replaced",
        ),
        pytest.param(
            desired(WEB),
            observation(pod("web", PodState.PREPARED, uuid="w1")),
            {"restarts": {web: BACKOFF}},
            Plan(
                holds=(
                    Hold(
                        reason=HoldReason.BACKOFF,
                        task=web,
                        message="backing off: next start in 7.5s (2 restart(s), last exit code 1)",
                    ),
                ),
                requeue_after=7.5,
            ),
            id="backing-off-waits",
        ),
        pytest.param(
            desired(WEB_NEVER),
            observation(pod("web", PodState.PREPARED, uuid="w1", spec_hash=WEB_NEVER.spec_hash)),
            {"restarts": {web: RestartState(completed_hash=WEB_NEVER.spec_hash)}},
            Plan(
                actions=(remove("w1", Reason.STALE_PREPARED),),
                holds=(
                    Hold(
                        reason=HoldReason.RESTART_NEVER,
                        task=web,
                        message="the task's pod finished and restart policy 'never' does not "
                        "run it again; change the manifest to run it again",
                    ),
                ),
            ),
            id="completed-spec-is-removed",
        ),
        pytest.param(
            desired(WEB),
            observation(
                pod("web", PodState.PREPARED, uuid="w1"), pod("web", PodState.DELETING, uuid="w0")
            ),
            {},
            Plan(requeue_after=1.0),
            id="transitional-sibling-waits",
        ),
    ],
)
def test_rule6_prepared_leftovers(
    want: DesiredState, obs: Observation, kwargs: dict[str, Any], expected: Plan
) -> None:
    check(want, obs, expected, **kwargs)


# --- Rule 7: invalid and duplicate manifests leave their task alone ----------------------

INVALID_WEB = invalid("web", "web.yaml: at 'image': 'image' is a required property")
INVALID_HOLD = Hold(
    reason=HoldReason.INVALID_SPEC,
    task=web,
    message="web.yaml: web.yaml: at 'image': 'image' is a required property "
    "(the task's pods are left as they are until the manifest is fixed)",
)
DUPLICATE_HOLD = Hold(
    reason=HoldReason.DUPLICATE_NAME,
    task=web,
    message="task 'web' is declared by several manifests (a/web.yaml, b/web.yaml); none is "
    "applied and its pods are left alone until only one declares it",
)
UNNAMED_HOLD = Hold(
    reason=HoldReason.INVALID_SPEC,
    message="cannot read the task name in broken.yaml; owned pods of tasks no manifest "
    "declares are left alone until it is fixed",
)


@pytest.mark.parametrize(
    ("want", "obs", "kwargs", "expected"),
    [
        pytest.param(
            desired(INVALID_WEB),
            observation(),
            {},
            Plan(holds=(INVALID_HOLD,)),
            id="invalid-without-pods",
        ),
        pytest.param(
            desired(INVALID_WEB, DB),
            observation(pod("web", uuid="w1", spec_hash=OLD), pod("db", uuid="d1")),
            {},
            Plan(holds=(INVALID_HOLD,)),
            id="invalid-keeps-last-good-pod-running",
        ),
        pytest.param(
            desired(INVALID_WEB),
            observation(
                pod("web", PodState.EXITED, uuid="w1", exit_code=1),
                pod("web", PodState.PREPARED, uuid="w2"),
                pod("web", PodState.DELETING, uuid="w3"),
                pod("web", uuid="w4"),
                pod("web", uuid="w5"),
            ),
            {"blocked": {web: "nope"}},
            Plan(holds=(INVALID_HOLD,)),
            id="invalid-touches-nothing-at-all",
        ),
        pytest.param(
            desired(DB, duplicates={"web": ("a/web.yaml", "b/web.yaml")}),
            observation(pod("web", uuid="w1"), pod("web", PodState.EXITED, uuid="w2")),
            {},
            Plan(
                actions=(start(Reason.MISSING, name=db, spec_hash=DB.spec_hash),),
                holds=(DUPLICATE_HOLD,),
            ),
            id="duplicate-name-applies-neither",
        ),
        pytest.param(
            desired(WEB, duplicates={"web": ("a/web.yaml", "b/web.yaml")}),
            observation(pod("web", uuid="w1", spec_hash=OLD)),
            {},
            Plan(holds=(DUPLICATE_HOLD,)),
            id="duplicate-wins-over-a-valid-entry-of-the-same-name",
        ),
        pytest.param(
            desired(WEB, unnamed_invalid=(invalid("?", source="broken.yaml"),)),
            observation(
                pod("web", uuid="w1"),
                pod("old", uuid="o1"),
                pod("old", PodState.EXITED, uuid="o2"),
            ),
            {},
            Plan(holds=(UNNAMED_HOLD,)),
            id="unnamed-invalid-spares-undeclared-tasks",
        ),
        pytest.param(
            desired(WEB, unnamed_invalid=(invalid("?", source="broken.yaml"),)),
            observation(pod("web", uuid="w1", spec_hash=OLD)),
            {},
            Plan(
                actions=(*stop_remove("w1", Reason.SPEC_CHANGED), start(Reason.SPEC_CHANGED)),
                holds=(UNNAMED_HOLD,),
            ),
            id="unnamed-invalid-does-not-stop-declared-tasks",
        ),
    ],
)
def test_rule7_invalid_and_duplicate_manifests(
    want: DesiredState, obs: Observation, kwargs: dict[str, Any], expected: Plan
) -> None:
    check(want, obs, expected, **kwargs)


# --- Rule 8: pods without rktctl's stamp are never touched -------------------------------


@pytest.mark.parametrize(
    "state",
    [PodState.RUNNING, PodState.PREPARED, PodState.EXITED, PodState.DELETING, PodState.UNKNOWN],
)
def test_rule8_foreign_pods_are_invisible(state: PodState) -> None:
    check(
        desired(WEB),
        observation(
            foreign_pod(state, uuid="f1"), foreign_pod(state, uuid="f2", app_names=["web"])
        ),
        Plan(actions=(start(Reason.MISSING),)),
    )


def test_rule8_foreign_pods_do_not_count_for_the_deletion_guard() -> None:
    """Two foreign pods beside our one orphan: the orphan is 1 of 1 owned, not 1 of 3."""
    check(
        desired(DB),
        observation(pod("web", uuid="w1"), pod("db", uuid="d1"), foreign_pod(), foreign_pod()),
        Plan(actions=stop_remove("w1", Reason.NOT_DESIRED)),
    )


# --- Rule 9: transitional states ---------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        PodState.EMBRYO,
        PodState.PREPARING,
        PodState.DELETING,
        PodState.EXITED_DELETING,
        PodState.UNKNOWN,
    ],
)
def test_rule9_transitional_pod_blocks_start_and_requeues(state: PodState) -> None:
    check(desired(WEB), observation(pod("web", state, uuid="w1")), Plan(requeue_after=1.0))


def test_rule9_transitional_pod_does_not_block_cleanup() -> None:
    check(
        desired(WEB, DB),
        observation(
            pod("web", PodState.UNKNOWN, uuid="w0"),
            pod("web", PodState.EXITED, uuid="w1", spec_hash=OLD),
            pod("web", uuid="w2", spec_hash=OLD),
            pod("db", uuid="d1"),
            pod("old", PodState.DELETING, uuid="o1"),
        ),
        Plan(
            actions=(remove("w1", Reason.SPEC_CHANGED), *stop_remove("w2", Reason.SPEC_CHANGED)),
            requeue_after=1.0,
        ),
    )


def test_rule9_requeue_interval_comes_from_the_policy() -> None:
    check(
        desired(WEB),
        observation(pod("web", PodState.DELETING, uuid="w1")),
        Plan(requeue_after=0.25),
        policy=PlanPolicy(requeue_transitional_s=0.25),
    )


def test_rule9_start_first_replacement_waits_for_transitional_pod() -> None:
    """The old pod is stopped only together with the new pod's Start."""
    check(
        desired(WEB_START_FIRST),
        observation(pod("web", uuid="w1", spec_hash=OLD), pod("web", PodState.UNKNOWN, uuid="w0")),
        Plan(requeue_after=1.0),
    )


# --- Rule 10: an incomplete observation holds everything ---------------------------------


def test_rule10_incomplete_observation_does_nothing() -> None:
    check(
        desired(WEB, DB),
        observation(
            pod("old", uuid="o1"),
            pod("db", PodState.EXITED, uuid="d1"),
            complete=False,
            errors=["unable to read pod 1a2b: permission denied", "second error"],
        ),
        Plan(
            holds=(
                Hold(
                    reason=HoldReason.INCOMPLETE_OBSERVATION,
                    message="rkt list could not read every pod: unable to read pod 1a2b: "
                    "permission denied; nothing is started, stopped or removed until it can",
                ),
            ),
            requeue_after=1.0,
        ),
    )


# --- Rule 11: the deletion guard ---------------------------------------------------------

ADVICE = "set allow_empty (or --force) to delete them anyway"


@pytest.mark.parametrize(
    ("want", "obs", "kwargs", "expected"),
    [
        pytest.param(
            desired(),
            observation(pod("web", uuid="w1"), pod("db", PodState.PREPARED, uuid="d1")),
            {},
            Plan(
                holds=(
                    Hold(
                        reason=HoldReason.DELETION_GUARD,
                        message="the desired directory holds no manifest: holding the "
                        f"deletion of 2 pod(s) of db, web; {ADVICE}",
                    ),
                ),
            ),
            id="empty-directory-holds-everything",
        ),
        pytest.param(
            desired(dir_missing=True),
            observation(pod("web", uuid="w1")),
            {},
            Plan(
                holds=(
                    Hold(
                        reason=HoldReason.DELETION_GUARD,
                        message="the desired directory is missing or unreadable: holding the "
                        f"deletion of 1 pod(s) of web; {ADVICE}",
                    ),
                ),
            ),
            id="missing-directory-holds-even-one-pod",
        ),
        pytest.param(
            desired(),
            observation(pod("web", uuid="w1")),
            {"policy": PlanPolicy(allow_empty=True)},
            Plan(actions=stop_remove("w1", Reason.NOT_DESIRED)),
            id="allow-empty-lets-it-through",
        ),
        pytest.param(
            desired(),
            observation(pod("web", PodState.EXITED, uuid="w1", exit_code=0)),
            {},
            Plan(actions=(remove("w1", Reason.NOT_DESIRED, exit_code=0),)),
            id="removing-finished-pods-is-not-a-deletion",
        ),
        pytest.param(
            desired(WEB, task("new")),
            observation(
                pod("web", uuid="w1"),
                pod("a", uuid="a1"),
                pod("b", uuid="b1"),
                pod("c", uuid="c1"),
                pod("d", PodState.EXITED, uuid="d1"),
            ),
            {},
            Plan(
                actions=(
                    remove("d1", Reason.NOT_DESIRED, name=TaskName("d")),
                    start(Reason.MISSING, name=TaskName("new"), spec_hash=task("new").spec_hash),
                ),
                holds=(
                    Hold(
                        reason=HoldReason.DELETION_GUARD,
                        message="this pass would delete 3 of 4 live owned pods, more than 2 "
                        f"(max_delete_fraction=0.5): holding the deletion of 3 pod(s) of a, b, c; "
                        f"{ADVICE}",
                    ),
                ),
            ),
            id="more-than-half-holds-deletions-only",
        ),
        pytest.param(
            desired(WEB, DB),
            observation(
                pod("web", uuid="w1"),
                pod("db", uuid="d1"),
                pod("a", uuid="a1"),
                pod("b", uuid="b1"),
            ),
            {},
            Plan(
                actions=(
                    *stop_remove("a1", Reason.NOT_DESIRED, name=TaskName("a")),
                    *stop_remove("b1", Reason.NOT_DESIRED, name=TaskName("b")),
                )
            ),
            id="exactly-half-is-allowed",
        ),
        pytest.param(
            desired(WEB, DB),
            observation(
                pod("web", uuid="w1"),
                pod("db", uuid="d1"),
                pod("a", uuid="a1"),
                pod("b", uuid="b1"),
            ),
            {"policy": PlanPolicy(max_delete_fraction=0.25)},
            Plan(
                holds=(
                    Hold(
                        reason=HoldReason.DELETION_GUARD,
                        message="this pass would delete 2 of 4 live owned pods, more than 1 "
                        "(max_delete_fraction=0.25): holding the deletion of 2 pod(s) of a, b; "
                        f"{ADVICE}",
                    ),
                ),
            ),
            id="fraction-comes-from-the-policy",
        ),
        pytest.param(
            desired(WEB, DB),
            observation(
                pod("web", uuid="w1", spec_hash=OLD),
                pod("web", uuid="w2"),
                pod("db", uuid="d1", spec_hash="x"),
            ),
            {"policy": PlanPolicy(max_delete_fraction=0.0)},
            Plan(
                actions=(
                    *stop_remove("d1", Reason.SPEC_CHANGED, name=db),
                    start(Reason.SPEC_CHANGED, name=db, spec_hash=DB.spec_hash),
                    *stop_remove("w1", Reason.DUPLICATE),
                )
            ),
            id="replacements-and-duplicates-are-not-deletions",
        ),
        pytest.param(
            desired(WEB, DB),
            observation(pod("web", uuid="w1"), pod("db", uuid="d1")),
            {"blocked": {web: "no", db: "no"}},
            Plan(
                holds=(
                    Hold(
                        reason=HoldReason.DELETION_GUARD,
                        message="this pass would delete 2 of 2 live owned pods, more than 1 "
                        f"(max_delete_fraction=0.5): holding the deletion of 2 pod(s) of db, web; "
                        f"{ADVICE}",
                    ),
                    Hold(reason=HoldReason.BLOCKED, task=db, message="no"),
                    Hold(reason=HoldReason.BLOCKED, task=web, message="no"),
                ),
            ),
            id="constraint-stops-are-deletions",
        ),
    ],
)
def test_rule11_deletion_guard(
    want: DesiredState, obs: Observation, kwargs: dict[str, Any], expected: Plan
) -> None:
    check(want, obs, expected, **kwargs)


# --- Rule 12: blocked tasks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("obs", "expected_actions"),
    [
        pytest.param(
            observation(pod("web", uuid="w1"), pod("db", uuid="d1")),
            stop_remove("w1", Reason.CONSTRAINTS_UNMET),
            id="running-pod-is-stopped",
        ),
        pytest.param(
            observation(pod("web", PodState.PREPARED, uuid="w1"), pod("db", uuid="d1")),
            (remove("w1", Reason.CONSTRAINTS_UNMET),),
            id="prepared-pod-is-removed",
        ),
        pytest.param(
            observation(pod("web", PodState.EXITED, uuid="w1", exit_code=1), pod("db", uuid="d1")),
            (remove("w1", Reason.EXITED, exit_code=1),),
            id="exited-pod-is-removed-as-usual",
        ),
        pytest.param(
            observation(
                pod("web", uuid="w1", started_at=BASE_TIME + 1),
                pod("web", uuid="w2", started_at=BASE_TIME + 2),
                pod("db", uuid="d1"),
            ),
            (
                *stop_remove("w1", Reason.DUPLICATE),
                *stop_remove("w2", Reason.CONSTRAINTS_UNMET),
            ),
            id="duplicates-then-the-kept-one",
        ),
    ],
)
def test_rule12_blocked_task_is_stopped(
    obs: Observation, expected_actions: tuple[Any, ...]
) -> None:
    check(
        desired(WEB, DB),
        obs,
        Plan(
            actions=expected_actions,
            holds=(Hold(reason=HoldReason.BLOCKED, task=web, message="needs a GPU"),),
        ),
        blocked={web: "needs a GPU"},
    )


def test_rule12_blocked_entries_for_undesired_tasks_are_ignored() -> None:
    check(
        desired(WEB),
        observation(pod("web", uuid="w1"), pod("old", uuid="o1")),
        Plan(actions=stop_remove("o1", Reason.NOT_DESIRED, name=old)),
        blocked={old: "whatever"},
    )


# --- Rule 13: deterministic order and requeue --------------------------------------------


def test_rule13_actions_sorted_by_task_whatever_the_listing_order() -> None:
    pods = [
        pod("zeta", uuid="z1"),
        pod("alpha", PodState.EXITED, uuid="a1", spec_hash=task("alpha").spec_hash),
        pod("mid", PodState.PREPARED, uuid="m1"),
        pod("beta", uuid="b1", spec_hash=OLD),
    ]
    want = desired(task("alpha"), task("beta"), task("mid"), task("gamma"))
    expected = Plan(
        actions=(
            remove("a1", Reason.EXITED, name=TaskName("alpha")),
            *stop_remove("b1", Reason.SPEC_CHANGED, name=TaskName("beta")),
            start(Reason.SPEC_CHANGED, name=TaskName("beta"), spec_hash=task("beta").spec_hash),
            start(Reason.MISSING, name=TaskName("gamma"), spec_hash=task("gamma").spec_hash),
            RunPrepared(task=TaskName("mid"), uuid="m1", reason=Reason.PREPARED_LEFTOVER),  # type: ignore[arg-type]
            *stop_remove("z1", Reason.NOT_DESIRED, name=TaskName("zeta")),
        ),
        requeue_after=1.0,
    )
    check(want, observation(*pods), expected)
    check(want, observation(*reversed(pods)), expected)


def test_rule13_requeue_is_the_earliest_reason() -> None:
    check(
        desired(WEB, DB),
        observation(pod("db", PodState.DELETING, uuid="d1")),
        Plan(
            holds=(
                Hold(
                    reason=HoldReason.BACKOFF, task=web, message="backing off: next start in 0.5s"
                ),
            ),
            requeue_after=0.5,
        ),
        restarts={web: RestartState(not_before=NOW + 0.5)},
    )


def test_plan_with_nothing_desired_and_nothing_running_is_empty() -> None:
    check(desired(), observation(), Plan())
