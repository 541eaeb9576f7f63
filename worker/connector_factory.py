"""Builds a connector from a stored connection: settings and secrets become the adapter's config."""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.base import Connector
from connectors.errors import ConnectorError
from connectors.ratelimit import RateLimit, RateLimiter, vendor_limits
from connectors.systems import SYSTEMS, VENDORS
from models.errors import InputError

if TYPE_CHECKING:
    from models.connections import Connection
    from worker.database import Database

# How long one call may wait for the shared rate limit and a concurrent-call place before its
# batch is retried later.
RATE_LIMIT_WAIT = 30.0
# How long a concurrent-call place stays taken by a call whose worker died holding it; longer
# than any adapter's request timeout, so a slow call keeps its place to the end.
CALL_SLOT_LEASE = 300.0
# The vendor counts a call when it arrives, the limiter when it leaves: a call that travels faster
# than the one `calls` before it (which paid for a TLS handshake, say) would land inside the
# vendor's window. Counting over a slightly longer window absorbs that (about 5% of throughput).
RATE_WINDOW_MARGIN = 0.5


def _adapter(system: str) -> tuple[type[Connector], type[Any]]:
    vendor = VENDORS.get(system)
    if vendor is None:
        raise InputError(f"unknown system {system!r} (systems: {', '.join(SYSTEMS)})")
    module = importlib.import_module(vendor.module)
    adapter: type[Connector] = getattr(module, vendor.adapter)
    return adapter, getattr(module, vendor.config)


@dataclasses.dataclass(frozen=True)
class ConfigKeys:
    """The keys a system's connection takes."""

    settings: tuple[str, ...]
    secrets: tuple[str, ...]


def system_config(system: str) -> type[Any]:
    """The config dataclass of `system`, or InputError naming the systems there are."""
    return _adapter(system)[1]


def config_keys(system: str) -> ConfigKeys:
    """Which keys of `system` are plain settings and which are secrets."""
    fields = dataclasses.fields(system_config(system))
    return ConfigKeys(
        settings=tuple(f.name for f in fields if f.repr),
        secrets=tuple(f.name for f in fields if not f.repr),
    )


def check_keys(system: str, settings: Mapping[str, str], secrets: Mapping[str, str]) -> None:
    """Refuse unknown keys, and secrets given as settings (they would be stored in the clear)."""
    keys = config_keys(system)
    for key in settings:
        if key in keys.secrets:
            raise InputError(f"{key} is a secret of {system}: give it with --secret, not --set")
        if key not in keys.settings:
            raise InputError(
                f"{system} has no setting {key!r} (settings: {', '.join(keys.settings)})"
            )
    for key in secrets:
        if key not in keys.secrets:
            raise InputError(f"{system} has no secret {key!r} (secrets: {', '.join(keys.secrets)})")


def build_config(system: str, values: Mapping[str, str]) -> Any:
    """The adapter config from text values, converted to each field's declared type."""
    config = system_config(system)
    hints = typing.get_type_hints(config)
    converted = {key: _convert(system, key, text, hints[key]) for key, text in values.items()}
    try:
        return config(**converted)
    except TypeError as exc:
        missing = [
            f.name
            for f in dataclasses.fields(config)
            if f.name not in converted
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        detail = f"missing {', '.join(missing)}" if missing else str(exc)
        raise InputError(f"{system} connection is incomplete: {detail}") from None
    except (ValueError, ConnectorError) as exc:
        raise InputError(f"{system} connection: {exc}") from None


def _convert(system: str, key: str, text: str, hint: Any) -> Any:
    options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    target = options[0]
    try:
        if target is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError(text)
            return lowered in ("true", "yes", "1")
        if target in (int, float, Path):
            return target(text)
    except ValueError:
        raise InputError(f"{system} setting {key}: {text!r} is not a {target.__name__}") from None
    return text


def build_connector(
    system: str, settings: Mapping[str, str], secrets: Mapping[str, str]
) -> Connector:
    """A ready connector for a stored connection."""
    adapter = _adapter(system)[0]
    config = build_config(system, {**settings, **secrets})
    return adapter(config)  # type: ignore[call-arg]


def apply_rate_limits(connector: Connector, system: str, key: str, limiter: RateLimiter) -> None:
    """Hold every call of `connector` to the vendor's short-window rate and concurrent-call cap,
    shared through `limiter`.

    `key` names the vendor account (one limit per connection, whichever worker calls).
    """
    limits = vendor_limits(system)
    if limits.rate is None and limits.max_concurrent is None:
        return
    if limits.rate is not None:
        guarded = RateLimit(limits.rate.calls, limits.rate.per_seconds + RATE_WINDOW_MARGIN)
        limits = dataclasses.replace(limits, rate=guarded)
    connector.set_call_slot(
        lambda: limiter.slot(key, limits, timeout=RATE_LIMIT_WAIT, lease=CALL_SLOT_LEASE)
    )


def connector_of(
    connection: Connection, secret_key: str | None, limiter: RateLimiter, *, where: str = ""
) -> Connector:
    """A ready connector for a stored connection (secrets decrypted only in memory), its calls
    held to the vendor's rate under one key per connection, whichever program makes them.

    InputError, in one line, when it cannot be built: a secret missing from the environment, a
    key that cannot decrypt, settings that do not fit. `where` (e.g. "on worker NAME") prefixes
    it, since the programs that build connectors may not share one environment.
    """
    from models.connections import resolve_secrets

    try:
        secrets = resolve_secrets(connection, secret_key)
    except InputError as exc:
        raise InputError(f"{where}: {exc}" if where else str(exc)) from None
    connector = build_connector(connection.system, dict(connection.settings), secrets)
    key = f"{connection.system}:{connection.id}"
    apply_rate_limits(connector, connection.system, key, limiter)
    return connector


def connector_for(database: Database, connection_name: str) -> Connector:
    """`connector_of` the connection called `connection_name`, for a command of this shell: its
    rate is shared with the workers when Redis is configured."""
    from connectors.ratelimit import rate_limiter
    from models.connections import find_connection

    limiter = rate_limiter(database.settings.shared_redis_url())
    with database.transaction() as session:
        connection = find_connection(session, connection_name)
        return connector_of(connection, database.settings.secret_key_text(), limiter)
