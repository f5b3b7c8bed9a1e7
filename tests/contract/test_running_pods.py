"""The contract for pods that run: run-prepared, stop, exit codes, failed starts, preparing pods.

Integration tier, on every backend (see conftest). Pods run the backend's busybox test
image (the fake runs the same commands on the host). Where the stage1s differ, the test
says which does what, from what real rkt 1.30 did (../shared/rkt/FINDINGS.md).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.contract.rktcli import Rkt
from tests.e2e.harness import wait_for

T = TypeVar("T")
STAMPS = (
    "--user-annotation=rktctl.io/task=web",
    "--user-label=rktctl.io/managed-by=rktctl",
)
IGNORES_TERM = 'trap "" TERM; while :; do sleep 0.1; done'


def pod(rkt: Rkt, uuid: str) -> dict[str, Any] | None:
    return next((p for p in rkt.pods() if p["name"] == uuid), None)


def in_state(rkt: Rkt, uuid: str, state: str) -> dict[str, Any] | None:
    found = pod(rkt, uuid)
    return found if found and found["state"] == state else None


@pytest.fixture
def launch(
    rkt: Rkt, tmp_path: Path
) -> Iterator[Callable[..., tuple[str, subprocess.Popen[bytes]]]]:
    """Prepare a pod of the test image with `app_flags` and run it detached, as rktctl does."""
    started: list[subprocess.Popen[bytes]] = []

    def run(*app_flags: str) -> tuple[str, subprocess.Popen[bytes]]:
        uuid = rkt.backend.prepare(rkt.dir, *app_flags)
        proc = rkt.backend.run_detached(rkt.dir, uuid, tmp_path / f"{uuid}.log")
        started.append(proc)
        return uuid, proc

    yield run
    rkt.backend.cleanup(rkt.dir)  # before the conftest's cleanup: the processes must end
    for proc in started:
        proc.wait(timeout=30)


def started(rkt: Rkt, uuid: str) -> dict[str, Any]:
    """The pod once it runs and its stage1 has written the pid (`started_at` in the JSON).

    The host stage1 reads `running` ~1 s before that: systemd boots inside nspawn first.
    """
    return wait_for(
        lambda: (p := in_state(rkt, uuid, "running")) and "started_at" in p and p,
        what=f"pod {uuid} running with a pid",
    )


def test_run_prepared_runs_the_pod_and_the_stamps_stay_on_its_app(rkt: Rkt, launch) -> None:  # type: ignore[no-untyped-def]
    uuid, _proc = launch(*STAMPS, "--exec=/bin/sleep", "--", "3600")
    running = started(rkt, uuid)
    app = running["apps"][0]
    assert (running["app_names"], app["state"]) == ([app["name"]], "running")
    assert app["user_annotations"] == {"rktctl.io/task": "web"}
    assert app["user_labels"] == {"rktctl.io/managed-by": "rktctl"}
    assert running["started_at"] >= running["created_at"]  # both in seconds
    assert "exit_code" not in app
    status = rkt.ok("status", uuid).splitlines()
    assert status[0] == "state=running"
    assert any(line.startswith("started=") for line in status)


def test_stop_ends_a_running_pod_and_says_its_uuid(rkt: Rkt, launch) -> None:  # type: ignore[no-untyped-def]
    uuid, proc = launch("--exec=/bin/sh", "--", "-c", "echo app-is-up; exec sleep 3600")
    started(rkt, uuid)
    # A graceful stop of a host pod whose systemd is still booting can be lost (PID 1
    # ignores signals it has no handler for yet): stop once the app itself runs.
    log = rkt.dir.parent / f"{uuid}.log"
    wait_for(lambda: "app-is-up" in log.read_text(errors="replace"), what="the app's output")
    stop = rkt("stop", uuid)
    assert (stop.returncode, stop.stdout) == (0, f'"{uuid}"\n'), stop.stderr
    wait_for(lambda: in_state(rkt, uuid, "exited"), what="the pod exited")
    proc.wait(timeout=30)  # `rkt run-prepared` ends with its pod
    again = rkt("stop", uuid)
    assert (again.returncode, again.stdout) == (0, f'pod "{uuid}" is already stopped\n')


def test_stop_force_ends_a_pod_that_ignores_sigterm(rkt: Rkt, launch) -> None:  # type: ignore[no-untyped-def]
    uuid, _proc = launch("--exec=/bin/sh", "--", "-c", IGNORES_TERM)
    started(rkt, uuid)
    forced = rkt("stop", "--force", uuid)
    assert (forced.returncode, forced.stdout) == (0, f'"{uuid}"\n'), forced.stderr
    wait_for(lambda: in_state(rkt, uuid, "exited"), what="the pod killed")


def test_an_app_exit_code_is_recorded_except_by_fly(rkt: Rkt, launch) -> None:  # type: ignore[no-untyped-def]
    uuid, proc = launch("--exec=/bin/sh", "--", "-c", "sleep 0.5; exit 3")
    exited = wait_for(lambda: in_state(rkt, uuid, "exited"), what="the pod exited")
    app = exited["apps"][0]
    if rkt.backend.records_exit_codes:
        code = app["exit_code"]
        assert code in rkt.backend.recorded_exit_codes(3)
        assert f"app-{app['name']}={code}" in rkt.ok("status", uuid).splitlines()
        assert proc.wait(timeout=30) == code  # `rkt run` exits with the recorded code
    else:  # fly: the app *is* the rkt process; nothing writes a status file
        assert "exit_code" not in app
        assert not [ln for ln in rkt.ok("status", uuid).splitlines() if ln.startswith("app-")]


def test_a_pod_whose_app_ends_at_once_reads_exited_and_started(rkt: Rkt, launch) -> None:  # type: ignore[no-untyped-def]
    uuid, proc = launch("--exec=/bin/true")
    exited = wait_for(lambda: in_state(rkt, uuid, "exited"), what="the pod exited")
    assert "started_at" in exited
    assert proc.wait(timeout=30) == 0
    removed = rkt("rm", uuid)
    assert (removed.returncode, removed.stdout) == (0, f'"{uuid}"\n')


def test_a_missing_volume_host_path_is_refused_when_the_pod_runs(rkt: Rkt, launch) -> None:  # type: ignore[no-untyped-def]
    """prepare accepts it; run-prepared fails and leaves an exited pod (FINDINGS 1)."""
    uuid, proc = launch(
        "--volume=data,kind=host,source=/nonexistent/rktctl-contract",
        "--mount=volume=data,target=/data",
        "--exec=/bin/true",
    )
    code = proc.wait(timeout=60)
    assert code != 0
    assert wait_for(lambda: in_state(rkt, uuid, "exited"), what="the pod exited")
    log = (rkt.dir.parent / f"{uuid}.log").read_text(errors="replace")
    assert "/nonexistent/rktctl-contract" in log


def test_a_pod_whose_prepare_failed_is_left_out_of_json_with_an_error(
    rkt: Rkt, tmp_path: Path
) -> None:
    """An aborted prepare lists like a pod still preparing (transcripts 151b/152d)."""
    manifest = tmp_path / "pod-manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "acVersion": "0.8.11",
                "acKind": "PodManifest",
                "apps": [{"name": "x", "image": {"id": "sha512-" + "0" * 64}}],
            }
        )
    )
    failed = rkt("--insecure-options=image", "prepare", f"--pod-manifest={manifest}")
    assert failed.returncode == 254
    text = rkt.ok("list", "--no-legend").split("\t")
    assert [w.strip() for w in text if w.strip()][1:4] == ["-", "-", "aborted prepare"]
    listed = rkt("list", "--format=json")
    assert (listed.returncode, listed.stdout) == (0, "null\n")
    assert "list: invalid creation time" in listed.stderr
    uuid = text[0].strip()
    full = rkt.ok("list", "--full", "--no-legend").split("\t")[0].strip()
    assert full.startswith(uuid)
    status = rkt("status", "--format=json", full)
    assert status.returncode == 254
    assert "invalid creation time" in status.stderr
    assert rkt.ok("status", full).splitlines()[0] == "state=aborted prepare"
