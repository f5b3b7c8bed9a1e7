"""`rktctl status` reads the files a StatusWriter wrote: table, --json, NAME, staleness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.cli import main
from controller.controllerstatus import DaemonInfo
from controller.model import PassReport, PassResult, RestartState, TaskName
from controller.statusfiles import StatusWriter
from tests.factories import desired, invalid, observation, pod, task


def publish(status_dir: Path, *, now: float, resync: float = 30.0) -> None:
    """Write the status of a host with a running, an invalid and a crash-looping task."""
    rep = PassReport(
        id="p1",
        trigger="resync",
        started_at=now - 0.1,
        finished_at=now,
        result=PassResult.OK,
        desired=desired(task("web"), invalid("db", "db.yaml: at 'image': required"), task("api")),
        observation=observation(pod("web", uuid="0123abcd-0000-4000-8000-000000000001")),
        restarts={TaskName("api"): RestartState(restarts=3, not_before=now + 40, last_exit_code=1)},
    )
    daemon = DaemonInfo(version="0.1.0", pid=os.getpid(), started_at=now - 100,
                        config_path=None, resync_interval_s=resync)  # fmt: skip
    StatusWriter(status_dir).publish(rep, daemon=daemon, now=now)


def test_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(tmp_path, now=time.time())
    assert main(["status", "--status-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "POD", "RESTARTS", "AGE", "MESSAGE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert sorted(rows) == ["api", "db", "web"]
    assert rows["web"].split()[1:4] == ["Running", "0123abcd", "0"]
    assert rows["db"].split()[1:4] == ["Invalid", "-", "0"]
    assert "db.yaml: at 'image': required" in rows["db"]
    assert rows["api"].split()[1:4] == ["Backoff", "-", "3"]
    assert "next start at" in rows["api"] and "last exit code 1" in rows["api"]
    assert err == ""


def test_json_and_one_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(tmp_path, now=time.time())
    assert main(["status", "--status-dir", str(tmp_path), "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert (both["controller"]["kind"], sorted(both["tasks"])) == (
        "controller",
        ["api", "db", "web"],
    )
    assert main(["status", "--status-dir", str(tmp_path), "api"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["name"], doc["phase"], doc["restarts"]) == ("api", "Backoff", 3)
    assert doc["next_retry_at"] is not None


def test_unknown_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(tmp_path, now=time.time())
    assert main(["status", "--status-dir", str(tmp_path), "nope"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "no status for task 'nope'" in err and "known: api, db, web" in err


def test_stale_heartbeat_fails_with_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(tmp_path, now=time.time() - 100, resync=30.0)
    assert main(["status", "--status-dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "web" in out  # the last known state is still shown
    assert "controller heartbeat is" in err and "3 x resync_interval_s 30" in err


def test_no_controller_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--status-dir", str(tmp_path)]) == 1
    assert "no controller.json" in capsys.readouterr().err


def test_garbage_controller_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "controller.json").write_text("{")
    assert main(["status", "--status-dir", str(tmp_path)]) == 1
    assert "not valid JSON" in capsys.readouterr().err


def test_status_dir_from_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status_dir = tmp_path / "status"
    publish(status_dir, now=time.time())
    config = tmp_path / "config.toml"
    config.write_text(f'status_dir = "{status_dir}"\n')
    assert main(["status", "--config", str(config), "web"]) == 0
    assert json.loads(capsys.readouterr().out)["phase"] == "Running"


def test_runs_as_a_command_without_rkt(tmp_path: Path) -> None:
    """The real entry point, with no rkt anywhere on PATH: status never calls it."""
    publish(tmp_path, now=time.time())
    env = {"PATH": "/nonexistent", "HOME": str(tmp_path), "RKTCTL_RKT": "/nonexistent/rkt"}
    proc = subprocess.run(
        [sys.executable, "-m", "controller", "status", "--status-dir", str(tmp_path), "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout)["tasks"]["db"]["phase"] == "Invalid"
