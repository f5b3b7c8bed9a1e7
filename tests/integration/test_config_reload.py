"""A reload never silently resets the config to defaults (issue 11, item 11).

An empty (truncated, half-written) or vanished config file read on SIGHUP used to give
every setting its default: rkt from PATH, /var/lib/rkt. At startup an empty file still
means the defaults.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import Config, load_config
from controller.errors import ConfigError


@pytest.mark.parametrize("text", ["", "\n\n", "# every line commented out\n# rkt = 'x'\n"])
def test_a_reload_of_a_file_without_settings_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="holds no setting") as caught:
        load_config(str(path), environ={}, reload=True)
    assert caught.value.exit_code == 78
    assert load_config(str(path), environ={}) == Config()  # startup: the defaults


def test_a_reload_of_a_vanished_default_config_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "gone.toml"
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(None, environ={"RKTCTL_CONFIG": str(missing)}, reload=True)


def test_a_reload_of_a_file_with_settings_works(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('rkt = "/opt/rkt"\n')
    assert load_config(str(path), environ={}, reload=True).rkt == "/opt/rkt"
