"""Cleaning up, in-process on the fake rkt: what `rkt gc` reports."""

from __future__ import annotations

import pytest

from controller import observe
from controller.runtime import RktCli
from tests.factories import task
from tests.integration.test_fake_rkt import transcript
from tests.integration.test_runtime import run_task


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("115-gc-grace-0s.txt", 5),
        ("121-gc-grace0-on-unmarked-exited.txt", 1),
        ("114-gc-default-grace.txt", 0),
        ("110-gc-mark-only.txt", 0),
    ],
)
def test_gc_output_names_the_pods_rkt_deleted(name: str, count: int) -> None:
    golden = transcript(name)
    collected = observe.parse_gc_output(golden.stdout.encode())
    assert len(collected) == count
    assert all(f'Garbage collecting pod "{uuid}"' in golden.stdout for uuid in collected)


def test_gc_returns_the_collected_pods(rkt_cli: RktCli) -> None:
    """On the fake; tests/contract/test_gc.py checks rkt's gc output on every backend."""
    uuid = run_task(rkt_cli, task("web", command="/bin/sleep", args=("1000",)))
    rkt_cli.stop(uuid, kill_timeout_s=10)
    assert rkt_cli.gc(grace_period_s=0) == (uuid,)
    assert rkt_cli.gc(grace_period_s=0) == ()
