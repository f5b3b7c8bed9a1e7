"""Volume host paths (issue 10): relative ones are created, missing absolute ones refused early.

Integration tier, in-process on the fake rkt, which refuses a missing host path at
run-prepared as real rkt does (tests/contract/test_volumes_boot_ports.py proves that on
every backend; tests/e2e/test_daemon_volumes_boot_ports.py runs the daemon on real rkt).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controller.config import Config
from controller.errors import VolumeError
from controller.model import HoldReason, Volume
from controller.reconcile import Reconciler
from controller.runtime import RktCli
from controller.status import build_task_statuses
from controller.volumes import DIR_MODE, ensure_task_dirs, missing_host_paths
from tests.e2e.harness import manifest_yaml
from tests.factories import task
from tests.fakes import fakerkt
from tests.statuscheck import status_errors


@pytest.fixture
def narrow_umask() -> Iterator[None]:
    """A strict umask, as under systemd: created directories must still be 0755."""
    old = os.umask(0o077)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_relative_volume_dirs_are_created_0755_whatever_the_umask(
    tmp_path: Path, narrow_umask: None
) -> None:
    spec = task(
        "web",
        volumes=(
            Volume(host="data", container="/data"),
            Volume(host="cache/deep", container="/cache", read_only=True),
        ),
    )
    created = ensure_task_dirs(spec, data_dir=str(tmp_path / "tasks"))
    tasks = tmp_path / "tasks"
    web = tasks / "web"
    assert created == (tasks, web, web / "data", web / "cache", web / "cache" / "deep")
    assert {_mode(p) for p in created} == {DIR_MODE} == {0o755}
    assert ensure_task_dirs(spec, data_dir=str(tmp_path / "tasks")) == ()  # idempotent


def test_an_existing_directory_is_never_changed(tmp_path: Path) -> None:
    data = tmp_path / "tasks" / "web" / "data"
    data.mkdir(parents=True)
    data.chmod(0o700)  # the operator's choice
    spec = task("web", volumes=(Volume(host="data", container="/data"),), user="1234")
    assert ensure_task_dirs(spec, data_dir=str(tmp_path / "tasks")) == ()
    assert _mode(data) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root (as rkt does)")
def test_a_numeric_user_and_group_own_a_new_volume_dir(tmp_path: Path) -> None:
    spec = task("web", volumes=(Volume(host="data", container="/data"),), user="1234", group="99")
    ensure_task_dirs(spec, data_dir=str(tmp_path / "tasks"))
    data = tmp_path / "tasks" / "web" / "data"
    assert (data.stat().st_uid, data.stat().st_gid) == (1234, 99)
    assert (data.parent.stat().st_uid, data.parent.stat().st_gid) == (os.getuid(), os.getgid())


def test_a_directory_that_cannot_be_created_is_a_volume_error(tmp_path: Path) -> None:
    (tmp_path / "tasks" / "web").mkdir(parents=True)
    (tmp_path / "tasks" / "web" / "data").write_text("a file, not a directory")
    spec = task("web", volumes=(Volume(host="data/sub", container="/data"),))
    with pytest.raises(VolumeError, match=r"spec\.config\.volumes\[0\] \(data/sub:/data\)"):
        ensure_task_dirs(spec, data_dir=str(tmp_path / "tasks"))


def test_missing_absolute_paths_are_named_with_the_fix(tmp_path: Path) -> None:
    present, absent = tmp_path / "present", tmp_path / "absent"
    present.mkdir()
    spec = task(
        "web",
        volumes=(
            Volume(host=str(present), container="/a"),
            Volume(host="rel", container="/b"),
            Volume(host=str(absent), container="/c"),
        ),
    )
    (message,) = missing_host_paths(spec, data_dir=str(tmp_path / "tasks"))
    assert message.startswith(f"spec.config.volumes[2] ({absent}:/c): host path {absent} ")
    assert f"mkdir -p {absent}" in message
    assert f'"data:/c" is created by rktctl under {tmp_path / "tasks" / "web"}/' in message


def test_prepare_refuses_a_missing_absolute_path_before_calling_rkt(
    rkt_cli: RktCli, rkt_dir: Path, tmp_path: Path
) -> None:
    spec = task("web", volumes=(Volume(host=str(tmp_path / "nope"), container="/data"),))
    with pytest.raises(VolumeError, match="does not exist on this host"):
        rkt_cli.prepare(spec)
    assert fakerkt.calls(rkt_dir) == []


def test_prepare_creates_a_relative_volume_dir_then_the_pod_runs(
    rkt_cli: RktCli, fake_config: Config
) -> None:
    spec = task("web", command="/bin/sleep", args=("60",),
                volumes=(Volume(host="data", container="/data"),))  # fmt: skip
    uuid = rkt_cli.prepare(spec)
    assert (Path(fake_config.state_dir) / "tasks" / "web" / "data").is_dir()
    rkt_cli.run_prepared(spec, uuid)  # the fake refuses a missing host path, as rkt does
    rkt_cli.stop(uuid, kill_timeout_s=5)


def test_a_pass_blocks_the_task_with_the_reason_and_runs_nothing_for_it(
    make_config: Callable[..., Config], make_rkt_cli: Callable[..., RktCli], rkt_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    cfg = make_config(volumes_enabled=True)  # absolute host paths are off by default
    desired = Path(cfg.desired_dir)
    desired.mkdir()
    missing = tmp_path / "srv" / "db"
    text = manifest_yaml("db").replace(
        "  kill_timeout:", f'    volumes: ["{missing}:/data"]\n  kill_timeout:'
    )
    (desired / "db.yaml").write_text(text)
    (desired / "web.yaml").write_text(manifest_yaml("web"))
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    report = reconciler.run_pass("startup")

    assert [(h.reason, h.task) for h in report.plan.holds] == [(HoldReason.HOST_PATH_MISSING, "db")]
    assert {a.task for a in report.plan.actions} == {"web"}
    assert not [c for c in fakerkt.calls(rkt_dir) if "rktctl.io/task=db" in " ".join(c["argv"])]
    doc = build_task_statuses(report, previous={}, now=report.finished_at)["db"]
    assert (doc["phase"], doc["conditions"][0]["reason"]) == ("Blocked", "HostPathMissing")
    assert doc["message"].startswith(f"spec.config.volumes[0] ({missing}:/data): host path")
    assert status_errors(doc) == []

    missing.mkdir(parents=True)  # the fix: the next pass starts it
    again = reconciler.run_pass("resync")
    assert [(type(a).__name__, a.task) for a in again.plan.actions] == [("Start", "db")]
    assert all(o.ok for o in again.outcomes)
