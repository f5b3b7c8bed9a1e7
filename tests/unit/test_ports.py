"""ports.allocate: static collisions, host-bound ports, dynamic picks and persistence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from controller.model import PortRequest, TaskName
from controller.ports import (
    Allocation,
    PortBinding,
    allocate,
    container_port_number,
    port_name,
)

RANGE = (20000, 20009)


def static(label: str, port: int) -> PortRequest:
    return PortRequest(label=label, static=port)


def dynamic(label: str) -> PortRequest:
    return PortRequest(label=label)


def run(
    requests: Mapping[str, Sequence[PortRequest]],
    *,
    persisted: Mapping[str, Mapping[str, int]] | None = None,
    host_bound: set[int] | None = None,
    port_range: tuple[int, int] = RANGE,
    existing: set[str] | None = None,
) -> Allocation:
    return allocate(
        {TaskName(k): v for k, v in requests.items()},
        persisted={TaskName(k): v for k, v in (persisted or {}).items()},
        host_bound=frozenset(host_bound or ()),
        port_range=port_range,
        existing=frozenset(TaskName(n) for n in existing or ()),
    )


def test_static_and_dynamic_ports_are_allocated() -> None:
    result = run({"web": [static("http", 80), dynamic("admin")], "db": [dynamic("pg")]})
    assert result == Allocation(
        bindings={"db": {"pg": 20000}, "web": {"admin": 20001, "http": 80}},
        blocked={},
        persisted={"db": {"pg": 20000}, "web": {"admin": 20001, "http": 80}},
    )


def test_task_without_ports_gets_an_empty_binding_and_nothing_persisted() -> None:
    assert run({"batch": []}) == Allocation(bindings={"batch": {}}, blocked={}, persisted={})


def test_static_collision_blocks_the_later_task_by_name_naming_the_holder() -> None:
    result = run({"redis": [static("db", 6379)], "cache": [static("db", 6379)]})
    assert result.blocked == {"redis": "static port 6379 is already used by task cache"}
    assert result.bindings == {"cache": {"db": 6379}}


def test_static_collision_prefers_the_task_that_held_the_port_before() -> None:
    """A newly added manifest never evicts the task already using the port."""
    result = run(
        {"redis": [static("db", 6379)], "cache": [static("db", 6379)]},
        persisted={"redis": {"db": 6379}},
    )
    assert result.blocked == {"cache": "static port 6379 is already used by task redis"}
    assert result.bindings == {"redis": {"db": 6379}}


def test_every_static_problem_of_a_task_is_listed_and_it_claims_nothing() -> None:
    result = run(
        {"a": [static("http", 80)], "b": [static("http", 80), static("https", 443)],
         "c": [static("https", 443)]},
        host_bound={8080},
    )  # fmt: skip
    assert result.blocked == {"b": "static port 80 is already used by task a"}
    assert result.bindings == {"a": {"http": 80}, "c": {"https": 443}}


def test_static_port_bound_on_the_host_blocks_the_task() -> None:
    result = run({"web": [static("http", 80), static("alt", 8080)]}, host_bound={80, 8080})
    assert result.blocked == {
        "web": "static port 80 is already in use on this host; "
        "static port 8080 is already in use on this host"
    }
    assert result.bindings == {}


def test_same_static_port_twice_in_one_task_is_blocked() -> None:
    result = run({"web": [static("a", 80), static("b", 80)]})
    assert result.blocked == {"web": "static port 80 is requested twice by this task"}


def test_dynamic_ports_skip_host_bound_and_static_ports() -> None:
    result = run(
        {"a": [static("s", 20000)], "b": [dynamic("x"), dynamic("y")]},
        host_bound={20001, 20003},
    )
    assert result.bindings == {"a": {"s": 20000}, "b": {"x": 20002, "y": 20004}}


def test_dynamic_picks_go_by_task_then_label_name() -> None:
    result = run({"b": [dynamic("z"), dynamic("a")], "a": [dynamic("q")]})
    assert result.bindings == {"a": {"q": 20000}, "b": {"a": 20001, "z": 20002}}


def test_persisted_port_is_kept_across_reallocation() -> None:
    first = run({"web": [dynamic("http")], "db": [dynamic("pg")]})
    # A new task sorting first arrives: it must not take the existing tasks' ports.
    second = run(
        {"api": [dynamic("http")], "web": [dynamic("http")], "db": [dynamic("pg")]},
        persisted=first.persisted,
    )
    assert first.bindings == {"db": {"pg": 20000}, "web": {"http": 20001}}
    assert second.bindings == {
        "api": {"http": 20002},
        "db": {"pg": 20000},
        "web": {"http": 20001},
    }
    assert second.persisted == second.bindings


def test_persisted_port_survives_a_spec_change_of_the_task() -> None:
    """A replace (new args, a new dynamic label) keeps the old label's port."""
    persisted = {"web": {"http": 20007}}
    result = run({"web": [dynamic("http"), dynamic("metrics")]}, persisted=persisted)
    assert result.bindings == {"web": {"http": 20007, "metrics": 20000}}


def test_persisted_port_taken_by_another_process_is_replaced() -> None:
    result = run({"web": [dynamic("http")]}, persisted={"web": {"http": 20005}}, host_bound={20005})
    assert result.bindings == {"web": {"http": 20000}}
    assert result.persisted == {"web": {"http": 20000}}


def test_persisted_port_outside_a_changed_range_is_replaced() -> None:
    result = run({"web": [dynamic("http")]}, persisted={"web": {"http": 31000}})
    assert result.bindings == {"web": {"http": 20000}}


def test_persisted_port_now_requested_as_static_by_another_task_moves() -> None:
    result = run(
        {"web": [dynamic("http")], "api": [static("http", 20003)]},
        persisted={"web": {"http": 20003}},
    )
    assert result.bindings == {"api": {"http": 20003}, "web": {"http": 20000}}


def test_tasks_that_are_gone_lose_their_persisted_ports() -> None:
    result = run(
        {"web": [dynamic("http")]},
        persisted={"web": {"http": 20001}, "old": {"x": 20002}},
    )
    assert result.persisted == {"web": {"http": 20001}}


def test_labels_that_are_gone_lose_their_persisted_ports() -> None:
    result = run({"web": [dynamic("http")]}, persisted={"web": {"http": 20001, "gone": 20002}})
    assert result.persisted == {"web": {"http": 20001}}


def test_existing_but_unplaced_tasks_keep_and_reserve_their_ports() -> None:
    result = run(
        {"new": [dynamic("http")]},
        persisted={"paused": {"http": 20000}},
        existing={"paused"},
    )
    assert result.bindings == {"new": {"http": 20001}}
    assert result.persisted == {"new": {"http": 20001}, "paused": {"http": 20000}}


def test_blocked_task_keeps_its_dynamic_reservation_but_not_its_static_port() -> None:
    result = run(
        {"a": [static("s", 80)], "b": [static("s", 80), dynamic("d")]},
        persisted={"a": {"s": 80}, "b": {"d": 20004}},
    )
    assert result.blocked == {"b": "static port 80 is already used by task a"}
    assert result.persisted == {"a": {"s": 80}, "b": {"d": 20004}}
    # Next pass: b lost port 80 to a and has not "held it before", so a keeps it.
    again = run({"a": [static("s", 80)], "b": [static("s", 80)]}, persisted=result.persisted)
    assert again.blocked == {"b": "static port 80 is already used by task a"}


def test_exhausted_range_blocks_the_task() -> None:
    result = run(
        {"a": [dynamic("x"), dynamic("y")], "b": [dynamic("x")]}, port_range=(20000, 20001)
    )
    assert result.bindings == {"a": {"x": 20000, "y": 20001}}
    assert result.blocked == {"b": "no free host port left in range 20000-20001 for 'x'"}


def test_allocation_is_deterministic_whatever_the_input_order() -> None:
    requests = {"c": [dynamic("p")], "a": [static("s", 80)], "b": [dynamic("q"), dynamic("p")]}
    reordered = dict(reversed(list(requests.items())))
    assert run(requests) == run(reordered)


@pytest.mark.parametrize(
    ("value", "name"),
    [("6379", "6379-tcp"), ("6379-tcp", "6379-tcp"), ("53-udp", "53-udp"), ("http", "http"),
     (" 80 ", "80-tcp")],
)  # fmt: skip
def test_port_name_resolves_numbers_to_docker_style_names(value: str, name: str) -> None:
    assert port_name(value) == name


@pytest.mark.parametrize(
    ("name", "number"),
    [("6379-tcp", 6379), ("53-udp", 53), ("8080", 8080), ("http", None), (None, None),
     ("6379-sctp", None)],
)  # fmt: skip
def test_container_port_number(name: str | None, number: int | None) -> None:
    assert container_port_number(name) == number
    binding = PortBinding(label="x", host_port=1, container_port=name)
    assert binding.container_port_number == number
