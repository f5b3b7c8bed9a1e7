"""The checked documents a start keeps for the next (controller/documentcache.py).

A second start over the same desired directory builds every TaskSpec from the kept
documents instead of loading and checking the YAML, and gets the same specs; anything
doubtful (an edit, another checker, a file others may write, a document that does not
build, garbage) means the manifest is checked as if there were no cache.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from controller import documentcache, manifests
from controller.documentcache import FILE_NAME, DocumentCache
from controller.fsio import TrustPolicy
from controller.model import Invalid, TaskSpec
from controller.reconcile import ManifestCache
from tests.e2e.harness import manifest_yaml

ROOT = Path(__file__).resolve().parents[2]
LOOSE = TrustPolicy(strict=False)


def _desired(tmp_path: Path) -> Path:
    desired = tmp_path / "desired"
    shutil.copytree(ROOT / "desired", desired)  # every example: volumes, health, reload...
    (desired / "broken.yaml").write_text(manifest_yaml("broken", extra_spec="  bogus: 1\n"))
    old = 1_600_000_000
    for path in desired.iterdir():
        os.utime(path, (old, old))
    return desired


def _start(desired: Path, state: Path) -> tuple[dict[str, Any], DocumentCache]:
    """One start: a fresh ManifestCache with the documents in `state`, read once."""
    documents = DocumentCache(str(state))
    tasks = ManifestCache(LOOSE, documents=documents).read(str(desired)).tasks
    return dict(tasks), documents


def _checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every manifest that is loaded and checked."""
    checked: list[str] = []
    real = manifests.parse_manifest_document

    def counted(data: bytes | str, *, source: str) -> Any:
        checked.append(Path(source).name)
        return real(data, source=source)

    monkeypatch.setattr(manifests, "parse_manifest_document", counted)
    return checked


def test_a_second_start_builds_the_same_specs_without_checking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desired, state = _desired(tmp_path), tmp_path / "state"
    first, documents = _start(desired, state)
    valid = sorted(n for n, s in first.items() if isinstance(s, TaskSpec))
    assert len(valid) >= 4 and documents.misses == len(valid)  # the broken one is not kept
    kept = state / FILE_NAME
    assert kept.stat().st_mode & 0o777 == 0o600
    assert sorted(json.loads(kept.read_bytes())["documents"]) == sorted(
        manifests.content_hash((desired / f).read_bytes())
        for f in os.listdir(desired)
        if f != "broken.yaml"
    )
    checked = _checks(monkeypatch)
    written = kept.stat().st_mtime_ns
    second, documents = _start(desired, state)
    assert second == first  # every field, the spec hash included
    assert checked == ["broken.yaml"]  # an invalid manifest is never kept: checked again
    assert isinstance(second["broken"], Invalid) and documents.hits == len(valid)
    assert kept.stat().st_mtime_ns == written  # nothing new: the file is not rewritten


def test_an_edited_manifest_is_checked_and_kept_in_place_of_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desired, state = _desired(tmp_path), tmp_path / "state"
    _start(desired, state)
    (desired / "web.yaml").write_text(manifest_yaml("web", image="example.com/web:2.0"))
    checked = _checks(monkeypatch)
    tasks, _ = _start(desired, state)
    assert sorted(checked) == ["broken.yaml", "web.yaml"]
    assert isinstance(tasks["web"], TaskSpec) and tasks["web"].image == "example.com/web:2.0"
    stored = json.loads((state / FILE_NAME).read_bytes())["documents"]
    assert manifests.content_hash((desired / "web.yaml").read_bytes()) in stored
    assert len(stored) == len([t for t in tasks.values() if isinstance(t, TaskSpec)])


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda p: p.chmod(0o620), id="group-writable"),
        pytest.param(lambda p: os.chown(p, 12345, -1), id="another-users"),
        pytest.param(lambda p: p.write_bytes(b"{not json"), id="garbage"),
        pytest.param(
            lambda p: p.write_bytes(p.read_bytes().replace(b'"checker":"', b'"checker":"x')),
            id="another-checker",
        ),
    ],
)
def test_a_file_that_is_not_beyond_doubt_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spoil: Any
) -> None:
    desired, state = _desired(tmp_path), tmp_path / "state"
    first, _ = _start(desired, state)
    spoil(state / FILE_NAME)
    checked = _checks(monkeypatch)
    second, documents = _start(desired, state)
    assert second == first and documents.hits == 0
    assert len(checked) == len(first)  # every manifest checked again


def test_a_kept_document_that_does_not_build_is_checked_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desired, state = _desired(tmp_path), tmp_path / "state"
    first, _ = _start(desired, state)
    kept = state / FILE_NAME
    content = json.loads(kept.read_bytes())
    web = manifests.content_hash((desired / "web.yaml").read_bytes())
    content["documents"][web] = json.dumps({"spec": {}})  # no metadata: cannot build
    kept.write_text(json.dumps(content))
    kept.chmod(0o600)
    checked = _checks(monkeypatch)
    second, _ = _start(desired, state)
    assert second == first and "web.yaml" in checked


def test_the_fingerprint_covers_the_checker_and_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    before = documentcache.checker_fingerprint()
    documentcache.checker_fingerprint.cache_clear()
    monkeypatch.setattr(documentcache, "load_schema_bytes", lambda name: b"{}")
    try:
        assert documentcache.checker_fingerprint() != before
    finally:
        documentcache.checker_fingerprint.cache_clear()
