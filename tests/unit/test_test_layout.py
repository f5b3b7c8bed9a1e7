"""The test tree itself.

pytest (rootdir mode, no __init__.py) imports every test file by its basename, so two
files of one name in different tiers break collection of the second with "import file
mismatch" (it happened twice when branches merged). And `make test` relies on xdist's
loadgroup to keep each real stage1's tests on one worker: with pytest 9.2 it silently
stopped doing so, and real pods of one stage1 booted side by side for a while."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_has_a_basename_of_its_own() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []


GROUPED = """
import os, pathlib, pytest

@pytest.mark.parametrize("i", range(4))
def test_grouped(i):
    pathlib.Path(os.environ["OUT"], f"grouped-{i}").write_text(os.environ["PYTEST_XDIST_WORKER"])

@pytest.mark.parametrize("i", range(8))
def test_free(i):
    pass
"""

GROUPING_CONFTEST = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if item.name.startswith("test_grouped"):
            item.add_marker(pytest.mark.xdist_group("real-host"))
"""


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path: Path) -> None:
    """tests/conftest.py marks each real stage1's tests as one xdist group, the way the
    conftest here does; `make test` runs --dist loadgroup."""
    (tmp_path / "test_group_probe.py").write_text(GROUPED)
    (tmp_path / "conftest.py").write_text(GROUPING_CONFTEST)
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "3", "--dist", "loadgroup",
         "-p", "no:cacheprovider", "-p", "no:randomly", "-o", "addopts=", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        env={"OUT": str(out), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    workers = {p.read_text() for p in out.iterdir()}
    assert len(list(out.iterdir())) == 4
    assert len(workers) == 1, f"one group ran on {sorted(workers)}"
