"""The reading side of status: is the controller up, and the `rktctl status` table.

PURE. `cli` reads controller.json and the task documents (`statusfiles`) and hands
them here with `now`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controller.phase import TaskPhase
from controller.termination import short_uuid
from controller.timefmt import human_age, parse_iso

STALE_HEARTBEAT_INTERVALS = 3
"""`rktctl status` fails when the heartbeat is older than this many resync intervals."""


def heartbeat_problem(controller: Mapping[str, Any] | None, *, now: float) -> str | None:
    """Given controller.json (or None) and `now`, say why the controller looks down, or None.

    Down means: no document, an unreadable heartbeat, or a heartbeat older than
    STALE_HEARTBEAT_INTERVALS resync intervals.
    """
    if controller is None:
        return "no controller.json: the daemon has not written status yet (is it running?)"
    beat = parse_iso(controller.get("heartbeat_at"))
    interval = controller.get("resync_interval_s")
    if beat is None or not isinstance(interval, int | float) or isinstance(interval, bool):
        return "controller.json has no readable heartbeat_at / resync_interval_s"
    age = now - beat
    limit = STALE_HEARTBEAT_INTERVALS * float(interval)
    if age > limit:
        pid = controller.get("pid", "?")
        return (
            f"controller heartbeat is {human_age(age)} old (limit {human_age(limit)} = "
            f"{STALE_HEARTBEAT_INTERVALS} x resync_interval_s {interval:g}): the daemon "
            f"(pid {pid}) is not running or is stuck"
        )
    return None


def render_table(
    task_docs: Mapping[str, Mapping[str, Any]],
    *,
    now: float,
    invalid_manifests: Sequence[object] = (),
) -> str:
    """Render task documents as the `rktctl status` table (NAME PHASE POD RESTARTS AGE MESSAGE).

    AGE is how long the task has been in its phase. Rows are sorted by name, then one
    `-  Invalid` row per broken manifest whose task name could not be read (controller.json's
    `invalid_manifests`: unreadable, refused or dangling files, unreadable directories).
    """
    rows = [("NAME", "PHASE", "POD", "RESTARTS", "AGE", "MESSAGE")]
    for name in sorted(task_docs):
        doc = task_docs[name]
        pod = doc.get("pod")
        uuid = pod.get("uuid") if isinstance(pod, Mapping) else None
        since = parse_iso(doc.get("since"))
        rows.append((
            str(doc.get("name", name)),
            str(doc.get("phase", "?")),
            short_uuid(uuid) if isinstance(uuid, str) else "-",
            str(doc.get("restarts", 0)),
            human_age(now - since) if since is not None else "-",
            str(doc.get("message", "")),
        ))  # fmt: skip
    for item in invalid_manifests:
        if isinstance(item, Mapping):
            messages = item.get("messages")
            text = "; ".join(str(m) for m in messages) if isinstance(messages, list) else ""
            message = text or str(item.get("source"))
            rows.append(("-", str(TaskPhase.INVALID), "-", "-", "-", message))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True))
        + "  "
        + row[5]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"
