"""config.config_source: which file the config came from, as status documents name it."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller import config
from controller.config import config_source


def test_the_flag_wins_and_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"RKTCTL_CONFIG": "/etc/other.toml"}
    assert config_source("c.toml", environ=env) == str(tmp_path / "c.toml")


def test_rktctl_config_names_the_file_without_a_flag() -> None:
    assert config_source(None, environ={"RKTCTL_CONFIG": "/srv/c.toml"}) == "/srv/c.toml"


def test_the_default_file_counts_only_when_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / "config.toml"
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", str(default))
    assert config_source(None, environ={}) is None
    assert config_source(None, environ={"RKTCTL_CONFIG": ""}) is None
    default.write_text("")
    assert config_source(None, environ={}) == str(default)
