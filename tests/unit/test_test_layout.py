"""The test tree itself: pytest (rootdir mode, no __init__.py) imports every test file
by its basename, so two files of one name in different tiers break collection of the
second with "import file mismatch" (it happened twice when branches merged)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_has_a_basename_of_its_own() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
