"""Hostile input against a running daemon (issue 11): it keeps running, says what is wrong
with each bad file, leaves every good task alone, and passes rkt nothing as a flag that
the argv builder did not make.

Only the fake backend: these tests are about reading and validating files, and what is
hostile never reaches rkt at all (which the fake's call log proves); every behaviour of
real rkt the daemon relies on is covered by the other e2e tests on all backends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.argvcheck import foreign_flags
from tests.e2e.harness import Harness, wait_for

pytestmark = pytest.mark.e2e
fake_only = pytest.mark.parametrize("backend", ["fake"], indirect=True)

CORPUS = Path(__file__).resolve().parents[1] / "data" / "invalid"
SECRET = "root:$6$Zq8sAlTsAlT$9w1Jx3qLTLrPgWk0Yd2mHsiP0vhEoNcQZxw7:19700:0:99999:7:::\n"
NOBODY = 65534


def _controller(h: Harness) -> dict[str, Any]:
    return json.loads((h.status_dir / "controller.json").read_text())


def _status_text(h: Harness) -> str:
    return "".join(p.read_text() for p in h.status_dir.rglob("*.json"))


def _running_uuids(h: Harness, *tasks: str) -> dict[str, list[str]]:
    return {t: sorted(p["name"] for p in h.running(t)) for t in tasks}


def _next_pass(h: Harness) -> dict[str, Any]:
    """Wait for a pass that started after now; return controller.json then."""
    seen = _controller(h)["last_pass"]["id"]
    return wait_for(
        lambda: (doc := _controller(h))["last_pass"]["id"] != seen and doc,
        what="another pass",
    )


def _drop_hostile_batch(h: Harness) -> dict[str, Path]:
    """Every corpus file, plus what the trust policy and the file checks refuse."""
    hostile = h.desired / "hostile"
    hostile.mkdir()
    for path in sorted(CORPUS.glob("*.yaml")):
        shutil.copyfile(path, hostile / path.name)
    secret = h.root / "etc-shadow"
    secret.write_text(SECRET)
    evil = h.manifest("evil", extra_spec='  user: "0"\n')
    refused = {
        "symlink-to-secret": h.desired / "x.yaml",
        "group-writable": h.desired / "evil-gw.yaml",
        "owned-by-a-user": h.desired / "evil-owner.yaml",
        "world-writable-dir": h.desired / "drop",
        "fifo": h.desired / "fifo.yaml",
        "dangling-symlink": h.desired / "gone.yaml",
    }
    refused["symlink-to-secret"].symlink_to(secret)
    refused["group-writable"].write_text(evil)
    refused["group-writable"].chmod(0o664)
    refused["owned-by-a-user"].write_text(evil)
    os.chown(refused["owned-by-a-user"], NOBODY, -1)
    refused["world-writable-dir"].mkdir()
    (refused["world-writable-dir"] / "evil.yaml").write_text(evil)
    refused["world-writable-dir"].chmod(0o777)
    os.mkfifo(refused["fifo"])
    refused["dangling-symlink"].symlink_to(h.desired / "nowhere.yaml")
    return refused


@fake_only
def test_a_batch_of_hostile_files_next_to_good_ones(h: Harness) -> None:
    h.write_manifest("good-a.yaml", h.manifest("good-a"))
    h.write_manifest("good-b.yaml", h.manifest("good-b", env={"TOKEN": "good-s3cr3t"}))
    h.start()
    wait_for(lambda: h.running("good-a") and h.running("good-b"), what="the good tasks")
    before = _running_uuids(h, "good-a", "good-b")
    prepares = len(h.calls("prepare"))

    refused = _drop_hostile_batch(h)
    sources = {str(p) for p in refused.values()}
    wait_for(
        lambda: sources <= {i["source"] for i in _controller(h)["invalid_manifests"]},
        timeout=30,
        what="every refused file in controller.json",
    )
    doc = _next_pass(h)  # the daemon keeps passing, and writing its heartbeat

    assert h.proc is not None and h.proc.poll() is None
    assert doc["last_pass"]["result"] in ("ok", "held")
    # Every bad file has a clear status: a task document, a duplicate entry, or an
    # unnamed invalid entry, each naming the file.
    status = _status_text(h)
    missing = [p.name for p in sorted(CORPUS.glob("*.yaml")) if str(h.desired / "hostile" / p.name)
               not in status]  # fmt: skip
    assert missing == []
    messages = {i["source"]: " ".join(i["messages"]) for i in doc["invalid_manifests"]}
    assert "outside the desired directory" in messages[str(refused["symlink-to-secret"])]
    assert "group-writable" in messages[str(refused["group-writable"])]
    assert "owned by uid 65534" in messages[str(refused["owned-by-a-user"])]
    assert "world-writable" in messages[str(refused["world-writable-dir"])]
    assert "is a FIFO, not a regular file" in messages[str(refused["fifo"])]
    assert "dangling symlink" in messages[str(refused["dangling-symlink"])]
    # Every good task untouched; nothing hostile reached rkt, nothing as a foreign flag.
    assert _running_uuids(h, "good-a", "good-b") == before
    assert len(h.calls("prepare")) == prepares
    assert [foreign_flags(argv) for argv in h.calls("prepare")] == [[]] * prepares
    # No secret in anything a local user can read.
    log = h.log_path.read_text(errors="replace")
    for text in (status, log):
        assert "Zq8s" not in text and "19700" not in text
        assert "good-s3cr3t" not in text
    table = subprocess.run(
        [sys.executable, "-m", "controller", "status", "--status-dir", str(h.status_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    for path in refused.values():
        assert str(path) in table.stdout
    assert "Zq8s" not in table.stdout


@fake_only
def test_an_empty_config_on_sighup_keeps_the_running_config_and_says_so(h: Harness) -> None:
    h.write_manifest("good-a.yaml", h.manifest("good-a"))
    h.start()
    wait_for(lambda: h.running("good-a"), what="good-a running")
    good_config = h.config_path.read_text()
    before = _running_uuids(h, "good-a")
    h.config_path.write_text("")  # truncated, as a non-atomic writer leaves it
    h.signal(signal.SIGHUP)
    failed = wait_for(
        lambda: _controller(h)["config_error"], what="the failed reload in controller.json"
    )
    assert "holds no setting" in " ".join(failed["errors"])
    lists = len(h.calls("list"))
    _next_pass(h)
    # Still the fake in the test's rkt dir: the old config is in force, not the defaults.
    assert len(h.calls("list")) > lists
    assert _running_uuids(h, "good-a") == before
    shown = subprocess.run(
        [sys.executable, "-m", "controller", "status", "--status-dir", str(h.status_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "the config reload at" in shown.stderr and "previous config" in shown.stderr
    h.config_path.write_text(good_config)
    h.signal(signal.SIGHUP)
    wait_for(lambda: _controller(h)["config_error"] is None, what="the reload error cleared")
