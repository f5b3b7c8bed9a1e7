"""plan(): invariants over random hosts (hypothesis).

Each property is one operational promise: foreign pods are never touched, a plan
can be executed as written (rkt refuses `rm` of a running pod and `stop` of a
prepared one), executing it converges, and broken or incomplete inputs never
cause an action. A tiny in-test simulator plays the role of rkt.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.model import (
    LIVE_STATES,
    DesiredState,
    Invalid,
    Observation,
    ObservedPod,
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
    TaskSpec,
    UpdateOrder,
)
from controller.plan import PlanPolicy, plan
from tests.factories import BASE_TIME, desired, invalid, next_uuid, pod, task

NOW = float(BASE_TIME + 1000)
NAMES = ("a", "b", "c", "d")

SPEC_VARIANTS: dict[str, tuple[TaskSpec, ...]] = {
    name: (
        task(name),
        task(name, args=("--v2",)),
        task(name, update_order=UpdateOrder.START_FIRST),
        task(
            name,
            update_order=UpdateOrder.START_FIRST,
            resources=Resources(ports=(PortRequest(label="http", static=8080),)),
        ),
        task(name, restart=Restart(policy=RestartPolicy.NEVER)),
    )
    for name in NAMES
}
# Hashes a pod may carry: one per variant, an unknown old one, and no stamp at all.
HASHES: dict[str, tuple[str | None, ...]] = {
    name: (*(s.spec_hash for s in specs), "old-hash", None) for name, specs in SPEC_VARIANTS.items()
}

PROPERTY = settings(deadline=None, max_examples=200)

# Strategies are built once at import: building them inside a composite on every
# draw costs more than running the planner.
# "absent" is weighted up so that undesired tasks, empty directories and thus the
# deletion guard come up often.
_VARIANTS = tuple(range(len(SPEC_VARIANTS["a"])))
_ENTRY_CHOICES = st.sampled_from(("absent",) * 4 + ("invalid", *_VARIANTS))
_VALID_ENTRY_CHOICES = st.sampled_from(("absent",) * 3 + _VARIANTS)
_ONE_IN_FOUR = st.integers(0, 3).map(lambda n: n == 0)


def _build_desired(
    choices: tuple[object, ...], duplicates: list[str], unnamed: bool, dir_missing: bool
) -> DesiredState:
    entries: list[TaskSpec | Invalid] = []
    for name, choice in zip(NAMES, choices, strict=True):
        if choice == "invalid":
            entries.append(invalid(name))
        elif isinstance(choice, int):
            entries.append(SPEC_VARIANTS[name][choice])
    return desired(
        *entries,
        duplicates={n: (f"x/{n}.yaml", f"y/{n}.yaml") for n in duplicates},
        unnamed_invalid=(invalid("?", source="broken.yaml"),) if unnamed else (),
        dir_missing=not entries and dir_missing,
    )


def desired_states(*, broken: bool = True) -> st.SearchStrategy[DesiredState]:
    """A desired directory: per name absent, a spec variant or (if `broken`) Invalid,
    plus duplicate names, an unnamed broken file and a missing directory."""
    if not broken:
        return st.tuples(*[_VALID_ENTRY_CHOICES] * len(NAMES)).map(
            lambda choices: _build_desired(choices, [], unnamed=False, dir_missing=False)
        )
    return st.builds(
        _build_desired,
        st.tuples(*[_ENTRY_CHOICES] * len(NAMES)),
        st.lists(st.sampled_from(NAMES), unique=True, max_size=2),
        _ONE_IN_FOUR,
        st.booleans(),
    )


_TIMES = st.one_of(st.none(), st.integers(BASE_TIME, BASE_TIME + 50))
_EXIT_CODES = st.one_of(st.none(), st.integers(0, 255))
_ALL_STATES = tuple(PodState)


def _pod_rows(states: tuple[PodState, ...]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(
        st.integers(0, 9),  # 0 = foreign; mostly ours, since that is where the rules are
        st.sampled_from(NAMES),
        # Live pods are where most rules act: weight them up (rkt has 11 states).
        st.sampled_from(states + tuple(s for s in states if s in LIVE_STATES) * 3),
        st.integers(0, len(HASHES["a"]) - 1),
        _EXIT_CODES,
        _TIMES,
        _TIMES,
    )


def _build_pod(index: int, row: tuple[Any, ...]) -> ObservedPod:
    ours, name, state, hash_index, exit_code, started_at, created_at = row
    return pod(
        name,
        state,
        uuid=f"pod-{index:03d}",
        owned=ours > 0,
        spec_hash=HASHES[name][hash_index],
        exit_code=exit_code,
        started_at=started_at,
        created_at=created_at,
    )


def observations(
    *, complete: bool = True, states: tuple[PodState, ...] = _ALL_STATES
) -> st.SearchStrategy[Observation]:
    """Up to 8 pods with unique UUIDs, any state, hash and times."""
    return st.lists(_pod_rows(states), max_size=8).map(
        lambda rows: Observation(
            pods=tuple(_build_pod(i, row) for i, row in enumerate(rows)), complete=complete
        )
    )


_HASH_POOL = [h for hs in HASHES.values() for h in hs if h]
restart_states = st.builds(
    RestartState,
    restarts=st.integers(0, 5),
    not_before=st.one_of(st.none(), st.floats(NOW - 100, NOW + 100)),
    last_exit_code=st.one_of(st.none(), st.integers(0, 255)),
    completed_hash=st.one_of(st.none(), st.sampled_from(_HASH_POOL)),
    spec_hash=st.one_of(st.none(), st.sampled_from(_HASH_POOL)),
)
restarts_maps = st.dictionaries(st.sampled_from(NAMES).map(TaskName), restart_states, max_size=4)
blocked_maps = st.dictionaries(st.sampled_from(NAMES).map(TaskName), st.just("blocked"), max_size=2)
policies = st.builds(
    PlanPolicy,
    max_delete_fraction=st.sampled_from((0.0, 0.25, 0.5, 1.0)),
    allow_empty=_ONE_IN_FOUR,
)
any_kwargs = st.fixed_dictionaries(
    {"restarts": restarts_maps, "blocked": blocked_maps, "policy": policies}
)


def simulate(obs: Observation, the_plan: Plan) -> Observation:
    """Execute `the_plan` the way rkt would, failing on anything rkt would refuse."""
    pods_by_uuid = {p.uuid: p for p in obs.pods}
    for action in the_plan.actions:
        if isinstance(action, Start):
            uuid = next_uuid()
            pods_by_uuid[uuid] = pod(
                action.task, uuid=uuid, spec_hash=action.spec_hash, started_at=int(NOW)
            )
            continue
        target = pods_by_uuid[action.uuid]
        assert target.task == action.task, action
        if isinstance(action, Stop):
            assert target.state == PodState.RUNNING, f"rkt stop refuses a {target.state} pod"
            pods_by_uuid[action.uuid] = dataclasses.replace(target, state=PodState.EXITED)
        elif isinstance(action, Remove):
            assert target.state != PodState.RUNNING, "rkt rm refuses a running pod"
            del pods_by_uuid[action.uuid]
        else:
            assert isinstance(action, RunPrepared)
            assert target.state == PodState.PREPARED, f"run-prepared of a {target.state} pod"
            pods_by_uuid[action.uuid] = dataclasses.replace(
                target, state=PodState.RUNNING, started_at=int(NOW)
            )
    return Observation(pods=tuple(pods_by_uuid.values()))


def valid_tasks(want: DesiredState) -> set[str]:
    return {
        name
        for name, entry in want.tasks.items()
        if isinstance(entry, TaskSpec) and name not in want.duplicates
    }


# --- The invariants, one function each; the tests below run them on shared inputs ------
# (Generating a random host costs far more than planning it, so every invariant that
# holds for any input is checked on the same examples.)


def no_action_targets_an_unowned_pod(want: DesiredState, obs: Observation, the_plan: Plan) -> None:
    owned = {p.uuid: p.task for p in obs.pods if p.owned}
    for action in the_plan.actions:
        if isinstance(action, Start):
            assert action.task in valid_tasks(want), action
        else:
            assert owned.get(action.uuid) == action.task, action


def every_stop_is_directly_followed_by_the_remove_of_that_pod(the_plan: Plan) -> None:
    actions = the_plan.actions
    for i, action in enumerate(actions):
        if isinstance(action, Stop):
            assert actions[i + 1 :][:1] == (
                Remove(task=action.task, uuid=action.uuid, reason=action.reason),
            ), actions


def invalid_or_duplicate_task_gets_no_action(want: DesiredState, the_plan: Plan) -> None:
    untouchable: set[str] = {n for n, e in want.tasks.items() if isinstance(e, Invalid)}
    untouchable |= set(want.duplicates)
    if want.unnamed_invalid:
        untouchable |= set(NAMES) - set(want.tasks)
    assert [a for a in the_plan.actions if a.task in untouchable] == []


def at_most_one_live_pod_per_desired_task(want: DesiredState, after: Observation) -> None:
    for name in valid_tasks(want):
        live = [p.uuid for p in after.pods if p.task == name and p.state in LIVE_STATES]
        assert len(live) <= 1, (name, live)


def deletions_stay_within_the_guard(
    want: DesiredState, obs: Observation, the_plan: Plan, policy: PlanPolicy
) -> None:
    if policy.allow_empty:
        return
    live = {p.uuid for p in obs.pods if p.owned and p.state in LIVE_STATES}
    deleted = {
        a.uuid
        for a in the_plan.actions
        if isinstance(a, Stop | Remove)
        and a.reason in (Reason.NOT_DESIRED, Reason.CONSTRAINTS_UNMET)
        and a.uuid in live
    }
    if want.empty or want.dir_missing:
        assert deleted == set()
    assert len(deleted) <= max(1, math.floor(policy.max_delete_fraction * len(live)))


def foreign_pods_survive(obs: Observation, after: Observation) -> None:
    assert [p for p in after.pods if not p.owned] == [p for p in obs.pods if not p.owned]


@PROPERTY
@given(want=desired_states(), obs=observations(), kwargs=any_kwargs, data=st.data())
def test_plan_invariants_on_any_host(
    want: DesiredState, obs: Observation, kwargs: dict[str, Any], data: st.DataObject
) -> None:
    """Random desired dirs (with broken and duplicate manifests), pods in every state,
    restart bookkeeping, blocked tasks and policies: every promise holds."""
    the_plan = plan(want, obs, now=NOW, **kwargs)
    no_action_targets_an_unowned_pod(want, obs, the_plan)
    every_stop_is_directly_followed_by_the_remove_of_that_pod(the_plan)
    invalid_or_duplicate_task_gets_no_action(want, the_plan)
    deletions_stay_within_the_guard(want, obs, the_plan, kwargs["policy"])
    assert the_plan.requeue_after is None or the_plan.requeue_after > 0
    # rkt refuses `rm` of a running pod and `stop`/`run-prepared` in the wrong state:
    # the simulator asserts the plan can be executed exactly as written.
    after = simulate(obs, the_plan)
    at_most_one_live_pod_per_desired_task(want, after)
    foreign_pods_survive(obs, after)
    # The order rkt lists pods in changes nothing.
    shuffled = Observation(pods=tuple(data.draw(st.permutations(obs.pods), label="shuffled")))
    assert plan(want, shuffled, now=NOW, **kwargs) == the_plan
    # A hidden pod could be started twice: an incomplete observation does nothing.
    hidden = dataclasses.replace(obs, complete=False, errors=("list: unable to read pod",))
    assert plan(want, hidden, now=NOW, **kwargs).actions == ()


@PROPERTY
@given(
    want=desired_states(),
    obs=observations(states=(PodState.RUNNING, PodState.PREPARED, PodState.EXITED)),
    blocked=blocked_maps,
    fraction=st.sampled_from((0.0, 0.25, 0.5, 0.75, 1.0)),
)
def test_deletion_guard_bounds_every_pass(
    want: DesiredState, obs: Observation, blocked: dict[TaskName, str], fraction: float
) -> None:
    """Hosts full of live pods, so that mass deletions come up often."""
    policy = PlanPolicy(max_delete_fraction=fraction)
    the_plan = plan(want, obs, now=NOW, blocked=blocked, policy=policy)
    deletions_stay_within_the_guard(want, obs, the_plan, policy)


STEADY = PlanPolicy(allow_empty=True)
FINISHED = (PodState.EXITED, PodState.EXITED_GARBAGE, PodState.ABORTED_PREPARE, PodState.GARBAGE)


@PROPERTY
@given(want=desired_states(broken=False), obs=observations())
def test_executing_plans_converges(want: DesiredState, obs: Observation) -> None:
    """Idempotence with valid manifests and no restart history (deletion guard off).

    Without a finished pod of a current spec, re-planning after executing the plan
    yields nothing. With one, the crash is removed in the first pass and the task
    started in the second (two-pass restarts; with start-first that start also
    replaces an old pod); the third pass yields nothing."""
    first = plan(want, obs, now=NOW, policy=STEADY)
    after = simulate(obs, first)
    second = plan(want, after, now=NOW, policy=STEADY)
    exited = {a.task for a in first.actions if isinstance(a, Remove) and a.reason == Reason.EXITED}
    if not exited:
        assert second.actions == ()
    assert {a.task for a in second.actions} <= exited, second
    assert plan(want, simulate(after, second), now=NOW, policy=STEADY).actions == ()


@PROPERTY
@given(
    want=desired_states(broken=False),
    obs=observations(states=tuple(s for s in PodState if s not in FINISHED)),
)
def test_replanning_after_executing_a_plan_yields_nothing(
    want: DesiredState, obs: Observation
) -> None:
    """The plain idempotence promise, on hosts without finished pods (so it always applies)."""
    after = simulate(obs, plan(want, obs, now=NOW, policy=STEADY))
    assert plan(want, after, now=NOW, policy=STEADY).actions == ()
