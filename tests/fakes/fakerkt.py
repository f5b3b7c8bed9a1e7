"""A high-fidelity fake of rkt 1.30.0 (CLI, on-disk pod store, real processes) + test helpers.

TEST DOUBLE, stdlib only. `tests/fakes/rkt` is the executable (it only calls `main()`
here, so Python can cache this module's bytecode instead of compiling ~4000 lines on
every call). Tests import this module for the helper API at the bottom (`add_fault`,
`calls`, `crash_app`, ...). It must never import rktctl's `controller` package: it
mirrors real rkt (../shared/rkt/CONTRACT.md, FINDINGS.md, transcripts/; transcripts
win), not rktctl's idea of rkt.

Usage is real rkt's: `rkt [--dir=D] [--insecure-options=..] [--debug=..] [--local-config=..]
[--system-config=..] [--trust-keys-from-https] SUBCOMMAND ...`. Implemented: version,
list, status, prepare, run, run-prepared, stop, rm, gc, trust, fetch, cat-manifest,
enter, image {list,rm,gc,cat-manifest}, help, `--help`; cobra-style prefix matching of
subcommands; pflag-style flag errors (`Error: ...` on stderr, usage on stdout, 254).

State layout (real rkt's, so pod state is exactly "which dir + is it flock'ed"):
    <dir>/pods/{embryo,prepare,prepared,run,exited-garbage,garbage}/<uuid>/
        pod                         pod manifest JSON (rkt's format, compact)
        pod-created                 empty; its mtime is the creation time
        pid | ppid, pgid            written when the apps start, after the boot window
                                    (mtime = start time): the supervisor's pid, in `pid`
                                    with fly, in `ppid` with nspawn-based flavors, as rkt
        fake-supervisor             fake-only: the supervisor's pid from its first moment
        appsinfo/<app>/manifest     image manifest JSON; appsinfo/<app>/treeStoreID
        stage1/manifest             stage1 image manifest (its name picks the flavor)
        stage1/rootfs/rkt/status/<app>   the app's exit code (not with the fly flavor)
        net-info.json               fake CNI result (contained networks, non-fly only)
        fake.json                   fake-only: {"stage1", "flavor", "inherit_env"}
        fake-apps.json              fake-only: {"pgids": [...]} of the running apps
    <dir>/cas/fake-images/<id>.json image store (manifest, name, times, size, origin)
    <dir>/fake/calls.jsonl          call log (below)
    <dir>/fake/faults.json          fault rules (below); <dir>/fake/lock guards them
    <dir>/fake/crash/<uuid>         crash request for a running pod (see crash_app)
A pod dir in run/ is `running` while some process holds an exclusive flock on it and
`exited` otherwise; list/status only *try* a shared lock. `run`/`run-prepared` take
the lock and keep it for the pod's life, so when the supervisor dies for any reason
(even kill -9) the kernel drops the lock and the pod reads `exited`, as with real rkt.
Transitions are atomic renames between those directories; concurrent invocations are
safe (gc/rm take blocking exclusive locks before deleting, like rkt). `gc` is rkt's
two-step collection: it marks every exited pod and aborted prepare (the pod dir's
ctime becomes the mark time, shown as the apps' `finished_at`), then deletes marked
pods older than --grace-period and expires prepared pods older than
--expire-prepared; tests/contract/test_gc.py runs the same scenarios on real rkt.

Process model: `run`/`run-prepared` stay in the foreground as the pod's supervisor and
print nothing of their own on stdout. The supervisor forks each app: the app's exec
(`--exec` or the image's) plus the args after `--`, if that program exists on the host
(absolute path, or found on the app's PATH then the host's PATH); otherwise a
placeholder `sleep 2147483647`. The exception is a local .aci whose rootfs holds files:
a program missing from it fails as on real rkt (fly: `run: can't execute "P": no such
file or directory`, rkt exits 254, no exit code; systemd-like: `Error: Unable to open
"P": No such file or directory`, exit code 203 recorded). Boot window: the pod reads
`running` (the lock is held) while stage1 boots, before the pid file is written and the
apps start; `rkt stop` and `stop --force` then fail as real rkt's do (`error reading pid:
open ppid: no such file or directory`, exit 254). Its length is BOOT_S per flavor (host
0.2 s; real host takes 0.7-1 s) or a fault rule's `boot_s`. Apps inherit the
supervisor's stdout/stderr; stdin is /dev/null unless `--interactive`. Env: rkt's
defaults (PATH, HOME, USER, ...), then the host env with `--inherit-env`, then image env,
`--set-env-file`, `--set-env`, `--environment`. `--user/--group/--working-dir`,
isolators, volumes and mounts are recorded in the manifest but not applied (no
namespaces, chroot or cgroups), but a mounted `kind=host` volume whose source does not
exist is refused as stage1 refuses it (below). The pid file holds the supervisor's pid
(with fly it is the `rkt run` process itself).
Each app is the leader of its own process group (standing in for the container) with
PR_SET_PDEATHSIG=SIGKILL; the supervisor is a child subreaper and forks a small
watchdog that SIGKILLs the app groups if the supervisor itself is killed, so an app and
its children die with their pod and tests never leak processes (a real host-flavor pod
is orphaned instead: FINDINGS 4). SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2
are forwarded to the app groups; when the last app ends, whatever is left in the groups
is killed. `rkt stop` sends SIGTERM (SIGKILL with --force, which also hits the app
groups) to the pid in the pid file (none yet: the boot window error). Flavor, chosen
by the stage1 image name from --stage1-{name,path,url,from-dir} (default
stage1-coreos):
  * fly: no exit codes recorded; one app per pod; `kind=empty` volumes, image mount
    points without a volume and a missing host volume source (`run: stat of host path
    X: stat X: no such file or directory`) fail after the move to run/ (exit 254, pod
    left `exited`, never started); `--port` is accepted and ignored (the app shares the
    host's network); `--hostname` prints fly's warning on stdout; a stopped pod's
    `rkt run` dies by the signal (exit -15), as the app is the rkt process there.
  * systemd-like (coreos, host, kvm, src): exit codes are written to
    stage1/rootfs/rkt/status/<app> (a death by SIGTERM/SIGINT/SIGHUP/SIGPIPE counts as
    0 like systemd's clean-exit signals, transcripts 145/186; any other signal N is
    recorded as 128+N); mount points without a volume get an implicit empty volume
    (stage1 warning); the pod ends when all its apps have ended and `rkt run` exits
    with the first non-zero app code; after a graceful stop the apps get SIGKILL 10 s
    after SIGTERM; contained networks (`--net` other than host/none) get a fake
    net-info.json (default: 172.16.28.x) shown in list/status, and each `--port` whose
    name a TCP port of the image declares is forwarded: a forwarder process listens on
    the host port and connects to 127.0.0.1:<app port> (the apps share the host's
    network). A missing host volume source fails after the boot window, as
    systemd-nspawn does: the pod has a pid and a start time, stderr says `Failed to
    stat X: No such file or directory`, `rkt run` exits 1, no exit code is recorded.

Faults, read on every call from <dir>/fake/faults.json: a JSON list of rules, checked
in order under <dir>/fake/lock; the first rule that matches the call fires:
    {"cmd": "prepare", "match": "web", "exit": 254, "stderr": "prepare: boom", "times": 1}
    {"cmd": "list", "delay_s": 5}                      # hang first (timeouts), then run
    {"cmd": "list", "stdout": "not json", "exit": 0}   # garbage output
    {"cmd": "run-prepared", "match": "<uuid>", "app_exit": 3, "after_s": 0.5}
  cmd      resolved subcommand ("list", "run-prepared", "image list", ...) or "*".
  match    optional substring of the space-joined argv (argv without the program).
  skip     optional N: the first N matching calls pass untouched (and count down).
  times    optional N: fire N times, then the rule is spent (absent: forever).
  delay_s  sleep this long before anything else.
  exit / stdout / stderr   any of them replaces the command: print stdout and stderr
           (a newline is added when missing, like rkt's logger) and exit with `exit`
           (default 0). Without them the real command runs (after `delay_s`).
  app_exit, after_s   run/run-prepared: run normally, but after `after_s` seconds
           (default 0) SIGKILL the app(s) and record/return `app_exit` as their code.
  boot_s   run/run-prepared: run normally, with a boot window of this many seconds
           (any flavor), e.g. {"cmd": "run-prepared", "boot_s": 2, "times": 1}.
Crash a running pod's app now: write the code into <dir>/fake/crash/<uuid>
(`crash_app()`); the supervisor polls it every 0.1 s, kills the app(s), records that
code (non-fly) and exits with it.

Call log: every invocation appends one line to <dir>/fake/calls.jsonl when it ends:
    {"argv": [...args after the program...], "cmd": "run-prepared", "exit": 0,
     "t": <start, epoch seconds>, "dur": <seconds>, "pid": <pid>}
("uuid" too for prepare/run/run-prepared). A supervisor's line appears when its pod
ends; a call killed by a signal it does not handle has no line. Nothing is logged when
<dir> does not exist.

Known differences from real rkt 1.30 (honest list):
  * No root check: run/prepare/run-prepared/gc/rm/enter work as any user (real rkt:
    `<cmd>: cannot run as unprivileged user`, 254).
  * No network, no signature checks: image names, docker:// and http(s):// refs are
    "fetched" by synthesizing an image (exec `/fake-rkt/bin/<app>`, which does not
    exist, so the app is the placeholder sleep). docker:// still needs
    --insecure-options=image, a local .aci still needs it or a `.asc`/--signature file
    (its content is not verified). Stage1 images are not put in the store.
  * Apps are host processes (see above): a program missing from the image is modelled
    only for local .aci images with a non-empty rootfs (synthesized and manifest-only
    images have none to look in: a program not on the host runs the placeholder);
    host-flavor console lines are not prefixed with journal timestamps; `rkt enter`
    runs the command on the host with the app's environment. `--wait-ready` never
    becomes ready (fly behaviour; host rarely does).
  * `status` prints `app-<name>=` lines in manifest order (real: random map order);
    `--set-env`/`--set-env-file` keep flag/file order (real: random).
  * --debug prints error chains only for UUID lookups.
  * api-service, completion, config, export, metadata-service and image
    export/extract/render/verify exist for prefix matching only: `<cmd>: not
    implemented by the fake rkt`, 254.
  * No paths.d: the data dir is `--dir` or /var/lib/rkt (real rkt also reads `data`
    from `<system-config>/paths.d` and `<local-config>/paths.d`, and `rkt config`
    prints it; rktctl asks `rkt config` only when no `rkt_dir` is configured).
  * `trust` does no discovery: the key location is https://<prefix host>/pubkeys.gpg,
    the fingerprint is sha1 of that location (or of the key file's bytes); the stored
    key file holds a placeholder text. Errors and messages follow pubkey.go.
  * The default stage1 is stage1-coreos (distro builds differ: the transcripts' host
    defaulted to fly). `--no-overlay`, `--private-users`, `--mds-register`, `--ipc` and
    the DNS/hosts flags are validated where rkt validates them, then ignored.
    `--pod-manifest` is stored as given; its apps' images are looked up by id.
  * A few rarely hit messages were not seen in a transcript or in rkt's source and are
    best guesses: bad `--pull-policy`/`--ipc` values, unknown capabilities or seccomp
    modes, `image rm/gc/cat-manifest` lookups, `enter` of a missing command.
  * After every rename into exited-garbage/garbage the fake also chmods the pod dir,
    so its ctime (gc's mark time) is right on filesystems whose rename keeps ctime.
  * Boot window: only the host flavor has one by default, shorter than real (0.2 s vs
    0.7-1 s; real coreos/kvm boot too, fly's is ~40 ms). A `rkt stop` just after the
    window can be lost on a real host pod (its systemd is still starting: the pod
    keeps running, `stop --force` ends it); the fake always delivers it.
  * Ports: `prepare` does not check `--port` names against the images (real:
    `port name "X" could not be found in any apps`, 254); the forwarder binds the host
    port (real rkt DNATs with iptables and binds nothing) and forwards TCP only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sys
import time

RKT_VERSION = "1.30.0"
APPC_VERSION = "0.8.11"
GO_VERSION = "go1.19.8"
DEFAULT_DIR = "/var/lib/rkt"
DEFAULT_STAGE1 = "coreos.com/rkt/stage1-coreos:" + RKT_VERSION
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PLACEHOLDER_SECONDS = "2147483647"
STOP_ESCALATE_S = 10.0
SUPERVISOR_POLL_S = 0.1
# How long a pod of each flavor reads `running` before stage1 writes its pid file and
# starts the apps: the boot window, in which `rkt stop` fails (FINDINGS: host 0.7-1 s
# while systemd boots inside nspawn; fly ~40 ms). Shorter here to keep the fast loop
# fast; the default (coreos) flavor has none, so tests opt in with a `boot_s` rule.
BOOT_S = {"host": 0.2}

STATE_DIRS = ("embryo", "prepare", "prepared", "run", "exited-garbage", "garbage")
LISTED_DIRS = ("prepare", "prepared", "run", "exited-garbage")
# dir -> (state when exclusively locked, state when not)
DIR_STATES = {
    "embryo": ("embryo", "embryo"),
    "prepare": ("preparing", "aborted prepare"),
    "prepared": ("prepared", "prepared"),
    "run": ("running", "exited"),
    "exited-garbage": ("exited deleting", "exited garbage"),
    "garbage": ("deleting", "garbage"),
}
AFTER_RUN = frozenset({"exited", "exited garbage", "exited deleting", "deleting", "garbage"})
NO_MANIFEST = frozenset({"preparing", "aborted prepare", "deleting"})
INSECURE_WORDS = (
    "none",
    "image",
    "tls",
    "ondisk",
    "http",
    "pubkey",
    "capabilities",
    "paths",
    "seccomp",
    "all-fetch",
    "all-run",
    "all",
)
INSECURE_GROUPS = {
    "all-fetch": ("image", "tls", "http", "pubkey"),
    "all-run": ("capabilities", "paths", "seccomp"),
    "all": ("image", "tls", "http", "pubkey", "capabilities", "paths", "seccomp"),
}
# systemd counts a death by these signals as a clean exit (ExecMainStatus 0 in rkt).
CLEAN_SIGNALS = frozenset({1, 2, 13, 15})


# --------------------------------------------------------------------------------------
# Process-wide output, errors and exit


class Exit(Exception):
    """Unwind to main() and exit with `code` (output has already been written)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class RktError(Exception):
    """An error chain, outermost message first (rkt prints only the innermost one)."""

    def __init__(self, *chain: str) -> None:
        super().__init__(chain[-1])
        self.chain = chain

    @property
    def inner(self) -> str:
        return self.chain[-1]


class Out:
    """rkt's two loggers: stdout without prefix, stderr with `<subcommand>: `."""

    prefix = "rkt"
    debug = False

    @staticmethod
    def out(text: str = "") -> None:
        # Go's log package adds a newline only when the text lacks one.
        sys.stdout.write(text if text.endswith("\n") else text + "\n")

    @classmethod
    def err(cls, text: str) -> None:
        line = f"{cls.prefix}: {text}"
        sys.stderr.write(line if line.endswith("\n") else line + "\n")

    @classmethod
    def err_e(cls, context: str, error: RktError | str) -> None:
        """stderr.PrintE: `context: innermost`, or the whole chain as a tree with --debug."""
        chain = error.chain if isinstance(error, RktError) else (error,)
        if cls.debug and len(chain) > 1:
            lines = [f"{cls.prefix}: {context}"]
            lines += ["  " * (i + 1) + "└─" + msg for i, msg in enumerate(chain)]
            sys.stderr.write("\n".join(lines) + "\n")
        else:
            cls.err(f"{context}: {chain[-1]}")


def fail(context: str, error: RktError | str, code: int = 254) -> Exit:
    Out.err_e(context, error)
    return Exit(code)


def os_error(op: str, exc: OSError, path: str | None = None) -> str:
    """Format an OSError like Go's *PathError: `open /x: no such file or directory`."""
    target = path if path is not None else (exc.filename or "")
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return f"{op} {target}: {reason}"


def go_quote(text: str) -> str:
    """Go's %q for the strings rkt quotes (UUIDs, paths, names)."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# --------------------------------------------------------------------------------------
# Formatting primitives (CONTRACT §3)


def go_json(value: object, pretty: bool = False) -> str:
    """Encode like Go's encoding/json: compact or tab-indented, HTML characters escaped."""
    if pretty:
        text = json.dumps(value, ensure_ascii=False, indent="\t")
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # These characters only occur inside JSON strings, so a plain replace is safe.
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, esc)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def tabwrite(text: str) -> str:
    """Go text/tabwriter (minwidth 0, tabwidth 8, padding 1, padchar '\\t', flags 0)."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    _tab_format(lines, [], 0, len(lines), out)
    return "".join(out)


def _tab_format(
    lines: list[list[str]], widths: list[int], line0: int, line1: int, out: list[str]
) -> None:
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        # A column block starts here: lines that have a tab-terminated cell in `column`.
        _tab_write_lines(lines, widths, line0, this, out)
        line0 = this
        width = 0
        while this < line1 and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + 1)
            this += 1
        widths.append(width)
        _tab_format(lines, widths, line0, this, out)
        widths.pop()
        line0 = this
    _tab_write_lines(lines, widths, line0, line1, out)


def _tab_write_lines(
    lines: list[list[str]], widths: list[int], line0: int, line1: int, out: list[str]
) -> None:
    for i in range(line0, line1):
        for j, cell in enumerate(lines[i]):
            out.append(cell)
            if j < len(widths):
                cellw = -(-widths[j] // 8) * 8
                out.append("\t" * -(-(cellw - len(cell)) // 8))
        if i + 1 < len(lines):
            out.append("\n")


def fmt_time(ns: int | None) -> str:
    """Go layout `2006-01-02 15:04:05.999 -0700 MST` in local time; None is Go's zero time."""
    if ns is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    secs, rem = divmod(ns, 1_000_000_000)
    tm = time.localtime(secs)
    millis = f"{rem // 1_000_000:03d}".rstrip("0")
    frac = f".{millis}" if millis else ""
    off = tm.tm_gmtoff or 0
    sign = "-" if off < 0 else "+"
    off = abs(off)
    zone = tm.tm_zone or "UTC"
    base = time.strftime("%Y-%m-%d %H:%M:%S", tm)
    return f"{base}{frac} {sign}{off // 3600:02d}{off % 3600 // 60:02d} {zone}"


_SECOND = 1_000_000_000
_DAY = 24 * 3600 * _SECOND
_WEEK = 7 * _DAY
_MONTH = 30 * _DAY
_YEAR = 12 * _MONTH
# go-humanize's defaultMagnitudes: (upper bound, format, divisor)
_MAGNITUDES = (
    (_SECOND, "now", 1),
    (2 * _SECOND, "1 second %s", 1),
    (60 * _SECOND, "%d seconds %s", _SECOND),
    (120 * _SECOND, "1 minute %s", 1),
    (3600 * _SECOND, "%d minutes %s", 60 * _SECOND),
    (7200 * _SECOND, "1 hour %s", 1),
    (_DAY, "%d hours %s", 3600 * _SECOND),
    (2 * _DAY, "1 day %s", 1),
    (_WEEK, "%d days %s", _DAY),
    (2 * _WEEK, "1 week %s", 1),
    (_MONTH, "%d weeks %s", _WEEK),
    (2 * _MONTH, "1 month %s", 1),
    (_YEAR, "%d months %s", _MONTH),
    (18 * _MONTH, "1 year %s", 1),
    (2 * _YEAR, "2 years %s", 1),
    (37 * _YEAR, "%d years %s", _YEAR),
)


def humanize(ns: int | None, now_ns: int | None = None) -> str:
    """go-humanize Time(): `now`, `3 seconds ago`, ..., `a long while ago` (zero time)."""
    if ns is None:
        return "a long while ago"
    now_ns = time.time_ns() if now_ns is None else now_ns
    label, diff = ("ago", now_ns - ns) if ns <= now_ns else ("from now", ns - now_ns)
    for bound, fmt, div in _MAGNITUDES:
        if bound > diff:
            if "%d" in fmt:
                return fmt % (diff // div, label)
            return fmt % label if "%s" in fmt else fmt
    return f"a long while {label}"


def ibytes(size: int) -> str:
    """go-humanize IBytes as vendored by rkt: `5B`, `1.9MiB`, `143MiB` (no space)."""
    if size < 10:
        return f"{size}B"
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    exp = 0
    while size >= 1024 ** (exp + 1) and exp < len(units) - 1:
        exp += 1
    val = int(size / 1024**exp * 10 + 0.5) / 10
    return f"{val:.1f}{units[exp]}" if val < 10 else f"{val:.0f}{units[exp]}"


_DURATION_UNITS = {
    "ns": 1,
    "us": 1000,
    "µs": 1000,
    "μs": 1000,
    "ms": 1_000_000,
    "s": _SECOND,
    "m": 60 * _SECOND,
    "h": 3600 * _SECOND,
}


def parse_go_duration(text: str) -> int:
    """time.ParseDuration -> nanoseconds; ValueError carries Go's message."""
    orig = text
    invalid = ValueError(f"time: invalid duration {go_quote(orig)}")
    neg = False
    if text[:1] in ("-", "+"):
        neg = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise invalid
    total = 0
    while text:
        if not (text[0] == "." or text[0].isdigit()):
            raise invalid
        i = 0
        while i < len(text) and text[i].isdigit():
            i += 1
        whole, text = text[:i], text[i:]
        frac = ""
        if text.startswith("."):
            j = 1
            while j < len(text) and text[j].isdigit():
                j += 1
            frac, text = text[1:j], text[j:]
        if not whole and not frac:
            raise invalid
        k = 0
        while k < len(text) and text[k] != "." and not text[k].isdigit():
            k += 1
        if k == 0:
            raise ValueError(f"time: missing unit in duration {go_quote(orig)}")
        unit, text = text[:k], text[k:]
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(orig)}")
        scale = _DURATION_UNITS[unit]
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // 10 ** len(frac)
        total += value
        if total > (1 << 63) - 1:
            raise invalid
    return -total if neg else total


def fmt_go_duration(ns: int) -> str:
    """time.Duration.String(): `0s`, `1.5ms`, `30m0s`, `24h0m0s`, `1h2m3.5s`."""
    neg, u = ns < 0, abs(ns)

    def frac(value: int, prec: int) -> tuple[int, str]:
        whole, rest = divmod(value, 10**prec)
        digits = f"{rest:0{prec}d}".rstrip("0") if prec else ""
        return whole, ("." + digits if digits else "")

    if u < _SECOND:
        if u == 0:
            return "0s"
        if u < 1000:
            whole, dec, unit = u, "", "ns"
        elif u < 1_000_000:
            whole, dec = frac(u, 3)
            unit = "µs"
        else:
            whole, dec = frac(u, 6)
            unit = "ms"
        text = f"{whole}{dec}{unit}"
    else:
        secs, dec = frac(u, 9)
        hours, minutes, seconds = secs // 3600, secs // 60 % 60, secs % 60
        if hours:
            text = f"{hours}h{minutes}m{seconds}{dec}s"
        elif secs >= 60:
            text = f"{minutes}m{seconds}{dec}s"
        else:
            text = f"{seconds}{dec}s"
    return "-" + text if neg else text


def parse_go_bool(text: str) -> bool:
    """strconv.ParseBool; ValueError carries Go's message."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"strconv.ParseBool: parsing {go_quote(text)}: invalid syntax")


def new_uuid() -> str:
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def is_uuid(text: str) -> bool:
    parts = text.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(
        c in "0123456789abcdef" for c in text.replace("-", "")
    )


def sanitize_ac_name(text: str) -> str:
    """appc types.SanitizeACName: lower-case, invalid chars to '-', trim edge dashes."""
    text = "".join(c if c in "abcdefghijklmnopqrstuvwxyz0123456789-" else "-" for c in text.lower())
    return text.strip("-")


def check_ac_name(text: str) -> str | None:
    """appc types.NewACName validation; returns the error message or None."""
    if not text:
        return "ACName cannot be empty"
    if any(c not in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in text):
        return 'ACName must contain only lower case alphanumeric characters plus "-"'
    if text[0] == "-" or text[-1] == "-":
        return "ACName must start and end with only lower case alphanumeric characters"
    return None


def atomic_write(path: str, data: str | bytes, mode: int = 0o644) -> None:
    """Write via a temp file in the same directory and rename: readers never see a part."""
    tmp = f"{path}.tmp{os.getpid()}"
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return None


def read_json(path: str) -> object:
    text = read_text(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


# --------------------------------------------------------------------------------------
# Flags (pflag semantics as vendored by rkt) and the command table (cobra semantics)


class FlagError(Exception):
    """A cobra-level error: `Error: <msg>` on stderr, the usage on stdout, exit 254."""


class Flag:
    __slots__ = ("apply", "default", "deprecated", "hidden", "kind", "name", "noopt", "usage")

    def __init__(
        self,
        name: str,
        kind: str,
        default: str,
        usage: str,
        apply=None,
        noopt: str | None = None,
        hidden: bool = False,
        deprecated: str | None = None,
    ) -> None:
        self.name = name
        self.kind = kind  # bool | string | value | duration (help display and parsing)
        self.default = default
        self.usage = usage
        self.apply = apply
        self.noopt = "true" if kind == "bool" and noopt is None else noopt
        self.hidden = hidden or deprecated is not None
        self.deprecated = deprecated

    def help_line(self) -> str:
        shown = go_quote(self.default) if self.kind == "string" else self.default
        value = f"[={shown}]" if self.noopt is not None else f"={shown}"
        return f"      --{self.name}{value}\t{self.usage}\n"


class Ctx:
    """Everything one invocation parsed: flag values, apps, the resolved command."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.opts: dict[str, object] = {}
        self.changed: set[str] = set()
        self.apps: list[App] = []
        self.global_mounts: list[dict] = []
        self.volumes: list[dict] = []
        self.cmd: Cmd | None = None
        self.app_fault: tuple[int, float] | None = None
        self.boot_s: float | None = None
        self.uuid: str | None = None

    def opt(self, name: str) -> object:
        return self.opts.get(name)

    @property
    def data_dir(self) -> str:
        return str(self.opts.get("dir") or DEFAULT_DIR)

    @property
    def insecure(self) -> set[str]:
        value = self.opts.get("insecure-options")
        return value if isinstance(value, set) else set()


def _store(ctx: Ctx, flag: Flag, value: str) -> None:
    if flag.kind == "bool":
        ctx.opts[flag.name] = parse_go_bool(value)
    elif flag.kind == "duration":
        ctx.opts[flag.name] = parse_go_duration(value)
    else:
        ctx.opts[flag.name] = value


def _append(ctx: Ctx, flag: Flag, value: str) -> None:
    existing = ctx.opts.get(flag.name)
    ctx.opts[flag.name] = [*existing, value] if isinstance(existing, list) else [value]


def parse_flags(ctx: Ctx, args: list[str], flags: dict[str, Flag], interspersed: bool) -> list[str]:
    """pflag FlagSet.Parse: set flags, return the remaining (positional) arguments."""
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if len(arg) < 2 or arg[0] != "-":
            rest.append(arg)
            if not interspersed:
                return rest + args[i:]
            continue
        if arg == "--":
            return rest + args[i:]
        if arg[1] == "-":
            name = arg[2:]
            if not name or name[0] in "-=":
                raise FlagError(f"bad flag syntax: {arg}")
            name, eq, value = name.partition("=")
            flag = flags.get(name)
            if flag is None:
                raise FlagError(f"unknown flag: --{name}")
            if not eq:
                if flag.noopt is not None:
                    value = flag.noopt
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    raise FlagError(f"flag needs an argument: {arg}")
            _set_flag(ctx, flag, value, arg)
        else:
            for pos, short in enumerate(arg[1:]):
                if short != "h":
                    raise FlagError(f"unknown shorthand flag: '{short}' in -{arg[1 + pos :]}")
                ctx.opts["help"] = True
    return rest


def _set_flag(ctx: Ctx, flag: Flag, value: str, token: str) -> None:
    try:
        (flag.apply or _store)(ctx, flag, value)
    except ValueError as exc:
        raise FlagError(f"invalid argument {go_quote(value)} for {token}: {exc}") from None
    ctx.changed.add(flag.name)
    if flag.deprecated:
        sys.stderr.write(f"Flag --{flag.name} has been deprecated, {flag.deprecated}\n")


def _set_absdir(ctx: Ctx, flag: Flag, value: str) -> None:
    if value == "":
        raise ValueError('"" is not a valid directory')
    ctx.opts[flag.name] = os.path.abspath(value)


def _set_insecure(ctx: Ctx, flag: Flag, value: str) -> None:
    words: set[str] = set()
    seen: set[str] = set()
    for word in value.lower().split(","):
        if word not in INSECURE_WORDS:
            raise ValueError(f"unknown option {go_quote(word)}")
        if word in seen:
            raise ValueError(f"duplicated option {go_quote(word)}")
        seen.add(word)
        words.update(INSECURE_GROUPS.get(word, (word,)))
    words.discard("none")
    words.discard("ondisk")
    ctx.opts[flag.name] = words


def _set_format(ctx: Ctx, flag: Flag, value: str) -> None:
    if value not in ("", "json", "json-pretty"):
        raise ValueError(f"Invalid format option: {value}")
    ctx.opts[flag.name] = value


def _set_kv_map(ctx: Ctx, flag: Flag, value: str) -> None:
    key, eq, val = value.partition("=")
    if not eq:
        raise ValueError("must be specified as key=value")
    pairs = ctx.opts.setdefault(flag.name, [])
    assert isinstance(pairs, list)
    if any(k == key for k, _ in pairs):
        raise ValueError(f"key {go_quote(key)} already set")
    pairs.append((key, val))


def _set_env_file(ctx: Ctx, flag: Flag, value: str) -> None:
    try:
        with open(value, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise ValueError(os_error("open", exc, value)) from None
    pairs = ctx.opts.setdefault(flag.name, [])
    assert isinstance(pairs, list)
    for line in lines:
        if not line or line.startswith(("#", ";")):
            continue
        key, eq, val = line.partition("=")
        if not eq or not key:
            raise ValueError(
                f"environment variable must be specified as name=value (file {go_quote(value)})"
            )
        if any(k == key for k, _ in pairs):
            raise ValueError(
                f"environment variable {go_quote(key)} already set (file {go_quote(value)})"
            )
        pairs.append((key, val))


def _set_port(ctx: Ctx, flag: Flag, value: str) -> None:
    parts = value.split(":", 2)
    if len(parts) < 2:
        raise ValueError(f"{go_quote(value)} is not in name:[ip:]port format")
    if check_ac_name(parts[0]):
        raise ValueError(f"{go_quote(parts[0])} is not a valid port name")
    port_str, host_ip = parts[1], None
    if len(parts) == 3:
        port_str, host_ip = parts[2], parts[1]
        if not _is_ip(host_ip):
            raise ValueError(f"{go_quote(parts[1])} is not a valid IP")
    if not port_str.isdigit() or int(port_str) > 65535:
        # rkt's message quotes parts[1] even in the ip:port form (a bug kept as is).
        raise ValueError(f"{go_quote(parts[1])} is not a valid port number")
    port: dict[str, object] = {"name": parts[0], "hostPort": int(port_str)}
    if host_ip:
        port["hostIP"] = host_ip
    _append_obj(ctx, flag.name, port)


def _append_obj(ctx: Ctx, name: str, obj: object) -> None:
    items = ctx.opts.setdefault(name, [])
    assert isinstance(items, list)
    items.append(obj)


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _set_net(ctx: Ctx, flag: Flag, value: str) -> None:
    nets = ctx.opts.get(flag.name)
    nets = list(nets) if isinstance(nets, list) and flag.name in ctx.changed else []
    for item in value.split(","):
        name, _, args = item.partition(":")
        if not name:
            raise ValueError("netname must not be empty")
        if any(n == name for n, _ in nets):
            raise ValueError(f"found duplicate netname {go_quote(name)}")
        if args and name in ("host", "none"):
            raise ValueError(f"arguments are not supported by special netname {go_quote(name)}")
        nets.append((name, args))
    ctx.opts[flag.name] = nets


def _set_volume(ctx: Ctx, flag: Flag, value: str) -> None:
    try:
        ctx.volumes.append(parse_volume(value))
    except ValueError as exc:
        raise ValueError(f"invalid value in --volume flag {go_quote(value)}: {exc}") from None


def parse_volume(value: str) -> dict:
    """appc types.VolumeFromString (`name,kind=host,source=/x,readOnly=true`)."""
    text = "name=" + value
    params: dict[str, str] = {}
    for part in text.split(","):
        key, eq, val = part.partition("=")
        if not eq:
            raise ValueError(
                f"malformed string {go_quote(text)} - has a label without a value: {key}"
            )
        if key in params:
            raise ValueError(f"label {key} with multiple values {go_quote(params[key])}")
        params[key] = val
    vol: dict[str, object] = {}
    for key, val in params.items():
        if key == "name":
            err = check_ac_name(val)
            if err:
                raise ValueError(err)
        elif key in ("readOnly", "recursive"):
            parse_go_bool(val)
        elif key in ("uid", "gid"):
            if not val.lstrip("-").isdigit():
                raise ValueError(f"strconv.Atoi: parsing {go_quote(val)}: invalid syntax")
        elif key not in ("kind", "source", "mode"):
            raise ValueError(f"unknown volume parameter {go_quote(key)}")
    kind = params.get("kind", "")
    if kind == "empty":
        params.setdefault("mode", "0755")
        params.setdefault("uid", "0")
        params.setdefault("gid", "0")
        if params.get("source"):
            raise ValueError("source for empty volume must be empty")
    elif kind == "host":
        source = params.get("source", "")
        if not source:
            raise ValueError("source for host volume cannot be empty")
        if any(k in params for k in ("mode", "uid", "gid")):
            raise ValueError("mode, uid and gid for host volume cannot be set")
        if not source.startswith("/"):
            raise ValueError("source for host volume must be absolute path")
    else:
        raise ValueError('unrecognized volume kind: should be one of "empty", "host"')
    vol["name"] = params["name"]
    vol["kind"] = kind
    if params.get("source"):
        vol["source"] = params["source"]
    for key in ("readOnly", "recursive"):
        if key in params:
            vol[key] = parse_go_bool(params[key])
    if "mode" in params:
        vol["mode"] = params["mode"]
    for key in ("uid", "gid"):
        if key in params:
            vol[key] = int(params[key])
    return vol


def parse_query(text: str) -> dict[str, list[str]]:
    """Go url.ParseQuery on rkt's comma-separated `k=v` lists (values URL-unescaped)."""
    from urllib.parse import unquote_plus

    result: dict[str, list[str]] = {}
    for part in text.split(","):
        if not part:
            continue
        if ";" in part:
            raise ValueError("invalid semicolon separator in query")
        key, _, val = part.partition("=")
        result.setdefault(unquote_plus(key), []).append(unquote_plus(val))
    return result


def _set_mount(ctx: Ctx, flag: Flag, value: str) -> None:
    mount: dict[str, str] = {}
    for key, vals in parse_query(value).items():
        if len(vals) > 1:
            raise ValueError(f"label {key} with multiple values {go_quote(str(vals))}")
        if key == "volume":
            err = check_ac_name(vals[0])
            if err:
                bad = go_quote(vals[0])
                raise ValueError(
                    f"invalid volume name {bad} in --mount flag {go_quote(value)}: {err}"
                )
            mount["volume"] = vals[0]
        elif key == "target":
            mount["path"] = vals[0]
        else:
            raise ValueError(f"unknown mount parameter {go_quote(key)}")
    ordered = {"volume": mount.get("volume", ""), "path": mount.get("path", "")}
    if ctx.apps:
        ctx.apps[-1].mounts.append(ordered)
    else:
        ctx.global_mounts.append(ordered)


def _set_stage1(ctx: Ctx, flag: Flag, value: str) -> None:
    current = ctx.opts.get("stage1")
    if isinstance(current, tuple):
        if current[0] == flag.name:
            raise ValueError(f"--{current[0]} already used")
        raise ValueError(f"flags --{flag.name} and --{current[0]} are mutually exclusive")
    ctx.opts["stage1"] = (flag.name, value)


def _set_pull_policy(ctx: Ctx, flag: Flag, value: str) -> None:
    ctx.opts[flag.name] = value


def _set_wait(ctx: Ctx, flag: Flag, value: str) -> None:
    ctx.opts[flag.name] = value  # validated by status itself (usage + 254 when bad)


# ---- per-app flags: each applies to the image right before it


class App:
    """One image on the command line and the app flags that followed it."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.name: str | None = None
        self.exec: str | None = None
        self.args: list[str] | None = None
        self.user: str | None = None
        self.group: str | None = None
        self.supp_gids: list[int] | None = None
        self.working_dir: str | None = None
        self.readonly_rootfs: bool | None = None
        self.mounts: list[dict] = []
        self.env: list[tuple[str, str]] = []
        self.user_annotations: dict[str, str] = {}
        self.user_labels: dict[str, str] = {}
        self.annotations: list[dict] = []
        self.isolators: list[dict] = []
        self.signature: str | None = None


def _last_app(ctx: Ctx, flag: Flag) -> App:
    if not ctx.apps:
        raise ValueError(f"--{flag.name} must follow an image")
    return ctx.apps[-1]


def _pair(value: str, what: str) -> tuple[str, str]:
    key, eq, val = value.partition("=")
    if not eq:
        raise ValueError(f"{what} must be of the format key=value")
    return key, val


def _app_exec(ctx: Ctx, flag: Flag, value: str) -> None:
    app = _last_app(ctx, flag)
    if app.exec is not None:
        raise ValueError("--exec specified multiple times for the same image")
    app.exec = value


def _app_signature(ctx: Ctx, flag: Flag, value: str) -> None:
    app = _last_app(ctx, flag)
    if app.signature is not None:
        raise ValueError("--signature specified multiple times for the same image")
    app.signature = value


def _app_name(ctx: Ctx, flag: Flag, value: str) -> None:
    app = _last_app(ctx, flag)
    err = check_ac_name(value)
    if err:
        raise ValueError(err)
    app.name = value


def _app_str(attr: str):
    def setter(ctx: Ctx, flag: Flag, value: str) -> None:
        setattr(_last_app(ctx, flag), attr, value)

    return setter


def _app_readonly(ctx: Ctx, flag: Flag, value: str) -> None:
    _last_app(ctx, flag).readonly_rootfs = parse_go_bool(value)


def _app_gids(ctx: Ctx, flag: Flag, value: str) -> None:
    app = _last_app(ctx, flag)
    gids = []
    for item in value.split(","):
        if not item.lstrip("-").isdigit():
            raise ValueError(f"strconv.Atoi: parsing {go_quote(item)}: invalid syntax")
        gids.append(int(item))
    app.supp_gids = gids


def _app_env(ctx: Ctx, flag: Flag, value: str) -> None:
    app = _last_app(ctx, flag)
    key, val = _pair(value, "--environment")
    app.env = [(k, v) for k, v in app.env if k != key] + [(key, val)]


def _app_user_annotation(ctx: Ctx, flag: Flag, value: str) -> None:
    key, val = _pair(value, "--user-annotation")
    _last_app(ctx, flag).user_annotations[key] = val


def _app_user_label(ctx: Ctx, flag: Flag, value: str) -> None:
    key, val = _pair(value, "--user-label")
    _last_app(ctx, flag).user_labels[key] = val


def _app_annotation(ctx: Ctx, flag: Flag, value: str) -> None:
    app = _last_app(ctx, flag)
    key, val = _pair(value, "--annotation")
    if not key or any(c.isupper() or c.isspace() for c in key):
        raise ValueError(f"invalid annotation name {go_quote(key)}")
    app.annotations = [a for a in app.annotations if a["name"] != key]
    app.annotations.append({"name": key, "value": val})


def _set_isolator(app: App, name: str, value: object) -> None:
    app.isolators = [i for i in app.isolators if i["name"] != name]
    app.isolators.append({"name": name, "value": value})


_QUANTITY_SUFFIX = {
    "": 1,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY_ERR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def parse_quantity(text: str) -> tuple[int, int]:
    """Kubernetes resource.Quantity -> (numerator, denominator) in base units."""
    i = 0
    while i < len(text) and (text[i].isdigit() or text[i] in ".+-"):
        i += 1
    number, suffix = text[:i], text[i:]
    if not number or number.count(".") > 1 or number.strip("+-") in ("", "."):
        raise ValueError(_QUANTITY_ERR)
    whole, _, dec = number.lstrip("+").partition(".")
    if whole.startswith("-"):
        raise ValueError(_QUANTITY_ERR)
    digits = int((whole or "0") + dec)
    denom = 10 ** len(dec)
    if suffix in ("m", "u", "n"):
        denom *= {"m": 10**3, "u": 10**6, "n": 10**9}[suffix]
        return digits, denom
    if suffix not in _QUANTITY_SUFFIX:
        raise ValueError(_QUANTITY_ERR)
    return digits * _QUANTITY_SUFFIX[suffix], denom


def _app_memory(ctx: Ctx, flag: Flag, value: str) -> None:
    app = _last_app(ctx, flag)
    num, den = parse_quantity(value)
    limit = -(-num // den)
    if limit < 4096:
        raise ValueError(
            f"memory limit of {limit} bytes too low. Try a reasonable value, such as --memory=16M"
        )
    _set_isolator(app, "resource/memory", {"request": value, "limit": value})


def _app_cpu(ctx: Ctx, flag: Flag, value: str) -> None:
    app = _last_app(ctx, flag)
    parse_quantity(value)
    _set_isolator(app, "resource/cpu", {"request": value, "limit": value})


def _app_int_isolator(name: str, low: int | None = None, high: int | None = None):
    def setter(ctx: Ctx, flag: Flag, value: str) -> None:
        app = _last_app(ctx, flag)
        if not value.lstrip("-").isdigit():
            raise ValueError(f"strconv.Atoi: parsing {go_quote(value)}: invalid syntax")
        number = int(value)
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError(f"{name} value {number} out of range")
        _set_isolator(app, name, number)

    return setter


def _app_caps(name: str):
    def setter(ctx: Ctx, flag: Flag, value: str) -> None:
        app = _last_app(ctx, flag)
        caps = value.split(",")
        for cap in caps:
            if not cap.startswith("CAP_") or len(cap) < 5:
                raise ValueError(f"unknown capability {go_quote(cap)}")
        _set_isolator(app, name, {"set": caps})

    return setter


def _app_seccomp(ctx: Ctx, flag: Flag, value: str) -> None:
    app = _last_app(ctx, flag)
    mode, errno_name, calls = "", "", []
    for item in value.split(","):
        if item.startswith("mode="):
            mode = item[5:]
        elif item.startswith("errno="):
            errno_name = item[6:]
        elif item:
            calls.append(item)
    if mode not in ("retain", "remove"):
        raise ValueError(f"unknown seccomp mode {go_quote(mode)}")
    iso: dict[str, object] = {"set": calls}
    if errno_name:
        iso["errno"] = errno_name
    _set_isolator(app, f"os/linux/seccomp-{mode}-set", iso)


# ---- the flag tables (usage texts exactly as `rkt <cmd> --help` prints them)


def _f(name: str, kind: str, default: str, usage: str, apply=None, **kw) -> Flag:
    return Flag(name, kind, default, usage, apply, **kw)


GLOBAL_FLAGS = [
    _f("debug", "bool", "false", "print out more debug information to stderr"),
    _f("dir", "value", DEFAULT_DIR, "rkt data directory", _set_absdir),
    _f(
        "insecure-options",
        "value",
        "none",
        "comma-separated list of security features to disable. Allowed values: "
        + ", ".join(go_quote(w) for w in INSECURE_WORDS),
        _set_insecure,
    ),
    _f("local-config", "value", "/etc/rkt", "local configuration directory", _set_absdir),
    _f("system-config", "value", "/usr/lib/rkt", "system configuration directory", _set_absdir),
    _f("trust-keys-from-https", "bool", "false", "automatically trust gpg keys fetched from https"),
    _f("user-config", "value", "", "user configuration directory", _set_absdir),
    _f("cpuprofile", "string", "", "write CPU profile to the file", hidden=True),
    _f("memprofile", "string", "", "write memory profile to the file", hidden=True),
    _f("help", "bool", "false", "help for this command", hidden=True),
]
_GLOBAL_VALUE_FLAGS = frozenset(
    f.name for f in GLOBAL_FLAGS if f.noopt is None
)  # flags whose value may be the next word (`--dir /x`)

_UUID_FILE = _f("uuid-file", "string", "", "read pod UUID from file instead of argument")
_STAGE1_FLAGS = [
    _f(
        "stage1-from-dir",
        "value",
        "",
        "filename of an image in stage1 images directory to use as stage1",
        _set_stage1,
    ),
    _f("stage1-hash", "value", "", "hash of an image to use as stage1", _set_stage1),
    _f("stage1-name", "value", "", "name of an image to use as stage1", _set_stage1),
    _f(
        "stage1-path",
        "value",
        "",
        "absolute or relative path to an image to use as stage1",
        _set_stage1,
    ),
    _f("stage1-url", "value", "", "URL to an image to use as stage1", _set_stage1),
]
_APP_FLAGS = [
    _f(
        "annotation",
        "value",
        "",
        "set the app's annotations (example: '--annotation=foo=bar')",
        _app_annotation,
    ),
    _f(
        "caps-remove",
        "value",
        "",
        "capability to remove (example: '--caps-remove=CAP_MKNOD')",
        _app_caps("os/linux/capabilities-remove-set"),
    ),
    _f(
        "caps-retain",
        "value",
        "",
        "capability to retain (example: '--caps-retain=CAP_SYS_ADMIN')",
        _app_caps("os/linux/capabilities-retain-set"),
    ),
    _f(
        "cap-remove",
        "value",
        "",
        "capability to remove",
        _app_caps("os/linux/capabilities-remove-set"),
        deprecated="use --caps-remove instead",
    ),
    _f(
        "cap-retain",
        "value",
        "",
        "capability to retain",
        _app_caps("os/linux/capabilities-retain-set"),
        deprecated="use --caps-retain instead",
    ),
    _f("cpu", "value", "", "cpu limit for the preceding image (example: '--cpu=500m')", _app_cpu),
    _f(
        "cpu-shares",
        "value",
        "",
        "cpu-shares assigns the specified CPU time share weight (example: '--cpu-shares=2048')",
        _app_int_isolator("os/linux/cpu-shares", 2, 262144),
    ),
    _f(
        "environment",
        "value",
        "",
        "set the app's environment variables (example: '--environment=foo=bar')",
        _app_env,
    ),
    _f("exec", "value", "", "override the exec command for the preceding image", _app_exec),
    _f(
        "group",
        "value",
        "",
        "group override for the preceding image (example: '--group=group')",
        _app_str("group"),
    ),
    _f(
        "memory",
        "value",
        "",
        "memory limit for the preceding image (example: '--memory=16Mi', '--memory=50M', "
        "'--memory=1G')",
        _app_memory,
    ),
    _f("mount", "value", "", "mount point binding a volume to a path within an app", _set_mount),
    _f(
        "name",
        "value",
        "",
        "set the name of the app (example: '--name=foo'). If not set, then the app name default "
        "to the image's name",
        _app_name,
    ),
    _f(
        "oom-score-adj",
        "value",
        "",
        "oom-score-adj isolator override",
        _app_int_isolator("os/linux/oom-score-adj", -1000, 1000),
    ),
    _f(
        "readonly-rootfs",
        "value",
        "",
        "if set, the app's rootfs will be mounted read-only",
        _app_readonly,
    ),
    _f(
        "seccomp",
        "value",
        "",
        "seccomp filter override (example: '--seccomp mode=retain,errno=EPERM,chmod,chown')",
        _app_seccomp,
    ),
    _f(
        "signature",
        "value",
        "",
        "local signature file to use in validating the preceding image",
        _app_signature,
    ),
    _f(
        "supplementary-gids",
        "value",
        "",
        "supplementary group IDs override for the preceding image (examples: "
        "'--supplementary-gids=1024,2048'",
        _app_gids,
    ),
    _f(
        "user",
        "value",
        "",
        "user override for the preceding image (example: '--user=user')",
        _app_str("user"),
    ),
    _f(
        "user-annotation",
        "value",
        "",
        "set the app's annotations (example: '--user-annotation=foo=bar')",
        _app_user_annotation,
    ),
    _f(
        "user-label",
        "value",
        "",
        "set the app's labels (example: '--user-label=foo=bar')",
        _app_user_label,
    ),
    _f(
        "working-dir",
        "value",
        "",
        "override the working directory of the preceding image",
        _app_str("working_dir"),
    ),
]
# Deprecated by --pull-policy, still accepted by run, prepare and fetch.
_STORE_FLAGS = [
    _f(
        "store-only",
        "bool",
        "false",
        "use only available images in the store",
        deprecated="please use --pull-policy=never",
    ),
    _f(
        "no-store",
        "bool",
        "false",
        "fetch images ignoring the local store",
        deprecated="please use --pull-policy=update",
    ),
]
_POD_FLAGS_COMMON = [
    _f("inherit-env", "bool", "false", "inherit all environment variables not set by apps"),
    _f("no-overlay", "bool", "false", "disable overlay filesystem"),
    _f("private-users", "bool", "false", "run within user namespaces."),
    _f("pull-policy", "string", "new", "when to pull an image", _set_pull_policy),
    _f(
        "set-env",
        "value",
        "",
        "environment variable to set for all the apps in the form key=value, this will be "
        "overridden by --environment",
        _set_kv_map,
    ),
    _f("volume", "value", "", "volumes to make available in the pod", _set_volume),
    *_STORE_FLAGS,
]
_NET_FLAGS = [
    _f(
        "dns",
        "value",
        "",
        "name servers to write in /etc/resolv.conf. Pass 'host' to use host's resolv.conf. Pass "
        "'none' to ignore CNI DNS config",
        _append,
    ),
    _f("dns-domain", "string", "", "DNS domain to write in /etc/resolv.conf"),
    _f("dns-opt", "value", "", "DNS options to write in /etc/resolv.conf", _append),
    _f("dns-search", "value", "", "DNS search domains to write in /etc/resolv.conf", _append),
    _f("hostname", "string", "", 'pod\'s hostname. If empty, it will be "rkt-$PODUUID"'),
    _f(
        "hosts-entry",
        "value",
        "",
        "Entries to add to the pod-wide /etc/hosts. Pass 'host' to use the host's /etc/hosts",
        _append,
    ),
    _f(
        "ipc",
        "string",
        "",
        "whether to stay in the host IPC namespace. Syntax: --ipc=[auto|private|parent]",
    ),
]
_RUN_FLAGS = [
    *_STAGE1_FLAGS,
    *_APP_FLAGS,
    *_POD_FLAGS_COMMON,
    *_NET_FLAGS,
    _f(
        "interactive",
        "bool",
        "false",
        "run pod interactively. If true, only one image may be supplied.",
    ),
    _f(
        "mds-register",
        "bool",
        "false",
        "register pod with metadata service. needs network connectivity to the host "
        "(--net=(default|default-restricted|host)",
    ),
    _f(
        "net",
        "value",
        "default",
        "configure the pod's networking. Optionally, pass a list of user-configured networks to "
        "load and set arguments to pass to each network, respectively. Syntax: "
        "--net[=n[:args], ...]",
        _set_net,
        noopt="default",
    ),
    _f(
        "pod-manifest",
        "string",
        "",
        "the path to the pod manifest. If it's non-empty, then only '--net', '--no-overlay' and "
        "'--interactive' will have effect",
    ),
    _f(
        "port",
        "value",
        "",
        "ports to expose on the host (requires contained network). Syntax: "
        "--port=NAME:[HOSTIP:]HOSTPORT",
        _set_port,
    ),
    _f("set-env-file", "value", "", "path to an environment variables file", _set_env_file),
    _f("uuid-file-save", "string", "", "write out pod UUID to specified file"),
]
_PREPARE_FLAGS = [
    *_STAGE1_FLAGS,
    *_APP_FLAGS,
    *_POD_FLAGS_COMMON,
    _f(
        "pod-manifest",
        "string",
        "",
        "the path to the pod manifest. If it's non-empty, then only '--quiet' and '--no-overlay' "
        "will have effect",
    ),
    _f(
        "port",
        "value",
        "",
        "ports to expose on the host (requires contained network). Syntax: --port=NAME:HOSTPORT",
        _set_port,
    ),
    _f(
        "quiet",
        "bool",
        "false",
        "suppress superfluous output on stdout, print only the UUID on success",
    ),
    _f("set-env-file", "value", "", "the path to an environment variables file", _set_env_file),
]
_RUN_PREPARED_FLAGS = [
    *_NET_FLAGS,
    _f("interactive", "bool", "false", "run pod interactively"),
    _f("mds-register", "bool", "false", "register pod with metadata service"),
    _f(
        "net",
        "value",
        "default",
        "configure the pod's networking. Optionally, pass a list of user-configured networks to "
        "load and set arguments to pass to each network, respectively. Syntax: "
        "--net[=n[:args]][,]",
        _set_net,
        noopt="default",
    ),
]
_FORMAT_LIST = (
    "choose the output format, allowed format includes 'json', 'json-pretty'. If "
    "empty, then the result is printed as key value pairs"
)


class Cmd:
    """One cobra command: metadata for help, flags, how to parse, what to run."""

    def __init__(
        self,
        name: str,
        short: str,
        use: str,
        long: str = "",
        flags: tuple | list = (),
        run=None,
        interspersed: bool = True,
        subs: list[Cmd] | None = None,
        hidden: bool = False,
    ) -> None:
        self.name = name
        self.short = short
        self.use = use
        self.long = long
        self.flags = list(flags)
        self.run = run
        self.interspersed = interspersed
        self.subs = subs or []
        self.hidden = hidden
        self.parent: Cmd | None = None

    @property
    def path(self) -> str:
        return (
            f"{self.parent.path} {self.name}" if self.parent and self.parent.parent else self.name
        )

    def flagmap(self) -> dict[str, Flag]:
        return {f.name: f for f in (*self.flags, *GLOBAL_FLAGS)}

    def help_text(self) -> str:
        text = f"NAME:\n\t{self.path} - {self.short}\n\nUSAGE:\n\trkt {self.use}\n\n"
        if self.long:
            text += "DESCRIPTION:\n" + "".join(f"\t{ln}\n" for ln in self.long.split("\n")) + "\n"
        visible = sorted((f for f in self.flags if not f.hidden), key=lambda f: f.name)
        if visible:
            text += "OPTIONS:\n" + "".join(f.help_line() for f in visible) + "\n"
        text += "GLOBAL OPTIONS:\n"
        text += "".join(f.help_line() for f in GLOBAL_FLAGS if not f.hidden) + "\n"
        return tabwrite(text)


ROOT_HELP = """\
NAME:
\trkt - rkt, the application container runner

USAGE:
\trkt [command]

VERSION:
\t1.30.0

COMMANDS:
\tapi-service\t\tRun API service (experimental)
\tcat-manifest\t\tInspect and print the pod manifest
\tcompletion\t\tOutput shell completion code for the specified shell
\tconfig\t\t\tPrint configuration for each stage in JSON format
\tenter\t\t\tEnter the namespaces of an app within a rkt pod
\texport\t\t\tExport an app from an exited pod to an ACI file
\tfetch\t\t\tFetch image(s) and store them in the local store
\tgc\t\t\tGarbage collect rkt pods no longer in use
\timage cat-manifest\tInspect and print the image manifest
\timage export\t\tExport a stored image to an ACI file
\timage extract\t\tExtract a stored image to a directory
\timage gc\t\tGarbage collect local store
\timage list\t\tList images in the local store
\timage render\t\tRender a stored image to a directory with all its dependencies
\timage rm\t\tRemove one or more images with the given IDs or image names from the local store
\timage verify\t\tVerify one or more rendered images in the local store
\tlist\t\t\tList pods
\tmetadata-service\tRun metadata service
\tprepare\t\t\tPrepare to run image(s) in a pod in rkt
\trm\t\t\tRemove all files and resources associated with an exited pod
\trun\t\t\tRun image(s) in a pod in rkt
\trun-prepared\t\tRun a prepared application pod in rkt
\tstatus\t\t\tCheck the status of a rkt pod
\tstop\t\t\tStop a pod
\ttrust\t\t\tTrust a key for image verification
\tversion\t\t\tPrint the version and exit
\thelp\t\t\tHelp about any command

DESCRIPTION:
\tA CLI for running app containers on Linux.
\t
\tTo get the help on any specific command, run "rkt help command".

OPTIONS:
"""


# --------------------------------------------------------------------------------------
# The pod store: state = directory + exclusive flock (CONTRACT §2)


def pods_dir(data_dir: str, sub: str = "") -> str:
    return os.path.join(data_dir, "pods", sub) if sub else os.path.join(data_dir, "pods")


def init_pods(data_dir: str) -> None:
    """rkt's initPods: MkdirAll every pods/* dir (mode 0750); errors read like Go's."""
    for sub in STATE_DIRS:
        path = pods_dir(data_dir, sub)
        if os.path.isdir(path):
            continue
        try:
            os.makedirs(path, 0o750, exist_ok=True)
        except OSError as exc:
            raise RktError(os_error("mkdir", exc)) from None


def list_pod_uuids(data_dir: str, dirs: tuple[str, ...] = LISTED_DIRS) -> list[str]:
    """Names in the given pods/* dirs, deduplicated (a pod may move mid-listing), sorted."""
    names: set[str] = set()
    for sub in dirs:
        path = pods_dir(data_dir, sub)
        try:
            entries = os.listdir(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise RktError(os_error("open", exc, path)) from None
        names.update(entries)
    return sorted(names)


class Pod:
    """An open pod directory: where it was found, and whether someone holds its lock."""

    def __init__(self, data_dir: str, uuid: str, sub: str, fd: int, locked: bool) -> None:
        self.data_dir = data_dir
        self.uuid = uuid
        self.sub = sub
        self.fd = fd
        self.locked = locked
        self.own_lock = False
        self._manifest: object = None

    @property
    def path(self) -> str:
        return os.path.join(self.data_dir, "pods", self.sub, self.uuid)

    @property
    def state(self) -> str:
        locked, unlocked = DIR_STATES[self.sub]
        return locked if (self.locked or self.own_lock) else unlocked

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def file(self, *parts: str) -> str:
        # Through the open directory fd, like rkt's openat(): a concurrent rename
        # (run-prepared moving prepared/ -> run/) cannot make a file vanish mid-read.
        base = f"/proc/self/fd/{self.fd}" if self.fd >= 0 else self.path
        return os.path.join(base, *parts)

    def manifest(self) -> dict | None:
        if self._manifest is None:
            data = read_json(self.file("pod"))
            self._manifest = data if isinstance(data, dict) else {}
        return self._manifest or None

    def apps(self) -> list[dict]:
        manifest = self.manifest() or {}
        apps = manifest.get("apps")
        return [a for a in apps if isinstance(a, dict)] if isinstance(apps, list) else []

    def created_ns(self) -> int | None:
        return mtime_ns(self.file("pod-created"))

    def started_ns(self) -> int | None:
        started = mtime_ns(self.file("pid"))
        return started if started is not None else mtime_ns(self.file("ppid"))

    def gc_marked_ns(self) -> int | None:
        if self.sub not in ("exited-garbage", "garbage"):
            return None
        try:
            return os.lstat(self.path).st_ctime_ns
        except OSError:
            return None

    def pid(self) -> int | None:
        for name in ("pid", "ppid"):
            text = read_text(self.file(name))
            if text is not None and text.strip().isdigit():
                return int(text.strip())
        return None

    def exit_code(self, app: str) -> int | None:
        text = read_text(self.file("stage1", "rootfs", "rkt", "status", app))
        try:
            return int(text.strip()) if text is not None else None
        except ValueError:
            return None

    def nets(self) -> list[dict]:
        if self.state not in ("running", "exited"):
            return []
        data = read_json(self.file("net-info.json"))
        return [n for n in data if isinstance(n, dict)] if isinstance(data, list) else []

    def fake_info(self) -> dict:
        data = read_json(self.file("fake.json"))
        return data if isinstance(data, dict) else {}

    # ---- transitions (renames) and locks

    def lock_exclusive(self, blocking: bool = True) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        self.own_lock = True
        return True

    def move(self, dest: str) -> None:
        """Rename the pod dir into pods/<dest>/ (FileNotFoundError if someone beat us)."""
        target = pods_dir(self.data_dir, dest)
        os.rename(self.path, os.path.join(target, self.uuid))
        self.sub = dest
        if dest in ("exited-garbage", "garbage"):
            # The mark time is the dir's ctime; make sure it moves on every filesystem.
            os.chmod(self.path, 0o750)

    def delete(self) -> None:
        """Lock (blocking, as rkt does) and remove the pod's tree."""
        self.lock_exclusive(blocking=True)
        _rmtree(self.path)


def _rmtree(path: str) -> None:
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    except NotADirectoryError:
        os.unlink(path)
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            _rmtree(entry.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path)


def open_pod(data_dir: str, uuid: str) -> Pod | None:
    """rkt getPod: try the dirs in the order states occur; test the lock without waiting."""
    for sub in STATE_DIRS:
        path = os.path.join(data_dir, "pods", sub, uuid)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            locked = True
        else:
            locked = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        return Pod(data_dir, uuid, sub, fd, locked)
    return None


def walk_pods(data_dir: str, dirs: tuple[str, ...] = LISTED_DIRS):
    """rkt WalkPods: every pod in `dirs` once, in UUID order, skipping ones that vanished."""
    init_pods(data_dir)
    for uuid in list_pod_uuids(data_dir, dirs):
        pod = open_pod(data_dir, uuid)
        if pod is None:
            continue
        try:
            yield pod
        finally:
            pod.close()


def resolve_pod(data_dir: str, arg: str) -> Pod:
    """PodFromUUIDString: prefix-match the lower-cased arg against listed pod dirs."""
    init_pods(data_dir)
    needle = arg.lower()
    if not needle:
        raise RktError("unable to resolve UUID", "UUID cannot be empty")
    matches = [u for u in list_pod_uuids(data_dir) if u.startswith(needle)]
    if not matches:
        raise RktError("unable to resolve UUID", f"no matches found for {go_quote(needle)}")
    if len(matches) > 1:
        raise RktError("unable to resolve UUID", f"ambiguous uuid, {len(matches)} matches")
    pod = open_pod(data_dir, matches[0])
    if pod is None:
        raise RktError("unable to resolve UUID", f"no matches found for {go_quote(needle)}")
    return pod


def read_uuid_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read().strip()
    except OSError as exc:
        raise RktError(os_error("open", exc, path)) from None
    if not is_uuid(text.lower()):
        raise RktError(f"{go_quote(text)} is not a valid UUID")
    return text.lower()


# --------------------------------------------------------------------------------------
# The image store (<dir>/cas/fake-images/<id>.json)


def store_dir(data_dir: str) -> str:
    return os.path.join(data_dir, "cas", "fake-images")


def open_store(data_dir: str) -> str:
    """Create the store dirs like rkt does on open; errors read `cannot open store: ...`."""
    for sub in ("imagelocks", "fake-images"):
        path = os.path.join(data_dir, "cas", sub)
        if os.path.isdir(path):
            continue
        try:
            os.makedirs(path, 0o700, exist_ok=True)
        except OSError as exc:
            raise RktError("cannot open store", os_error("mkdir", exc)) from None
    return store_dir(data_dir)


def store_images(data_dir: str) -> list[dict]:
    path = store_dir(data_dir)
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return []
    images = []
    for name in names:
        if name.endswith(".json"):
            data = read_json(os.path.join(path, name))
            if isinstance(data, dict) and "id" in data:
                images.append(data)
    return images


def store_put(data_dir: str, image: dict) -> None:
    atomic_write(os.path.join(store_dir(data_dir), image["id"] + ".json"), json.dumps(image))


def store_get(data_dir: str, image_id: str) -> dict | None:
    data = read_json(os.path.join(store_dir(data_dir), image_id + ".json"))
    return data if isinstance(data, dict) else None


def image_version(manifest: dict) -> str | None:
    labels = manifest.get("labels")
    for label in labels if isinstance(labels, list) else []:
        if isinstance(label, dict) and label.get("name") == "version":
            return str(label.get("value"))
    return None


def image_display_name(manifest: dict) -> str:
    name = str(manifest.get("name", ""))
    version = image_version(manifest)
    return f"{name}:{version}" if version is not None else name


def image_kind(image: str) -> str:
    """rkt's guess of what an image argument is: hash, url, path or name."""
    if image.startswith("sha512-"):
        return "hash"
    if "://" in image:
        return "url"
    if image.startswith("/"):
        return "path"
    try:
        import stat

        if stat.S_ISREG(os.stat(image).st_mode):
            return "path"
    except OSError:
        pass
    if ":" in image:
        return "name"
    if "./" in image or image.endswith(".aci"):
        return "path"
    return "name"


def read_aci(path: str) -> tuple[str, dict, int, list[str]]:
    """Read a local .aci (tar, optionally gzip/bzip2/xz): (image id, manifest, size,
    the absolute paths of the files and symlinks in its rootfs)."""
    import hashlib
    import io
    import tarfile

    with open(path, "rb") as fh:
        data = fh.read()
    try:
        if data[:2] == b"\x1f\x8b":
            import gzip

            data = gzip.decompress(data)
        elif data[:3] == b"BZh":
            import bz2

            data = bz2.decompress(data)
        elif data[:6] == b"\xfd7zXZ\x00":
            import lzma

            data = lzma.decompress(data)
    except (OSError, EOFError, ValueError) as exc:
        raise RktError(f"error decompressing image: {exc}") from None
    image_id = "sha512-" + hashlib.sha512(data).hexdigest()[:64]
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            member = next(
                (m for m in tar.getmembers() if m.name.lstrip("./") == "manifest" and m.isfile()),
                None,
            )
            if member is None:
                raise RktError("missing manifest")
            raw = tar.extractfile(member)
            manifest = json.loads(raw.read() if raw else b"")
            rootfs = sorted(
                "/" + m.name.lstrip("./").removeprefix("rootfs/")
                for m in tar.getmembers()
                if m.name.lstrip("./").startswith("rootfs/") and (m.isfile() or m.issym())
            )
    except (tarfile.TarError, ValueError) as exc:
        raise RktError(f"error reading image manifest: {exc}") from None
    if not isinstance(manifest, dict) or not manifest.get("name"):
        raise RktError("image manifest has no name")
    return image_id, manifest, len(data), rootfs


def synth_manifest(name: str, version: str, app_name: str) -> dict:
    """The image manifest the fake invents for images it cannot really fetch."""
    return {
        "acKind": "ImageManifest",
        "acVersion": APPC_VERSION,
        "name": name,
        "labels": [
            {"name": "version", "value": version},
            {"name": "os", "value": "linux"},
            {"name": "arch", "value": "amd64"},
        ],
        "app": {"exec": [f"/fake-rkt/bin/{app_name}"], "user": "0", "group": "0"},
    }


def parse_docker_ref(ref: str) -> tuple[str, str]:
    """docker://[REGISTRY/]NAME[:TAG|@DIGEST] -> (aci name, version label)."""
    rest = ref[len("docker://") :]
    digest = ""
    if "@" in rest:
        rest, _, digest = rest.partition("@")
    tag = "latest"
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, _, tag = rest.rpartition(":")
    parts = rest.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, path = parts[0], "/".join(parts[1:])
    else:
        registry, path = "registry-1.docker.io", rest
        if "/" not in path:
            path = "library/" + path
    return f"{registry}/{path}", digest or tag


def _new_image(origin: str, image_id: str, manifest: dict, size: int) -> dict:
    now = time.time_ns()
    return {
        "id": image_id,
        "name": image_display_name(manifest),
        "origin": origin,
        "import_time": now,
        "last_used_time": now,
        "size": size,
        "manifest": manifest,
    }


def _synth_id(origin: str) -> str:
    import hashlib

    return "sha512-" + hashlib.sha512(origin.encode()).hexdigest()[:64]


def find_image(ctx: Ctx, image: str, policy: str, signature: str | None = None) -> dict:
    """Fetch or look up one image argument; raise RktError with rkt's message."""
    data_dir = ctx.data_dir
    if policy not in ("never", "new", "update"):
        raise RktError(f"{go_quote(policy)} is not a valid pull policy")
    kind = image_kind(image)
    if kind == "hash":
        needle = image.lower()
        found = [img for img in store_images(data_dir) if img["id"].startswith(needle)]
        if len(found) != 1:
            raise RktError("no image IDs found" if not found else "ambiguous image ID")
        return found[0]
    if kind == "url" and image.startswith("file://"):
        image, kind = image[len("file://") :], "path"
    if kind == "path":
        try:
            if not os.path.exists(image):
                raise FileNotFoundError(errno.ENOENT, "no such file", image)
            if "image" not in ctx.insecure:
                asc = signature or image + ".asc"
                if not os.path.exists(asc):
                    raise FileNotFoundError(errno.ENOENT, "no such file", asc)
            image_id, manifest, size, rootfs = read_aci(image)
        except OSError as exc:
            raise RktError(os_error("open", exc)) from None
        existing = store_get(data_dir, image_id)
        if existing is not None:
            return existing
        record = _new_image("file://" + os.path.abspath(image), image_id, manifest, size)
        record["rootfs_files"] = rootfs
        store_put(data_dir, record)
        return record
    if kind == "url" and image.startswith("docker://"):
        if "image" not in ctx.insecure:
            raise RktError(
                "signature verification for docker images is not supported "
                "(try --insecure-options=image)"
            )
        name, version = parse_docker_ref(image)
        origin, explicit = image, True
        not_found = (
            f"unable to fetch docker image from URL {go_quote(image)}: either image was not "
            "found in the store or store was disabled and fetching from remote yielded nothing "
            "or it was disabled"
        )
    elif kind == "url":
        base = image.split("://", 1)[1].split("?")[0].rstrip("/")
        stem = base.rsplit("/", 1)[-1].removesuffix(".aci") or "app"
        name, version, origin = base.rsplit("/", 1)[0] + "/" + stem, "latest", image
        explicit = True
        not_found = f"unable to fetch image from URL {go_quote(image)}"
    else:
        explicit = ":" in image.rsplit("/", 1)[-1]
        name, version = image.rsplit(":", 1) if explicit else (image, "latest")
        origin = f"name:{name}:{version}"
        not_found = (
            f"unable to fetch image from image name {go_quote(image)}: either image was not "
            "found in the store or store was disabled and fetching from remote yielded nothing "
            "or it was disabled"
        )
    existing = [
        img
        for img in store_images(data_dir)
        if img.get("origin") == origin
        or (
            kind == "name"
            and (
                img.get("name") == f"{name}:{version}"
                if explicit
                else img.get("manifest", {}).get("name") == name
            )
        )
    ]
    if existing and policy != "update":
        return max(existing, key=lambda img: img.get("import_time", 0))
    if policy == "never":
        raise RktError(not_found)
    manifest = synth_manifest(name, version, sanitize_ac_name(name.rsplit("/", 1)[-1]) or "app")
    image_id = _synth_id(origin)
    record = store_get(data_dir, image_id) or _new_image(origin, image_id, manifest, 0)
    record["import_time"] = record["last_used_time"] = time.time_ns()
    store_put(data_dir, record)
    return record


# --------------------------------------------------------------------------------------
# run / prepare: app arguments, the pod manifest, stage0


def parse_apps(ctx: Ctx, args: list[str], flags: dict[str, Flag], allow_app_args: bool) -> None:
    """rkt parseApps: images, per-app flags, `--` app args up to a lone `---`."""
    n_last = len(ctx.apps)
    in_args = False
    i = 0
    while i < len(args):
        word = args[i]
        if in_args:
            if word == "---":
                in_args = False
            else:
                ctx.apps[-1].args = [*(ctx.apps[-1].args or []), word]
        elif word == "--":
            if not allow_app_args:
                raise RktError("app arguments unsupported")
            in_args = True
            if n_last == len(ctx.apps):
                if not ctx.apps:
                    raise RktError("an image is required before any app arguments")
                raise RktError("only one set of app arguments allowed per image")
            n_last = len(ctx.apps)
        elif word != "---":  # a stray `---` is ignored, as rkt does
            try:
                rest = parse_flags(ctx, args[i:], flags, interspersed=False)
            except FlagError as exc:
                raise RktError(str(exc)) from None
            consumed = len(args) - i - len(rest)
            if consumed > 0:
                if args[i + consumed - 1] == "--":
                    consumed -= 1  # pflag ate the `--`: give it back to the app-args logic
                i += consumed - 1
            else:
                ctx.apps.append(App(word))
        i += 1
    volumes = {v["name"] for v in ctx.volumes}
    for mount in [*ctx.global_mounts, *(m for a in ctx.apps for m in a.mounts)]:
        if mount["volume"] not in volumes:
            raise RktError(
                f"dangling mount point {go_quote(mount['path'])}: volume "
                f"{go_quote(mount['volume'])} not found"
            )


def stage1_image_name(ctx: Ctx) -> str:
    """The stage1 image chosen by --stage1-* (its name decides the flavor)."""
    selected = ctx.opts.get("stage1")
    if not isinstance(selected, tuple):
        return DEFAULT_STAGE1
    kind, value = selected
    if kind == "stage1-name":
        return value if ":" in value.rsplit("/", 1)[-1] else f"{value}:{RKT_VERSION}"
    if kind == "stage1-hash":
        image = store_get(ctx.data_dir, value)
        return image["name"] if image else DEFAULT_STAGE1
    if kind == "stage1-path" and not os.path.exists(value):
        raise RktError(f"open {value}: no such file or directory")
    base = value.rstrip("/").rsplit("/", 1)[-1].removesuffix(".aci") or "stage1-coreos"
    return f"coreos.com/rkt/{base}:{RKT_VERSION}"


def flavor_of(stage1_name: str) -> str:
    base = stage1_name.rsplit("/", 1)[-1].split(":", 1)[0]
    for flavor in ("fly", "host", "kvm", "src"):
        if flavor in base:
            return flavor
    return "coreos"


def _ordered_app(src: dict, app: App | None, pod_env: list[tuple[str, str]]) -> dict:
    """The runtime app's `app` section: the image's, overridden by flags, in Go's key order."""
    exec_ = list(src.get("exec") or [])
    if app is not None and app.exec is not None:
        exec_ = [app.exec]
    if app is not None and app.args is not None:
        exec_ += app.args
    env = [dict(e) for e in src.get("environment") or [] if isinstance(e, dict)]

    def set_env(key: str, value: str) -> None:
        for entry in env:
            if entry.get("name") == key:
                entry["value"] = value
                return
        env.append({"name": key, "value": value})

    for key, value in pod_env:
        set_env(key, value)
    for key, value in app.env if app is not None else []:
        set_env(key, value)
    isolators = [i for i in src.get("isolators") or [] if isinstance(i, dict)]
    if app is not None:
        names = {i["name"] for i in app.isolators}
        isolators = [i for i in isolators if i.get("name") not in names] + app.isolators
    annotations = dict(src.get("userAnnotations") or {})
    labels = dict(src.get("userLabels") or {})
    if app is not None:
        annotations.update(app.user_annotations)
        labels.update(app.user_labels)
    out: dict[str, object] = {"exec": exec_ or None}
    if src.get("eventHandlers"):
        out["eventHandlers"] = src["eventHandlers"]
    out["user"] = (app.user if app and app.user is not None else None) or src.get("user") or "0"
    out["group"] = (app.group if app and app.group is not None else None) or src.get("group") or "0"
    gids = app.supp_gids if app and app.supp_gids is not None else src.get("supplementaryGIDs")
    if gids:
        out["supplementaryGIDs"] = gids
    workdir = app.working_dir if app and app.working_dir else src.get("workingDirectory")
    if workdir:
        out["workingDirectory"] = workdir
    if env:
        out["environment"] = env
    for key in ("mountPoints", "ports"):
        if src.get(key):
            out[key] = src[key]
    if isolators:
        out["isolators"] = isolators
    if annotations:
        out["userAnnotations"] = dict(sorted(annotations.items()))
    if labels:
        out["userLabels"] = dict(sorted(labels.items()))
    return out


def build_pod_manifest(ctx: Ctx, images: list[dict]) -> dict:
    """stage0's generatePodManifest for the apps on the command line."""
    pod_env = [*(ctx.opts.get("set-env-file") or []), *(ctx.opts.get("set-env") or [])]
    apps: list[dict] = []
    for app, image in zip(ctx.apps, images, strict=True):
        manifest = image["manifest"]
        name = app.name or sanitize_ac_name(str(manifest.get("name", "")).rsplit("/", 1)[-1])
        if any(a["name"] == name for a in apps):
            raise RktError(
                "error generating pod manifest", f"error: multiple apps with name {name}"
            )
        image_section: dict[str, object] = {"name": manifest.get("name"), "id": image["id"]}
        if manifest.get("labels"):
            image_section["labels"] = manifest["labels"]
        src = manifest.get("app") if isinstance(manifest.get("app"), dict) else {}
        runtime: dict[str, object] = {
            "name": name,
            "image": image_section,
            "app": _ordered_app(src, app, pod_env),
        }
        if app.readonly_rootfs:
            runtime["readOnlyRootFS"] = True
        paths = {m["path"] for m in app.mounts}
        mounts = app.mounts + [m for m in ctx.global_mounts if m["path"] not in paths]
        if mounts:
            runtime["mounts"] = mounts
        if app.annotations:
            runtime["annotations"] = app.annotations
        apps.append(runtime)
    return {
        "acVersion": RKT_VERSION,
        "acKind": "PodManifest",
        "apps": apps,
        "volumes": ctx.volumes or None,
        "isolators": None,
        "annotations": [{"name": "coreos.com/rkt/stage1/mutable", "value": "false"}],
        "ports": ctx.opts.get("port") or [],
    }


def load_pod_manifest_file(ctx: Ctx, path: str) -> tuple[dict, list[dict]]:
    """--pod-manifest: the user's manifest, stored as given; images looked up by id."""
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.loads(fh.read())
    except OSError as exc:
        raise RktError("error reading pod manifest", os_error("open", exc, path)) from None
    except ValueError as exc:
        raise RktError("error unmarshaling pod manifest", str(exc)) from None
    if not isinstance(manifest, dict) or manifest.get("acKind") != "PodManifest":
        raise RktError("error unmarshaling pod manifest", "missing or wrong acKind")
    images = []
    for app in manifest.get("apps") or []:
        image = app.get("image") or {}
        found = store_get(ctx.data_dir, str(image.get("id", "")))
        if found is None:
            # Real rkt 1.30 refuses an image ID that is not in its store, after the pod
            # dir exists: the pod is left behind as `aborted prepare`.
            raise RktError("no image IDs found")
        images.append(found)
    return manifest, images


def create_pod(ctx: Ctx) -> Pod:
    """NewPod: a locked embryo dir that is then renamed to prepare/ (state `preparing`)."""
    data_dir = ctx.data_dir
    init_pods(data_dir)
    uuid = new_uuid()
    path = os.path.join(pods_dir(data_dir, "embryo"), uuid)
    os.mkdir(path, 0o750)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    pod = Pod(data_dir, uuid, "embryo", fd, locked=False)
    pod.own_lock = True
    ctx.uuid = uuid
    return pod


def write_pod(ctx: Ctx, pod: Pod, manifest: dict, images: list[dict], stage1: str) -> None:
    """stage0 Prepare: the files of a prepared pod; `pod-created` comes last."""
    atomic_write(pod.file("pod"), go_json(manifest))
    for runtime, image in zip(manifest.get("apps") or [], images, strict=True):
        info = pod.file("appsinfo", str(runtime.get("name")))
        os.makedirs(info, 0o750, exist_ok=True)
        atomic_write(os.path.join(info, "manifest"), go_json(image["manifest"]))
        atomic_write(os.path.join(info, "treeStoreID"), f"deps-{image['id']}")
        if image.get("origin"):
            image["last_used_time"] = time.time_ns()
            store_put(ctx.data_dir, image)
    os.makedirs(pod.file("stage1", "rootfs", "rkt", "status"), 0o750, exist_ok=True)
    name, _, version = stage1.partition(":")
    stage1_manifest = {
        "acKind": "ImageManifest",
        "acVersion": APPC_VERSION,
        "name": name,
        "labels": [{"name": "version", "value": version or RKT_VERSION}],
    }
    atomic_write(pod.file("stage1", "manifest"), go_json(stage1_manifest))
    fake = {
        "stage1": stage1,
        "flavor": flavor_of(stage1),
        "inherit_env": bool(ctx.opts.get("inherit-env")),
    }
    atomic_write(pod.file("fake.json"), json.dumps(fake))
    with open(pod.file("pod-created"), "wb"):
        pass


def stage0_prepare(ctx: Ctx, cmd_name: str, rest: list[str], *, for_run: bool) -> tuple[Pod, dict]:
    """Shared by run and prepare: parse apps, find images, create and fill the pod dir."""
    try:
        parse_apps(ctx, rest, ctx.cmd.flagmap() if ctx.cmd else {}, allow_app_args=True)
    except RktError as exc:
        raise fail("error parsing app image arguments", exc) from None
    opts = ctx.opts
    if opts.get("store-only") and opts.get("no-store"):
        Out.err("both --store-only and --no-store specified")
        raise Exit(254)
    policy = str(opts.get("pull-policy") or "new")
    if opts.get("store-only"):
        policy = "never"
    if opts.get("no-store"):
        policy = "update"
    nets = opts.get("net") or [("default", "")]
    net_names = {n for n, _ in nets} if isinstance(nets, list) else set()
    if for_run:
        if opts.get("port") and "none" in net_names:
            Out.err("--port flag does not work with 'none' networking")
            raise Exit(254)
        if opts.get("port") and "host" in net_names:
            Out.err("--port flag does not work with 'host' networking")
            raise Exit(254)
        if opts.get("mds-register") and "none" in net_names:
            Out.err(
                "--mds-register flag does not work with --net=none. Please use 'host', "
                "'default' or an equivalent network"
            )
            raise Exit(254)
    pod_manifest_path = str(opts.get("pod-manifest") or "")
    if pod_manifest_path and (
        ctx.apps
        or ctx.volumes
        or ctx.global_mounts
        or opts.get("port")
        or policy in ("never", "update")
        or opts.get("inherit-env")
        or opts.get("set-env")
        or opts.get("set-env-file")
    ):
        Out.err("conflicting flags set with --pod-manifest (see --help)")
        raise Exit(254)
    if for_run and opts.get("interactive") and len(ctx.apps) > 1:
        Out.err("interactive option only supports one image")
        raise Exit(254)
    if not ctx.apps and not pod_manifest_path:
        Out.err("must provide at least one image or specify the pod manifest")
        raise Exit(254)
    try:
        open_store(ctx.data_dir)
    except RktError as exc:
        raise fail(exc.chain[0], exc.inner) from None
    try:
        stage1 = stage1_image_name(ctx)
        if pod_manifest_path:
            images: list[dict] = []
        else:
            images = [find_image(ctx, a.image, policy, a.signature) for a in ctx.apps]
    except RktError as exc:
        Out.err(exc.inner)
        raise Exit(254) from None
    try:
        pod = create_pod(ctx)
    except (OSError, RktError) as exc:
        reason = exc if isinstance(exc, RktError) else os_error("mkdir", exc)
        raise fail("error creating new pod", reason) from None
    uuid_file = str(opts.get("uuid-file-save") or "")
    if for_run and uuid_file:
        try:
            with open(uuid_file, "w", encoding="utf-8") as fh:
                fh.write(pod.uuid)  # rkt writes no trailing newline
        except OSError as exc:
            raise fail("error saving pod UUID to file", os_error("open", exc, uuid_file)) from None
    pod.move("prepare")
    try:
        if pod_manifest_path:
            manifest, images = load_pod_manifest_file(ctx, pod_manifest_path)
        else:
            manifest = build_pod_manifest(ctx, images)
        write_pod(ctx, pod, manifest, images, stage1)
    except RktError as exc:
        # The pod stays in prepare/ and reads `aborted prepare` once we exit.
        raise fail("error setting up stage0", exc) from None
    return pod, manifest


def parse_dns_flags(ctx: Ctx) -> None:
    """rkt parseDNSFlags: only validation matters for the fake."""
    dns = list(ctx.opts.get("dns") or [])
    mode = "default"
    for entry in dns:
        if entry in ("host", "none"):
            if len(dns) > 1:
                raise RktError(f"no other --dns options allowed when --dns={entry} is passed")
            mode = entry
            break
        for server in entry.split(","):
            if not _is_ip(server):
                raise RktError(f"Invalid IP passed to --dns: {server}")
    if (
        ctx.opts.get("dns-search") or ctx.opts.get("dns-opt") or ctx.opts.get("dns-domain")
    ) and mode in ("host", "none"):
        raise RktError(f"Cannot call --dns-opt, --dns-search, or --dns-domain with --dns={mode}")
    hosts = list(ctx.opts.get("hosts-entry") or [])
    for entry in hosts:
        if entry == "host":
            if len(hosts) != 1:
                raise RktError("cannot pass --hosts-entry=host with multiple hosts-entries")
            break
        for item in entry.split(","):
            ip, eq, _ = item.partition("=")
            if not eq:
                raise RktError(f"Did not understand --hosts-entry {item}")
            if not _is_ip(ip):
                raise RktError(f"Invalid IP passed to --hosts-entry: {ip}")


def _group_notice(ctx: Ctx) -> None:
    import grp

    try:
        grp.getgrnam("rkt")
    except KeyError:
        Out.err('group "rkt" not found, will use default gid when rendering images')
        ctx.opts["_no_rkt_group"] = True


def stage1_checks(ctx: Ctx, pod: Pod, manifest: dict, flavor: str) -> None:
    """What stage1 refuses after the pod moved to run/ (the pod is left `exited`)."""
    if flavor != "fly":
        if ctx.opts.get("_no_rkt_group"):
            sys.stderr.write(
                "stage1: warning: error setting journal ACLs, you'll need root to "
                'read the pod journal: group "rkt" not found\n'
            )
        for runtime in manifest.get("apps") or []:
            for point in _missing_mount_points(manifest, runtime):
                sys.stderr.write(
                    f"stage1: warning: no volume specified for mount point {go_quote(point)}, "
                    'implicitly creating an "empty" volume. This volume will be removed when '
                    "the pod is garbage-collected.\n"
                )
        return
    apps = manifest.get("apps") or []
    if len(apps) > 1:
        sys.stderr.write("run: fly only supports 1 application per Pod for now\n")
        raise Exit(254)
    for runtime in apps:
        missing = _missing_mount_points(manifest, runtime)
        if missing:
            point = go_quote(missing[0])
            sys.stderr.write(f"run: can't evaluate mounts: missing volume for mountpoint {point}\n")
            raise Exit(254)
        missing_host = _missing_host_paths(manifest)
        if missing_host:
            # stage1-fly's evaluateMounts stats every host volume before anything runs.
            src = missing_host[0]
            sys.stderr.write(
                f"run: stat of host path {src}: stat {src}: no such file or directory\n"
            )
            raise Exit(254)
        volumes = {v.get("name"): v for v in manifest.get("volumes") or []}
        points = _mount_points(runtime)
        for vol_name, target in points.items():
            if (volumes.get(vol_name) or {}).get("kind") == "empty":
                sys.stderr.write(
                    f'run: can\'t mount "" on "stage1/rootfs/opt/stage2/{runtime.get("name")}'
                    f'/rootfs{target}" with flags 4096: invalid argument\n'
                )
                raise Exit(254)


def _mount_points(runtime: dict) -> dict:
    """Volume name -> target path of one app: its image's mount points, then `--mount`s."""
    app = runtime.get("app") or {}
    points = {p.get("name"): p.get("path") for p in app.get("mountPoints") or []}
    for mount in runtime.get("mounts") or []:
        points[mount.get("volume")] = mount.get("path")
    return points


def _missing_host_paths(manifest: dict) -> list[str]:
    """Sources of mounted `kind=host` volumes that do not exist (stat follows symlinks)."""
    volumes = {v.get("name"): v for v in manifest.get("volumes") or [] if isinstance(v, dict)}
    missing: list[str] = []
    for runtime in manifest.get("apps") or []:
        for vol_name in _mount_points(runtime):
            volume = volumes.get(vol_name) or {}
            source = str(volume.get("source") or "")
            exists = not source or os.path.exists(source)
            if volume.get("kind") == "host" and not exists and source not in missing:
                missing.append(source)
    return missing


def _missing_mount_points(manifest: dict, runtime: dict) -> list[str]:
    volumes = {v.get("name") for v in manifest.get("volumes") or [] if isinstance(v, dict)}
    mounted = {m.get("path") for m in runtime.get("mounts") or []}
    app = runtime.get("app") or {}
    return [
        str(p.get("name"))
        for p in app.get("mountPoints") or []
        if p.get("name") not in volumes and p.get("path") not in mounted
    ]


def cmd_prepare(ctx: Ctx, rest: list[str]) -> int:
    pod, _ = stage0_prepare(ctx, "prepare", rest, for_run=False)
    pod.move("prepared")
    pod.close()  # unlock: a prepared pod is not held by anyone
    Out.out(pod.uuid)
    return 0


def cmd_run(ctx: Ctx, rest: list[str]) -> int:
    pod, manifest = stage0_prepare(ctx, "run", rest, for_run=True)
    pod.move("run")  # keep the lock: we are the pod now
    _group_notice(ctx)
    return _run_pod(ctx, pod, manifest)


def cmd_run_prepared(ctx: Ctx, rest: list[str]) -> int:
    if len(rest) != 1:
        raise UsageExit()
    pod = _get_pod(ctx, rest[0], "problem retrieving pod")
    ctx.uuid = pod.uuid
    try:
        open_store(ctx.data_dir)
    except RktError as exc:
        raise fail(exc.chain[0], exc.inner) from None
    if pod.state != "prepared":
        Out.err(f"pod {go_quote(pod.uuid)} is not prepared")
        return 254
    manifest = pod.manifest()
    if manifest is None:
        raise fail("cannot get the pod manifest", "no manifest")
    if ctx.opts.get("interactive") and len(manifest.get("apps") or []) > 1:
        Out.err("interactive option only supports pods with one app")
        return 254
    # ToRun: a blocking exclusive lock, then the rename (it blocks behind other holders).
    pod.lock_exclusive(blocking=True)
    try:
        same = os.stat(pod.path).st_ino == os.fstat(pod.fd).st_ino
    except OSError:
        same = False
    src = pod.path
    try:
        if not same:
            raise FileNotFoundError(errno.ENOENT, "gone", src)
        pod.move("run")
    except OSError as exc:
        dest = os.path.join(pods_dir(ctx.data_dir, "run"), pod.uuid)
        raise fail(
            "cannot transition to run",
            f"rename {src} {dest}: {os.strerror(exc.errno or errno.ENOENT).lower()}",
        ) from None
    _group_notice(ctx)
    return _run_pod(ctx, pod, manifest)


def _run_pod(ctx: Ctx, pod: Pod, manifest: dict) -> int:
    flavor = str(pod.fake_info().get("flavor") or "coreos")
    try:
        parse_dns_flags(ctx)
    except RktError as exc:
        raise fail("error with dns flags", exc) from None
    ipc = str(ctx.opts.get("ipc") or "")
    if ipc not in ("", "auto", "private", "parent"):
        raise fail("error with ipc flag", f"invalid --ipc value {go_quote(ipc)}")
    stage1_checks(ctx, pod, manifest, flavor)
    if flavor == "fly" and ctx.opts.get("hostname"):
        Out.out("Warning: -hostname not supported; ignoring")
    return supervise(ctx, pod, manifest, flavor)


# --------------------------------------------------------------------------------------
# The supervisor: the pod's life in the foreground


def _fake_nets(ctx: Ctx, pod: Pod, flavor: str) -> list[dict]:
    nets = ctx.opts.get("net") or [("default", "")]
    if flavor == "fly" or not isinstance(nets, list):
        return []
    result = []
    host_byte = 2 + int(pod.uuid[:8], 16) % 250
    for index, (name, args) in enumerate(n for n in nets if n[0] not in ("host", "none")):
        net_name = "default" if name == "all" else name
        subnet = {"default": "172.16.28", "default-restricted": "172.17.0"}.get(
            net_name, f"172.{18 + index}.0"
        )
        result.append(
            {
                "netName": net_name,
                "netConf": f"net/99-{net_name}.conf"
                if net_name.startswith("default")
                else f"net.d/{net_name}.conf",
                "pluginPath": "stage1/rootfs/usr/lib/rkt/plugins/net/ptp",
                "ifName": f"eth{index}",
                "ip": f"{subnet}.{host_byte}",
                "args": args,
                "mask": "255.255.255.0",
            }
        )
    return result


def _which(name: str, path: str) -> str | None:
    if "/" in name:
        full = os.path.abspath(name)
        return full if os.path.isfile(full) and os.access(full, os.X_OK) else None
    for directory in path.split(":"):
        full = os.path.join(directory or ".", name)
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return full
    return None


def _app_process(ctx: Ctx, pod: Pod, runtime: dict) -> tuple[str, list[str], dict, str | None]:
    """What to exec for one app: (path, argv, env, cwd). Missing programs become a sleep."""
    app = runtime.get("app") or {}
    name = str(runtime.get("name"))
    env = {
        "PATH": DEFAULT_PATH,
        "HOME": "/root",
        "USER": "root",
        "LOGNAME": "root",
        "SHELL": "/bin/sh",
    }
    if pod.fake_info().get("inherit_env"):
        env.update(os.environ)
    for entry in app.get("environment") or []:
        if isinstance(entry, dict):
            env[str(entry.get("name"))] = str(entry.get("value", ""))
    if str(pod.fake_info().get("flavor") or "coreos") != "fly":
        # nspawn stage1s set it (seen on the host stage1: rktctl finds an app's main
        # process by it); fly execs the app with the manifest's environment only.
        env["AC_APP_NAME"] = name
    argv = [str(a) for a in app.get("exec") or []]
    host_path = os.environ.get("PATH", DEFAULT_PATH)
    path = _which(argv[0], env["PATH"] + ":" + host_path) if argv else None
    if path is None:
        if Out.debug:
            Out.err(f"fake: {argv[:1]} not found on this host; app {name} runs a placeholder sleep")
        sleeper = _which("sleep", host_path + ":" + DEFAULT_PATH)
        if sleeper:
            path, argv = sleeper, ["sleep", PLACEHOLDER_SECONDS]
        else:
            path = sys.executable
            argv = [sys.executable, "-S", "-c", "import time\nwhile True: time.sleep(3600)"]
    workdir = app.get("workingDirectory")
    cwd = workdir if isinstance(workdir, str) and os.path.isdir(workdir) else None
    return path, argv, env, cwd


def _missing_from_image(ctx: Ctx, runtime: dict) -> str | None:
    """The app's program if its image is an ACI whose rootfs lacks it, else None.

    Images the fake synthesizes, and ACIs with an empty rootfs (manifest-only test
    images), have nothing to look in: their apps run host programs or the placeholder.
    """
    argv = (runtime.get("app") or {}).get("exec") or []
    image = store_get(ctx.data_dir, str((runtime.get("image") or {}).get("id", "")))
    files = image.get("rootfs_files") if image else None
    if not argv or not files or not isinstance(files, list) or not str(argv[0]).startswith("/"):
        return None
    return None if str(argv[0]) in files else str(argv[0])


def _exec_failure(program: str, flavor: str) -> tuple[str, int]:
    """What stage1 prints, and the exit status, when an app's program is not in its image.

    fly: rkt itself fails to exec it and exits 254 (no app exit code is recorded);
    systemd-like: systemd reports it and records EXIT_EXEC, 203 (as seen on
    rkt 1.30.0 with fly and host, running a missing `--exec`).
    """
    if flavor == "fly":
        return f"run: can't execute {go_quote(program)}: no such file or directory\n", 254
    return f"Error: Unable to open {go_quote(program)}: No such file or directory\n", 203


def supervise(ctx: Ctx, pod: Pod, manifest: dict, flavor: str) -> int:
    """Run the pod's apps as children until they end; hold the pod lock all along.

    Each app runs in its own process group (the "container"): signals are forwarded to
    the group, and when the pod ends whatever is left in it is killed. The supervisor is
    a child subreaper, so orphaned grandchildren are reaped here. A forked watchdog
    kills the app groups if the supervisor dies without cleaning up (kill -9).
    Returns the pod's exit code, or -signum when a fly pod's app died by a signal (its
    `rkt run` dies by that signal, since with fly the app is the rkt process).
    """
    import ctypes
    import select
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    nets = _fake_nets(ctx, pod, flavor)
    if nets:
        atomic_write(pod.file("net-info.json"), json.dumps(nets))
    forwarded = (
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    )
    pending: list[int] = []
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    for signum in forwarded:
        signal.signal(signum, lambda s, _f: pending.append(s))
    signal.signal(signal.SIGCHLD, lambda _s, _f: None)  # wakes select() via the wakeup fd
    specs = [(str(r.get("name")), *_app_process(ctx, pod, r)) for r in manifest.get("apps") or []]
    missing = {str(r.get("name")): _missing_from_image(ctx, r) for r in manifest.get("apps") or []}
    sys.stdout.flush()
    sys.stderr.flush()
    supervisor = os.getpid()
    # Fake-only: lets test cleanup find this process before the pid file exists.
    atomic_write(pod.file("fake-supervisor"), str(supervisor))
    boot = ctx.boot_s if ctx.boot_s is not None else BOOT_S.get(flavor, 0.0)
    if boot > 0:
        # The boot window: `running` (we hold the lock) but no pid file and no app yet,
        # so `rkt stop` fails. Signals that arrive meanwhile are forwarded once apps run.
        time.sleep(boot)
    # fly writes `pid` (the app is the rkt process); nspawn-based stage1s write `ppid`.
    atomic_write(pod.file("pid" if flavor == "fly" else "ppid"), str(supervisor))
    atomic_write(pod.file("pgid"), str(os.getpgid(0)))
    if flavor != "fly":
        missing_host = _missing_host_paths(manifest)
        if missing_host:
            # systemd-nspawn refuses the bind mount after the pod has started: the pod
            # has a start time but no app ever ran and no exit code is recorded.
            sys.stderr.write(
                f"Failed to stat {missing_host[0]}: No such file or directory\n"
                "Attempted to remove disk file system under "
                f'"/run/systemd/nspawn/propagate/rkt-{pod.uuid}", and we can\'t allow that.\n'
            )
            return 1
    children: dict[int, str] = {}
    for name, path, argv, env, cwd in specs:
        child = os.fork()
        if child == 0:  # pragma: no cover - the child execs or exits
            try:
                os.setpgid(0, 0)
                libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the supervisor
                if os.getppid() != supervisor:
                    os._exit(137)
                signal.set_wakeup_fd(-1)
                for signum in (*forwarded, signal.SIGCHLD, signal.SIGPIPE, signal.SIGXFSZ):
                    signal.signal(signum, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                if not ctx.opts.get("interactive"):
                    null = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(null, 0)
                program = missing.get(name)
                if program is not None:
                    message, code = _exec_failure(program, flavor)
                    os.write(2, message.encode())
                    os._exit(code)
                if cwd:
                    os.chdir(cwd)
                os.execve(path, argv, env)
            except BaseException as exc:
                os.write(2, f"run: failed to start {name}: {exc}\n".encode())
            os._exit(127)
        with contextlib.suppress(OSError):  # the child did it first (or already exec'd)
            os.setpgid(child, child)
        children[child] = name
    groups = list(children)
    atomic_write(pod.file("fake-apps.json"), json.dumps({"pgids": groups}))
    watchdog = _start_watchdog(libc, pod, groups, supervisor)
    forwarder = _start_forwarder(libc, pod, manifest, supervisor) if nets else None
    crash_file = os.path.join(ctx.data_dir, "fake", "crash", pod.uuid)
    fault_at = time.monotonic() + ctx.app_fault[1] if ctx.app_fault else None
    forced: int | None = None
    escalate_at: float | None = None
    codes: dict[str, int] = {}
    order: list[str] = []
    signalled: dict[str, int] = {}

    def kill_groups(signum: int) -> None:
        for group in groups:
            with contextlib.suppress(OSError):
                os.killpg(group, signum)

    while children:
        with contextlib.suppress(InterruptedError):
            select.select([rfd], [], [], SUPERVISOR_POLL_S)
        try:
            while os.read(rfd, 512):
                pass
        except OSError:  # BlockingIOError: drained
            pass
        while pending:
            signum = pending.pop(0)
            stopping = signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
            if stopping and flavor != "fly" and escalate_at is None:
                escalate_at = time.monotonic() + STOP_ESCALATE_S
            kill_groups(signum)
        now = time.monotonic()
        if forced is None and os.path.exists(crash_file):
            text = (read_text(crash_file) or "1").strip()
            forced = int(text) if text.lstrip("-").isdigit() else 1
            _unlink(crash_file)
            kill_groups(signal.SIGKILL)
        if forced is None and fault_at is not None and now >= fault_at and ctx.app_fault:
            forced = ctx.app_fault[0]
            kill_groups(signal.SIGKILL)
        if escalate_at is not None and now >= escalate_at:
            kill_groups(signal.SIGKILL)
            escalate_at = None
        while True:
            try:
                child, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if child == 0:
                break
            name = children.pop(child, None)
            if name is None:
                continue  # an orphaned grandchild (we are its subreaper) or the watchdog
            if forced is not None:
                code = forced
            elif os.WIFEXITED(status):
                code = os.WEXITSTATUS(status)
            else:
                sig = os.WTERMSIG(status)
                signalled[name] = sig
                code = 0 if sig in CLEAN_SIGNALS else 128 + sig
            codes[name] = code
            order.append(name)
            if flavor != "fly":  # stage1 records each app's status as it stops
                status_file = pod.file("stage1", "rootfs", "rkt", "status", name)
                atomic_write(status_file, str(code))
    # The pod is over: like a container teardown, nothing of it may outlive it.
    kill_groups(signal.SIGKILL)
    _kill(watchdog, signal.SIGKILL)
    if forwarder is not None:
        _kill(forwarder, signal.SIGKILL)
    _reap_all()
    if flavor == "fly" and forced is None and signalled:
        return -next(iter(signalled.values()))
    return next((codes[n] for n in order if codes[n] != 0), 0)


def _start_watchdog(libc: object, pod: Pod, groups: list[int], supervisor: int) -> int:
    """Fork a process that SIGKILLs the app groups when the supervisor dies (PDEATHSIG)."""
    import signal

    child = os.fork()
    if child != 0:
        return child
    try:  # pragma: no cover - runs in the watchdog
        os.close(pod.fd)  # never keep the pod lock alive on our own
        signal.set_wakeup_fd(-1)
        for signum in (
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGHUP,
            signal.SIGQUIT,
            signal.SIGUSR1,
            signal.SIGUSR2,
            signal.SIGCHLD,
        ):
            signal.signal(signum, signal.SIG_IGN)

        def reap_groups(_s: int, _f: object) -> None:
            for group in groups:
                with contextlib.suppress(OSError):
                    os.killpg(group, signal.SIGKILL)
            os._exit(0)

        signal.signal(signal.SIGUSR2, reap_groups)
        libc.prctl(1, signal.SIGUSR2)  # type: ignore[attr-defined]
        if os.getppid() != supervisor:
            reap_groups(0, None)
        while True:
            signal.pause()
    finally:
        os._exit(0)


def _forwarded_ports(manifest: dict) -> list[tuple[str, int, int]]:
    """(host ip, host port, app port) of each `--port` whose name a TCP app port declares."""
    declared: dict[str, int] = {}
    for runtime in manifest.get("apps") or []:
        for port in (runtime.get("app") or {}).get("ports") or []:
            if isinstance(port, dict) and str(port.get("protocol", "tcp")) == "tcp":
                with contextlib.suppress(TypeError, ValueError):
                    declared.setdefault(str(port.get("name")), int(port.get("port")))
    found = []
    for port in manifest.get("ports") or []:
        name = str(port.get("name")) if isinstance(port, dict) else ""
        if name in declared:
            host_ip = str(port.get("hostIP") or "0.0.0.0")  # rkt forwards on every address
            found.append((host_ip, int(port.get("hostPort", 0)), declared[name]))
    return found


def _start_forwarder(libc: object, pod: Pod, manifest: dict, supervisor: int) -> int | None:
    """Fork a TCP forwarder for the pod's `--port`s (contained networks only), if any.

    Real rkt DNATs each host port to the pod's address; fake apps share the host's
    network, so host port -> 127.0.0.1:<app port> is the equivalent. It dies with the
    supervisor (PDEATHSIG) and is killed when the pod ends.
    """
    import select
    import signal
    import socket

    ports = _forwarded_ports(manifest)
    if not ports:
        return None
    child = os.fork()
    if child != 0:
        return child
    try:  # pragma: no cover - runs in the forwarder
        os.close(pod.fd)  # never keep the pod lock alive on our own
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        libc.prctl(1, signal.SIGKILL)  # type: ignore[attr-defined]
        if os.getppid() != supervisor:
            os._exit(0)
        listeners: dict[socket.socket, int] = {}
        for host_ip, host_port, app_port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host_ip, host_port))
                sock.listen(16)
            except OSError as exc:
                os.write(2, f"fake: cannot forward host port {host_port}: {exc}\n".encode())
                sock.close()
                continue
            listeners[sock] = app_port
        peers: dict[socket.socket, socket.socket] = {}
        while listeners:
            readable, _, _ = select.select([*listeners, *peers], [], [])
            for sock in readable:
                if sock in listeners:
                    conn, _addr = sock.accept()
                    try:
                        upstream = socket.create_connection(("127.0.0.1", listeners[sock]), 5)
                    except OSError:
                        conn.close()  # nothing listens in the pod: the client sees a reset
                        continue
                    peers[conn], peers[upstream] = upstream, conn
                    continue
                if sock not in peers:
                    continue
                try:
                    data = sock.recv(65536)
                    if data:
                        peers[sock].sendall(data)
                        continue
                except OSError:
                    pass
                other = peers.pop(sock)
                peers.pop(other, None)
                sock.close()
                other.close()
    finally:
        os._exit(0)


def _reap_all(timeout: float = 1.0) -> None:
    """Reap what is left (the watchdog, orphans); give up on escapees after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                if time.monotonic() >= deadline:
                    return
                time.sleep(0.01)
        except ChildProcessError:
            return


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# --------------------------------------------------------------------------------------
# Pod-reading commands: list, status, cat-manifest


class UsageExit(Exception):
    pass


def _get_pod(ctx: Ctx, arg: str, context: str) -> Pod:
    try:
        return resolve_pod(ctx.data_dir, arg)
    except RktError as exc:
        raise fail(context, exc) from None


def fmt_nets(nets: list[dict]) -> str:
    return ", ".join(f"{n.get('netName')}:ip4={n.get('ip')}" for n in nets)


def _app_state(pod_state: str) -> str:
    if pod_state == "prepared":
        return "created"
    if pod_state == "running":
        return "running"
    return "exited" if pod_state in AFTER_RUN else "unknown"


def pod_to_json(pod: Pod) -> dict:
    """lib.NewPodFromInternalPod (api/v1 Pod): Go's field order, omitempty honoured."""
    state = pod.state
    out: dict[str, object] = {"name": pod.uuid, "state": state}
    nets = pod.nets()
    if nets:
        out["networks"] = nets
    created = pod.created_ns() if state not in NO_MANIFEST else None
    if created is None:
        raise RktError("invalid creation time")
    started = pod.started_ns()
    marked = pod.gc_marked_ns()
    manifest = pod.manifest() or {}
    apps = pod.apps() if state not in NO_MANIFEST else []
    if apps:
        out["app_names"] = [a.get("name") for a in apps]
        volumes = {v.get("name"): v for v in manifest.get("volumes") or [] if isinstance(v, dict)}
        out["apps"] = [_app_to_json(pod, a, state, created, started, marked, volumes) for a in apps]
    out["created_at"] = created // _SECOND
    if started is not None:
        out["started_at"] = started // _SECOND
    for key, field in (("userAnnotations", "user_annotations"), ("userLabels", "user_labels")):
        value = manifest.get(key)
        if isinstance(value, dict) and value:
            out[field] = dict(sorted(value.items()))
    return out


def _app_to_json(
    pod: Pod,
    runtime: dict,
    pod_state: str,
    created: int,
    started: int | None,
    marked: int | None,
    volumes: dict,
) -> dict:
    name = str(runtime.get("name"))
    code = pod.exit_code(name)
    out: dict[str, object] = {
        "name": name,
        "state": "exited" if code is not None else _app_state(pod_state),
        "created_at": created,
    }
    if started is not None:
        out["started_at"] = started
    if marked is not None:
        out["finished_at"] = marked
    if code is not None:
        out["exit_code"] = code
    out["image_id"] = (runtime.get("image") or {}).get("id", "")
    mounts = []
    for mount in runtime.get("mounts") or []:
        volume = volumes.get(mount.get("volume")) or {}
        mounts.append(
            {
                "name": mount.get("volume"),
                "container_path": mount.get("path"),
                "host_path": volume.get("source", ""),
                "read_only": bool(volume.get("readOnly", False)),
            }
        )
    if mounts:
        out["mounts"] = mounts
    app = runtime.get("app") or {}
    for key, field in (("userAnnotations", "user_annotations"), ("userLabels", "user_labels")):
        value = app.get(key)
        if isinstance(value, dict) and value:
            out[field] = dict(sorted(value.items()))
    return out


def print_errors(errors: list[str], when: str) -> None:
    """rkt's printErrors block (stderr), printed after a listing that had per-item errors."""
    Out.err(f"{len(errors)} error(s) encountered when {when}:")
    Out.err("----------------------------------------")
    for error in errors:
        Out.err(error)
        Out.err("----------------------------------------")
    Out.err("misc:")
    Out.err(f"  rkt's appc version: {APPC_VERSION}")
    Out.err("")


def cmd_list(ctx: Ctx, rest: list[str]) -> int:
    fmt = str(ctx.opts.get("format") or "")
    full = bool(ctx.opts.get("full"))
    errors: list[str] = []
    pods: list[dict] = []
    rows: list[str] = []
    if not fmt and not ctx.opts.get("no-legend"):
        rows.append(
            "UUID\tAPP\tIMAGE NAME\tIMAGE ID\tSTATE\tCREATED\tSTARTED\tNETWORKS"
            if full
            else "UUID\tAPP\tIMAGE NAME\tSTATE\tCREATED\tSTARTED\tNETWORKS"
        )
    now = time.time_ns()
    try:
        for pod in walk_pods(ctx.data_dir):
            if fmt:
                try:
                    pods.append(pod_to_json(pod))
                except RktError as exc:
                    errors.append(exc.inner)
                continue
            rows.extend(_pod_rows(pod, full, now, errors))
    except RktError as exc:
        raise fail("failed to get pod handles", exc) from None
    if fmt:
        Out.out(go_json(pods or None, pretty=fmt == "json-pretty"))
    else:
        Out.out(tabwrite("".join(r + "\n" for r in rows)) if rows else "")
    if errors:
        print_errors(errors, "listing pods")
    return 0


def _pod_rows(pod: Pod, full: bool, now: int, errors: list[str]) -> list[str]:
    state = pod.state
    apps = pod.apps() if state not in NO_MANIFEST else []
    created = pod.created_ns() if state not in NO_MANIFEST else None
    started = pod.started_ns()
    created_s = fmt_time(created) if full else humanize(created, now)
    started_s = "" if started is None else (fmt_time(started) if full else humanize(started, now))
    uuid = pod.uuid if full else pod.uuid[:8]
    nets = fmt_nets(pod.nets())
    if not apps:
        cells = [uuid, "-", "-", *(["-"] if full else []), state, created_s, started_s, nets]
        return ["\t".join(cells)]
    rows = []
    for runtime in apps:
        name = str(runtime.get("name"))
        image = read_json(pod.file("appsinfo", name, "manifest"))
        if isinstance(image, dict):
            image_name = image_display_name(image)
        else:
            errors.append(f"pod {pod.uuid} ImageManifest could not be loaded")
            image_name = "--"
        image_id = str((runtime.get("image") or {}).get("id", ""))[:19]
        cells = [
            uuid,
            name,
            image_name,
            *([image_id] if full else []),
            state,
            created_s,
            started_s,
            nets,
        ]
        rows.append("\t".join(cells))
        uuid = state = created_s = started_s = nets = ""
    return rows


def _parse_wait(value: str) -> int | None:
    """status --wait/--wait-ready: ns to wait, -1 forever, 0 not at all; None if invalid."""
    if value == "":
        return -1
    try:
        return -1 if parse_go_bool(value) else 0
    except ValueError:
        pass
    try:
        return parse_go_duration(value)
    except ValueError:
        return None


def _uuid_arg(ctx: Ctx, rest: list[str], code_on_bad_file: int) -> str:
    uuid_file = str(ctx.opts.get("uuid-file") or "")
    if bool(uuid_file) == bool(rest) or len(rest) > 1:
        raise UsageExit()
    if uuid_file:
        try:
            return read_uuid_file(uuid_file)
        except RktError as exc:
            raise fail("unable to resolve UUID from file", exc, code_on_bad_file) from None
    return rest[0]


def cmd_status(ctx: Ctx, rest: list[str]) -> int:
    arg = _uuid_arg(ctx, rest, 1)
    wait = _parse_wait(str(ctx.opts.get("wait", "false")))
    ready = _parse_wait(str(ctx.opts.get("wait-ready", "false")))
    if wait is None or ready is None:
        raise UsageExit()
    pod = _get_pod(ctx, arg, "problem retrieving pod")
    if ready != 0:
        deadline = None if ready < 0 else time.monotonic() + ready / _SECOND
        while not os.path.islink(pod.file("stage1", "rootfs", "rkt", "supervisor-status")):
            if deadline is not None and time.monotonic() >= deadline:
                raise fail("error waiting for pod readiness", "context deadline exceeded")
            time.sleep(0.1)
    if wait != 0:
        pod = _wait_finished(ctx, pod, wait)
    fmt = str(ctx.opts.get("format") or "")
    if fmt:
        try:
            doc = pod_to_json(pod)
        except RktError as exc:
            raise fail("unable to print status", f"error converting pod: {exc.inner}") from None
        Out.out(go_json(doc, pretty=fmt == "json-pretty"))
        return 0
    state = pod.state
    lines = [f"state={state}", f"created={fmt_time(pod.created_ns())}"]
    started = pod.started_ns()
    if started is not None:
        lines.append(f"started={fmt_time(started)}")
    if state in ("running", "exited"):
        lines.append(f"networks={fmt_nets(pod.nets())}")
    if state in ("running", "deleting", "exited deleting", "exited", "exited garbage"):
        pid = pod.pid()
        if pid is not None:
            lines.append(f"pid={pid}")
        lines.append(f"exited={'true' if state in ('exited', 'exited garbage') else 'false'}")
        if state != "running":
            for runtime in pod.apps():
                code = pod.exit_code(str(runtime.get("name")))
                if code is not None:
                    lines.append(f"app-{runtime.get('name')}={code}")
    Out.out("\n".join(lines))
    return 0


def _wait_finished(ctx: Ctx, pod: Pod, wait_ns: int) -> Pod:
    """pkg/pod WaitFinished: poll every 100 ms until the lock is free and the state final."""
    deadline = None if wait_ns < 0 else time.monotonic() + wait_ns / _SECOND
    while True:
        try:
            fcntl.flock(pod.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            locked = True
        else:
            locked = False
            fcntl.flock(pod.fd, fcntl.LOCK_UN)
        if not locked:
            fresh = open_pod(ctx.data_dir, pod.uuid)
            if fresh is None:
                return pod
            pod.close()
            pod = fresh
            if pod.state == "prepared":
                time.sleep(1)
            elif pod.state in AFTER_RUN or pod.state == "aborted prepare":
                return pod
        if deadline is not None and time.monotonic() >= deadline:
            raise fail("error waiting for pod to finish", "context deadline exceeded")
        time.sleep(0.1)


def cmd_cat_manifest(ctx: Ctx, rest: list[str]) -> int:
    uuid_file = str(ctx.opts.get("uuid-file") or "")
    if uuid_file:
        try:
            arg = read_uuid_file(uuid_file)
        except RktError as exc:
            raise fail("unable to resolve UUID from file", exc) from None
    elif len(rest) != 1:
        raise UsageExit()
    else:
        arg = rest[0]
    pod = _get_pod(ctx, arg, "problem retrieving pod")
    manifest = pod.manifest() if pod.state not in NO_MANIFEST else None
    if manifest is None:
        return 254  # rkt exits 254 without a message here
    pretty = ctx.opts.get("pretty-print", True)
    Out.out(go_json(manifest, pretty=bool(pretty)))
    return 0


# --------------------------------------------------------------------------------------
# Pod-changing commands: stop, rm, gc, enter


def cmd_stop(ctx: Ctx, rest: list[str]) -> int:
    uuid_file = str(ctx.opts.get("uuid-file") or "")
    ret = 0
    if not rest and uuid_file:
        try:
            args = [read_uuid_file(uuid_file)]
        except RktError as exc:
            Out.err_e("unable to resolve UUID from file", exc)
            args, ret = [], 1
    elif rest and not uuid_file:
        args = rest
    else:
        raise UsageExit()
    failures = 0
    for arg in args:
        try:
            pod = resolve_pod(ctx.data_dir, arg)
        except RktError as exc:
            Out.err_e("cannot get pod", exc)
            failures += 1
            continue
        try:
            if pod.state in AFTER_RUN:
                Out.out(f"pod {go_quote(pod.uuid)} is already stopped")
            elif pod.state != "running":
                Out.err(f"pod {go_quote(pod.uuid)} is not running")
                failures += 1
            elif _signal_pod(pod, bool(ctx.opts.get("force"))):
                Out.out(go_quote(pod.uuid))
            else:
                Out.err(f"error stopping {go_quote(pod.uuid)}: exit status 254")
                failures += 1
        finally:
            pod.close()
    if failures:
        Out.err(f"failed to stop {failures} pod(s)")
        return 254
    return ret


def _signal_pod(pod: Pod, force: bool) -> bool:
    """Stage1 stop: SIGTERM (SIGKILL with --force) the pid, else its process group."""
    import signal

    signum = signal.SIGKILL if force else signal.SIGTERM
    pid = pod.pid()
    if pid is None:
        # `running` precedes the pid file (the boot window): stage1's stop entrypoint
        # fails at once and prints this raw line (FINDINGS; fly: `pid`, nspawn: `ppid`).
        name = "pid" if pod.fake_info().get("flavor") == "fly" else "ppid"
        sys.stderr.write(f"error reading pid: open {name}: no such file or directory\n")
        return False
    killed_first = False
    if force and pod.fake_info().get("flavor") == "fly":
        # fly: the app is the rkt process, so SIGKILL ends it before it can see its
        # children die and exit with a code of its own (a race on a loaded machine).
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
            killed_first = True
    if force:
        # Like a forced container kill: the whole app, not just the supervisor.
        apps = read_json(pod.file("fake-apps.json"))
        for group in apps.get("pgids", []) if isinstance(apps, dict) else []:
            with contextlib.suppress(OSError, ValueError):
                os.killpg(int(group), signum)
    if killed_first:
        return True
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        text = read_text(pod.file("pgid")) or ""
        if not text.strip().isdigit():
            return False
        try:
            os.killpg(int(text.strip()), signum)
        except OSError:
            return False
    return True


def cmd_rm(ctx: Ctx, rest: list[str]) -> int:
    uuid_file = str(ctx.opts.get("uuid-file") or "")
    ret = 0
    if not rest and uuid_file:
        try:
            args = [read_uuid_file(uuid_file)]
        except RktError as exc:
            Out.err_e("unable to resolve UUID from file", exc)
            args, ret = [], 254
    elif rest and not uuid_file:
        args = rest
    else:
        raise UsageExit()
    for arg in args:
        try:
            pod = resolve_pod(ctx.data_dir, arg)
        except RktError as exc:
            Out.err_e("cannot get pod", exc)
            ret = 254
            continue
        try:
            if _remove_pod(pod):
                Out.out(go_quote(pod.uuid))
            else:
                ret = 254
        finally:
            pod.close()
    if ret == 254:
        Out.err("failed to remove one or more pods")
    return ret


def _remove_pod(pod: Pod) -> bool:
    state = pod.state
    quoted = go_quote(pod.uuid)
    if state == "running":
        Out.err(f"pod {quoted} is currently running")
        return False
    if state in ("embryo", "preparing"):
        Out.err(f"pod {quoted} is currently being prepared")
        return False
    if state == "deleting":
        Out.err(f"pod {quoted} is currently being deleted")
        return False
    try:
        if state == "aborted prepare":
            Out.err(f"moving failed prepare {quoted} to garbage")
            pod.move("garbage")
        elif state == "prepared":
            Out.err(f"moving expired prepared pod {quoted} to garbage")
            pod.move("garbage")
        elif state == "exited":
            pod.move("exited-garbage")
    except FileNotFoundError:
        pass
    except OSError as exc:
        Out.err_e("rename error", os_error("rename", exc, pod.path))
        return False
    pod.delete()
    return True


def cmd_gc(ctx: Ctx, rest: list[str]) -> int:
    data_dir = ctx.data_dir
    grace = ctx.opts.get("grace-period", 30 * 60 * _SECOND)
    expire = ctx.opts.get("expire-prepared", 24 * 3600 * _SECOND)
    assert isinstance(grace, int)
    assert isinstance(expire, int)
    try:
        for pod in walk_pods(data_dir, ("run",)):
            if pod.state == "exited":
                Out.err(f"moving pod {go_quote(pod.uuid)} to garbage")
                _gc_move(pod, "exited-garbage")
    except RktError as exc:
        raise fail("failed to rename exited pods", exc) from None
    try:
        for pod in walk_pods(data_dir, ("prepare",)):
            if pod.state == "aborted prepare":
                Out.err(f"moving failed prepare {go_quote(pod.uuid)} to garbage")
                _gc_move(pod, "garbage")
    except RktError as exc:
        raise fail("failed to rename aborted pods", exc) from None
    if ctx.opts.get("mark-only"):
        return 0
    now = time.time_ns()
    try:
        for pod in walk_pods(data_dir, ("prepared",)):
            ctime = _ctime(pod)
            if ctime is not None and now > ctime + expire:
                Out.err(f"moving expired prepared pod {go_quote(pod.uuid)} to garbage")
                _gc_move(pod, "garbage")
    except RktError as exc:
        raise fail("failed to rename expired prepared pods", exc) from None
    try:
        for pod in walk_pods(data_dir, ("exited-garbage",)):
            ctime = _ctime(pod)
            if ctime is None:
                continue
            if time.time_ns() > ctime + grace:
                pod.lock_exclusive(blocking=True)
                Out.out(f"Garbage collecting pod {go_quote(pod.uuid)}")
                _rmtree(pod.path)
            else:
                Out.err(
                    f"pod {go_quote(pod.uuid)} not removed: still within grace period "
                    f"({fmt_go_duration(grace)})"
                )
    except RktError as exc:
        raise fail("failed to empty exitedGarbage", exc) from None
    try:
        for pod in walk_pods(data_dir, ("garbage",)):
            pod.lock_exclusive(blocking=True)
            Out.out(f"Garbage collecting pod {go_quote(pod.uuid)}")
            _rmtree(pod.path)
    except RktError as exc:
        raise fail("failed to empty garbage", exc) from None
    return 0


def _gc_move(pod: Pod, dest: str) -> None:
    try:
        pod.move(dest)
    except FileNotFoundError:
        pass
    except OSError as exc:
        Out.err_e("rename error", os_error("rename", exc, pod.path))


def _ctime(pod: Pod) -> int | None:
    try:
        return os.lstat(pod.path).st_ctime_ns
    except OSError:
        return None


def cmd_enter(ctx: Ctx, rest: list[str]) -> int:
    if not rest:
        raise UsageExit()
    pod = _get_pod(ctx, rest[0], "problem retrieving pod")
    if pod.state != "running":
        Out.err(f"pod {go_quote(pod.uuid)} isn't currently running")
        return 254
    apps = pod.apps()
    wanted = str(ctx.opts.get("app") or "")
    if wanted:
        chosen = [a for a in apps if a.get("name") == wanted]
        if not chosen:
            Out.err(f"app {go_quote(wanted)} not found in pod {go_quote(pod.uuid)}")
            return 254
    elif len(apps) > 1:
        Out.err("pod contains multiple apps:")
        for app in apps:
            Out.err(f"\t{app.get('name')}")
        Out.err('unable to determine app name: specify app using "rkt enter --app= ..."')
        return 254
    else:
        chosen = apps
    command = rest[1:]
    if not command:
        Out.err('no command specified, assuming "/bin/bash"')
        command = ["/bin/bash"]
    _, _, env, cwd = _app_process(ctx, pod, chosen[0])
    path = _which(command[0], env.get("PATH", DEFAULT_PATH) + ":" + os.environ.get("PATH", ""))
    if path is None:
        Out.err(f"enter: exec: {go_quote(command[0])}: executable file not found in $PATH")
        return 254
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:  # pragma: no cover
        try:
            if cwd:
                os.chdir(cwd)
            os.execve(path, command, env)
        finally:
            os._exit(127)
    _, status = os.waitpid(child, 0)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + os.WTERMSIG(status)


# --------------------------------------------------------------------------------------
# Images and keys: fetch, image list/rm/gc/cat-manifest, trust


def cmd_fetch(ctx: Ctx, rest: list[str]) -> int:
    try:
        parse_apps(ctx, rest, ctx.cmd.flagmap() if ctx.cmd else {}, allow_app_args=False)
    except RktError as exc:
        raise fail("unable to parse arguments", exc) from None
    if not ctx.apps:
        Out.err("must provide at least one image")
        return 254
    policy = str(ctx.opts.get("pull-policy") or "update")
    if ctx.opts.get("store-only") and ctx.opts.get("no-store"):
        Out.err("both --store-only and --no-store specified")
        return 254
    if ctx.opts.get("store-only"):
        policy = "never"
    if ctx.opts.get("no-store"):
        policy = "update"
    try:
        open_store(ctx.data_dir)
    except RktError as exc:
        raise fail(exc.chain[0], exc.inner) from None
    try:
        images = [find_image(ctx, a.image, policy, a.signature) for a in ctx.apps]
    except RktError as exc:
        Out.err(exc.inner)
        return 254
    for image in images:
        Out.out(image["id"] if ctx.opts.get("full") else image["id"][:39])
    return 0


def _find_stored(data_dir: str, ref: str) -> list[dict]:
    images = store_images(data_dir)
    if ref.startswith("sha512-"):
        return [i for i in images if i["id"].startswith(ref.lower())]
    explicit = ":" in ref.rsplit("/", 1)[-1]
    return [
        i
        for i in images
        if (i.get("name") == ref if explicit else i.get("manifest", {}).get("name") == ref)
    ]


def cmd_image_list(ctx: Ctx, rest: list[str]) -> int:
    try:
        open_store(ctx.data_dir)
    except RktError as exc:
        raise fail(exc.chain[0], exc.inner) from None
    images = store_images(ctx.data_dir)
    sort_keys = str(ctx.opts.get("sort") or "importtime").split(",")
    key_of = {
        "name": "name",
        "importtime": "import_time",
        "lastused": "last_used_time",
        "size": "size",
    }
    images.sort(key=lambda i: tuple(i.get(key_of[k], 0) for k in sort_keys))
    if ctx.opts.get("order") == "desc":
        images.reverse()
    fmt = str(ctx.opts.get("format") or "")
    if fmt:
        entries = [
            {
                "id": i["id"],
                "name": i.get("name", ""),
                "import_time": i.get("import_time", 0),
                "last_used_time": i.get("last_used_time", 0),
                "size": i.get("size", 0),
            }
            for i in images
        ]
        Out.out(go_json(entries or None, pretty=fmt == "json-pretty"))
        return 0
    full = bool(ctx.opts.get("full"))
    fields = str(ctx.opts.get("fields") or "id,name,size,importtime,lastused").split(",")
    headers = {
        "id": "ID",
        "name": "NAME",
        "size": "SIZE",
        "importtime": "IMPORT TIME",
        "lastused": "LAST USED",
    }
    now = time.time_ns()
    rows = [] if ctx.opts.get("no-legend") else ["\t".join(headers[f] for f in fields)]
    for image in images:
        cells = {
            "id": image["id"] if full else image["id"][:19],
            "name": image.get("name", ""),
            "size": str(image.get("size", 0)) if full else ibytes(int(image.get("size", 0))),
            "importtime": (fmt_time if full else humanize)(image.get("import_time")),
            "lastused": (fmt_time if full else humanize)(image.get("last_used_time")),
        }
        rows.append(
            "\t".join(
                cells[f] if f != "importtime" or full else humanize(image.get("import_time"), now)
                for f in fields
            )
        )
    Out.out(tabwrite("".join(r + "\n" for r in rows)) if rows else "")
    return 0


def _set_fields(ctx: Ctx, flag: Flag, value: str) -> None:
    allowed = ("id", "name", "size", "importtime", "lastused")
    for field in value.split(","):
        if field not in allowed:
            raise ValueError(
                f"unknown field {go_quote(field)}. Accepted values: {', '.join(allowed)}"
            )
    ctx.opts[flag.name] = value


def _set_sort(ctx: Ctx, flag: Flag, value: str) -> None:
    allowed = ("name", "importtime", "lastused", "size")
    for field in value.split(","):
        if field not in allowed:
            raise ValueError(
                f"unknown field {go_quote(field)}. Accepted values: {', '.join(allowed)}"
            )
    ctx.opts[flag.name] = value


def _set_order(ctx: Ctx, flag: Flag, value: str) -> None:
    if value not in ("asc", "desc"):
        raise ValueError(f"unknown order {go_quote(value)}. Accepted values: asc, desc")
    ctx.opts[flag.name] = value


def cmd_image_rm(ctx: Ctx, rest: list[str]) -> int:
    if not rest:
        raise UsageExit()
    removed = failed = 0
    for ref in rest:
        found = _find_stored(ctx.data_dir, ref)
        if not found:
            Out.err("no image IDs found")
            continue
        for image in found:
            try:
                os.unlink(os.path.join(store_dir(ctx.data_dir), image["id"] + ".json"))
            except OSError as exc:
                Out.err_e(f"error removing aci for image {go_quote(image['id'])}", str(exc))
                failed += 1
                continue
            Out.out(f"successfully removed aci for image: {go_quote(image['id'])}")
            removed += 1
    if removed:
        Out.err(f"{removed} image(s) successfully removed")
    if failed:
        Out.err(f"{failed} image(s) cannot be removed")
        return 254
    return 0


def cmd_image_gc(ctx: Ctx, rest: list[str]) -> int:
    grace = ctx.opts.get("grace-period", 24 * 3600 * _SECOND)
    assert isinstance(grace, int)
    used: set[str] = set()
    try:
        for pod in walk_pods(ctx.data_dir):
            used.update(str((a.get("image") or {}).get("id")) for a in pod.apps())
    except RktError as exc:
        raise fail("failed to get pod handles", exc) from None
    now = time.time_ns()
    removed = 0
    for image in store_images(ctx.data_dir):
        if image["id"] in used or now <= int(image.get("last_used_time", 0)) + grace:
            continue
        _unlink(os.path.join(store_dir(ctx.data_dir), image["id"] + ".json"))
        Out.out(f"successfully removed aci for image: {go_quote(image['id'])}")
        removed += 1
    if removed:
        Out.err(f"{removed} image(s) successfully removed")
    return 0


def cmd_image_cat_manifest(ctx: Ctx, rest: list[str]) -> int:
    if len(rest) != 1:
        raise UsageExit()
    found = _find_stored(ctx.data_dir, rest[0])
    if len(found) != 1:
        raise fail(
            "unable to get image manifest",
            "no image IDs found" if not found else "ambiguous image ID",
        )
    Out.out(go_json(found[0]["manifest"], pretty=bool(ctx.opts.get("pretty-print", True))))
    return 0


def cmd_trust(ctx: Ctx, rest: list[str]) -> int:
    prefix = str(ctx.opts.get("prefix") or "")
    root = bool(ctx.opts.get("root"))
    if not prefix and not root:
        if rest:
            Out.err(
                "aborting due to implicit unbounded trust (root domain)\n"
                "Please provide a specific domain prefix to trust:\n"
                '    rkt trust --prefix "example.com/foo" [PUBKEY]\n'
                '    rkt trust --prefix "example.com/foo/*" [PUBKEY]\n'
                "Otherwise, trust at the root domain (not recommended) must be explicitly "
                "requested:\n    rkt trust --root PUBKEY"
            )
            return 254
        raise UsageExit()
    if prefix and root:
        Out.err("--root and --prefix usage mutually exclusive")
        return 254
    if "image" in ctx.insecure:
        Out.err("could not get the keystore")
        return 254
    if "://" in prefix:
        Out.err(f"--prefix must not contain a URL scheme, omit {prefix.split('://', 1)[0]}://")
        return 254
    locations = list(rest)
    if not locations:
        if not prefix:
            raise fail("error determining key location", "empty prefix")
        locations = [f"https://{prefix.split('/', 1)[0]}/pubkeys.gpg"]
    import hashlib

    for location in locations:
        scheme = location.split("://", 1)[0] if "://" in location else ""
        if scheme == "http" and not ctx.opts.get("insecure-allow-http"):
            raise fail("error adding keys", "--insecure-allow-http required for http URLs")
        if scheme not in ("", "http", "https"):
            raise fail("error adding keys", "only local files and http or https URLs supported")
        if scheme:
            material = location.encode()
        else:
            try:
                with open(location, "rb") as fh:
                    material = fh.read()
            except OSError as exc:
                raise fail("error adding keys", os_error("open", exc, location)) from None
        fingerprint = hashlib.sha1(material, usedforsecurity=False).hexdigest()
        sys.stderr.write(f"pubkey: prefix: {go_quote(prefix)}\nkey: {go_quote(location)}\n")
        groups = [fingerprint[i : i + 4].upper() for i in range(0, 40, 4)]
        Out.out("gpg key fingerprint is: " + " ".join(groups[:5]) + "  " + " ".join(groups[5:]))
        Out.out(f"\tFake rkt signing key for {prefix or 'root'} <fake-rkt@example.com>")
        force = bool(ctx.opts.get("skip-fingerprint-review")) or (
            scheme == "https" and bool(ctx.opts.get("trust-keys-from-https"))
        )
        if not force:
            if not (sys.stdin.isatty() and sys.stderr.isatty()):
                for line in (
                    f"To trust the key for {go_quote(prefix)}, do one of the following:",
                    " - call rkt with --trust-keys-from-https",
                    f" - run: rkt trust --prefix {go_quote(prefix)}",
                ):
                    sys.stderr.write(f"pubkey: {line}\n")
                raise fail(
                    "error adding keys",
                    "error reviewing key: unable to ask user to "
                    "review fingerprint due to lack of tty",
                )
            answer = ""
            while answer not in ("yes", "no"):
                Out.out("Are you sure you want to trust this key (yes/no)?")
                answer = sys.stdin.readline().strip()
            if answer == "no":
                sys.stderr.write(f"pubkey: not trusting {go_quote(location)}\n")
                continue
        how = "without" if force else "after"
        Out.out(
            f"Trusting {go_quote(location)} for prefix {go_quote(prefix)} {how} fingerprint review."
        )
        local = str(ctx.opts.get("local-config") or "/etc/rkt")
        sub = os.path.join("prefix.d", prefix) if prefix else "root.d"
        directory = os.path.join(local, "trustedkeys", sub)
        path = os.path.join(directory, fingerprint)
        try:
            os.makedirs(directory, 0o755, exist_ok=True)
            atomic_write(path, f"fake-rkt placeholder key for {prefix}\n{fingerprint}\n")
        except OSError as exc:
            raise fail(
                "error adding keys",
                os_error("mkdir" if not os.path.isdir(directory) else "open", exc),
            ) from None
        if prefix:
            Out.out(f"Added key for prefix {go_quote(prefix)} at {go_quote(path)}")
        else:
            Out.out(f"Added root key at {go_quote(path)}")
    return 0


def cmd_version(ctx: Ctx, rest: list[str]) -> int:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    Out.out(
        f"rkt Version: {RKT_VERSION}\nappc Version: {APPC_VERSION}\nGo Version: "
        f"{GO_VERSION}\nGo OS/Arch: linux/{arch}\nFeatures: -TPM -SDJOURNAL"
    )
    return 0


def cmd_not_implemented(ctx: Ctx, rest: list[str]) -> int:
    Out.err("not implemented by the fake rkt")
    return 254


# --------------------------------------------------------------------------------------
# The command tree


def _cmd_tree() -> Cmd:
    run_long = (
        "IMAGE should be a string referencing an image; either a hash, local file on\n"
        "disk, or URL. They will be checked in that order and the first match will be\n"
        "used.\n\n"
        "Volumes are made available to the container via --volume. Mounts bind volumes\n"
        "into each image's root within the container via --mount. --mount is\n"
        "position-sensitive; occurring before any images applies to all images, occurring\n"
        "after any images applies only to the nearest preceding image. Per-app mounts\n"
        "take precedence over global ones if they have the same path.\n\n"
        'An "--" may be used to inhibit rkt run\'s parsing of subsequent arguments, which\n'
        "will instead be appended to the preceding image app's exec arguments. End the\n"
        'image arguments with a lone "---" to resume argument parsing.'
    )
    prepare_long = (
        "Prepares the pod and returns its UUID for a subsequent call to run-prepared.\n\n"
        "Prepare is useful to get the UUID of the pod before running or when preparing\n"
        "takes a long time.\n\n"
        "IMAGE should be a string referencing an image; either a hash, local file on\n"
        "disk, or URL. They will be checked in that order and the first match will be\n"
        "used.\n\n"
        'An "--" may be used to inhibit rkt prepare\'s parsing of subsequent arguments,\n'
        "which will instead be appended to the preceding image app's exec arguments. End\n"
        'the image arguments with a lone "---" to resume argument parsing.'
    )
    status_long = (
        "Prints assorted information about the pod such as its state, pid and exit status.\n\n"
        "The --wait and --wait-ready flags accept boolean or timeout values. If set to true, "
        "wait indefinitely. If set to false, don't wait at all.\nThey can also be set to a "
        "duration. If the duration is less than zero, wait indefinitely. If the duration is "
        "zero, don't wait at all."
    )
    trust_long = (
        "Adds keys to the local keystore for use in verifying signed images.\n\n"
        "PUBKEY may be either a local file or URL.\n\n"
        "PREFIX scopes the applicability of PUBKEY to image names sharing PREFIX.\n\n"
        "Meta discovery of PUBKEY at PREFIX will be attempted if no PUBKEY is specified.\n\n"
        "To trust a key for all images instead of for specific images, --root can be\n"
        "specified. Path to a key file must be given (no discovery)."
    )
    gc_long = (
        "This is intended to be run periodically from a timer or cron job.\n\n"
        "Garbage collection is a 2-step process. First, stopped pods are moved to the\n"
        "garbage by one invocation of the gc command. A subsequent invocation will clean\n"
        "up the pod, assuming the pod has been in the garbage for more time than the\n"
        "specified grace period.\n\n"
        "Use --grace-period=0s to effectively disable the grace-period."
    )
    fetch_flags = [
        _f("full", "bool", "false", "print the full image hash after fetching"),
        _f("pull-policy", "string", "update", "when to pull an image", _set_pull_policy),
        _f(
            "signature",
            "value",
            "",
            "local signature file to use in validating the preceding image",
            _app_signature,
        ),
        *_STORE_FLAGS,
    ]
    pretty = _f("pretty-print", "bool", "true", "apply indent to format the output")
    image_cmds = [
        Cmd(
            "cat-manifest",
            "Inspect and print the image manifest",
            "image cat-manifest IMAGE",
            "IMAGE should be a string referencing an image: either an ID or an image name.",
            [pretty],
            cmd_image_cat_manifest,
        ),
        Cmd(
            "export",
            "Export a stored image to an ACI file",
            "image export IMAGE_ID OUTPUT_ACI_FILE",
            run=cmd_not_implemented,
        ),
        Cmd(
            "extract",
            "Extract a stored image to a directory",
            "image extract IMAGE OUTPUT_DIR",
            run=cmd_not_implemented,
        ),
        Cmd(
            "fetch",
            "Fetch image(s) and store them in the local store",
            "image fetch IMAGE_URL...",
            flags=fetch_flags,
            run=cmd_fetch,
            interspersed=False,
            hidden=True,
        ),
        Cmd(
            "gc",
            "Garbage collect local store",
            "image gc [--grace-period=duration]",
            "This is intended to be run periodically from a timer or cron job.",
            [
                _f(
                    "grace-period",
                    "duration",
                    "24h0m0s",
                    "duration to wait since an image was last used before removing it",
                )
            ],
            cmd_image_gc,
        ),
        Cmd(
            "list",
            "List images in the local store",
            "image list",
            "Optionally, allows the user to specify the fields and sort order.",
            [
                _f(
                    "fields",
                    "value",
                    "id,name,size,importtime,lastused",
                    'comma-separated list of fields to display. Accepted values: "id", "name", '
                    '"size", "importtime", "lastused"',
                    _set_fields,
                ),
                _f("format", "value", "", _FORMAT_LIST, _set_format),
                _f("full", "bool", "false", "use long output format"),
                _f("no-legend", "bool", "false", "suppress a legend with the list"),
                _f(
                    "order",
                    "value",
                    "asc",
                    "choose the sorting order if at least one sort field is provided (--sort). "
                    'Accepted values: "asc", "desc"',
                    _set_order,
                ),
                _f(
                    "sort",
                    "value",
                    "importtime",
                    "sort the output according to the provided comma-separated list of fields. "
                    'Accepted values: "name", "importtime", "lastused", "size"',
                    _set_sort,
                ),
            ],
            cmd_image_list,
        ),
        Cmd(
            "render",
            "Render a stored image to a directory with all its dependencies",
            "image render IMAGE OUTPUT_DIR",
            run=cmd_not_implemented,
        ),
        Cmd(
            "rm",
            "Remove one or more images with the given IDs or image names from the local store",
            "image rm IMAGE...",
            "Unlike image gc, image rm allows users to remove specific images.",
            run=cmd_image_rm,
        ),
        Cmd(
            "verify",
            "Verify one or more rendered images in the local store",
            "image verify IMAGE...",
            run=cmd_not_implemented,
        ),
    ]
    commands = [
        Cmd(
            "api-service", "Run API service (experimental)", "api-service", run=cmd_not_implemented
        ),
        Cmd(
            "cat-manifest",
            "Inspect and print the pod manifest",
            "cat-manifest --uuid-file=FILE | UUID ...",
            "UUID should be the UUID of a pod",
            [pretty, _UUID_FILE],
            cmd_cat_manifest,
        ),
        Cmd(
            "completion",
            "Output shell completion code for the specified shell",
            "completion SHELL",
            run=cmd_not_implemented,
        ),
        Cmd(
            "config",
            "Print configuration for each stage in JSON format",
            "config",
            run=cmd_not_implemented,
        ),
        Cmd(
            "enter",
            "Enter the namespaces of an app within a rkt pod",
            "enter [--app=APPNAME] UUID [CMD [ARGS ...]]",
            "UUID should be the UUID of a running pod.\n\nBy default the CMD that is run is "
            "/bin/bash, providing the user with shell\naccess to the running pod.",
            [_f("app", "string", "", "name of the app to enter within the specified pod")],
            cmd_enter,
            interspersed=False,
        ),
        Cmd(
            "export",
            "Export an app from an exited pod to an ACI file",
            "export UUID OUTPUT_ACI_FILE",
            run=cmd_not_implemented,
        ),
        Cmd(
            "fetch",
            "Fetch image(s) and store them in the local store",
            "fetch IMAGE_URL...",
            "Locates and downloads remote ACIs and their attached signatures.\n\nIf the ACI is "
            "available in the local store, the image will not be fetched\nagain.",
            fetch_flags,
            cmd_fetch,
            interspersed=False,
        ),
        Cmd(
            "gc",
            "Garbage collect rkt pods no longer in use",
            "gc [--grace-period=duration] [--expire-prepared=duration]",
            gc_long,
            [
                _f(
                    "expire-prepared",
                    "duration",
                    "24h0m0s",
                    "duration to wait before expiring prepared pods",
                ),
                _f(
                    "grace-period",
                    "duration",
                    "30m0s",
                    "duration to wait before discarding inactive pods from garbage",
                ),
                _f(
                    "mark-only",
                    "bool",
                    "false",
                    "if set to true, then the exited/aborted pods will be moved to the garbage "
                    "directories without actually deleting them, this is useful for marking the "
                    "exit time of a pod",
                ),
            ],
            cmd_gc,
        ),
        Cmd("help", "Help about any command", "help [command]", run=None),
        Cmd("image", "Operate on image(s) in the local store", "image [command]", subs=image_cmds),
        Cmd(
            "list",
            "List pods",
            "list",
            "Displays a table of information about the pods.",
            [
                _f("format", "value", "", _FORMAT_LIST, _set_format),
                _f("full", "bool", "false", "use long output format"),
                _f("no-legend", "bool", "false", "suppress a legend with the list"),
            ],
            cmd_list,
        ),
        Cmd(
            "metadata-service", "Run metadata service", "metadata-service", run=cmd_not_implemented
        ),
        Cmd(
            "prepare",
            "Prepare to run image(s) in a pod in rkt",
            "prepare [--volume=name,kind=host,...] [--mount volume=VOL,target=PATH] [--quiet] "
            "IMAGE [-- image-args...[---]]...",
            prepare_long,
            _PREPARE_FLAGS,
            cmd_prepare,
            interspersed=False,
        ),
        Cmd(
            "rm",
            "Remove all files and resources associated with an exited pod",
            "rm --uuid-file=FILE | UUID ...",
            "Unlike gc, rm allows users to remove specific pods.",
            [_UUID_FILE],
            cmd_rm,
        ),
        Cmd(
            "run",
            "Run image(s) in a pod in rkt",
            "run [--volume=name,kind=host,...] [--mount volume=VOL,target=PATH] IMAGE "
            "[-- image-args...[---]]...",
            run_long,
            _RUN_FLAGS,
            cmd_run,
            interspersed=False,
        ),
        Cmd(
            "run-prepared",
            "Run a prepared application pod in rkt",
            "run-prepared UUID",
            "Runs a previously prepared pod by its UUID",
            _RUN_PREPARED_FLAGS,
            cmd_run_prepared,
        ),
        Cmd(
            "status",
            "Check the status of a rkt pod",
            "status [--wait=bool|timeout] [--wait-ready=bool|timeout] --uuid-file=FILE | UUID",
            status_long,
            [
                _f(
                    "format",
                    "value",
                    "",
                    "choose the output format. Allowed format includes 'json', 'json-pretty'. If "
                    "empty, then the result is printed as key value pairs",
                    _set_format,
                ),
                _UUID_FILE,
                _f(
                    "wait",
                    "string",
                    "false",
                    "toggles waiting for the pod to finish. Use the output to determine the actual "
                    "terminal state.",
                    _set_wait,
                    noopt="true",
                ),
                _f(
                    "wait-ready",
                    "string",
                    "false",
                    "toggles waiting until the pod is ready.",
                    _set_wait,
                    noopt="true",
                ),
            ],
            cmd_status,
        ),
        Cmd(
            "stop",
            "Stop a pod",
            "stop --uuid-file=FILE | UUID ...",
            "",
            [_f("force", "bool", "false", "forced stopping"), _UUID_FILE],
            cmd_stop,
        ),
        Cmd(
            "trust",
            "Trust a key for image verification",
            "trust [--prefix=PREFIX] [--insecure-allow-http] [--skip-fingerprint-review] "
            "[--root] [PUBKEY ...]",
            trust_long,
            [
                _f(
                    "insecure-allow-http",
                    "bool",
                    "false",
                    "allow HTTP use for key discovery and/or retrieval",
                ),
                _f("prefix", "string", "", "prefix to limit trust to"),
                _f("root", "bool", "false", "add root key from filesystem without a prefix"),
                _f(
                    "skip-fingerprint-review",
                    "bool",
                    "false",
                    "accept key without fingerprint confirmation",
                ),
            ],
            cmd_trust,
        ),
        Cmd(
            "version",
            "Print the version and exit",
            "version",
            "Print the version of rkt, and various build and configuration information.",
            run=cmd_version,
        ),
    ]
    root = Cmd("rkt", "rkt, the application container runner", "[command]", subs=commands)
    for cmd in commands:
        cmd.parent = root
        for sub in cmd.subs:
            sub.parent = cmd
    return root


ROOT = _cmd_tree()


class UnknownCommand(Exception):
    pass


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _find_next(node: Cmd, word: str) -> Cmd | None:
    """cobra findNext with EnablePrefixMatching: exact name, else a unique prefix."""
    matches = []
    for sub in node.subs:
        if sub.name == word:
            return sub
        if sub.name.startswith(word):
            matches.append(sub)
    return matches[0] if len(matches) == 1 else None


def resolve_command(argv: list[str]) -> tuple[Cmd, list[int]]:
    """cobra Find: walk non-flag words down the tree; return the command and their indexes."""
    node = ROOT
    used: list[int] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            break
        if word.startswith("-") and len(word) > 1:
            name = word.lstrip("-")
            # cobra's stripFlags: `--flag value` hides `value` unless the flag is a bool.
            takes_value = "=" not in word and (
                (word.startswith("--") and name not in ("debug", "trust-keys-from-https", "help"))
                or (len(word) == 2 and word != "-h")
            )
            i += 2 if takes_value else 1
            continue
        if not node.subs:
            break
        sub = _find_next(node, word)
        if sub is None:
            if node is ROOT:
                raise UnknownCommand(word)
            break
        node = sub
        used.append(i)
        i += 1
    return node, used


def _unknown_command(word: str) -> int:
    suggestions = [
        c.name
        for c in sorted(ROOT.subs, key=lambda c: c.name)
        if not c.hidden
        and (_levenshtein(word.lower(), c.name) <= 2 or c.name.startswith(word.lower()))
    ]
    text = f'Error: unknown command {go_quote(word)} for "rkt"'
    if suggestions:
        text += "\n\nDid you mean this?\n" + "".join(f"\t{s}\n" for s in suggestions)
    sys.stderr.write(text + "\nRun 'rkt --help' for usage.\n")
    return 254


def root_help() -> str:
    flags = "".join(f.help_line() for f in GLOBAL_FLAGS if not f.hidden)
    return ROOT_HELP + tabwrite(flags + "\n")


def _help_for(words: list[str]) -> int:
    node = ROOT
    for word in words:
        nxt = _find_next(node, word)
        if nxt is None:
            sys.stdout.write(f"Unknown help topic [`{' '.join(words)}`]\n" + root_help())
            return 0
        node = nxt
    sys.stdout.write(root_help() if node is ROOT else node.help_text())
    return 0


# --------------------------------------------------------------------------------------
# Faults, call log, main


def _prescan_dir(argv: list[str]) -> str:
    """Find --dir before real parsing (faults and the call log need it even on errors)."""
    value = None
    for i, word in enumerate(argv):
        if word == "--":
            break
        if word.startswith("--dir="):
            value = word[len("--dir=") :]
        elif word == "--dir" and i + 1 < len(argv):
            value = argv[i + 1]
    return os.path.abspath(value) if value else DEFAULT_DIR


def _lock_path(data_dir: str) -> str:
    return os.path.join(data_dir, "fake", "lock")


class _Locked:
    """flock(LOCK_EX) on <dir>/fake/lock for the duration of a with-block."""

    def __init__(self, data_dir: str) -> None:
        os.makedirs(os.path.join(data_dir, "fake"), exist_ok=True)
        self.fd = os.open(_lock_path(data_dir), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def __enter__(self) -> _Locked:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def take_fault(data_dir: str, cmd: str, argv: list[str]) -> dict | None:
    """Find the first rule matching this call, count it down atomically, return it."""
    path = os.path.join(data_dir, "fake", "faults.json")
    if not os.path.exists(path):
        return None
    joined = " ".join(argv)
    with _Locked(data_dir):
        text = read_text(path)
        if text is None:
            return None
        try:
            rules = json.loads(text)
            if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
                raise ValueError("faults.json must hold a JSON list of objects")
        except ValueError as exc:
            sys.stderr.write(f"rkt: fake: bad {path}: {exc}\n")
            raise Exit(254) from None
        fired = None
        changed = False
        for rule in rules:
            if rule.get("cmd", "*") not in (cmd, "*"):
                continue
            if "match" in rule and str(rule["match"]) not in joined:
                continue
            times = rule.get("times")
            if times is not None and int(times) <= 0:
                continue
            if int(rule.get("skip", 0)) > 0:
                rule["skip"] = int(rule["skip"]) - 1
                changed = True
                continue
            if times is not None:
                rule["times"] = int(times) - 1
                changed = True
            fired = rule
            break
        if changed:
            atomic_write(path, json.dumps(rules, indent=1))
    return fired


def apply_fault(ctx: Ctx, rule: dict) -> int | None:
    """Run a fired rule: delay, then either replace the command (return its code) or not."""
    if rule.get("delay_s"):
        time.sleep(float(rule["delay_s"]))
    if any(k in rule for k in ("exit", "stdout", "stderr")):
        for key, stream in (("stdout", sys.stdout), ("stderr", sys.stderr)):
            text = rule.get(key)
            if text:
                stream.write(text if str(text).endswith("\n") else f"{text}\n")
        return int(rule.get("exit", 0))
    if "app_exit" in rule:
        ctx.app_fault = (int(rule["app_exit"]), float(rule.get("after_s", 0)))
    if "boot_s" in rule:
        ctx.boot_s = float(rule["boot_s"])
    return None


def log_call(data_dir: str, entry: dict) -> None:
    """Append one JSON line to <dir>/fake/calls.jsonl under an flock (skipped without <dir>)."""
    if not os.path.isdir(data_dir):
        return
    try:
        os.makedirs(os.path.join(data_dir, "fake"), exist_ok=True)
        fd = os.open(
            os.path.join(data_dir, "fake", "calls.jsonl"),
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
            0o644,
        )
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def _dispatch(ctx: Ctx) -> int:
    argv = ctx.argv
    try:
        cmd, used = resolve_command(argv)
    except UnknownCommand as exc:
        return _unknown_command(str(exc))
    ctx.cmd = cmd
    Out.prefix = cmd.name if cmd is not ROOT else "rkt"
    rule = take_fault(_prescan_dir(argv), cmd.path if cmd is not ROOT else "rkt", argv)
    if rule is not None:
        code = apply_fault(ctx, rule)
        if code is not None:
            return code
    args = [w for i, w in enumerate(argv) if i not in used]
    try:
        rest = parse_flags(ctx, args, cmd.flagmap(), cmd.interspersed)
    except FlagError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        sys.stdout.write(cmd.help_text() if cmd is not ROOT else root_help())
        sys.stderr.write("\n")
        return 254
    Out.debug = bool(ctx.opts.get("debug"))
    if cmd.name == "help" and cmd.parent is ROOT:
        return _help_for(rest)
    if ctx.opts.get("help") or (cmd.run is None and cmd is not ROOT):
        sys.stdout.write(root_help() if cmd is ROOT else cmd.help_text())
        return 0
    if cmd is ROOT:
        if rest:
            return _unknown_command(rest[0])
        Out.err("missing command")
        sys.stdout.write(root_help())
        return 2
    try:
        return int(cmd.run(ctx, rest))
    except UsageExit:
        sys.stdout.write(cmd.help_text())
        return 254


def main(argv: list[str] | None = None) -> int:
    """Run one rkt invocation; return its exit code (a negative code means: die by -code)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    started = time.time()
    ctx = Ctx(argv)
    code = 254
    try:
        code = _dispatch(ctx)
    except Exit as exc:
        code = exc.code
    except BrokenPipeError:
        code = 254
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:
            pass
        entry: dict[str, object] = {
            "argv": argv,
            "cmd": ctx.cmd.path if ctx.cmd is not None and ctx.cmd is not ROOT else None,
            "exit": code,
            "t": round(started, 6),
            "dur": round(time.time() - started, 6),
            "pid": os.getpid(),
        }
        if ctx.uuid:
            entry["uuid"] = ctx.uuid
        data_dir = ctx.data_dir if "dir" in ctx.opts else _prescan_dir(argv)
        log_call(data_dir, entry)
    if code < 0:
        import signal

        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1)
    return code


# --------------------------------------------------------------------------------------
# Helper API for tests (import this module; the executable is FAKE_RKT)

FAKE_RKT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rkt")


def add_fault(rkt_dir: str | os.PathLike, **rule: object) -> None:
    """Append a fault rule to <rkt_dir>/fake/faults.json (see the module docstring).

    Example: add_fault(d, cmd="prepare", match="web", exit=254, stderr="prepare: boom", times=1)
    """
    if "cmd" not in rule:
        raise ValueError("a fault rule needs cmd= (a subcommand such as 'list', or '*')")
    data_dir = os.fspath(rkt_dir)
    path = os.path.join(data_dir, "fake", "faults.json")
    with _Locked(data_dir):
        rules = read_json(path)
        rules = rules if isinstance(rules, list) else []
        rules.append(rule)
        atomic_write(path, json.dumps(rules, indent=1))


def clear_faults(rkt_dir: str | os.PathLike) -> None:
    """Remove every fault rule."""
    data_dir = os.fspath(rkt_dir)
    with _Locked(data_dir):
        _unlink(os.path.join(data_dir, "fake", "faults.json"))


def faults(rkt_dir: str | os.PathLike) -> list[dict]:
    """The current rules, with their remaining `times`/`skip` counts."""
    rules = read_json(os.path.join(os.fspath(rkt_dir), "fake", "faults.json"))
    return rules if isinstance(rules, list) else []


def calls(rkt_dir: str | os.PathLike, cmd: str | None = None) -> list[dict]:
    """Finished invocations from the call log, oldest first; `cmd` filters by subcommand."""
    text = read_text(os.path.join(os.fspath(rkt_dir), "fake", "calls.jsonl")) or ""
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if cmd is None or entry.get("cmd") == cmd:
            entries.append(entry)
    return entries


def crash_app(rkt_dir: str | os.PathLike, uuid: str, exit_code: int = 1) -> None:
    """Ask the running pod `uuid` to crash now: its app(s) get SIGKILL, `exit_code` is recorded.

    The supervisor notices within 0.1 s; wait for the pod to read `exited` afterwards.
    """
    directory = os.path.join(os.fspath(rkt_dir), "fake", "crash")
    os.makedirs(directory, exist_ok=True)
    atomic_write(os.path.join(directory, uuid), str(exit_code))


def supervisor_pid(rkt_dir: str | os.PathLike, uuid: str) -> int | None:
    """The pid of the pod's `rkt run`/`run-prepared` process, if any (also while booting)."""
    for sub in STATE_DIRS:
        for name in ("fake-supervisor", "pid", "ppid"):
            text = read_text(os.path.join(os.fspath(rkt_dir), "pods", sub, uuid, name))
            if text and text.strip().isdigit():
                return int(text.strip())
    return None
