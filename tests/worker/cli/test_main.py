"""The segsync command line: exit codes, one-line refusals, --json, confirmation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.factories import write_csv
from worker.cli import main


class Cli:
    """Runs segsync commands on one database, as a person would type them."""

    def __init__(self, database_url: str) -> None:
        self.runner = CliRunner()
        self.env = {"SEGSYNC_DATABASE_URL": database_url}

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(main, list(args), env=self.env, input=input)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, (result.output, result.stderr)
        return result

    def json(self, *args: str) -> object:
        return json.loads(self.ok(*args, "--json").stdout)

    def refused(self, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == 1, (result.output, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("segsync: ")
        return lines[0]


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


@pytest.fixture
def loaded(cli: Cli, tmp_path: Path) -> Cli:
    accounts = write_csv(
        tmp_path / "accounts.csv",
        ["external_id", "name", "website", "industry", "country", "profile_fit", "intent_score"],
        [
            ["A-1", "Acme", "https://www.acme.com", "Software", "US", "A", "80"],
            ["A-2", "Globex", "globex.co.uk", "Fintech", "GB", "B", "20"],
            ["A-3", "Société Générale", "societegenerale.fr", "Banking", "FR", "A", "55"],
        ],
    )
    cli.ok("accounts", "import", str(accounts))
    listed = write_csv(tmp_path / "named.csv", ["domain"], [["acme.com"], ["globex.co.uk"]])
    cli.ok("segments", "create", "Named; EMEA", "--list", str(listed), "--folder", "ABM")
    cli.ok("segments", "create", "ICP A", "--filter", 'profile_fit = "A"')
    cli.ok("segments", "create", "Hot", "--filter", "intent_score >= 50")
    return cli


def test_db_upgrade_then_again(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'new.db'}")
    assert "upgraded from empty to revision" in cli.ok("db", "upgrade").stdout
    assert "already at revision" in cli.ok("db", "upgrade").stdout


def test_commands_on_a_database_not_upgraded_say_so_in_one_line(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'new.db'}")
    for args in (("segments", "list"), ("published",), ("accounts", "show", "x")):
        assert "run `segsync db upgrade`" in cli.refused(*args)


def test_misuse_exits_2(cli: Cli) -> None:
    assert cli("segments", "list", "--no-such-option").exit_code == 2
    assert cli("publish", "X").exit_code == 2  # --use is required
    assert cli("publish", "X", "--use", "crm").exit_code == 2


def test_import_reports_bad_rows_with_lines_and_keeps_good_ones(cli: Cli, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "accounts.csv",
        ["external_id", "employee_count"],
        [["A-1", "10"], ["A-2", "many"], ["A-3", "30"]],
    )
    result = cli("accounts", "import", str(path))
    assert result.exit_code == 1
    assert "2 created, 0 updated, 0 unchanged, 1 rows refused" in result.stdout
    assert f"{path}:3: " in result.stderr
    assert cli.json("accounts", "show", "A-3")["employee_count"] == 30  # type: ignore[index]


def test_segments_list_and_search(loaded: Cli) -> None:
    rows = loaded.json("segments", "list")
    assert [r["name"] for r in rows] == ["Hot", "ICP A", "Named; EMEA"]  # type: ignore[union-attr,index]
    found = loaded.json("segments", "list", "--search", "emea")
    assert [(r["name"], r["members"], r["source"]) for r in found] == [  # type: ignore[union-attr,index]
        ("Named; EMEA", 2, "uploaded_list")
    ]
    assert "Named; EMEA" in loaded.ok("segments", "list", "--folder", "abm").stdout


def test_publish_asks_and_refuses_without_a_terminal(loaded: Cli) -> None:
    reason = loaded.refused("publish", "ICP A", "--use", "enrichment")
    assert "no terminal to ask on; pass --yes" in reason
    assert loaded.json("published") == []
    out = loaded.ok("publish", "ICP A", "--use", "enrichment", "--use", "api", "--yes").stdout
    assert "published 'ICP A' to enrichment, api (1 of 200 segments published)" in out
    again = loaded.ok("publish", "icp a", "--use", "api")
    assert "is already published to api; nothing changed" in again.stdout


def test_rule_refusals_are_one_line(loaded: Cli) -> None:
    assert "cannot be published to gtm" in loaded.refused("publish", "Hot", "--use", "gtm", "--yes")
    assert "legacy use" in loaded.refused("publish", "Hot", "--use", "sales_intelligence", "--yes")
    assert "no segment named 'Nope'" in loaded.refused("publish", "Nope", "--use", "api", "--yes")
    assert "unknown field" in loaded.refused("segments", "create", "Bad", "--filter", "x = 1")


def test_published_table_and_gtm_references(loaded: Cli) -> None:
    loaded.ok("publish", "Named; EMEA", "--use", "gtm", "--use", "enrichment", "--yes")
    loaded.ok("publish", "Hot", "--use", "account_details", "--yes")
    table = loaded.json("published", "--search", "emea")
    assert table == [
        {
            "name": "Named; EMEA",
            "folder": "ABM",
            "enrichment": True,
            "account_details": False,
            "gtm": True,
            "api": False,
            "sales_intelligence": False,
        }
    ]
    human = loaded.ok("published").stdout
    assert "2 of 200 segments published" in human
    loaded.ok(
        "segments",
        "reference",
        "Named; EMEA",
        "--kind",
        "funnel_insights_report",
        "--title",
        "Pipeline by region",
    )
    reason = loaded.refused("unpublish", "Named; EMEA", "--use", "gtm", "--yes")
    assert "saved Funnel Insights report 'Pipeline by region'" in reason
    loaded.ok(
        "segments",
        "reference",
        "Named; EMEA",
        "--kind",
        "funnel_insights_report",
        "--title",
        "Pipeline by region",
        "--remove",
    )
    out = loaded.ok("unpublish", "Named; EMEA", "--use", "gtm", "--yes").stdout
    assert "unpublished 'Named; EMEA' from gtm (2 of 200 segments published)" in out
    again = loaded.ok("unpublish", "Named; EMEA", "--use", "gtm", "--yes").stdout
    assert "is not published to gtm; nothing changed" in again


def test_values_preview_and_account_details(loaded: Cli) -> None:
    for name in ("Named; EMEA", "ICP A", "Hot"):
        loaded.ok("publish", name, "--use", "enrichment", "--yes")
    loaded.ok("publish", "Hot", "--use", "account_details", "--yes")
    values = loaded.json("values")
    assert values == [
        {
            "external_id": "A-1",
            "domain": "acme.com",
            "value": "Hot;ICP A;Named； EMEA",
            "names": 3,
            "dropped": 0,
        },
        {
            "external_id": "A-2",
            "domain": "globex.co.uk",
            "value": "Named； EMEA",
            "names": 1,
            "dropped": 0,
        },
        {
            "external_id": "A-3",
            "domain": "societegenerale.fr",
            "value": "Hot;ICP A",
            "names": 2,
            "dropped": 0,
        },
    ]
    short = loaded.json("values", "--account", "acme.com", "--delimiter", "|", "--max-length", "10")
    assert short == [
        {"external_id": "A-1", "domain": "acme.com", "value": "Hot|ICP A", "names": 2, "dropped": 1}
    ]
    human = loaded.ok("values").stdout
    assert "3 accounts, 3 with a value, 0 truncated" in human
    shown = loaded.json("accounts", "show", "A-1")
    assert shown["segments"] == ["Hot"]  # type: ignore[index]
    assert shown["domain"] == "acme.com"  # type: ignore[index]
    assert (
        "Account appears in these segments:\n  Hot" in loaded.ok("accounts", "show", "A-1").stdout
    )
    assert "visible ASCII" in loaded.refused("values", "--delimiter", " ")
    assert "no account with external id or domain 'zzz'" in loaded.refused(
        "accounts", "show", "zzz"
    )


def test_refresh_reports_member_counts(loaded: Cli, tmp_path: Path) -> None:
    more = write_csv(tmp_path / "more.csv", ["external_id", "profile_fit"], [["A-4", "A"]])
    loaded.ok("accounts", "import", str(more))
    assert loaded.json("segments", "refresh", "ICP A") == [{"name": "ICP A", "members": 3}]
    everything = loaded.json("segments", "refresh")
    assert [r["name"] for r in everything] == ["Hot", "ICP A", "Named; EMEA"]  # type: ignore[union-attr,index]
