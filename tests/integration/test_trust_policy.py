"""Which files become tasks: the trust policy (issue 11, items 1, 2 and 8; parts of 11).

A manifest decides what runs as root, so like sshd's StrictModes a file is applied only
if it and every directory from it up to the desired root are owned by root (or rktctl's
own user, or a `trusted_uids` entry) and not group/other-writable; symlinks inside the
tree may not leave it (the root itself may be a symlink, git-sync style). A refused file
is an invalid manifest of unknown task: its content is never read, status says why and
what to do, and no pod that might be its task is stopped. In-process passes on the fake.
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from controller.cli import main
from controller.config import Config
from controller.model import DesiredState
from controller.reconcile import Reconciler
from controller.runtime import RktCli
from controller.statusfiles import StatusWriter, process_info
from tests.e2e.harness import manifest_yaml
from tests.fakes import fakerkt
from tests.integration.test_reconcile_once import _running

NOBODY = 65534
SECRET = "root:$6$Zq8sAlTsAlT$9w1Jx3qLTLrPgWk0Yd2mHsiP0vhEoNcQZxw7:19700:0:99999:7:::\n"


@pytest.fixture
def cfg(make_config: Callable[..., Config], tmp_path: Path) -> Config:
    (tmp_path / "desired").mkdir()
    return make_config(gc_interval_s=0.0)


@pytest.fixture
def desired(cfg: Config) -> Path:
    return Path(cfg.desired_dir)


def _write(directory: Path, name: str, text: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(manifest_yaml(name) if text is None else text)
    return path


def _refused(state: DesiredState) -> dict[str, str]:
    """source -> messages of the manifests whose task name could not be read."""
    return {i.source: " ".join(i.messages) for i in state.unnamed_invalid}


def _publish(reconciler: Reconciler, cfg: Config) -> str:
    """Run a pass, write the status files, return everything a local user can read."""
    with capture_logs() as logs:
        report = reconciler.run_pass("file")
    info = process_info(cfg, config_path=None, started_at=0.0, node={})
    StatusWriter(cfg.status_dir).publish(report, daemon=info, now=report.finished_at)
    files = "".join(p.read_text() for p in Path(cfg.status_dir).rglob("*.json"))
    return files + json.dumps(logs, default=str)


# --- item 1: a symlink to a secret --------------------------------------------------------


def test_a_symlink_to_a_secret_outside_the_tree_is_refused_and_never_read(
    cfg: Config,
    desired: Path,
    tmp_path: Path,
    make_rkt_cli: Callable[..., RktCli],
    rkt_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shadow = tmp_path / "etc" / "shadow"
    shadow.parent.mkdir()
    shadow.write_text(SECRET)
    shadow.chmod(0o640)
    (desired / "x.yaml").symlink_to(shadow)
    _write(desired, "web")
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    readable = _publish(reconciler, cfg)
    report = reconciler.run_pass("resync")
    (message,) = _refused(report.desired).values()
    assert f"symlink to {shadow}" in message
    assert "outside the desired directory" in message
    assert "Zq8s" not in readable and "19700" not in readable
    assert set(_running(rkt_dir)) == {"web"}
    assert main(["status", "--json", "--status-dir", cfg.status_dir]) == 0
    out = capsys.readouterr().out
    assert "Zq8s" not in out
    assert "outside the desired directory" in out


def test_symlinks_that_stay_inside_the_tree_are_followed(
    cfg: Config, desired: Path, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    target = _write(desired / "real", "web")
    (desired / "alias.yaml").symlink_to(target)
    (desired / "real" / "web.yaml").rename(desired / "real" / "web.yml.src")
    (desired / "alias.yaml").unlink()
    (desired / "alias.yaml").symlink_to("real/web.yml.src")
    report = Reconciler(cfg, make_rkt_cli(cfg)).run_pass("startup")
    assert report.desired.unnamed_invalid == ()
    assert set(_running(rkt_dir)) == {"web"}


def test_a_git_sync_style_symlinked_root_is_read(
    make_config: Callable[..., Config], tmp_path: Path, make_rkt_cli: Callable[..., RktCli],
    rkt_dir: Path,
) -> None:  # fmt: skip
    rev = tmp_path / "git" / ("rev-" + "a" * 40)
    _write(rev / "hosts", "web")
    link = tmp_path / "desired"
    link.symlink_to(rev)
    cfg = make_config(desired_dir=str(link))
    report = Reconciler(cfg, make_rkt_cli(cfg)).run_pass("startup")
    assert report.desired.unnamed_invalid == ()
    assert report.desired.revision == "a" * 40
    assert set(_running(rkt_dir)) == {"web"}


def test_a_symlink_into_a_skipped_dot_directory_is_refused(
    cfg: Config, desired: Path, make_rkt_cli: Callable[..., RktCli]
) -> None:
    git = desired / ".git"
    git.mkdir()
    (git / "config").write_text("[core]\n")
    (desired / "x.yaml").symlink_to(git / "config")
    report = Reconciler(cfg, make_rkt_cli(cfg)).run_pass("startup")
    assert (
        "outside the directories rktctl reads" in _refused(report.desired)[str(desired / "x.yaml")]
    )


def test_a_dangling_symlink_is_an_invalid_manifest_with_its_target(
    cfg: Config, desired: Path, make_rkt_cli: Callable[..., RktCli]
) -> None:
    (desired / "gone.yaml").symlink_to(desired / "nowhere.yaml")
    report = Reconciler(cfg, make_rkt_cli(cfg)).run_pass("startup")
    message = _refused(report.desired)[str(desired / "gone.yaml")]
    assert f"dangling symlink to {desired / 'nowhere.yaml'}" in message


# --- item 2: who may write a manifest -----------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "why", "fix"),
    [
        pytest.param(lambda p: os.chown(p, NOBODY, -1), "owned by uid 65534", "chown root",
                     id="file-owned-by-a-user"),
        pytest.param(lambda p: p.chmod(0o664), "group-writable", "chmod go-w",
                     id="file-group-writable"),
        pytest.param(lambda p: p.chmod(0o646), "world-writable", "chmod go-w",
                     id="file-world-writable"),
        pytest.param(lambda p: p.parent.chmod(0o777), "world-writable", "chmod go-w",
                     id="directory-world-writable"),
        pytest.param(lambda p: p.parent.chmod(0o1777), "world-writable", "chmod go-w",
                     id="directory-sticky-world-writable"),
        pytest.param(lambda p: os.chown(p.parent, NOBODY, -1), "owned by uid 65534",
                     "chown root", id="directory-owned-by-a-user"),
    ],
)  # fmt: skip
def test_a_manifest_others_can_write_is_refused_with_the_reason_and_the_fix(
    cfg: Config,
    desired: Path,
    make_rkt_cli: Callable[..., RktCli],
    rkt_dir: Path,
    setup: Callable[[Path], None],
    why: str,
    fix: str,
) -> None:
    """A user who can write it could run `user: "0"` with `/` mounted: local root."""
    evil = _write(desired / "team", "evil", manifest_yaml("evil", env={"TOKEN": "s3cr3t"}))
    setup(evil)
    _write(desired, "web")
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    report = reconciler.run_pass("startup")
    (message,) = _refused(report.desired).values()
    assert why in message and fix in message
    assert "strict_modes" in message  # the development switch is named too
    assert "s3cr3t" not in message
    assert set(_running(rkt_dir)) == {"web"}
    assert not any("evil" in " ".join(c["argv"]) for c in fakerkt.calls(rkt_dir, "prepare"))


def test_a_world_writable_directory_above_the_desired_root_does_not_matter(
    cfg: Config, desired: Path, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    """/tmp (1777) holds the tests' and the demo's desired dirs; only the tree counts."""
    desired.parent.chmod(0o1777)
    _write(desired, "web")
    try:
        Reconciler(cfg, make_rkt_cli(cfg)).run_pass("startup")
    finally:
        desired.parent.chmod(0o700)
    assert set(_running(rkt_dir)) == {"web"}


def test_trusted_uids_and_strict_modes_off_relax_the_policy(
    make_config: Callable[..., Config], desired: Path, make_rkt_cli: Callable[..., RktCli],
    rkt_dir: Path, tmp_path: Path,
) -> None:  # fmt: skip
    os.chown(_write(desired, "web"), NOBODY, -1)
    _write(desired, "db").chmod(0o666)
    outside = _write(tmp_path / "elsewhere", "api")
    (desired / "api.yaml").symlink_to(outside)
    trusted = make_config(trusted_uids=(NOBODY,))
    report = Reconciler(trusted, make_rkt_cli(trusted)).run_pass("startup")
    assert "web" in report.desired.tasks
    assert sorted(_refused(report.desired)) == [str(desired / "api.yaml"), str(desired / "db.yaml")]
    relaxed = make_config(strict_modes=False)
    report = Reconciler(relaxed, make_rkt_cli(relaxed)).run_pass("startup")
    assert {"web", "db"} <= set(report.desired.tasks)
    # Leaving the tree stays refused: that is how a secret file gets read.
    assert list(_refused(report.desired)) == [str(desired / "api.yaml")]
    assert set(_running(rkt_dir)) == {"web", "db"}


def test_a_running_task_whose_file_becomes_untrusted_keeps_its_pod(
    cfg: Config, desired: Path, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    web = _write(desired, "web")
    _write(desired, "db")
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    reconciler.run_pass("startup")
    before = _running(rkt_dir)
    web.chmod(0o666)
    report = reconciler.run_pass("file")
    assert report.plan.actions == ()
    assert _running(rkt_dir) == before
    web.chmod(0o644)
    assert reconciler.run_pass("file").plan.actions == ()


# --- FIFOs and devices are refused before they are opened (item 11) ------------------------


@pytest.fixture
def opens() -> Iterator[Callable[[Path], Callable[[], bool]]]:
    """inotify IN_OPEN on a path: tells afterwards whether anyone opened it."""
    libc = ctypes.CDLL(None, use_errno=True)
    fds: list[int] = []

    def watch(path: Path) -> Callable[[], bool]:
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert fd >= 0
        fds.append(fd)
        assert libc.inotify_add_watch(fd, str(path).encode(), 0x20) >= 0  # IN_OPEN

        def opened() -> bool:
            try:
                return bool(os.read(fd, 4096))
            except BlockingIOError:
                return False

        return opened

    yield watch
    for fd in fds:
        os.close(fd)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        pytest.param(os.mkfifo, "FIFO", id="fifo"),
        pytest.param(lambda p: os.mknod(p, stat.S_IFCHR | 0o644, os.makedev(1, 3)),
                     "character device", id="char-device"),
    ],
)  # fmt: skip
def test_a_fifo_or_device_is_refused_without_being_opened(
    cfg: Config, desired: Path, make_rkt_cli: Callable[..., RktCli],
    opens: Callable[[Path], Callable[[], bool]], make: Callable[[Path], None], kind: str,
) -> None:  # fmt: skip
    """Opening a device can act (a tape rewinds, /dev/watchdog arms): never open one."""
    path = desired / "dev.yaml"
    make(path)
    opened = opens(path)
    report = Reconciler(cfg, make_rkt_cli(cfg)).run_pass("startup")
    assert f"is a {kind}, not a regular file" in _refused(report.desired)[str(path)]
    assert not opened()
    assert main(["validate", str(path)]) == 1
    assert not opened()


# --- item 8: unreadable parts of the tree -------------------------------------------------


def _reconcile_without_dac_override(cfg_path: Path) -> str:
    """`rktctl reconcile --once` as root without CAP_DAC_OVERRIDE: permissions apply."""
    import subprocess
    import sys

    result = subprocess.run(
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all",
         sys.executable, "-m", "controller", "reconcile", "--once", "--config", str(cfg_path)],
        capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")},
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout + result.stderr


def _toml(cfg: Config, path: Path) -> Path:
    keys = ("desired_dir", "status_dir", "state_dir", "rkt", "rkt_dir", "rkt_local_config")
    path.write_text("".join(f"{k} = {json.dumps(getattr(cfg, k))}\n" for k in keys))
    return path


@pytest.mark.parametrize("where", ["subdirectory", "root"])
def test_an_unreadable_part_of_the_tree_holds_with_a_clear_status(
    cfg: Config, desired: Path, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path,
    tmp_path: Path, where: str,
) -> None:  # fmt: skip
    if os.system("setpriv --bounding-set=-dac_override true >/dev/null 2>&1") != 0:
        pytest.skip("needs root and setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
    _write(desired / "team", "web")
    _write(desired, "db")
    Reconciler(cfg, make_rkt_cli(cfg)).run_pass("startup")
    before = _running(rkt_dir)
    locked = desired / "team" if where == "subdirectory" else desired
    locked.chmod(0o000)
    try:
        out = _reconcile_without_dac_override(_toml(cfg, tmp_path / "config.toml"))
    finally:
        locked.chmod(0o755)
    assert _running(rkt_dir) == before, out
    controller = json.loads((Path(cfg.status_dir) / "controller.json").read_text())
    (entry,) = controller["invalid_manifests"]
    assert entry["source"] == str(locked)
    assert "cannot read this directory: Permission denied" in entry["messages"][0]
    assert controller["last_pass"]["result"] in ("ok", "held")


def test_validate_reports_a_directory_it_cannot_read(tmp_path: Path) -> None:
    import subprocess
    import sys

    if os.system("setpriv --bounding-set=-dac_override true >/dev/null 2>&1") != 0:
        pytest.skip("needs root and setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
    _write(tmp_path / "d", "web")
    locked = tmp_path / "d" / "team"
    _write(locked, "db")
    locked.chmod(0o000)
    try:
        result = subprocess.run(
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all",
             sys.executable, "-m", "controller", "validate", str(tmp_path / "d")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        locked.chmod(0o755)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{locked}: cannot read this directory: Permission denied" in result.stdout
