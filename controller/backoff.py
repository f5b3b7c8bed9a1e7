"""Crash-loop and retry backoff: failure counts -> delays, exits -> RestartState.

PURE. No clock inside: every function takes `now` (Unix seconds) from the
caller. `reconcile` calls `record_exit` when the planner removed a finished pod
of the current spec (`Remove(reason=EXITED)`), `record_running` for pods that
run, and `delay` for failed actions; `daemon` calls `delay` for failed passes.
The planner reads the resulting `RestartState` (`not_before`, `completed_hash`)
to hold starts back. Must never read a clock, sleep, log or do I/O.
"""

from __future__ import annotations

import math
from dataclasses import replace

from controller.model import Restart, RestartPolicy, RestartState, SpecHash


def delay(failures: int, *, base: float, cap: float) -> float:
    """Return how long to wait after `failures` consecutive failures.

    0 for no failure, then `base * 2**(failures - 1)` capped at `cap`: base, 2·base,
    4·base, ... (kubelet's CrashLoopBackOff: 10 s doubling to 300 s). This is
    client-go's `ItemExponentialFailureRateLimiter` counted from 1 instead of 0:
    the first failure waits `base`. Raise ValueError for negative arguments.
    """
    if failures < 0 or base < 0 or cap < 0:
        raise ValueError(f"delay() needs non-negative arguments, got {failures=} {base=} {cap=}")
    if failures == 0 or base == 0:
        return 0.0
    if base >= cap:
        return float(cap)
    # Compare exponents before computing 2**(failures-1): a task that crashed a
    # million times must not overflow a float (cap/base itself may overflow too).
    if failures - 1 >= math.log2(cap) - math.log2(base):
        return float(cap)
    return min(float(cap), math.ldexp(base, failures - 1))


def record_exit(
    state: RestartState,
    *,
    exit_code: int | None,
    spec_hash: SpecHash,
    restart: Restart,
    now: float,
) -> RestartState:
    """Return `state` after a pod of the current spec (`spec_hash`) finished at `now`.

    The exit is remembered in `last_exit_code`, then by `restart.policy`:
    - never: the spec is done (`completed_hash = spec_hash`), no backoff;
    - on-failure: exit code 0 means done, like never; any other code, and an
      unknown one (None: rkt saw no exit status, e.g. the pod was killed), counts
      as a failure, like always;
    - always: `restarts + 1`, and no start before
      `now + delay(restarts, base=initial_delay_s, cap=max_delay_s)`.
    Counters that belong to another spec (`state.spec_hash` differs) are dropped
    first: a new spec starts with a clean slate. The result carries `spec_hash`.
    """
    if state.spec_hash is not None and state.spec_hash != spec_hash:
        state = RestartState()
    state = replace(state, spec_hash=spec_hash, last_exit_code=exit_code)
    done = restart.policy == RestartPolicy.NEVER or (
        restart.policy == RestartPolicy.ON_FAILURE and exit_code == 0
    )
    if done:
        return replace(state, completed_hash=spec_hash, not_before=None)
    restarts = state.restarts + 1
    wait = delay(restarts, base=restart.initial_delay_s, cap=restart.max_delay_s)
    return replace(state, restarts=restarts, not_before=now + wait)


def record_running(
    state: RestartState, *, running_since: float, restart: Restart, now: float
) -> RestartState:
    """Return `state` given that a pod of the task has been running since `running_since`.

    Once it ran for at least `restart.stable_after_s`, the crash loop is over:
    `restarts` goes back to 0 and `not_before` is cleared (kubelet resets its
    backoff the same way). `last_exit_code` and `completed_hash` are history and
    stay. Otherwise, or when there is nothing to reset, `state` itself is returned,
    so callers can persist only when `result != state`. Call it only for a pod of
    the task's current spec.
    """
    if now - running_since < restart.stable_after_s:
        return state
    if state.restarts == 0 and state.not_before is None:
        return state
    return replace(state, restarts=0, not_before=None)
