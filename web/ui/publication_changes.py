"""Wanted publication changes: from a form, to a confirm step, to applied (or refused) changes.

Both screens that publish (Published Segments and Segments) work the same way: the person
marks what they want, the server lists the changes for a confirm step, and Confirm posts the
same changes again with `confirm=yes`; each (segment, use) change is then applied in its own
transaction through models.publishing, and a refusal stops only its own change.

How a screen uses it:

- checkboxes carry `publication_value(segment, use)` as their value; `differences(...)` turns
  the boxes checked before and now into `WantedChange`s;
- the confirm step is the `confirm_changes` macro of templates/_confirm_changes.html, whose
  hidden `change` fields hold `WantedChange.field_value`;
- the confirmed POST reads them back with `parse_changes(form)` and calls `apply_changes(...)`,
  whose `ChangeOutcome`s the page shows in place (`outcomes_by_segment` groups them per row).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData

from models.db import transaction
from models.errors import InputError, SegsyncError
from models.publishing import publish, unpublish
from models.publishing_tables import LEGACY_USES, USES

# The form field that carries each change on the confirm step's form.
CHANGE_FIELD = "change"
# How the screens name each use (column headings, change descriptions).
USE_LABELS = {
    "enrichment": "Segment name enrichment",
    "account_details": "Account details",
    "gtm": "GTM",
    "api": "API",
    "sales_intelligence": "Sales Intelligence (legacy)",
}
# The uses a person may newly publish to (legacy ones can only be unpublished).
PUBLISHABLE_USES = tuple(use for use in USES if use not in LEGACY_USES)
_PUBLISH = "publish"
_UNPUBLISH = "unpublish"


def publication_value(segment: str, use: str) -> str:
    """The value a form gives "segment published to use": `use:segment` (a use has no colon)."""
    return f"{use}:{segment}"


def parse_publication_value(value: str) -> tuple[str, str]:
    """(segment, use) from `publication_value`'s text; InputError naming the value if malformed."""
    use, colon, segment = value.partition(":")
    if not colon or use not in USES or not segment.strip():
        raise InputError(f"form value {value!r} is not a use and a segment name (use:segment)")
    return segment, use


@dataclass(frozen=True)
class WantedChange:
    """Publish (`publish=True`) or unpublish `segment` for one `use`."""

    segment: str
    use: str
    publish: bool

    @property
    def field_value(self) -> str:
        """This change as the confirm form carries it: `publish|unpublish:use:segment`."""
        action = _PUBLISH if self.publish else _UNPUBLISH
        return f"{action}:{publication_value(self.segment, self.use)}"

    @property
    def use_label(self) -> str:
        """How the screens name this change's use."""
        return USE_LABELS.get(self.use, self.use)

    def describe(self) -> str:
        """One line for the confirm step, e.g. "Publish 'Key accounts' to GTM"."""
        if self.publish:
            return f"Publish {self.segment!r} to {self.use_label}"
        return f"Unpublish {self.segment!r} from {self.use_label}"


def parse_change(value: str) -> WantedChange:
    """The change a `WantedChange.field_value` text names; InputError naming it if malformed."""
    action, colon, rest = value.partition(":")
    if not colon or action not in (_PUBLISH, _UNPUBLISH):
        raise InputError(f"form value {value!r} is not a publish or unpublish change")
    segment, use = parse_publication_value(rest)
    return WantedChange(segment, use, action == _PUBLISH)


def parse_changes(form: FormData) -> list[WantedChange]:
    """The changes in a posted form's `change` fields, without repeats, in the order sent."""
    changes: list[WantedChange] = []
    for value in form.getlist(CHANGE_FIELD):
        if not isinstance(value, str):
            raise InputError(f"form field {CHANGE_FIELD!r} must be text, not a file")
        change = parse_change(value)
        if change not in changes:
            changes.append(change)
    return changes


def differences(
    segments: Iterable[str], before: Iterable[str], after: Iterable[str]
) -> list[WantedChange]:
    """The changes from `before` to `after` (sets of `publication_value`s) for `segments`.

    Only the segments named count (a screen passes the rows it showed); per segment the
    changes come in the order of USES.
    """
    was = set(before)
    now = set(after)
    changes: list[WantedChange] = []
    for segment in dict.fromkeys(segments):
        for use in USES:
            value = publication_value(segment, use)
            if (value in was) != (value in now):
                changes.append(WantedChange(segment, use, value in now))
    return changes


@dataclass(frozen=True)
class ChangeOutcome:
    """What became of one wanted change: applied (`refused` False) or refused, and why."""

    change: WantedChange
    refused: bool
    message: str


def apply_changes(
    sessions: sessionmaker[Session], changes: Sequence[WantedChange]
) -> list[ChangeOutcome]:
    """Apply each change in its own transaction; a refusal is recorded and the rest go on.

    Unpublishing comes first, so one confirm can make room under the 200-segment limit and use
    it. The outcomes come back in the order the changes were given.
    """
    ordered = sorted(range(len(changes)), key=lambda index: changes[index].publish)
    outcomes: dict[int, ChangeOutcome] = {}
    for index in ordered:
        outcomes[index] = _apply(sessions, changes[index])
    return [outcomes[index] for index in range(len(changes))]


def _apply(sessions: sessionmaker[Session], change: WantedChange) -> ChangeOutcome:
    try:
        with transaction(sessions) as session:
            if change.publish:
                done = bool(publish(session, change.segment, [change.use]).changed)
            else:
                done = bool(unpublish(session, change.segment, [change.use]).changed)
    except SegsyncError as refused:  # RuleError, InputError, NotFoundError: one line each
        return ChangeOutcome(change, True, str(refused))
    return ChangeOutcome(change, False, _applied_message(change, done))


def _applied_message(change: WantedChange, done: bool) -> str:
    label = change.use_label
    if change.publish:
        return f"published to {label}" if done else f"was already published to {label}"
    return f"unpublished from {label}" if done else f"was not published to {label}"


def outcomes_by_segment(outcomes: Iterable[ChangeOutcome]) -> dict[str, list[ChangeOutcome]]:
    """The outcomes grouped by segment name, for showing each in its row."""
    grouped: dict[str, list[ChangeOutcome]] = {}
    for outcome in outcomes:
        grouped.setdefault(outcome.change.segment, []).append(outcome)
    return grouped


def outcome_summary(outcomes: Sequence[ChangeOutcome]) -> str:
    """One line: how many changes were applied and how many refused."""
    refused = sum(1 for outcome in outcomes if outcome.refused)
    applied = len(outcomes) - refused
    text = f"Applied {applied} change{'' if applied == 1 else 's'}"
    if refused:
        text += f"; {refused} refused (the reason is shown with each)"
    return text + "."
