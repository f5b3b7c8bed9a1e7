"""The trust policy's settings (issue 11): strict_modes and trusted_uids."""

from __future__ import annotations

import pytest

from controller.config import Config, parse_config
from controller.errors import ConfigError


def test_the_policy_is_strict_by_default_and_trusts_no_extra_uid() -> None:
    assert (Config().strict_modes, Config().trusted_uids) == (True, ())


@pytest.mark.parametrize(
    ("file", "env", "want"),
    [
        pytest.param({"trusted_uids": [998, 999]}, {}, (998, 999), id="toml-list"),
        pytest.param({"trusted_uids": 998}, {}, (998,), id="toml-one"),
        pytest.param({}, {"RKTCTL_TRUSTED_UIDS": "998, 999"}, (998, 999), id="env"),
    ],
)
def test_trusted_uids_are_read_from_file_and_env(
    file: dict[str, object], env: dict[str, str], want: tuple[int, ...]
) -> None:
    assert parse_config(file, env).trusted_uids == want


@pytest.mark.parametrize("bad", [["x"], [True], [-1], "root"])
def test_bad_trusted_uids_are_refused_with_the_key(bad: object) -> None:
    with pytest.raises(ConfigError, match="trusted_uids"):
        parse_config({"trusted_uids": bad}, {})


def test_strict_modes_can_be_turned_off_from_the_environment() -> None:
    assert parse_config({}, {"RKTCTL_STRICT_MODES": "false"}).strict_modes is False
