"""placement.place: constraints -> ports -> interpolation -> admission, end to end."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from controller.manifests import compute_spec_hash, parse_manifest
from controller.model import (
    Constraint,
    DesiredState,
    PortRequest,
    Resources,
    TaskName,
    Volume,
    frozen_map,
)
from controller.placement import Capacity, Placement, place
from controller.ports import PortBinding
from controller.security import WorkloadPolicy
from tests.factories import desired, fake_spec_hash, invalid, task

ATTRS = {"meta.role": "web", "kernel.name": "linux", "node.unique.name": "node-1"}
GiB = 1 << 30
MiB = 1 << 20


def run(state: DesiredState, **overrides: Any) -> Placement:
    kwargs: dict[str, Any] = {
        "attrs": ATTRS,
        "persisted_ports": {},
        "host_bound": frozenset(),
        "running_tasks": frozenset(),
        "cfg_port_range": (20000, 20099),
        "env": None,
        "capacity": Capacity(),
        "overcommit": False,
        "default_stage1_flavor": "coreos",  # a stage1 with its own network: ports remap
        "hasher": fake_spec_hash,
    }
    kwargs.update(overrides)
    return place(state, **kwargs)


def ported(name: str, *ports: PortRequest, **kw: Any) -> Any:
    return task(name, resources=Resources(ports=ports), **kw)


def dyn(label: str) -> PortRequest:
    return PortRequest(label=label)


def fixed(label: str, port: int) -> PortRequest:
    return PortRequest(label=label, static=port)


def test_plain_tasks_are_placed_unchanged() -> None:
    web, db = task("web"), task("db")
    assert run(desired(web, db)) == Placement(
        specs={"db": db, "web": web},
        blocked={},
        host_ports={"db": {}, "web": {}},
        env={"db": {}, "web": {}},
        persisted_ports={},
        bindings={"db": {}, "web": {}},
    )


def test_invalid_entries_are_left_to_the_planner() -> None:
    result = run(desired(task("web"), invalid("db")))
    assert set(result.specs) == {"web"}
    assert result.blocked == {}


def test_unmet_constraint_blocks_the_task_with_the_reason_and_allocates_nothing() -> None:
    db = ported(
        "db",
        fixed("pg", 5432),
        constraints=(Constraint(attribute="${meta.role}", operator="=", value="db"),),
    )
    other = ported("other", fixed("pg", 5432))
    result = run(desired(db, other))
    assert result.blocked == {"db": 'constraint ${meta.role} = "db" not met: meta.role is "web"'}
    # The blocked task does not hold its static port against a task that can run here.
    assert result.host_ports == {"other": {"pg": 5432}}


def test_task_starts_matching_when_the_meta_is_added() -> None:
    db = task("db", constraints=(Constraint(attribute="${meta.role}", operator="=", value="db"),))
    assert "db" in run(desired(db)).blocked
    assert run(desired(db), attrs={**ATTRS, "meta.role": "db"}).specs == {"db": db}


def test_static_port_collision_blocks_the_later_task_by_name() -> None:
    result = run(desired(ported("redis", fixed("db", 6379)), ported("cache", fixed("db", 6379))))
    assert result.blocked == {"redis": "static port 6379 is already used by task cache"}
    assert set(result.specs) == {"cache"}


def test_ports_of_running_tasks_are_not_collisions_with_themselves() -> None:
    web = ported("web", fixed("http", 8080), dyn("admin"))
    result = run(
        desired(web),
        running_tasks=frozenset({TaskName("web")}),
        persisted_ports={"web": {"http": 8080, "admin": 20005}},
        host_bound=frozenset({8080, 20005, 22}),
    )
    assert result.blocked == {}
    assert result.host_ports == {"web": {"admin": 20005, "http": 8080}}


def test_static_port_bound_by_another_process_blocks_a_task_that_is_not_running() -> None:
    result = run(desired(ported("web", fixed("http", 8080))), host_bound=frozenset({8080}))
    assert result.blocked == {"web": "static port 8080 is already in use on this host"}


def test_port_variables_bindings_and_env_for_mapped_ports() -> None:
    redis = ported(
        "redis",
        dyn("db"),
        port_map=frozen_map({"db": "6379"}),
        args=("--port", "${NOMAD_PORT_db}", "--announce", "${NOMAD_ADDR_db}"),
    )
    result = run(desired(redis), attrs={**ATTRS, "unique.network.ip-address": "10.1.2.3"})
    binding = PortBinding(
        label="db", host_port=20000, host_ip="10.1.2.3", container_port="6379-tcp"
    )
    assert result.bindings == {"redis": {"db": binding}}
    assert result.host_ports == {"redis": {"db": 20000}}
    assert result.specs["redis"].args == ("--port", "6379", "--announce", "10.1.2.3:20000")
    assert result.env["redis"]["NOMAD_PORT_db"] == "6379"
    assert result.env["redis"]["RKTCTL_HOST_PORT_db"] == "20000"
    assert result.persisted_ports == {"redis": {"db": 20000}}


def test_host_network_port_variable_is_the_host_port() -> None:
    web = ported("web", dyn("http"), net=("host",), port_map=frozen_map({"http": "80"}))
    result = run(desired(web))
    assert result.bindings["web"]["http"].container_port is None
    assert result.env["web"]["RKTCTL_PORT_http"] == "20000"


def test_unknown_variable_blocks_the_task_naming_it() -> None:
    result = run(desired(task("web", args=("${meta.rack}",)), task("db")))
    assert result.blocked == {
        "web": "spec.config.args[0]: unknown variable ${meta.rack} "
        "(meta.rack is not an attribute of this node)"
    }
    assert set(result.specs) == {"db"}


def test_env_interpolation_needs_the_environment() -> None:
    web = task("web", env=frozen_map({"R": "${env.REGION}"}))
    assert "web" in run(desired(web)).blocked
    placed = run(desired(web), env={"REGION": "eu"})
    assert dict(placed.specs["web"].env) == {"R": "eu"}


def test_interpolated_absolute_volume_is_refused_when_volumes_are_disabled() -> None:
    web = task("web", volumes=(Volume(host="${meta.dir}", container="/d"),))
    result = run(desired(web), attrs={**ATTRS, "meta.dir": "/etc"})  # the default policy
    assert result.blocked == {
        "web": "spec.config.volumes[0]: host path '/etc' is absolute but volumes_enabled "
        "is false in the controller config; set volumes_enabled = true (and "
        "allowed_volume_prefixes) to allow it"
    }
    allowed = run(
        desired(web),
        attrs={**ATTRS, "meta.dir": "/etc"},
        policy=WorkloadPolicy(volumes_enabled=True, allowed_volume_prefixes=("/etc",)),
    )
    assert "web" in allowed.specs


def test_the_workload_policy_blocks_a_task_before_anything_runs() -> None:
    web = task("web", insecure_options=("all-run",))
    result = run(desired(web, task("db")))
    assert set(result.specs) == {"db"}
    assert "allowed_insecure_options" in result.blocked["web"]


def test_dynamic_port_survives_a_spec_changing_replace() -> None:
    before = ported("web", dyn("http"), args=("v1",))
    first = run(desired(ported("api", dyn("http")), before))
    after = dataclasses.replace(before, args=("v2",))
    after = dataclasses.replace(after, spec_hash=fake_spec_hash(after))
    second = run(
        desired(after),
        persisted_ports=first.persisted_ports,
        running_tasks=frozenset({TaskName("web")}),
    )
    assert first.host_ports["web"] == second.host_ports["web"] == {"http": 20001}
    assert first.specs["web"].spec_hash != second.specs["web"].spec_hash


def test_placed_hash_changes_only_with_the_effective_config() -> None:
    web = task("web", args=("${meta.role}",))
    base = run(desired(web)).specs["web"].spec_hash
    unrelated = run(desired(web), attrs={**ATTRS, "kernel.name": "x", "meta.y": "1"})
    related = run(desired(web), attrs={**ATTRS, "meta.role": "api"})
    assert unrelated.specs["web"].spec_hash == base
    assert related.specs["web"].spec_hash != base


def test_persisted_ports_are_kept_while_the_desired_dir_is_empty() -> None:
    """The deletion guard keeps the pods running, so their ports stay theirs."""
    persisted = {TaskName("web"): {"http": 20003}}
    assert run(desired(), persisted_ports=persisted).persisted_ports == persisted
    assert run(desired(dir_missing=True), persisted_ports=persisted).persisted_ports == persisted


def test_persisted_ports_of_a_removed_task_are_dropped_once_it_stops_running() -> None:
    persisted = {TaskName("web"): {"http": 20003}, TaskName("old"): {"http": 20004}}
    still_running = run(
        desired(ported("web", dyn("http"))),
        persisted_ports=persisted,
        running_tasks=frozenset({TaskName("old")}),
    )
    stopped = run(desired(ported("web", dyn("http"))), persisted_ports=persisted)
    assert still_running.persisted_ports == persisted
    assert stopped.persisted_ports == {"web": {"http": 20003}}


def test_ports_of_constraint_blocked_and_invalid_tasks_stay_reserved() -> None:
    persisted = {TaskName("db"): {"pg": 20000}, TaskName("bad"): {"x": 20001}}
    db = ported(
        "db", dyn("pg"), constraints=(Constraint(attribute="meta.role", operator="=", value="db"),)
    )
    result = run(desired(db, invalid("bad"), ported("new", dyn("p"))), persisted_ports=persisted)
    assert result.host_ports == {"new": {"p": 20002}}
    assert result.persisted_ports == {**persisted, "new": {"p": 20002}}


# --- admission -------------------------------------------------------------------


def sized(name: str, cpu: int | None = None, memory: int | None = None) -> Any:
    return task(name, resources=Resources(cpu_millis=cpu, memory_bytes=memory))


NODE = Capacity(cpu_millis=2000, memory_bytes=4 * GiB, reserved_memory_bytes=GiB)


def test_admission_blocks_the_task_that_does_not_fit_with_the_numbers() -> None:
    tasks = desired(sized("a", 1000, GiB), sized("b", 500, GiB), sized("c", 1000, 2 * GiB))
    result = run(tasks, capacity=NODE)
    assert set(result.specs) == {"a", "b"}
    assert result.blocked == {
        "c": "not enough cpu: the task requests 1000m but only 500m of 2000m is free "
        "(node 2000m minus 0m reserved; 1500m requested by a, b); "
        "not enough memory: the task requests 2Gi but only 1Gi of 3Gi is free "
        "(node 4Gi minus 1Gi reserved; 2Gi requested by a, b); "
        "set overcommit = true to allow it"
    }


def test_running_tasks_are_admitted_first_so_a_new_task_never_evicts_one() -> None:
    tasks = desired(sized("a-new", memory=2 * GiB), sized("z-running", memory=2 * GiB))
    result = run(tasks, capacity=NODE, running_tasks=frozenset({TaskName("z-running")}))
    assert set(result.specs) == {"z-running"}
    assert result.blocked == {
        "a-new": "not enough memory: the task requests 2Gi but only 1Gi of 3Gi is free "
        "(node 4Gi minus 1Gi reserved; 2Gi requested by z-running); "
        "set overcommit = true to allow it"
    }


def test_a_blocked_task_does_not_use_up_capacity() -> None:
    tasks = desired(sized("a", memory=2 * GiB), sized("b", memory=2 * GiB), sized("c", memory=GiB))
    assert set(run(tasks, capacity=NODE).specs) == {"a", "c"}


def test_tasks_without_requests_always_fit() -> None:
    full = Capacity(cpu_millis=1000, memory_bytes=GiB, reserved_cpu_millis=1000)
    result = run(desired(sized("a"), sized("b", memory=GiB)), capacity=full)
    assert set(result.specs) == {"a", "b"}


def test_odd_memory_sizes_are_shown_in_mebibytes() -> None:
    node = Capacity(memory_bytes=GiB + 512 * 1024)
    result = run(desired(sized("a", memory=2 * GiB)), capacity=node)
    assert result.blocked["a"].startswith(
        "not enough memory: the task requests 2Gi but only 1024.5Mi of 1024.5Mi is free"
    )


def test_overcommit_admits_everything() -> None:
    tasks = desired(sized("a", 3000), sized("b", 3000))
    assert set(run(tasks, capacity=NODE, overcommit=True).specs) == {"a", "b"}


def test_unknown_capacity_does_not_limit() -> None:
    assert set(run(desired(sized("a", 10**6, 10**15))).specs) == {"a"}


def test_blocked_reasons_from_every_stage_together() -> None:
    tasks = desired(
        task("c1", constraints=(Constraint(attribute="${meta.gpu}", operator="is_set"),)),
        ported("p1", fixed("x", 80)),
        ported("p2", fixed("x", 80)),
        task("v1", command="${meta.nope}"),
        sized("r1", cpu=5000),
    )
    result = run(tasks, capacity=Capacity(cpu_millis=1000))
    assert sorted(result.blocked) == ["c1", "p2", "r1", "v1"]
    assert list(result.blocked) == sorted(result.blocked)
    assert set(result.specs) == {"p1"}


def _names(mapping: Mapping[TaskName, object]) -> set[str]:
    return set(mapping)


def test_place_is_deterministic() -> None:
    tasks = desired(ported("b", dyn("x")), ported("a", dyn("x")), sized("c", 100))
    assert run(tasks) == run(tasks)
    assert _names(run(tasks).specs) == {"a", "b", "c"}


MANIFEST = """\
apiVersion: rktctl.io/v1
kind: Task
metadata: {name: web}
spec:
  config:
    image: example.com/web:1.0
    args: [%s]
"""


def test_default_hasher_is_the_manifests_and_a_plain_spec_keeps_its_hash() -> None:
    plain = parse_manifest(MANIFEST % '"--flag"', source="web.yaml")
    templated = parse_manifest(MANIFEST % '"${meta.role}"', source="web.yaml")
    placed = run(desired(plain), hasher=None).specs["web"]
    resolved = run(desired(templated), hasher=None).specs["web"]
    assert placed.spec_hash == plain.spec_hash
    assert resolved.args == ("web",)
    assert resolved.spec_hash == compute_spec_hash(resolved) != templated.spec_hash
