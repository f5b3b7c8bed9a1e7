"""Status of tasks the reconciler holds back: work in flight, a stop in progress, a failed
stop/remove backing off (issue 11, items 5 and 9)."""

from __future__ import annotations

import dataclasses

from controller.model import Hold, HoldReason, PodState, TaskName
from controller.timefmt import iso
from tests.factories import desired, observation, pod, task
from tests.unit.test_status import NOW, U1, report, web_doc


def test_a_start_in_flight_reads_starting_with_the_holds_message() -> None:
    hold = Hold(reason=HoldReason.IN_PROGRESS, task=TaskName("web"), message="still running")
    doc = web_doc(report(holds=(hold,)))
    assert (doc["phase"], doc["message"]) == ("Starting", "still running")


def test_a_failed_stop_backing_off_shows_next_retry_at_whatever_the_phase() -> None:
    gone = report(desired(task("db")), observation(pod("web", PodState.RUNNING, uuid=U1)))
    rep = dataclasses.replace(gone, retries={TaskName("web"): NOW + 30})
    doc = web_doc(rep)
    assert doc["phase"] == "Stopping"
    assert doc["next_retry_at"] == iso(NOW + 30)
    assert f"next attempt at {iso(NOW + 30)}" in doc["message"]


def test_a_retry_time_already_past_is_not_shown() -> None:
    gone = report(desired(task("db")), observation(pod("web", PodState.RUNNING, uuid=U1)))
    doc = web_doc(dataclasses.replace(gone, retries={TaskName("web"): NOW - 1}))
    assert doc["next_retry_at"] is None
