"""observe.parse_data_dir: rkt's data dir from what `rkt config` printed (rkt 1.30.0)."""

from __future__ import annotations

import json

import pytest

from controller.errors import RktOutputError
from controller.observe import RKT_DEFAULT_DATA_DIR, parse_data_dir
from controller.rktargs import ArgvOptions, config_argv


def _config(data: str) -> bytes:
    """`rkt config` as rkt 1.30.0 prints it (tab-indented, one merged paths entry)."""
    doc = {
        "stage0": [
            {"rktVersion": "v1", "rktKind": "paths", "data": data, "stage1-images": ""},
            {"rktVersion": "v1", "rktKind": "stage1", "name": "", "version": "", "location": ""},
        ]
    }
    return json.dumps(doc, indent="\t").encode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param("", RKT_DEFAULT_DATA_DIR, id="unset-means-rkts-default"),
        pytest.param("/srv/rkt", "/srv/rkt", id="paths.d-data"),
    ],
)
def test_the_data_dir_comes_from_the_paths_entry(data: str, expected: str) -> None:
    assert parse_data_dir(_config(data)) == expected


def test_no_paths_entry_means_rkts_default() -> None:
    assert parse_data_dir(b'{"stage0": []}') == RKT_DEFAULT_DATA_DIR


@pytest.mark.parametrize("stdout", [b"config: not implemented", b"[]", b'{"stage0": {}}'])
def test_other_output_is_an_output_error(stdout: bytes) -> None:
    with pytest.raises(RktOutputError, match="rkt config"):
        parse_data_dir(stdout)


def test_config_argv_carries_the_global_flags() -> None:
    opts = ArgvOptions(rkt="/usr/bin/rkt", global_args=("--local-config=/etc/rkt",))
    assert config_argv(opts) == ("/usr/bin/rkt", "--local-config=/etc/rkt", "config")
