"""`rktctl node [--json]` as a real process, with a stub rkt that prints rkt 1.30's version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Real `rkt version` output of rkt 1.30.0 (shared/rkt/transcripts/01-version.txt).
VERSION_OUTPUT = """\
rkt Version: 1.30.0
appc Version: 0.8.11
Go Version: go1.19.8
Go OS/Arch: linux/amd64
Features: -TPM -SDJOURNAL
"""


@pytest.fixture
def stub_rkt(tmp_path: Path) -> Path:
    script = tmp_path / "rkt"
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"if sys.argv[-1] != 'version':\n    sys.exit(254)\n"
        f"sys.stdout.write({VERSION_OUTPUT!r})\n"
    )
    script.chmod(0o755)
    return script


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def rktctl(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")}
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_node_prints_the_attributes_table(tmp_path: Path, stub_rkt: Path) -> None:
    config = write_config(tmp_path, f'rkt = "{stub_rkt}"\n[meta]\nrole = "db"\nrack = "r7"\n')
    result = rktctl("node", "--config", str(config))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ATTRIBUTE", "VALUE"]
    rows = dict(line.split(None, 1) for line in lines[1:])
    assert {k: rows[k] for k in ("driver.rkt", "driver.rkt.version", "meta.role")} == {
        "driver.rkt": "1",
        "driver.rkt.version": "1.30.0",
        "meta.role": "db",
    }
    assert rows["meta.rack"] == "r7"
    assert list(rows) == sorted(rows)
    # The columns line up: every value starts where the header's VALUE does.
    column = lines[0].index("VALUE")
    assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines[1:])


def test_node_json_is_one_object_of_attributes(tmp_path: Path, stub_rkt: Path) -> None:
    config = write_config(tmp_path, f'rkt = "{stub_rkt}"\nvolumes_enabled = false\n')
    result = rktctl("node", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    attrs = json.loads(result.stdout)
    assert {k: v for k, v in attrs.items() if k.startswith("driver.")} == {
        "driver.rkt": "1",
        "driver.rkt.version": "1.30.0",
        "driver.rkt.appc.version": "0.8.11",
    }
    assert attrs["kernel.name"] == os.uname().sysname.lower()
    assert all(isinstance(v, str) for v in attrs.values())


def test_node_without_rkt_leaves_driver_attributes_out(tmp_path: Path) -> None:
    config = write_config(tmp_path, f'rkt = "{tmp_path / "no-such-rkt"}"\nvolumes_enabled = true\n')
    result = rktctl("node", "--json", "--config", str(config))
    assert result.returncode == 0
    attrs = json.loads(result.stdout)
    assert "driver.rkt" not in attrs and "driver.rkt.version" not in attrs
    assert attrs["driver.rkt.volumes.enabled"] == "true"  # from config, rkt or not
    assert "rkt not usable, driver.rkt* attributes left out" in result.stderr


def test_node_with_invalid_config_exits_78(tmp_path: Path) -> None:
    config = write_config(tmp_path, "no_such_setting = 1\n")
    result = rktctl("node", "--config", str(config))
    assert result.returncode == 78
    assert "unknown setting 'no_such_setting'" in result.stderr
    assert result.stdout == ""
