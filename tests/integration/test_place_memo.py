"""Reconciler._place: an idle pass reuses the last Placement; any changed input places again.

Whole passes over the stand-in runtime of test_status_incremental (no rkt). The Placement's
identity tells whether placement.place() ran; its content must follow every change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller import nodeinfo
from tests.integration.test_status_incremental import Host


@pytest.fixture
def host(tmp_path: Path) -> Host:
    h = Host(tmp_path, ["alpha", "bravo"])
    h.run()  # starts the pods
    h.run()  # sees them running
    return h


def test_a_no_change_pass_reuses_the_placement(host: Host) -> None:
    before = host.reconciler.last_placement
    host.run()
    assert host.reconciler.last_placement is before


def test_an_edited_manifest_is_placed_again(host: Host) -> None:
    before = host.reconciler.last_placement
    assert before is not None
    host.write("alpha", sleep=120)
    host.run()
    after = host.reconciler.last_placement
    assert after is not before and after is not None
    assert after.specs["bravo"] == before.specs["bravo"]
    assert after.specs["alpha"].spec_hash != before.specs["alpha"].spec_hash


def test_a_pod_that_stopped_running_is_placed_again(host: Host) -> None:
    before = host.reconciler.last_placement
    host.runtime.pods.clear()  # both pods gone: the running set changed
    host.run()
    assert host.reconciler.last_placement is not before


def test_a_newly_bound_host_port_is_placed_again(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = host.reconciler.last_placement
    bound = nodeinfo.bound_tcp_ports() | {65_000}
    monkeypatch.setattr(nodeinfo, "bound_tcp_ports", lambda: bound)
    host.run()
    assert host.reconciler.last_placement is not before
