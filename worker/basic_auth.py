"""HTTP basic authentication against SEGSYNC_FLOWER_BASIC_AUTH, for Flower's gate and the metrics
server alike; it imports no web framework, so `segsync metrics` does not load Flower."""

from __future__ import annotations

import binascii
import hmac
from base64 import b64decode


def accepted_pairs(setting: str) -> list[str]:
    """The `user:password` pairs of a SEGSYNC_FLOWER_BASIC_AUTH value (comma-separated, as
    Flower reads its basic_auth option); anything without a colon is no pair."""
    return [pair for pair in setting.split(",") if ":" in pair]


def presented_credentials(authorization: str) -> bytes | None:
    """The `user:password` of a basic Authorization header's value, if it is one."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def is_authorized(authorization: str, accepted: list[str]) -> bool:
    """Whether an Authorization header's value carries one of the accepted `user:password` pairs."""
    presented = presented_credentials(authorization)
    if presented is None:
        return False
    # Every pair is compared, in constant time, so timing tells nothing about which was close.
    matches = [hmac.compare_digest(presented, pair.encode()) for pair in accepted]
    return any(matches)
