"""The rkt runtime: run rkt commands and translate what happens into typed results.

SHELL. `RktCli` implements the `Runtime` protocol the reconciler and executor use;
argv comes from `rktargs` (pure), output is parsed by `observe` (pure), and every
command runs through `procs.execute` (the one subprocess edge), which turns failures
into RktNotFound / RktTimeout / RktCommandFailed; this module adds RktOutputError and
says which failures mean success (`tolerate`). It never decides *what* to do: that is
`plan`.

`rkt run-prepared` stays in the foreground for the pod's whole life, so it is started
through a Launcher (`launchers`): detached or as a systemd unit, so a restart of
rktctl never restarts a pod.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import structlog

from controller import appsignal, observe, rktargs, volumes
from controller.config import Config
from controller.errors import (
    AppNotFound,
    LaunchError,
    ManifestError,
    PodStarting,
    RktCommandFailed,
    RktError,
    RktOutputError,
    RktTimeout,
    StatusWriteError,
    VolumeError,
    subcommand_of,
)
from controller.fsio import atomic_write
from controller.imagefetch import ImageFetcher
from controller.launchers import Launcher, ReapingLauncher, launcher_for, read_log_tail
from controller.model import (
    Observation,
    ObservedPod,
    PodOutput,
    PodState,
    PodUUID,
    TaskName,
    TaskSpec,
)
from controller.procs import Completed, Tolerate, clean_env, execute

log = structlog.get_logger()

TRUST_CACHE_FILE = "trusted-prefixes.json"
_UUID_LINE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Runtime(Protocol):
    """What the reconciler needs from a container runtime. `RktCli` is the implementation."""

    def version(self) -> dict[str, str]: ...
    def list_pods(self) -> Observation: ...
    def pod_store_exists(self) -> bool: ...
    def prepare(
        self,
        spec: TaskSpec,
        *,
        extra_env: Mapping[str, str] = ...,
        host_ports: Mapping[str, int] = ...,
    ) -> PodUUID: ...
    def run_prepared(self, spec: TaskSpec, uuid: PodUUID, *, just_prepared: bool = ...) -> None: ...
    def stop(self, uuid: PodUUID, *, kill_timeout_s: float) -> None: ...
    def request_stop(self, uuid: PodUUID) -> bool: ...
    def force_stop(self, uuid: PodUUID) -> None: ...
    def remove(self, uuid: PodUUID) -> None: ...
    def gc(self, *, grace_period_s: float) -> tuple[PodUUID, ...]: ...
    def status(self, uuid: PodUUID) -> ObservedPod | None: ...
    def pod_pid(self, uuid: PodUUID) -> int | None: ...
    def pod_output(self, task: TaskName, uuid: PodUUID) -> PodOutput: ...
    def signal_app(self, uuid: PodUUID, signal: str, *, stage1: str | None) -> list[int]: ...


def argv_options(
    cfg: Config,
    *,
    extra_env: Mapping[str, str] | None = None,
    host_ports: Mapping[str, int] | None = None,
) -> rktargs.ArgvOptions:
    """Return the argv options Config implies (plus per-start env and host ports)."""
    return rktargs.ArgvOptions(
        rkt=cfg.rkt,
        global_args=cfg.rkt_global_args(),
        stage1=cfg.stage1,
        default_stage1_flavor=cfg.default_stage1_flavor,
        insecure_default=cfg.insecure_default,
        task_data_dir=volumes.task_data_dir(cfg.state_dir),
        extra_env=dict(extra_env or {}),
        host_ports=dict(host_ports or {}),
    )


def pod_logs_dir(cfg: Config) -> Path:
    """Return the directory of the detached launcher's pod logs (tidied by `reconcile`)."""
    return Path(cfg.state_dir) / "logs"


def pod_log_path(cfg: Config, task: str, uuid: PodUUID) -> Path:
    """Return the file the detached launcher writes a pod's rkt output to."""
    return pod_logs_dir(cfg) / f"{task}-{uuid[:8]}.log"


def parse_status_pid(stdout: bytes) -> int | None:
    """Return the `pid=<n>` of text `rkt status` output, None when there is none.

    rkt prints it for running and finished pods once stage1 has written its pid file
    (CONTRACT §4.3); `state=` comes first, so a line is only read as a pid by its key.
    """
    for line in stdout.decode("utf-8", errors="replace").splitlines():
        key, _, value = line.strip().partition("=")
        if key == "pid":
            return int(value) if value.isdigit() and int(value) > 0 else None
    return None


def _no_such_pod(result: Completed) -> bool:
    # status/stop/rm: `<cmd>: ...: no matches found for "<uuid>"`, exit 254 (CONTRACT §2.6)
    return result.says("no matches found")


def _stopped_already(result: Completed) -> bool:
    # The pod is gone, or not running at all (prepared: `stop: pod "<uuid>" is not running`).
    return _no_such_pod(result) or result.says("is not running")


def _booting(result: Completed) -> bool:
    # The boot window (FINDINGS): the pod reads `running` before stage1 writes its pid
    # file, and stop fails with `error reading pid: open ppid: no such file or directory`
    # (host; fly says `open pid`), exit 254. Transitional, not a failure.
    return (
        result.returncode != 0
        and result.says("error reading pid: open ")
        and result.says("no such file or directory")
    )


FORCE_RACE_GRACE_S = 2.0
"""How long a failed `stop` may take to turn out to be a pod that ended anyway."""


def _stop_tolerated(result: Completed) -> bool:
    return _stopped_already(result) or _booting(result)


class RktCli:
    """The Runtime that drives the rkt command line (or the fake `tests/fakes/rkt`).

    Built from Config: binary, global flags (`--dir`, ...), timeouts, state dir.
    Thread-safe: the executor may act on several tasks at once.
    """

    poll_interval_s: float = 0.05
    """How often `status` is polled while waiting for a pod to run or stop."""

    def __init__(
        self,
        cfg: Config,
        *,
        launcher: Launcher | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        environ: Mapping[str, str] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self._cfg = cfg
        self._env = clean_env(os.environ if environ is None else environ)
        self._opts = argv_options(cfg)
        self._clock = clock
        self._sleep = sleep
        self.launcher: Launcher = launcher or launcher_for(cfg, self._env)
        self._trust_lock = threading.Lock()
        self._trusted: set[tuple[str, str]] | None = None
        self.images = ImageFetcher()
        """The fetch phase: images known to be in the store, fetches in flight."""
        self.on_failure = on_failure
        """Called with the subcommand of every rkt call that fails (metrics)."""
        # The last `rkt list` result: unchanged pods are reused instead of rebuilt. Any
        # thread may swap it; a stale one only makes the next parse less cheap.
        self._last_list: Observation | None = None

    # --- Runtime -------------------------------------------------------------------

    def version(self) -> dict[str, str]:
        """Return rkt's fingerprint attributes (driver.rkt, driver.rkt.version, ...).

        Raise RktNotFound if rkt cannot be run, RktUnsupported if its version is
        unreadable or older than 1.27.0, RktCommandFailed if `rkt version` fails.
        """
        result = self._run(rktargs.version_argv(self._opts))
        attrs = observe.parse_version(result.stdout)
        observe.check_supported(attrs)
        return attrs

    def list_pods(self) -> Observation:
        """Return the current Observation from `rkt list --format=json`.

        Raise RktError subclasses on failure (RktOutputError for unparseable output).
        """
        self._reap()
        result = self._run(rktargs.list_argv(self._opts))
        obs = observe.parse_pod_list(result.stdout, result.stderr, previous=self._last_list)
        self._last_list = obs
        return obs

    def pod_store_exists(self) -> bool:
        """Return False when rkt's data dir has no pod store (`pods/`), so it holds no pod.

        Asks without creating anything: rkt's own `list` and `status` MkdirAll
        `<data dir>/pods/*` (FINDINGS 7), which a dry run must not do. The data dir is
        `rkt_dir`, else wherever rkt's paths.d puts it (`rkt config`). Return True when
        that cannot be told (`rkt config` failed, the dir is unreadable): then only
        `rkt list` can say what is there, and its error is the one worth showing.
        """
        data_dir = self._cfg.rkt_dir
        if not data_dir:
            try:
                data_dir = observe.parse_data_dir(self._run(rktargs.config_argv(self._opts)).stdout)
            except RktError:
                return True
        try:
            return (Path(data_dir) / "pods").is_dir()
        except OSError:  # e.g. a data dir only root may enter
            return True

    def prepare(
        self,
        spec: TaskSpec,
        *,
        extra_env: Mapping[str, str] | None = None,
        host_ports: Mapping[str, int] | None = None,
    ) -> PodUUID:
        """Prepare a pod for `spec` and return its UUID (the pod is then `prepared`).

        Creates the directories of relative volumes first, and refuses a missing
        absolute host path before any rkt command (rkt would refuse the pod only at
        run-prepared). Trusts `spec.trust_prefix` first, once per prefix (remembered in
        the state dir). Then the fetch phase (`images`): `rkt fetch` unless the image is
        known to be in the store, and prepare from its ID with `--pull-policy=never`.
        Raise ManifestError if the spec cannot be expressed as rkt flags,
        VolumeError for a host path that is missing or cannot be created, RktError
        subclasses if trust or prepare fail, RktOutputError if prepare prints no UUID.
        """
        opts = argv_options(self._cfg, extra_env=extra_env, host_ports=host_ports)
        try:
            rktargs.prepare_argv(spec, opts)  # refuses what rkt cannot express, before any I/O
        except ValueError as exc:
            raise ManifestError(spec.source or spec.name, [str(exc)]) from exc
        missing = volumes.missing_host_paths(spec, data_dir=opts.task_data_dir)
        if missing:
            raise VolumeError(f"task {spec.name}: " + "; ".join(missing))
        for path in volumes.ensure_task_dirs(spec, data_dir=opts.task_data_dir):
            log.info("volume_dir_created", task=spec.name, path=str(path))
        if spec.trust_prefix:
            self.trust(spec.trust_prefix, debug=spec.debug)
        fetch = rktargs.fetch_argv(spec, opts)
        image_id = self.images.image_id(
            spec.name,
            spec.image,
            spec.pull_policy,
            lambda: self._run(fetch, timeout=self._cfg.fetch_timeout_s),
        )
        argv = rktargs.prepare_argv(spec, opts, image_id=image_id)
        try:
            result = self._run(argv, timeout=self._cfg.prepare_timeout_s)
        except RktError:
            self.images.forget(spec.image)  # gone from the store? fetch again next time
            raise
        # --quiet still lets key-review lines through: the UUID is the last line that is
        # one (rkt's own tests read it this way, CONTRACT §4.5).
        lines = result.stdout.decode("utf-8", errors="replace").splitlines()
        uuids = [line.strip() for line in lines if _UUID_LINE.match(line.strip())]
        if not uuids:
            raise RktOutputError(
                f"rkt prepare exited 0 but printed no pod UUID: {result.stdout[:200]!r}"
            )
        return PodUUID(uuids[-1])

    def run_prepared(self, spec: TaskSpec, uuid: PodUUID, *, just_prepared: bool = False) -> None:
        """Start the prepared pod `uuid` through the launcher; return once it has run.

        Returns when rkt reports the pod in any state past `prepared` (running, or
        already exited after starting). Raise LaunchError if the pod is not prepared,
        if rkt run-prepared dies while the pod is still prepared, if the pod exits
        without ever starting, or if it is still prepared after `command_timeout_s`.
        `just_prepared`: the caller's own `prepare` made this pod a moment ago, so it
        is known to be prepared and the `rkt status` check (20-30 ms) is skipped.
        """
        argv = rktargs.run_prepared_argv(spec, uuid, self._opts)
        log_path = pod_log_path(self._cfg, spec.name, uuid)
        before = None if just_prepared else self.status(uuid)
        if not just_prepared and (before is None or before.state is not PodState.PREPARED):
            # Checked first: a run-prepared refused by rkt (exit 254) could not be told
            # apart from a pod that ran and exited by the time we look.
            state = before.state if before else "gone"
            raise LaunchError(f"pod {uuid} of task {spec.name} is {state}, not prepared")
        started = self._clock()
        self.launcher.launch(argv, uuid=uuid, task=spec.name, log_path=log_path)
        log.debug(
            "rkt_command",
            argv=list(rktargs.redact_argv(argv)),
            returncode=None,
            duration_ms=self._ms_since(started),
        )
        deadline = started + self._cfg.command_timeout_s
        while True:
            pod = self.status(uuid)
            if pod is not None and pod.state is not PodState.PREPARED:
                if pod.state in (PodState.EXITED, PodState.EXITED_GARBAGE) and (
                    pod.started_at is None and not any(a.started_at_ns for a in pod.apps)
                ):
                    # A failed run leaves a pod that reads `exited` but never started
                    # (FINDINGS surprise 1): that is a failed launch, not a crash.
                    raise LaunchError(
                        f"pod {uuid} of task {spec.name} exited without starting"
                        f"{self._log_tail(log_path)}"
                    )
                return
            code = self._launcher_exit(uuid)
            if code is not None and self._still_prepared(uuid):
                # Looked at again: an app that exits at once can run and end, with its
                # `rkt run-prepared`, between the status above and this check. Then the
                # pod ran and the loop's top reports it; only a pod still prepared failed.
                raise LaunchError(
                    f"rkt run-prepared for pod {uuid} of task {spec.name} exited {code} "
                    f"before the pod ran{self._log_tail(log_path)}"
                )
            if self._clock() >= deadline:
                state = pod.state if pod else "gone"
                raise LaunchError(
                    f"pod {uuid} of task {spec.name} is still {state} "
                    f"{self._cfg.command_timeout_s:g}s after launching rkt run-prepared"
                    f"{self._log_tail(log_path)}"
                )
            self._sleep(self.poll_interval_s)

    def stop(self, uuid: PodUUID, *, kill_timeout_s: float) -> None:
        """Stop pod `uuid`: `rkt stop`, wait up to `kill_timeout_s`, then `stop --force`.

        A pod that is already stopped, not running or gone counts as stopped. Raise
        PodStarting (transitional: no failure is counted) while the pod has no pid yet,
        RktError if rkt fails or the pod still runs `command_timeout_s` after --force.
        The daemon does not wait like this: it calls `request_stop` and watches the pod.
        """
        # rkt stop only sends the signal (CONTRACT §4.7): wait for the pod to exit.
        signalled = self.request_stop(uuid)
        if signalled and not self._wait_not_running(uuid, self._clock() + kill_timeout_s):
            log.warning(
                "pod_stop_forced",
                pod_uuid=uuid,
                kill_timeout_s=kill_timeout_s,
                duration_ms=kill_timeout_s * 1000,
            )
            self.force_stop(uuid)
            return
        self._reap()

    def request_stop(self, uuid: PodUUID) -> bool:
        """Ask pod `uuid` to stop (`rkt stop`, which only sends the signal) and return at once.

        Return True if the pod was signalled (it may still run: watch it), False if it
        was already stopped, not running or gone. Raise RktError if rkt fails.
        """
        try:
            result = self._run(rktargs.stop_argv(uuid, self._opts), tolerate=_stop_tolerated)
        except RktCommandFailed:
            # The pod ended between rkt's state check and the signal (`error sending
            # terminated: no such process`): it needs no stop.
            if self._ended_anyway(uuid):
                return False
            raise
        if _booting(result):
            raise PodStarting(uuid, result.stderr.decode("utf-8", errors="replace"))
        signalled = result.returncode == 0 and not result.says("is already stopped")
        self._reap()
        return signalled

    def force_stop(self, uuid: PodUUID) -> None:
        """`rkt stop --force` pod `uuid` and wait until it no longer runs.

        Raise PodStarting if the pod is still in its boot window, RktError if rkt fails
        or the pod still runs `command_timeout_s` later.
        """
        try:
            result = self._run(
                rktargs.stop_argv(uuid, self._opts, force=True), tolerate=_stop_tolerated
            )
        except RktCommandFailed:
            # A pod already on its way out (its app ended on the graceful signal just
            # now) makes rkt say "failed to stop 1 pod(s)" (seen on the host stage1):
            # what counts is that it no longer runs.
            if not self._ended_anyway(uuid):
                raise
            return
        if _booting(result):
            raise PodStarting(uuid, result.stderr.decode("utf-8", errors="replace"))
        if not self._wait_not_running(uuid, self._clock() + self._cfg.command_timeout_s):
            raise RktError(
                f"pod {uuid} still running {self._cfg.command_timeout_s:g}s after rkt stop --force"
            )
        self._reap()

    def _ended_anyway(self, uuid: PodUUID) -> bool:
        """After a failed stop: whether pod `uuid` stops running within FORCE_RACE_GRACE_S."""
        if not self._wait_not_running(uuid, self._clock() + FORCE_RACE_GRACE_S):
            return False
        self._reap()
        return True

    def remove(self, uuid: PodUUID) -> None:
        """Remove pod `uuid` with `rkt rm`; a pod that is already gone counts as removed.

        A failed rm is retried once; raise RktCommandFailed if the retry fails too.
        """
        argv = rktargs.rm_argv(uuid, self._opts)
        try:
            self._run(argv, tolerate=_no_such_pod)
        except RktCommandFailed:
            self._sleep(self.poll_interval_s)
            self._run(argv, tolerate=_no_such_pod)

    def gc(self, *, grace_period_s: float) -> tuple[PodUUID, ...]:
        """Run `rkt gc --grace-period=...` and return the UUIDs of the pods it deleted.

        Host-wide: rkt collects every exited pod, whoever made it; only the daemon calls
        this, and only when the operator opted in (`host_gc`). It runs with
        `prepare_timeout_s`: gc cost grows with the host's mount table and took minutes
        for ~100 exited fly pods (FINDINGS).
        """
        result = self._run(
            rktargs.gc_argv(self._opts, grace_period_s=grace_period_s),
            timeout=self._cfg.prepare_timeout_s,
        )
        return observe.parse_gc_output(result.stdout)

    def status(self, uuid: PodUUID) -> ObservedPod | None:
        """Return pod `uuid` as `rkt status --format=json` reports it, None if no such pod."""
        result = self._run(rktargs.status_argv(uuid, self._opts), tolerate=_no_such_pod)
        if result.returncode != 0:
            return None
        return observe.parse_pod_status(result.stdout)

    def enter(
        self, uuid: PodUUID, command: tuple[str, ...], timeout: float
    ) -> tuple[int | None, str]:
        """Run `command` inside pod `uuid` (`rkt enter`: an exec health check); return its
        exit code (None: killed after `timeout`) and its output. Raise RktError only when
        rkt cannot be run at all."""
        try:
            result = self._run(
                rktargs.enter_argv(uuid, command, self._opts),
                timeout=timeout,
                tolerate=lambda _result: True,  # the command's exit code is the verdict
            )
        except RktTimeout:
            return None, ""
        output = result.stdout + result.stderr
        return result.returncode, output[-4096:].decode("utf-8", errors="replace")

    def pod_pid(self, uuid: PodUUID) -> int | None:
        """Return the pid of pod `uuid`'s `rkt run-prepared` process (which stage1 execs
        into), None while it has none (the boot window) or if the pod is gone.

        The launcher's own child when it started the pod, else text `rkt status`, the
        only place rkt prints a pod's pid (JSON has none, CONTRACT §11).
        """
        if isinstance(self.launcher, ReapingLauncher):
            pid = self.launcher.pid_of(uuid)
            if pid is not None:
                return pid
        result = self._run(rktargs.status_text_argv(uuid, self._opts), tolerate=_no_such_pod)
        if result.returncode != 0:
            return None
        return parse_status_pid(result.stdout)

    def signal_app(self, uuid: PodUUID, signal: str, *, stage1: str | None) -> list[int]:
        """Send signal `signal` ("HUP") to the app of running pod `uuid` and return the
        pids signalled. `stage1` is the task's `spec.stage1` (None: the controller's).

        Raise AppNotFound (transitional) while the pod has no pid or no app process yet,
        RktError where its stage1 keeps the app out of the host's sight (kvm).
        """
        flavor = rktargs.stage1_flavor(
            stage1 or self._opts.stage1, default=self._opts.default_stage1_flavor
        )
        if flavor == "kvm":
            raise RktError(f"pod {uuid} runs on the kvm stage1: the host cannot signal its app")
        pid = self.pod_pid(uuid)
        pids = appsignal.app_pids(pid, fly=flavor == "fly") if pid is not None else []
        if not pids:
            raise AppNotFound(uuid)
        appsignal.send(pids, appsignal.signal_number(signal))
        return pids

    def pod_output(self, task: TaskName, uuid: PodUUID) -> PodOutput:
        """Return the end of pod `uuid`'s output, as its launcher kept it. Never raises:
        an unreadable output comes back with `error` set."""
        return self.launcher.output(
            uuid=uuid, task=task, log_path=pod_log_path(self._cfg, task, uuid)
        )

    # --- more rkt verbs --------------------------------------------------------------

    def trust(self, prefix: str, *, debug: bool = False) -> None:
        """Trust the signing key discovered for `prefix`, unless already done for this store.

        Success is remembered in `<state_dir>/trusted-prefixes.json`, keyed by prefix and
        rkt's local config dir (where the key lands). Delete that file to trust again.
        """
        key = (prefix, self._cfg.rkt_local_config or "/etc/rkt")
        with self._trust_lock:
            trusted = self._load_trusted()
            if key in trusted:
                return
            self._run(rktargs.trust_argv(prefix, self._opts, debug=debug))
            trusted.add(key)
            self._save_trusted(trusted)

    def cat_manifest(self, uuid: PodUUID) -> dict[str, object]:
        """Return the pod manifest of `uuid` (`rkt cat-manifest`) as a JSON object.

        Raise RktOutputError if it is not a JSON object.
        """
        result = self._run(rktargs.cat_manifest_argv(uuid, self._opts))
        try:
            data = json.loads(result.stdout)
        except ValueError as exc:
            raise RktOutputError(f"rkt cat-manifest {uuid}: output is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise RktOutputError(f"rkt cat-manifest {uuid}: expected a JSON object")
        return data

    # --- helpers ---------------------------------------------------------------------

    def _run(
        self,
        argv: tuple[str, ...],
        *,
        timeout: float | None = None,
        tolerate: Tolerate | None = None,
    ) -> Completed:
        """Run one rkt command through `procs.execute` and emit its `rkt_command` log line."""
        started = self._clock()
        returncode: int | None = None
        code: str | None = None
        try:
            result = execute(
                argv,
                timeout=self._cfg.command_timeout_s if timeout is None else timeout,
                env=self._env,
                tolerate=tolerate,
            )
            returncode = result.returncode
            return result
        except RktError as exc:
            code = exc.code
            returncode = exc.returncode if isinstance(exc, RktCommandFailed) else None
            if self.on_failure is not None:
                self.on_failure(subcommand_of(argv))
            raise
        finally:
            extra = {"code": code} if code else {}
            log.debug(
                "rkt_command",
                argv=list(rktargs.redact_argv(argv)),
                returncode=returncode,
                duration_ms=self._ms_since(started),
                **extra,
            )

    def _wait_not_running(self, uuid: PodUUID, deadline: float) -> bool:
        while True:
            pod = self.status(uuid)
            if pod is None or pod.state is not PodState.RUNNING:
                return True
            if self._clock() >= deadline:
                return False
            self._sleep(self.poll_interval_s)

    def _still_prepared(self, uuid: PodUUID) -> bool:
        pod = self.status(uuid)
        return pod is None or pod.state is PodState.PREPARED

    def _reap(self) -> None:
        if isinstance(self.launcher, ReapingLauncher):
            self.launcher.reap()

    def _launcher_exit(self, uuid: PodUUID) -> int | None:
        if isinstance(self.launcher, ReapingLauncher):
            return self.launcher.exit_status(uuid)
        return None

    def _ms_since(self, started: float) -> float:
        return round((self._clock() - started) * 1000, 1)

    @staticmethod
    def _log_tail(path: Path) -> str:
        try:
            tail = read_log_tail(path)[0].decode("utf-8", errors="replace").strip()
        except OSError:
            return ""
        return f"; rkt output ({path}): {tail}" if tail else f"; no output in {path}"

    def _trust_path(self) -> Path:
        return Path(self._cfg.state_dir) / TRUST_CACHE_FILE

    def _load_trusted(self) -> set[tuple[str, str]]:
        if self._trusted is None:
            self._trusted = set()
            path = self._trust_path()
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                entries = data["trusted"] if isinstance(data, dict) else []
                self._trusted = {
                    (e["prefix"], e["local_config"])
                    for e in entries
                    if isinstance(e, dict)
                    and isinstance(e.get("prefix"), str)
                    and isinstance(e.get("local_config"), str)
                }
            except FileNotFoundError:
                pass
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # A broken cache only costs one extra `rkt trust` per prefix.
                log.warning("trust_cache_invalid", path=str(path), error=str(exc))
        return self._trusted

    def _save_trusted(self, trusted: set[tuple[str, str]]) -> None:
        entries = [{"prefix": p, "local_config": c} for p, c in sorted(trusted)]
        try:
            atomic_write(self._trust_path(), json.dumps({"trusted": entries}, indent=2) + "\n")
        except StatusWriteError as exc:
            log.warning("trust_cache_write_failed", path=str(self._trust_path()), error=str(exc))


def make_runtime(cfg: Config, *, on_failure: Callable[[str], None] | None = None) -> RktCli:
    """Return the RktCli for `cfg`, with the launcher `cfg.launcher` names."""
    return RktCli(cfg, on_failure=on_failure)
