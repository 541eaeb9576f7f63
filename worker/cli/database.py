"""The database a CLI command works on: bad settings in the environment end the command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.database import Database as _Database

if TYPE_CHECKING:
    from worker.settings import Settings


class Database(_Database):
    """The database the CLI works on, opened on first use."""

    def read_settings(self) -> Settings:
        """The environment's settings; a bad one is refused in one line naming the variable."""
        from pydantic import ValidationError
        from pydantic_settings import SettingsError

        from worker.cli.output import fail

        try:
            return super().read_settings()
        except SettingsError as error:
            refusal = str(error)
        except ValidationError as error:
            # The variable and the rule, never the value (it may be a secret).
            first = error.errors()[0]
            name = "_".join(str(part) for part in first["loc"]).upper()
            refusal = f"SEGSYNC_{name}: {first['msg']}"
        fail(refusal)
        raise AssertionError("fail() exits")
