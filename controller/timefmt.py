"""Times in status documents: ISO-8601 UTC text both ways, and kubectl-style ages.

PURE. Every time is an argument; nothing here reads a clock.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float) -> str:
    """Return Unix time `ts` as ISO-8601 UTC with millisecond precision and a `Z`."""
    text = datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_iso(text: object) -> float | None:
    """Return the Unix time of an ISO-8601 string written by `iso`, or None if unreadable."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def optional_iso(ts: float | None) -> str | None:
    return None if ts is None else iso(ts)


def human_age(seconds: float) -> str:
    """Format a duration the way kubectl's AGE column does: 42s, 5m12s, 3h, 2d4h."""
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if days < 2:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"
