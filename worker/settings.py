"""segsync's settings, read from the environment (prefix SEGSYNC_), with working defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    SettingsError,
)


def default_state_dir() -> Path:
    """$XDG_STATE_HOME/segsync, or ~/.local/state/segsync: never the current folder."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "segsync"


# Requests one API key may make in any sliding window: CALLS/SECONDS.
DEFAULT_API_RATE_LIMIT = "600/60"


def parse_rate(text: str) -> tuple[int, float]:
    """`CALLS/SECONDS` (e.g. 600/60) as (calls, seconds); ValueError saying the form otherwise."""
    calls, slash, seconds = text.strip().partition("/")
    try:
        rate = (int(calls), float(seconds))
    except ValueError:
        rate = (0, 0.0)
    # `0 < seconds < inf` also refuses nan, which float() accepts.
    if not slash or rate[0] < 1 or not 0 < rate[1] < float("inf"):
        raise ValueError(
            f"must be CALLS/SECONDS with CALLS >= 1 and SECONDS > 0, such as "
            f"{DEFAULT_API_RATE_LIMIT}, not {text!r}"
        )
    return rate


# Where Docker (compose and swarm secrets) and many Kubernetes set-ups mount secret files.
CONTAINER_SECRETS_DIR = Path("/run/secrets")


def secrets_dir() -> Path | None:
    """The folder of secret files: SEGSYNC_SECRETS_DIR, else /run/secrets when it exists.

    Each file holds one setting and is named like its variable (segsync_secret_key or
    SEGSYNC_SECRET_KEY); a variable set in the environment wins over its file.
    """
    given = os.environ.get("SEGSYNC_SECRETS_DIR")
    if given:
        folder = Path(given)
        if not folder.is_dir():
            # Named on purpose: a mistyped folder would otherwise start segsync without its key.
            raise SettingsError(f"SEGSYNC_SECRETS_DIR={given} is not a folder")
        return folder
    return CONTAINER_SECRETS_DIR if CONTAINER_SECRETS_DIR.is_dir() else None


class Settings(BaseSettings):
    """Every setting segsync reads; each is the environment variable SEGSYNC_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="SEGSYNC_", extra="ignore")

    # A SQLite file in the current folder; production uses postgresql+psycopg://user@host/db.
    database_url: str = "sqlite:///segsync.db"
    # The database user's password, kept out of the URL so it can come from a secret file; it
    # replaces the password of a URL that names a host (a SQLite file has none).
    database_password: SecretStr | None = None
    # Fernet key(s) that encrypt connection secrets at rest; comma-separated to rotate keys.
    secret_key: SecretStr | None = None
    # Celery broker (Redis in production). None: only foreground `segsync sync` works.
    broker_url: str | None = None
    # Where rate limits shared by all workers live; defaults to the broker when it is Redis.
    redis_url: str | None = None
    # user:password that Flower asks for; `segsync flower` refuses to start without it.
    flower_basic_auth: SecretStr | None = None
    # How long a worker holds a batch before the sweeper may give it to another worker.
    batch_lease_seconds: float = 600.0
    # A run or batch whose task was sent longer ago than this is sent again by the sweeper.
    stale_after_seconds: float = 1800.0
    # How often beat fires dispatch_due and sweep.
    beat_interval_seconds: float = 60.0
    # The longest a worker may spend planning one run (reading every record, diffing): past it
    # the run fails saying so. A run whose planning worker died is planned again (at most
    # MAX_PLAN_ATTEMPTS times) once this, plus a margin, has passed. It must stay under the
    # broker's visibility timeout (celeryconfig.VISIBILITY_TIMEOUT, 3,600 s) less that margin.
    plan_time_limit_seconds: float = Field(default=3000.0, gt=0, le=3300)

    # The longest a worker may spend writing one batch (a bulk job included): past it the run
    # fails saying so. Like planning, it stays under the broker's visibility timeout.
    batch_time_limit_seconds: float = Field(default=900.0, gt=0, le=3300)
    # An incremental read asks for the records changed since the last read began, less this
    # much: a record the vendor stamps a little before it becomes visible (a long commit), or a
    # vendor clock a little behind this one, is read twice rather than missed.
    read_overlap_seconds: float = Field(default=300.0, ge=0, le=86_400)
    # Where segsync's programs keep their own state files (beat's schedule); created on use.
    state_dir: Path = Field(default_factory=default_state_dir)
    # How segsync's programs log: human-readable text, or one JSON object a line (worker/logs.py).
    log_format: Literal["text", "json"] = "text"
    # Requests one key may make to `segsync api`, as CALLS/SECONDS: counted together by every
    # server process through shared_redis_url(), or by each process alone when there is none.
    api_rate_limit: str = DEFAULT_API_RATE_LIMIT

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the secret files of secrets_dir()."""
        secret_files = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir())
        return init_settings, env_settings, dotenv_settings, secret_files

    @field_validator("api_rate_limit")
    @classmethod
    def _api_rate_limit_is_a_rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    def api_rate(self) -> tuple[int, float]:
        """SEGSYNC_API_RATE_LIMIT as (calls, seconds)."""
        return parse_rate(self.api_rate_limit)

    @model_validator(mode="after")
    def _password_into_database_url(self) -> Settings:
        if self.database_password is not None:
            # Imported here: SQLAlchemy is slow to import and `segsync --help` reads settings.
            from sqlalchemy import make_url

            url = make_url(self.database_url)
            if url.host:
                password = self.database_password.get_secret_value()
                self.database_url = url.set(password=password).render_as_string(False)
        return self

    def shared_redis_url(self) -> str | None:
        """The Redis that holds shared rate limits, if any (else limits are per process)."""
        if self.redis_url:
            return self.redis_url
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return None

    def secret_key_text(self) -> str | None:
        """The secret key's text, for the one place that needs it (models.connections)."""
        return self.secret_key.get_secret_value() if self.secret_key else None
