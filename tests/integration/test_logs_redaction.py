"""Crash tracebacks in the log carry no local variables (issue 11, item 10).

structlog's default traceback renderers print every frame's locals: a pass that crashed
with a spec or an argv in scope put env values and raw `--set-env=K=V` into the journal,
undoing `redact_argv`. `logs.configure` (called once by the CLI) must render tracebacks
without locals in both formats.
"""

from __future__ import annotations

import pytest
import structlog

from controller import logs
from controller.rktargs import redact_argv

SECRET = "hunter2-s3cr3t-value"


def _crash_with_secrets_in_scope() -> None:
    log = structlog.get_logger()
    argv = ("rkt", "prepare", f"--set-env=DB_PASSWORD={SECRET}", "example.com/web:1.0")
    env = {"DB_PASSWORD": SECRET}
    try:
        raise ValueError(f"embedded null byte in {len(argv)} words, {len(env)} env values")
    except ValueError:
        log.exception("reconcile_crashed", argv=list(redact_argv(argv)))


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_logged_traceback_shows_no_local_variables(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("info", fmt)
    _crash_with_secrets_in_scope()
    err = capsys.readouterr().err
    assert "reconcile_crashed" in err
    assert "_crash_with_secrets_in_scope" in err  # the traceback itself is still there
    assert "embedded null byte" in err
    assert SECRET not in err
    assert "DB_PASSWORD=<redacted>" in err
