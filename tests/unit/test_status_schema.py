"""schemas/status.schema.json describes exactly what controller.status builds."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from controller.controllerstatus import DaemonInfo, build_controller_status
from controller.model import PassReport, PassResult
from controller.resources import load_schema
from controller.status import build_task_statuses
from tests.statuscheck import status_errors
from tests.unit.test_status import NOW, PHASE_CASES, report, web_doc

DAEMON = DaemonInfo(version="0.1.0", pid=7, started_at=NOW - 10, config_path=None,
                    resync_interval_s=30.0, node={"kernel.name": "linux"})  # fmt: skip


def test_schema_is_valid_draft_2020_12() -> None:
    schema = load_schema("status.schema.json")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize(("rep", "phase", "reason", "statuses", "message"), PHASE_CASES)
def test_every_phase_document_validates(rep: PassReport, phase: str, reason: str,
                                        statuses: Any, message: str) -> None:  # fmt: skip
    docs = build_task_statuses(rep, previous={}, now=NOW)
    for doc in docs.values():
        assert status_errors(doc) == []
    controller = build_controller_status(rep, task_docs=docs, daemon=DAEMON, now=NOW)
    assert status_errors(controller) == []


def test_failed_pass_documents_validate() -> None:
    first = build_task_statuses(report(), previous={}, now=NOW)
    rep = report(obs=None, result=PassResult.FAILED, error="boom", error_code="rkt_timeout")
    docs = build_task_statuses(rep, previous=first, now=NOW + 1)
    assert [status_errors(d) for d in docs.values()] == [[]]
    assert status_errors(build_controller_status(rep, task_docs=docs, daemon=DAEMON, now=NOW)) == []


def _mutations() -> list[Any]:
    def drop(key: str) -> Any:
        return lambda d: d.pop(key)

    def put(key: str, value: Any) -> Any:
        return lambda d: d.__setitem__(key, value)

    return [
        pytest.param(drop("phase"), "'phase' is a required property", id="missing-phase"),
        pytest.param(put("phase", "Crashing"), "is not one of", id="unknown-phase"),
        pytest.param(put("kind", "controller"), "'pid' is a required property", id="wrong-kind"),
        pytest.param(put("message", "two\nlines"), "does not match", id="multi-line-message"),
        pytest.param(put("extra", 1), "'extra' was unexpected", id="unknown-field"),
        pytest.param(put("since", "yesterday"), "does not match", id="bad-time"),
        pytest.param(lambda d: d["conditions"][0].__setitem__("status", "true"), "is not one of",
                     id="condition-status"),
    ]  # fmt: skip


@pytest.mark.parametrize(("mutate", "error"), _mutations())
def test_schema_rejects_drift(mutate: Any, error: str) -> None:
    doc = copy.deepcopy(web_doc(report()))
    assert status_errors(doc) == []
    mutate(doc)
    errors = status_errors(doc)
    assert any(error in e for e in errors), errors
