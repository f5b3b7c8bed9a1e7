"""Health checks: the timing and the verdict of one task's check, on a given clock.

PURE. The prober (`controller/probes.py`) runs a check when `due_at` says so and
feeds each result to `record`; the reconcile pass reads the resulting HealthView:
Ready needs `state == HEALTHY`, and `live == False` makes the planner restart the pod
(liveness, under the task's restart policy and crash-loop backoff).

- The first check is due as soon as the pod runs, then every `interval_s` after the
  previous result.
- `success_threshold` successes in a row make the pod Healthy.
- A failure before `started_at + start_period_s` does not count (the app may still
  be booting); after it, `failure_threshold` failures in a row make it Unhealthy and
  not live. One check serves readiness and liveness, as Nomad's and Docker's do.
- A pod that is not live is checked no more; its view keeps the failure that
  condemned it, for status and history.
- A view belongs to one pod: a new pod starts over (`begin`).
"""

from __future__ import annotations

from dataclasses import replace

from controller.model import CheckResult, HealthCheck, HealthState, HealthView, PodUUID

OUTPUT_MAX_BYTES = 256
"""A check's output kept in status: enough for a status line or an error, never a page."""


def begin(pod: PodUUID, *, now: float) -> HealthView:
    """Return the view of a pod not checked yet."""
    return HealthView(pod=pod, state=HealthState.STARTING, since=now)


def due_at(view: HealthView, check: HealthCheck, *, started_at: float) -> float:
    """Return when the next check of `view`'s pod is due (Unix seconds)."""
    if view.last is None:
        return started_at
    return view.last.at + check.interval_s


def record(
    view: HealthView, check: HealthCheck, result: CheckResult, *, started_at: float
) -> HealthView:
    """Return `view` after `result`; `started_at` is when the pod started running.

    A pod already found not live keeps that verdict: it is being stopped, so what a
    check of it says now (refused, most likely) is no reason of its own."""
    if not view.live:
        return view
    result = replace(result, output=bound_output(result.output))
    if result.ok:
        successes = view.consecutive_successes + 1
        state = view.state
        if successes >= check.success_threshold:
            state = HealthState.HEALTHY
        return _moved(view, state, result, failures=0, successes=successes, live=True)
    if result.at < started_at + check.start_period_s and view.state != HealthState.HEALTHY:
        # Still starting: the failure is shown but not counted.
        return _moved(view, view.state, result, failures=0, successes=0, live=True)
    failures = view.consecutive_failures + 1
    if failures >= check.failure_threshold:
        return _moved(view, HealthState.UNHEALTHY, result, failures=failures, successes=0,
                      live=False)  # fmt: skip
    return _moved(view, view.state, result, failures=failures, successes=0, live=True)


def bound_output(text: str) -> str:
    """`text` as one line of at most OUTPUT_MAX_BYTES UTF-8 bytes (control chars escaped)."""
    line = " ".join(text.split())
    cleaned = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in line)
    data = cleaned.encode("utf-8")
    if len(data) <= OUTPUT_MAX_BYTES:
        return cleaned
    return data[: OUTPUT_MAX_BYTES - 3].decode("utf-8", errors="ignore") + "..."


def summary(view: HealthView) -> str:
    """One line for status messages: the state and the last result."""
    last = view.last
    if last is None:
        return "health check not run yet"
    verdict = "passed" if last.ok else "failed"
    streak = view.consecutive_successes if last.ok else view.consecutive_failures
    said = f": {last.output}" if last.output else ""
    return f"health check {verdict} ({streak} in a row){said}"


def _moved(
    view: HealthView,
    state: HealthState,
    result: CheckResult,
    *,
    failures: int,
    successes: int,
    live: bool,
) -> HealthView:
    since = view.since if state == view.state else result.at
    return replace(
        view,
        state=state,
        since=since,
        consecutive_failures=failures,
        consecutive_successes=successes,
        last=result,
        live=live,
    )
