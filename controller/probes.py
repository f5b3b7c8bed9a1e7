"""Running health checks: http and tcp from the host, exec with `rkt enter`; a scheduler thread.

SHELL. The reconcile pass never waits for a check: it hands the checker the pods to
check (`set_targets`), and reads what the checks said (`snapshot`). The checker
thread runs each check when `health.due_at` says, records the result through the
pure `health.record`, and calls `on_change` when a task's state or liveness changes
so the daemon runs a pass (Ready flips, a liveness restart) without waiting for the
resync. Checks run one at a time, each bounded by its timeout.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from controller import health
from controller.errors import RktError
from controller.model import (
    CheckKind,
    CheckResult,
    HealthCheck,
    HealthView,
    ObservedPod,
    PodState,
    PodUUID,
    TaskName,
    TaskSpec,
)
from controller.ports import PortBinding

log = structlog.get_logger("rktctl.probes")

Enter = Callable[[PodUUID, tuple[str, ...], float], tuple[int | None, str]]
"""`rkt enter UUID ARGV...` with a timeout -> (exit code or None on timeout, output)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One pod to check: where (host, port) for http/tcp, which pod for exec."""

    task: TaskName
    pod: PodUUID
    check: HealthCheck
    started_at: float
    host: str | None = None
    port: int | None = None


def run_check(target: Target, *, enter: Enter | None, clock: Callable[[], float]) -> CheckResult:
    """Run `target`'s check once and say how it went (never raises for a failing check)."""
    check = target.check
    began = time.monotonic()
    try:
        ok, output = _run(target, check, enter)
    except (OSError, http.client.HTTPException, RktError) as exc:
        ok, output = False, f"{type(exc).__name__}: {exc}"
    return CheckResult(ok=ok, at=clock(), duration_s=time.monotonic() - began, output=output)


def _run(target: Target, check: HealthCheck, enter: Enter | None) -> tuple[bool, str]:
    if check.kind == CheckKind.EXEC:
        if enter is None:
            return False, "exec checks need a runtime that can `rkt enter`"
        code, output = enter(target.pod, check.command, check.timeout_s)
        if code is None:
            return False, f"timed out after {check.timeout_s:g}s; {output}".rstrip("; ")
        return code == 0, f"exit code {code}" + (f": {output}" if output.strip() else "")
    if target.host is None or target.port is None:
        return False, "the pod has no address for this port yet"
    where = f"{target.host}:{target.port}"
    if check.kind == CheckKind.TCP:
        with socket.create_connection((target.host, target.port), timeout=check.timeout_s):
            return True, f"connected to {where}"
    conn = http.client.HTTPConnection(target.host, target.port, timeout=check.timeout_s)
    try:
        conn.request("GET", check.path, headers={"User-Agent": "rktctl-health"})
        response = conn.getresponse()
        response.read(1024)
        ok = check.status_min <= response.status <= check.status_max
        return ok, f"GET http://{where}{check.path}: {response.status} {response.reason}"
    finally:
        conn.close()


class HealthChecker:
    """The checker thread. `set_targets` and `snapshot` are called from the pass thread."""

    def __init__(
        self,
        *,
        enter: Enter | None,
        on_change: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._enter = enter
        self._on_change = on_change
        self._clock = clock
        self._cond = threading.Condition()
        self._targets: dict[TaskName, Target] = {}
        self._views: dict[TaskName, HealthView] = {}
        self._closed = False
        self._thread: threading.Thread | None = None

    def set_targets(self, targets: Mapping[TaskName, Target]) -> None:
        """Check exactly these pods from now on (a new pod of a task starts over)."""
        with self._cond:
            now = self._clock()
            # A pod no longer checked takes its view along, except one liveness stopped:
            # the pass that books that stop shows why (then a new pod replaces the view).
            for task in [t for t in self._views if t not in targets and self._views[t].live]:
                del self._views[task]
            for task, target in targets.items():
                view = self._views.get(task)
                if view is None or view.pod != target.pod:
                    self._views[task] = health.begin(target.pod, now=now)
            self._targets = dict(targets)
            if targets and self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="health", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def snapshot(self) -> dict[TaskName, HealthView]:
        """The view of each checked pod, and of each pod liveness stopped (`live` False)."""
        with self._cond:
            return dict(self._views)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                due = self._next_due()
                if due is None:
                    self._cond.wait()
                    continue
                target, at = due
                wait = at - self._clock()
                if wait > 0:
                    self._cond.wait(timeout=min(wait, 1.0))
                    continue
            result = run_check(target, enter=self._enter, clock=self._clock)
            self._book(target, result)

    def _next_due(self) -> tuple[Target, float] | None:
        best: tuple[Target, float] | None = None
        for task, target in self._targets.items():
            view = self._views[task]
            if not view.live:
                continue  # condemned: the pass restarts it, a new pod starts over
            at = health.due_at(view, target.check, started_at=target.started_at)
            if best is None or at < best[1]:
                best = (target, at)
        return best

    def _book(self, target: Target, result: CheckResult) -> None:
        with self._cond:
            view = self._views.get(target.task)
            if view is None or view.pod != target.pod:
                return  # the pod changed while it was checked
            new = health.record(view, target.check, result, started_at=target.started_at)
            self._views[target.task] = new
        changed = (new.state, new.live) != (view.state, view.live)
        log.debug("health_check", task=target.task, pod=target.pod, ok=result.ok,
                  output=new.last.output if new.last else "", state=str(new.state))  # fmt: skip
        if changed:
            log.info("health_changed", task=target.task, pod=target.pod, state=str(new.state),
                     live=new.live, reason=health.summary(new))  # fmt: skip
            if self._on_change is not None:
                self._on_change()


def address(
    pod_networks: tuple[str, ...], host_port: int | None, container_port: int | None
) -> tuple[str | None, int | None]:
    """Where a pod's port answers from the host: the pod IP on its own network, else the host.

    `networks` are `rkt list`'s "name:ip4=IP" entries. A pod with an IP of its own (a
    CNI network: host, coreos and kvm stage1s) is reached at that IP on the port inside
    the pod; fly and `net: [host]` pods share the host's network, so the app listens on
    the host port on the host.
    """
    for net in pod_networks:
        name, _, ip = net.partition(":ip4=")
        if ip and name != "host":
            port = container_port if container_port is not None else host_port
            return ip, port
    return "127.0.0.1", host_port


def targets(
    specs: Mapping[TaskName, TaskSpec],
    bindings: Mapping[TaskName, Mapping[str, PortBinding]],
    pods: tuple[ObservedPod, ...],
) -> dict[TaskName, Target]:
    """The running pod of the current spec of each task with `spec.health`, and its address."""
    out: dict[TaskName, Target] = {}
    for pod in pods:
        spec = specs.get(pod.task) if pod.task is not None else None
        if spec is None or spec.health is None or pod.task is None:
            continue
        if pod.state != PodState.RUNNING or pod.spec_hash != spec.spec_hash:
            continue
        check = spec.health
        host: str | None = None
        port: int | None = None
        if check.port is not None:
            binding = bindings.get(pod.task, {}).get(check.port)
            if binding is not None:
                host, port = address(pod.networks, binding.host_port, binding.container_port_number)
        started = float(pod.started_at or pod.created_at or 0)
        out[pod.task] = Target(task=pod.task, pod=pod.uuid, check=check, started_at=started,
                               host=host, port=port)  # fmt: skip
    return out
