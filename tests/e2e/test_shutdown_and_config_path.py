"""Two facts the daemon publishes about itself: `rktctl_up` and `config_path` (issue 10).

- `rktctl_up` is 1 while the loop runs and 0 once a clean SIGTERM stopped it: the
  daemon writes the textfile one last time on its way out, so an alert on
  `rktctl_up == 0` fires for a stopped controller instead of reading a stale 1.
- `config_path` (controller.json and the `daemon_started` log line) names the file the
  config came from, also when it came from `$RKTCTL_CONFIG` rather than `--config`.
Both run on every backend: neither depends on the stage1, but both must hold there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Harness, wait_for

pytestmark = pytest.mark.e2e


def _up(status_dir: Path) -> float | None:
    text = (status_dir / "rktctl.prom").read_text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "rktctl_up":
                return sample.value
    return None


def test_rktctl_up_is_0_once_sigterm_stopped_the_daemon(h: Harness) -> None:
    h.start()
    wait_for(lambda: _up(h.status_dir) == 1, what="rktctl_up 1 while the loop runs")
    assert h.stop() == 0
    assert _up(h.status_dir) == 0


def _controller_doc(h: Harness) -> dict:
    return json.loads((h.status_dir / "controller.json").read_text())


def test_config_path_names_the_file_from_rktctl_config(h: Harness) -> None:
    h.write_config()
    env = h.backend.env({k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")})
    env["RKTCTL_CONFIG"] = str(h.config_path)
    with h.log_path.open("ab") as log:
        h.proc = subprocess.Popen(
            [sys.executable, "-m", "controller", "run"],  # no --config: the env names it
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=h.root,
        )
    doc = wait_for(
        lambda: (h.status_dir / "controller.json").exists() and _controller_doc(h),
        what="controller.json",
    )
    assert doc["config_path"] == str(h.config_path)
    assert [e["config_path"] for e in h.events("daemon_started")] == [str(h.config_path)]


def test_reconcile_once_records_the_config_path_from_rktctl_config(h: Harness) -> None:
    h.write_config()
    env = h.backend.env({k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")})
    env["RKTCTL_CONFIG"] = str(h.config_path)
    result = subprocess.run(
        [sys.executable, "-m", "controller", "reconcile", "--once"],
        capture_output=True,
        text=True,
        env=env,
        cwd=h.root,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _controller_doc(h)["config_path"] == str(h.config_path)


def test_config_path_of_a_relative_config_flag_is_absolute(h: Harness) -> None:
    """Readers of controller.json do not share the daemon's working directory."""
    h.write_config()
    env = h.backend.env({k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")})
    result = subprocess.run(
        [sys.executable, "-m", "controller", "reconcile", "--once", "--config", "config.toml"],
        capture_output=True,
        text=True,
        env=env,
        cwd=h.root,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _controller_doc(h)["config_path"] == str(h.config_path)
