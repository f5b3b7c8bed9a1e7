"""The health-check metrics of `spec.health` tasks, read from their status documents.

SHELL (prometheus-client). `metrics.Metrics` owns one and feeds it each pass's task
documents; only tasks whose document carries `health` get samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from controller.model import HealthState


class HealthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._state = Gauge(
            "rktctl_task_health",
            "1 for the health state of the task's current pod (Starting, Healthy, Unhealthy).",
            ["task", "state"],
            registry=registry,
        )
        self._duration = Gauge(
            "rktctl_task_health_check_duration_seconds",
            "How long the task's last health check took.",
            ["task"],
            registry=registry,
        )
        self._failures = Gauge(
            "rktctl_task_health_consecutive_failures",
            "Health checks of the task's current pod that failed in a row.",
            ["task"],
            registry=registry,
        )

    def observe(self, task_docs: Mapping[str, Mapping[str, Any]]) -> None:
        for gauge in (self._state, self._duration, self._failures):
            gauge.clear()
        for name, doc in task_docs.items():
            health = doc.get("health")
            if not isinstance(health, Mapping):
                continue
            for state in HealthState:
                self._state.labels(task=name, state=str(state)).set(
                    1 if health.get("state") == state else 0
                )
            failures = health.get("consecutive_failures")
            if isinstance(failures, int):
                self._failures.labels(task=name).set(failures)
            last = health.get("last_check")
            if isinstance(last, Mapping) and isinstance(last.get("duration_ms"), (int, float)):
                self._duration.labels(task=name).set(last["duration_ms"] / 1000)
