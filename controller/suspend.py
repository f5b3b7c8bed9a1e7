"""Suspend and report-only: plan everything, act on nothing for the tasks concerned.

PURE. Flux's `suspend` and Argo CD without auto-sync: the planner runs as usual, so
status and metrics say exactly what rktctl *would* do, but the actions of a task
whose manifest says `spec.suspend: true` - or of every task, desired or not, when
the controller's `mode` is `report-only` - move from `Plan.actions` to
`Plan.withheld`, each suspended task gets a SUSPENDED hold whose message lists them,
and no rkt command that changes a pod runs for it (`rkt list` still does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controller.model import (
    Action,
    Hold,
    HoldReason,
    Invalid,
    Plan,
    Remove,
    RunPrepared,
    Signal,
    Start,
    Stop,
    TaskName,
    TaskSpec,
)

REPORT_ONLY = "report-only"


def suspended_tasks(tasks: Mapping[TaskName, TaskSpec | Invalid]) -> frozenset[TaskName]:
    """The valid tasks whose manifest sets `spec.suspend: true`."""
    return frozenset(n for n, s in tasks.items() if isinstance(s, TaskSpec) and s.suspend)


def withhold(the_plan: Plan, suspended: frozenset[TaskName], *, report_only: bool) -> Plan:
    """Return `the_plan` with the actions of suspended tasks (all, if report_only) withheld.

    Every task in `suspended` gets a hold, also when it has nothing to do (its status
    must say it is paused); in report-only mode only tasks with withheld actions do
    (a converged task there is simply what it is).
    """
    kept: list[Action] = []
    withheld: list[Action] = []
    for action in the_plan.actions:
        (withheld if report_only or action.task in suspended else kept).append(action)
    by_task: dict[TaskName, list[Action]] = {}
    for action in withheld:
        by_task.setdefault(action.task, []).append(action)
    holds: list[Hold] = []
    for task in sorted(set(by_task) | suspended):
        why = "spec.suspend is true" if task in suspended else "mode is report-only"
        text = message(why, by_task.get(task, ()))
        holds.append(Hold(reason=HoldReason.SUSPENDED, task=task, message=text))
    if not withheld and not holds:
        return the_plan
    return Plan(
        actions=tuple(kept),
        holds=(*the_plan.holds, *holds),
        requeue_after=the_plan.requeue_after,
        withheld=(*the_plan.withheld, *withheld),
    )


def message(why: str, actions: Iterable[Action]) -> str:
    """`suspended (why): would stop pod 1a2b3c4d (spec_changed), start (spec_changed)`."""
    words = [describe(a) for a in actions]
    if not words:
        return f"suspended ({why}); nothing to do: the pods match the manifest"
    return f"suspended ({why}); would {', '.join(words)} (`rktctl plan` shows the rkt commands)"


def describe(action: Action) -> str:
    if isinstance(action, Start):
        return f"start a pod ({action.reason})"
    if isinstance(action, RunPrepared):
        return f"run prepared pod {action.uuid[:8]} ({action.reason})"
    if isinstance(action, Stop):
        return f"stop pod {action.uuid[:8]} ({action.reason})"
    if isinstance(action, Signal):
        return f"send SIG{action.signal} to the app of pod {action.uuid[:8]} ({action.reason})"
    assert isinstance(action, Remove)
    return f"remove pod {action.uuid[:8]} ({action.reason})"
