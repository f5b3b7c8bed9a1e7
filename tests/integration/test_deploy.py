"""deploy/: the systemd units, tmpfiles entry, config example, alert rules and git sync."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from controller.config import Config, parse_config
from controller.fsio import read_git_revision

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def unit_settings(path: Path) -> dict[str, dict[str, list[str]]]:
    """Parse a systemd unit: section -> key -> every value (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: setting outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a Key=Value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value: str) -> float:
    """systemd time span ("90s", "15min", "1h", "60") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "hr": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


SERVICE = unit_settings(DEPLOY / "rktctl.service")["Service"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("ExecStart", "/usr/bin/rktctl run --config /etc/rktctl/config.toml"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "78"),
        ("KillMode", "process"),
        ("User", "root"),
        ("UMask", "0022"),
    ],
)
def test_service_setting(key: str, value: str) -> None:
    assert SERVICE.get(key) == [value]


def test_watchdog_outlasts_the_longest_rkt_command() -> None:
    """WATCHDOG=1 is sent between passes; a pass may wait on `rkt prepare` (image fetch)."""
    (watchdog,) = SERVICE["WatchdogSec"]
    defaults = Config()
    assert seconds(watchdog) > defaults.prepare_timeout_s + defaults.command_timeout_s
    (stop,) = SERVICE["TimeoutStopSec"]
    assert seconds(stop) > 0


# Each of these would put rkt (and detached pods) into a private mount namespace,
# or sandbox every workload through inheritance: see the unit's comments.
FORBIDDEN = ["PrivateTmp", "ProtectSystem", "ProtectHome", "ReadOnlyPaths", "PrivateDevices",
             "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups",
             "NoNewPrivileges", "RestrictSUIDSGID", "CapabilityBoundingSet", "SystemCallFilter",
             "MemoryDenyWriteExecute", "RestrictNamespaces", "PrivateNetwork", "DynamicUser",
             "ProtectProc", "IPAddressDeny"]  # fmt: skip


@pytest.mark.parametrize("key", FORBIDDEN)
def test_no_hardening_that_breaks_rkt(key: str) -> None:
    assert key not in SERVICE


def _installable_copy(tmp_path: Path, name: str, replacements: dict[str, str]) -> Path:
    text = (DEPLOY / name).read_text()
    for old, new in replacements.items():
        text = text.replace(old, new)
    copy = tmp_path / name
    copy.write_text(text)
    return copy


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """Unknown keys, bad values and typos in the units (ExecStart paths made real first)."""
    rktctl = shutil.which("rktctl") or shutil.which("true")
    assert rktctl is not None
    units = [
        _installable_copy(tmp_path, "rktctl.service", {"/usr/bin/rktctl": rktctl}),
        _installable_copy(
            tmp_path,
            "rktctl-git-sync.service",
            {"/usr/lib/rktctl/rktctl-git-sync": str(DEPLOY / "rktctl-git-sync")},
        ),
        _installable_copy(tmp_path, "rktctl-git-sync.timer", {}),
    ]
    proc = subprocess.run(
        ["systemd-analyze", "verify", *map(str, units)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (proc.returncode, proc.stderr.strip()) == (0, "")


@pytest.mark.skipif(shutil.which("systemd-tmpfiles") is None, reason="systemd-tmpfiles missing")
def test_tmpfiles_creates_the_directories(tmp_path: Path) -> None:
    conf = DEPLOY / "rktctl.tmpfiles.conf"
    subprocess.run(["systemd-tmpfiles", "--create", f"--root={tmp_path}", str(conf)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    modes = {
        str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o7777)
        for p in tmp_path.rglob("*")
        if "rktctl" in str(p)
    }
    assert modes == {
        "etc/rktctl": "0o755",
        "etc/rktctl/desired": "0o755",
        "var/lib/rktctl": "0o755",
        "var/lib/rktctl/status": "0o755",
        "var/lib/rktctl/status/tasks": "0o755",
        "var/lib/rktctl/state": "0o700",
        "var/lib/rktctl/git": "0o755",
    }


def test_example_config_is_exactly_the_defaults() -> None:
    """Every active line is a real setting with its real default."""
    with (DEPLOY / "config.toml").open("rb") as handle:
        mapping = tomllib.load(handle)
    assert parse_config(mapping, {}, source="deploy/config.toml") == Config()


def test_example_config_mentions_every_setting() -> None:
    text = (DEPLOY / "config.toml").read_text()
    listed = set(re.findall(r"^#?\s?([a-z][a-z0-9_]*) = ", text, flags=re.MULTILINE))
    fields = {f.name for f in dataclasses.fields(Config)}
    assert fields - listed == set()
    assert listed - fields == set()


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_check_rules() -> None:
    assert PROMTOOL is not None
    proc = subprocess.run([PROMTOOL, "check", "rules", str(DEPLOY / "rktctl.rules.yml")],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_rule_unit_tests() -> None:
    """The alerts fire for a stale heartbeat, failing passes, crash loops, invalid tasks, guard."""
    assert PROMTOOL is not None
    proc = subprocess.run([PROMTOOL, "test", "rules", "rktctl.rules.test.yml"], cwd=DEPLOY,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_name_only_metrics_rktctl_writes() -> None:
    from controller.metrics import Metrics

    exposed = {m.name for m in Metrics().collect()}
    exposed |= {f"{name}_total" for name in exposed}
    used = set(re.findall(r"\b(rktctl_[a-z_]+)", (DEPLOY / "rktctl.rules.yml").read_text()))
    assert used - exposed == set()


# --- GitOps sync ---------------------------------------------------------------------------

GIT = shutil.which("git")


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()  # fmt: skip


def commit(repo: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "change", cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


@pytest.mark.skipif(GIT is None, reason="git not installed")
def test_git_sync_swaps_the_desired_link_atomically(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    git("init", "-q", "-b", "main", cwd=source)
    first = commit(source, {"hosts/web.yaml": "name: web\n"})
    etc = tmp_path / "etc"
    etc.mkdir()
    link = etc / "desired"
    link.mkdir()  # as rktctl.tmpfiles.conf leaves it: an empty directory
    root = tmp_path / "git"
    env = {**os.environ, "RKTCTL_GIT_URL": str(source), "RKTCTL_GIT_SUBDIR": "hosts",
           "RKTCTL_GIT_ROOT": str(root), "RKTCTL_DESIRED_LINK": str(link), "RKTCTL_GIT_KEEP": "2",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}  # fmt: skip

    def sync() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(DEPLOY / "rktctl-git-sync")], env=env, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip

    assert sync().returncode == 0
    assert os.readlink(link) == str(root / f"rev-{first}" / "hosts")
    assert (link / "web.yaml").read_text() == "name: web\n"
    assert read_git_revision(link) == first  # what rktctl reports as `revision`

    again = sync()  # nothing new: the link is not touched
    assert (again.returncode, again.stderr) == (0, "")
    assert os.readlink(link) == str(root / f"rev-{first}" / "hosts")

    shas = [first]
    for i in range(3):
        shas.append(commit(source, {"hosts/web.yaml": f"name: web\n# edit {i}\n"}))
        assert sync().returncode == 0
        assert read_git_revision(link) == shas[-1]
        assert (link / "web.yaml").read_text().endswith(f"# edit {i}\n")
    # Only the newest RKTCTL_GIT_KEEP commits stay checked out; no temp links remain.
    kept = sorted(p.name for p in root.iterdir() if p.name.startswith("rev-"))
    assert kept == sorted(f"rev-{sha}" for sha in shas[-2:])
    assert [p.name for p in etc.iterdir()] == ["desired"]


@pytest.mark.skipif(GIT is None, reason="git not installed")
def test_git_sync_refuses_to_replace_a_real_directory(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    git("init", "-q", "-b", "main", cwd=source)
    commit(source, {"web.yaml": "name: web\n"})
    link = tmp_path / "desired"
    link.mkdir()
    (link / "hand-made.yaml").write_text("name: mine\n")
    env = {**os.environ, "RKTCTL_GIT_URL": str(source), "RKTCTL_GIT_ROOT": str(tmp_path / "g"),
           "RKTCTL_DESIRED_LINK": str(link)}  # fmt: skip
    proc = subprocess.run([str(DEPLOY / "rktctl-git-sync")], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 1
    assert "non-empty directory" in proc.stderr
    assert (link / "hand-made.yaml").exists()
