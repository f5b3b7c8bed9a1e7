"""The daemon's `rkt gc` timer: only with host_gc, and a reload switches it on or off; and
its memory housekeeping after the first pass (objects out of the cyclic GC, heap trimmed)."""

from __future__ import annotations

import pytest

from controller.config import Config
from controller.daemon import _Schedule


def test_without_host_gc_no_gc_is_ever_due() -> None:
    sched = _Schedule(now=0.0, cfg=Config(gc_interval_s=1.0))
    assert not any(sched.gc_due(t) for t in (0.0, 1.0, 10.0, 1e6))
    assert sched.wake_at(None) == sched.next_resync


def test_host_gc_is_due_every_interval() -> None:
    sched = _Schedule(now=0.0, cfg=Config(host_gc=True, gc_interval_s=10.0))
    assert [t for t in (5.0, 10.0, 15.0, 20.0) if sched.gc_due(t)] == [10.0, 20.0]


def test_a_reload_switches_host_gc_on_and_off() -> None:
    sched = _Schedule(now=0.0, cfg=Config())
    sched.reconfigure(100.0, Config(host_gc=True, gc_interval_s=10.0))
    assert not sched.gc_due(105.0)
    assert sched.gc_due(110.0)
    sched.reconfigure(111.0, Config(host_gc=False, gc_interval_s=0.0))
    assert not any(sched.gc_due(t) for t in (111.0, 120.0, 1e6))


def test_a_reload_that_keeps_the_gc_settings_keeps_the_timer() -> None:
    on = Config(host_gc=True, gc_interval_s=10.0)
    sched = _Schedule(now=0.0, cfg=on)
    sched.reconfigure(9.0, Config(host_gc=True, gc_interval_s=10.0, resync_interval_s=5.0))
    assert sched.gc_due(10.0)


def test_startup_objects_leave_the_cyclic_gc_and_are_still_reachable() -> None:
    import gc

    from controller.daemon import _freeze_startup_objects

    kept = {"spec": list(range(3))}
    try:
        _freeze_startup_objects()
        assert gc.get_freeze_count() > 0
        assert kept["spec"] == [0, 1, 2]
    finally:
        gc.unfreeze()


def test_the_heap_is_trimmed_where_libc_can_and_skipped_where_it_cannot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ctypes

    from controller import daemon

    calls: list[int] = []

    class Glibc:
        def malloc_trim(self, pad: int) -> int:
            calls.append(pad)
            return 1

    class Musl:  # no malloc_trim symbol: ctypes raises AttributeError
        pass

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Glibc())
    daemon._trim_heap()
    assert calls == [0]
    monkeypatch.setattr(ctypes, "CDLL", lambda name: Musl())
    daemon._trim_heap()  # nothing to give back this way, and no error
    assert calls == [0]


def test_trimming_the_real_heap_gives_back_freed_memory() -> None:
    """Where glibc is the C library: after freeing many large blocks, RSS goes down."""
    import ctypes

    from controller import daemon

    try:
        ctypes.CDLL(None).malloc_trim  # noqa: B018 - probing for the symbol
    except AttributeError:
        pytest.skip("the C library has no malloc_trim (not glibc)")

    def rss_kb() -> int:
        with open("/proc/self/status", encoding="ascii") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))

    # ~60 MB from malloc's heap, every page written (calloc'd fresh pages would not be
    # resident, and their freeing would show nothing).
    blocks = [bytearray(b"\1") * 100_000 for _ in range(600)]
    keep = blocks[::50]  # one kept block every 5 MB pins the heap's top
    del blocks
    before = rss_kb()
    daemon._trim_heap()
    assert rss_kb() < before - 20_000
    assert len(keep) == 12
