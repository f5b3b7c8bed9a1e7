"""Reading manifest files: the stat cache, files changing while read (issue 11, item 11).

`ManifestCache` reads a file again only when its stat changed; the stat includes ctime
(an editor, `cp -p` or an attacker can restore mtime, never ctime), is taken after the
read, and a file changed too recently for its timestamps to tell is read again on the
next pass. `read_manifest` returns only content that matches the stat it reports.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.fsio import read_manifest
from controller.model import TaskSpec
from controller.reconcile import ManifestCache
from tests.e2e.harness import manifest_yaml


def _image(cache: ManifestCache, desired: Path) -> str:
    spec = cache.read(str(desired)).tasks["web"]
    assert isinstance(spec, TaskSpec), spec
    return spec.image


@pytest.mark.parametrize("racy_ns", [0, 10**9], ids=["ctime-alone", "with-racy-window"])
def test_a_same_size_edit_with_its_mtime_restored_is_applied(tmp_path: Path, racy_ns: int) -> None:
    desired = tmp_path / "desired"
    desired.mkdir()
    web = desired / "web.yaml"
    web.write_text(manifest_yaml("web", image="example.com/web:1.0"))
    cache = ManifestCache(racy_ns=racy_ns)
    assert _image(cache, desired) == "example.com/web:1.0"
    before = web.stat()
    with web.open("r+") as handle:  # in place, same size, then the mtime put back
        handle.write(manifest_yaml("web", image="example.com/web:6.6"))
    os.utime(web, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert web.stat().st_size == before.st_size
    assert web.stat().st_mtime_ns == before.st_mtime_ns
    assert _image(cache, desired) == "example.com/web:6.6"


def test_content_that_does_not_match_the_files_stat_is_never_returned() -> None:
    """A file whose size says otherwise than what was read (here /proc, whose files are
    0 bytes by stat) is what a write during the read looks like: refused after retries."""
    with pytest.raises(OSError, match="kept changing while it was read"):
        read_manifest("/proc/self/status", limit=1 << 20)
