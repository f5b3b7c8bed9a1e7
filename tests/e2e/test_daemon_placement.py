"""Placement end to end: constraints, host ports and their persistence, with the daemon."""

from __future__ import annotations

import json
import signal

import pytest

from tests.backends import free_port
from tests.e2e.harness import Harness, wait_for

pytestmark = pytest.mark.e2e


def _task(
    h: Harness, name: str, *, ports: str = "", port_map: str = "", extra: str = "", env: str = ""
) -> str:
    return (
        "apiVersion: rktctl.io/v1\nkind: Task\n"
        f"metadata:\n  name: {name}\n"
        "spec:\n  config:\n"
        f"    image: {h.backend.image(name)}\n"
        "    command: /bin/sleep\n    args: ['3600']\n"
        f"{port_map}"
        f"  kill_timeout: 5s\n{ports}{env}{extra}"
    )


def _pod_env(h: Harness, uuid: str) -> dict[str, str]:
    """The app's environment as rkt recorded it in the pod manifest."""
    out = h.backend.run(h.rkt_dir, "cat-manifest", uuid)
    assert out.returncode == 0, out.stderr
    app = json.loads(out.stdout)["apps"][0]["app"]
    return {e["name"]: e["value"] for e in app.get("environment", [])}


def _phase(h: Harness, name: str) -> str | None:
    return (h.task_status(name) or {}).get("phase")


def test_constraint_on_missing_meta_blocks_until_sighup_adds_it(h: Harness) -> None:
    h.start()
    constraint = "  constraints:\n    - {attribute: '${meta.role}', operator: '=', value: db}\n"
    h.write_manifest("db.yaml", _task(h, "db", extra=constraint))
    status = wait_for(
        lambda: _phase(h, "db") == "Blocked" and h.task_status("db"), what="db Blocked"
    )
    assert "meta.role" in status["message"]
    assert not h.calls("prepare")

    h.write_config(meta={"role": "db"})
    h.signal(signal.SIGHUP)
    wait_for(lambda: h.running("db"), what="db running after the meta was added")
    wait_for(lambda: _phase(h, "db") == "Running", what="status Running")


def test_dynamic_port_survives_restart_and_replace(h: Harness) -> None:
    ports = "  resources:\n    ports:\n      http: {}\n"
    port_map = "    port_map: {http: '8080-tcp'}\n"
    if h.backend.flavor == "fly":
        # fly shares the host's network: it cannot publish a mapped port on a host port
        # rktctl picks (refused: test_daemon_volumes_boot_ports.py). A dynamic port there
        # is a host-network port the app binds itself, as with `net: [host]`.
        port_map = "    net: [host]\n"
    h.start()
    h.write_manifest("web.yaml", _task(h, "web", ports=ports, port_map=port_map))
    first = wait_for(lambda: h.running("web"), what="web running")[0]
    ports_file = h.state_dir / "ports.json"
    # Saved at the end of the pass that started the pod: it may trail the pod by a moment.
    saved = wait_for(
        lambda: ports_file.exists() and json.loads(ports_file.read_text())["tasks"],
        what="ports.json",
    )
    host_port = saved["web"]["http"]
    low, high = 20000, 32000
    assert low <= host_port <= high
    prepare = next(a for a in h.calls("prepare") if "rktctl.io/task=web" in " ".join(a))
    forwarded = [] if h.backend.flavor == "fly" else [f"--port=8080-tcp:{host_port}"]
    assert [a for a in prepare if a.startswith("--port=")] == forwarded
    assert _pod_env(h, first["name"])["RKTCTL_HOST_PORT_http"] == str(host_port)

    assert h.stop() == 0
    prepares = len(h.calls("prepare"))
    h.start()
    wait_for(lambda: len(h.events("reconcile_finished")) >= 3, what="passes after restart")
    assert len(h.calls("prepare")) == prepares, "a restart must not replace the pod"
    assert [p["name"] for p in h.running("web")] == [first["name"]]

    env = "  env: {EDITED: 'yes'}\n"
    h.write_manifest("web.yaml", _task(h, "web", ports=ports, port_map=port_map, env=env))
    wait_for(
        lambda: [p for p in h.running("web") if p["name"] != first["name"]], what="the replacement"
    )
    latest = [a for a in h.calls("prepare") if "rktctl.io/task=web" in " ".join(a)][-1]
    assert [a for a in latest if a.startswith("--port=")] == forwarded
    assert json.loads((h.state_dir / "ports.json").read_text())["tasks"]["web"]["http"] == host_port


def test_two_tasks_on_one_static_port_run_one_and_block_the_other(h: Harness) -> None:
    static = 16379
    port_map = "    port_map: {db: '6379-tcp'}\n"
    if h.backend.flavor == "fly":
        # fly cannot remap 6379 to 16379 (refused: test_daemon_volumes_boot_ports.py): the
        # host port must be the container port, so use one that is free on this host.
        static = free_port()
        port_map = f"    port_map: {{db: {static}}}\n"
    ports = f"  resources:\n    ports:\n      db: {{static: {static}}}\n"
    h.write_manifest("a.yaml", _task(h, "alpha", ports=ports, port_map=port_map))
    h.write_manifest("b.yaml", _task(h, "beta", ports=ports, port_map=port_map))
    h.start()
    # a real host pod can take well over 20 s to start on a loaded 2-core machine
    wait_for(lambda: h.running("alpha"), what="alpha running", timeout=60)
    status = wait_for(
        lambda: _phase(h, "beta") == "Blocked" and h.task_status("beta"), what="beta Blocked"
    )
    assert str(static) in status["message"]
    assert "alpha" in status["message"]
    assert not h.running("beta")
