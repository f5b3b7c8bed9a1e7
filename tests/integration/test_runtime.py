"""RktCli against every backend: argv issued, error translation, lifecycle with real processes.

Every test that talks to rkt runs on the fake, on real rkt with the fly stage1 and on
real rkt with the host stage1 (tests/backends.py), in a tmp `--dir`. What rkt was asked
to do is read from the call log (the fake's own, or the recording proxy's in front of
real rkt), never from mocks; faults are injected the same way on both. Waits poll with
a deadline.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from structlog.testing import capture_logs

from controller import rktargs
from controller.config import Config
from controller.errors import (
    LaunchError,
    ManifestError,
    RktCommandFailed,
    RktNotFound,
    RktOutputError,
    RktTimeout,
)
from controller.launchers import DetachedLauncher, SystemdRunLauncher, unit_name
from controller.model import (
    ObservedPod,
    PodState,
    PodUUID,
    SpecHash,
    TaskName,
    TaskSpec,
    Volume,
    frozen_map,
)
from controller.procs import clean_env
from controller.runtime import RktCli, argv_options
from tests.backends import Backend
from tests.fakes import fakerkt
from tests.integration.conftest import kill_launched

T = TypeVar("T")
NO_SUCH_POD = PodUUID("0f0f0f0f-0000-4000-8000-000000000000")
IGNORES_TERM = 'trap "" TERM; while :; do sleep 0.1; done'


@pytest.fixture
def rkt_dir(tmp_path: Path, backend: Backend) -> Iterator[Path]:
    """This test's rkt `--dir`; every pod in it is stopped, collected and unmounted after."""
    path = tmp_path / "rkt"
    path.mkdir()
    yield path
    backend.cleanup(path)


@pytest.fixture
def make_config(tmp_path: Path, rkt_dir: Path, backend: Backend) -> Callable[..., Config]:
    """Configs for this test's backend (overrides the fake-only one of conftest)."""

    def make(**overrides: Any) -> Config:
        values: dict[str, Any] = {
            **backend.config(),
            "rkt_dir": str(rkt_dir),
            "rkt_local_config": str(tmp_path / "rkt-local-config"),
            "desired_dir": str(tmp_path / "desired"),
            "status_dir": str(tmp_path / "status"),
            "state_dir": str(tmp_path / "state"),
            "launcher": "detached",
            "command_timeout_s": 30.0,
            "prepare_timeout_s": 60.0,
        }
        values.update(overrides)
        return Config(**values)

    return make


@pytest.fixture
def rkt_config(make_config: Callable[..., Config]) -> Config:
    """The default Config for this test's backend."""
    return make_config()


@pytest.fixture
def make_rkt_cli(
    make_config: Callable[..., Config], backend: Backend
) -> Iterator[Callable[..., RktCli]]:
    """RktCli factory on this test's backend (its PATH, e.g. the nspawn shim, included)."""
    made: list[RktCli] = []

    def make(cfg: Config | None = None, **kwargs: Any) -> RktCli:
        kwargs.setdefault("environ", backend.env())
        cli = RktCli(cfg or make_config(), **kwargs)
        made.append(cli)
        return cli

    yield make
    for cli in made:
        if isinstance(cli.launcher, DetachedLauncher):
            kill_launched(cli.launcher)


@pytest.fixture
def spec(backend: Backend) -> Callable[..., TaskSpec]:
    """TaskSpec factory: a long sleep of this backend's test image."""

    def make(name: str = "web", **kw: Any) -> TaskSpec:
        return _spec(backend.image(name), name, **kw)

    return make


def _spec(image: str, name: str = "web", **kw: Any) -> TaskSpec:
    values: dict[str, Any] = {
        "name": TaskName(name),
        "image": image,
        "spec_hash": SpecHash(f"sha256-{name}"),
        "command": "/bin/sleep",
        "args": ("1000",),
    }
    values.update(kw)
    return TaskSpec(**values)


def wait_for(predicate: Callable[[], T], *, timeout: float = 20.0, what: str = "it") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}; last value {value!r}")
        time.sleep(0.05)


def subcommand_calls(rkt_dir: Path, sub: str) -> list[list[str]]:
    """The argv (without the program) of every finished call of subcommand `sub`."""
    return [entry["argv"] for entry in fakerkt.calls(rkt_dir, sub)]


def _subcommand(argv: list[str]) -> str:
    """The subcommand of a full argv (program first), as rktctl logs it."""
    return next((w for w in argv[1:] if not w.startswith("-")), "")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def run_task(cli: RktCli, task: TaskSpec) -> PodUUID:
    """Prepare and run `task`; return once the pod has booted (or already ended).

    A pod reads `running` before its stage1 has written the pid (~1 s on the host
    stage1), and `stop` in that window raises PodStarting (a deferral, tested apart).
    """
    uuid = cli.prepare(task)
    cli.run_prepared(task, uuid)
    wait_booted(cli, uuid)
    return uuid


def wait_booted(cli: RktCli, uuid: PodUUID) -> None:
    """Wait until pod `uuid` has its pid (stage1 booted), or no longer runs."""

    def booted() -> bool:
        pod = cli.status(uuid)
        return pod is None or pod.state is not PodState.RUNNING or pod.started_at is not None

    wait_for(booted, what=f"pod {uuid} past its boot window")


def state_of(cli: RktCli, uuid: PodUUID) -> PodState | None:
    pod = cli.status(uuid)
    return pod.state if pod else None


# --- fingerprint and argv -------------------------------------------------------------


def test_version_is_the_fingerprint(rkt_cli: RktCli, rkt_dir: Path, rkt_config: Config) -> None:
    assert rkt_cli.version() == {
        "driver.rkt": "1",
        "driver.rkt.version": "1.30.0",
        "driver.rkt.appc.version": "0.8.11",
    }
    assert fakerkt.calls(rkt_dir)[-1]["argv"] == [*rkt_config.rkt_global_args(), "version"]


def test_prepare_issues_exactly_the_builders_argv_and_stamps_the_pod(
    rkt_cli: RktCli,
    rkt_dir: Path,
    rkt_config: Config,
    tmp_path: Path,
    spec: Callable[..., TaskSpec],
) -> None:
    task = spec(
        env=frozen_map({"GREETING": "hello"}),
        volumes=(Volume(host=str(tmp_path), container="/data", read_only=True),),
    )
    uuid = rkt_cli.prepare(task, extra_env={"RKTCTL_PORT_HTTP": "8080"})
    opts = argv_options(rkt_config, extra_env={"RKTCTL_PORT_HTTP": "8080"})
    # The fetch phase first; prepare then reads the store by the ID fetch printed.
    assert subcommand_calls(rkt_dir, "fetch") == [list(rktargs.fetch_argv(task, opts)[1:])]
    (prepared,) = subcommand_calls(rkt_dir, "prepare")
    image_id = prepared[prepared.index("--pull-policy=never") + 1]
    assert image_id.startswith("sha512-")
    expected = rktargs.prepare_argv(task, opts, image_id=image_id)
    assert expected[0] == rkt_config.rkt
    assert prepared == list(expected[1:])
    pods = {p.uuid: p for p in rkt_cli.list_pods().pods}
    assert (pods[uuid].state, pods[uuid].task, pods[uuid].spec_hash) == (
        PodState.PREPARED,
        "web",
        "sha256-web",
    )


def test_rkt_command_log_line_per_call_with_env_values_redacted(
    rkt_cli: RktCli, spec: Callable[..., TaskSpec]
) -> None:
    task = spec(env=frozen_map({"TOKEN": "s3cr3t"}))
    with capture_logs() as logs:
        rkt_cli.prepare(task)
        rkt_cli.list_pods()
    events = [e for e in logs if e["event"] == "rkt_command"]
    assert [_subcommand(e["argv"]) for e in events] == ["fetch", "prepare", "list"]
    assert all(e["returncode"] == 0 and e["duration_ms"] >= 0 for e in events)
    assert "--set-env=TOKEN=<redacted>" in events[1]["argv"]
    assert "s3cr3t" not in json.dumps(logs)


def test_the_fetch_phase_runs_once_per_image_with_new_and_at_every_start_with_update(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec]
) -> None:
    task = spec()
    first, second = rkt_cli.prepare(task), rkt_cli.prepare(task)
    assert first != second
    assert len(subcommand_calls(rkt_dir, "fetch")) == 1
    assert len(subcommand_calls(rkt_dir, "prepare")) == 2
    rkt_cli.prepare(dataclasses.replace(task, pull_policy="update"))
    assert [c[-2] for c in subcommand_calls(rkt_dir, "fetch")] == [
        "--pull-policy=new",
        "--pull-policy=update",
    ]


def test_a_failed_fetch_fails_the_start_before_prepare(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec]
) -> None:
    fakerkt.add_fault(rkt_dir, cmd="fetch", exit=254, stderr="fetch: boom\n", times=1)
    with pytest.raises(RktCommandFailed) as info:
        rkt_cli.prepare(spec())
    assert info.value.subcommand == "fetch"
    assert subcommand_calls(rkt_dir, "prepare") == []
    assert rkt_cli.images.fetching() == {}
    rkt_cli.prepare(spec())  # the fault fired once: the next start fetches and prepares
    assert len(subcommand_calls(rkt_dir, "prepare")) == 1


def test_an_image_removed_from_the_store_is_fetched_again_after_one_failed_start(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec], backend: Backend
) -> None:
    task = spec()
    uuid = rkt_cli.prepare(task)
    rkt_cli.remove(uuid)  # rkt refuses to remove an image a pod still uses
    (prepared,) = subcommand_calls(rkt_dir, "prepare")
    image_id = prepared[prepared.index("--pull-policy=never") + 1]
    removed = backend.run(rkt_dir, "image", "rm", image_id)
    assert removed.returncode == 0, removed.stderr
    with pytest.raises(RktCommandFailed) as info:
        rkt_cli.prepare(task)  # prepare reads the store only: it does not pull
    assert info.value.subcommand == "prepare"
    rkt_cli.prepare(task)
    assert len(subcommand_calls(rkt_dir, "fetch")) == 2


# --- lifecycle with real processes -----------------------------------------------------


def test_prepared_running_stopped_removed(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec]
) -> None:
    task = spec()
    uuid = rkt_cli.prepare(task)
    assert state_of(rkt_cli, uuid) is PodState.PREPARED

    rkt_cli.run_prepared(task, uuid)
    assert state_of(rkt_cli, uuid) is PodState.RUNNING
    wait_booted(rkt_cli, uuid)
    assert isinstance(rkt_cli.launcher, DetachedLauncher)
    pid = rkt_cli.launcher.pids()[uuid]
    assert alive(pid)
    owned = [p for p in rkt_cli.list_pods().owned() if p.uuid == uuid]
    assert [(p.state, p.task) for p in owned] == [(PodState.RUNNING, "web")]

    rkt_cli.stop(uuid, kill_timeout_s=10)
    assert state_of(rkt_cli, uuid) is PodState.EXITED
    wait_for(lambda: not alive(pid), what="the pod's rkt process to exit")
    assert uuid not in rkt_cli.launcher.pids()  # reaped, not a zombie
    assert len(subcommand_calls(rkt_dir, "stop")) == 1  # no --force needed

    rkt_cli.remove(uuid)
    assert rkt_cli.status(uuid) is None
    assert uuid not in {p.uuid for p in rkt_cli.list_pods().pods}


def test_crashing_app_exit_code_is_visible(
    rkt_cli: RktCli, spec: Callable[..., TaskSpec], backend: Backend
) -> None:
    task = spec(command="/bin/sh", args=("-c", "sleep 0.2; exit 3"))
    uuid = run_task(rkt_cli, task)

    def exited() -> ObservedPod | None:
        pod = next((p for p in rkt_cli.list_pods().pods if p.uuid == uuid), None)
        return pod if pod and pod.state is PodState.EXITED else None

    pod = wait_for(exited, what="the pod to exit")
    # fly records no exit codes: the app is the rkt process itself (FINDINGS 2)
    assert pod.exit_code in backend.recorded_exit_codes(3)
    assert [a.exit_code for a in pod.apps] == [pod.exit_code]


def test_stop_escalates_to_force_after_kill_timeout(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec], backend: Backend
) -> None:
    task = spec(command="/bin/sh", args=("-c", IGNORES_TERM))
    uuid = run_task(rkt_cli, task)
    rkt_cli.stop(uuid, kill_timeout_s=0.5)
    assert state_of(rkt_cli, uuid) is PodState.EXITED
    calls = [argv[-2:] for argv in subcommand_calls(rkt_dir, "stop")]
    if backend.flavor == "host" and calls == [["stop", uuid]]:
        # The host stage1's systemd stops the app unit itself (SIGTERM, then its own
        # SIGKILL), and has been seen to end the pod within the 0.5 s: no force needed.
        return
    assert calls == [["stop", uuid], ["--force", uuid]]


@pytest.mark.parametrize("force", [False, True], ids=["graceful", "forced"])
def test_a_stop_that_fails_for_a_pod_that_ended_anyway_is_success(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec], backend: Backend, force: bool
) -> None:
    backend.skip_unless_fake("a fault rule stands in for the host stage1's race")
    uuid = run_task(rkt_cli, spec())
    rkt_cli.stop(uuid, kill_timeout_s=10)  # ended: the stop below races nothing
    fakerkt.add_fault(rkt_dir, cmd="stop", exit=254, stderr="stop: failed to stop 1 pod(s)\n")
    # No RktCommandFailed: the pod no longer runs.
    if force:
        rkt_cli.force_stop(uuid)
    else:
        assert rkt_cli.request_stop(uuid) is False  # nothing signalled: nothing to watch


@pytest.mark.parametrize("force", [False, True], ids=["graceful", "forced"])
def test_a_stop_that_fails_for_a_running_pod_raises_with_rkts_reason(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec], backend: Backend, force: bool
) -> None:
    backend.skip_unless_fake("a fault rule makes the stop fail")
    uuid = run_task(rkt_cli, spec())
    fakerkt.add_fault(
        rkt_dir,
        cmd="stop",
        exit=254,
        stderr=(
            "error sending terminated: operation not permitted\n"
            f'stop: error stopping "{uuid}": exit status 1\n'
            "stop: failed to stop 1 pod(s)\n"
        ),
        times=1,
    )
    # The message names rkt's reason, not its closing count.
    with pytest.raises(RktCommandFailed, match="exited 254: error sending terminated"):
        if force:
            rkt_cli.force_stop(uuid)
        else:
            rkt_cli.request_stop(uuid)
    rkt_cli.stop(uuid, kill_timeout_s=10)


@pytest.mark.parametrize("target", ["exited", "unknown"])
def test_stop_of_a_stopped_or_unknown_pod_is_success(
    rkt_cli: RktCli, rkt_dir: Path, target: str, spec: Callable[..., TaskSpec]
) -> None:
    if target == "exited":
        uuid = run_task(rkt_cli, spec())
        rkt_cli.stop(uuid, kill_timeout_s=10)
    else:
        uuid = NO_SUCH_POD
    before = len(subcommand_calls(rkt_dir, "stop"))
    rkt_cli.stop(uuid, kill_timeout_s=10)
    assert [argv[-2:] for argv in subcommand_calls(rkt_dir, "stop")[before:]] == [["stop", uuid]]


def test_stop_of_a_prepared_pod_is_success(rkt_cli: RktCli, spec: Callable[..., TaskSpec]) -> None:
    uuid = rkt_cli.prepare(spec())
    rkt_cli.stop(uuid, kill_timeout_s=1)
    assert state_of(rkt_cli, uuid) is PodState.PREPARED


def test_remove_and_status_of_an_unknown_pod(rkt_cli: RktCli) -> None:
    rkt_cli.remove(NO_SUCH_POD)
    assert rkt_cli.status(NO_SUCH_POD) is None


def test_remove_of_a_prepared_pod(rkt_cli: RktCli, spec: Callable[..., TaskSpec]) -> None:
    uuid = rkt_cli.prepare(spec())
    rkt_cli.remove(uuid)
    assert rkt_cli.status(uuid) is None


def test_remove_is_retried_once(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec]
) -> None:
    uuid = run_task(rkt_cli, spec())
    rkt_cli.stop(uuid, kill_timeout_s=10)
    fakerkt.add_fault(rkt_dir, cmd="rm", exit=254, stderr="rm: transient failure\n", times=1)
    rkt_cli.remove(uuid)
    assert len(subcommand_calls(rkt_dir, "rm")) == 2
    assert rkt_cli.status(uuid) is None


def test_remove_of_a_running_pod_fails_after_the_retry(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec]
) -> None:
    uuid = run_task(rkt_cli, spec())
    with pytest.raises(RktCommandFailed, match="rm exited 254") as info:
        rkt_cli.remove(uuid)
    assert "is currently running" in info.value.stderr_tail
    assert len(subcommand_calls(rkt_dir, "rm")) == 2


def test_gc_collects_exited_pods(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec]
) -> None:
    uuid = run_task(rkt_cli, spec())
    rkt_cli.stop(uuid, kill_timeout_s=10)
    rkt_cli.gc(grace_period_s=0)
    assert subcommand_calls(rkt_dir, "gc")[-1][-2:] == ["gc", "--grace-period=0s"]
    assert rkt_cli.status(uuid) is None


def test_run_prepared_of_a_pod_that_is_not_prepared_is_a_launch_error(
    rkt_cli: RktCli, spec: Callable[..., TaskSpec]
) -> None:
    task = spec()
    uuid = run_task(rkt_cli, task)
    rkt_cli.stop(uuid, kill_timeout_s=10)
    with pytest.raises(LaunchError, match="is exited, not prepared"):
        rkt_cli.run_prepared(task, uuid)


def test_run_prepared_that_dies_before_the_pod_runs_is_a_launch_error(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec]
) -> None:
    task = spec()
    uuid = rkt_cli.prepare(task)
    fakerkt.add_fault(rkt_dir, cmd="run-prepared", exit=254, stderr="run-prepared: boom\n", times=1)
    with pytest.raises(LaunchError, match=r"exited 254 before the pod ran.*boom"):
        rkt_cli.run_prepared(task, uuid)
    assert state_of(rkt_cli, uuid) is PodState.PREPARED


def test_run_prepared_of_an_unknown_pod_is_a_launch_error(
    rkt_cli: RktCli, spec: Callable[..., TaskSpec]
) -> None:
    with pytest.raises(LaunchError, match="is gone, not prepared"):
        rkt_cli.run_prepared(spec(), NO_SUCH_POD)


# --- error translation ------------------------------------------------------------------


def test_missing_binary_is_rkt_not_found(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    cli = RktCli(make_config(rkt=str(tmp_path / "no-such-rkt")))
    with pytest.raises(RktNotFound, match="no-such-rkt"):
        cli.version()
    with pytest.raises(RktNotFound):
        cli.list_pods()


def test_non_executable_binary_is_rkt_not_found(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    plain = tmp_path / "not-a-program"
    plain.write_text("just text\n")
    with pytest.raises(RktNotFound):
        RktCli(make_config(rkt=str(plain))).list_pods()


def test_timeout_kills_the_command_and_raises(
    make_config: Callable[..., Config], rkt_dir: Path
) -> None:
    cli = RktCli(make_config(command_timeout_s=1.0))
    fakerkt.add_fault(rkt_dir, cmd="list", delay_s=30, times=1)
    started = time.monotonic()
    with pytest.raises(RktTimeout) as info:
        cli.list_pods()
    assert info.value.timeout == 1.0
    assert time.monotonic() - started < 15  # killed, not waited for
    assert not _fake_processes_in(rkt_dir), "the timed-out rkt process was left running"
    # The fault fired once; rkt works again (asked with a timeout a loaded machine meets).
    assert RktCli(make_config(command_timeout_s=30.0)).list_pods().pods == ()


def test_non_zero_exit_carries_returncode_and_stderr_tail(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec]
) -> None:
    fakerkt.add_fault(
        rkt_dir, cmd="prepare", exit=254, stderr="prepare: error finding images: boom\n"
    )
    with pytest.raises(RktCommandFailed) as info:
        rkt_cli.prepare(spec())
    assert info.value.returncode == 254
    assert info.value.subcommand == "prepare"
    assert "boom" in info.value.stderr_tail
    assert "boom" in str(info.value)


def test_garbage_output_is_rkt_output_error(rkt_cli: RktCli, rkt_dir: Path) -> None:
    fakerkt.add_fault(rkt_dir, cmd="list", stdout="this is not json\n", exit=0, times=1)
    with pytest.raises(RktOutputError, match="not JSON"):
        rkt_cli.list_pods()


def test_spec_rkt_cannot_express_is_a_manifest_error(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec]
) -> None:
    with pytest.raises(ManifestError, match="---"):
        rkt_cli.prepare(spec(args=("a", "---")))
    assert subcommand_calls(rkt_dir, "prepare") == []


# --- trust cache -------------------------------------------------------------------------


def test_trust_runs_once_per_prefix_and_is_remembered(
    backend: Backend,
    rkt_cli: RktCli,
    rkt_dir: Path,
    rkt_config: Config,
    make_rkt_cli: Callable[..., RktCli],
    spec: Callable[..., TaskSpec],
) -> None:
    backend.skip_unless_fake("rkt trust discovers keys over HTTPS, and this machine has no network")
    task = spec(trust_prefix="example.com/web")
    rkt_cli.prepare(task)
    rkt_cli.prepare(task)
    assert subcommand_calls(rkt_dir, "trust") == [
        [
            *rkt_config.rkt_global_args(),
            "--debug=false",
            "trust",
            "--prefix=example.com/web",
            "--skip-fingerprint-review",
        ]
    ]
    make_rkt_cli().prepare(task)  # a restarted controller reads the cache
    assert len(subcommand_calls(rkt_dir, "trust")) == 1
    make_rkt_cli().prepare(spec(trust_prefix="example.com/other"))
    assert len(subcommand_calls(rkt_dir, "trust")) == 2
    cache = json.loads((Path(rkt_config.state_dir) / "trusted-prefixes.json").read_text())
    assert {e["prefix"] for e in cache["trusted"]} == {"example.com/web", "example.com/other"}


def test_failed_trust_is_not_remembered(
    backend: Backend, rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec]
) -> None:
    backend.skip_unless_fake("rkt trust discovers keys over HTTPS, and this machine has no network")
    fakerkt.add_fault(
        rkt_dir, cmd="trust", exit=254, stderr="trust: error determining key location\n", times=1
    )
    task = spec(trust_prefix="example.com/web")
    with pytest.raises(RktCommandFailed):
        rkt_cli.prepare(task)
    assert subcommand_calls(rkt_dir, "prepare") == []
    rkt_cli.prepare(task)
    assert len(subcommand_calls(rkt_dir, "trust")) == 2


# --- environment -------------------------------------------------------------------------


def test_clean_env_keeps_only_the_allow_list() -> None:
    assert clean_env(
        {
            "PATH": "/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "LC_ALL": "C",
            "TMPDIR": "/tmp",
            "NOTIFY_SOCKET": "/run/systemd/notify",
            "WATCHDOG_USEC": "1000",
            "WATCHDOG_PID": "1",
            "RKTCTL_RKT": "/x",
            "AWS_SECRET_ACCESS_KEY": "k",
        }
    ) == {"PATH": "/bin", "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C", "TMPDIR": "/tmp"}
    assert "PATH" in clean_env({})


def test_rkt_processes_get_the_scrubbed_env(
    make_rkt_cli: Callable[..., RktCli], spec: Callable[..., TaskSpec]
) -> None:
    environ = {
        **os.environ,
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "WATCHDOG_USEC": "30000000",
        "RKTCTL_CONFIG": "/etc/rktctl/config.toml",
        "SECRET_FROM_CONTROLLER": "x",
    }
    cli = make_rkt_cli(environ=environ)
    task = spec()
    uuid = cli.prepare(task)
    cli.run_prepared(task, uuid)  # the launched rkt process is read at once, while it runs
    assert isinstance(cli.launcher, DetachedLauncher)
    pid = cli.launcher.pids()[uuid]
    env = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{pid}/environ").read_text().split("\0")
        if "=" in item
    )
    # Checked by sentinel: the interpreter's launcher (e.g. a pyenv shim between
    # `/usr/bin/env python3` and the fake) may set variables of its own.
    assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC", "RKTCTL_CONFIG", "SECRET_FROM_CONTROLLER"} & set(
        env
    )
    assert env["PATH"].endswith(clean_env(environ)["PATH"])  # a shim may prepend
    wait_booted(cli, uuid)
    cli.stop(uuid, kill_timeout_s=10)


def test_pod_output_goes_to_the_per_pod_log_file(
    rkt_cli: RktCli, rkt_config: Config, spec: Callable[..., TaskSpec]
) -> None:
    task = spec(command="/bin/sh", args=("-c", "echo hello-from-app; sleep 1000"))
    uuid = run_task(rkt_cli, task)
    log_path = Path(rkt_config.state_dir) / "logs" / f"web-{uuid[:8]}.log"
    wait_for(
        lambda: log_path.exists() and "hello-from-app" in log_path.read_text(),
        what="the app's output in the pod log",
    )
    rkt_cli.stop(uuid, kill_timeout_s=10)


# --- no leftovers -----------------------------------------------------------------------


def _fake_processes_in(rkt_dir: Path) -> list[int]:
    """PIDs of live processes that mention this test's rkt dir in argv or environment.

    rkt processes carry `--dir=<rkt_dir>`; apps are found through a `--set-env` marker.
    """
    found = []
    needle = str(rkt_dir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in text and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def test_no_process_is_left_behind_after_stop(
    rkt_cli: RktCli, rkt_dir: Path, spec: Callable[..., TaskSpec]
) -> None:
    marker = frozen_map({"LEFTOVER_MARKER": str(rkt_dir)})
    uuids = [run_task(rkt_cli, spec(f"t{i}", env=marker)) for i in range(3)]
    assert _fake_processes_in(rkt_dir)
    for uuid in uuids:
        rkt_cli.stop(uuid, kill_timeout_s=10)
    wait_for(lambda: not _fake_processes_in(rkt_dir), what="every pod process to be gone")


# --- systemd-run launcher (no systemd needed) ----------------------------------------------


def test_systemd_run_argv_names_the_unit_and_slice(fake_rkt: Path) -> None:
    launcher = SystemdRunLauncher(env={"PATH": str(fake_rkt.parent)})
    argv = ("rkt", "--dir=/var/lib/rkt", "run-prepared", NO_SUCH_POD)
    assert launcher.argv(argv, uuid=NO_SUCH_POD, task=TaskName("web.api_1")) == (
        "systemd-run",
        "--unit=rktctl-web.api_1-0f0f0f0f",
        "--slice=machine.slice",
        "--collect",
        "--quiet",
        "--",
        str(fake_rkt),  # resolved on the PATH rkt gets: a unit's ExecStart needs a path
        "--dir=/var/lib/rkt",
        "run-prepared",
        NO_SUCH_POD,
    )
    assert unit_name("a b/c", NO_SUCH_POD) == "rktctl-a_b_c-0f0f0f0f"


def test_systemd_run_failure_is_a_launch_error(tmp_path: Path) -> None:
    launcher = SystemdRunLauncher(env={"PATH": "/bin"}, systemd_run=str(tmp_path / "nope"))
    with pytest.raises(LaunchError, match="could not start the pod of task web"):
        launcher.launch(
            ("/bin/true",), uuid=NO_SUCH_POD, task=TaskName("web"), log_path=tmp_path / "x.log"
        )
