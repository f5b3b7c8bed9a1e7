"""`rktctl plan` is a dry run: it creates nothing, and its exit codes are the documented ones.

rkt's own `list` (and `status`) MkdirAll `<data dir>/pods/*` even though they only read
(FINDINGS 7), so a plan that simply ran `rkt list` created a missing rkt data dir. A
store without `pods/` holds no pods: plan reports "no pods" without asking rkt. The
data dir is `--dir` (rktctl's `rkt_dir`) or, when that is unset, wherever rkt's own
configuration puts it (`paths.d`), which only `rkt config` knows.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.cli import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_PENDING, EXIT_USAGE
from tests.backends import Backend
from tests.e2e.harness import manifest_yaml

REPO = Path(__file__).resolve().parents[2]


def _setup(tmp_path: Path, backend: Backend, **settings: Any) -> Path:
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "web.yaml").write_text(manifest_yaml("web", image=backend.image("web")))
    values: dict[str, Any] = {
        "desired_dir": str(desired),
        "status_dir": str(tmp_path / "status"),
        "state_dir": str(tmp_path / "state"),
        **backend.config(),
        "rkt_local_config": str(tmp_path / "rkt-local-config"),
        "log_level": "error",
        **settings,
    }
    config = tmp_path / "config.toml"
    config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    return config


def _rktctl(backend: Backend, *args: str) -> subprocess.CompletedProcess[str]:
    env = backend.env({k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")})
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _tree(root: Path) -> set[str]:
    """Every path below `root`, but the fake's own call log (`<rkt dir>/fake/`)."""
    paths = {str(p.relative_to(root)) for p in root.rglob("*")}
    return {p for p in paths if not p.startswith("rkt/fake")}


@pytest.mark.parametrize("rkt_dir_exists", [False, True], ids=["missing", "empty"])
def test_plan_creates_no_rkt_data_dir(
    backend: Backend, tmp_path: Path, rkt_dir_exists: bool
) -> None:
    rkt_dir = tmp_path / "rkt"
    if rkt_dir_exists:
        rkt_dir.mkdir()
    config = _setup(tmp_path, backend, rkt_dir=str(rkt_dir))
    before = _tree(tmp_path)

    result = _rktctl(backend, "plan", "--config", str(config))

    assert result.returncode == EXIT_PENDING, result.stderr
    assert "web: start (missing)" in result.stdout
    assert _tree(tmp_path) == before  # no rkt dir, no pods/*, no state or status dir


def test_plan_finds_the_data_dir_in_rkts_own_config(backend: Backend, tmp_path: Path) -> None:
    """Without `rkt_dir`, rkt's paths.d decides where its pods are: plan asks `rkt config`."""
    backend.skip_if(
        backend.is_fake, "the fake implements neither `rkt config` nor paths.d (its docstring)"
    )
    data = tmp_path / "rkt-data"
    paths_d = tmp_path / "rkt-local-config" / "paths.d"
    paths_d.mkdir(parents=True)
    (paths_d / "paths.json").write_text(
        json.dumps({"rktKind": "paths", "rktVersion": "v1", "data": str(data)})
    )
    config = _setup(tmp_path, backend)

    result = _rktctl(backend, "plan", "--config", str(config))

    assert result.returncode == EXIT_PENDING, result.stderr
    assert "web: start (missing)" in result.stdout
    assert not data.exists()

    # Once rkt holds a pod there, plan sees it: it really looked in that data dir.
    uuid = backend.prepare(data)
    try:
        result = _rktctl(backend, "plan", "--config", str(config), "--json")
        assert result.returncode == EXIT_PENDING, result.stderr
        assert len(backend.pods(data)) == 1
        assert {s["task"] for s in json.loads(result.stdout)["actions"]} == {"web"}
        assert uuid not in result.stdout  # a foreign pod: listed, never acted on
    finally:
        backend.cleanup(data)


def _readme_exit_codes() -> dict[str, set[int]]:
    """The exit codes the README gives for each subcommand: its row of the command table
    plus those the paragraph after the table gives for every command."""
    text = (REPO / "README.md").read_text()
    table, every = text.split("## Commands", 1)[1].split("\n\n", 3)[1:3]
    assert every.startswith("Every command also exits"), every
    common = {int(n) for n in re.findall(r"\b\d+\b", every)}
    codes: dict[str, set[int]] = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        command = cells[0].strip("`").split()[1]
        codes[command] = common | {int(n) for n in re.findall(r"\b\d+\b", cells[2])}
    return codes


def test_plan_exits_1_when_rkt_cannot_be_run_and_the_readme_says_so(tmp_path: Path) -> None:
    desired = tmp_path / "desired"
    desired.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'desired_dir = "{desired}"\nrkt = "{tmp_path / "no-rkt"}"\n'
        f'rkt_dir = "{tmp_path / "rkt"}"\nstate_dir = "{tmp_path / "state"}"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "controller", "plan", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == EXIT_FAILURE
    assert "cannot plan" in result.stderr
    row = next(ln for ln in (REPO / "README.md").read_text().splitlines() if "`rktctl plan" in ln)
    assert "1 cannot plan" in row


def test_the_readme_lists_every_exit_code_of_every_command() -> None:
    """What controller/cli.py can return, per subcommand: every `return` of its handler,
    the exit_code of every error it lets through (ConfigError 78, other RktctlErrors 1),
    and main()'s own: 2 usage, 1 internal error, 130 KeyboardInterrupt."""
    everywhere = {EXIT_USAGE, EXIT_FAILURE, 130}
    reachable = {
        "run": {EXIT_OK, EXIT_CONFIG},  # the daemon returns 0; a pass never raises out
        "reconcile": {EXIT_OK, EXIT_FAILURE, EXIT_CONFIG},
        "plan": {EXIT_OK, EXIT_PENDING, EXIT_FAILURE, EXIT_CONFIG},
        "validate": {EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_CONFIG},
        "status": {EXIT_OK, EXIT_FAILURE, EXIT_CONFIG},
        "node": {EXIT_OK, EXIT_CONFIG},  # an unusable rkt only leaves attributes out
    }
    assert _readme_exit_codes() == {cmd: codes | everywhere for cmd, codes in reachable.items()}
