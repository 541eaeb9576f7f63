"""The demo's tables, read from their text at import: every row whole, nothing padded or lost."""

from __future__ import annotations

from worker.demo.names import COUNTRIES, PEOPLE, POOLS, SEGMENTS


def test_every_country_row_is_whole() -> None:
    items = [
        item
        for country in COUNTRIES
        for item in (country.name, *country.suffixes, *country.legal_forms, *country.stems)
    ]
    assert all(item and item == item.strip() for item in items)
    assert all(country.language in PEOPLE and country.weight > 0 for country in COUNTRIES)
    united_states = next(country for country in COUNTRIES if country.name == "United States")
    # Its stems run over four lines of the table: the ones at the line ends are joined whole.
    assert united_states.stems[7:9] == ("Northwind", "Cascade")
    assert united_states.stems[-1] == "Big Sky"
    # Commas inside a field are the field's own.
    japan = next(country for country in COUNTRIES if country.name == "Japan")
    assert united_states.stems[1] == "Baker, Lowe & Partners"
    assert japan.legal_forms == ("K.K.", "Co., Ltd.")


def test_a_segment_row_continued_over_lines_is_joined_with_single_spaces() -> None:
    longest = max(SEGMENTS, key=lambda segment: len(segment.name))
    assert 200 < len(longest.name) <= 255
    assert longest.name.endswith("‘ICP › Core › FY25’ (owner: RevOps, do not edit)")
    assert "  " not in longest.name and longest.filter is not None and "  " not in longest.filter
    assert longest.filter.endswith('profile_fit in ("A", "B")')


def test_filter_and_list_segments_have_their_own_fields() -> None:
    listed = [segment for segment in SEGMENTS if segment.source != "filter"]
    assert len(listed) == 10 and len(SEGMENTS) == 41
    for segment in listed:
        assert segment.list_file and segment.list_file.endswith(".csv")
        assert segment.pool in POOLS and 0 < segment.share <= 1 and segment.columns
    for segment in SEGMENTS:
        assert segment.source in ("filter", "uploaded_list", "crm_report_sync", "crm_list_sync")
        assert set(segment.uses) <= set("EDGA") and "-" not in (segment.filter, segment.uses)
        if segment.source == "filter":
            assert segment.filter and segment.list_file is None and segment.share == 0.0
    # "-" stands for no filter (a list segment) and for no use (a segment published nowhere).
    assert sum(segment.filter is None for segment in SEGMENTS) == 5
    assert sum(segment.uses == "" for segment in SEGMENTS) == 16
