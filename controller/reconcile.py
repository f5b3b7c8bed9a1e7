"""One reconcile pass: read -> observe -> place -> plan -> act -> bookkeeping.

SHELL. `Reconciler.run_pass()` is the whole level-triggered step; the daemon calls
it on every trigger, `rktctl reconcile --once` calls it once and `rktctl plan`
calls it with `dry_run=True`, so a preview runs exactly the code path of a real
pass minus acting. State kept between passes, all of it rebuildable:
- a stat + content-hash cache of manifests, so unchanged files are neither read
  nor parsed again;
- per-task restart bookkeeping (crash-loop backoff, failed-action backoff),
  persisted in `<state_dir>/restarts.json` so a controller restart does not
  forget a crash loop;
- persisted dynamic port allocations (`<state_dir>/ports.json`);
- each task's last known `kill_timeout` (`<state_dir>/kill-timeouts.json`), so the
  pod of a deleted manifest is stopped with the value it was started under.
Each pass also tidies the detached launcher's pod logs (`podlogs` decides which).
The pods themselves are never cached: every pass observes them with `rkt list`.
A pod seen finished has its end captured (exit code, the tail of its output) before
the pass removes it, so its status document can say why it ended. `settle()` is
`reconcile --once`'s extra look at the pods a pass started.

In the daemon (`background=True`) a pass never waits for an action: each task's
actions go to an `ActionQueue` and run while later passes go on; a pass first books
the work that finished (before it observes, so `rkt list` sees its effects), and
holds back the tasks that must wait (`_gate`): work still in flight, a pod still
stopping gracefully (watched every pass, forced once its kill_timeout is over), a
failed stop or remove backing off. `reconcile --once` and `plan` run synchronously.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import json
import os
import secrets
import stat
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import structlog

from controller import (
    backoff,
    manifests,
    nodeinfo,
    placement,
    podlogs,
    probes,
    retention,
    rktargs,
    security,
    suspend,
    volumes,
)
from controller.actuate import ActContext, ActionQueue, TaskExtras, apply, kill_timeout_of, run_task
from controller.config import Config
from controller.controllerstatus import action_counts
from controller.documentcache import DocumentCache
from controller.errors import ManifestError, RktctlError, StatusWriteError
from controller.fsio import (
    RACY_NS,
    READ_ATTEMPTS,
    DirListing,
    Refused,
    TrustPolicy,
    atomic_write,
    check_manifest,
    is_racy,
    list_manifest_files,
    read_git_revision,
    read_json,
    read_manifest,
    save_state,
    stat_key,
    trim_head,
)
from controller.imagefetch import Fetching, ImageFetcher
from controller.launchers import unit_name
from controller.model import (
    DesiredState,
    HealthView,
    Hold,
    HoldReason,
    Invalid,
    Observation,
    ObservedPod,
    Outcome,
    PassReport,
    PassResult,
    Plan,
    PodState,
    PodUUID,
    Reason,
    Remove,
    RestartState,
    RunPrepared,
    Signal,
    SpecHash,
    Start,
    Stop,
    TaskName,
    TaskSpec,
    Termination,
)
from controller.plan import PlanPolicy, plan
from controller.reloadbook import ReloadBook
from controller.rolloutstate import RolloutBook, Verdicts
from controller.runtime import Runtime, argv_options, pod_log_path, pod_logs_dir
from controller.termination import (
    POD_EXITED,
    early_exit_failed,
    termination_failed,
    termination_summary,
)
from controller.timefmt import iso

log = structlog.get_logger()

RESTARTS_FILE = "restarts.json"
_MAX_REMEMBERED_ENDS = 1024
SETTLE_POLL_S = 0.2
"""How often `settle` looks at the pods a pass started."""
# Finished pods whose app ran, or tried to: they have an exit and output to capture.
# (An aborted prepare or a garbage pod never got that far.)
_ENDED_STATES = frozenset({PodState.EXITED, PodState.EXITED_GARBAGE})
KILL_TIMEOUTS_FILE = "kill-timeouts.json"
RETAINED_FILE = "retained-pods.json"
STOP_POLL_MAX_S = 1.0
"""A graceful stop in progress is looked at again after as long as it has run so far
(at least 0.1 s: most pods stop at once), and at least this often."""


@dataclass(frozen=True, slots=True)
class _StopWatch:
    """A pod asked to stop gracefully that still ran when last observed."""

    task: TaskName
    since: float
    kill_timeout_s: float

    @property
    def deadline(self) -> float:
        return self.since + self.kill_timeout_s


@dataclass(slots=True)
class _Retry:
    """A task whose stop or remove failed: none of its actions run before `at`."""

    failures: int
    at: float


@dataclass(slots=True)
class _CachedFile:
    stat_key: tuple[int, int, int, int, int]
    digest: str
    """`manifests.content_hash` of the bytes: the file's own revision."""
    parsed: TaskSpec | ManifestError
    racy: bool
    """Read too soon after a change for its stat to vouch for it: read it again."""
    data: bytes | None = None
    """Kept only for a broken manifest: `build_desired` guesses its task name from it."""


class ManifestCache:
    """Reads the desired directory, re-reading only files whose stat changed.

    Every pass applies the trust policy to every directory and file (a chmod on a
    directory changes no file's stat); refused files are never opened. Per file it
    keeps the stat, the content hash and the parsed spec, not the bytes (a valid
    manifest's bytes are not needed again). When a pass finds exactly the files,
    hashes and refusals of the last one, it returns the last DesiredState object
    itself, so later steps can tell "unchanged" by identity.
    """

    def __init__(
        self,
        trust: TrustPolicy | None = None,
        *,
        racy_ns: int = RACY_NS,
        documents: DocumentCache | None = None,
    ) -> None:
        """`documents`: checked documents of an earlier start, used by the first read."""
        self.trust = trust or TrustPolicy()
        self._racy_ns = racy_ns
        self._documents = documents
        self._files: dict[str, _CachedFile] = {}
        self._warned: set[str] = set()
        self._unreadable: dict[str, str] = {}
        self._last: tuple[tuple[object, ...], DesiredState] | None = None

    def read(self, desired_dir: str) -> DesiredState:
        """Return the parsed desired state of `desired_dir` (never raises for bad files)."""
        listing = list_manifest_files(desired_dir, trust=self.trust)
        files: list[tuple[str, bytes]] = []
        seen: set[str] = set()
        digests: list[tuple[str, str]] = []
        # Refused directories and files, unreadable ones: invalid manifests whose task is
        # unknown, so the planner stops nothing that might be their pods.
        for source, reason in listing.refused:
            seen.add(source)
            self._refuse(source, f"{source}: {reason}", files, digests)
        for source in listing.manifests:
            seen.add(source)
            try:
                cached = self._read_one(source, listing)
            except FileNotFoundError:
                # Vanished between listing and reading: it is gone; the next pass agrees.
                continue
            except Refused as why:
                self._refuse(source, f"{source}: not read: this file {why}", files, digests)
                continue
            except OSError as exc:
                message = f"{source}: cannot read: {exc.strerror or exc}"
                self._refuse(source, message, files, digests)
                continue
            self._unreadable.pop(source, None)
            files.append((source, cached.data or b""))
            digests.append((source, cached.digest))
        for gone in set(self._files) - seen:
            del self._files[gone]
        for gone in set(self._unreadable) - seen:
            del self._unreadable[gone]
        git = read_git_revision(desired_dir)
        signature = (
            tuple(digests),
            tuple(sorted(self._unreadable.items())),
            listing.ignored,
            listing.missing,
            git,
        )
        if self._last is not None and self._last[0] == signature:
            return self._last[1]
        desired = manifests.build_desired(
            files,
            ignored=list(listing.ignored),
            dir_missing=listing.missing,
            revision=git if git is not None else manifests.directory_revision(digests),
            parse=self._parse,
        )
        desired = dataclasses.replace(desired, source_revisions=dict(digests))
        if self._documents is not None:  # the first read is over: the file is brought up to it
            self._documents.close()
            self._documents = None
        self._last = (signature, desired)
        self._warn_invalid(desired)
        return desired

    def _read_one(self, source: str, listing: DirListing) -> _CachedFile:
        """The cache entry of a listed manifest the trust policy accepts, read if it changed."""
        for _attempt in range(READ_ATTEMPTS):
            st = check_manifest(source, listing, self.trust)
            cached = self._files.get(source)
            if cached is not None and not cached.racy and cached.stat_key == stat_key(st):
                return cached
            try:
                data, after = read_manifest(source, limit=manifests.MAX_BYTES, expect=st)
            except FileNotFoundError:
                if not os.path.lexists(source):
                    raise
                continue  # replaced (renamed over) since it was checked: check the new one
            racy = is_racy(after, self._racy_ns)
            digest = manifests.content_hash(data)
            if cached is not None and cached.digest == digest:
                parsed = cached.parsed  # touched or read again while racy: same content
            else:
                parsed = self._parse_new(data, digest, source)
            entry = _CachedFile(
                stat_key(after),
                digest,
                parsed,
                racy=racy,
                data=data if isinstance(parsed, ManifestError) else None,
            )
            self._files[source] = entry
            return entry
        raise OSError(f"{source} was replaced {READ_ATTEMPTS} times while it was read")

    def _parse_new(self, data: bytes, digest: str, source: str) -> TaskSpec | ManifestError:
        """A manifest's spec (or why it is invalid): from an earlier start's checked
        document when there is one for these bytes, else loaded and checked."""
        documents = self._documents
        document = documents.lookup(digest) if documents is not None else None
        if documents is not None and document is not None:
            try:
                return manifests.spec_from_document(document, source)
            except Exception:  # whatever a bad entry raises: it is a shortcut, so check
                documents.forget(digest)
        try:
            spec, checked = manifests.parse_manifest_document(data, source=source)
        except ManifestError as exc:
            return exc
        if documents is not None:
            documents.add(digest, checked)
        return spec

    def _refuse(
        self,
        source: str,
        message: str,
        files: list[tuple[str, bytes]],
        digests: list[tuple[str, str]],
    ) -> None:
        self._unreadable[source] = message
        self._files.pop(source, None)
        files.append((source, b""))
        digests.append((source, _EMPTY_DIGEST))

    def _parse(self, data: bytes, source: str) -> TaskSpec:
        if source in self._unreadable:
            raise ManifestError(source, [self._unreadable[source]])
        parsed = self._files[source].parsed
        if isinstance(parsed, ManifestError):
            raise parsed
        return parsed

    def _warn_invalid(self, desired: DesiredState) -> None:
        invalid = [t for t in desired.tasks.values() if isinstance(t, Invalid)]
        invalid.extend(desired.unnamed_invalid)
        for item in invalid:
            # The messages count too: a refused file (never read) changes only its reason.
            marker = f"{item.source}:{item.content_hash}:{hash(item.messages)}"
            if marker not in self._warned:
                self._warned.add(marker)
                log.warning(
                    "manifest_invalid",
                    path=item.source,
                    task=item.name or None,
                    errors=list(item.messages),
                )


class Reconciler:
    """Owns what must survive between passes; `run_pass` does one pass."""

    def __init__(
        self,
        cfg: Config,
        runtime: Runtime,
        *,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        background: bool = False,
        on_work_done: Callable[[], None] | None = None,
        keep_documents: bool = False,
    ) -> None:
        """`background=True` (the daemon): passes hand actions to an ActionQueue and never
        wait for them; `on_work_done` is called (from a worker thread) when some finish.
        `keep_documents=True` (the daemon, reconcile --once): the first pass reads the
        checked documents an earlier start kept in the state dir (`documentcache`)."""
        self.cfg = cfg
        self.runtime = runtime
        self._clock = clock
        self._mono = monotonic
        self._sleep = sleep
        self._environ = dict(os.environ if environ is None else environ)
        self._manifests = ManifestCache(
            trust_policy(cfg),
            documents=DocumentCache(cfg.state_dir) if keep_documents else None,
        )
        self._fingerprint: dict[str, str] | None = None
        self._restarts: dict[TaskName, RestartState] = _load_restarts(cfg.state_dir)
        self._action_failures: dict[TaskName, int] = {}
        """Consecutive failed starts per task (their backoff is RestartState.not_before)."""
        self._retries: dict[TaskName, _Retry] = {}
        """Tasks whose stop or remove failed, and when to try again (per-task backoff)."""
        self._kill_timeouts: dict[TaskName, float] = _load_kill_timeouts(cfg.state_dir)
        self._retained: frozenset[PodUUID] = _load_retained(cfg.state_dir)
        """Exited pods kept for a post-mortem (`retention`): their exit is booked already."""
        self._rollouts = RolloutBook(cfg.state_dir)
        """Health-gated rollouts (`spec.update`): last healthy and failed specs per task."""
        self._reloads = ReloadBook(cfg.state_dir)
        """`spec.reload`: what each pod's app has read of its reload files."""
        self._node_attrs: dict[str, str] | None = None
        self._ports: dict[TaskName, dict[str, int]] | None = None
        """Persisted host-port allocations (ports.json), read once, then kept in step."""
        self._queue = (
            ActionQueue(max_parallel=cfg.max_parallel, on_done=on_work_done) if background else None
        )
        self._stopping: dict[PodUUID, _StopWatch] = {}
        """Pods asked to stop gracefully that still ran at the last look (background)."""
        self.last_placement: placement.Placement | None = None
        self._place_memo: tuple[tuple[object, ...], placement.Placement] | None = None
        self._policy = workload_policy(cfg)
        """Built once per config, so placement can tell "unchanged" by identity."""
        self.passes = 0
        self._on_work_done = on_work_done
        self._checker: probes.HealthChecker | None = None
        """Runs `spec.health` checks beside the passes (created once a task has one)."""
        self._observer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rktctl-observe")
        """Runs each pass's `rkt list` while the pass reads the manifests."""
        self._captured: dict[PodUUID, None] = {}
        """Finished pods whose end was captured (insertion-ordered, bounded): a pod that
        stays (its removal failed, its manifest is invalid) is read and logged once."""

    def reload(self, cfg: Config, runtime: Runtime) -> None:
        """Adopt a new config (SIGHUP): rkt and node facts are looked at again."""
        if self._queue is not None and cfg.max_parallel != self.cfg.max_parallel:
            self._queue.resize(cfg.max_parallel)
        self.cfg = cfg
        self.runtime = runtime
        self._manifests.trust = trust_policy(cfg)
        self._fingerprint = None
        self._node_attrs = None
        self._ports = None
        self._policy = workload_policy(cfg)

    def wait_for_work(self, timeout: float | None = None) -> None:
        """Block until the actions in flight now have finished (their next pass books them)."""
        if self._queue is not None:
            self._queue.wait(timeout)

    def close(self) -> None:
        """Wait for the actions in flight and book them (daemon shutdown)."""
        if self._checker is not None:
            self._checker.close()
        self._observer.shutdown(wait=True)
        if self._queue is not None:
            self._queue.close()
            self._collect()

    @property
    def node_attributes(self) -> Mapping[str, str]:
        return dict(self._node_attrs or {})

    @property
    def reload_paths(self) -> frozenset[str]:
        """The host files `spec.reload` watches, as of the last pass."""
        return self._reloads.watched_paths()

    def run_pass(self, trigger: str, *, dry_run: bool = False) -> PassReport:
        """Run one level-triggered pass and return what it saw and did. Never raises RktctlError."""
        pass_id = secrets.token_hex(4)
        started = self._clock()
        self.passes += 1
        with structlog.contextvars.bound_contextvars(reconcile_id=pass_id, trigger=trigger):
            booked: tuple[Outcome, ...] = ()
            busy: frozenset[TaskName] = frozenset()
            if not dry_run:
                # Before observing: the next `rkt list` must see what finished work did,
                # and work that finishes later keeps its task busy for this whole pass.
                booked, busy = self._collect()
            # `rkt list` (a subprocess: waiting on it frees the GIL) runs while the
            # manifests are read (Python): the two slowest inputs of a pass overlap.
            # Neither depends on the other; the context carries this pass's log keys.
            observing = self._observer.submit(
                contextvars.copy_context().run, self._fingerprint_and_observe, dry_run
            )
            read = self._manifests.read(self.cfg.desired_dir)
            # A manifest whose rollout failed (auto_revert): its last healthy spec instead.
            desired, manifest_hashes = self._rollouts.revert(read)
            try:
                fingerprint, observation = observing.result()
            except RktctlError as exc:
                report = PassReport(
                    id=pass_id,
                    trigger=trigger,
                    started_at=started,
                    desired=desired,
                    dry_run=dry_run,
                    finished_at=self._clock(),
                    result=PassResult.FAILED,
                    outcomes=booked,
                    restarts=dict(self._restarts),
                    retries={task: retry.at for task, retry in self._retries.items()},
                    error=str(exc),
                    error_code=exc.code,
                    fingerprint=self._fingerprint or {},
                )
                self._log_finished(report)
                return report
            now = self._clock()
            # Retained exited pods are out of sight of the planner and status (`retention`).
            full = observation
            observation, kept = retention.split(full, self._retained)
            placed = self._place(desired, observation, fingerprint)
            self.last_placement = placed
            # Crash-loop bookkeeping compares against the *placed* spec hashes: those are
            # the ones stamped on pods (they include interpolated values and ports).
            planned_desired = _with_specs(desired, placed.specs)
            terminations: dict[TaskName, Termination] = {}
            if not dry_run:
                self._forget_stale_restarts(planned_desired)
                self._note_running(planned_desired, observation, now)
                # Before acting: the Remove this pass plans takes the pod (and its log) away.
                terminations = self._capture_exits(planned_desired, observation, now)
                # Also before acting: a log this pass's starts create has no pod in
                # `observation`. After the capture, which reads the ended pods' logs.
                self._tidy_pod_logs(desired, full)
                self._remember_kill_timeouts(planned_desired, observation)
            views = {} if dry_run else self._check_health(placed, observation)
            rollouts = self._decide_rollouts(
                read, placed.specs, manifest_hashes, observation, views, now=now, dry_run=dry_run
            )
            the_plan = plan(
                planned_desired,
                observation,
                now=now,
                restarts=self._restarts,
                blocked=placed.blocked,
                missing_host_paths=self._missing_host_paths(placed.specs),
                policy=PlanPolicy(
                    max_delete_fraction=self.cfg.max_delete_fraction,
                    allow_empty=self.cfg.allow_empty,
                ),
                unhealthy=frozenset(v.pod for v in views.values() if not v.live),
                serving=rollouts.serving,
            )
            if rollouts.holds or rollouts.requeue_after is not None:
                waits = [w for w in (the_plan.requeue_after, rollouts.requeue_after) if w]
                the_plan = dataclasses.replace(
                    the_plan,
                    actions=tuple(a for a in the_plan.actions if a.task not in rollouts.reverting),
                    holds=(*the_plan.holds, *rollouts.holds),
                    requeue_after=min(waits) if waits else None,
                )
            # spec.reload: pods whose app has not read its files as they are now.
            the_plan = self._reloads.add_signals(
                the_plan, planned_desired, observation, dry_run=dry_run
            )
            # spec.suspend / mode = report-only: planned and reported, never acted on.
            report_only = self.cfg.mode == suspend.REPORT_ONLY
            the_plan = suspend.withhold(
                the_plan, suspend.suspended_tasks(planned_desired.tasks), report_only=report_only
            )
            # Exited pods kept for a post-mortem: no rkt rm, their exits booked as removed.
            paused = {h.task for h in the_plan.holds if h.reason == HoldReason.SUSPENDED}
            the_plan, retained_now = retention.retain(
                the_plan,
                observation,
                kept,
                planned_desired,
                keep=self.cfg.exited_pods_keep,
                frozen=lambda task: report_only or task in paused,
            )
            if not dry_run:
                self._retain(planned_desired, full, retained_now, now)
                kept = retention.split(full, self._retained)[1]
            force: frozenset[PodUUID] = frozenset()
            if not dry_run:
                self._forget_retries(observation)
                self._watch_stops(observation, now)
                the_plan, force = self._gate(the_plan, now, busy)
            outcomes: tuple[Outcome, ...] = ()
            if not dry_run and the_plan.actions:
                specs = {n: s for n, s in planned_desired.tasks.items() if isinstance(s, TaskSpec)}
                extras = {
                    name: TaskExtras(
                        env=placed.env.get(name, {}), host_ports=placed.host_ports.get(name, {})
                    )
                    for name in specs
                }
                owned = frozenset(p.uuid for p in full.owned())
                if self._queue is None:
                    outcomes = apply(
                        the_plan,
                        self.runtime,
                        specs=specs,
                        owned=owned,
                        extras=extras,
                        max_parallel=self.cfg.max_parallel,
                        kill_timeouts=self._kill_timeouts,
                    )
                    self._book_outcomes(planned_desired, outcomes, self._clock())
                else:
                    ctx = ActContext(
                        specs=specs,
                        owned=owned,
                        extras=extras,
                        kill_timeouts=dict(self._kill_timeouts),
                        observe_stops=True,
                        force_stops=force,
                    )
                    for task, group in groupby(the_plan.actions, key=lambda a: a.task):
                        actions = tuple(group)
                        # The actions' log lines carry this pass's reconcile_id and trigger.
                        run = functools.partial(
                            contextvars.copy_context().run, run_task, actions, self.runtime, ctx
                        )
                        self._queue.submit(task, actions, run, desired=planned_desired)
            if not dry_run:
                self._save_ports(placed.persisted_ports)
            report = PassReport(
                id=pass_id,
                trigger=trigger,
                started_at=started,
                desired=planned_desired,
                dry_run=dry_run,
                finished_at=self._clock(),
                result=_result(the_plan, booked + outcomes),
                observation=observation,
                plan=the_plan,
                outcomes=booked + outcomes,
                restarts=dict(self._restarts),
                retries={task: retry.at for task, retry in self._retries.items()},
                blocked=placed.blocked,
                fingerprint=fingerprint,
                terminations=terminations,
                retained=kept,
                log_locations={
                    p.uuid: self._log_location(task, p.uuid)
                    for task, pods in kept.items()
                    for p in pods
                },
                health=views,
            )
            self._log_finished(report)
            return report

    def _decide_rollouts(
        self,
        read: DesiredState,
        specs: Mapping[TaskName, TaskSpec],
        manifest_hashes: Mapping[str, str],
        observation: Observation,
        views: Mapping[TaskName, HealthView],
        *,
        now: float,
        dry_run: bool,
    ) -> Verdicts:
        """The health gate of spec changes (`rollout`); `plan` only reads what it decided."""
        if dry_run:
            return Verdicts({}, (), None)
        pods: dict[TaskName, list[ObservedPod]] = {}
        for pod in observation.pods:
            if pod.task is not None:
                pods.setdefault(pod.task, []).append(pod)
        return self._rollouts.decide(read, specs, manifest_hashes, pods, views, now=now)

    def _check_health(
        self, placed: placement.Placement, observation: Observation
    ) -> dict[TaskName, HealthView]:
        """Hand the checker this pass's pods to check; return what the checks said so far."""
        targets = probes.targets(placed.specs, placed.bindings, observation.owned())
        if self._checker is None:
            if not targets:
                return {}
            self._checker = probes.HealthChecker(
                enter=self._enter, on_change=self._on_work_done, clock=self._clock
            )
        self._checker.set_targets(targets)
        return self._checker.snapshot()

    def _enter(
        self, uuid: PodUUID, command: tuple[str, ...], timeout: float
    ) -> tuple[int | None, str]:
        """`rkt enter` through the runtime of the moment (a reload may replace it)."""
        enter: probes.Enter | None = getattr(self.runtime, "enter", None)
        if enter is None:
            return 254, "this runtime cannot run `rkt enter`"
        return enter(uuid, command, timeout)

    def settle(self, report: PassReport, *, window_s: float) -> PassReport:
        """Watch the pods `report` started for `window_s`; return the report with each one
        that exited in that time captured, and its start turned into a failure.

        `rktctl reconcile --once` calls it: it has no next pass to see a pod that dies at
        once. A pod that exited 0 under restart policy never/on-failure did its job and
        stays a success. Returns `report` itself when it started nothing, in a dry run or
        with `window_s` 0. A failing `rkt list` ends the watch early (logged).
        """
        started = {
            o.pod_uuid: o.action.task
            for o in report.outcomes
            if o.ok and not o.skipped and isinstance(o.action, Start | RunPrepared) and o.pod_uuid
        }
        if not started or window_s <= 0 or report.dry_run:
            return report
        deadline = self._mono() + window_s
        ended: dict[PodUUID, ObservedPod] = {}
        while len(ended) < len(started):
            try:
                observation = self.runtime.list_pods()
            except RktctlError as exc:
                log.warning("settle_failed", error=str(exc), code=exc.code)
                break
            ended.update(
                (p.uuid, p)
                for p in observation.pods
                if p.uuid in started and p.state in _ENDED_STATES
            )
            if self._mono() >= deadline:
                break
            self._sleep(SETTLE_POLL_S)
        if not ended:
            return report
        now = self._clock()
        terminations = dict(report.terminations)
        failed: dict[PodUUID, str] = {}
        for uuid, pod in ended.items():
            task = started[uuid]
            spec = report.desired.tasks.get(task)
            term = self._termination(task, pod, spec, now, exited_within_s=window_s)
            terminations[task] = term
            policy = spec.restart.policy if isinstance(spec, TaskSpec) else None
            if early_exit_failed(term, policy):
                failed[uuid] = termination_summary(term)
        outcomes = tuple(
            dataclasses.replace(o, ok=False, error_code=POD_EXITED, message=failed[o.pod_uuid])
            if o.ok and o.pod_uuid in failed and isinstance(o.action, Start | RunPrepared)
            else o
            for o in report.outcomes
        )
        return dataclasses.replace(
            report,
            outcomes=outcomes,
            terminations=terminations,
            result=_result(report.plan, outcomes) if failed else report.result,
        )

    # --- steps --------------------------------------------------------------------

    def _fingerprint_and_observe(self, dry_run: bool) -> tuple[dict[str, str], Observation]:
        return self._ensure_fingerprint(), self._observe(dry_run=dry_run)

    def _observe(self, *, dry_run: bool) -> Observation:
        # rkt's `list` creates a missing data dir's pods/* (FINDINGS 7); a dry run must
        # create nothing, and a data dir without a pod store holds no pod.
        if dry_run and not self.runtime.pod_store_exists():
            return Observation(pods=())
        return self.runtime.list_pods()

    def _ensure_fingerprint(self) -> dict[str, str]:
        if self._fingerprint is None:
            self._fingerprint = self.runtime.version()
            log.info(
                "rkt_detected", **{k.replace(".", "_"): v for k, v in self._fingerprint.items()}
            )
        return self._fingerprint

    def _place(
        self, desired: DesiredState, observation: Observation, fingerprint: Mapping[str, str]
    ) -> placement.Placement:
        if self._node_attrs is None:
            self._node_attrs = nodeinfo.gather_attributes(self.cfg, rkt_attrs=fingerprint)
        if self._ports is None:
            self._ports = nodeinfo.load_ports(self.cfg.state_dir)
        # place() discounts the ports our own running pods hold from `host_bound` itself.
        live = frozenset(
            p.task for p in observation.owned() if p.task and p.state == PodState.RUNNING
        )
        env = self._environ if self.cfg.allow_env_interpolation else None
        bound = nodeinfo.bound_tcp_ports()
        capacity = nodeinfo.capacity(self._node_attrs, self.cfg)
        cfg = self.cfg
        knobs = (cfg.port_range, cfg.overcommit, cfg.volumes_enabled, cfg.stage1,
                 cfg.default_stage1_flavor)  # fmt: skip
        # `desired` is the same object while no manifest changed (read() keeps it).
        inputs = (desired, self._node_attrs, self._ports, bound, live, env, capacity, knobs,
                  self._policy)  # fmt: skip
        memo = self._place_memo
        # place() is deterministic: the same inputs give the same Placement, so an idle
        # pass skips its port allocation and checks (~200 ms at 10k tasks).
        if memo is not None and _same_inputs(memo[0], inputs):
            return memo[1]
        placed = placement.place(
            desired,
            attrs=self._node_attrs,
            persisted_ports=self._ports,
            host_bound=bound,
            running_tasks=live,
            cfg_port_range=cfg.port_range,
            env=env,
            capacity=capacity,
            overcommit=cfg.overcommit,
            volumes_enabled=cfg.volumes_enabled,
            stage1=cfg.stage1,
            default_stage1_flavor=cfg.default_stage1_flavor,
            policy=self._policy,
            previous=self.last_placement,
        )
        # A copy of the persisted ports: the memo must not change if that dict does.
        kept = {task: dict(labels) for task, labels in self._ports.items()}
        self._place_memo = ((*inputs[:2], kept, *inputs[3:]), placed)
        return placed

    def _missing_host_paths(self, specs: Mapping[TaskName, TaskSpec]) -> dict[TaskName, str]:
        """Tasks whose absolute volume host paths are missing -> why (rkt would refuse them)."""
        data_dir = volumes.task_data_dir(self.cfg.state_dir)
        missing = {n: volumes.missing_host_paths(s, data_dir=data_dir) for n, s in specs.items()}
        return {name: "; ".join(problems) for name, problems in missing.items() if problems}

    def _save_ports(self, persisted: Mapping[TaskName, Mapping[str, int]]) -> None:
        if persisted == self._ports:
            return
        try:
            nodeinfo.save_ports(self.cfg.state_dir, persisted)
            self._ports = {task: dict(labels) for task, labels in persisted.items()}
        except StatusWriteError as exc:
            log.error("state_write_failed", path=self.cfg.state_dir, error=str(exc))

    def _forget_stale_restarts(self, desired: DesiredState) -> None:
        """A new spec starts with a clean slate: an old spec's crash loop must not delay it."""
        stale = [
            name
            for name, state in self._restarts.items()
            if state.spec_hash is not None
            and spec_hash_of(desired.tasks.get(name)) not in (None, state.spec_hash)
        ]
        for name in stale:
            del self._restarts[name]
            self._action_failures.pop(name, None)
        if stale:
            self._save_restarts()

    def _capture_exits(
        self, desired: DesiredState, observation: Observation, now: float
    ) -> dict[TaskName, Termination]:
        """Capture how the newest finished pod of each task ended (exit code, output tail).

        Pods captured before are skipped; older finished pods of the same task are marked
        as seen too, so a later pass never replaces the capture with an older pod.
        """
        ended: dict[TaskName, list[ObservedPod]] = {}
        for pod in observation.owned():
            if pod.state in _ENDED_STATES and pod.uuid not in self._captured and pod.task:
                ended.setdefault(pod.task, []).append(pod)
        terminations: dict[TaskName, Termination] = {}
        for task, pods in sorted(ended.items()):
            for pod in pods:
                self._remember_captured(pod.uuid)
            newest = max(pods, key=_recency)
            terminations[task] = self._termination(task, newest, desired.tasks.get(task), now)
        return terminations

    def _termination(
        self,
        task: TaskName,
        pod: ObservedPod,
        spec: TaskSpec | Invalid | None,
        now: float,
        *,
        exited_within_s: float | None = None,
    ) -> Termination:
        stage1 = (spec.stage1 if isinstance(spec, TaskSpec) else None) or self.cfg.stage1
        term = Termination(
            uuid=pod.uuid,
            spec_hash=pod.spec_hash,
            exit_code=pod.exit_code,
            started=pod.started_at is not None or any(a.started_at_ns for a in pod.apps),
            stage1=stage1,
            started_at=pod.started_at,
            observed_at=now,
            output=self.runtime.pod_output(task, pod.uuid),
            exited_within_s=exited_within_s,
        )
        self._remember_captured(pod.uuid)
        level = log.warning if termination_failed(term) else log.info
        level(
            "pod_exited",
            task=task,
            pod_uuid=pod.uuid,
            exit_code=term.exit_code,
            path=term.output.location,
            error=term.output.error,
        )
        return term

    def _remember_captured(self, uuid: PodUUID) -> None:
        self._captured[uuid] = None
        while len(self._captured) > _MAX_REMEMBERED_ENDS:
            del self._captured[next(iter(self._captured))]

    def _note_running(self, desired: DesiredState, observation: Observation, now: float) -> None:
        """A pod of the current spec that ran long enough resets its task's crash loop."""
        changed = False
        for pod in observation.owned():
            spec = desired.tasks.get(pod.task) if pod.task else None
            if (
                pod.state != PodState.RUNNING
                or not isinstance(spec, TaskSpec)
                or pod.spec_hash != spec.spec_hash
            ):
                continue
            state = self._restarts.get(TaskName(pod.task or ""))
            if state is None or pod.started_at is None:
                continue
            new = backoff.record_running(
                state, running_since=float(pod.started_at), restart=spec.restart, now=now
            )
            if new != state:
                self._restarts[TaskName(pod.task or "")] = new
                changed = True
        if changed:
            self._save_restarts()

    def _tidy_pod_logs(self, desired: DesiredState, observation: Observation) -> None:
        """Remove the logs of removed pods (each task keeps its newest few), trim big ones."""
        directory = pod_logs_dir(self.cfg)
        try:
            files = _log_files(directory)
        except OSError as exc:
            log.warning("pod_log_cleanup_failed", path=str(directory), error=str(exc))
            return
        trusted = not (desired.dir_missing or desired.empty or desired.unnamed_invalid)
        max_bytes = self.cfg.pod_log_max_bytes
        actions = podlogs.plan_pod_logs(
            files,
            observation,
            declared=frozenset([*desired.tasks, *desired.duplicates]) if trusted else None,
            keep=self.cfg.pod_logs_keep,
            max_bytes=max_bytes,
        )
        for action in actions:
            path = directory / action.name
            try:
                if isinstance(action, podlogs.RemoveLog):
                    path.unlink(missing_ok=True)
                    # Routine: it follows the pod's own removal (pod_removed, info).
                    log.debug(
                        "pod_log_removed", task=action.task, path=str(path), reason=action.reason
                    )
                elif trim_head(
                    path,
                    max_bytes=max_bytes,
                    keep_bytes=action.keep_bytes,
                    rewrite=functools.partial(podlogs.trimmed, max_bytes=max_bytes),
                    in_place=action.live,
                ):
                    # Tells an operator where a chatty pod's older output went.
                    log.info("pod_log_trimmed", task=action.task, path=str(path))
            except (OSError, StatusWriteError) as exc:
                log.warning(
                    "pod_log_cleanup_failed", task=action.task, path=str(path), error=str(exc)
                )

    def _remember_kill_timeouts(self, desired: DesiredState, observation: Observation) -> None:
        """Keep each task's kill_timeout while it has a manifest or owned pods (persisted)."""
        known = dict(self._kill_timeouts)
        known.update(
            {n: s.kill_timeout_s for n, s in desired.tasks.items() if isinstance(s, TaskSpec)}
        )
        with_pods = {p.task for p in observation.owned()}
        kept = {
            name: seconds
            for name, seconds in sorted(known.items())
            if name in desired.tasks or name in desired.duplicates or name in with_pods
        }
        if kept == self._kill_timeouts:
            return
        self._kill_timeouts = kept
        save_state(Path(self.cfg.state_dir) / KILL_TIMEOUTS_FILE, kept)

    def _retain(
        self, desired: DesiredState, full: Observation, now_kept: tuple[Remove, ...], now: float
    ) -> None:
        """Keep `now_kept`'s pods instead of removing them: book their exits as removed
        ones, remember them (state dir); forget retained pods that are gone (pruned, gc)."""
        if now_kept:
            booked = tuple(Outcome(action=a, ok=True, message="retained") for a in now_kept)
            self._book_outcomes(desired, booked, now)
            for action in now_kept:
                log.info("pod_retained", task=action.task, pod_uuid=action.uuid)
        # An incomplete `rkt list` may hide a kept pod: forgetting it would count it again.
        present = frozenset(p.uuid for p in full.pods) if full.complete else self._retained
        retained = (self._retained & present) | {a.uuid for a in now_kept}
        if retained == self._retained:
            return
        self._retained = frozenset(retained)
        try:
            atomic_write(
                Path(self.cfg.state_dir) / RETAINED_FILE, json.dumps(sorted(retained)) + "\n"
            )
        except StatusWriteError as exc:
            log.error("state_write_failed", path=self.cfg.state_dir, error=str(exc))

    def _log_location(self, task: TaskName, uuid: PodUUID) -> str:
        if self.cfg.launcher == "systemd-run":
            return f"journalctl --unit={unit_name(task, uuid)}.service"
        return str(pod_log_path(self.cfg, task, uuid))

    def _book_outcomes(
        self, desired: DesiredState, outcomes: tuple[Outcome, ...], now: float
    ) -> None:
        """Turn outcomes into restart bookkeeping: crash-loop and failed-action backoff."""
        self._reloads.booked(outcomes)
        changed = False
        for outcome in outcomes:
            action = outcome.action
            task = action.task
            spec = desired.tasks.get(task)
            state = self._restarts.get(task, RestartState())
            if not outcome.ok:
                if not outcome.failed or outcome.error_code == "not_owned":
                    continue  # skipped or deferred: retried soon, nothing to back off
                if isinstance(action, Stop | Remove | Signal):
                    self._retry_later(task, outcome, now)
                    continue
                failures = self._action_failures.get(task, 0) + 1
                self._action_failures[task] = failures
                delay = backoff.delay(
                    failures, base=self.cfg.backoff_base_s, cap=self.cfg.backoff_cap_s
                )
                # Tied to this spec: fixing the manifest clears the backoff at once.
                self._restarts[task] = dataclasses.replace(
                    state, not_before=now + delay, spec_hash=spec_hash_of(spec) or state.spec_hash
                )
                log.warning(
                    "reconcile_retry_scheduled",
                    task=task,
                    attempt=failures,
                    retry_in_s=round(delay, 3),
                    code=outcome.error_code,
                )
                changed = True
                continue
            if isinstance(action, Start):
                self._action_failures.pop(task, None)
            if isinstance(action, Stop | Remove | Signal):
                self._retries.pop(task, None)
            if isinstance(action, Stop) and outcome.stopping:
                timeout = kill_timeout_of(
                    task, spec if isinstance(spec, TaskSpec) else None, self._kill_timeouts
                )
                self._stopping[action.uuid] = _StopWatch(
                    task=task, since=now, kill_timeout_s=timeout
                )
            if (
                isinstance(action, Remove)
                and action.reason in (Reason.EXITED, Reason.UNHEALTHY)
                and isinstance(spec, TaskSpec)
                and outcome.ok
            ):
                recorded = backoff.record_exit(
                    state,
                    exit_code=action.exit_code,
                    spec_hash=spec.spec_hash,
                    restart=spec.restart,
                    now=now,
                )
                self._restarts[task] = dataclasses.replace(recorded, spec_hash=spec.spec_hash)
                changed = True
            elif isinstance(action, Start) and state.completed_hash not in (
                None,
                spec_hash_of(spec),
            ):
                self._restarts[task] = dataclasses.replace(state, completed_hash=None)
                changed = True
        # Tasks whose manifest is gone take their bookkeeping with them.
        for task in [t for t in self._restarts if t not in desired.tasks]:
            del self._restarts[task]
            self._action_failures.pop(task, None)
            changed = True
        if changed:
            self._save_restarts()

    def _retry_later(self, task: TaskName, outcome: Outcome, now: float) -> None:
        """Back off a task whose stop, remove or signal failed: no action of it before the
        delay."""
        failures = (self._retries[task].failures if task in self._retries else 0) + 1
        delay = backoff.delay(failures, base=self.cfg.backoff_base_s, cap=self.cfg.backoff_cap_s)
        self._retries[task] = _Retry(failures=failures, at=now + delay)
        log.warning(
            "reconcile_retry_scheduled",
            task=task,
            action=outcome.action.kind,
            attempt=failures,
            retry_in_s=round(delay, 3),
            code=outcome.error_code,
        )

    def _forget_retries(self, observation: Observation) -> None:
        """A task without owned pods has nothing left to stop or remove."""
        with_pods = {p.task for p in observation.owned()}
        for task in [t for t in self._retries if t not in with_pods]:
            del self._retries[task]

    def _collect(self) -> tuple[tuple[Outcome, ...], frozenset[TaskName]]:
        """Book the work that finished since the last pass; return it and the busy tasks."""
        if self._queue is None:
            return (), frozenset()
        finished, busy = self._queue.collect()
        now = self._clock()
        outcomes: list[Outcome] = []
        for item in finished:
            self._book_outcomes(item.desired, item.outcomes, now)
            outcomes.extend(item.outcomes)
        return tuple(outcomes), busy

    def _watch_stops(self, observation: Observation, now: float) -> None:
        """Forget the stop watches of pods that no longer run: their stop is done."""
        if not observation.complete:
            return  # a pod missing from an incomplete list may still run
        running = {p.uuid for p in observation.pods if p.state == PodState.RUNNING}
        for uuid, watch in list(self._stopping.items()):
            if uuid not in running:
                del self._stopping[uuid]
                log.info(
                    "pod_stopped",
                    task=watch.task,
                    pod_uuid=uuid,
                    duration_ms=round((now - watch.since) * 1000, 1),
                )

    def _gate(
        self, the_plan: Plan, now: float, busy: frozenset[TaskName] = frozenset()
    ) -> tuple[Plan, frozenset[PodUUID]]:
        """Return `the_plan` without the actions of tasks that must wait, and the pods to force.

        The planner says what the pods need; this says when a task may be worked on
        (client-go's rate-limited work queue): not while an action of it is in flight
        (`busy`), not while a failed stop or remove of it backs off, and not while a
        pod it asked to stop still runs within its kill_timeout (past it, that pod's
        Stop becomes `rkt stop --force`). Each held task gets a Hold; the plan's
        requeue_after covers the earliest time one of them may go on.
        """
        planned = {a.task for a in the_plan.actions}
        stops = {a.uuid for a in the_plan.actions if isinstance(a, Stop)}
        held: dict[TaskName, Hold] = {}
        waits: list[float] = []
        force: set[PodUUID] = set()
        fetching = self._fetching()
        for task in sorted(busy & planned):
            fetch = fetching.get(task)
            held[task] = (
                Hold(
                    reason=HoldReason.FETCHING,
                    task=task,
                    message=f"fetching image {fetch.image} (since {iso(fetch.since)})",
                )
                if fetch is not None
                else Hold(
                    reason=HoldReason.IN_PROGRESS,
                    task=task,
                    message="an earlier action of this task is still running",
                )
            )
        for task, retry in sorted(self._retries.items()):
            if task in planned and task not in held and retry.at > now:
                held[task] = Hold(
                    reason=HoldReason.BACKOFF,
                    task=task,
                    message=f"{retry.failures} failed stop/remove attempt(s); "
                    f"next attempt at {iso(retry.at)}",
                )
                waits.append(retry.at - now)
        for uuid, watch in sorted(self._stopping.items()):
            if watch.task in held or uuid not in stops:
                continue
            if now < watch.deadline:
                held[watch.task] = Hold(
                    reason=HoldReason.IN_PROGRESS,
                    task=watch.task,
                    message=f"pod {uuid[:8]} is stopping (asked at {iso(watch.since)}); "
                    f"forced at {iso(watch.deadline)} (kill_timeout {watch.kill_timeout_s:g}s)",
                )
                poll = min(max(now - watch.since, 0.1), STOP_POLL_MAX_S)
                waits.append(min(watch.deadline - now, poll))
                continue
            force.add(uuid)
            log.warning(
                "pod_stop_forced",
                task=watch.task,
                pod_uuid=uuid,
                kill_timeout_s=watch.kill_timeout_s,
                duration_ms=round((now - watch.since) * 1000, 1),
            )
        if not held:
            return the_plan, frozenset(force)
        if the_plan.requeue_after is not None:
            waits.append(the_plan.requeue_after)
        gated = Plan(
            actions=tuple(a for a in the_plan.actions if a.task not in held),
            holds=(*the_plan.holds, *(held[t] for t in sorted(held))),
            requeue_after=min(waits) if waits else None,
        )
        return gated, frozenset(force)

    def _fetching(self) -> dict[TaskName, Fetching]:
        """The tasks whose start is in its fetch phase (a stand-in runtime has none)."""
        images = getattr(self.runtime, "images", None)
        return images.fetching() if isinstance(images, ImageFetcher) else {}

    def _save_restarts(self) -> None:
        doc = {name: dataclasses.asdict(state) for name, state in sorted(self._restarts.items())}
        save_state(Path(self.cfg.state_dir) / RESTARTS_FILE, doc)

    def _log_finished(self, report: PassReport) -> None:
        by_kind = action_counts(report.outcomes)
        counts = {
            "started": by_kind["start"] + by_kind["run_prepared"],
            "stopped": by_kind["stop"],
            "removed": by_kind["remove"],
            "signalled": by_kind["signal"],
            "failed": by_kind["failed"],
        }
        duration_ms = round((report.finished_at - report.started_at) * 1000, 1)
        level = log.info if report.outcomes or report.result != PassResult.OK else log.debug
        level(
            "reconcile_finished",
            duration_ms=duration_ms,
            result=str(report.result),
            actions=len(report.plan.actions),
            holds=[str(h.reason) for h in report.plan.holds],
            error=report.error,
            code=report.error_code,
            dry_run=report.dry_run or None,
            **counts,
        )


_EMPTY_DIGEST = manifests.content_hash(b"")


def _recency(pod: ObservedPod) -> tuple[int, int, str]:
    return (pod.started_at or 0, pod.created_at or 0, pod.uuid)


def trust_policy(cfg: Config) -> TrustPolicy:
    """The trust policy of `cfg`: root, this process's own user and `trusted_uids`."""
    return TrustPolicy(
        strict=cfg.strict_modes, owners=frozenset({0, os.geteuid(), *cfg.trusted_uids})
    )


def workload_policy(cfg: Config) -> security.WorkloadPolicy:
    """Return the workload policy the config sets (see `security`)."""
    return security.WorkloadPolicy(
        volumes_enabled=cfg.volumes_enabled,
        allowed_volume_prefixes=cfg.allowed_volume_prefixes,
        allowed_insecure_options=cfg.allowed_insecure_options,
        allow_root_user=cfg.allow_root_user,
        allowed_stage1=cfg.allowed_stage1,
        allowed_extra_args=cfg.allowed_extra_args,
    )


def spec_hash_of(spec: object) -> SpecHash | None:
    return spec.spec_hash if isinstance(spec, TaskSpec) else None


def _with_specs(desired: DesiredState, specs: Mapping[TaskName, TaskSpec]) -> DesiredState:
    """Replace valid specs by their placed (interpolated) versions; drop none."""
    tasks: dict[TaskName, TaskSpec | Invalid] = dict(desired.tasks)
    tasks.update(specs)
    return dataclasses.replace(desired, tasks=tasks)


def _log_files(directory: Path) -> list[podlogs.LogFile]:
    """The regular files in `directory` (none if it does not exist)."""
    files = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):  # removed since the listing
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                files.append(
                    podlogs.LogFile(name=entry.name, size=st.st_size, mtime_ns=st.st_mtime_ns)
                )
    return files


def _result(the_plan: Plan, outcomes: tuple[Outcome, ...]) -> PassResult:
    if any(o.failed for o in outcomes):
        return PassResult.DEGRADED
    guard = {HoldReason.INCOMPLETE_OBSERVATION, HoldReason.DELETION_GUARD}
    if any(h.reason in guard for h in the_plan.holds):
        return PassResult.HELD
    return PassResult.OK


def _load_restarts(state_dir: str) -> dict[TaskName, RestartState]:
    raw = read_json(Path(state_dir) / RESTARTS_FILE)
    states: dict[TaskName, RestartState] = {}
    if not isinstance(raw, dict):
        return states
    fields = {f.name for f in dataclasses.fields(RestartState)}
    for name, entry in raw.items():
        if isinstance(entry, dict):
            try:
                states[TaskName(name)] = RestartState(
                    **{k: v for k, v in entry.items() if k in fields}
                )
            except TypeError:
                continue
    return states


def _load_retained(state_dir: str) -> frozenset[PodUUID]:
    raw = read_json(Path(state_dir) / RETAINED_FILE)
    return (
        frozenset(PodUUID(u) for u in raw if isinstance(u, str))
        if isinstance(raw, list)
        else frozenset()
    )


def _load_kill_timeouts(state_dir: str) -> dict[TaskName, float]:
    raw = read_json(Path(state_dir) / KILL_TIMEOUTS_FILE)
    if not isinstance(raw, dict):
        return {}
    return {
        TaskName(name): float(seconds)
        for name, seconds in raw.items()
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0
    }


def preview(reconciler: Reconciler, report: PassReport) -> list[dict[str, Any]]:
    """Describe a dry-run pass's plan: per action the task, reason and exact rkt argv.

    A pod that would be prepared has no UUID yet; its run-prepared argv shows `<uuid>`.
    A start's fetch phase comes first (the runtime skips it for an image it knows to be
    in the store, unless pull_policy is update); its prepare shows `<image-id>`.
    """
    placed = reconciler.last_placement
    steps: list[dict[str, Any]] = []
    withheld = frozenset(id(a) for a in report.plan.withheld)
    for action in (*report.plan.actions, *report.plan.withheld):
        spec = report.desired.tasks.get(action.task)
        if placed is not None and action.task in placed.specs:
            spec = placed.specs[action.task]
        opts = argv_options(
            reconciler.cfg,
            extra_env=placed.env.get(action.task) if placed else None,
            host_ports=placed.host_ports.get(action.task) if placed else None,
        )
        argv: list[tuple[str, ...]] = []
        uuid: str | None = None
        error: str | None = None
        if isinstance(action, Start) and isinstance(spec, TaskSpec):
            if spec.trust_prefix:
                argv.append(rktargs.trust_argv(spec.trust_prefix, opts, debug=spec.debug))
            try:
                rktargs.prepare_argv(spec, opts)  # refuses what rkt cannot express
                # The fetch phase; prepare then uses the ID fetch prints (unknown here).
                argv.append(rktargs.fetch_argv(spec, opts))
                argv.append(rktargs.prepare_argv(spec, opts, image_id="<image-id>"))
            except ValueError as exc:  # the runtime would refuse it the same way
                error = str(exc)
            argv.append(rktargs.run_prepared_argv(spec, PodUUID("<uuid>"), opts))
            word = "start"
        elif isinstance(action, RunPrepared) and isinstance(spec, TaskSpec):
            uuid = action.uuid
            argv.append(rktargs.run_prepared_argv(spec, action.uuid, opts))
            word = "run-prepared"
        elif isinstance(action, Stop):
            uuid = action.uuid
            argv.append(rktargs.stop_argv(action.uuid, opts))
            word = "stop"
        elif isinstance(action, Signal):
            # No rkt verb signals an app: rktctl finds its process through `rkt status`
            # (the pod's pid) and signals it from the host (`appsignal`).
            uuid = action.uuid
            argv.append(rktargs.status_text_argv(action.uuid, opts))
            word = f"signal SIG{action.signal}"
        else:
            uuid = getattr(action, "uuid", None)
            argv.append(rktargs.rm_argv(PodUUID(uuid or ""), opts))
            word = "remove"
        steps.append(
            {
                "task": action.task,
                "action": word,
                "reason": str(action.reason),
                "pod_uuid": uuid,
                # env values may be secrets: only their keys are shown
                "argv": [list(rktargs.redact_argv(a)) for a in argv],
                "error": error,
                # spec.suspend / report-only: rktctl reports this step but will not run it
                "suspended": id(action) in withheld,
            }
        )
    return steps


def _same_inputs(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Equal inputs, checking identity first: most are the very same objects."""
    return len(a) == len(b) and all(x is y or x == y for x, y in zip(a, b, strict=True))
