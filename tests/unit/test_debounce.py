"""The leading-edge debounce of file events, driven by event times and a fake clock.

`Debounce` is a value; `_Loop` below plays the daemon's part: at each tick it starts a
pass when `due()` has come, the pass takes `pass_s` (events keep arriving meanwhile),
and the passes it started are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from controller.debounce import Debounce

QUIET = 0.1
MAX = 1.0


@dataclass
class _Loop:
    """The daemon's use of Debounce on a fake clock: events at given times, passes of a length."""

    pass_s: float = 0.02
    state: Debounce = field(default_factory=lambda: Debounce(quiet_s=QUIET, max_s=MAX))
    passes: list[float] = field(default_factory=list)
    busy_until: float = float("-inf")

    def run(self, events: list[float], *, until: float, tick: float = 0.001) -> list[float]:
        pending = sorted(events)
        now = 0.0
        while now <= until:
            while pending and pending[0] <= now:
                self.state = self.state.event(pending.pop(0))
            due = self.state.due()
            if now >= self.busy_until and due is not None and due <= now:
                self.passes.append(now)
                self.state = self.state.taken()
                self.busy_until = now + self.pass_s
            now = round(now + tick, 6)
        return self.passes


def test_nothing_pending_is_never_due() -> None:
    assert Debounce(quiet_s=QUIET, max_s=MAX).due() is None


def test_first_event_after_a_quiet_period_is_due_at_once() -> None:
    state = Debounce(quiet_s=QUIET, max_s=MAX).event(5.0)
    assert state.due() == 5.0
    # Another quiet period later: again at once.
    state = state.taken().event(5.5)
    assert state.due() == 5.5


def test_event_soon_after_a_pass_waits_for_quiet() -> None:
    state = Debounce(quiet_s=QUIET, max_s=MAX).event(1.0).taken().event(1.05)
    assert state.due() == pytest.approx(1.15)
    state = state.event(1.12)
    assert state.due() == pytest.approx(1.22)


def test_events_while_due_join_the_leading_pass() -> None:
    state = Debounce(quiet_s=QUIET, max_s=MAX).event(1.0).event(1.001).event(1.002)
    assert state.due() == 1.0
    assert state.taken().due() is None


def test_steady_stream_is_capped_by_max() -> None:
    state = Debounce(quiet_s=QUIET, max_s=MAX).event(0.0).taken()
    for i in range(1, 100):
        state = state.event(i * 0.05)  # never quiet for 0.1 s
    assert state.due() == pytest.approx(0.05 + MAX)


def test_single_drop_starts_one_pass_without_waiting() -> None:
    passes = _Loop().run([0.5], until=2.0)
    assert passes == [0.5]


def test_burst_of_a_thousand_files_takes_at_most_two_passes() -> None:
    burst = [0.5 + i * 0.00005 for i in range(1000)]  # 1,000 renames within 50 ms
    passes = _Loop(pass_s=0.03).run(burst, until=3.0)
    assert 1 <= len(passes) <= 2
    assert passes[0] == 0.5  # the leading edge does not wait
    assert passes[-1] >= burst[-1]  # the last pass saw the last file


def test_burst_longer_than_a_pass_still_coalesces() -> None:
    # Events for 0.3 s, passes of 0.2 s: the first pass leads, the rest wait for quiet.
    burst = [1.0 + i * 0.001 for i in range(300)]
    passes = _Loop(pass_s=0.2).run(burst, until=4.0)
    assert len(passes) == 2
    assert passes[1] >= burst[-1] + QUIET


def test_separate_drops_each_lead() -> None:
    passes = _Loop().run([0.2, 0.9, 1.6], until=3.0)
    assert passes == [0.2, 0.9, 1.6]


def test_reconfigure_keeps_pending_events() -> None:
    state = Debounce(quiet_s=QUIET, max_s=MAX).event(1.0).taken().event(1.01)
    state = state.reconfigure(quiet_s=0.5, max_s=2.0)
    assert state.due() == pytest.approx(1.51)
