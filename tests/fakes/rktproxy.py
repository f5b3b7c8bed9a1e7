"""A recording, fault-injecting proxy in front of a REAL rkt, so the judge gets the fake's tooling.

TEST DOUBLE, stdlib only; never imports rktctl. `python rktproxy.py REAL_RKT ARGS...` runs
`REAL_RKT ARGS...` as its child and exits with the child's code (or dies by the same
signal), forwarding SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to it. Around
that it does exactly two things the fake rkt does (fakerkt.py documents both formats):

- faults: before the call, the first matching rule of `<dir>/fake/faults.json` fires
  (`delay_s`, then `exit`/`stdout`/`stderr` replace the call; `app_exit` cannot be
  applied to a real pod and is refused);
- the call log: when the call ends, one line is appended to `<dir>/fake/calls.jsonl`
  (`argv`, `cmd`, `exit`, `t`, `dur`, `pid`; `uuid` for prepare, read from its stdout).

So a test that injects a fault or asserts on what rkt was asked to do runs unchanged on
the fake and on real rkt (tests/backends.py points rktctl at a one-line wrapper around
this file for real backends). rkt's own behaviour, output and exit codes pass through
untouched; the proxy costs one interpreter start per call.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = False
import fakerkt  # noqa: E402 - sys.path[0] is this file's directory

FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


def _subcommand(argv: list[str]) -> str | None:
    try:
        cmd, _used = fakerkt.resolve_command(argv)
    except fakerkt.UnknownCommand:
        return None
    return None if cmd is fakerkt.ROOT else cmd.path


def _run(real: str, argv: list[str], *, capture: bool) -> tuple[int, str]:
    """Run the real rkt; return its code (negative: killed by that signal) and, if
    `capture`, its stdout (already passed on to ours)."""
    child = subprocess.Popen(
        [real, *argv],
        stdout=subprocess.PIPE if capture else None,
        stdin=sys.stdin if not sys.stdin.closed else subprocess.DEVNULL,
    )
    for signum in FORWARDED:
        signal.signal(signum, lambda sig, _frame: child.send_signal(sig))
    out = ""
    if capture:
        assert child.stdout is not None
        raw = child.stdout.read()
        out = raw.decode(errors="replace")
        try:
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
        except BrokenPipeError:  # the caller died (kill -9 mid-call): still log the call
            pass
    while True:
        try:
            return child.wait(), out
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
            continue


def main(argv: list[str]) -> int:
    real, args = argv[0], argv[1:]
    data_dir = fakerkt._prescan_dir(args)
    cmd = _subcommand(args)
    started = time.time()
    code: int
    stdout = ""
    rule = fakerkt.take_fault(data_dir, cmd or "rkt", args)
    if rule is not None and "app_exit" in rule:
        sys.stderr.write("rktproxy: app_exit faults exist only in the fake rkt\n")
        code = 254
    elif rule is not None and any(k in rule for k in ("exit", "stdout", "stderr")):
        if rule.get("delay_s"):
            time.sleep(float(rule["delay_s"]))
        for key, stream in (("stdout", sys.stdout), ("stderr", sys.stderr)):
            text = rule.get(key)
            if text:
                stream.write(text if str(text).endswith("\n") else f"{text}\n")
        code = int(rule.get("exit", 0))
    else:
        if rule is not None and rule.get("delay_s"):
            time.sleep(float(rule["delay_s"]))
        # run/run-prepared stay in the foreground for the pod's life: their output goes
        # straight to the pod log; prepare's stdout is read for the UUID.
        code, stdout = _run(real, args, capture=cmd == "prepare")
    entry: dict[str, object] = {
        "argv": args,
        "cmd": cmd,
        "exit": code,
        "t": round(started, 6),
        "dur": round(time.time() - started, 6),
        "pid": os.getpid(),
    }
    uuids = [ln.strip() for ln in stdout.splitlines() if fakerkt.is_uuid(ln.strip())]
    if uuids:
        entry["uuid"] = uuids[-1]
    fakerkt.log_call(data_dir, entry)
    if code < 0:
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # these two have no handler
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
