"""Settings from secret files (SEGSYNC_SECRETS_DIR, /run/secrets) and the database password."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydantic_settings import SettingsError
from sqlalchemy import make_url

from tests.worker.cli.test_main import Cli
from worker import settings as settings_module
from worker.settings import Settings, secrets_dir


@pytest.fixture(autouse=True)
def no_outside_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the caller's SEGSYNC_ variables nor a real /run/secrets reach these tests."""
    for name in (
        "SEGSYNC_SECRETS_DIR",
        "SEGSYNC_SECRET_KEY",
        "SEGSYNC_FLOWER_BASIC_AUTH",
        "SEGSYNC_DATABASE_URL",
        "SEGSYNC_DATABASE_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(settings_module, "CONTAINER_SECRETS_DIR", tmp_path / "no-such-folder")


def secret_files(folder: Path, **files: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_each_setting_is_read_from_its_file_in_segsync_secrets_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = secret_files(
        tmp_path / "secrets",
        # Docker's lower-case secret names and the variable's own spelling both work; the
        # newline an editor or `echo` leaves is not part of the secret.
        segsync_secret_key="key-from-file\n",
        SEGSYNC_FLOWER_BASIC_AUTH="ops:pass word\n",
    )
    monkeypatch.setenv("SEGSYNC_SECRETS_DIR", str(folder))
    settings = Settings()
    assert settings.secret_key_text() == "key-from-file"
    assert settings.flower_basic_auth is not None
    assert settings.flower_basic_auth.get_secret_value() == "ops:pass word"


def test_the_environment_wins_over_a_secret_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = secret_files(tmp_path / "secrets", segsync_secret_key="from-file")
    monkeypatch.setenv("SEGSYNC_SECRETS_DIR", str(folder))
    monkeypatch.setenv("SEGSYNC_SECRET_KEY", "from-environment")
    assert Settings().secret_key_text() == "from-environment"


def test_run_secrets_is_read_when_it_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = secret_files(tmp_path / "run-secrets", segsync_secret_key="mounted")
    monkeypatch.setattr(settings_module, "CONTAINER_SECRETS_DIR", folder)
    assert secrets_dir() == folder
    assert Settings().secret_key_text() == "mounted"


def test_without_a_secrets_folder_nothing_is_read_and_nothing_warns() -> None:
    assert secrets_dir() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Settings().secret_key_text() is None


def test_a_secrets_dir_that_is_not_a_folder_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SEGSYNC_SECRETS_DIR", str(tmp_path / "typo"))
    with pytest.raises(SettingsError, match=r"^SEGSYNC_SECRETS_DIR=.*typo is not a folder$"):
        Settings()


def test_the_database_password_goes_into_the_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    password = "p@ss/w:rd %?#"  # every character that must be escaped in a URL
    folder = secret_files(tmp_path / "secrets", segsync_database_password=password + "\n")
    monkeypatch.setenv("SEGSYNC_SECRETS_DIR", str(folder))
    monkeypatch.setenv("SEGSYNC_DATABASE_URL", "postgresql+psycopg://segsync:old@db:5432/segsync")
    url = make_url(Settings().database_url)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "segsync",
        password,
        "db",
        5432,
        "segsync",
    )


def test_a_sqlite_url_takes_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSYNC_DATABASE_PASSWORD", "unused")
    monkeypatch.setenv("SEGSYNC_DATABASE_URL", "sqlite:///segsync.db")
    assert Settings().database_url == "sqlite:///segsync.db"


def test_the_command_line_refuses_bad_settings_in_one_line(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'segsync.db'}")
    typo = tmp_path / "typo"
    cli.env["SEGSYNC_SECRETS_DIR"] = str(typo)
    assert cli.refused("runs") == f"segsync: SEGSYNC_SECRETS_DIR={typo} is not a folder"
    del cli.env["SEGSYNC_SECRETS_DIR"]
    cli.env["SEGSYNC_PLAN_TIME_LIMIT_SECONDS"] = "9999"
    assert cli.refused("runs") == (
        "segsync: SEGSYNC_PLAN_TIME_LIMIT_SECONDS: Input should be less than or equal to 3300"
    )
