"""The fetch phase of a start (issue 15 item 3): spec.pull_policy, the fetch and prepare
argv, the image-ID parse, ImageFetcher's memory, status and metrics."""

from __future__ import annotations

import pytest

from controller.errors import RktCommandFailed, RktOutputError
from controller.imagefetch import (
    CACHED,
    FAILED,
    FETCHED,
    Fetching,
    ImageFetcher,
    parse_image_id,
)
from controller.manifests import ManifestInvalidError, parse_manifest
from controller.metrics import Metrics
from controller.model import Hold, HoldReason, TaskName
from controller.procs import Completed
from controller.rktargs import ArgvOptions, fetch_argv, prepare_argv
from tests.factories import task
from tests.unit.test_status import report, web_doc

BASE = """\
apiVersion: rktctl.io/v1
kind: Task
metadata: {name: web}
spec:
  config: {image: example.com/web:1.0, command: /bin/sleep}
"""
OPTS = ArgvOptions(rkt="rkt", global_args=("--dir=/var/lib/rkt",))
ID = "sha512-" + "ab" * 16
WEB = TaskName("web")


def test_pull_policy_defaults_to_new_and_is_not_in_the_spec_hash() -> None:
    plain = parse_manifest(BASE, source="w.yaml")
    update = parse_manifest(BASE + "  pull_policy: update\n", source="w.yaml")
    assert (plain.pull_policy, update.pull_policy) == ("new", "update")
    assert plain.spec_hash == update.spec_hash


def test_a_pull_policy_rkt_does_not_know_is_refused() -> None:
    with pytest.raises(ManifestInvalidError, match="pull_policy"):
        parse_manifest(BASE + "  pull_policy: always\n", source="w.yaml")


def test_extra_args_pull_policy_is_refused_naming_spec_pull_policy() -> None:
    text = BASE + '  extra_args:\n    prepare: ["--pull-policy=update"]\n'
    with pytest.raises(ManifestInvalidError, match=r"spec\.pull_policy"):
        parse_manifest(text, source="w.yaml")


def test_fetch_argv_carries_the_policy_and_prepare_reads_only_the_store() -> None:
    spec = task("web", image="example.com/web:1.0", pull_policy="update")
    assert fetch_argv(spec, OPTS)[-4:] == (
        "--debug=false", "fetch", "--pull-policy=update", "example.com/web:1.0",
    )  # fmt: skip
    assert fetch_argv(spec, OPTS)[:3] == ("rkt", "--dir=/var/lib/rkt", "--insecure-options=image")
    argv = prepare_argv(spec, OPTS, image_id=ID)
    assert "example.com/web:1.0" not in argv
    at = argv.index(ID)
    assert argv[at - 1] == "--pull-policy=never"
    # Without an ID (no fetch phase) the argv is what it always was.
    assert "--pull-policy=never" not in prepare_argv(spec, OPTS)


def test_parse_image_id_takes_the_last_id_line() -> None:
    assert parse_image_id(b"noise\n" + ID.encode() + b"\n") == ID
    with pytest.raises(RktOutputError):
        parse_image_id(b"image: fetching\n")


def _fetch(calls: list[str], out: str = ID) -> Completed:
    calls.append("fetch")
    return Completed(argv=("rkt", "fetch"), returncode=0, stdout=out.encode() + b"\n", stderr=b"")


def test_an_image_is_fetched_once_with_policy_new_and_at_every_start_with_update() -> None:
    results: list[str] = []
    images = ImageFetcher()
    images.on_fetch = lambda result, _s: results.append(result)
    calls: list[str] = []
    assert images.image_id(WEB, "img", "new", lambda: _fetch(calls)) == ID
    assert images.image_id(WEB, "img", "new", lambda: _fetch(calls)) == ID
    assert calls == ["fetch"]
    images.image_id(WEB, "img", "update", lambda: _fetch(calls))
    assert calls == ["fetch", "fetch"]
    images.forget("img")  # a failed prepare: the store may have lost it
    images.image_id(WEB, "img", "new", lambda: _fetch(calls))
    assert calls == ["fetch"] * 3
    assert results == [FETCHED, CACHED, FETCHED, FETCHED]


def test_a_fetch_in_flight_is_listed_and_a_failed_one_is_not_remembered() -> None:
    images = ImageFetcher(wall_clock=lambda: 1000.0)
    seen: dict[TaskName, Fetching] = {}

    def slow() -> Completed:
        seen.update(images.fetching())
        raise RktCommandFailed(("rkt", "fetch"), 254, "fetch: no such image")

    results: list[str] = []
    images.on_fetch = lambda result, _s: results.append(result)
    with pytest.raises(RktCommandFailed):
        images.image_id(WEB, "img", "new", slow)
    assert seen[WEB].image == "img" and seen[WEB].since == 1000.0
    assert images.fetching() == {}
    assert results == [FAILED]
    calls: list[str] = []
    images.image_id(WEB, "img", "new", lambda: _fetch(calls))
    assert calls == ["fetch"]


def test_status_of_a_task_in_its_fetch_phase_reads_fetching_image() -> None:
    hold = Hold(reason=HoldReason.FETCHING, task=WEB, message="fetching image img (since x)")
    doc = web_doc(report(holds=(hold,)))
    assert (doc["phase"], doc["message"]) == ("Starting", "fetching image img (since x)")
    assert "FetchingImage" in {c["reason"] for c in doc["conditions"]}


def test_metrics_count_fetches_by_result_and_their_time() -> None:
    metrics = Metrics(version="t")
    metrics.record_fetch(FETCHED, 2.5)
    metrics.record_fetch(CACHED, 0.0)
    text = metrics.render().decode()
    assert 'rktctl_image_fetches_total{result="fetched"} 1.0' in text
    assert 'rktctl_image_fetches_total{result="failed"} 0.0' in text
    assert "rktctl_image_fetch_seconds_total 2.5" in text
    assert 'rktctl_rkt_command_failures_total{subcommand="fetch"} 0.0' in text
