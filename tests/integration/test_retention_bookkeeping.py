"""Retention and the crash-loop bookkeeping (fake rkt, one Reconciler pass at a time).

A kept exited pod counts as exactly one exit, as a removed one did: not again in the
next pass, and not again after rktctl restarts (the kept UUIDs are in the state dir).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from controller.config import Config
from controller.model import TaskName
from controller.reconcile import Reconciler
from controller.runtime import RktCli
from tests.e2e.harness import manifest_yaml
from tests.fakes import fakerkt
from tests.integration.conftest import wait_for_an_exited_pod


def test_a_kept_pod_is_one_exit_also_after_a_restart(
    make_config: Callable[..., Config], make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    cfg = make_config(gc_interval_s=0.0, exited_pods_keep=2)
    Path(cfg.desired_dir).mkdir()
    spec = "  restart: {policy: always, initial_delay: 1m, max_delay: 5m}\n"
    text = manifest_yaml("crashy", command="/bin/sh", args=("-c", "exit 3"), extra_spec=spec)
    (Path(cfg.desired_dir) / "crashy.yaml").write_text(text)
    first = Reconciler(cfg, make_rkt_cli(cfg))
    first.run_pass("startup")
    wait_for_an_exited_pod(rkt_dir)  # the app exits at once; wait until rkt says so
    kept = first.run_pass("retry")
    assert kept.plan.actions == ()  # no rkt rm: the pod is kept
    (pod,) = kept.retained[TaskName("crashy")]
    assert pod.exit_code == 3
    assert kept.restarts[TaskName("crashy")].restarts == 1
    assert fakerkt.calls(rkt_dir, "rm") == []

    again = first.run_pass("resync")
    assert again.restarts[TaskName("crashy")].restarts == 1
    restarted = Reconciler(cfg, make_rkt_cli(cfg)).run_pass("startup")
    assert restarted.restarts[TaskName("crashy")].restarts == 1
    assert [h.reason for h in restarted.plan.holds] == ["backoff"]
    assert [p.uuid for p in restarted.retained[TaskName("crashy")]] == [pod.uuid]
