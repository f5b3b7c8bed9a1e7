"""Config: flags > RKTCTL_* env > file > defaults, and one error listing every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import Config, load_config, parse_config
from controller.errors import ConfigError


def test_defaults_need_no_file_and_no_env() -> None:
    assert parse_config({}, {}) == Config()


@pytest.mark.parametrize(
    ("file", "env", "flags", "expected"),
    [
        pytest.param({"rkt": "/file/rkt"}, {}, {}, "/file/rkt", id="file-over-default"),
        pytest.param(
            {"rkt": "/file/rkt"}, {"RKTCTL_RKT": "/env/rkt"}, {}, "/env/rkt", id="env-over-file"
        ),
        pytest.param(
            {"rkt": "/file/rkt"},
            {"RKTCTL_RKT": "/env/rkt"},
            {"rkt": "/flag/rkt"},
            "/flag/rkt",
            id="flag-over-env",
        ),
        pytest.param(
            {},
            {"RKTCTL_RKT": "/env/rkt"},
            {"rkt": None},
            "/env/rkt",
            id="unset-flag-does-not-override",
        ),
    ],
)
def test_precedence(file: dict, env: dict, flags: dict, expected: str) -> None:
    assert parse_config(file, env, flags).rkt == expected


def test_env_values_are_typed_like_file_values() -> None:
    cfg = parse_config(
        {},
        {
            "RKTCTL_RESYNC_INTERVAL_S": "5",
            "RKTCTL_ALLOW_EMPTY": "yes",
            "RKTCTL_INSECURE_DEFAULT": "image, tls",
            "RKTCTL_META": "role=db,rack=r1",
            "RKTCTL_CONFIG": "/ignored/here",
            "OTHER": "x",
        },
    )
    assert cfg.resync_interval_s == 5.0
    assert cfg.allow_empty is True
    assert cfg.insecure_default == ("image", "tls")
    assert dict(cfg.meta) == {"role": "db", "rack": "r1"}


def test_every_problem_is_reported_at_once_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {"resync_interval": 5, "launcher": "docker", "backoff_cap_s": "soon"},
            {},
            source="/etc/rktctl/config.toml",
        )
    problems = caught.value.problems
    assert any(
        "'resync_interval'" in p and "did you mean 'resync_interval_s'" in p for p in problems
    )
    assert any(p.startswith("backoff_cap_s:") for p in problems)
    assert caught.value.exit_code == 78
    assert str(caught.value).startswith("/etc/rktctl/config.toml: ")


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"launcher": "docker"}, "launcher: 'docker' is not one of detached, systemd-run"),
        ({"insecure_default": ["run-all"]}, "insecure_default: unknown option(s) run-all"),
        ({"max_delete_fraction": 0}, "max_delete_fraction: must be in (0, 1]"),
        ({"port_range": [30000, 20000]}, "port_range: [30000, 20000] is not a range"),
        ({"resync_interval_s": 0}, "resync_interval_s: must be greater than 0"),
        ({"allow_empty": "maybe"}, "allow_empty: expected true or false"),
        ({"max_parallel": True}, "max_parallel: expected an integer"),
        ({"meta": ["role"]}, "meta: expected a table of strings"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_bad_values_are_named(settings: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(settings, {})
    assert any(fragment in p for p in caught.value.problems), caught.value.problems


def test_rkt_global_args_come_from_config() -> None:
    cfg = parse_config({"rkt_dir": "/d", "rkt_local_config": "/l", "rkt_system_config": "/s"}, {})
    assert cfg.rkt_global_args() == ("--dir=/d", "--local-config=/l", "--system-config=/s")
    assert Config().rkt_global_args() == ()


def test_load_config_reads_toml_and_env(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('desired_dir = "/srv/desired"\n[meta]\nrole = "db"\n')
    cfg = load_config(str(path), environ={"RKTCTL_STATUS_DIR": "/srv/status"})
    assert (cfg.desired_dir, cfg.status_dir, dict(cfg.meta)) == (
        "/srv/desired",
        "/srv/status",
        {"role": "db"},
    )


def test_load_config_from_rktctl_config_env(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("resync_interval_s = 7\n")
    assert load_config(environ={"RKTCTL_CONFIG": str(path)}).resync_interval_s == 7.0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "config file not found"),
        ("desired_dir = \n", "invalid TOML"),
    ],
    ids=["missing-explicit-file", "bad-toml"],
)
def test_load_config_errors(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "config.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), environ={})
    assert fragment in str(caught.value)


def test_a_missing_default_file_means_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("controller.config.DEFAULT_CONFIG_PATH", "/nonexistent/rktctl.toml")
    assert load_config(environ={}) == Config()


def test_the_schema_and_the_config_accept_the_same_insecure_options() -> None:
    from controller.model import RKT_INSECURE_OPTIONS
    from controller.resources import load_schema

    schema = load_schema("task.schema.json")
    enums = {tuple(node["enum"]) for node in _walk(schema) if "enum" in node}
    assert tuple(RKT_INSECURE_OPTIONS) in enums


def _walk(node: object) -> list[dict]:
    if isinstance(node, dict):
        return [node, *(n for v in node.values() for n in _walk(v))]
    if isinstance(node, list):
        return [n for v in node for n in _walk(v)]
    return []
