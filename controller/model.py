"""The vocabulary of rktctl: frozen value types shared by every stage.

PURE. Nothing here does I/O; everything is an immutable value that compares with
`==`, so tests can assert whole specs, observations and plans. Raw JSON shapes
from rkt are narrowed into these types by `observe`; YAML manifests by
`manifest`. Constants such as the ownership stamp keys live here and nowhere else.

Words (see README "Vocabulary"): manifest = one YAML file; task = what it
declares; spec = the validated task; pod = an rkt pod; app = an rkt app inside
a pod; observation = a parsed `rkt list`; plan/action = the pure diff; pass =
one reconcile iteration; owned = carries rktctl's stamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, NewType

TaskName = NewType("TaskName", str)
PodUUID = NewType("PodUUID", str)
SpecHash = NewType("SpecHash", str)

# --- The ownership stamp -------------------------------------------------------
# rkt 1.27-1.30 put `--user-annotation`/`--user-label` given after an image into
# that app's userAnnotations/userLabels, and `rkt list --format=json` shows them
# as apps[i].user_annotations / apps[i].user_labels (verified on rkt 1.30.0).
# There is no CLI flag for pod-level annotations, so every app is stamped.
STAMP_TASK = "rktctl.io/task"
STAMP_SPEC_HASH = "rktctl.io/spec-hash"
STAMP_MANAGED_BY = "rktctl.io/managed-by"
STAMP_MANAGED_BY_VALUE = "rktctl"

# The words rkt 1.30 accepts in `--insecure-options` (CONTRACT §1.6; there is no "run-all").
RKT_INSECURE_OPTIONS = (
    "none", "image", "tls", "ondisk", "http", "pubkey",
    "capabilities", "paths", "seccomp", "all-fetch", "all-run", "all",
)  # fmt: skip

# rkt's stage1 flavors (its stage1-<flavor>.aci images). fly runs the app in the host's
# namespaces: no network of its own, so `--port` is silently ignored (FINDINGS 2).
STAGE1_FLAVORS = ("fly", "host", "coreos", "kvm", "src")
# The flavor of rkt's compiled-in default stage1 when the config does not say: fly, as
# in the rkt 1.30.0 build this project is tested with (upstream release builds default
# to coreos). Assuming fly is the safe side: a wrong guess refuses a port mapping with a
# message, where the opposite guess advertised ports nothing listens on.
DEFAULT_STAGE1_FLAVOR = "fly"

API_VERSION = "rktctl.io/v1"
KIND_TASK = "Task"


def frozen_map(items: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """Return a read-only copy of `items` (a fresh dict behind a proxy)."""
    return MappingProxyType(dict(items or {}))


# --- Desired state ---------------------------------------------------------------


class RestartPolicy(StrEnum):
    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    NEVER = "never"


class UpdateOrder(StrEnum):
    """How a spec change replaces a pod. start-first needs a task without static ports."""

    STOP_FIRST = "stop-first"
    START_FIRST = "start-first"


@dataclass(frozen=True, slots=True, kw_only=True)
class Volume:
    """One `host:container[:readOnly]` entry of `config.volumes`."""

    host: str
    container: str
    read_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PortRequest:
    """One entry of `resources.ports`: a label with a static host port, or dynamic (None)."""

    label: str
    static: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    cpu_millis: int | None = None
    """CPU limit in millicores (`500m` -> 500, `2` -> 2000)."""
    memory_bytes: int | None = None
    """Memory limit in bytes (`256Mi` -> 268435456)."""
    ports: tuple[PortRequest, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Restart:
    policy: RestartPolicy = RestartPolicy.ALWAYS
    initial_delay_s: float = 10.0
    max_delay_s: float = 300.0
    stable_after_s: float = 600.0
    """A pod that ran this long resets the crash-loop backoff (kubelet: 10 min)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Constraint:
    attribute: str
    operator: str
    value: str = ""


class CheckKind(StrEnum):
    HTTP = "http"
    TCP = "tcp"
    EXEC = "exec"


RELOAD_SIGNALS = ("HUP", "USR1", "USR2", "WINCH")
"""The signals `spec.reload` may send: the ones daemons use to reread their config."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadOn:
    """`spec.reload`: when one of `paths` (host files, resolved) changes, send `signal`."""

    signal: str = "HUP"
    paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthCheck:
    """`spec.health`: one check (see controller/health.py for how its timing works)."""

    kind: CheckKind
    port: str | None = None
    """http/tcp: the port label (resources.ports) to connect to."""
    path: str = "/"
    status_min: int = 200
    status_max: int = 399
    command: tuple[str, ...] = ()
    """exec: the argv run inside the pod with `rkt enter`."""
    interval_s: float = 10.0
    timeout_s: float = 2.0
    start_period_s: float = 0.0
    failure_threshold: int = 3
    success_threshold: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpec:
    """A validated manifest: the desired state of one task.

    Field names follow Nomad's rkt driver config. `spec_hash` covers every field
    that affects the pod (not `source`, not `labels`): an edit that changes only
    comments, key order or the file name never restarts a pod.
    """

    name: TaskName
    image: str
    spec_hash: SpecHash
    source: str = field(default="", compare=False)
    labels: Mapping[str, str] = field(default_factory=frozen_map)
    command: str | None = None
    args: tuple[str, ...] = ()
    trust_prefix: str | None = None
    insecure_options: tuple[str, ...] = ()
    dns_servers: tuple[str, ...] = ()
    dns_search_domains: tuple[str, ...] = ()
    net: tuple[str, ...] = ()
    port_map: Mapping[str, str] = field(default_factory=frozen_map)
    debug: bool = False
    no_overlay: bool = False
    volumes: tuple[Volume, ...] = ()
    group: str | None = None
    user: str | None = None
    env: Mapping[str, str] = field(default_factory=frozen_map)
    resources: Resources = field(default_factory=Resources)
    restart: Restart = field(default_factory=Restart)
    kill_timeout_s: float = 30.0
    constraints: tuple[Constraint, ...] = ()
    stage1: str | None = None
    update_order: UpdateOrder = UpdateOrder.STOP_FIRST
    extra_prepare_args: tuple[str, ...] = ()
    """`extra_args.prepare`: rare rkt flags, after the image (checked by `extraargs`)."""
    extra_run_args: tuple[str, ...] = ()
    """`extra_args.run_prepared`: rare rkt flags, before the UUID."""
    suspend: bool = False
    """`spec.suspend`: plan and report only. Not hashed (resuming must not replace the pod)."""
    pull_policy: str = "new"
    """`spec.pull_policy`: the `rkt fetch --pull-policy` of the fetch phase before prepare
    (new: only an image not in rkt's store; update: every start). Not hashed: it says how
    the next start gets its image, not what the pod is."""
    health: HealthCheck | None = None
    reload: ReloadOn | None = None
    """`spec.reload`: signal the app instead of replacing the pod when these host files
    change. Not hashed: it says how rktctl treats a running pod, not what the pod is."""
    min_healthy_time_s: float = 10.0
    """`update.min_healthy_time`: a new spec's pod must be Healthy this long (with `health`)."""
    healthy_deadline_s: float = 300.0
    """`update.healthy_deadline`: ...within this long after the rollout began, or it failed."""
    auto_revert: bool = True
    """`update.auto_revert`: a failed rollout runs the last healthy spec again. None of the
    three is hashed: they say how a change rolls out, not what the pod is."""

    @property
    def has_static_ports(self) -> bool:
        return any(p.static is not None for p in self.resources.ports)


@dataclass(frozen=True, slots=True, kw_only=True)
class Invalid:
    """A manifest that is present but broken: its task must not be touched."""

    name: TaskName
    source: str
    messages: tuple[str, ...]
    content_hash: str = ""


# --- Observed state --------------------------------------------------------------


class PodState(StrEnum):
    """Pod states exactly as rkt prints them, plus UNKNOWN for anything newer."""

    EMBRYO = "embryo"
    PREPARING = "preparing"
    ABORTED_PREPARE = "aborted prepare"
    PREPARED = "prepared"
    RUNNING = "running"
    DELETING = "deleting"
    EXITED_DELETING = "exited deleting"
    EXITED = "exited"
    EXITED_GARBAGE = "exited garbage"
    GARBAGE = "garbage"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, text: object) -> PodState:
        """Return the state named by `text`; UNKNOWN for anything unrecognised."""
        try:
            return cls(text) if isinstance(text, str) else cls.UNKNOWN
        except ValueError:
            return cls.UNKNOWN


# States in which a pod's apps may still run or are about to: "live".
LIVE_STATES = frozenset({PodState.PREPARED, PodState.RUNNING})
# States that are on their way somewhere by themselves: never act on them.
TRANSITIONAL_STATES = frozenset(
    {PodState.EMBRYO, PodState.PREPARING, PodState.DELETING, PodState.EXITED_DELETING}
)
# Finished pods that only need removing.
FINISHED_STATES = frozenset(
    {PodState.EXITED, PodState.EXITED_GARBAGE, PodState.ABORTED_PREPARE, PodState.GARBAGE}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedApp:
    name: str
    state: str = "unknown"
    exit_code: int | None = None
    image_id: str = ""
    created_at_ns: int | None = None
    started_at_ns: int | None = None
    finished_at_ns: int | None = None
    user_annotations: Mapping[str, str] = field(default_factory=frozen_map)
    user_labels: Mapping[str, str] = field(default_factory=frozen_map)


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedPod:
    """One pod from `rkt list --format=json`.

    `task`/`spec_hash` come from the ownership stamp; `task is None` means the pod
    is not ours. Pod times are Unix seconds (app times are nanoseconds).
    """

    uuid: PodUUID
    state: PodState
    task: TaskName | None = None
    spec_hash: SpecHash | None = None
    apps: tuple[ObservedApp, ...] = ()
    created_at: int | None = None
    started_at: int | None = None
    networks: tuple[str, ...] = ()

    @property
    def owned(self) -> bool:
        return self.task is not None

    @property
    def exit_code(self) -> int | None:
        """The pod's exit status as rkt derives it: the first failing app's code."""
        codes = [a.exit_code for a in self.apps if a.exit_code is not None]
        if not codes:
            return None
        return next((c for c in codes if c != 0), 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    pods: tuple[ObservedPod, ...] = ()
    complete: bool = True
    """False when rkt reported per-pod errors (exit 0 with stderr): pods are hidden."""
    errors: tuple[str, ...] = ()
    output_key: bytes = field(default=b"", compare=False, repr=False)
    """A digest of the whole `rkt list` output this was parsed from (or empty)."""
    entry_keys: tuple[bytes, ...] = field(default=(), compare=False, repr=False)
    """A digest of each pod's `rkt list` entry, in the order of `pods` (or empty): the
    next parse reuses the pod of an identical entry instead of building it again."""

    _owned: tuple[ObservedPod, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Asked for about ten times a pass: at 10k pods, filtering each time cost ~30 ms.
        object.__setattr__(self, "_owned", tuple(p for p in self.pods if p.owned))

    def owned(self) -> tuple[ObservedPod, ...]:
        """The pods that carry rktctl's ownership stamp, in `pods` order."""
        return self._owned


# --- Plans -----------------------------------------------------------------------


class Reason(StrEnum):
    MISSING = "missing"
    SPEC_CHANGED = "spec_changed"
    DUPLICATE = "duplicate"
    NOT_DESIRED = "not_desired"
    EXITED = "exited"
    RESTART = "restart"
    PREPARED_LEFTOVER = "prepared_leftover"
    STALE_PREPARED = "stale_prepared"
    ABORTED = "aborted"
    CONSTRAINTS_UNMET = "constraints_unmet"
    PRUNED = "pruned"
    """An exited pod kept for a post-mortem, past the task's retention (`retention`)."""
    UNHEALTHY = "unhealthy"
    """Liveness: the pod failed its health check failure_threshold times in a row."""
    FILES_CHANGED = "files_changed"
    """`spec.reload`: a file the app reads changed; it is signalled, not replaced."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """Prepare a new pod for the task and run it."""

    kind: ClassVar[str] = "start"
    task: TaskName
    spec_hash: SpecHash
    reason: Reason


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPrepared:
    """Run a pod of ours that a crash left `prepared` with the current spec hash."""

    kind: ClassVar[str] = "run_prepared"
    task: TaskName
    uuid: PodUUID
    reason: Reason


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    kind: ClassVar[str] = "stop"
    task: TaskName
    uuid: PodUUID
    reason: Reason


@dataclass(frozen=True, slots=True, kw_only=True)
class Remove:
    kind: ClassVar[str] = "remove"
    task: TaskName
    uuid: PodUUID
    reason: Reason
    exit_code: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """Send `signal` (a name from RELOAD_SIGNALS) to the app of a running pod (`spec.reload`)."""

    kind: ClassVar[str] = "signal"
    task: TaskName
    uuid: PodUUID
    reason: Reason
    signal: str
    files: tuple[tuple[str, str], ...]
    """Each reload file and the digest of its content, as the app reads it once signalled."""
    changed: tuple[str, ...] = ()
    """The paths whose content changed since the app last read them (for messages)."""


Action = Start | RunPrepared | Stop | Remove | Signal


class HoldReason(StrEnum):
    """Why the planner held back instead of acting."""

    INCOMPLETE_OBSERVATION = "incomplete_observation"
    DELETION_GUARD = "deletion_guard"
    BACKOFF = "backoff"
    DUPLICATE_NAME = "duplicate_name"
    INVALID_SPEC = "invalid_spec"
    BLOCKED = "blocked"
    RESTART_NEVER = "restart_never"
    HOST_PATH_MISSING = "host_path_missing"
    IN_PROGRESS = "in_progress"
    """An action of the task is still running, or its pod is still stopping gracefully."""
    FETCHING = "fetching"
    """The task's start is in its fetch phase (`rkt fetch` of an image not yet in the store)."""
    SUSPENDED = "suspended"
    """`spec.suspend` or the config's report-only `mode`: the actions were only reported."""
    ROLLOUT_FAILED = "rollout_failed"
    """The manifest's spec never became healthy in time (`spec.update`); see `rollout`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """Something the planner deliberately did not do, for status and logs."""

    reason: HoldReason
    task: TaskName | None = None
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    actions: tuple[Action, ...] = ()
    holds: tuple[Hold, ...] = ()
    requeue_after: float | None = None
    withheld: tuple[Action, ...] = ()
    """Actions of suspended tasks (or all, in report-only mode): planned, never run."""

    @property
    def empty(self) -> bool:
        return not self.actions


# --- Desired set, restart bookkeeping, outcomes --------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredState:
    """Everything the desired directory says, parsed (see `manifests.build_desired`)."""

    tasks: Mapping[TaskName, TaskSpec | Invalid] = field(default_factory=dict)
    """Each task name declared by exactly one manifest, valid or not."""
    duplicates: Mapping[TaskName, tuple[str, ...]] = field(default_factory=dict)
    """Names declared by more than one manifest -> their sources; none of them is applied."""
    unnamed_invalid: tuple[Invalid, ...] = ()
    """Broken manifests whose task name could not be read at all."""
    ignored: tuple[str, ...] = ()
    """Files in the directory that are not manifests (editor temp files, dotfiles, ...)."""
    dir_missing: bool = False
    """The desired directory does not exist or cannot be read."""
    revision: str = ""
    """Git commit of the directory when known, else a hash over all manifest contents."""
    source_revisions: Mapping[str, str] = field(default_factory=dict)
    """Manifest source path -> the content hash of that file: one task's own revision
    (a task's status document carries it; the directory's `revision` would change every
    task's document whenever any file changes)."""

    @property
    def empty(self) -> bool:
        """No manifest at all (not even a broken one): the deletion guard's trigger."""
        return not self.tasks and not self.duplicates and not self.unnamed_invalid


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartState:
    """Per-task crash-loop bookkeeping, kept by the shell in the state dir."""

    restarts: int = 0
    """Exits of the current spec counted against backoff (reset after a stable run)."""
    not_before: float | None = None
    """Unix time before which the task must not be started again."""
    last_exit_code: int | None = None
    completed_hash: SpecHash | None = None
    """Spec hash whose pod finished and must not run again (restart policy)."""
    spec_hash: SpecHash | None = None
    """The spec these counters are about; a different desired spec starts afresh."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What happened when one action was executed."""

    action: Action
    ok: bool
    pod_uuid: PodUUID | None = None
    """For Start: the new pod's UUID when known (also on a later failure)."""
    error_code: str | None = None
    message: str = ""
    duration_ms: float = 0.0
    skipped: bool = False
    """Not attempted because an earlier action of the same task failed or was deferred (or
    waits for a pod that is still stopping)."""
    stopping: bool = False
    """A Stop whose graceful signal was sent while the pod still runs: later passes
    watch it and force it after the task's kill_timeout."""
    deferred: bool = False
    """Not done yet for a transitional reason (a pod still booting): retried on the next
    pass; neither a failure nor a backoff (`ok` is False: it did not happen)."""

    @property
    def failed(self) -> bool:
        """Attempted and failed: what degrades a pass, backs a task off and counts as failed."""
        return not self.ok and not self.skipped and not self.deferred


@dataclass(frozen=True, slots=True, kw_only=True)
class PodOutput:
    """The end of a pod's output (its `rkt run-prepared` log), as the shell read it."""

    tail: bytes = b""
    """The last bytes of the output (bounded by the reader)."""
    truncated: bool = False
    """Earlier output exists that `tail` leaves out."""
    location: str | None = None
    """Where the whole output is: the pod's log file, or the command that shows it."""
    error: str | None = None
    """Why the output could not be read (then `tail` is empty)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Termination:
    """How a pod of a task ended, captured when rktctl first saw it finished.

    The status document keeps it after the pod (and its log) are removed, as
    `kubectl describe` keeps a container's last state.
    """

    uuid: PodUUID
    spec_hash: SpecHash | None
    exit_code: int | None
    """The app's exit code where the stage1 records one (not fly)."""
    started: bool
    """The pod's app started; a pod that exited without starting never ran."""
    stage1: str | None
    """The stage1 the pod was started with (the task's or the config's; None: rkt's default)."""
    started_at: int | None
    """When the pod started (Unix seconds, as rkt reports it)."""
    observed_at: float
    """When rktctl first saw the pod finished (Unix seconds)."""
    output: PodOutput
    exited_within_s: float | None = None
    """Set when it was seen exiting within this many seconds of its start (the settle
    window of `rktctl reconcile --once`)."""


class HealthState(StrEnum):
    STARTING = "Starting"
    """No verdict yet (inside start_period, or fewer results than a threshold)."""
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """One run of a health check."""

    ok: bool
    at: float
    """When it finished (Unix seconds)."""
    duration_s: float
    output: str = ""
    """What it said (HTTP status line, connect error, exec output), bounded by the prober."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthView:
    """The health of one task's current pod, as the checker last recorded it."""

    pod: PodUUID
    state: HealthState
    since: float
    """When `state` began (Unix seconds)."""
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last: CheckResult | None = None
    live: bool = True
    """False once failure_threshold failures in a row past start_period: restart the pod."""


class PassResult(StrEnum):
    OK = "ok"
    """Converged or converging: every action that ran succeeded."""
    DEGRADED = "degraded"
    """Some actions failed (they back off); others went ahead."""
    HELD = "held"
    """The planner held back (incomplete observation, deletion guard)."""
    FAILED = "failed"
    """The pass itself failed (rkt unusable, list failed): nothing was done."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PassReport:
    """Everything one reconcile pass saw and did: the input of status and metrics."""

    id: str
    trigger: str
    started_at: float
    finished_at: float
    result: PassResult
    desired: DesiredState
    observation: Observation | None = None
    """None when `rkt list` itself failed."""
    plan: Plan = field(default_factory=Plan)
    outcomes: tuple[Outcome, ...] = ()
    restarts: Mapping[TaskName, RestartState] = field(default_factory=dict)
    retries: Mapping[TaskName, float] = field(default_factory=dict)
    """Tasks whose stop or remove failed -> when the next attempt may run (Unix time)."""
    blocked: Mapping[TaskName, str] = field(default_factory=dict)
    """Tasks not runnable on this host (constraints, ports, resources) -> why."""
    fingerprint: Mapping[str, str] = field(default_factory=dict)
    """rkt's attributes: driver.rkt, driver.rkt.version, driver.rkt.appc.version."""
    error: str | None = None
    error_code: str | None = None
    dry_run: bool = False
    terminations: Mapping[TaskName, Termination] = field(default_factory=dict)
    """Pods seen finished in this pass, the newest per task, with their output's tail."""
    retained: Mapping[TaskName, tuple[ObservedPod, ...]] = field(default_factory=dict)
    """Exited pods kept for a post-mortem (`retention`), oldest first; not in `observation`."""
    log_locations: Mapping[PodUUID, str] = field(default_factory=dict)
    """Where each retained pod's output is (its log file, or the journalctl command)."""
    health: Mapping[TaskName, HealthView] = field(default_factory=dict)
    """Tasks with `spec.health` whose current pod has been checked -> what the checks say."""
