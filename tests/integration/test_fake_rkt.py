"""The fake rkt (tests/fakes/rkt) against real rkt 1.30.0 transcripts: shapes, messages, codes.

Integration tier: every test runs the fake as a subprocess in a temp `--dir`, with real
supervised app processes. Golden bits come from tests/data/transcripts/ (copies of
../shared/rkt/transcripts/): help and flag errors must match byte for byte; pod output
is compared after masking what differs between runs (UUIDs, image IDs, times, pids,
IPs): key order, value types, state names, exit codes and message shapes must match.
Every process a test starts is stopped by PID in teardown (supervisors, then apps via
the fake's own process-group cleanup), and `gc --grace-period=0s` empties the store.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import fakerkt, make_aci

FAKE = Path(fakerkt.FAKE_RKT)
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "transcripts"
# The venv's python first on PATH: `#!/usr/bin/env python3` then skips slow shims.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
FLY = "--stage1-name=coreos.com/rkt/stage1-fly:1.30.0"
HOST = "--stage1-name=coreos.com/rkt/stage1-host:1.30.0"
# The transcripts mounted /srv/data; rkt refuses to run a pod whose host path is missing
# (as the fake now does), so the pods here mount a directory every checkout has.
DATA_SOURCE = str(GOLDEN.parent)
DATA_VOL = f"--volume=data,kind=host,source={DATA_SOURCE}"

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ABS_TIME_RE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,3})? [+-]\d{4} \w+")
REL_TIME_RE = re.compile(
    r"\b(now|1 second ago|\d+ seconds ago|1 minute ago|\d+ minutes ago|1 hour ago|"
    r"\d+ hours ago)(?=\t|\n|$)"
)


# --------------------------------------------------------------------------------------
# Transcripts and masking


@dataclass(frozen=True)
class Transcript:
    argv: list[str]
    exit: int
    stdout: str
    stderr: str


def transcript(name: str) -> Transcript:
    """Parse one golden transcript: `$ cmd`, exit code, stdout, stderr (verbatim bytes)."""
    text = (GOLDEN / name).read_text(encoding="utf-8")
    head, rest = text.split("\n", 1)
    match = re.match(r"--- exit code: (-?\d+)", rest)
    assert match, name
    rest = rest.split("\n", 1)[1]
    assert rest.startswith("--- stdout:\n")
    out, err = rest[len("--- stdout:\n") :].split("--- stderr:\n", 1)
    words = shlex.split(head[2:])
    while words and words[0] in ("timeout", "60", "runuser", "-u", "nobody", "--"):
        words.pop(0)
    return Transcript(words[1:], int(match.group(1)), out, err)


def mask(text: str) -> str:
    text = UUID_RE.sub("<UUID>", text)
    text = re.sub(r"sha512-[0-9a-f]{12,64}", "<SHA>", text)
    text = ABS_TIME_RE.sub("<TIME>", text)
    text = REL_TIME_RE.sub("<REL>", text)
    text = re.sub(r"pid=\d+", "pid=<PID>", text)
    return re.sub(r"ip4=[\d.]+", "ip4=<IP>", text)


def shape(value: Any, key: str = "") -> Any:
    """A JSON value with run-specific data masked; key order survives json.dumps()."""
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v, key) for v in value]
    if isinstance(value, bool) or key == "exit_code":
        return value
    if isinstance(value, int):
        return "<int>"
    if isinstance(value, str):
        if key in ("ip",):
            return "<IP>"
        return mask(value)
    return value


def same_json_shape(got: str, want: str) -> None:
    assert json.dumps(shape(json.loads(got)), indent=1) == json.dumps(
        shape(json.loads(want)), indent=1
    )


def tokens(table: str) -> list[list[str]]:
    """Rows of a tab-padded table as lists of non-empty masked cells (leading '' kept)."""
    rows = []
    for line in mask(table).rstrip("\n").split("\n"):
        cells = re.split(r"\t+", line)
        rows.append([c for i, c in enumerate(cells) if c or i == 0])
    return rows


def recover_cells(table: str) -> list[list[str]]:
    """Undo Go's tabwriter on one block: cell texts per row, located by header columns."""
    lines = table.rstrip("\n").split("\n")
    starts = sorted({pos for line in lines for pos, _ in _segments(line, trailing=True)})
    rows = []
    for line in lines:
        cells = [""] * len(starts)
        for pos, text in _segments(line, trailing=True):
            cells[starts.index(pos)] = text
        rows.append(cells)
    return rows


def _segments(line: str, trailing: bool = False) -> list[tuple[int, str]]:
    """(column, text) of each text run after tab expansion; `trailing`: a final empty cell."""
    out, col, i = [], 0, 0
    while i < len(line):
        if line[i] == "\t":
            col = (col // 8 + 1) * 8
            i += 1
            continue
        j = line.find("\t", i)
        j = len(line) if j < 0 else j
        out.append((col, line[i:j]))
        col += j - i
        i = j
    if trailing and line.endswith("\t"):
        out.append((col, ""))
    return out


def _starts(header: str) -> list[int]:
    return [pos for pos, _ in _segments(header)]


# --------------------------------------------------------------------------------------
# Running the fake


class Rkt:
    """The fake with `--dir=<tmp>`; remembers background supervisors to stop them by PID."""

    def __init__(self, rkt_dir: Path, logs: Path) -> None:
        self.dir = rkt_dir
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def __call__(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FAKE), f"--dir={self.dir}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=ENV,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def bg(self, *args: str) -> subprocess.Popen[bytes]:
        """Start a supervisor (`run`/`run-prepared`) in its own session, output to a log."""
        log = (self.logs / f"bg-{len(self.procs)}.log").open("ab")
        proc = subprocess.Popen(
            [str(FAKE), f"--dir={self.dir}", *args],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=ENV,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def prepare(self, *args: str) -> str:
        out = self.ok("--insecure-options=image", "prepare", "--quiet", *args)
        return out.strip()

    def start(self, uuid: str, *args: str) -> subprocess.Popen[bytes]:
        """run-prepared in the background; return once the pod runs and has its pid file."""
        proc = self.bg("run-prepared", *args, uuid)
        # `pid=` appears with the pid file, after a host pod's boot window.
        wait_for(
            lambda: self.state(uuid) == "running" and "\npid=" in self("status", uuid).stdout,
            what=f"{uuid} up",
        )
        return proc

    def state(self, uuid: str) -> str:
        out = self("status", uuid).stdout
        return out.split("\n", 1)[0].removeprefix("state=")

    def pid(self, uuid: str) -> int | None:
        return fakerkt.supervisor_pid(self.dir, uuid)

    def pods(self) -> list[dict]:
        return json.loads(self.ok("list", "--format=json")) or []

    def cleanup(self) -> None:
        """Force-stop running pods, kill and reap our supervisors by PID, empty the store."""
        pods = list(fakerkt.walk_pods(str(self.dir))) if (self.dir / "pods").is_dir() else []
        for pod in pods:
            if pod.state == "running":
                self("stop", "--force", pod.uuid)
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if pods:
            self("gc", "--grace-period=0s")


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """ACIs shaped like the transcripts' test images (same names, exec, ports, env)."""
    root = tmp_path_factory.mktemp("aci")
    common: dict[str, Any] = {"mount_points": {"data": "/data"}}
    specs = {
        "busybox": dict(
            name="example.com/busybox",
            exec_=("/bin/sh", "-c", "echo started; env | sort; sleep 3600"),
            env={"FROM_MANIFEST": "yes"},
            ports={"http": 8080},
            **common,
        ),
        "busybox-true": dict(
            name="example.com/busybox-true",
            exec_=("/bin/sh", "-c", "echo hello-from-true"),
            **common,
        ),
        "busybox-false": dict(
            name="example.com/busybox-false",
            exec_=("/bin/sh", "-c", "echo failing >&2; exit 3"),
            **common,
        ),
        "busybox-http": dict(
            name="example.com/busybox-http", exec_=("/bin/sh", "-c", "sleep 3600"), **common
        ),
    }
    return {k: make_aci.build_aci(root / f"{k}.aci", **v) for k, v in specs.items()}


@pytest.fixture
def rkt(tmp_path: Path) -> Iterator[Rkt]:
    (tmp_path / "rkt").mkdir()
    runner = Rkt(tmp_path / "rkt", tmp_path)
    try:
        yield runner
    finally:
        runner.cleanup()


def assert_like(
    result: subprocess.CompletedProcess[str],
    name: str,
    *,
    exact: bool = False,
    json_out: bool = False,
    paths: dict[str, str] | None = None,
) -> None:
    """Compare a result with a transcript: exit code, then stdout/stderr (masked or exact).

    `paths` maps paths in the transcript to this run's paths (e.g. /srv/aci/x.aci).
    """
    want = transcript(name)
    for old, new in (paths or {}).items():
        want = Transcript(
            want.argv, want.exit, want.stdout.replace(old, new), want.stderr.replace(old, new)
        )
    assert result.returncode == want.exit, (result.stdout, result.stderr)
    if exact:
        assert (result.stdout, result.stderr) == (want.stdout, want.stderr)
    elif json_out:
        same_json_shape(result.stdout, want.stdout)
        assert mask(result.stderr) == mask(want.stderr)
    else:
        assert mask(result.stdout) == mask(want.stdout)
        assert mask(result.stderr) == mask(want.stderr)


# --------------------------------------------------------------------------------------
# The CLI surface: help, flag errors, empty store (byte for byte)

EXACT = [
    "01-version.txt",
    "02-list-empty.txt",
    "03-list-empty-json.txt",
    "04-list-empty-json-pretty.txt",
    "05-list-empty-full-nolegend.txt",
    "10-image-list-empty-json.txt",
    "68-stop-no-args.txt",
    "74-status-no-args.txt",
    "80-help-root.txt",
    "81-help-run.txt",
    "82-help-list.txt",
    "83-help-trust.txt",
    "84-help-cat-manifest.txt",
    "84-help-enter.txt",
    "84-help-fetch.txt",
    "84-help-gc.txt",
    "84-help-image-list.txt",
    "84-help-image-rm.txt",
    "84-help-prepare.txt",
    "84-help-rm.txt",
    "84-help-run-prepared.txt",
    "84-help-status.txt",
    "84-help-stop.txt",
    "84-help-version.txt",
    "92-err-unknown-flag.txt",
    "93-err-unknown-subcommand.txt",
    "94-err-list-bad-format.txt",
    "95-err-bad-volume-syntax.txt",
    "96-err-bad-port-syntax.txt",
    "97-err-bad-set-env.txt",
    "98-err-bad-insecure-option.txt",
    "99-err-run-no-image.txt",
    "99b-err-bad-stage1-path.txt",
    "99c-err-bool-flag-bad-value.txt",
    "99d-err-fetch-nonexistent-file.txt",
    "99e-err-image-rm-unknown.txt",
    "216-prepare-rejects-net-flag.txt",
    "224-fetch-by-name-pull-never-missing.txt",
]


@pytest.mark.parametrize("name", EXACT, ids=[n.removesuffix(".txt") for n in EXACT])
def test_cli_output_matches_transcript_byte_for_byte(rkt: Rkt, name: str) -> None:
    want = transcript(name)
    got = rkt(*(a for a in want.argv if not a.startswith("--dir=")))
    assert (got.returncode, got.stdout, got.stderr) == (want.exit, want.stdout, want.stderr)


def test_list_creates_a_missing_dir_and_its_pod_dirs(tmp_path: Path) -> None:
    runner = Rkt(tmp_path / "fresh-dir", tmp_path)
    assert_like(runner("list"), "230-list-fresh-nonexistent-dir.txt", exact=True)
    assert sorted(p.name for p in (tmp_path / "fresh-dir" / "pods").iterdir()) == sorted(
        ["embryo", "prepare", "prepared", "run", "exited-garbage", "garbage"]
    )


@pytest.mark.parametrize(
    ("argv", "stderr"),
    [
        pytest.param(
            ["stat", "x"],
            'status: problem retrieving pod: no matches found for "x"\n',
            id="prefix-matches-status",
        ),
        pytest.param(
            ["r"],
            'Error: unknown command "r" for "rkt"\n\nDid you mean this?\n'
            "\tgc\n\trm\n\trun\n\trun-prepared\n\nRun 'rkt --help' for usage.\n",
            id="ambiguous-prefix",
        ),
        pytest.param(["list", "--full"], "", id="bare-bool-flag"),
        pytest.param(
            ["status", "--wait", "x"],  # `x` is the UUID, not the --wait value
            'status: problem retrieving pod: no matches found for "x"\n',
            id="wait",
        ),
        pytest.param(["list", "-x"], "Error: unknown shorthand flag: 'x' in -x\n\n", id="short"),
        pytest.param(["--dir", "list"], "rkt: missing command\n", id="flag-eats-command"),
    ],
)
def test_cobra_parsing_rules(rkt: Rkt, argv: list[str], stderr: str) -> None:
    result = subprocess.run(
        [str(FAKE), *argv] if argv[0] == "--dir" else [str(FAKE), f"--dir={rkt.dir}", *argv],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
        cwd=rkt.dir,
    )
    assert result.stderr == stderr


def test_no_subcommand_prints_help_and_exits_2(rkt: Rkt) -> None:
    result = rkt()
    assert (result.returncode, result.stderr) == (2, "rkt: missing command\n")
    assert result.stdout == transcript("80-help-root.txt").stdout


TABLES = [
    "02-list-empty.txt",
    "20-list-1running.txt",
    "21-list-1running-full-nolegend.txt",
    "32-list-after-failed-runs.txt",
    "51-list-mixed.txt",
    "52-list-mixed-full-nolegend.txt",
    "111-list-after-gc-mark-only.txt",
    "151-list-while-preparing.txt",
    "152e-list-full-with-aborted-prepare.txt",
    "210-list-zoo.txt",
    "211-list-zoo-full-nolegend.txt",
    "232-list-with-multi-app-pods.txt",
    "233-list-full-with-multi-app-pods.txt",
    "13-image-list.txt",
    "220-image-list-final.txt",
]


@pytest.mark.parametrize("name", TABLES, ids=[n.removesuffix(".txt") for n in TABLES])
def test_tabwriter_reproduces_rkt_tables(name: str) -> None:
    """The fake's tabwriter lays out the real tables' cells into the real bytes."""
    out = transcript(name).stdout
    rows = recover_cells(out)
    assert fakerkt.tabwrite("".join("\t".join(cells) + "\n" for cells in rows)) == out


@pytest.mark.parametrize(
    ("ns", "rel"),
    [
        (0, "now"),
        (999_999_999, "now"),
        (1_000_000_000, "1 second ago"),
        (59_000_000_000, "59 seconds ago"),
        (60_000_000_000, "1 minute ago"),
        (119_000_000_000, "1 minute ago"),
        (120_000_000_000, "2 minutes ago"),
        (3_600_000_000_000, "1 hour ago"),
        (7_200_000_000_000, "2 hours ago"),
    ],
)
def test_relative_times_follow_go_humanize(ns: int, rel: str) -> None:
    now = 1_800_000_000 * 1_000_000_000
    assert fakerkt.humanize(now - ns, now) == rel
    assert fakerkt.humanize(None, now) == "a long while ago"


@pytest.mark.parametrize(
    ("text", "ns", "back"),
    [
        ("0", 0, "0s"),
        ("0s", 0, "0s"),
        ("30m", 1_800_000_000_000, "30m0s"),
        ("24h", 86_400_000_000_000, "24h0m0s"),
        ("1h2m3.5s", 3_723_500_000_000, "1h2m3.5s"),
        ("1.5ms", 1_500_000, "1.5ms"),
        ("-10s", -10_000_000_000, "-10s"),
    ],
)
def test_go_durations_round_trip(text: str, ns: int, back: str) -> None:
    assert fakerkt.parse_go_duration(text) == ns
    assert fakerkt.fmt_go_duration(ns) == back


def test_bad_gc_duration_is_a_flag_error(rkt: Rkt) -> None:
    result = rkt("gc", "--grace-period=1d")
    assert result.returncode == 254
    assert result.stderr == (
        'Error: invalid argument "1d" for --grace-period=1d: time: unknown unit "d" in '
        'duration "1d"\n\n'
    )
    assert result.stdout.startswith("NAME:\n\tgc - Garbage collect rkt pods no longer in use\n")


# --------------------------------------------------------------------------------------
# A zoo of pods in every state (built once), compared with the real rkt's zoo


@dataclass
class Zoo:
    rkt: Rkt
    pods: dict[str, str]


def _run_for_uuid(runner: Rkt, tmp: Path, key: str, *args: str) -> tuple[str, int]:
    uuid_file = tmp / f"{key}.uuid"
    result = runner("--insecure-options=image", "run", f"--uuid-file-save={uuid_file}", *args)
    return uuid_file.read_text(), result.returncode


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory, images: dict[str, str]) -> Iterator[Zoo]:
    tmp = tmp_path_factory.mktemp("zoo")
    (tmp / "rkt").mkdir()
    runner = Rkt(tmp / "rkt", tmp)
    pods: dict[str, str] = {}
    try:
        pods["garbage"], _ = _run_for_uuid(runner, tmp, "g", FLY, DATA_VOL, images["busybox-true"])
        runner.ok("gc", "--mark-only")
        pods["prepared"] = runner.prepare(FLY, DATA_VOL, "--set-env=PREP=1", images["busybox"])
        for key, stage1, image, code in (
            ("fly_exit0", FLY, "busybox-true", 0),
            ("fly_exit3", FLY, "busybox-false", 3),
            ("host_exit0", HOST, "busybox-true", 0),
            ("host_exit3", HOST, "busybox-false", 3),
        ):
            extra = ["--net=host"] if stage1 == HOST else []
            pods[key], exit_code = _run_for_uuid(
                runner, tmp, key, stage1, DATA_VOL, *extra, images[image]
            )
            assert exit_code == code, key
        pods["failed_run"], exit_code = _run_for_uuid(runner, tmp, "f", FLY, images["busybox-true"])
        assert exit_code == 254
        pods["two_apps"], exit_code = _run_for_uuid(
            runner,
            tmp,
            "two",
            HOST,
            "--net=host",
            DATA_VOL,
            images["busybox-true"],
            images["busybox-false"],
        )
        assert exit_code == 3
        pods["fly_running"] = runner.prepare(FLY, DATA_VOL, images["busybox"])
        runner.start(pods["fly_running"])
        pods["host_net"] = runner.prepare(HOST, DATA_VOL, images["busybox-http"])
        runner.start(pods["host_net"])
        yield Zoo(runner, pods)
    finally:
        runner.cleanup()


STATUS_TEXT = [
    ("prepared", "55-status-prepared.txt"),
    ("fly_running", "24-status-running.txt"),
    ("fly_exit0", "42-status-exited0.txt"),
    ("fly_exit3", "44-status-exited3.txt"),
    ("host_exit0", "132-status-host-exit0.txt"),
    ("host_exit3", "133-status-host-exit3.txt"),
    ("failed_run", "33b-status-failed-run-pod.txt"),
    ("garbage", "113-status-exited-garbage.txt"),
    ("host_net", "183-status-host-default-net.txt"),
    ("two_apps", "229-status-host-two-apps.txt"),
]


@pytest.mark.parametrize(("pod", "name"), STATUS_TEXT, ids=[p for p, _ in STATUS_TEXT])
def test_status_text_lines_match_real_rkt(zoo: Zoo, pod: str, name: str) -> None:
    assert_like(zoo.rkt("status", zoo.pods[pod]), name)


STATUS_JSON = [
    ("prepared", "55b-status-prepared-json.txt"),
    ("fly_running", "25-status-running-json.txt"),
    ("fly_running", "26-status-running-json-pretty.txt"),
    ("fly_exit0", "43-status-exited0-json.txt"),
    ("fly_exit3", "45-status-exited3-json.txt"),
    ("host_exit3", "134-status-json-host-exit3.txt"),
    ("failed_run", "33c-status-json-failed-run-pod.txt"),
    ("garbage", "215-status-json-zoo-garbage.txt"),
    ("host_net", "215-status-json-zoo-host-running-defaultnet.txt"),
    ("two_apps", "229b-status-json-host-two-apps.txt"),
]


@pytest.mark.parametrize(
    ("pod", "name"), STATUS_JSON, ids=[n.split("-", 1)[1][:-4] for _, n in STATUS_JSON]
)
def test_status_json_has_the_real_shape(zoo: Zoo, pod: str, name: str) -> None:
    fmt = next(a for a in transcript(name).argv if a.startswith("--format="))
    result = zoo.rkt("status", fmt, zoo.pods[pod])
    assert_like(result, name, json_out=True)
    if fmt.endswith("pretty"):  # tab indentation, Go's "key": value spacing
        times = re.compile(r'("(?:created|started|finished)_at": )\d+')
        assert times.sub(r"\1<int>", mask(result.stdout)) == times.sub(
            r"\1<int>", mask(transcript(name).stdout)
        )


def test_cat_manifest_of_a_prepared_pod_is_rkts_manifest(zoo: Zoo) -> None:
    paths = {"/srv/data": DATA_SOURCE}
    result = zoo.rkt("cat-manifest", zoo.pods["prepared"])
    assert_like(result, "55c-cat-manifest-prepared.txt", paths=paths)
    compact = zoo.rkt.ok("cat-manifest", "--pretty-print=false", zoo.pods["prepared"])
    want = transcript("55c-cat-manifest-prepared.txt").stdout.replace("/srv/data", DATA_SOURCE)
    assert json.loads(compact) == json.loads(want) | {"apps": json.loads(compact)["apps"]}
    assert "\n" not in compact.rstrip("\n")


def test_list_json_holds_each_pods_status_object_in_uuid_order(zoo: Zoo) -> None:
    pods = zoo.rkt.pods()
    assert [p["name"] for p in pods] == sorted(zoo.pods.values())
    for pod in pods:
        assert pod == json.loads(zoo.rkt.ok("status", "--format=json", pod["name"]))
    pretty = zoo.rkt.ok("list", "--format=json-pretty")
    assert json.loads(pretty) == pods
    assert pretty.startswith('[\n\t{\n\t\t"name": ')


def _real_rows(*names: str) -> set[tuple[str, ...]]:
    rows: set[tuple[str, ...]] = set()
    for name in names:
        for row in tokens(transcript(name).stdout):
            rows.add(tuple(_short(row)))
    return rows


def _short(row: list[str]) -> list[str]:
    return [
        "<SHORT>" if i == 0 and re.fullmatch(r"[0-9a-f]{8}", c) else c for i, c in enumerate(row)
    ]


def test_list_table_rows_have_real_shapes(zoo: Zoo) -> None:
    """Each row the fake prints (masked) is a row real rkt printed in some transcript."""
    real = _real_rows(
        "20-list-1running.txt",
        "32-list-after-failed-runs.txt",
        "51-list-mixed.txt",
        "111-list-after-gc-mark-only.txt",
        "210-list-zoo.txt",
        "232-list-with-multi-app-pods.txt",
    )
    got = [tuple(_short(r)) for r in tokens(zoo.rkt.ok("list"))]
    assert got[0] == ("UUID", "APP", "IMAGE NAME", "STATE", "CREATED", "STARTED", "NETWORKS")
    assert set(got) <= real, sorted(set(got) - real)
    assert len(got) == 1 + len(zoo.pods) + 1  # one continuation row for the two-app pod


def test_list_full_rows_have_real_shapes(zoo: Zoo) -> None:
    real = _real_rows(
        "21-list-1running-full-nolegend.txt",
        "52-list-mixed-full-nolegend.txt",
        "211-list-zoo-full-nolegend.txt",
        "233-list-full-with-multi-app-pods.txt",
    )
    got = {tuple(r) for r in tokens(zoo.rkt.ok("list", "--full", "--no-legend"))}
    assert got <= real, sorted(got - real)


def test_list_columns_are_aligned_like_tabwriter(zoo: Zoo) -> None:
    table = zoo.rkt.ok("list")
    starts = set(_starts(table.split("\n", 1)[0]))
    for line in table.rstrip("\n").split("\n"):
        assert {pos for pos, _ in _segments(line)} <= starts


def test_run_prepared_on_a_running_pod_is_refused(zoo: Zoo) -> None:
    result = zoo.rkt("run-prepared", zoo.pods["fly_running"])
    want = transcript("57-run-prepared-on-running-pod.txt")
    assert (result.returncode, mask(result.stderr)) == (want.exit, mask(want.stderr))


def test_run_prepared_bad_uuid(zoo: Zoo) -> None:
    assert_like(
        zoo.rkt("run-prepared", "00000000-0000-0000-0000-000000000000"),
        "58-run-prepared-bad-uuid.txt",
        exact=True,
    )


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["status", "00000000-0000-0000-0000-000000000000"], "72-status-bad-uuid.txt"),
        (["cat-manifest", "00000000-0000-0000-0000-000000000000"], "75-cat-manifest-bad-uuid.txt"),
        (
            ["enter", "00000000-0000-0000-0000-000000000000", "/bin/true"],
            "193-enter-fly-bad-uuid.txt",
        ),
        (["stop", "not-a-uuid"], "66-stop-garbage-string.txt"),
        (["stop", "00000000-0000-0000-0000-000000000000"], "65-stop-bad-uuid.txt"),
        (["rm", "00000000-0000-0000-0000-000000000000"], "103-rm-bad-uuid.txt"),
    ],
    ids=["status", "cat-manifest", "enter", "stop-garbage", "stop", "rm"],
)
def test_unknown_uuids_read_like_rkt(zoo: Zoo, args: list[str], name: str) -> None:
    assert_like(zoo.rkt(*args), name, exact=True)


def test_status_accepts_uuid_prefixes_case_insensitively(zoo: Zoo) -> None:
    uuid = zoo.pods["fly_exit0"]
    full = zoo.rkt.ok("status", uuid)
    assert zoo.rkt.ok("status", uuid[:8].upper()) == full
    assert zoo.rkt.ok("status", uuid[:13]) == full


def test_status_wait_ready_times_out_like_fly(zoo: Zoo) -> None:
    assert_like(
        zoo.rkt("status", "--wait-ready=1s", zoo.pods["fly_running"]),
        "190-status-wait-ready-fly-timeout.txt",
    )


def test_status_wait_on_an_exited_pod_returns_at_once(zoo: Zoo) -> None:
    assert_like(zoo.rkt("status", "--wait=2s", zoo.pods["fly_exit0"]), "76-status-wait-exited.txt")


def test_enter_runs_a_command_with_the_apps_environment(zoo: Zoo) -> None:
    result = zoo.rkt("enter", zoo.pods["fly_running"], "/bin/sh", "-c", "echo entered; exit 7")
    assert (result.returncode, result.stdout) == (7, "entered\n")
    env = zoo.rkt.ok("enter", zoo.pods["fly_running"], "/usr/bin/env")
    assert "FROM_MANIFEST=yes\n" in env
    # Real fly (rkt 1.30, by hand): neither the app nor `enter` gets AC_APP_NAME.
    assert "AC_APP_NAME=" not in env


def test_enter_an_exited_pod_is_refused(zoo: Zoo) -> None:
    result = zoo.rkt("enter", zoo.pods["fly_exit0"], "/bin/true")
    want = transcript("195-enter-exited.txt")
    assert (result.returncode, mask(result.stderr)) == (want.exit, mask(want.stderr))


def test_supervisor_pid_is_the_run_prepared_process(zoo: Zoo) -> None:
    uuid = zoo.pods["fly_running"]
    text = zoo.rkt.ok("status", uuid)
    pid = int(re.search(r"^pid=(\d+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert pid in [p.pid for p in zoo.rkt.procs]
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"run-prepared" in cmdline


# --------------------------------------------------------------------------------------
# Stopping, removing and collecting pods (each test has its own store)


def _no_group_noise(text: str) -> str:
    """Drop the `group "rkt" not found` notices: they depend on the host's groups."""
    return "".join(line for line in text.splitlines(True) if 'group "rkt" not found' not in line)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _app_pids(rkt: Rkt, uuid: str) -> list[int]:
    apps = json.loads((rkt.dir / "pods" / "run" / uuid / "fake-apps.json").read_text())
    return apps["pgids"]


def test_stop_sends_sigterm_and_the_fly_pod_exits(rkt: Rkt, images: dict[str, str]) -> None:
    uuid = rkt.prepare(FLY, DATA_VOL, images["busybox"])
    proc = rkt.start(uuid)
    app = _app_pids(rkt, uuid)
    assert_like(rkt("stop", uuid), "60-stop-running.txt")
    assert proc.wait(timeout=10) == -signal.SIGTERM  # fly: the app is the rkt process
    assert_like(rkt("status", uuid), "61-status-after-stop.txt")
    assert_like(
        rkt("status", "--format=json", uuid), "61b-status-json-after-stop.txt", json_out=True
    )
    assert_like(rkt("stop", uuid), "64-stop-already-exited.txt")
    assert not any(_alive(p) for p in app)


def test_stop_of_a_host_pod_records_a_clean_exit(rkt: Rkt, images: dict[str, str]) -> None:
    uuid = rkt.prepare(HOST, DATA_VOL, images["busybox-http"])
    proc = rkt.start(uuid)
    rkt.ok("stop", uuid)
    assert proc.wait(timeout=10) == 0
    assert_like(rkt("status", uuid), "186-status-host-default-net-after-stop.txt")


def test_stop_force_kills_the_pod(rkt: Rkt, images: dict[str, str]) -> None:
    uuid = rkt.prepare(FLY, DATA_VOL, images["busybox"])
    proc = rkt.start(uuid)
    app = _app_pids(rkt, uuid)
    assert_like(rkt("stop", "--force", uuid), "62-stop-force-running.txt")
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert_like(rkt("status", uuid), "63-status-after-stop-force.txt")
    wait_for(lambda: not any(_alive(p) for p in app), what="app processes gone")


def test_stop_a_prepared_pod_fails(rkt: Rkt, images: dict[str, str]) -> None:
    uuid = rkt.prepare(FLY, DATA_VOL, images["busybox"])
    assert_like(rkt("stop", uuid), "67-stop-prepared.txt")


def test_stop_two_one_bad_reports_one_failure(
    rkt: Rkt, tmp_path: Path, images: dict[str, str]
) -> None:
    uuid, code = _run_for_uuid(rkt, tmp_path, "t", FLY, DATA_VOL, images["busybox-true"])
    assert code == 0
    result = rkt("stop", uuid, "00000000-0000-0000-0000-000000000000")
    assert_like(result, "69-stop-two-uuids-one-bad.txt")


def test_kill_9_of_the_fly_supervisor_leaves_an_exited_pod(
    rkt: Rkt, tmp_path: Path, images: dict[str, str]
) -> None:
    uuid_file = tmp_path / "k.uuid"
    proc = rkt.bg(
        "--insecure-options=image",
        "run",
        FLY,
        DATA_VOL,
        f"--uuid-file-save={uuid_file}",
        images["busybox"],
    )
    uuid = wait_for(lambda: uuid_file.exists() and uuid_file.read_text(), what="uuid file")
    wait_for(lambda: rkt.state(uuid) == "running" and rkt.pid(uuid), what="running")
    app = _app_pids(rkt, uuid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert rkt.state(uuid) == "exited"  # the kernel dropped the lock with the process
    assert_like(rkt("status", uuid), "120-status-after-kill9-of-rkt-run-fly.txt")
    assert_like(
        rkt("status", "--format=json", uuid), "120b-status-json-after-kill9-fly.txt", json_out=True
    )
    assert_like(rkt("stop", uuid), "143-stop-host-orphaned-after-kill9.txt")
    wait_for(lambda: not any(_alive(p) for p in app), what="apps die with their supervisor")


def test_kill_9_of_a_host_supervisor_records_no_exit_code(rkt: Rkt, images: dict[str, str]) -> None:
    uuid = rkt.prepare(HOST, DATA_VOL, images["busybox"])
    proc = rkt.start(uuid, "--net=host")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert_like(rkt("status", uuid), "142-status-host-after-kill9-of-rkt-run.txt")


def test_sigterm_to_a_host_run_is_graceful(rkt: Rkt, images: dict[str, str]) -> None:
    uuid = rkt.prepare(HOST, DATA_VOL, images["busybox"])
    proc = rkt.start(uuid, "--net=host")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert_like(rkt("status", uuid), "145-status-host-after-sigterm-of-rkt-run.txt")


def test_rm_follows_the_pod_state(rkt: Rkt, tmp_path: Path, images: dict[str, str]) -> None:
    running = rkt.prepare(FLY, DATA_VOL, images["busybox"])
    rkt.start(running)
    assert_like(rkt("rm", running), "100-rm-running.txt")
    exited, _ = _run_for_uuid(rkt, tmp_path, "e", FLY, DATA_VOL, images["busybox-true"])
    assert_like(rkt("rm", exited), "101-rm-exited.txt")
    assert not any(exited in p.name for p in (rkt.dir / "pods").rglob("*"))
    assert_like(rkt("rm", exited), "104-rm-already-removed.txt")
    prepared = rkt.prepare(FLY, DATA_VOL, images["busybox-true"])
    assert_like(rkt("rm", prepared), "102-rm-prepared.txt")
    _run_for_uuid(rkt, tmp_path, "f", FLY, DATA_VOL, images["busybox-true"])
    assert_like(rkt("rm", f"--uuid-file={tmp_path / 'f.uuid'}"), "105-rm-uuid-file.txt")
    other, _ = _run_for_uuid(rkt, tmp_path, "o", FLY, DATA_VOL, images["busybox-true"])
    assert_like(rkt("rm", other, "00000000-0000-0000-0000-000000000000"), "106-rm-two-one-bad.txt")
    assert [p["name"] for p in rkt.pods()] == [running]


def test_rm_with_an_unreadable_uuid_file_exits_254(rkt: Rkt, tmp_path: Path) -> None:
    result = rkt("rm", f"--uuid-file={tmp_path / 'missing'}")
    assert (result.returncode, result.stderr) == (
        254,
        f"rm: unable to resolve UUID from file: open {tmp_path / 'missing'}: no such file or "
        "directory\nrm: failed to remove one or more pods\n",
    )
    assert rkt("status", f"--uuid-file={tmp_path / 'missing'}").returncode == 1


def _masked_lines(text: str) -> list[str]:
    return [mask(line) for line in text.splitlines()]


def test_gc_marks_then_sweeps_after_the_grace_period(
    rkt: Rkt, tmp_path: Path, images: dict[str, str]
) -> None:
    for key in ("a", "b"):
        _run_for_uuid(rkt, tmp_path, key, FLY, DATA_VOL, images["busybox-true"])
    running = rkt.prepare(FLY, DATA_VOL, images["busybox"])
    rkt.start(running)
    prepared = rkt.prepare(FLY, DATA_VOL, images["busybox"])
    marked = rkt("gc", "--mark-only")
    want = transcript("110-gc-mark-only.txt")
    assert (marked.returncode, marked.stdout) == (0, "")
    assert _masked_lines(marked.stderr) == _masked_lines(want.stderr)[:2]
    pods = {p["name"]: p for p in rkt.pods()}
    garbage = [p for p in pods.values() if p["state"] == "exited garbage"]
    assert len(garbage) == 2
    for pod in garbage:
        app = pod["apps"][0]
        assert app["started_at"] <= app["finished_at"]
    assert {pods[running]["state"], pods[prepared]["state"]} == {"running", "prepared"}
    kept = rkt("gc")
    assert kept.stdout == ""
    assert (
        _masked_lines(kept.stderr)
        == _masked_lines(transcript("114-gc-default-grace.txt").stderr)[:2]
    )
    swept = rkt("gc", "--grace-period=0s")
    assert (
        _masked_lines(swept.stdout) == _masked_lines(transcript("115-gc-grace-0s.txt").stdout)[:2]
    )
    assert sorted(p["name"] for p in rkt.pods()) == sorted([running, prepared])


def test_gc_grace_0s_marks_and_sweeps_in_one_run(
    rkt: Rkt, tmp_path: Path, images: dict[str, str]
) -> None:
    _run_for_uuid(rkt, tmp_path, "a", FLY, DATA_VOL, images["busybox-true"])
    assert_like(rkt("gc", "--grace-period=0s"), "121-gc-grace0-on-unmarked-exited.txt")
    assert rkt.pods() == []


def test_gc_expires_prepared_pods(rkt: Rkt, images: dict[str, str]) -> None:
    prepared = rkt.prepare(FLY, DATA_VOL, images["busybox"])
    result = rkt("gc", "--expire-prepared=0s")
    assert result.stderr == f'gc: moving expired prepared pod "{prepared}" to garbage\n'
    assert result.stdout == f'Garbage collecting pod "{prepared}"\n'


def test_gc_on_an_empty_store_prints_nothing(rkt: Rkt) -> None:
    result = rkt("gc")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# --------------------------------------------------------------------------------------
# Runs: exit codes, failures that leave pods behind, what the app sees


def test_run_exit_code_is_the_apps(rkt: Rkt, images: dict[str, str]) -> None:
    ok = rkt("--insecure-options=image", "run", FLY, DATA_VOL, images["busybox-true"])
    assert (ok.returncode, ok.stdout) == (0, "hello-from-true\n")
    failed = rkt("--insecure-options=image", "run", FLY, DATA_VOL, images["busybox-false"])
    assert (failed.returncode, failed.stdout, _no_group_noise(failed.stderr)) == (
        3,
        "",
        "failing\n",
    )


def test_run_with_a_missing_volume_leaves_a_never_started_exited_pod(
    rkt: Rkt, tmp_path: Path, images: dict[str, str]
) -> None:
    uuid, code = _run_for_uuid(rkt, tmp_path, "m", FLY, images["busybox-true"])
    result_err = transcript("30-run-fly-missing-volume-error.txt")
    assert code == result_err.exit
    assert_like(rkt("status", uuid), "33b-status-failed-run-pod.txt")
    pod = rkt.pods()[0]
    assert "started_at" not in pod
    assert "started_at" not in pod["apps"][0]
    assert not (rkt.dir / "pods" / "run" / uuid / "pid").exists()


def test_run_missing_volume_message(rkt: Rkt, images: dict[str, str]) -> None:
    result = rkt("--insecure-options=image", "run", FLY, images["busybox-true"])
    want = transcript("30-run-fly-missing-volume-error.txt")
    assert result.returncode == want.exit
    assert _no_group_noise(result.stderr) == _no_group_noise(want.stderr)


def test_run_prepared_without_the_volume_fails_and_leaves_an_exited_pod(
    rkt: Rkt, images: dict[str, str]
) -> None:
    uuid = rkt.prepare(FLY, images["busybox-true"])  # transcript 150: prepare does not check
    result = rkt("run-prepared", uuid)
    want = transcript("173-run-prepared-while-flock-held.txt")
    assert result.returncode == want.exit
    assert _no_group_noise(result.stderr) == _no_group_noise(want.stderr)
    assert_like(rkt("status", uuid), "174-status-prepared-while-flock-held.txt")


def test_a_mount_naming_an_undefined_volume_is_an_argument_error(
    rkt: Rkt, images: dict[str, str]
) -> None:
    result = rkt(
        "--insecure-options=image", "run", images["busybox"], "--mount=volume=nope,target=/x"
    )
    assert result.returncode == 254
    assert result.stderr == (
        "run: error parsing app image arguments: "
        'dangling mount point "/x": volume "nope" not found\n'
    )
    assert rkt.pods() == []


def test_fly_refuses_two_apps_after_moving_the_pod_to_run(
    rkt: Rkt, tmp_path: Path, images: dict[str, str]
) -> None:
    uuid, code = _run_for_uuid(
        rkt, tmp_path, "two", FLY, DATA_VOL, images["busybox-true"], images["busybox-false"]
    )
    want = transcript("226-run-fly-two-apps.txt")
    assert code == want.exit
    assert rkt.state(uuid) == "exited"


def test_bad_dns_flag_fails_after_the_pod_moved_to_run(
    rkt: Rkt, tmp_path: Path, images: dict[str, str]
) -> None:
    uuid, code = _run_for_uuid(
        rkt, tmp_path, "d", FLY, DATA_VOL, "--dns=notanip", images["busybox-true"]
    )
    assert code == 254
    assert rkt.state(uuid) == "exited"


def test_run_writes_the_uuid_file_without_newline(
    rkt: Rkt, tmp_path: Path, images: dict[str, str]
) -> None:
    uuid, _ = _run_for_uuid(rkt, tmp_path, "u", FLY, DATA_VOL, images["busybox-true"])
    assert UUID_RE.fullmatch(uuid)
    assert (tmp_path / "u.uuid").read_bytes() == uuid.encode()


def test_fly_run_exec_override_mounts_dns_and_hostname(
    rkt: Rkt, tmp_path: Path, images: dict[str, str]
) -> None:
    result = rkt(
        "--insecure-options=image",
        "run",
        FLY,
        f"--volume=vol,kind=host,source={tmp_path},readOnly=true",
        DATA_VOL,
        "--dns=9.9.9.9",
        "--hostname=myhost",
        "--port=http:18080",
        f"--uuid-file-save={tmp_path / 'x.uuid'}",
        images["busybox"],
        "--mount=volume=vol,target=/mnt/vol",
        "--exec=/bin/sh",
        "--",
        "-c",
        'echo exec-override; echo args:"$0"',
    )
    assert result.returncode == 0
    assert result.stdout == (
        "Warning: -hostname not supported; ignoring\nexec-override\nargs:/bin/sh\n"
    )
    pod = rkt.pods()[0]
    assert pod["apps"][0]["mounts"] == [
        {"name": "vol", "container_path": "/mnt/vol", "host_path": str(tmp_path), "read_only": True}
    ]
    want = json.loads(transcript("184-list-json-host-default-net.txt").stdout)[1]["apps"][0]
    assert list(pod["apps"][0]) == list(want)


def test_app_environment_precedence(rkt: Rkt, tmp_path: Path, images: dict[str, str]) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=file\nSHARED=file\n\n")
    result = rkt(
        "--insecure-options=image",
        "run",
        FLY,
        DATA_VOL,
        f"--set-env-file={env_file}",
        "--set-env=SHARED=set-env",
        "--set-env=FROM_MANIFEST=set-env",
        images["busybox"],
        "--environment=FROM_MANIFEST=app",
        "--exec=/bin/sh",
        "--",
        "-c",
        'echo "$FROM_MANIFEST $SHARED $FROM_FILE $AC_APP_NAME $PATH"',
    )
    # fly sets no AC_APP_NAME (real rkt 1.30, by hand); the nspawn stage1s do.
    assert result.stdout == f"app set-env file  {fakerkt.DEFAULT_PATH}\n"


def test_an_image_without_a_host_program_runs_a_placeholder(rkt: Rkt) -> None:
    uuid = rkt.prepare("example.com/web:1.0")
    rkt.start(uuid)
    (app,) = _app_pids(rkt, uuid)
    assert Path(f"/proc/{app}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"2147483647"]
    manifest = json.loads(rkt.ok("cat-manifest", uuid))
    assert manifest["apps"][0]["app"]["exec"] == ["/fake-rkt/bin/web"]
    assert manifest["apps"][0]["image"]["labels"][0] == {"name": "version", "value": "1.0"}


def test_docker_images_need_insecure_image(rkt: Rkt) -> None:
    result = rkt("prepare", "--quiet", "docker://redis:3.2")
    assert (result.returncode, result.stderr) == (
        254,
        "prepare: signature verification for docker images is not supported "
        "(try --insecure-options=image)\n",
    )
    uuid = rkt.prepare("docker://redis:3.2", "--name=cache")
    pod = rkt.pods()[0]
    assert (pod["name"], pod["app_names"]) == (uuid, ["cache"])
    table = rkt.ok("list")
    assert "registry-1.docker.io/library/redis:3.2" in table
    uuid2 = rkt.prepare("docker://redis:3.2")
    assert json.loads(rkt.ok("status", "--format=json", uuid2))["app_names"] == ["redis"]


# --------------------------------------------------------------------------------------
# What the controller reads: stamps, exit codes, transient states


def test_user_annotations_and_labels_land_under_apps(rkt: Rkt, images: dict[str, str]) -> None:
    uuid = rkt.prepare(
        DATA_VOL,
        images["busybox"],
        "--name=web",
        "--user-annotation=rktctl.io/task=web",
        "--user-annotation=rktctl.io/spec-hash=sha256-aaa",
        "--user-label=rktctl.io/managed-by=rktctl",
        "--annotation=note=x",
    )
    rkt.start(uuid, "--net=host")
    (pod,) = rkt.pods()
    golden = json.loads((GOLDEN.parent / "rkt-list" / "owned-stamps.json").read_text())[0]
    assert json.dumps(shape(pod)) == json.dumps(shape(golden) | {"name": "<UUID>"})
    assert pod["apps"][0]["user_annotations"] == {
        "rktctl.io/spec-hash": "sha256-aaa",
        "rktctl.io/task": "web",
    }
    assert pod["apps"][0]["user_labels"] == {"rktctl.io/managed-by": "rktctl"}
    manifest = json.loads(rkt.ok("cat-manifest", uuid))
    assert manifest["apps"][0]["annotations"] == [{"name": "note", "value": "x"}]


def test_crash_app_exit_code_shows_in_list_and_status(rkt: Rkt, images: dict[str, str]) -> None:
    uuid = rkt.prepare(DATA_VOL, images["busybox"])
    proc = rkt.start(uuid, "--net=host")
    fakerkt.crash_app(rkt.dir, uuid, exit_code=3)
    assert proc.wait(timeout=10) == 3
    (pod,) = rkt.pods()
    assert (pod["state"], pod["apps"][0]["state"], pod["apps"][0]["exit_code"]) == (
        "exited",
        "exited",
        3,
    )
    assert rkt.ok("status", uuid).endswith("exited=true\napp-busybox=3\n")


def test_status_wait_returns_when_the_pod_ends(rkt: Rkt, images: dict[str, str]) -> None:
    uuid = rkt.prepare(FLY, DATA_VOL, images["busybox"])
    rkt.start(uuid)
    rkt.ok("stop", uuid)
    assert_like(rkt("status", "--wait", uuid), "191-status-wait-fly.txt")


def test_status_wait_times_out_on_a_running_pod(rkt: Rkt, images: dict[str, str]) -> None:
    uuid = rkt.prepare(FLY, DATA_VOL, images["busybox"])
    rkt.start(uuid)
    result = rkt("status", "--wait=300ms", uuid)
    assert (result.returncode, result.stderr) == (
        254,
        "status: error waiting for pod to finish: context deadline exceeded\n",
    )


def _fabricate(rkt: Rkt, images: dict[str, str], state: str) -> str:
    """A pod dir as a killed `prepare` leaves it: in prepare/, no pod-created."""
    uuid = rkt.prepare(FLY, DATA_VOL, images["busybox-true"])
    src = rkt.dir / "pods" / "prepared" / uuid
    (src / "pod-created").unlink()
    src.rename(rkt.dir / "pods" / "prepare" / uuid)
    assert state == "aborted prepare"
    return uuid


def test_an_aborted_prepare_is_listed_but_left_out_of_json(
    rkt: Rkt, images: dict[str, str]
) -> None:
    aborted = _fabricate(rkt, images, "aborted prepare")
    other = rkt.prepare(FLY, DATA_VOL, images["busybox"])
    assert [r[:4] for r in tokens(rkt.ok("list"))[1:]] == sorted(
        [
            [aborted[:8], "-", "-", "aborted prepare"],
            [other[:8], "busybox", "example.com/busybox:1.0.0", "prepared"],
        ]
    )
    listed = rkt("list", "--format=json")
    assert [p["name"] for p in json.loads(listed.stdout)] == [other]
    assert listed.returncode == 0
    assert listed.stderr == (GOLDEN.parent / "rkt-list" / "while-preparing.stderr").read_text()
    assert_like(rkt("status", aborted), "152b-status-aborted-prepare.txt")
    assert_like(rkt("status", "--format=json", aborted), "152c-status-json-aborted-prepare.txt")
    gc = rkt("gc", "--mark-only")
    assert gc.stderr == f'gc: moving failed prepare "{aborted}" to garbage\n'
    assert_like(rkt("status", aborted), "154-status-garbage.txt")
    assert rkt("gc").stdout == f'Garbage collecting pod "{aborted}"\n'


def test_a_locked_pod_in_prepare_reads_preparing(rkt: Rkt, images: dict[str, str]) -> None:
    import fcntl

    uuid = _fabricate(rkt, images, "aborted prepare")
    fd = os.open(rkt.dir / "pods" / "prepare" / uuid, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert_like(rkt("status", uuid), "151c-status-while-preparing.txt")
        assert "\tpreparing\ta long while ago\t" in rkt.ok("list")
        removed = rkt("rm", uuid)
        assert removed.stderr.startswith(f'rm: pod "{uuid}" is currently being prepared\n')
    finally:
        os.close(fd)


def test_an_external_lock_makes_an_exited_pod_read_running(
    rkt: Rkt, tmp_path: Path, images: dict[str, str]
) -> None:
    import fcntl

    uuid, _ = _run_for_uuid(rkt, tmp_path, "x", FLY, DATA_VOL, images["busybox-true"])
    fd = os.open(rkt.dir / "pods" / "run" / uuid, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert rkt.ok("status", uuid).startswith("state=running\n")
        assert_like(rkt("rm", uuid), "171-rm-exited-pod-while-external-flock-held.txt")
    finally:
        os.close(fd)
    assert rkt.state(uuid) == "exited"


def test_status_ambiguous_and_empty_prefixes(rkt: Rkt, images: dict[str, str]) -> None:
    import shutil

    uuid = rkt.prepare(FLY, DATA_VOL, images["busybox"])
    twin = uuid[:9] + "0000-4000-8000-000000000000"
    shutil.copytree(rkt.dir / "pods" / "prepared" / uuid, rkt.dir / "pods" / "prepared" / twin)
    result = rkt("status", uuid[:4])
    assert (result.returncode, result.stderr) == (
        254,
        "status: problem retrieving pod: ambiguous uuid, 2 matches\n",
    )
    assert rkt("status", "").stderr == "status: problem retrieving pod: UUID cannot be empty\n"
    debug = rkt("--debug", "status", "deadbeef")
    assert debug.stderr == (
        "status: problem retrieving pod\n  └─unable to resolve UUID\n"
        '    └─no matches found for "deadbeef"\n'
    )


def test_status_uuid_file(rkt: Rkt, tmp_path: Path, images: dict[str, str]) -> None:
    uuid, _ = _run_for_uuid(rkt, tmp_path, "s", FLY, DATA_VOL, images["busybox-true"])
    assert rkt.ok("status", f"--uuid-file={tmp_path / 's.uuid'}") == rkt.ok("status", uuid)
    assert rkt("status", f"--uuid-file={tmp_path / 's.uuid'}", uuid).returncode == 254


# --------------------------------------------------------------------------------------
# Images and keys


def test_fetch_and_image_list(rkt: Rkt, images: dict[str, str]) -> None:
    assert_like(
        rkt("fetch", images["busybox"]),
        "11-fetch-local-aci-no-insecure.txt",
        paths={"/srv/aci/busybox-sleep.aci": images["busybox"]},
    )
    short = rkt.ok("--insecure-options=image", "fetch", images["busybox"])
    assert re.fullmatch(r"sha512-[0-9a-f]{32}\n", short)
    assert rkt.ok("--insecure-options=image", "fetch", images["busybox"]) == short
    full = rkt.ok("--insecure-options=image", "fetch", "--full", images["busybox-true"])
    assert re.fullmatch(r"sha512-[0-9a-f]{64}\n", full)
    by_name = rkt.ok("fetch", "--pull-policy=never", "example.com/busybox-true:1.0.0")
    assert by_name == full[:39] + "\n"
    listed = rkt.ok("image", "list", "--format=json")
    real = json.loads(transcript("14-image-list-json.txt").stdout)
    same_json_shape(json.dumps(json.loads(listed)[:1]), json.dumps(real[:1]))
    entries = json.loads(listed)
    assert [e["name"] for e in entries] == [
        "example.com/busybox:1.0.0",
        "example.com/busybox-true:1.0.0",
    ]
    assert list(entries[0]) == ["id", "name", "import_time", "last_used_time", "size"]
    table = rkt.ok("image", "list")
    assert tokens(table)[0] == ["ID", "NAME", "SIZE", "IMPORT TIME", "LAST USED"]
    assert tokens(table)[1][1:3] == ["example.com/busybox:1.0.0", "10KiB"]
    manifest = json.loads(rkt.ok("image", "cat-manifest", "example.com/busybox:1.0.0"))
    assert manifest["name"] == "example.com/busybox"
    removed = rkt("image", "rm", entries[0]["id"])
    assert removed.stdout == f'successfully removed aci for image: "{entries[0]["id"]}"\n'
    assert removed.stderr == "rm: 1 image(s) successfully removed\n"


def test_trust_with_prefix_stores_a_key(rkt: Rkt, tmp_path: Path) -> None:
    config = tmp_path / "etc-rkt"
    result = rkt(
        f"--local-config={config}", "trust", "--prefix=example.com/web", "--skip-fingerprint-review"
    )
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert re.fullmatch(
        r"gpg key fingerprint is: ([0-9A-F]{4} ){4}[0-9A-F]{4}  ([0-9A-F]{4} ){4}[0-9A-F]{4}",
        lines[0],
    )
    assert lines[2] == (
        'Trusting "https://example.com/pubkeys.gpg" for prefix "example.com/web" without '
        "fingerprint review."
    )
    fingerprint = lines[0].split(": ")[1].replace(" ", "").lower()
    key = config / "trustedkeys" / "prefix.d" / "example.com" / "web" / fingerprint
    assert lines[3] == f'Added key for prefix "example.com/web" at "{key}"'
    assert key.is_file()
    assert (
        result.stderr
        == 'pubkey: prefix: "example.com/web"\nkey: "https://example.com/pubkeys.gpg"\n'
    )


@pytest.mark.parametrize(
    ("args", "code", "stderr_end"),
    [
        (
            ["--prefix=example.com/web"],
            254,
            "trust: error adding keys: error reviewing key: unable to ask user to review "
            "fingerprint due to lack of tty\n",
        ),
        (
            ["--prefix=example.com", "--root"],
            254,
            "trust: --root and --prefix usage mutually exclusive\n",
        ),
        (
            ["--prefix=https://example.com"],
            254,
            "trust: --prefix must not contain a URL scheme, omit https://\n",
        ),
    ],
    ids=["no-tty", "root-and-prefix", "scheme"],
)
def test_trust_refusals(
    rkt: Rkt, tmp_path: Path, args: list[str], code: int, stderr_end: str
) -> None:
    result = rkt(f"--local-config={tmp_path}", "trust", *args)
    assert result.returncode == code
    assert result.stderr.endswith(stderr_end)
    assert not (tmp_path / "trustedkeys").exists()


def test_trust_with_insecure_image_has_no_keystore(rkt: Rkt, tmp_path: Path) -> None:
    result = rkt(
        f"--local-config={tmp_path}",
        "--insecure-options=image",
        "trust",
        "--prefix=example.com",
        "--skip-fingerprint-review",
    )
    assert (result.returncode, result.stderr) == (254, "trust: could not get the keystore\n")


def test_trust_into_an_unwritable_config_fails(rkt: Rkt, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = rkt(
        f"--local-config={blocker}", "trust", "--prefix=example.com", "--skip-fingerprint-review"
    )
    assert result.returncode == 254
    assert result.stderr.splitlines()[-1] == (
        f"trust: error adding keys: mkdir {blocker}/trustedkeys: not a directory"
    )


# --------------------------------------------------------------------------------------
# Faults and the call log


def test_fault_replaces_a_command_then_counts_down(rkt: Rkt, images: dict[str, str]) -> None:
    fakerkt.add_fault(
        rkt.dir, cmd="prepare", match="busybox", exit=254, stderr="prepare: boom", times=1
    )
    failed = rkt("--insecure-options=image", "prepare", "--quiet", DATA_VOL, images["busybox"])
    assert (failed.returncode, failed.stdout, failed.stderr) == (254, "", "prepare: boom\n")
    assert fakerkt.faults(rkt.dir)[0]["times"] == 0
    assert rkt.prepare(DATA_VOL, images["busybox"])
    assert len(rkt.pods()) == 1


def test_fault_skip_lets_the_first_calls_through(rkt: Rkt) -> None:
    fakerkt.add_fault(rkt.dir, cmd="list", skip=2, stdout="not json", times=1)
    assert [rkt("list", "--format=json").stdout for _ in range(4)] == [
        "null\n",
        "null\n",
        "not json\n",
        "null\n",
    ]


def test_fault_delay_makes_a_call_hang(rkt: Rkt) -> None:
    fakerkt.add_fault(rkt.dir, cmd="list", delay_s=30)
    with pytest.raises(subprocess.TimeoutExpired):
        rkt("list", "--format=json", timeout=1)  # subprocess.run kills the child on timeout
    fakerkt.clear_faults(rkt.dir)
    assert rkt.ok("list", "--format=json") == "null\n"


def test_fault_app_exit_crashes_the_app_after_a_delay(rkt: Rkt, images: dict[str, str]) -> None:
    uuid = rkt.prepare(DATA_VOL, images["busybox"])
    fakerkt.add_fault(rkt.dir, cmd="run-prepared", match=uuid, app_exit=3, after_s=0.2)
    proc = rkt.bg("run-prepared", "--net=host", uuid)
    assert proc.wait(timeout=10) == 3
    assert rkt.ok("status", uuid).endswith("app-busybox=3\n")


def test_bad_faults_file_fails_loudly(rkt: Rkt) -> None:
    (rkt.dir / "fake").mkdir()
    (rkt.dir / "fake" / "faults.json").write_text("{")
    result = rkt("list")
    assert result.returncode == 254
    assert result.stderr.startswith(f"rkt: fake: bad {rkt.dir}/fake/faults.json: ")


def test_every_call_is_logged_with_argv_and_exit(rkt: Rkt, images: dict[str, str]) -> None:
    before = time.time()
    rkt("list", "--format=json")
    rkt("status", "nope")
    uuid = rkt.prepare(DATA_VOL, images["busybox-true"])
    rkt("bogus")
    calls = fakerkt.calls(rkt.dir)
    assert [(c["argv"], c["cmd"], c["exit"]) for c in calls] == [
        ([f"--dir={rkt.dir}", "list", "--format=json"], "list", 0),
        ([f"--dir={rkt.dir}", "status", "nope"], "status", 254),
        (
            [
                f"--dir={rkt.dir}",
                "--insecure-options=image",
                "prepare",
                "--quiet",
                DATA_VOL,
                images["busybox-true"],
            ],
            "prepare",
            0,
        ),
        ([f"--dir={rkt.dir}", "bogus"], None, 254),
    ]
    assert calls[2]["uuid"] == uuid
    assert all(before <= c["t"] <= time.time() and c["dur"] >= 0 for c in calls)
    assert fakerkt.calls(rkt.dir, "status")[0]["argv"][-1] == "nope"


def test_concurrent_calls_are_safe(rkt: Rkt, images: dict[str, str]) -> None:
    procs = [
        subprocess.Popen(
            [
                str(FAKE),
                f"--dir={rkt.dir}",
                "--insecure-options=image",
                "prepare",
                "--quiet",
                DATA_VOL,
                images["busybox"],
            ]
            if i % 2 == 0
            else [str(FAKE), f"--dir={rkt.dir}", "list", "--format=json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
            text=True,
        )
        for i in range(12)
    ]
    results = [(p.wait(timeout=30), *p.communicate()) for p in procs]
    assert all(code == 0 for code, _, _ in results), results
    block = (GOLDEN.parent / "rkt-list" / "while-preparing.stderr").read_text()
    for i, (_, out, err) in enumerate(results):
        if i % 2:  # a list may catch pods mid-prepare: left out, with rkt's error block
            assert isinstance(json.loads(out), list | None)
            assert err in ("", block) or err.startswith("list: 2 error(s)"), err
        else:
            assert err == ""
    prepared = sorted(out.strip() for i, (_, out, _) in enumerate(results) if i % 2 == 0)
    assert sorted(p["name"] for p in rkt.pods()) == prepared
    assert len(fakerkt.calls(rkt.dir)) == 12 + 1


# --------------------------------------------------------------------------------------
# Flags: per-app recording, placement and exclusivity


def test_app_and_pod_flags_are_recorded_in_the_manifest(rkt: Rkt, images: dict[str, str]) -> None:
    uuid = rkt.prepare(
        "--volume=data,kind=host,source=/srv/data,readOnly=true",
        "--volume=scratch,kind=empty",
        "--mount=volume=scratch,target=/scratch",
        "--port=http:8080",
        images["busybox"],
        "--name=web",
        "--exec=/bin/echo",
        "--user=nobody",
        "--group=nogroup",
        "--memory=128M",
        "--cpu=500m",
        "--cpu-shares=2048",
        "--environment=G=h",
        "--working-dir=/srv",
        "--readonly-rootfs=true",
        "--supplementary-gids=1,2",
        "--caps-retain=CAP_NET_BIND_SERVICE",
        "--oom-score-adj=100",
        "--",
        "hello",
        "world",
    )
    manifest = json.loads(rkt.ok("cat-manifest", uuid))
    assert list(manifest) == [
        "acVersion",
        "acKind",
        "apps",
        "volumes",
        "isolators",
        "annotations",
        "ports",
    ]
    assert manifest["volumes"] == [
        {"name": "data", "kind": "host", "source": "/srv/data", "readOnly": True},
        {"name": "scratch", "kind": "empty", "mode": "0755", "uid": 0, "gid": 0},
    ]
    assert manifest["ports"] == [{"name": "http", "hostPort": 8080}]
    (runtime,) = manifest["apps"]
    assert list(runtime) == ["name", "image", "app", "readOnlyRootFS", "mounts"]
    app = runtime["app"]
    assert (runtime["name"], app["exec"], app["user"], app["group"]) == (
        "web",
        ["/bin/echo", "hello", "world"],
        "nobody",
        "nogroup",
    )
    assert (app["supplementaryGIDs"], app["workingDirectory"]) == ([1, 2], "/srv")
    assert app["environment"] == [
        {"name": "FROM_MANIFEST", "value": "yes"},
        {"name": "G", "value": "h"},
    ]
    assert [i["name"] for i in app["isolators"]] == [
        "resource/memory",
        "resource/cpu",
        "os/linux/cpu-shares",
        "os/linux/capabilities-retain-set",
        "os/linux/oom-score-adj",
    ]
    assert runtime["mounts"] == [{"volume": "scratch", "path": "/scratch"}]


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (
            ["--exec=/bin/x", "IMG"],
            'Error: invalid argument "/bin/x" for --exec=/bin/x: --exec must follow an image\n\n',
        ),
        (
            ["--stage1-name=a", "--stage1-path=b", "IMG"],
            'Error: invalid argument "b" for --stage1-path=b: flags --stage1-path and '
            "--stage1-name are mutually exclusive\n\n",
        ),
        (
            ["--stage1-name=a", "--stage1-name=b", "IMG"],
            'Error: invalid argument "b" for --stage1-name=b: --stage1-name already used\n\n',
        ),
        (
            ["IMG", "--label=x"],
            "prepare: error parsing app image arguments: unknown flag: --label\n",
        ),
        (
            ["IMG", "--memory=16m"],
            'prepare: error parsing app image arguments: invalid argument "16m" for --memory=16m: '
            "memory limit of 1 bytes too low. Try a reasonable value, such as --memory=16M\n",
        ),
        (
            ["IMG", "--exec=/a", "--exec=/b"],
            'prepare: error parsing app image arguments: invalid argument "/b" for --exec=/b: '
            "--exec specified multiple times for the same image\n",
        ),
        (["IMG", "--", "a", "--", "b"], ""),  # a second `--` is just an argument
    ],
    ids=[
        "exec-before-image",
        "stage1-exclusive",
        "stage1-twice",
        "no-label-flag",
        "memory-too-low",
        "exec-twice",
        "dashes-in-args",
    ],
)
def test_prepare_argument_errors(
    rkt: Rkt, images: dict[str, str], args: list[str], stderr: str
) -> None:
    argv = [images["busybox"] if a == "IMG" else a for a in args]
    result = rkt("--insecure-options=image", "prepare", "--quiet", *argv)
    assert result.stderr == stderr
    assert (result.returncode == 0) == (stderr == "")


def test_image_gc_removes_unused_images(rkt: Rkt, images: dict[str, str]) -> None:
    used = rkt.prepare(DATA_VOL, images["busybox"])
    unused = rkt.ok("--insecure-options=image", "fetch", "--full", images["busybox-true"]).strip()
    assert rkt("image", "gc").stdout == ""  # both were used within the 24h grace period
    result = rkt("image", "gc", "--grace-period=0s")
    assert result.stdout == f'successfully removed aci for image: "{unused}"\n'
    assert result.stderr == "gc: 1 image(s) successfully removed\n"
    remaining = json.loads(rkt.ok("image", "list", "--format=json"))
    assert [i["name"] for i in remaining] == ["example.com/busybox:1.0.0"]
    assert rkt.state(used) == "prepared"


def test_an_app_that_ended_in_a_running_host_pod_reads_exited(
    rkt: Rkt, tmp_path: Path, images: dict[str, str]
) -> None:
    uuid = rkt.prepare(HOST, DATA_VOL, images["busybox-true"], images["busybox"])
    proc = rkt.start(uuid, "--net=host")
    pod = wait_for(
        lambda: (p := rkt.pods()[0])["apps"][0]["state"] == "exited" and p, what="first app ends"
    )
    assert pod["state"] == "running"
    assert [(a["name"], a["state"], a.get("exit_code")) for a in pod["apps"]] == [
        ("busybox-true", "exited", 0),
        ("busybox", "running", None),
    ]
    rkt.ok("stop", uuid)
    assert proc.wait(timeout=10) == 0
    assert rkt.ok("status", uuid).endswith("app-busybox-true=0\napp-busybox=0\n")


def test_a_garbage_pod_being_deleted_reads_exited_deleting(
    rkt: Rkt, tmp_path: Path, images: dict[str, str]
) -> None:
    import fcntl

    uuid, _ = _run_for_uuid(rkt, tmp_path, "g", FLY, DATA_VOL, images["busybox-true"])
    rkt.ok("gc", "--mark-only")
    fd = os.open(rkt.dir / "pods" / "exited-garbage" / uuid, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a deleting gc holds
        (pod,) = rkt.pods()
        want = json.loads(transcript("196b-list-json-during-gc.txt").stdout)[0]
        assert json.dumps(shape(pod)) == json.dumps(shape(want))
        assert "\texited deleting\t" in rkt.ok("list")
        assert rkt.ok("status", uuid).endswith("exited=false\n")
    finally:
        os.close(fd)
