"""Prometheus metrics of the controller, rendered for node_exporter's textfile collector.

SHELL (holds counters across passes; does no I/O). `statusfiles.StatusWriter`
owns one `Metrics`, feeds it every pass with `observe_pass()` and writes
`render()` to `<status_dir>/rktctl.prom` with `fsio.atomic_write`. Exposition is
done by prometheus-client (never by hand), with private registries so nothing
of the process (GC, platform collectors) leaks into the file. The per-task
families (one series per task: thousands) are updated in place, only for the
tasks whose values changed, each in a registry of its own whose rendered text is
kept until one of its series changes; the small pass-wide families are rendered
every time. Never raises for data conditions; never talks to rkt.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from controller import __version__
from controller.controllerstatus import action_name
from controller.healthmetrics import HealthMetrics
from controller.imagefetch import FETCH_RESULTS
from controller.model import HoldReason, Outcome, PassReport, PassResult
from controller.phase import TaskPhase

PASS_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Pre-created so `rate()` and `increase()` see a zero before the first failure.
RKT_SUBCOMMANDS = ("list", "version", "fetch", "prepare", "run-prepared", "stop", "rm", "gc")


class Metrics:
    """The controller's metrics in a private registry; see README "Metrics" for each name."""

    def __init__(self, *, version: str = __version__) -> None:
        # `*_created` series (one per counter child) only double the file: node_exporter
        # re-exports them as plain gauges and no alert uses them. The switch is
        # process-wide, and this process exposes no other metrics.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._info = Gauge("rktctl_build_info", "Always 1; labelled with the rktctl version.",
                           ["version"], registry=r)  # fmt: skip
        self._up = Gauge(
            "rktctl_up",
            "1 while the controller runs its loop; 0 once it has stopped (written at shutdown).",
            registry=r,
        )
        self._ready = Gauge(
            "rktctl_ready",
            "1 once a pass has seen a complete rkt observation (the READY=1 moment).",
            registry=r,
        )
        self._heartbeat = Gauge(
            "rktctl_heartbeat_timestamp_seconds",
            "Unix time this file was last written by the loop.",
            registry=r,
        )
        self._last_pass = Gauge(
            "rktctl_last_pass_timestamp_seconds", "Unix time the last pass finished.", registry=r
        )
        self._last_ok = Gauge(
            "rktctl_last_successful_pass_timestamp_seconds",
            "Unix time the last pass that could observe rkt finished (result other than failed).",
            registry=r,
        )
        self._duration = Histogram(
            "rktctl_pass_duration_seconds",
            "Wall time of reconcile passes.",
            buckets=PASS_DURATION_BUCKETS,
            registry=r,
        )
        self._passes = Counter("rktctl_passes", "Reconcile passes by result.", ["result"],
                               registry=r)  # fmt: skip
        self._actions = Counter(
            "rktctl_actions",
            "Executed plan actions by kind (start, run_prepared, stop, remove) and result.",
            ["action", "result"],
            registry=r,
        )
        self._rkt_failures = Counter(
            "rktctl_rkt_command_failures",
            "rkt invocations that failed (non-zero exit, timeout, bad output) by subcommand.",
            ["subcommand"],
            registry=r,
        )
        self._fetches = Counter(
            "rktctl_image_fetches",
            "Fetch phases of starts by result: fetched (rkt fetch ran), cached (the image was "
            "known to be in the store), failed.",
            ["result"],
            registry=r,
        )
        self._fetch_seconds = Counter(
            "rktctl_image_fetch_seconds",
            "Wall time spent in rkt fetch (the fetch phase of starts).",
            registry=r,
        )
        self._tasks = Gauge("rktctl_tasks", "Tasks per phase.", ["phase"], registry=r)
        # The per-task families come from one collector over a plain dict (a Gauge child
        # per series costs ~1 KB: 30 MB at 10,000 tasks), each family in a registry of
        # its own whose text is rendered again only when one of its values changed.
        self._per_task = [CollectorRegistry(auto_describe=False) for _ in _TASK_FAMILIES]
        self._per_task_text: list[bytes | None] = [None] * len(_TASK_FAMILIES)
        self._task_values: dict[str, tuple[str | None, int | None, int | None]] = {}
        """Per task: (phase, restarts, last exit code) as the per-task series show them."""
        self._observed_docs: Mapping[str, Mapping[str, Any]] | None = None
        """The task documents last observed: the same object again means no task moved."""
        for index, registry in enumerate(self._per_task):
            registry.register(_TaskFamily(index, self._task_values))
        self._guard = Gauge(
            "rktctl_deletion_guard_held",
            "1 while the deletion guard holds back stopping pods.",
            registry=r,
        )
        self._ignored = Gauge(
            "rktctl_ignored_files", "Files in the desired dir that are not manifests.", registry=r
        )
        self._withheld = Gauge(
            "rktctl_withheld_actions",
            "Actions the last pass planned but did not run (spec.suspend, mode report-only).",
            ["action"],
            registry=r,
        )
        self._retained = Gauge(
            "rktctl_task_retained_pods",
            "Exited pods of the task kept for a post-mortem (exited_pods_keep).",
            ["task"],
            registry=r,
        )
        self._health = HealthMetrics(r)
        self._info.labels(version=version).set(1)
        self._up.set(1)
        for phase in TaskPhase:
            self._tasks.labels(phase=str(phase)).set(0)
        for result in PassResult:
            self._passes.labels(result=str(result))
        for subcommand in RKT_SUBCOMMANDS:
            self._rkt_failures.labels(subcommand=subcommand)
        for fetch_result in FETCH_RESULTS:
            self._fetches.labels(result=fetch_result)

    def observe_pass(
        self, report: PassReport, task_docs: Mapping[str, Mapping[str, Any]], now: float
    ) -> None:
        """Update every metric from one pass's report and the task documents built from it."""
        if task_docs is not self._observed_docs:  # the same object: nothing per task moved
            self._observe_tasks(task_docs)
            self._observed_docs = task_docs

        self._duration.observe(max(report.finished_at - report.started_at, 0.0))
        self._passes.labels(result=str(report.result)).inc()
        self._last_pass.set(report.finished_at)
        if report.result != PassResult.FAILED:
            self._last_ok.set(report.finished_at)
        if report.observation is not None and report.observation.complete:
            self._ready.set(1)  # sticky: READY=1 is sent once, too
        self._heartbeat.set(now)
        held = any(h.reason == HoldReason.DELETION_GUARD for h in report.plan.holds)
        self._guard.set(1 if held else 0)
        self._ignored.set(len(report.desired.ignored))
        withheld = dict.fromkeys(("start", "run_prepared", "stop", "remove", "signal"), 0)
        for action in report.plan.withheld:
            withheld[action_name(action)] = withheld.get(action_name(action), 0) + 1
        for name, count in withheld.items():
            self._withheld.labels(action=name).set(count)
        if report.observation is not None:  # else: the last known figures stand
            self._retained.clear()
            for task, pods in report.retained.items():
                self._retained.labels(task=task).set(len(pods))
        for outcome in report.outcomes:
            result = _action_result(outcome)
            self._actions.labels(action=action_name(outcome.action), result=result).inc()

    def _observe_tasks(self, task_docs: Mapping[str, Mapping[str, Any]]) -> None:
        """The per-task series and the phase counts, from each task's document."""
        values = self._task_values
        for name in [n for n in values if n not in task_docs]:
            self._set_task(name, values.pop(name), (None, None, None))  # no stale series
        for name, doc in task_docs.items():
            phase = doc.get("phase")
            restarts = doc.get("restarts")
            code = doc.get("last_exit_code")
            new = (
                phase if isinstance(phase, str) else None,
                restarts if isinstance(restarts, int) and not isinstance(restarts, bool) else None,
                code if isinstance(code, int) and not isinstance(code, bool) else None,
            )
            old = values.get(name, (None, None, None))
            if new != old:
                self._set_task(name, old, new)
                values[name] = new
        counts = Tally(v[0] for v in values.values() if v[0] is not None)
        for phase in {*(str(p) for p in TaskPhase), *counts}:
            self._tasks.labels(phase=phase).set(counts.get(phase, 0))
        self._health.observe(task_docs)

    def _set_task(
        self,
        name: str,
        old: tuple[str | None, int | None, int | None],
        new: tuple[str | None, int | None, int | None],
    ) -> None:
        """Note that one task's series move from `old` to `new` (the caller stores `new`)."""
        for index in range(len(_TASK_FAMILIES)):
            if old[index] != new[index]:
                self._per_task_text[index] = None

    def record_rkt_failure(self, subcommand: str) -> None:
        """Count one failed rkt invocation of `subcommand` (e.g. "prepare")."""
        self._rkt_failures.labels(subcommand=subcommand or "?").inc()

    def record_fetch(self, result: str, seconds: float) -> None:
        """Count one fetch phase (`imagefetch.FETCH_RESULTS`) and the time rkt fetch took."""
        self._fetches.labels(result=result).inc()
        self._fetch_seconds.inc(seconds)

    def set_up(self, up: bool) -> None:
        """Mark the loop as running (1) or shutting down (0) for the last write."""
        self._up.set(1 if up else 0)

    def collect(self) -> Iterator[Metric]:
        """Every metric family the textfile holds (the pass-wide and the per-task ones)."""
        for registry in (self.registry, *self._per_task):
            yield from registry.collect()

    def render(self) -> bytes:
        """Return the metrics in the Prometheus text format (what node_exporter reads)."""
        for index, registry in enumerate(self._per_task):
            if self._per_task_text[index] is None:
                self._per_task_text[index] = generate_latest(registry)
        return generate_latest(self.registry) + b"".join(
            text for text in self._per_task_text if text is not None
        )


_TASK_FAMILIES = (
    ("rktctl_task_phase", "1 for each task's current phase.", ("task", "phase")),
    (
        "rktctl_task_restarts",
        "Restarts of the task's current spec counted by the crash-loop backoff.",
        ("task",),
    ),
    (
        "rktctl_task_last_exit_code",
        "Exit code of the task's last finished pod (absent until one finished).",
        ("task",),
    ),
)


class _TaskFamily(Collector):
    """One per-task gauge family, read from the values Metrics keeps per task."""

    def __init__(
        self, index: int, values: Mapping[str, tuple[str | None, int | None, int | None]]
    ) -> None:
        self._index = index
        self._values = values

    def collect(self) -> Iterator[Metric]:
        name, documentation, labels = _TASK_FAMILIES[self._index]
        family = GaugeMetricFamily(name, documentation, labels=list(labels))
        for task, values in sorted(self._values.items()):
            value = values[self._index]
            if value is None:
                continue
            if self._index == 0:
                family.add_metric([task, str(value)], 1)
            else:
                family.add_metric([task], float(value))
        yield family


def _action_result(outcome: Outcome) -> str:
    if outcome.ok:
        return "ok"
    if outcome.deferred:
        return "deferred"
    return "skipped" if outcome.skipped else "failed"
