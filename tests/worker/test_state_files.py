"""The state folder of the Celery programs: created on use, refused in one line when unusable."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

import celeryconfig
from worker.state_files import StateFolderError, ensure_state_folder


def test_a_missing_state_folder_is_created_with_its_parents(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "segsync"
    assert ensure_state_folder(folder) == folder
    assert folder.is_dir()
    assert ensure_state_folder(folder) == folder  # already there: fine


def test_a_file_where_the_folder_should_be_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "segsync").write_text("a file")
    with pytest.raises(StateFolderError) as refused:
        ensure_state_folder(tmp_path / "segsync")
    assert str(refused.value) == (
        f"cannot create the state folder {tmp_path / 'segsync'} (File exists): "
        "set SEGSYNC_STATE_DIR to a folder segsync may write"
    )


def test_a_folder_segsync_may_not_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tests run as root, for whom no permission bit refuses; the check asks os.access.
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: False if Path(path) == tmp_path else real_access(path, mode),
    )
    with pytest.raises(StateFolderError, match=r"^cannot write in the state folder "):
        ensure_state_folder(tmp_path)


def test_beats_schedule_file_is_in_the_configured_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGSYNC_STATE_DIR", str(tmp_path / "state"))
    try:
        config = importlib.reload(celeryconfig)
        assert config.beat_schedule_filename == str(tmp_path / "state" / "celerybeat-schedule")
        assert config.beat_scheduler == "worker.state_files:StateFolderScheduler"
    finally:
        monkeypatch.delenv("SEGSYNC_STATE_DIR")
        importlib.reload(celeryconfig)
