"""backoff: the delay formula and the RestartState transitions after exits and stable runs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.backoff import delay, record_exit, record_running
from controller.model import Restart, RestartPolicy, RestartState, SpecHash

H1 = SpecHash("h1")
H2 = SpecHash("h2")
NOW = 1_000.0
ALWAYS = Restart(policy=RestartPolicy.ALWAYS, initial_delay_s=10, max_delay_s=300)
ON_FAILURE = Restart(policy=RestartPolicy.ON_FAILURE, initial_delay_s=10, max_delay_s=300)
NEVER = Restart(policy=RestartPolicy.NEVER, initial_delay_s=10, max_delay_s=300)


@pytest.mark.parametrize(
    ("failures", "base", "cap", "expected"),
    [
        pytest.param(0, 10, 300, 0.0, id="no-failure-no-wait"),
        pytest.param(1, 10, 300, 10.0, id="first-failure-waits-base"),
        pytest.param(2, 10, 300, 20.0, id="second-doubles"),
        pytest.param(5, 10, 300, 160.0, id="fifth"),
        pytest.param(6, 10, 300, 300.0, id="sixth-capped"),
        pytest.param(10**6, 10, 300, 300.0, id="huge-count-no-overflow"),
        pytest.param(10_000, 5e-324, 1e6, 1e6, id="subnormal-base-no-overflow"),
        pytest.param(3, 0.5, 30, 2.0, id="fractional-base"),
        pytest.param(1, 50, 30, 30.0, id="base-above-cap"),
        pytest.param(4, 0, 30, 0.0, id="zero-base"),
        pytest.param(4, 10, 0, 0.0, id="zero-cap"),
    ],
)
def test_delay(failures: int, base: float, cap: float, expected: float) -> None:
    assert delay(failures, base=base, cap=cap) == expected


@pytest.mark.parametrize(
    ("failures", "base", "cap"),
    [
        pytest.param(-1, 10, 300, id="negative-failures"),
        pytest.param(1, -10, 300, id="negative-base"),
        pytest.param(1, 10, -1, id="negative-cap"),
    ],
)
def test_delay_rejects_negative_arguments(failures: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        delay(failures, base=base, cap=cap)


@settings(deadline=None)
@given(
    failures=st.integers(min_value=0, max_value=10_000),
    base=st.floats(min_value=0, max_value=1e6),
    cap=st.floats(min_value=0, max_value=1e6),
)
def test_delay_is_monotonic_and_capped(failures: int, base: float, cap: float) -> None:
    d = delay(failures, base=base, cap=cap)
    assert 0 <= d <= cap
    assert delay(failures + 1, base=base, cap=cap) >= d


@pytest.mark.parametrize(
    ("state", "exit_code", "restart", "expected"),
    [
        pytest.param(
            RestartState(),
            1,
            ALWAYS,
            RestartState(restarts=1, not_before=NOW + 10, last_exit_code=1, spec_hash=H1),
            id="always-first-crash-waits-initial-delay",
        ),
        pytest.param(
            RestartState(),
            0,
            ALWAYS,
            RestartState(restarts=1, not_before=NOW + 10, last_exit_code=0, spec_hash=H1),
            id="always-clean-exit-also-backs-off",
        ),
        pytest.param(
            RestartState(restarts=3, not_before=NOW - 5, last_exit_code=2, spec_hash=H1),
            2,
            ALWAYS,
            RestartState(restarts=4, not_before=NOW + 80, last_exit_code=2, spec_hash=H1),
            id="always-fourth-crash-doubles",
        ),
        pytest.param(
            RestartState(restarts=9, spec_hash=H1),
            137,
            ALWAYS,
            RestartState(restarts=10, not_before=NOW + 300, last_exit_code=137, spec_hash=H1),
            id="always-capped-at-max-delay",
        ),
        pytest.param(
            RestartState(),
            0,
            ON_FAILURE,
            RestartState(last_exit_code=0, completed_hash=H1, spec_hash=H1),
            id="on-failure-success-completes",
        ),
        pytest.param(
            RestartState(restarts=2, not_before=NOW - 1, spec_hash=H1),
            0,
            ON_FAILURE,
            RestartState(restarts=2, last_exit_code=0, completed_hash=H1, spec_hash=H1),
            id="on-failure-success-after-crashes-clears-not-before",
        ),
        pytest.param(
            RestartState(),
            3,
            ON_FAILURE,
            RestartState(restarts=1, not_before=NOW + 10, last_exit_code=3, spec_hash=H1),
            id="on-failure-failure-restarts",
        ),
        pytest.param(
            RestartState(),
            None,
            ON_FAILURE,
            RestartState(restarts=1, not_before=NOW + 10, last_exit_code=None, spec_hash=H1),
            id="on-failure-unknown-exit-counts-as-failure",
        ),
        pytest.param(
            RestartState(),
            3,
            NEVER,
            RestartState(last_exit_code=3, completed_hash=H1, spec_hash=H1),
            id="never-completes-on-failure",
        ),
        pytest.param(
            RestartState(),
            0,
            NEVER,
            RestartState(last_exit_code=0, completed_hash=H1, spec_hash=H1),
            id="never-completes-on-success",
        ),
        pytest.param(
            RestartState(restarts=7, not_before=NOW + 200, completed_hash=H2, spec_hash=H2),
            1,
            ALWAYS,
            RestartState(restarts=1, not_before=NOW + 10, last_exit_code=1, spec_hash=H1),
            id="other-spec-counters-start-afresh",
        ),
        pytest.param(
            RestartState(restarts=2, last_exit_code=1),
            1,
            ALWAYS,
            RestartState(restarts=3, not_before=NOW + 40, last_exit_code=1, spec_hash=H1),
            id="state-without-spec-keeps-counting",
        ),
    ],
)
def test_record_exit(
    state: RestartState, exit_code: int | None, restart: Restart, expected: RestartState
) -> None:
    assert record_exit(state, exit_code=exit_code, spec_hash=H1, restart=restart, now=NOW) == (
        expected
    )


STABLE = Restart(stable_after_s=600)


@pytest.mark.parametrize(
    ("state", "running_since", "expected"),
    [
        pytest.param(
            RestartState(restarts=4, not_before=NOW - 700, last_exit_code=1, spec_hash=H1),
            NOW - 600,
            RestartState(restarts=0, not_before=None, last_exit_code=1, spec_hash=H1),
            id="stable-run-resets-counters-keeps-history",
        ),
        pytest.param(
            RestartState(restarts=4, not_before=NOW - 700, last_exit_code=1, spec_hash=H1),
            NOW - 599,
            RestartState(restarts=4, not_before=NOW - 700, last_exit_code=1, spec_hash=H1),
            id="not-yet-stable-unchanged",
        ),
        pytest.param(
            RestartState(completed_hash=H2, last_exit_code=0),
            NOW - 10_000,
            RestartState(completed_hash=H2, last_exit_code=0),
            id="nothing-to-reset",
        ),
    ],
)
def test_record_running(state: RestartState, running_since: float, expected: RestartState) -> None:
    assert record_running(state, running_since=running_since, restart=STABLE, now=NOW) == expected


def test_record_running_returns_the_same_state_when_nothing_changes() -> None:
    """The shell persists only `if new != state`; identity keeps that cheap and obvious."""
    state = RestartState(restarts=2, spec_hash=H1)
    assert record_running(state, running_since=NOW, restart=STABLE, now=NOW) is state


def test_crash_loop_grows_then_resets_after_a_stable_run() -> None:
    """The kubelet CrashLoopBackOff story end to end: 10, 20, 40 s ... then a clean slate."""
    state = RestartState()
    waits = []
    now = NOW
    for _ in range(7):
        state = record_exit(state, exit_code=1, spec_hash=H1, restart=ALWAYS, now=now)
        assert state.not_before is not None
        waits.append(state.not_before - now)
        now = state.not_before
    assert waits == [10, 20, 40, 80, 160, 300, 300]
    state = record_running(state, running_since=now, restart=ALWAYS, now=now + 600)
    state = record_exit(state, exit_code=1, spec_hash=H1, restart=ALWAYS, now=now + 601)
    assert state.not_before == now + 611
