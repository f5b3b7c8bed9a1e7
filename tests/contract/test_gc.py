"""`rkt gc` and `rkt rm` semantics rktctl's cleanup relies on, on every backend (see conftest).

rktctl removes its own finished pods by UUID and runs the host-wide `rkt gc` only when
the operator opts in (`host_gc`); these scenarios pin down what gc really does to
every pod it finds (transcripts 110-122, 234 and FINDINGS), so the fake cannot drift.
"""

from __future__ import annotations

import json

from tests.contract.rktcli import Rkt


def _states(rkt: Rkt) -> dict[str, str]:
    return {p["name"]: p["state"] for p in rkt.pods()}


def _ran_to_exit(rkt: Rkt) -> str:
    """A pod that ran `/bin/true` in the foreground and exited."""
    uuid = rkt.prepare(rkt.backend.image("gc"), "--exec=/bin/true")
    rkt.ok("--insecure-options=image", "run-prepared", uuid)
    return uuid


def test_gc_marks_exited_pods_then_deletes_them_after_the_grace_period(rkt: Rkt) -> None:
    prepared = rkt.prepare(rkt.backend.image("gc"), "--exec=/bin/true")
    exited = _ran_to_exit(rkt)
    assert _states(rkt) == {prepared: "prepared", exited: "exited"}

    mark = rkt("gc", "--mark-only")
    assert (mark.returncode, mark.stdout) == (0, "")
    assert mark.stderr == f'gc: moving pod "{exited}" to garbage\n'
    assert _states(rkt) == {prepared: "prepared", exited: "exited garbage"}
    (marked,) = [p for p in rkt.pods() if p["name"] == exited]
    assert "finished_at" in marked["apps"][0]  # the mark time, in ns

    kept = rkt("gc", "--grace-period=1h")
    assert (kept.returncode, kept.stdout) == (0, "")
    assert kept.stderr == (f'gc: pod "{exited}" not removed: still within grace period (1h0m0s)\n')
    assert set(_states(rkt)) == {prepared, exited}

    swept = rkt("gc", "--grace-period=0s", "--expire-prepared=1h")
    assert (swept.returncode, swept.stdout) == (0, f'Garbage collecting pod "{exited}"\n')
    assert _states(rkt) == {prepared: "prepared"}


def test_gc_expires_prepared_pods_and_collects_them_at_once(rkt: Rkt) -> None:
    prepared = rkt.prepare(rkt.backend.image("gc"), "--exec=/bin/true")
    young = rkt("gc", "--grace-period=0s")  # default --expire-prepared=24h
    assert (young.returncode, young.stdout, young.stderr) == (0, "", "")
    expired = rkt("gc", "--expire-prepared=0s")
    assert expired.stderr == f'gc: moving expired prepared pod "{prepared}" to garbage\n'
    assert expired.stdout == f'Garbage collecting pod "{prepared}"\n'
    assert rkt.ok("list", "--format=json") == "null\n"


def test_rm_removes_an_exited_pod_gc_has_marked(rkt: Rkt) -> None:
    """rktctl removes owned pods in `exited garbage` (an operator's gc marked them) by UUID."""
    uuid = _ran_to_exit(rkt)
    rkt.ok("gc", "--mark-only")
    removed = rkt("rm", uuid)
    assert (removed.returncode, removed.stdout, removed.stderr) == (0, f'"{uuid}"\n', "")
    assert json.loads(rkt.ok("list", "--format=json")) is None
