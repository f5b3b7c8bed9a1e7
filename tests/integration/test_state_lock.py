"""The state dir's single-instance lock (`fsio.instance_lock`), in-process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.errors import StateLocked
from controller.fsio import INSTANCE_LOCK_FILE, instance_lock


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with instance_lock(state):
        assert (state / INSTANCE_LOCK_FILE).read_text().strip() == str(os.getpid())
        with pytest.raises(StateLocked) as caught, instance_lock(state):
            pass
        assert f"pid {os.getpid()}" in str(caught.value)
        assert caught.value.exit_code == 78
    with instance_lock(state):  # released on exit
        pass


def test_errors_inside_the_block_are_not_taken_for_lock_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), instance_lock(tmp_path):
        (tmp_path / "missing").read_text()


def test_an_unusable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateLocked, match="cannot lock state_dir"), instance_lock(blocker / "x"):
        pass
