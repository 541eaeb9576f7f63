"""segsync's settings, read from the environment (prefix SEGSYNC_), with working defaults."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting segsync reads; each is the environment variable SEGSYNC_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="SEGSYNC_", extra="ignore")

    # A SQLite file in the current folder; production uses postgresql+psycopg://user@host/db.
    database_url: str = "sqlite:///segsync.db"
    # Fernet key(s) that encrypt connection secrets at rest; comma-separated to rotate keys.
    secret_key: SecretStr | None = None

    def secret_key_text(self) -> str | None:
        """The secret key's text, for the one place that needs it (models.connections)."""
        return self.secret_key.get_secret_value() if self.secret_key else None
