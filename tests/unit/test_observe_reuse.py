"""observe.parse_pod_list(previous=...): unchanged entries reuse the last pod, others are re-read.

An entry is unchanged when it re-encodes to the same bytes (its digest); any edit, even
one the parser ignores (an unknown key), re-reads it.

The result must equal a parse without `previous` in every case; only object identity says
whether a pod was reused.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.errors import RktOutputError
from controller.model import PodState
from controller.observe import parse_pod_list

LIST_FILES = sorted((Path(__file__).resolve().parent.parent / "data" / "rkt-list").glob("*.json"))
UUID = "7e9adbd2-a96e-4d5d-806f-09763f8eeda2"


def pod(uuid: str = UUID, task: str = "web") -> dict[str, Any]:
    return {
        "name": uuid,
        "state": "running",
        "networks": [{"netName": "default", "ip": "172.16.28.2"}],
        "apps": [
            {
                "name": task,
                "state": "running",
                "image_id": "sha512-aa",
                "created_at": 1_700_000_000_000_000_000,
                "started_at": 1_700_000_000_000_000_001,
                "user_annotations": {"rktctl.io/task": task, "rktctl.io/spec-hash": "sha256-a"},
                "user_labels": {"rktctl.io/managed-by": "rktctl"},
            }
        ],
        "created_at": 1_700_000_000,
        "started_at": 1_700_000_001,
    }


def dump(*pods: dict[str, Any]) -> bytes:
    return json.dumps(list(pods)).encode()


def test_unchanged_entries_are_the_same_objects() -> None:
    other = pod("11111111-2222-4333-8444-555555555555", "db")
    first = parse_pod_list(dump(pod(), other))
    again = parse_pod_list(dump(other, pod()), previous=first)
    assert again == parse_pod_list(dump(other, pod()))
    assert again.pods[0] is first.pods[1] and again.pods[1] is first.pods[0]


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(entry: dict[str, Any]) -> None:
        target = entry
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return edit


EDITS = {
    "state": _set(("state",), "exited"),
    "unknown state": _set(("state",), "weird"),
    "pod started_at": _set(("started_at",), 1_700_000_002),
    "pod started_at gone": _set(("started_at",), KeyError),
    "app state": _set(("apps", 0, "state"), "exited"),
    "app exit code": _set(("apps", 0, "exit_code"), 3),
    "app finished": _set(("apps", 0, "finished_at"), 1_700_000_009_000_000_000),
    "app image": _set(("apps", 0, "image_id"), "sha512-bb"),
    "app name": _set(("apps", 0, "name"), "web2"),
    "spec hash": _set(("apps", 0, "user_annotations", "rktctl.io/spec-hash"), "sha256-b"),
    "stamp removed": _set(("apps", 0, "user_labels"), KeyError),
    "non-string label": _set(("apps", 0, "user_labels", "n"), 5),
    "second app": lambda e: e["apps"].append(copy.deepcopy(e["apps"][0])),
    "no apps": _set(("apps",), None),
    "network ip": _set(("networks", 0, "ip"), "172.16.28.3"),
    "no networks": _set(("networks",), KeyError),
    "unknown key": _set(("future",), {"x": 1}),
}


@pytest.mark.parametrize("name", EDITS)
def test_a_changed_entry_reads_as_a_fresh_parse(name: str) -> None:
    first = parse_pod_list(dump(pod()))
    entry = pod()
    EDITS[name](entry)
    again = parse_pod_list(dump(entry), previous=first)
    assert again == parse_pod_list(dump(entry))
    if name not in ("unknown key", "non-string label"):  # both ignored by the parser
        assert again.pods[0] != first.pods[0]


@pytest.mark.parametrize(
    "bad",
    [
        _set(("created_at",), 1.0),
        _set(("created_at",), True),
        _set(("apps",), {}),
        _set(("networks",), "default"),
        _set(("apps", 0, "started_at"), "1"),
        _set(("apps", 0, "user_annotations"), ["x"]),
    ],
)
def test_an_entry_turned_invalid_still_raises(bad: Callable[[dict[str, Any]], None]) -> None:
    entry = pod()
    first = parse_pod_list(dump(entry))
    bad(entry)
    with pytest.raises(RktOutputError):
        parse_pod_list(dump(entry), previous=first)


def test_entry_equal_to_an_integer_but_not_one_is_not_reused() -> None:
    # created_at 1 and True compare equal in Python; the parser refuses the bool.
    entry = pod()
    entry["created_at"] = 1
    first = parse_pod_list(dump(entry))
    entry["created_at"] = True
    with pytest.raises(RktOutputError):
        parse_pod_list(dump(entry), previous=first)


@pytest.mark.parametrize("path", LIST_FILES, ids=[p.stem for p in LIST_FILES])
def test_golden_lists_reparse_to_the_same_pods(path: Path) -> None:
    first = parse_pod_list(path.read_bytes())
    again = parse_pod_list(path.read_bytes(), previous=first)
    assert again == first
    assert all(a is b for a, b in zip(again.pods, first.pods, strict=True))


def test_a_pod_gone_and_back_under_its_uuid_is_compared_again() -> None:
    first = parse_pod_list(dump(pod()))
    empty = parse_pod_list(b"null", previous=first)
    assert empty.pods == ()
    again = parse_pod_list(dump(pod()), previous=empty)
    assert again.pods[0].state is PodState.RUNNING and again.pods[0] is not first.pods[0]


def test_a_lone_surrogate_is_read_as_json_reads_it_and_never_reused() -> None:
    """orjson refuses a lone surrogate (and cannot encode it for a digest); the parser falls
    back to json rather than failing, and such an entry is read afresh every time."""
    entry = pod()
    entry["apps"][0]["image_id"] = "\ud800"
    other = pod("11111111-2222-4333-8444-555555555555", "db")
    first = parse_pod_list(dump(entry))
    again = parse_pod_list(dump(entry, other), previous=first)
    assert first.pods[0].apps[0].image_id == "\ud800" and first.entry_keys == (b"",)
    assert again.pods[0] == first.pods[0] and again.pods[0] is not first.pods[0]


def test_the_same_output_is_the_last_observation() -> None:
    raw = dump(pod())
    first = parse_pod_list(raw, b"")
    assert parse_pod_list(raw, b"", previous=first) is first
    # The same stdout with a warning on stderr is another observation (incomplete).
    warned = parse_pod_list(raw, b"unable to read pod x\n", previous=first)
    assert warned is not first and not warned.complete and warned.pods == first.pods


def test_pods_with_the_same_labels_share_one_read_only_map() -> None:
    """Memory at 10k pods: every owned pod's labels are {managed-by: rktctl}."""
    obs = parse_pod_list(dump(pod(), pod("11111111-2222-4333-8444-555555555555", "db")))
    first, second = (p.apps[0] for p in obs.pods)
    assert first.user_labels is second.user_labels
    assert dict(first.user_labels) == {"rktctl.io/managed-by": "rktctl"}
    assert first.image_id is second.image_id
    with pytest.raises(TypeError):
        first.user_labels["x"] = "y"  # type: ignore[index]
