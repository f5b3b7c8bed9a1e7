"""Config of cleaning up: the host-wide `rkt gc` is an opt-in, pod logs are bounded."""

from __future__ import annotations

import pytest

from controller.config import Config, parse_config
from controller.errors import ConfigError


def test_host_gc_is_off_by_default_and_the_gc_knobs_alone_do_not_turn_it_on() -> None:
    """The issue's repro set only the interval and the grace period: that must not gc."""
    cfg = parse_config({}, {"RKTCTL_GC_INTERVAL_S": "3", "RKTCTL_GC_GRACE_PERIOD_S": "0"})
    assert Config().host_gc is False
    assert cfg.host_gc is False
    assert (cfg.gc_interval_s, cfg.gc_grace_period_s) == (3.0, 0.0)


def test_host_gc_comes_from_file_and_env() -> None:
    assert parse_config({"host_gc": True}, {}).host_gc is True
    assert parse_config({}, {"RKTCTL_HOST_GC": "yes"}).host_gc is True


def test_host_gc_needs_a_gc_interval() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"host_gc": True, "gc_interval_s": 0}, {})
    (problem,) = caught.value.problems
    assert problem.startswith("gc_interval_s: must be greater than 0 when host_gc is on")
    assert "host_gc = false" in problem


def test_pod_log_limits_come_from_file_and_env() -> None:
    cfg = parse_config({"pod_logs_keep": 5}, {"RKTCTL_POD_LOG_MAX_BYTES": "65536"})
    assert (cfg.pod_logs_keep, cfg.pod_log_max_bytes) == (5, 65536)
    assert parse_config({"pod_logs_keep": 0}, {}).pod_logs_keep == 0
    assert (Config().pod_logs_keep, Config().pod_log_max_bytes) == (3, 1048576)


def test_every_cleanup_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {"host_gc": True, "gc_interval_s": 0, "pod_logs_keep": -1, "pod_log_max_bytes": 100},
            {},
        )
    assert sorted(p.split(":")[0] for p in caught.value.problems) == [
        "gc_interval_s",
        "pod_log_max_bytes",
        "pod_logs_keep",
    ]
    text = "\n".join(caught.value.problems)
    assert "pod_logs_keep: must not be negative" in text
    assert "pod_log_max_bytes: must be at least 4096" in text


def test_a_zero_gc_interval_is_fine_while_host_gc_is_off() -> None:
    assert parse_config({"gc_interval_s": 0}, {}).gc_interval_s == 0


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"host_gc": "sometimes"}, "host_gc: expected true or false"),
        ({"pod_logs_keep": "three"}, "pod_logs_keep: expected an integer"),
        ({"pod_log_max_bytes": True}, "pod_log_max_bytes: expected an integer"),
    ],
    ids=["host_gc-word", "keep-word", "max-bytes-bool"],
)
def test_bad_cleanup_values_are_named(settings: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(settings, {})
    assert any(fragment in p for p in caught.value.problems), caught.value.problems
