"""When a burst of file events should start a reconcile pass: a leading-edge debounce.

PURE. The daemon feeds `Debounce` the time of each file event and of each pass it
starts, and asks `due()` when the next file-triggered pass may run. The first event
after a quiet period (no event for `quiet_s`) is due at once, so a single drop is acted
on without waiting; events that follow it within `quiet_s` (during or right after the
pass it started) are held and coalesce into one more pass, due once they have been
quiet for `quiet_s` but never more than `max_s` after the first of them. A burst of
1,000 files therefore costs one or two passes, and a steady stream one pass per `max_s`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Debounce:
    """The pending file events: a value, changed only by returning a new one."""

    quiet_s: float
    max_s: float
    first: float | None = None
    """The first event not yet taken by a pass (None: nothing pending)."""
    last: float | None = None
    """The newest event not yet taken by a pass."""
    leading: bool = False
    """The pending events began after a quiet period: due at once."""
    previous: float | None = None
    """The newest event ever seen, taken or not (whether a new event ends a quiet period)."""

    def event(self, now: float) -> Debounce:
        """Return the state after a file event at `now`."""
        if self.first is None:
            quiet = self.previous is None or now - self.previous >= self.quiet_s
            return replace(self, first=now, last=now, leading=quiet, previous=now)
        return replace(self, last=now, previous=now)

    def due(self) -> float | None:
        """Return when the pending events should start a pass (None: none pending)."""
        if self.first is None or self.last is None:
            return None
        if self.leading:
            return self.first
        return min(self.last + self.quiet_s, self.first + self.max_s)

    def taken(self) -> Debounce:
        """Return the state after a pass started: it reads every event seen so far."""
        return replace(self, first=None, last=None, leading=False)

    def reconfigure(self, *, quiet_s: float, max_s: float) -> Debounce:
        """Return the state with new settings (a reloaded config); pending events stay."""
        return replace(self, quiet_s=quiet_s, max_s=max_s)
