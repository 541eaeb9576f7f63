"""The accounts CSV import: upserts by external_id, reports bad rows by line, refuses bad files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

import models.account_import as account_import
from models.account_import import ImportResult, RowError, import_accounts
from models.accounts import Account
from models.errors import InputError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "accounts.csv"


def write_csv(tmp_path: Path, *lines: str, name: str = "accounts.csv") -> Path:
    """A UTF-8 CSV file of `lines` (line 1 is the header)."""
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored(session: Session) -> dict[str, dict[str, Any]]:
    """Every account row as the database holds it (not through the session's identity map)."""
    rows = session.execute(select(Account.__table__)).mappings()
    return {row["external_id"]: dict(row) for row in rows}


def run(session: Session, path: Path) -> ImportResult:
    """Import `path` and commit, as the CLI does."""
    result = import_accounts(session, path)
    session.commit()
    return result


FULL_HEADER = (
    "external_id,name,domain,industry,employee_count,annual_revenue,country,region,"
    "profile_fit,buying_stage,intent_score,salesforce_account_id,hubspot_company_id"
)


def test_create_then_update_upserts_by_external_id(session: Session, tmp_path: Path) -> None:
    first = write_csv(
        tmp_path,
        FULL_HEADER,
        "A-1,Acme,acme.com,Manufacturing,1200,2500000.50,US,AMER,b,Awareness,40,"
        "001A000001AbCdE,9001",
        "A-2,Globex,globex.com,Energy,80,,DE,EMEA,A,,7,001A000001AbCdEFGH,",
    )
    assert run(session, first) == ImportResult(created=2, updated=0, unchanged=0, errors=[])
    acme = session.scalars(select(Account).where(Account.external_id == "A-1")).one()
    assert (acme.employee_count, acme.annual_revenue, acme.profile_fit) == (1200, 2500000.5, "B")
    assert (acme.intent_score, acme.salesforce_account_id, acme.hubspot_company_id) == (
        40,
        "001A000001AbCdE",
        "9001",
    )
    assert acme.crm_attributes == {}

    second = write_csv(
        tmp_path,
        FULL_HEADER,
        "A-1,Acme Corp,acme.com,Manufacturing,1300,2500000.50,US,AMER,B,Decision,90,"
        "001A000001AbCdE,9001",
        "A-3,Initech,initech.com,Software,15,1000,US,AMER,C,,0,,",
        name="second.csv",
    )
    result = run(session, second)
    assert result == ImportResult(created=1, updated=1, unchanged=0, errors=[])
    rows = stored(session)
    assert set(rows) == {"A-1", "A-2", "A-3"}
    assert rows["A-1"]["name"] == "Acme Corp"
    assert (rows["A-1"]["employee_count"], rows["A-1"]["intent_score"]) == (1300, 90)
    assert rows["A-1"]["buying_stage"] == "Decision"
    assert rows["A-1"]["id"] == acme.id
    # An account object the session already holds reads the new values too.
    assert (acme.name, acme.employee_count) == ("Acme Corp", 1300)
    assert session.scalar(select(func.count()).select_from(Account)) == 3


def test_the_caller_commits(session: Session, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "external_id,name", "A-1,Acme")
    assert import_accounts(session, path).created == 1
    session.rollback()
    assert stored(session) == {}


def test_columns_absent_from_the_file_are_kept(session: Session, tmp_path: Path) -> None:
    run(session, write_csv(tmp_path, FULL_HEADER, "A-1,Acme,acme.com,Retail,10,5,FR,EMEA,A,,3,,"))
    result = run(session, write_csv(tmp_path, "external_id,name", "A-1,Acme SA", name="n.csv"))
    assert result.updated == 1
    row = stored(session)["A-1"]
    assert row["name"] == "Acme SA"
    assert (row["domain"], row["industry"], row["employee_count"]) == ("acme.com", "Retail", 10)
    assert (row["country"], row["profile_fit"], row["intent_score"]) == ("FR", "A", 3)


def test_an_empty_cell_clears_the_stored_value(session: Session, tmp_path: Path) -> None:
    run(session, write_csv(tmp_path, FULL_HEADER, "A-1,Acme,acme.com,Retail,10,5,FR,EMEA,A,,3,,"))
    path = write_csv(
        tmp_path, "external_id,industry,employee_count,domain", "A-1,, ,", name="clear.csv"
    )
    assert run(session, path).updated == 1
    row = stored(session)["A-1"]
    assert (row["industry"], row["employee_count"], row["domain"]) == (None, None, None)
    assert (row["name"], row["country"]) == ("Acme", "FR")


def test_crm_columns_merge_per_key(session: Session, tmp_path: Path) -> None:
    run(session, write_csv(tmp_path, "external_id,crm.tier,crm.owner", "A-1,Gold,ana@x.com"))
    assert stored(session)["A-1"]["crm_attributes"] == {"tier": "Gold", "owner": "ana@x.com"}

    # Header names are case-insensitive: CRM.Segment is crm.segment.
    path = write_csv(tmp_path, "external_id,crm.owner,CRM.Segment", "A-1,,Mid-Market", name="b.csv")
    assert run(session, path).updated == 1
    assert stored(session)["A-1"]["crm_attributes"] == {"tier": "Gold", "segment": "Mid-Market"}

    path = write_csv(tmp_path, "external_id,name", "A-1,Acme", name="c.csv")
    run(session, path)
    assert stored(session)["A-1"]["crm_attributes"] == {"tier": "Gold", "segment": "Mid-Market"}


def test_the_domain_is_normalised_and_comes_from_the_website(
    session: Session, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path,
        "external_id,domain,website",
        "A-1,,https://www.Shop.Acme.co.uk/x",
        "A-2,WWW.Globex.COM,https://other.example.org",
        "A-3,,",
        "A-4,,localhost",
        "A-5,co.uk,",
        "A-6,not a domain,localhost",
    )
    result = run(session, path)
    assert [error.line for error in result.errors] == [5, 6, 7]
    assert result.errors[0].message == 'website "localhost" is not a domain or website'
    assert result.errors[1].message == 'domain "co.uk" has no registrable domain'
    # A given domain wins: the website is not even looked at.
    assert result.errors[2].message == 'domain "not a domain" is not a domain or website'
    rows = stored(session)
    assert rows["A-1"]["domain"] == "acme.co.uk"
    assert rows["A-2"]["domain"] == "globex.com"
    assert rows["A-3"]["domain"] is None
    assert set(rows) == {"A-1", "A-2", "A-3"}

    # Without a domain column the website still sets the domain.
    path = write_csv(tmp_path, "external_id,website", "A-2,http://blog.initech.io/", name="w.csv")
    assert run(session, path).updated == 1
    assert stored(session)["A-2"]["domain"] == "initech.io"


def test_bad_rows_are_reported_by_line_and_good_rows_are_stored(
    session: Session, tmp_path: Path
) -> None:
    header = (
        "external_id,name,domain,employee_count,annual_revenue,profile_fit,intent_score,"
        "salesforce_account_id,hubspot_company_id,crm.tier"
    )
    run(
        session, write_csv(tmp_path, "external_id,name,crm.tier", "bad-emp,Kept,Gold", name="0.csv")
    )
    path = write_csv(
        tmp_path,
        header,  # 1
        "good1,Good One,good1.com,10,100.5,a,50,001000000000001AAA,123,1",  # 2
        "bad-emp,Changed,,abc,,,,,,Silver",  # 3
        'bad-sep,Bad,,"1,200",,,,,,',  # 4
        "",  # 5: blank
        "bad-rev,Bad,,,-5,,,,,",  # 6
        '"good2","Multi',  # 7: a quoted cell spanning two lines
        'line name",,,,,,,,',  # 8
        "bad-fit,Bad,,,,E,,,,",  # 9
        "bad-intent,Bad,,,,,101,,,",  # 10
        "bad-sf,Bad,,,,,,001ABC,,",  # 11
        "bad-hs,Bad,,,,,,,12a,",  # 12
        "bad-domain,Bad,not a domain,,,,,,,",  # 13
        ",No Id,,,,,,,,",  # 14
        "short,row",  # 15
        ",,,,,,,,,",  # 16: a spreadsheet's blank row
        "long," + "x" * 256 + ",,,,,,,,",  # 17
        "good1,Again,,,,,,,,",  # 18
        "bad-two,Bad,,-1,1e999,,,,,",  # 19
        "good3,Good Three,,  7  ,,,,,,",  # 20
        "nul,Bad\x00Name,,,,,,,,",  # 21
        "huge," + "y" * 200_000 + ",,,,,,,,",  # 22: more than csv's field size limit
        "good4,Good Four,,,,,,,,",  # 23
    )
    result = run(session, path)
    assert (result.created, result.updated, result.unchanged) == (4, 0, 0)
    messages = {error.line: error.message for error in result.errors}
    assert messages == {
        3: 'employee_count "abc" is not a whole number (plain digits only, no separators)',
        4: 'employee_count "1,200" is not a whole number (plain digits only, no separators)',
        6: 'annual_revenue "-5" is not a number ≥ 0 (like 1250000 or 1.5e6)',
        9: 'profile_fit "E" is not one of A, B, C, D',
        10: 'intent_score "101" is not a whole number from 0 to 100',
        11: 'salesforce_account_id "001ABC" is not a Salesforce id (15 or 18 letters and digits)',
        12: 'hubspot_company_id "12a" is not a HubSpot id (digits only)',
        13: 'domain "not a domain" is not a domain or website',
        14: "external_id is empty",
        15: "the row has 2 cells, the header has 10",
        17: "name is longer than 255 characters",
        18: 'external_id "good1" is already on line 2',
        19: 'employee_count "-1" is not a whole number (plain digits only, no separators); '
        'annual_revenue "1e999" is not a number ≥ 0 (like 1250000 or 1.5e6)',
        21: "cannot read the row: it contains a NUL character",
        22: "cannot read the row: field larger than field limit (131072)",
    }
    assert all(isinstance(error, RowError) for error in result.errors)
    assert [error.line for error in result.errors] == sorted(messages)
    rows = stored(session)
    assert set(rows) == {"bad-emp", "good1", "good2", "good3", "good4"}
    assert rows["good2"]["name"] == "Multi\nline name"
    assert rows["good3"]["employee_count"] == 7
    # The first good1 row is the one kept; a row with an error changes nothing at all.
    assert rows["good1"]["name"] == "Good One"
    assert rows["bad-emp"]["name"] == "Kept"
    assert rows["bad-emp"]["crm_attributes"] == {"tier": "Gold"}


def test_a_duplicate_external_id_names_the_earlier_line(session: Session, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "external_id,name", "A-1,First", "A-2,Other", "", "A-1,Second")
    result = run(session, path)
    assert result.errors == [RowError(5, 'external_id "A-1" is already on line 2')]
    assert stored(session)["A-1"]["name"] == "First"


def test_unchanged_accounts_are_counted_and_not_touched(session: Session, tmp_path: Path) -> None:
    lines = (
        "external_id,name,website,annual_revenue,profile_fit,crm.tier,crm.owner",
        "A-1,Acme,https://www.acme.com/,1.1,b,Gold,",
        "A-2,Globex,globex.com,,A,,ana",
    )
    assert run(session, write_csv(tmp_path, *lines)).created == 2
    before = {key: row["updated_at"] for key, row in stored(session).items()}

    result = run(session, write_csv(tmp_path, *lines, name="again.csv"))
    assert result == ImportResult(created=0, updated=0, unchanged=2, errors=[])
    assert {key: row["updated_at"] for key, row in stored(session).items()} == before

    changed = (*lines[:2], "A-2,Globex,globex.com,,A,,bob")
    result = run(session, write_csv(tmp_path, *changed, name="changed.csv"))
    assert result == ImportResult(created=0, updated=1, unchanged=1, errors=[])
    after = stored(session)
    assert after["A-1"]["updated_at"] == before["A-1"]
    assert after["A-2"]["updated_at"] > before["A-2"]
    assert after["A-2"]["crm_attributes"] == {"owner": "bob"}


def test_header_names_are_case_insensitive_and_trimmed(session: Session, tmp_path: Path) -> None:
    path = write_csv(tmp_path, " External_ID , NAME ,Profile_Fit", "  A-1  ,  Acme  , c ")
    assert run(session, path).created == 1
    row = stored(session)["A-1"]
    assert (row["name"], row["profile_fit"]) == ("Acme", "C")


def test_a_utf8_bom_is_accepted(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfexternal_id,name\r\nA-1,Acme\r\n")
    assert run(session, path).created == 1
    assert stored(session)["A-1"]["name"] == "Acme"


def test_non_ascii_names_are_stored_as_written(session: Session, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "external_id,name,country,crm.owner",
        "FR-1,Société Générale,France,Zoë Müller",
        "JP-1,株式会社トヨタ,日本,",
        "PL-1,Zakłady Łódź,Polska,",
    )
    assert run(session, path).created == 3
    rows = stored(session)
    assert rows["FR-1"]["name"] == "Société Générale"
    assert rows["FR-1"]["crm_attributes"] == {"owner": "Zoë Müller"}
    assert (rows["JP-1"]["name"], rows["JP-1"]["country"]) == ("株式会社トヨタ", "日本")
    assert rows["PL-1"]["name"] == "Zakłady Łódź"
    assert run(session, path).unchanged == 3


def _seed(session: Session, tmp_path: Path) -> dict[str, dict[str, Any]]:
    run(session, write_csv(tmp_path, "external_id,name,crm.tier", "A-1,Acme,Gold", name="seed.csv"))
    return stored(session)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"external_id,name,indstry\nA-1,Changed,Retail\n", 'unknown column "indstry" (known: '),
        (
            b"external_id,Name,name \nA-1,Changed,x\n",
            'column "name" appears twice (columns 2 and 3)',
        ),
        (b"name,domain\nChanged,acme.com\n", "the header has no external_id column"),
        (b"", "the file is empty"),
        (b"\n\n  \n", "the file is empty"),
        (b"external_id,name\nA-1,Caf\xe9\n", "line 2 is not UTF-8 text"),
        (b"external_id,crm.bad name\nA-1,x\n", 'unknown column "crm.bad name"'),
        (b"external_id,,name\nA-1,,Changed\n", "header column 2 has no name"),
        (b"external_id;name\nA-1;Changed\n", "the file seems not to be comma-separated"),
    ],
)
def test_a_bad_file_is_refused_whole(
    session: Session, tmp_path: Path, content: bytes, problem: str
) -> None:
    before = _seed(session, tmp_path)
    path = tmp_path / "accounts.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        import_accounts(session, path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message
    session.commit()  # even a caller that commits anyway stores nothing
    assert stored(session) == before


def test_a_missing_file_is_refused(session: Session, tmp_path: Path) -> None:
    before = _seed(session, tmp_path)
    path = tmp_path / "nope.csv"
    with pytest.raises(InputError, match=r"nope\.csv: no such file$"):
        import_accounts(session, path)
    session.commit()
    assert stored(session) == before


def test_a_bad_byte_after_stored_chunks_undoes_them(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _seed(session, tmp_path)
    monkeypatch.setattr(account_import, "CHUNK_SIZE", 2)
    path = tmp_path / "accounts.csv"
    rows = b"".join(b"B-%d,Name %d\n" % (number, number) for number in range(7))
    path.write_bytes(b"external_id,name\nA-1,Changed\n" + rows + b"B-9,Caf\xe9\n")
    with pytest.raises(InputError, match=r"line 10 is not UTF-8 text"):
        import_accounts(session, path)
    session.commit()
    assert stored(session) == before


def test_large_files_are_stored_in_chunks_with_few_statements(
    session: Session, tmp_path: Path
) -> None:
    header = "external_id,name,crm.tier,employee_count"
    lines = [f"X-{number},Company {number},,{number}" for number in range(2500)]
    # A tenth of the accounts get a crm.tier on the second import.
    changed = [line.replace(",,", ",Gold,") if line.endswith("7") else line for line in lines]
    statements: list[str] = []
    engine = session.get_bind()

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert run(session, write_csv(tmp_path, header, *lines)).created == 2500
        result = run(session, write_csv(tmp_path, header, *changed, name="changed.csv"))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert (result.updated, result.unchanged) == (250, 2250)
    # Per chunk of 1,000 rows: one SELECT and one INSERT or UPDATE (plus transaction chatter).
    data = [sql for sql in statements if sql.lstrip().split()[0] in {"SELECT", "INSERT", "UPDATE"}]
    assert len(data) == 12
    assert stored(session)["X-17"]["crm_attributes"] == {"tier": "Gold"}


def test_the_example_file_imports_without_errors(session: Session) -> None:
    result = run(session, EXAMPLE)
    assert result.errors == []
    assert result.created >= 25
    rows = stored(session)
    names = {row["name"] for row in rows.values()}
    assert "Société Générale" in names
    assert all(row["domain"] for row in rows.values())
    assert {row["profile_fit"] for row in rows.values()} >= {"A", "B", "C", "D"}
    assert any(row["crm_attributes"] for row in rows.values())
    assert run(session, EXAMPLE).unchanged == result.created
