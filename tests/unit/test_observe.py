"""controller.observe against golden `rkt list`/`status` output (tests/data) and edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.errors import RktOutputError, RktUnsupported
from controller.model import (
    Observation,
    ObservedApp,
    ObservedPod,
    PodState,
    PodUUID,
    SpecHash,
    TaskName,
    frozen_map,
)
from controller.observe import (
    check_supported,
    is_owned,
    parse_pod_list,
    parse_pod_status,
    parse_version,
    stamp_of,
)

DATA = Path(__file__).resolve().parent.parent / "data"
LIST_DIR = DATA / "rkt-list"
STATUS_DIR = DATA / "rkt-status"
LIST_FILES = sorted(LIST_DIR.glob("*.json"))
STATUS_FILES = sorted(STATUS_DIR.glob("*.json"))
SHA_TRUE = "sha512-e68846e5da9399ef018fab368aa2e5583e4792334231e006f1fcdfd775ac3d13"
SHA_BUSYBOX = "sha512-94e9035a54e1fd4c617f3300e13ef6fb91d49370cff8add8070a5c9c2de28d02"
STAMP = {"rktctl.io/spec-hash": "sha256-aaa", "rktctl.io/task": "web"}
LABEL = {"rktctl.io/managed-by": "rktctl"}


def load(name: str) -> Observation:
    path = LIST_DIR / f"{name}.json"
    stderr = path.with_suffix(".stderr")
    return parse_pod_list(path.read_bytes(), stderr.read_bytes() if stderr.exists() else b"")


def summary(obs: Observation) -> list[tuple[str, str, str | None, int | None, bool]]:
    """(uuid prefix, state, task, pod exit code, started) per pod: the planner's view."""
    return [
        (p.uuid[:8], str(p.state), p.task, p.exit_code, p.started_at is not None) for p in obs.pods
    ]


@pytest.mark.parametrize("path", LIST_FILES, ids=[p.stem for p in LIST_FILES])
def test_every_golden_list_parses_and_completeness_follows_stderr(path: Path) -> None:
    stderr = path.with_suffix(".stderr")
    obs = parse_pod_list(path.read_bytes(), stderr.read_bytes() if stderr.exists() else b"")
    assert obs.complete is not stderr.exists()
    assert len(obs.pods) == len(json.loads(path.read_bytes()) or [])


@pytest.mark.parametrize("path", STATUS_FILES, ids=[p.stem for p in STATUS_FILES])
def test_every_golden_status_parses_to_the_same_pod_as_in_a_list(path: Path) -> None:
    pod = parse_pod_status(path.read_bytes())
    assert parse_pod_list(b"[" + path.read_bytes() + b"]").pods == (pod,)


def test_empty_store_is_null() -> None:
    assert load("empty-null") == Observation(pods=(), complete=True, errors=())


def test_one_running_whole_value() -> None:
    assert load("one-running") == Observation(
        pods=(
            ObservedPod(
                uuid=PodUUID("7e9adbd2-a96e-4d5d-806f-09763f8eeda2"),
                state=PodState.RUNNING,
                task=None,
                spec_hash=None,
                apps=(
                    ObservedApp(
                        name="busybox",
                        state="running",
                        exit_code=None,
                        image_id=SHA_BUSYBOX,
                        created_at_ns=1795338665131856039,
                        started_at_ns=1795338665145435995,
                    ),
                ),
                created_at=1795338665,
                started_at=1795338665,
            ),
        )
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "mixed",
            [
                ("039ba272", "prepared", None, None, False),
                ("418a75cf", "exited", None, None, True),
                ("52e85228", "exited", None, None, False),
                ("533c6cd0", "exited", None, None, False),
                ("7e9adbd2", "running", None, None, True),
                ("88816e53", "exited", None, None, False),
                ("b7ad686b", "prepared", None, None, False),
                ("d111f9bc", "exited", None, None, True),
                ("da6603fd", "exited", None, None, False),
            ],
            id="mixed-prepared-exited-running",
        ),
        pytest.param(
            "zoo",
            [
                ("18cd4f5d", "running", None, None, True),
                ("221f09c5", "exited", None, None, True),
                ("35a44956", "running", None, None, True),
                ("c5781c43", "exited", None, 0, True),
                ("d0fc0a9f", "exited", None, 3, True),
                ("ea3ce7c2", "exited", None, None, True),
                ("eb80761b", "prepared", None, None, False),
                ("ecbb3f1e", "exited garbage", None, None, True),
            ],
            id="zoo-exit-codes-0-and-3",
        ),
        pytest.param(
            "failed-runs",
            [
                ("52e85228", "exited", None, None, False),
                ("7e9adbd2", "running", None, None, True),
                ("da6603fd", "exited", None, None, False),
            ],
            id="failed-run-exited-without-started_at",
        ),
        pytest.param(
            "after-gc",
            [
                ("1e98bb53", "prepared", None, None, False),
                ("291454f5", "running", None, None, True),
            ],
            id="after-gc",
        ),
        pytest.param(
            "multi-app", [("24319ddc", "exited", None, 3, True)], id="multi-app-first-failing-code"
        ),
    ],
)
def test_golden_list_summaries(name: str, expected: list[tuple[object, ...]]) -> None:
    obs = load(name)
    assert obs.complete
    assert summary(obs) == expected


def test_after_gc_mark_has_exited_garbage_with_finished_at_in_ns() -> None:
    obs = load("after-gc-mark")
    garbage = [p for p in obs.pods if p.state is PodState.EXITED_GARBAGE]
    assert [p.uuid[:8] for p in garbage] == [
        "418a75cf",
        "533c6cd0",
        "88816e53",
        "b7ad686b",
        "da6603fd",
    ]
    assert {a.finished_at_ns for p in garbage for a in p.apps} == {1795338769396625112}
    assert {p.state for p in obs.pods} == {
        PodState.PREPARED,
        PodState.RUNNING,
        PodState.EXITED_GARBAGE,
    }


def test_during_gc_has_exited_deleting() -> None:
    obs = load("during-gc")
    assert obs.pods[0].state is PodState.EXITED_DELETING
    assert {p.state for p in obs.pods[1:]} == {PodState.EXITED_GARBAGE}


def test_while_preparing_is_incomplete_with_rkts_error_lines() -> None:
    obs = load("while-preparing")
    assert obs.complete is False
    assert obs.errors == (
        "list: 1 error(s) encountered when listing pods:",
        "list: invalid creation time",
        "list: misc:",
        "list:   rkt's appc version: 0.8.11",
    )
    assert len(obs.pods) == 24
    assert PodState.PREPARING not in {p.state for p in obs.pods}


def test_host_default_net_networks_and_times() -> None:
    running = next(p for p in load("host-default-net").pods if p.state is PodState.RUNNING)
    assert running.networks == ("default:ip4=172.16.28.2",)
    assert running.created_at == 1795340658  # seconds
    assert running.apps[0].started_at_ns == 1795340658730714403  # nanoseconds
    exited = [p for p in load("host-default-net").pods if p.state is PodState.EXITED]
    assert all(p.networks == () for p in exited)


def test_host_running_pretty_json_exit_codes() -> None:
    codes = {p.uuid[:8]: p.exit_code for p in load("host-running").pods}
    assert codes["760de0bc"] == 3
    assert codes["7892a1e0"] == 0
    assert codes["08a1c550"] is None  # fly: no exit code


def test_pretty_and_compact_json_give_the_same_observation() -> None:
    assert load("mixed") == load("mixed-pretty")


def test_ownership_stamps() -> None:
    pods = {p.uuid[-1]: p for p in load("owned-stamps").pods}
    owned = {k: (p.task, p.spec_hash) for k, p in pods.items() if p.owned}
    assert owned == {
        "1": ("web", "sha256-aaa"),  # single app, full stamp
        "2": ("db", "sha256-bbb"),  # two apps, both stamped alike
        "8": ("web", None),  # apps agree on the task, not on the hash
    }
    # 3 foreign; 4 one app lacks the label; 5 apps disagree on the task; 6 wrong
    # managed-by value; 7 stamp only at pod level; 9 empty task annotation.
    assert sorted(k for k, p in pods.items() if not p.owned) == ["3", "4", "5", "6", "7", "9"]


def test_owned_pod_whole_value() -> None:
    pod = load("owned-stamps").pods[0]
    assert pod == ObservedPod(
        uuid=PodUUID("0a000000-0000-4000-8000-000000000001"),
        state=PodState.RUNNING,
        task=TaskName("web"),
        spec_hash=SpecHash("sha256-aaa"),
        apps=(
            ObservedApp(
                name="web",
                state="running",
                image_id=SHA_BUSYBOX,
                created_at_ns=1795338665131856039,
                started_at_ns=1795338665145435995,
                user_annotations=frozen_map(STAMP),
                user_labels=frozen_map(LABEL),
            ),
        ),
        created_at=1795338665,
        started_at=1795338665,
    )


def test_unknown_states_do_not_crash() -> None:
    obs = load("unknown-state")
    assert [(p.state, p.task) for p in obs.pods] == [
        (PodState.UNKNOWN, "web"),
        (PodState.RUNNING, None),
    ]
    assert obs.pods[0].apps[0].state == "sleeping"


def test_missing_optional_fields() -> None:
    assert load("missing-optional-fields").pods == (
        ObservedPod(uuid=PodUUID("0c000000-0000-4000-8000-000000000001"), state=PodState.EXITED),
        ObservedPod(
            uuid=PodUUID("0c000000-0000-4000-8000-000000000002"),
            state=PodState.RUNNING,
            apps=(ObservedApp(name="web"),),
        ),
        ObservedPod(
            uuid=PodUUID("0c000000-0000-4000-8000-000000000003"),
            state=PodState.EXITED,
            apps=(ObservedApp(name="web", state="exited", exit_code=137),),
            networks=("default:ip4=",),
        ),
    )


def test_rkt_127_without_created_at() -> None:
    obs = load("rkt127-no-created-at")
    assert [(p.state, p.created_at, p.started_at, p.task) for p in obs.pods] == [
        (PodState.PREPARING, None, None, None),  # 1.27 lists preparing pods, without apps
        (PodState.PREPARED, None, None, "web"),
        (PodState.RUNNING, None, 1506000001, None),
    ]
    assert obs.complete


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        pytest.param(b"", "not JSON", id="empty"),
        pytest.param(b"not json", "not JSON", id="garbage"),
        pytest.param(b"[{]", "not JSON", id="truncated"),
        pytest.param(b"\xff\xfe", "not JSON", id="binary"),
        pytest.param(b'{"name": "x"}', "expected a JSON array or null, got dict", id="object"),
        pytest.param(b'"x"', "expected a JSON array or null, got str", id="string"),
        pytest.param(b"[1]", r"pod\[0\]: expected an object, got int", id="pod-not-object"),
        pytest.param(b'[{"state": "running"}]', "missing the pod UUID", id="no-name"),
        pytest.param(
            b'[{"name": "u", "created_at": "yesterday"}]',
            r"created_at: expected an integer, got str",
            id="bad-time-type",
        ),
        pytest.param(
            b'[{"name": "u", "started_at": true}]', "expected an integer, got bool", id="bool-time"
        ),
        pytest.param(b'[{"name": "u", "apps": {}}]', "apps: expected an array", id="apps-object"),
        pytest.param(b'[{"name": "u", "apps": [{}]}]', "missing the app name", id="app-no-name"),
        pytest.param(
            b'[{"name": "u", "apps": [{"name": "a", "exit_code": "3"}]}]',
            r"apps\[0\].exit_code: expected an integer",
            id="exit-code-string",
        ),
        pytest.param(
            b'[{"name": "u", "apps": [{"name": "a", "user_labels": []}]}]',
            "user_labels: expected an object",
            id="labels-array",
        ),
        pytest.param(b'[{"name": "u", "networks": [1]}]', "networks: expected objects", id="net"),
    ],
)
def test_garbage_raises_rkt_output_error(stdout: bytes, message: str) -> None:
    with pytest.raises(RktOutputError, match=message):
        parse_pod_list(stdout)


def test_status_rejects_a_list() -> None:
    with pytest.raises(RktOutputError, match="expected an object, got list"):
        parse_pod_status(b"[]")


@pytest.mark.parametrize(
    ("stderr", "complete", "errors"),
    [
        pytest.param(b"", True, (), id="empty"),
        pytest.param(b"\n  \n", True, (), id="blank"),
        pytest.param(b"list: \n", False, ("list:",), id="only-prefix"),
        pytest.param(
            b'skipping "x": not a pod', False, ('skipping "x": not a pod',), id="no-newline"
        ),
    ],
)
def test_stderr_decides_completeness(
    stderr: bytes, complete: bool, errors: tuple[str, ...]
) -> None:
    assert parse_pod_list(b"null\n", stderr) == Observation(complete=complete, errors=errors)


def test_status_golden_values() -> None:
    two = parse_pod_status((STATUS_DIR / "host-two-apps.json").read_bytes())
    assert [(a.name, a.exit_code) for a in two.apps] == [("busybox-true", 0), ("busybox-false", 3)]
    assert two.exit_code == 3
    prepared = parse_pod_status((STATUS_DIR / "prepared.json").read_bytes())
    assert (prepared.state, prepared.started_at, prepared.apps[0].state) == (
        PodState.PREPARED,
        None,
        "created",
    )
    net = parse_pod_status((STATUS_DIR / "host-running-default-net.json").read_bytes())
    assert net.networks == ("default:ip4=172.16.28.2",)


def test_is_owned_on_raw_json_matches_the_parser() -> None:
    raw = json.loads((LIST_DIR / "owned-stamps.json").read_bytes())
    parsed = load("owned-stamps").pods
    assert [is_owned(p) for p in raw] == [is_owned(p) for p in parsed]
    assert [is_owned(p) for p in parsed] == [p.owned for p in parsed]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"name": "u"}, id="no-apps"),
        pytest.param({"name": "u", "apps": "x"}, id="apps-not-list"),
        pytest.param({"name": "u", "apps": [{"name": 1}]}, id="bad-app"),
        pytest.param(
            {"name": "u", "apps": [], "user_annotations": STAMP, "user_labels": LABEL},
            id="pod-level-stamp-only",
        ),
    ],
)
def test_is_owned_raw_edge_cases_are_foreign(raw: dict[str, object]) -> None:
    assert is_owned(raw) is False


def test_stamp_of_without_apps_is_none() -> None:
    assert stamp_of(()) is None


VERSION_130 = (
    b"rkt Version: 1.30.0\nappc Version: 0.8.11\nGo Version: go1.19.8\n"
    b"Go OS/Arch: linux/amd64\nFeatures: -TPM -SDJOURNAL\n"
)


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        pytest.param(
            VERSION_130,
            {
                "driver.rkt": "1",
                "driver.rkt.version": "1.30.0",
                "driver.rkt.appc.version": "0.8.11",
            },
            id="rkt-1.30-transcript",
        ),
        pytest.param(
            b"rkt version 1.27.0+git\nappc version 0.8.10\n",
            {
                "driver.rkt": "1",
                "driver.rkt.version": "1.27.0",
                "driver.rkt.appc.version": "0.8.10",
            },
            id="lowercase-no-colon-git-suffix",
        ),
    ],
)
def test_parse_version(stdout: bytes, expected: dict[str, str]) -> None:
    assert parse_version(stdout) == expected


@pytest.mark.parametrize(
    "stdout",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"rkt Version: 1.30.0\n", id="no-appc"),
        pytest.param(b"docker version 20.10\n", id="not-rkt"),
        pytest.param(b"rkt Version: unknown\nappc Version: 0.8.11\n", id="unreadable"),
    ],
)
def test_parse_version_unparsable(stdout: bytes) -> None:
    with pytest.raises(RktUnsupported, match="cannot read the version"):
        parse_version(stdout)


@pytest.mark.parametrize("version", ["1.27.0", "1.27", "1.30.0", "2.0.0", "1.100.1"])
def test_check_supported_accepts(version: str) -> None:
    check_supported({"driver.rkt.version": version})


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        pytest.param({"driver.rkt.version": "1.26.0"}, "1.26.0 is older than 1.27.0", id="1.26"),
        pytest.param({"driver.rkt.version": "0.14.0"}, "older than 1.27.0", id="0.14"),
        pytest.param({}, "rkt version is unknown", id="missing"),
        pytest.param({"driver.rkt.version": "x"}, "rkt version is unknown", id="garbage"),
    ],
)
def test_check_supported_refuses(attrs: dict[str, str], message: str) -> None:
    with pytest.raises(RktUnsupported, match=message):
        check_supported(attrs)


def test_check_supported_custom_minimum() -> None:
    with pytest.raises(RktUnsupported, match=r"older than 1\.30\.0"):
        check_supported({"driver.rkt.version": "1.29.0"}, minimum="1.30.0")
