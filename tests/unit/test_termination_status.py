"""How a finished pod's end reaches its task document (issue 10, "Failures nobody can see").

Pure: controller.status turns a `Termination` (exit code + the tail of the pod's output,
read by the shell) into `last_termination`, `last_error` and the one-line message; the
output is bounded and made printable here. Also the `start_settle_s` setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from controller.config import Config, parse_config
from controller.errors import ConfigError
from controller.model import (
    Outcome,
    PodOutput,
    PodState,
    PodUUID,
    Reason,
    Remove,
    RestartPolicy,
    RestartState,
    Start,
    TaskName,
    Termination,
)
from controller.status import build_task_statuses
from controller.termination import (
    early_exit_failed,
    exit_code_note,
    last_output_line,
    render_output,
    termination_summary,
)
from controller.timefmt import iso
from tests.factories import observation, pod
from tests.statuscheck import status_errors
from tests.unit.test_status import NOW, U1, U2, H, report

LOG = "/var/lib/rktctl/state/logs/web-11111111.log"
FLY_NOTE = "exit code not recorded by the fly stage1"


def term(
    *,
    uuid: str = U1,
    exit_code: int | None = 3,
    tail: bytes = b"starting\nboom\n",
    started: bool = True,
    stage1: str | None = None,
    within: float | None = None,
    output: PodOutput | None = None,
) -> Termination:
    return Termination(
        uuid=PodUUID(uuid),
        spec_hash=H,
        exit_code=exit_code,
        started=started,
        stage1=stage1,
        started_at=int(NOW) - 5,
        observed_at=NOW - 1,
        output=output or PodOutput(tail=tail, location=LOG),
        exited_within_s=within,
    )


def docs(
    terminations: Mapping[str, Termination] | None = None,
    previous: Mapping[str, Mapping[str, Any]] | None = None,
    now: float = NOW,
    **kw: Any,
) -> dict[str, Any]:
    rep = replace(
        report(**kw), terminations={TaskName(k): v for k, v in (terminations or {}).items()}
    )
    return build_task_statuses(rep, previous=previous or {}, now=now)


# --- the output, bounded and printable -------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "truncated", "text", "cut"),
    [
        pytest.param(b"", False, "", False, id="empty"),
        pytest.param(b"a\nb\n\n\n", False, "a\nb", False, id="trailing-blank-lines-dropped"),
        pytest.param(b"a\r\nb\rc", False, "a\nb\nc", False, id="crlf-and-cr-are-newlines"),
        pytest.param(b"\x1b[31mred\x1b[0m\tok", False, "\\x1b[31mred\\x1b[0m\tok", False,
                     id="escape-sequences-shown-not-sent"),
        pytest.param(b"nul\x00 bell\x07", False, "nul\\x00 bell\\x07", False, id="controls"),
        pytest.param("evil\u202egnp.exe".encode(), False, "evil\\u202egnp.exe", False,
                     id="bidi-override-escaped"),
        pytest.param(b"caf\xc3\xa9 \xff!", False, "caf\u00e9 \ufffd!", False,
                     id="invalid-utf8-replaced"),
        pytest.param(b"rtial line\nwhole line", True, "whole line", True,
                     id="line-cut-by-the-reader-dropped"),
        pytest.param(b"only a cut line", True, "only a cut line", True,
                     id="a-lone-cut-line-kept"),
    ],
)  # fmt: skip
def test_render_output(tail: bytes, truncated: bool, text: str, cut: bool) -> None:
    assert render_output(tail, truncated=truncated) == (text, cut)


def test_render_output_keeps_the_last_20_lines() -> None:
    tail = b"".join(b"line %d\n" % i for i in range(50))
    text, truncated = render_output(tail)
    assert text.split("\n") == [f"line {i}" for i in range(30, 50)]
    assert truncated


def test_render_output_keeps_at_most_2_kib() -> None:
    tail = b"".join(b"%02d " % i + b"x" * 296 + b"\n" for i in range(10))
    text, truncated = render_output(tail)
    assert len(text.encode()) <= 2048 and truncated
    assert text.split("\n")[-1].startswith("09 ")
    assert text.split("\n")[0][:3] in {f"{i:02d} " for i in range(10)}


def test_render_output_keeps_the_end_of_one_huge_line() -> None:
    text, truncated = render_output(b"a" * 5000 + b"\xc3\xa9 the error")
    assert truncated and len(text.encode()) <= 2048
    assert text.endswith("\u00e9 the error")


def test_escaping_never_breaks_the_bound() -> None:
    text, _ = render_output(b"\x1b" * 2000)
    assert len(text.encode()) <= 2048


def test_last_output_line_skips_rkt_and_nspawn_routine_lines() -> None:
    host = (
        'run-prepared: group "rkt" not found, will use default gid when rendering images\n'
        "stage1: warning: error setting journal ACLs, you'll need root to read the pod journal\n"
        "[  778.394051] rktctl-test[6]: boom\n"
        'Attempted to remove disk file system under "/run/systemd/nspawn/propagate/rkt-x", '
        "and we can't allow that."
    )
    assert last_output_line(host) == "[  778.394051] rktctl-test[6]: boom"
    assert last_output_line('run-prepared: group "rkt" not found') == (
        'run-prepared: group "rkt" not found'
    )
    assert last_output_line("\n  \n") == ""
    long = last_output_line("x" * 500)
    assert len(long) == 200 and long.endswith("…")


# --- exit codes and the one-line summary ----------------------------------------------


@pytest.mark.parametrize(
    ("termination", "note"),
    [
        pytest.param(term(exit_code=3), None, id="recorded"),
        pytest.param(term(exit_code=0), None, id="recorded-zero"),
        pytest.param(term(exit_code=None), FLY_NOTE, id="rkt-default-stage1-is-fly"),
        pytest.param(term(exit_code=None, stage1="coreos.com/rkt/stage1-fly:1.30.0"), FLY_NOTE,
                     id="fly-by-name"),
        pytest.param(term(exit_code=None, stage1="/usr/lib/rkt/stage1-images/stage1-fly.aci"),
                     FLY_NOTE, id="fly-by-path"),
        pytest.param(term(exit_code=None, stage1="/usr/lib/rkt/stage1-images/stage1-host.aci"),
                     "exit code not recorded by rkt", id="host-without-code"),
        pytest.param(term(exit_code=None, started=False),
                     "no exit code: the pod exited without starting", id="never-started"),
    ],
)  # fmt: skip
def test_exit_code_note(termination: Termination, note: str | None) -> None:
    assert exit_code_note(termination) == note


@pytest.mark.parametrize(
    ("termination", "summary"),
    [
        pytest.param(term(), "pod 11111111 exited with code 3; last output: boom", id="code"),
        pytest.param(term(exit_code=None, tail=b'run: can\'t execute "/bin/x"\n'),
                     f"pod 11111111 exited ({FLY_NOTE}); last output: run: can't execute "
                     '"/bin/x"', id="fly"),
        pytest.param(term(within=3.0, tail=b""),
                     "pod 11111111 exited with code 3 within 3s of its start", id="settle"),
        pytest.param(term(output=PodOutput(location=LOG, error=f"cannot read {LOG}: gone")),
                     f"pod 11111111 exited with code 3; cannot read {LOG}: gone",
                     id="unreadable-output"),
    ],
)  # fmt: skip
def test_termination_summary(termination: Termination, summary: str) -> None:
    assert termination_summary(termination) == summary


@pytest.mark.parametrize(
    ("exit_code", "policy", "failed"),
    [
        (0, RestartPolicy.NEVER, False),
        (0, RestartPolicy.ON_FAILURE, False),
        (0, RestartPolicy.ALWAYS, True),  # a service must not end at once
        (0, None, True),
        (3, RestartPolicy.NEVER, True),
        (None, RestartPolicy.NEVER, True),  # fly: nothing proves it succeeded
    ],
)
def test_early_exit_failed(
    exit_code: int | None, policy: RestartPolicy | None, failed: bool
) -> None:
    assert early_exit_failed(term(exit_code=exit_code), policy) is failed


# --- the task document ----------------------------------------------------------------


def test_a_crash_seen_this_pass_fills_last_termination_and_last_error() -> None:
    remove = Remove(task=TaskName("web"), uuid=U1, reason=Reason.EXITED, exit_code=3)
    doc = docs(
        {"web": term()},
        obs=observation(pod("web", PodState.EXITED, uuid=U1, exit_code=3)),
        outcomes=(Outcome(action=remove, ok=True, pod_uuid=U1),),
        restarts={"web": RestartState(restarts=1, not_before=NOW + 10, last_exit_code=3,
                                      spec_hash=H)},
    )["web"]  # fmt: skip
    summary = "pod 11111111 exited with code 3; last output: boom"
    assert doc["last_termination"] == {
        "pod_uuid": U1,
        "spec_hash": H,
        "exit_code": 3,
        "exit_code_note": None,
        "message": summary,
        "started_at": iso(int(NOW) - 5),
        "observed_at": iso(NOW - 1),
        "exited_within_s": None,
        "output": "starting\nboom",
        "output_truncated": False,
        "log": LOG,
        "log_error": None,
    }
    assert doc["last_error"] == {"code": "pod_exited", "message": summary, "at": iso(NOW)}
    assert doc["phase"] == "Backoff"
    assert doc["message"].endswith(f"last exit code 3; last error: {summary}")
    assert status_errors(doc) == []


def test_fly_says_the_exit_code_is_not_recorded() -> None:
    doc = docs({"web": term(exit_code=None)})["web"]
    assert (doc["last_termination"]["exit_code"], doc["last_termination"]["exit_code_note"]) == (
        None,
        FLY_NOTE,
    )
    assert doc["last_exit_code"] is None
    assert FLY_NOTE in doc["last_error"]["message"]
    assert status_errors(doc) == []


def test_a_clean_exit_is_recorded_but_is_no_error() -> None:
    doc = docs({"web": term(exit_code=0)})["web"]
    assert doc["last_termination"]["exit_code"] == 0
    assert doc["last_exit_code"] == 0
    assert doc["last_error"] is None


def test_last_termination_outlives_the_pod_and_a_running_successor() -> None:
    first = docs({"web": term()})
    later = docs(previous=first, now=NOW + 60)  # pod removed: nothing seen this pass
    assert later["web"]["last_termination"] == first["web"]["last_termination"]
    assert later["web"]["last_error"] == first["web"]["last_error"]
    running = docs(previous=later, now=NOW + 120, obs=observation(pod("web", uuid=U2)))["web"]
    assert running["phase"] == "Running"
    assert running["last_error"] is None  # converged: the error is over, the last state stays
    assert running["last_termination"] == first["web"]["last_termination"]


def test_the_same_pod_seen_again_keeps_its_first_capture() -> None:
    """A pod whose removal failed is seen finished again: the document must not churn."""
    first = docs({"web": term()})
    again = docs({"web": replace(term(tail=b"rotated\n"), observed_at=NOW + 5)},
                 previous=first, now=NOW + 10)  # fmt: skip
    assert again["web"]["last_termination"] == first["web"]["last_termination"]
    assert again["web"]["updated_at"] == first["web"]["updated_at"]


def test_a_newer_pod_replaces_the_last_termination() -> None:
    first = docs({"web": term()})
    second = docs({"web": term(uuid=U2, exit_code=1, tail=b"other\n")}, previous=first)
    assert (second["web"]["last_termination"]["pod_uuid"], second["web"]["last_exit_code"]) == (
        U2,
        1,
    )


def test_a_start_that_died_within_the_settle_window_is_a_failed_start() -> None:
    summary = termination_summary(term(within=3.0))
    start = Start(task=TaskName("web"), spec_hash=H, reason=Reason.MISSING)
    doc = docs(
        {"web": term(within=3.0)},
        outcomes=(Outcome(action=start, ok=False, pod_uuid=U1, error_code="pod_exited",
                          message=summary),),
    )["web"]  # fmt: skip
    assert (doc["phase"], doc["message"]) == ("Pending", f"start failed: {summary}")
    assert doc["last_error"]["code"] == "pod_exited"
    assert doc["last_termination"]["exited_within_s"] == 3.0
    assert status_errors(doc) == []


def test_output_in_the_document_is_bounded_and_printable() -> None:
    noisy = b"".join(b"\x1b[1mline %d\x1b[0m\n" % i for i in range(100))
    doc = docs({"web": term(output=PodOutput(tail=noisy, truncated=True, location=LOG))})["web"]
    last = doc["last_termination"]
    assert last["output_truncated"] is True
    assert len(last["output"].split("\n")) == 20
    assert "\x1b" not in last["output"] and "\\x1b[1mline 99\\x1b[0m" in last["output"]
    assert status_errors(doc) == []


# --- the setting ------------------------------------------------------------------------


def test_start_settle_s_defaults_to_3_seconds_and_may_be_0() -> None:
    assert Config().start_settle_s == 3.0
    assert parse_config({"start_settle_s": 0}, {}).start_settle_s == 0.0
    assert parse_config({}, {"RKTCTL_START_SETTLE_S": "1.5"}).start_settle_s == 1.5


def test_start_settle_s_must_not_be_negative() -> None:
    with pytest.raises(ConfigError, match="start_settle_s: must not be negative"):
        parse_config({"start_settle_s": -1}, {})
