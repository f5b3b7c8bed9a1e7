"""A finished pod for people: its exit code, the end of its output, a one-line summary.

PURE. The shell captures a pod's end as a `Termination` (exit code, the last bytes of
its output); this turns it into bounded, printable text and the `last_termination`
part of a task document. Never reads a file or a clock.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from controller.model import (
    RestartPolicy,
    Termination,
)
from controller.timefmt import iso, optional_iso

OUTPUT_TAIL_LINES = 20
OUTPUT_TAIL_BYTES = 2048
"""A status document keeps at most this much of a finished pod's output (UTF-8 bytes)."""
SUMMARY_LINE_CHARS = 200
POD_EXITED = "pod_exited"
"""`last_error.code` of a pod that ended with a non-zero (or unrecorded) exit code."""
# Lines rkt and systemd-nspawn write into every pod's output whatever the app does
# (../shared/rkt: a host without an "rkt" group; nspawn's teardown where PID 1 is not
# systemd). The full output keeps them; the one-line summary skips them, so it shows
# the app's last words rather than the teardown's.
_ROUTINE_PREFIXES = (
    'run-prepared: group "rkt" not found',
    "stage1: warning: error setting journal ACLs",
    "Attempted to remove disk file system under",
)


def short_uuid(uuid: str) -> str:
    return uuid[:8]


# --- a finished pod: its exit code and the end of its output ------------------------


def _printable(char: str) -> str:
    # Control and format characters (ESC, NUL, bidi overrides, ...) are shown escaped:
    # the text goes to terminals and dashboards, never as raw bytes.
    if char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp"):
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def render_output(
    tail: bytes,
    *,
    truncated: bool = False,
    max_lines: int = OUTPUT_TAIL_LINES,
    max_bytes: int = OUTPUT_TAIL_BYTES,
) -> tuple[str, bool]:
    """Given the last bytes of a pod's output, return (text, truncated) for a document.

    The text is the last `max_lines` lines within `max_bytes` UTF-8 bytes: invalid UTF-8
    is replaced, CR/CRLF become newlines, control characters are escaped (`\\x1b`),
    trailing blank lines dropped. `truncated` (in and out) says earlier output is left
    out; a line cut by the reader's bound is dropped when a whole one follows it.
    """
    text = tail.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    lines = "".join(_printable(c) for c in text).split("\n")
    if truncated and len(lines) > 1:
        lines = lines[1:]  # starts wherever the reader's bound fell: likely mid-line
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) > max_lines:
        lines, truncated = lines[-max_lines:], True
    while len(lines) > 1 and len("\n".join(lines).encode()) > max_bytes:
        lines, truncated = lines[1:], True
    if lines and len(lines[0].encode()) > max_bytes:
        # One line longer than the bound: keep its end, where an error usually is.
        cut = lines[0].encode()[-max_bytes:].decode("utf-8", errors="ignore")
        lines, truncated = [cut], True
    return "\n".join(lines), truncated


def last_output_line(text: str) -> str:
    """Return the last line of `text` worth a one-line summary ("" if none), shortened."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_ROUTINE_PREFIXES)]
    line = (useful or lines or [""])[-1]
    return line if len(line) <= SUMMARY_LINE_CHARS else line[: SUMMARY_LINE_CHARS - 1] + "…"


def exit_code_note(termination: Termination) -> str | None:
    """Return why `termination` has no exit code, or None when it has one."""
    if termination.exit_code is not None:
        return None
    if not termination.started:
        return "no exit code: the pod exited without starting"
    stage1 = termination.stage1
    # An app that ran and ended without an exit status is fly's signature (FINDINGS 2:
    # fly records none); rkt's built-in default stage1 here is fly.
    if stage1 is None or "fly" in stage1.rsplit("/", 1)[-1]:
        return "exit code not recorded by the fly stage1"
    return "exit code not recorded by rkt"


def termination_failed(termination: Termination) -> bool:
    """True if the pod did not end with exit code 0 (an unrecorded code counts as failure)."""
    return termination.exit_code != 0


def early_exit_failed(termination: Termination, policy: RestartPolicy | None) -> bool:
    """True if a pod seen exiting within its settle window means a failed start.

    Only a pod that exited 0 under a restart policy that lets it finish (never,
    on-failure) did what it was meant to; a service (always) must not end at once.
    """
    return termination_failed(termination) or policy in (None, RestartPolicy.ALWAYS)


def termination_summary(termination: Termination) -> str:
    """One line: which pod ended, how, and its last words."""
    note = exit_code_note(termination)
    how = f"exited with code {termination.exit_code}" if note is None else f"exited ({note})"
    text = f"pod {short_uuid(termination.uuid)} {how}"
    if termination.exited_within_s is not None:
        text += f" within {termination.exited_within_s:g}s of its start"
    output, _ = render_output(termination.output.tail, truncated=termination.output.truncated)
    line = last_output_line(output)
    if line:
        text += f"; last output: {line}"
    elif termination.output.error:
        text += f"; {termination.output.error}"
    return text


def termination_doc(termination: Termination) -> dict[str, Any]:
    out = termination.output
    text, truncated = render_output(out.tail, truncated=out.truncated)
    return {
        "pod_uuid": termination.uuid,
        "spec_hash": termination.spec_hash,
        "exit_code": termination.exit_code,
        "exit_code_note": exit_code_note(termination),
        "message": termination_summary(termination).replace("\n", " "),
        "started_at": optional_iso(termination.started_at),
        "observed_at": iso(termination.observed_at),
        "exited_within_s": termination.exited_within_s,
        "output": text,
        "output_truncated": truncated,
        "log": out.location,
        "log_error": out.error,
    }
