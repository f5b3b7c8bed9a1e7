"""nodeinfo against the real host: attributes, listening ports, ports.json on disk."""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from controller import nodeinfo
from controller.config import Config
from controller.model import PortRequest, Resources, TaskName, TaskSpec
from controller.placement import Capacity, place
from tests.factories import desired, fake_spec_hash, task

REQUIRED_KEYS = {
    "unique.hostname", "node.unique.name", "kernel.name", "kernel.version", "kernel.release",
    "cpu.arch", "cpu.numcores", "memory.totalbytes",
}  # fmt: skip


def test_attributes_of_this_host() -> None:
    attrs = nodeinfo.gather_attributes(Config(meta={"role": "db", "rack": "r1"}))
    assert REQUIRED_KEYS - set(attrs) == set()
    assert attrs["kernel.name"] == os.uname().sysname.lower()
    assert attrs["kernel.release"] == os.uname().release
    assert attrs["kernel.release"].startswith(attrs["kernel.version"])
    assert attrs["kernel.version"].replace(".", "").isdigit()
    assert attrs["cpu.numcores"] == str(os.cpu_count())
    assert int(attrs["memory.totalbytes"]) > 0
    assert attrs["unique.hostname"] == attrs["node.unique.name"] == socket.gethostname()
    assert attrs["meta.role"] == "db" and attrs["meta.rack"] == "r1"
    assert list(attrs) == sorted(attrs)


def test_rkt_attributes_are_merged_and_volumes_flag_follows_config() -> None:
    rkt = {"driver.rkt": "1", "driver.rkt.version": "1.30.0", "driver.rkt.appc.version": "0.8.11"}
    enabled = nodeinfo.gather_attributes(Config(volumes_enabled=True), rkt_attrs=rkt)
    disabled = nodeinfo.gather_attributes(Config(volumes_enabled=False))
    assert {k: enabled[k] for k in rkt} == rkt
    assert enabled["driver.rkt.volumes.enabled"] == "true"
    assert not any(k.startswith("driver.") for k in disabled)


def test_node_id_is_stable_and_not_the_machine_id() -> None:
    first = nodeinfo.gather_attributes(Config())
    second = nodeinfo.gather_attributes(Config())
    assert first.get("node.unique.id") == second.get("node.unique.id")
    machine_id = Path("/etc/machine-id")
    if "node.unique.id" in first and machine_id.exists():
        assert machine_id.read_text().strip() not in first["node.unique.id"]


def test_capacity_from_attributes_and_reserve() -> None:
    attrs = {"cpu.numcores": "4", "memory.totalbytes": "8589934592"}
    cfg = Config(reserved_cpu_millis=500, reserved_memory_bytes=1 << 30)
    assert nodeinfo.capacity(attrs, cfg) == Capacity(
        cpu_millis=4000,
        memory_bytes=8589934592,
        reserved_cpu_millis=500,
        reserved_memory_bytes=1 << 30,
    )
    assert nodeinfo.capacity({}) == Capacity()


def test_parse_meminfo() -> None:
    text = "MemFree:  100 kB\nMemTotal:       16314568 kB\nBuffers: 1 kB\n"
    assert nodeinfo.parse_meminfo(text) == 16314568 * 1024
    assert nodeinfo.parse_meminfo("Nothing: 1 kB\n") is None


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1
"""
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx rx
   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 0 0
"""


def test_parse_proc_net_tcp_keeps_only_listening_sockets() -> None:
    assert nodeinfo.parse_proc_net_tcp(PROC_NET_TCP) == frozenset({8080, 80})
    assert nodeinfo.parse_proc_net_tcp(PROC_NET_TCP6) == frozenset({443})


@pytest.fixture
def listening_port() -> Iterator[int]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_bound_tcp_ports_sees_a_real_listening_socket(listening_port: int) -> None:
    assert listening_port in nodeinfo.bound_tcp_ports()


def test_bound_tcp_ports_ignores_a_bound_but_not_listening_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        assert sock.getsockname()[1] not in nodeinfo.bound_tcp_ports()


def test_bound_tcp_ports_tolerates_missing_files(tmp_path: Path) -> None:
    assert nodeinfo.bound_tcp_ports([str(tmp_path / "nope")]) == frozenset()


# --- ports.json ------------------------------------------------------------------


def test_ports_round_trip_through_the_state_dir(tmp_path: Path) -> None:
    mapping = {TaskName("web"): {"http": 20001, "admin": 20002}, TaskName("db"): {"pg": 5432}}
    nodeinfo.save_ports(tmp_path / "state", mapping)
    path = tmp_path / "state" / "ports.json"
    assert json.loads(path.read_text()) == {
        "version": 1,
        "tasks": {"db": {"pg": 5432}, "web": {"admin": 20002, "http": 20001}},
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert nodeinfo.load_ports(tmp_path / "state") == mapping


def test_missing_ports_file_is_empty(tmp_path: Path) -> None:
    assert nodeinfo.load_ports(tmp_path) == {}


@pytest.mark.parametrize(
    "content",
    [pytest.param("{not json", id="not-json"), pytest.param("[1, 2]", id="not-an-object"),
     pytest.param('{"version": 1}', id="no-tasks")],
)  # fmt: skip
def test_corrupt_ports_file_is_logged_and_treated_as_empty(tmp_path: Path, content: str) -> None:
    (tmp_path / "ports.json").write_text(content)
    with capture_logs() as logs:
        assert nodeinfo.load_ports(tmp_path) == {}
    assert [e["event"] for e in logs] == ["state_file_invalid"]
    assert logs[0]["path"] == str(tmp_path / "ports.json")


def test_bad_entries_in_ports_file_are_dropped(tmp_path: Path) -> None:
    document = {
        "version": 1,
        "tasks": {"web": {"http": 20001, "bad": "x", "big": 70000, "flag": True}, "db": []},
    }
    (tmp_path / "ports.json").write_text(json.dumps(document))
    assert nodeinfo.load_ports(tmp_path) == {"web": {"http": 20001}}


def test_dynamic_port_survives_a_controller_restart(tmp_path: Path) -> None:
    """Allocate, save, then a fresh process (load from disk) gets the same port."""
    web = task("web", resources=Resources(ports=(PortRequest(label="http"),)))
    api = task("api", resources=Resources(ports=(PortRequest(label="http"),)))

    def one_pass(*tasks: TaskSpec) -> dict[TaskName, dict[str, int]]:
        placed = place(
            desired(*tasks),
            attrs={},
            persisted_ports=nodeinfo.load_ports(tmp_path),
            host_bound=nodeinfo.bound_tcp_ports(),
            running_tasks=frozenset(),
            cfg_port_range=(40000, 40999),
            env=None,
            capacity=Capacity(),
            overcommit=False,
            hasher=fake_spec_hash,
        )
        nodeinfo.save_ports(tmp_path, placed.persisted_ports)
        return {n: dict(p) for n, p in placed.host_ports.items()}

    first = one_pass(web)
    # "Restart": only the file carries state; a new task sorting first must not steal it.
    second = one_pass(api, web)
    assert second["web"] == first["web"]
    assert second["api"] != first["web"]
