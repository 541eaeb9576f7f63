"""Keep a worker alive when its Redis broker goes away while a task runs (kombu 5.7).

When the broker connection drops while the worker's consumer waits on BRPOP and a task is still
unacknowledged (task_acks_late), Celery's consumer first collects the connection (the channel's
close fails on the dead socket, then the transport is detached) and then closes it again. That
second close tries to hand the unacknowledged messages back through a channel whose transport no
longer knows the broker, and kombu raises AttributeError, which Celery takes as unrecoverable:
the worker exits. Raised as the connection error it is, Celery ignores it, reconnects when Redis
is back and goes on. Nothing is lost: the run's work is in the database, and the sweeper sends
again what a Redis that kept nothing forgot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from kombu.transport import redis as kombu_redis

_connection_params: Callable[..., Any] = kombu_redis.Channel._connparams


def _params_of_attached_transport(self: Any, asynchronous: bool = False) -> Any:
    """The channel's Redis connection parameters; a connection error once the transport that
    held them was detached (instead of AttributeError)."""
    if self.connection.client is None:
        raise redis.ConnectionError("the broker connection was closed")
    return _connection_params(self, asynchronous=asynchronous)


def survive_broker_loss() -> None:
    """Make a Redis channel closed after its transport was detached fail as a connection error."""
    kombu_redis.Channel._connparams = _params_of_attached_transport  # type: ignore[method-assign]
