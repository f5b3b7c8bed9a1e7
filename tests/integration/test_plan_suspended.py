"""`rktctl plan` under spec.suspend / mode = report-only: the steps are shown, marked, and
do not count as pending (exit 0), so a CI gate on `plan` is not tripped by a pause."""

from __future__ import annotations

import json
from pathlib import Path

from controller.cli import EXIT_OK, EXIT_PENDING
from tests.backends import Backend
from tests.integration.test_plan_dry_run import _rktctl, _setup


def test_report_only_marks_every_step_and_exits_0(backend: Backend, tmp_path: Path) -> None:
    config = _setup(tmp_path, backend, rkt_dir=str(tmp_path / "rkt"), mode="report-only")
    text = _rktctl(backend, "plan", "--config", str(config))
    assert text.returncode == EXIT_OK, text.stderr
    assert "web: start (missing) [suspended: will not run]" in text.stdout
    assert "web: held (suspended) suspended (mode is report-only); would start a pod" in text.stdout
    doc = json.loads(_rktctl(backend, "plan", "--json", "--config", str(config)).stdout)
    assert [(s["task"], s["action"], s["suspended"]) for s in doc["actions"]] == [
        ("web", "start", True)
    ]
    assert doc["pending"] is False
    assert any("prepare" in argv for argv in doc["actions"][0]["argv"])


def test_a_suspended_manifest_is_not_pending_but_another_task_is(
    backend: Backend, tmp_path: Path
) -> None:
    config = _setup(tmp_path, backend, rkt_dir=str(tmp_path / "rkt"))
    web = tmp_path / "desired" / "web.yaml"
    web.write_text(web.read_text() + "  suspend: true\n")
    result = _rktctl(backend, "plan", "--config", str(config))
    assert result.returncode == EXIT_OK, result.stderr
    (tmp_path / "desired" / "db.yaml").write_text(
        web.read_text().replace("name: web", "name: db").replace("  suspend: true\n", "")
    )
    result = _rktctl(backend, "plan", "--config", str(config))
    assert result.returncode == EXIT_PENDING, result.stderr
    assert "db: start (missing)\n" in result.stdout
    assert "web: start (missing) [suspended: will not run]" in result.stdout
