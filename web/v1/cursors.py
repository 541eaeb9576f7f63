"""Opaque cursors of paged listings: where the next page starts, bound to what is listed.

A cursor holds the id of the listed thing and the last key returned; a client passes it back
unchanged. It is not a secret (every page it leads to is readable with the same key).
"""

from __future__ import annotations

import base64
import binascii
import re

from web.errors import ApiError

_VERSION = "c1"
_FORM = re.compile(r"c1\.([1-9][0-9]{0,17})\.([1-9][0-9]{0,17})")
_ALPHABET = re.compile(r"[A-Za-z0-9_-]{1,64}")
_START_AGAIN = "start again without cursor"


def encode_cursor(listing_id: int, after: int) -> str:
    """The cursor of the page after key `after` of listing `listing_id`."""
    plain = f"{_VERSION}.{listing_id}.{after}".encode("ascii")
    return base64.urlsafe_b64encode(plain).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, listing_id: int) -> int:
    """The key a cursor of listing `listing_id` continues after; 400 saying why otherwise."""
    decoded = _decoded(cursor)
    if decoded is None:
        raise ApiError(400, f"cursor: not a cursor this API gave out; {_START_AGAIN}")
    listed, after = decoded
    if listed != listing_id:
        raise ApiError(
            400,
            f"cursor: it belongs to another listing (was the segment recreated?); {_START_AGAIN}",
        )
    return after


def _decoded(cursor: str) -> tuple[int, int] | None:
    if not _ALPHABET.fullmatch(cursor):
        return None
    try:
        plain = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    matched = _FORM.fullmatch(plain)
    if matched is None:
        return None
    listed, after = int(matched[1]), int(matched[2])
    # Only the one spelling this module writes: no padding, no stray characters.
    return (listed, after) if encode_cursor(listed, after) == cursor else None
