"""segsync's settings, read from the environment (prefix SEGSYNC_), with working defaults."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting segsync reads; each is the environment variable SEGSYNC_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="SEGSYNC_", extra="ignore")

    # A SQLite file in the current folder; production uses postgresql+psycopg://user@host/db.
    database_url: str = "sqlite:///segsync.db"
