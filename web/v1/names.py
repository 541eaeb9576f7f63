"""What a name in a path may hold, for the routes that look one up."""

from __future__ import annotations

# No NUL character: PostgreSQL text cannot hold one, so no stored name has it, and its driver
# refuses such a value outright (a 500 if it got that far); such a name is refused with 422.
NO_NUL = r"^[^\x00]*$"
