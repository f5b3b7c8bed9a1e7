"""RktCommandFailed names the line of rkt's stderr that says why, not rkt's closing count."""

from __future__ import annotations

import pytest

from controller.errors import RktCommandFailed, cause_line

UUID = "2cf46374-ca48-4320-9596-0768b60c8324"


@pytest.mark.parametrize(
    ("stderr", "cause"),
    [
        pytest.param(
            "error reading pid: open ppid: no such file or directory\n"
            f'stop: error stopping "{UUID}": exit status 1\n'
            "stop: failed to stop 1 pod(s)\n",
            "error reading pid: open ppid: no such file or directory",
            id="stop-entrypoint-failed",
        ),
        pytest.param(
            f'stop: pod "{UUID}" is not running\nstop: failed to stop 1 pod(s)\n',
            f'stop: pod "{UUID}" is not running',
            id="not-running",
        ),
        pytest.param("stop: failed to stop 1 pod(s)\n", "stop: failed to stop 1 pod(s)", id="only"),
        pytest.param(
            "prepare: error: no image\n\n", "prepare: error: no image", id="trailing-blank"
        ),
        pytest.param("", "no output", id="silent"),
    ],
)
def test_the_cause_is_the_last_line_that_is_not_a_summary(stderr: str, cause: str) -> None:
    assert cause_line(stderr) == cause
    error = RktCommandFailed(("rkt", "--dir=/x", "stop", UUID), 254, stderr)
    assert str(error).endswith(f"exited 254: {cause}")
    assert error.stderr_tail == stderr.strip()  # the whole tail is kept for the logs
