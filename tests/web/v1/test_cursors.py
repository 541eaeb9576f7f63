"""The opaque cursors of paged listings: each decodes only to what it was made from."""

from __future__ import annotations

import pytest

from web.errors import ApiError
from web.v1.cursors import decode_cursor, encode_cursor


def test_a_cursor_gives_back_its_key_for_its_own_listing_only() -> None:
    cursor = encode_cursor(7, 123456)

    assert decode_cursor(cursor, 7) == 123456
    with pytest.raises(ApiError, match="belongs to another listing") as raised:
        decode_cursor(cursor, 8)
    assert raised.value.status == 400


@pytest.mark.parametrize(
    "written",
    ["", "abc", "é", "x" * 65, "YzEuMC4x", "YzEuMS4w", "YzEuMS4x==", "YzEuMS4x\n", "c1.1.1"],
)
def test_anything_else_is_not_a_cursor(written: str) -> None:
    # YzEuMC4x and YzEuMS4w spell c1.0.1 and c1.1.0: ids start at 1.
    with pytest.raises(ApiError, match="not a cursor this API gave out") as raised:
        decode_cursor(written, 1)
    assert raised.value.status == 400
