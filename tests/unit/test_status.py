"""Unit tests of controller.status: phases, conditions, history and the controller document."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from controller.controllerstatus import DaemonInfo, build_controller_status
from controller.model import (
    Hold,
    HoldReason,
    Observation,
    Outcome,
    PassReport,
    PassResult,
    Plan,
    PodState,
    PodUUID,
    Reason,
    Remove,
    Restart,
    RestartPolicy,
    RestartState,
    Start,
    Stop,
    TaskName,
)
from controller.phase import TaskPhase
from controller.status import build_task_statuses
from controller.statustable import heartbeat_problem, render_table
from controller.timefmt import human_age, iso, parse_iso
from tests.factories import BASE_TIME, desired, invalid, observation, pod, task

NOW = float(BASE_TIME + 1000)
WEB = task("web")
H = WEB.spec_hash
U1 = PodUUID("11111111-aaaa-4000-8000-000000000001")
U2 = PodUUID("22222222-bbbb-4000-8000-000000000002")
_DEFAULT_OBS = observation()


def report(
    want: Any = None,
    obs: Observation | None = _DEFAULT_OBS,
    *,
    holds: tuple[Hold, ...] = (),
    outcomes: tuple[Outcome, ...] = (),
    restarts: Mapping[str, RestartState] | None = None,
    blocked: Mapping[str, str] | None = None,
    result: PassResult = PassResult.OK,
    error: str | None = None,
    error_code: str | None = None,
) -> PassReport:
    return PassReport(
        id="abcd1234",
        trigger="resync",
        started_at=NOW - 0.25,
        finished_at=NOW,
        result=result,
        desired=want
        if want is not None
        else desired(WEB, revision="rev1", source_revisions={"web.yaml": "sha256:web1"}),
        observation=obs,
        plan=Plan(holds=holds),
        outcomes=outcomes,
        restarts={TaskName(k): v for k, v in (restarts or {}).items()},
        blocked={TaskName(k): v for k, v in (blocked or {}).items()},
        fingerprint={"driver.rkt": "1", "driver.rkt.version": "1.30.0"},
        error=error,
        error_code=error_code,
    )


def web_doc(rep: PassReport, previous: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
    return build_task_statuses(rep, previous=previous or {}, now=NOW)["web"]


def conditions(doc: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in doc["conditions"]}


OTHER = task("web", args=("x",)).spec_hash
NEVER = task("web", restart=Restart(policy=RestartPolicy.NEVER))

PHASE_CASES = [
    pytest.param(report(obs=observation(pod("web", uuid=U1))), "Running", "Running",
                 ("True", "False", "False"), "pod 11111111 running since", id="running"),
    pytest.param(report(), "Pending", "Pending", ("False", "True", "False"),
                 "waiting to be started", id="pending-no-pod"),
    pytest.param(report(outcomes=(Outcome(action=Start(task=TaskName("web"), spec_hash=H,
                                                       reason=Reason.MISSING),
                                          ok=True, pod_uuid=U1),)),
                 "Starting", "Starting", ("False", "True", "False"), "started pod 11111111",
                 id="starting-after-start"),
    pytest.param(report(obs=observation(pod("web", PodState.PREPARED, uuid=U1))),
                 "Starting", "Starting", ("False", "True", "False"), "pod 11111111 is prepared",
                 id="starting-prepared-pod"),
    pytest.param(report(restarts={"web": RestartState(restarts=3, not_before=NOW + 20,
                                                      last_exit_code=1, spec_hash=H)}),
                 "Backoff", "BackOff", ("False", "True", "False"),
                 f"next start at {iso(NOW + 20)}; 3 restarts; last exit code 1", id="backoff"),
    pytest.param(report(restarts={"web": RestartState(restarts=3, not_before=NOW - 1)}),
                 "Pending", "Pending", ("False", "True", "False"), "waiting",
                 id="backoff-expired-is-pending"),
    pytest.param(report(obs=observation(pod("web", uuid=U1)),
                        restarts={"web": RestartState(not_before=NOW + 20)}),
                 "Running", "Running", ("True", "False", "False"), "running",
                 id="running-pod-wins-over-backoff"),
    pytest.param(report(restarts={"web": RestartState(not_before=NOW + 20,
                                                      spec_hash=OTHER)}),
                 "Pending", "Pending", ("False", "True", "False"), "waiting",
                 id="backoff-of-another-spec-ignored"),
    pytest.param(report(desired(NEVER),
                        restarts={"web": RestartState(completed_hash=NEVER.spec_hash,
                                                      last_exit_code=0)}),
                 "Exited", "Completed", ("True", "False", "False"),
                 "completed (exit code 0); restart policy never", id="exited-completed"),
    pytest.param(report(desired(NEVER),
                        restarts={"web": RestartState(completed_hash=NEVER.spec_hash,
                                                      last_exit_code=2)}),
                 "Exited", "Failed", ("False", "False", "True"), "failed with exit code 2",
                 id="exited-failed"),
    pytest.param(report(desired(invalid("web", "web.yaml: at 'image': required",
                                        "web.yaml: at 'x': unknown"))),
                 "Invalid", "InvalidSpec", ("False", "False", "True"),
                 "web.yaml: at 'image': required; web.yaml: at 'x': unknown", id="invalid"),
    pytest.param(report(desired(invalid("web", "bad")), observation(pod("web", uuid=U1))),
                 "Invalid", "InvalidSpec", ("False", "False", "True"),
                 "bad (pod 11111111 keeps running the last good spec)",
                 id="invalid-keeps-last-good-pod"),
    pytest.param(report(desired(duplicates={"web": ["b/web.yaml", "a/web.yaml"]})),
                 "Invalid", "DuplicateName", ("False", "False", "True"),
                 "declared by 2 manifests (a/web.yaml, b/web.yaml)", id="duplicate-name"),
    pytest.param(report(blocked={"web": "constraint ${attr.kernel.name} = windows not met"}),
                 "Blocked", "Blocked", ("False", "False", "True"),
                 "constraint ${attr.kernel.name} = windows not met", id="blocked"),
    pytest.param(report(desired(invalid("web", "bad")), blocked={"web": "ports"}),
                 "Invalid", "InvalidSpec", ("False", "False", "True"), "bad",
                 id="invalid-beats-blocked"),
    pytest.param(report(blocked={"web": "ports"},
                        holds=(Hold(reason=HoldReason.DELETION_GUARD, task=TaskName("web")),)),
                 "Blocked", "Blocked", ("False", "False", "True"), "ports",
                 id="blocked-beats-held"),
    pytest.param(report(obs=observation(pod("web")),
                        holds=(Hold(reason=HoldReason.DELETION_GUARD, task=TaskName("web"),
                                    message="would stop 3 of 4 pods"),)),
                 "Held", "DeletionGuard", ("False", "False", "True"), "would stop 3 of 4 pods",
                 id="own-guard-hold"),
    pytest.param(report(desired(), observation(pod("web", uuid=U1)),
                        holds=(Hold(reason=HoldReason.DELETION_GUARD,
                                    message="desired dir is empty"),)),
                 "Held", "DeletionGuard", ("False", "False", "True"), "desired dir is empty",
                 id="global-guard-holds-orphan"),
    pytest.param(report(holds=(Hold(reason=HoldReason.DELETION_GUARD, message="guard"),)),
                 "Pending", "Pending", ("False", "True", "False"), "waiting",
                 id="global-guard-does-not-hold-starts"),
    pytest.param(report(desired(unnamed_invalid=[invalid("", "x.yaml: bad", source="x.yaml")]),
                        observation(pod("web", uuid=U1)),
                        holds=(Hold(reason=HoldReason.INVALID_SPEC,
                                    message="cannot read the task name in x.yaml"),)),
                 "Held", "UnreadableManifest", ("False", "False", "True"),
                 "cannot read the task name in x.yaml", id="unnamed-invalid-holds-orphan"),
    pytest.param(report(holds=(Hold(reason=HoldReason.INCOMPLETE_OBSERVATION,
                                    message="rkt hid pods"),)),
                 "Held", "IncompleteObservation", ("False", "True", "False"), "rkt hid pods",
                 id="global-incomplete-holds-pending"),
    pytest.param(report(obs=observation(pod("web")),
                        holds=(Hold(reason=HoldReason.INCOMPLETE_OBSERVATION),)),
                 "Running", "Running", ("True", "False", "False"), "running",
                 id="global-incomplete-leaves-running"),
    pytest.param(report(restarts={"web": RestartState(not_before=NOW + 5)},
                        holds=(Hold(reason=HoldReason.INCOMPLETE_OBSERVATION),)),
                 "Backoff", "BackOff", ("False", "True", "False"), "next start",
                 id="global-incomplete-leaves-backoff"),
    pytest.param(report(desired(), observation(pod("web", uuid=U1))),
                 "Stopping", "NotDesired", ("False", "True", "False"),
                 "no manifest declares this task any more; stopping pod 11111111",
                 id="orphan-stopping"),
    pytest.param(report(desired(), observation(pod("web", PodState.EXITED, uuid=U1))),
                 "Stopping", "NotDesired", ("False", "True", "False"), "removing pod 11111111",
                 id="orphan-exited-removing"),
    pytest.param(report(obs=observation(pod("web", uuid=U1, spec_hash="0ld" * 10))),
                 "Pending", "Updating", ("False", "True", "False"),
                 f"pod 11111111 runs spec 0ld0ld0l; replacing it with {H[:8]}", id="updating"),
    pytest.param(report(outcomes=(Outcome(action=Start(task=TaskName("web"), spec_hash=H,
                                                       reason=Reason.MISSING),
                                          ok=False, error_code="rkt_command_failed",
                                          message="rkt prepare exited 254: no image"),)),
                 "Pending", "StartFailed", ("False", "True", "False"),
                 "start failed: rkt prepare exited 254: no image", id="start-failed"),
]  # fmt: skip


@pytest.mark.parametrize(("rep", "phase", "reason", "statuses", "message"), PHASE_CASES)
def test_phase_conditions_and_message(
    rep: PassReport, phase: str, reason: str, statuses: tuple[str, str, str], message: str
) -> None:
    doc = web_doc(rep)
    assert (doc["phase"], message in doc["message"]) == (phase, True), doc["message"]
    assert conditions(doc) == {
        "Ready": (statuses[0], reason),
        "Reconciling": (statuses[1], reason),
        "Stalled": (statuses[2], reason),
    }
    assert all(c["message"] == doc["message"] for c in doc["conditions"])
    json.dumps(doc)  # JSON-native values only


def test_running_document_whole() -> None:
    rep = report(obs=observation(pod("web", uuid=U1), pod(None, uuid=U2)))
    assert web_doc(rep) == {
        "schema_version": 1,
        "kind": "task",
        "name": "web",
        "source": "web.yaml",
        "spec_hash": H,
        "revision": "sha256:web1",  # the task's own manifest; the directory's is "rev1"
        "phase": "Running",
        "since": iso(NOW),
        "message": f"pod 11111111 running since {iso(BASE_TIME + 1)}",
        "conditions": [
            {"type": t, "status": s, "reason": "Running",
             "message": f"pod 11111111 running since {iso(BASE_TIME + 1)}",
             "last_transition_time": iso(NOW)}
            for t, s in (("Ready", "True"), ("Reconciling", "False"), ("Stalled", "False"))
        ],
        "pod": {
            "uuid": U1,
            "state": "running",
            "spec_hash": H,
            "created_at": iso(BASE_TIME),
            "started_at": iso(BASE_TIME + 1),
            "exit_code": None,
            "apps": [{"name": "web", "state": "running", "exit_code": None}],
        },
        "restarts": 0,
        "last_exit_code": None,
        "next_retry_at": None,
        "last_error": None,
        "last_termination": None,
        "history": [],
        "updated_at": iso(NOW),
    }  # fmt: skip


def test_backoff_shows_next_retry_and_counters() -> None:
    rep = report(restarts={"web": RestartState(restarts=4, not_before=NOW + 80, last_exit_code=137,
                                               spec_hash=H)})  # fmt: skip
    doc = web_doc(rep)
    assert (doc["phase"], doc["next_retry_at"], doc["restarts"], doc["last_exit_code"]) == (
        "Backoff", iso(NOW + 80), 4, 137,
    )  # fmt: skip


def test_prefers_running_current_pod_over_others() -> None:
    pods = observation(
        pod("web", PodState.EXITED, uuid=U2, exit_code=1),
        pod("web", uuid=U1),
        pod("web", uuid="33333333-old", spec_hash="old"),
    )
    assert web_doc(report(obs=pods))["pod"]["uuid"] == U1


def test_invalid_has_no_spec_hash_and_source_of_the_manifest() -> None:
    doc = web_doc(report(desired(invalid("web", "bad", source="sub/web.yaml"))))
    assert (doc["spec_hash"], doc["source"]) == (None, "sub/web.yaml")


def test_one_document_per_known_name_and_none_for_gone_orphans() -> None:
    want = desired(WEB, invalid("db", "bad"), duplicates={"cache": ["c1.yaml", "c2.yaml"]})
    obs = observation(pod("old", uuid=U1), pod(None, uuid=U2))
    docs = build_task_statuses(report(want, obs), previous={"gone": {"phase": "Stopping"}}, now=NOW)
    assert {n: d["phase"] for n, d in docs.items()} == {
        "web": "Pending", "db": "Invalid", "cache": "Invalid", "old": "Stopping",
    }  # fmt: skip


def test_observation_failed_keeps_last_known_phase_pod_and_orphans() -> None:
    first = build_task_statuses(
        report(obs=observation(pod("web", uuid=U1), pod("old", uuid=U2))), previous={}, now=NOW
    )
    rep = report(
        obs=None, result=PassResult.FAILED, error="rkt list timed out", error_code="rkt_timeout"
    )
    docs = build_task_statuses(rep, previous=first, now=NOW + 30)
    assert docs["old"] == first["old"]
    web = docs["web"]
    assert (web["phase"], web["pod"], web["message"]) == (
        "Running", first["web"]["pod"], "rkt list failed: rkt list timed out",
    )  # fmt: skip
    unknown = ("Unknown", "ObservationFailed")
    assert conditions(web) == dict.fromkeys(("Ready", "Reconciling", "Stalled"), unknown)


def test_observation_failed_keeps_the_last_known_pod_of_an_invalid_task() -> None:
    want = desired(invalid("web", "bad"))
    first = build_task_statuses(
        report(want, observation(pod("web", uuid=U1))), previous={}, now=NOW
    )
    docs = build_task_statuses(report(want, None), previous=first, now=NOW + 30)
    assert (docs["web"]["phase"], docs["web"]["pod"]) == ("Invalid", first["web"]["pod"])


def test_transition_time_moves_only_when_status_changes() -> None:
    pending = build_task_statuses(report(), previous={}, now=NOW - 100)
    still = build_task_statuses(
        report(restarts={"web": RestartState(not_before=NOW + 9)}), previous=pending, now=NOW
    )
    times = {c["type"]: c["last_transition_time"] for c in still["web"]["conditions"]}
    # Pending -> Backoff: Ready stays False, Reconciling stays True: times kept.
    assert times == {"Ready": iso(NOW - 100), "Reconciling": iso(NOW - 100),
                     "Stalled": iso(NOW - 100)}  # fmt: skip
    running = build_task_statuses(report(obs=observation(pod("web"))), previous=still, now=NOW + 5)
    times = {c["type"]: c["last_transition_time"] for c in running["web"]["conditions"]}
    assert times == {"Ready": iso(NOW + 5), "Reconciling": iso(NOW + 5), "Stalled": iso(NOW - 100)}
    assert (still["web"]["since"], running["web"]["since"]) == (iso(NOW), iso(NOW + 5))


def test_unchanged_document_keeps_updated_at_and_since() -> None:
    rep = report(obs=observation(pod("web", uuid=U1)))
    first = build_task_statuses(rep, previous={}, now=NOW)
    again = build_task_statuses(rep, previous=json.loads(json.dumps(first)), now=NOW + 60)
    assert again == first


def test_backoff_document_is_stable_between_passes() -> None:
    """No countdown in the message: resync passes during a backoff rewrite nothing."""
    rep = report(restarts={"web": RestartState(restarts=2, not_before=NOW + 100)})
    first = build_task_statuses(rep, previous={}, now=NOW)
    assert build_task_statuses(rep, previous=first, now=NOW + 30) == first


def test_changed_document_gets_new_updated_at() -> None:
    first = build_task_statuses(report(), previous={}, now=NOW)
    later = build_task_statuses(report(obs=observation(pod("web"))), previous=first, now=NOW + 7)
    assert later["web"]["updated_at"] == iso(NOW + 7)


def _start(ok: bool = True, spec_hash: str = H, uuid: str = U1, msg: str = "") -> Outcome:
    return Outcome(
        action=Start(task=TaskName("web"), spec_hash=spec_hash, reason=Reason.MISSING),  # type: ignore[arg-type]
        ok=ok, pod_uuid=PodUUID(uuid), message=msg,
        error_code=None if ok else "rkt_command_failed",
    )  # fmt: skip


def _exited(uuid: str, code: int) -> Outcome:
    action = Remove(task=TaskName("web"), uuid=PodUUID(uuid), reason=Reason.EXITED, exit_code=code)
    return Outcome(action=action, ok=True)


def test_history_deduplicates_by_spec_hash_newest_first_and_caps_at_five() -> None:
    docs: Mapping[str, Any] = {}
    t = NOW
    # Three attempts of H: start, exit 1, start again -> one entry, 2 attempts.
    docs = build_task_statuses(report(outcomes=(_start(),)), previous=docs, now=t)
    exited = observation(pod("web", PodState.EXITED, uuid=U1, exit_code=1))
    docs = build_task_statuses(
        report(obs=exited, outcomes=(_exited(U1, 1),)), previous=docs, now=t + 1
    )
    docs = build_task_statuses(report(outcomes=(_start(uuid=U2),)), previous=docs, now=t + 2)
    assert docs["web"]["history"] == [{
        "spec_hash": H, "first_at": iso(t), "at": iso(t + 2), "result": "started",
        "message": "started pod 22222222", "attempts": 2,
    }]  # fmt: skip
    for i in range(6):
        failed = _start(ok=False, spec_hash=f"h{i}", msg=f"boom {i}")
        docs = build_task_statuses(report(outcomes=(failed,)), previous=docs, now=t + 10 + i)
    history = docs["web"]["history"]
    assert [(e["spec_hash"], e["result"], e["message"]) for e in history] == [
        (f"h{i}", "failed", f"boom {i}") for i in (5, 4, 3, 2, 1)
    ]


def test_exit_is_recorded_in_history_and_last_exit_code() -> None:
    exited = observation(pod("web", PodState.EXITED, uuid=U1, exit_code=3))
    doc = web_doc(report(obs=exited, outcomes=(_exited(U1, 3),)))
    assert (doc["last_exit_code"], doc["history"][0]["result"], doc["history"][0]["message"]) == (
        3, "exited", "pod 11111111 exited with code 3",
    )  # fmt: skip


def test_last_error_kept_until_ready_then_cleared() -> None:
    failed = _start(ok=False, msg="rkt prepare exited 254: image not found")
    first = build_task_statuses(report(outcomes=(failed,)), previous={}, now=NOW)
    want_error = {
        "code": "rkt_command_failed",
        "message": "rkt prepare exited 254: image not found",
        "at": iso(NOW),
    }
    assert first["web"]["last_error"] == want_error
    backoff = report(restarts={"web": RestartState(not_before=NOW + 50)})
    second = build_task_statuses(backoff, previous=first, now=NOW + 10)
    assert second["web"]["last_error"] == want_error
    assert second["web"]["message"].endswith("last error: rkt prepare exited 254: image not found")
    third = build_task_statuses(report(obs=observation(pod("web"))), previous=second, now=NOW + 60)
    assert third["web"]["last_error"] is None


def test_skipped_outcomes_are_not_errors() -> None:
    skipped = Outcome(action=Stop(task=TaskName("web"), uuid=U1, reason=Reason.SPEC_CHANGED),
                      ok=False, skipped=True)  # fmt: skip
    assert web_doc(report(outcomes=(skipped,)))["last_error"] is None


def test_multi_line_messages_become_one_line() -> None:
    doc = web_doc(report(desired(invalid("web", "line one\nline two"))))
    assert doc["message"] == "line one line two"


# --- controller document -------------------------------------------------------------

DAEMON = DaemonInfo(version="0.1.0", pid=4242, started_at=NOW - 3600,
                    config_path="/etc/rktctl/c.toml", resync_interval_s=30.0,
                    node={"kernel.name": "linux"})  # fmt: skip


def test_controller_document_whole() -> None:
    want = desired(
        WEB,
        invalid("db", "bad"),
        duplicates={"cache": ["c2.yaml", "c1.yaml"]},
        unnamed_invalid=[invalid("", "x.yaml: not YAML", source="x.yaml")],
        ignored=["web.yaml~", ".#db.yaml"],
        revision="abc123",
    )
    outcomes = (_start(), _start(ok=False), Outcome(action=Stop(task=TaskName("x"), uuid=U2,
                reason=Reason.NOT_DESIRED), ok=False, skipped=True))  # fmt: skip
    rep = report(want, observation(pod("web"), pod(None)), outcomes=outcomes,
                 holds=(Hold(reason=HoldReason.DELETION_GUARD, message="would stop 3 of 4"),),
                 result=PassResult.DEGRADED)  # fmt: skip
    docs = build_task_statuses(rep, previous={}, now=NOW)
    assert build_controller_status(rep, task_docs=docs, daemon=DAEMON, now=NOW + 1) == {
        "schema_version": 1,
        "kind": "controller",
        "version": "0.1.0",
        "pid": 4242,
        "started_at": iso(NOW - 3600),
        "config_path": "/etc/rktctl/c.toml",
        "resync_interval_s": 30.0,
        "heartbeat_at": iso(NOW + 1),
        "last_pass": {
            "id": "abcd1234", "trigger": "resync", "started_at": iso(NOW - 0.25),
            "finished_at": iso(NOW), "duration_ms": 250.0, "result": "degraded",
            "dry_run": False, "error": None,
            "actions": {"start": 1, "run_prepared": 0, "stop": 0, "remove": 0, "signal": 0,
                        "failed": 1, "skipped": 1, "deferred": 0},
        },
        "revision": "abc123",
        "desired_dir_missing": False,
        "observation_complete": True,
        "observation": {"complete": True, "errors": [], "pods": 2, "owned_pods": 1},
        "tasks": 3,
        "counts": {"Pending": 0, "Starting": 0, "Running": 1, "Exited": 0, "Backoff": 0,
                   "Stopping": 0, "Invalid": 2, "Blocked": 0, "Held": 0, "Suspended": 0},
        "rkt": {"driver.rkt": "1", "driver.rkt.version": "1.30.0"},
        "ignored_files": [".#db.yaml", "web.yaml~"],
        "duplicate_names": {"cache": ["c1.yaml", "c2.yaml"]},
        "invalid_manifests": [{"source": "x.yaml", "messages": ["x.yaml: not YAML"]}],
        "deletion_guard": {"held": True, "message": "would stop 3 of 4"},
        "holds": [{"reason": "deletion_guard", "task": None, "message": "would stop 3 of 4"}],
        "node": {"kernel.name": "linux"},
        "config_error": None,
    }  # fmt: skip


def test_controller_document_of_a_failed_pass() -> None:
    rep = report(
        obs=None, result=PassResult.FAILED, error="rkt not found", error_code="rkt_not_found"
    )
    doc = build_controller_status(rep, task_docs={}, daemon=DAEMON, now=NOW)
    assert (doc["last_pass"]["error"], doc["observation"], doc["observation_complete"]) == (
        {"code": "rkt_not_found", "message": "rkt not found"}, None, False,
    )  # fmt: skip


def test_controller_counts_every_phase() -> None:
    docs = {str(i): {"phase": str(p)} for i, p in enumerate(TaskPhase)}
    doc = build_controller_status(report(), task_docs=docs, daemon=DAEMON, now=NOW)
    assert doc["counts"] == {str(p): 1 for p in TaskPhase}


# --- reading side ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("controller", "now", "problem"),
    [
        pytest.param(None, NOW, "no controller.json", id="missing"),
        pytest.param({"heartbeat_at": iso(NOW - 89), "resync_interval_s": 30}, NOW, None,
                     id="fresh"),
        pytest.param({"heartbeat_at": iso(NOW - 91), "resync_interval_s": 30, "pid": 7}, NOW,
                     "controller heartbeat is 91s old (limit 90s = 3 x resync_interval_s 30)",
                     id="stale"),
        pytest.param({"heartbeat_at": "yesterday", "resync_interval_s": 30}, NOW,
                     "no readable heartbeat_at", id="garbage"),
        pytest.param({"heartbeat_at": iso(NOW)}, NOW, "no readable", id="no-interval"),
    ],
)  # fmt: skip
def test_heartbeat_problem(controller: Any, now: float, problem: str | None) -> None:
    found = heartbeat_problem(controller, now=now)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found, found


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (-5, "0s"), (119, "119s"), (150, "2m30s"), (600, "10m"), (3 * 3600 + 60, "3h1m"),
     (9 * 3600, "9h"), (3 * 86400 + 3600, "3d1h"), (30 * 86400, "30d")],
)  # fmt: skip
def test_human_age(seconds: float, text: str) -> None:
    assert human_age(seconds) == text


def test_iso_round_trip() -> None:
    assert (iso(1_700_000_000.5), parse_iso(iso(1_700_000_000.5))) == (
        "2023-11-14T22:13:20.500Z", 1_700_000_000.5,
    )  # fmt: skip
    assert parse_iso("nonsense") is None


def test_render_table() -> None:
    docs: dict[str, dict[str, Any]] = {
        "web": {"name": "web", "phase": "Running", "pod": {"uuid": U1}, "restarts": 2,
                "since": iso(NOW - 150), "message": "pod 11111111 running"},
        "db": {"name": "db", "phase": "Invalid", "pod": None, "restarts": 0,
               "since": iso(NOW - 5), "message": "db.yaml: at 'image': required"},
    }  # fmt: skip
    assert render_table(docs, now=NOW) == (
        "NAME  PHASE    POD       RESTARTS  AGE    MESSAGE\n"
        "db    Invalid  -         0         5s     db.yaml: at 'image': required\n"
        "web   Running  11111111  2         2m30s  pod 11111111 running\n"
    )
