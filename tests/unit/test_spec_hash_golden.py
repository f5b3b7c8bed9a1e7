"""The spec hashes of the shipped examples in desired/ are frozen.

A spec hash names a task's pod: if a change of rktctl moved the hash of an unchanged
manifest, every running pod would be replaced on upgrade. These values were taken from
the code before the manifest package was split out of manifest.py; a refactor of
loading, validation or conversion must leave them exactly as they are. Change them
only with a deliberate change of what the hash covers (and say so in the release notes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.manifests import parse_manifest

DESIRED = Path(__file__).resolve().parents[2] / "desired"

GOLDEN = {
    "etcd.yaml": "sha256:98df7cee71646bdd",
    "nightly-report.yaml": "sha256:eca801a4509ce7ab",
    "redis.yaml": "sha256:edd8f26fb2e4c405",
    "web.yaml": "sha256:e5986ad7123c90bf",
}


def test_every_example_has_a_golden_hash() -> None:
    assert sorted(p.name for p in DESIRED.glob("*.yaml")) == sorted(GOLDEN)


@pytest.mark.parametrize(("name", "expected"), sorted(GOLDEN.items()))
def test_the_spec_hash_of_an_example_is_unchanged(name: str, expected: str) -> None:
    path = DESIRED / name
    # The hash ignores the source path: any name gives the same value.
    assert parse_manifest(path.read_bytes(), source="elsewhere.yaml").spec_hash == expected
