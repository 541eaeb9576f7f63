"""The value rule: order, delimiter, names containing the delimiter, maximum length."""

from __future__ import annotations

import pytest

from models.enrichment import ValueFormat, format_value
from models.errors import InputError


def test_names_sorted_ignoring_case_and_accents_and_joined() -> None:
    formatted = format_value(["beta", "Alpha", "gamma", "Émile", "alpha"], ValueFormat())
    assert formatted.value == "Alpha;alpha;beta;Émile;gamma"
    assert (formatted.names, formatted.dropped) == (5, 0)


def test_order_does_not_depend_on_input_order() -> None:
    names = ["Tier 1", "ICP", "emea", "Accounts - Q3", "ABM"]
    expected = format_value(names, ValueFormat()).value
    assert format_value(list(reversed(names)), ValueFormat()).value == expected
    assert expected == "ABM;Accounts - Q3;emea;ICP;Tier 1"


def test_no_names_gives_the_empty_value() -> None:
    formatted = format_value([], ValueFormat())
    assert formatted.value == ""
    assert formatted.names == 0


def test_a_name_containing_the_delimiter_reads_back_as_one_name() -> None:
    names = ["Tier 1; EMEA", "ICP"]
    formatted = format_value(names, ValueFormat())
    assert formatted.value == "ICP;Tier 1； EMEA"
    assert len(formatted.value.split(";")) == len(names)


@pytest.mark.parametrize("delimiter", [",", "|", " | ", ";;", "ab"])
def test_any_delimiter_splits_back_into_one_entry_per_name(delimiter: str) -> None:
    names = [f"x{delimiter}y", f"{delimiter}lead", f"trail{delimiter}", "plain", "aab;;;b|,"]
    value = format_value(names, ValueFormat(delimiter=delimiter)).value
    assert len(value.split(delimiter)) == len(names)


def test_custom_delimiter() -> None:
    assert format_value(["b", "a"], ValueFormat(delimiter=", ")).value == "a, b"


def test_maximum_length_drops_whole_names_from_the_end() -> None:
    fmt = ValueFormat(max_length=12)
    formatted = format_value(["alpha", "beta", "gamma"], fmt)
    assert formatted.value == "alpha;beta"
    assert (formatted.names, formatted.dropped) == (2, 1)


def test_exact_fit_keeps_every_name() -> None:
    formatted = format_value(["alpha", "beta"], ValueFormat(max_length=10))
    assert formatted.value == "alpha;beta"
    assert formatted.dropped == 0


def test_a_first_name_longer_than_the_field_gives_an_empty_value_not_a_cut_name() -> None:
    formatted = format_value(["a very long segment name"], ValueFormat(max_length=5))
    assert formatted.value == ""
    assert formatted.dropped == 1


def test_length_counts_characters_not_bytes() -> None:
    formatted = format_value(["Société", "Zürich"], ValueFormat(max_length=14))
    assert formatted.value == "Société;Zürich"


@pytest.mark.parametrize(
    ("delimiter", "max_length", "message"),
    [
        ("", None, "1 to 5 characters"),
        ("      ", None, "1 to 5 characters"),
        (" ", None, "visible ASCII"),
        ("·", None, "visible ASCII"),
        (";", 0, "at least 1"),
    ],
)
def test_bad_formats_are_refused(delimiter: str, max_length: int | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ValueFormat(delimiter=delimiter, max_length=max_length)
