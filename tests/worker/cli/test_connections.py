"""`segsync connections` and `segsync sandbox start`: secrets stay secret, connections can be fixed
and removed, emulators answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from connectors.sandbox.cluster import Sandbox
from models.connections import new_secret_key
from tests.worker.celery_stack import Stack
from tests.worker.cli.test_main import Cli

SEGSYNC = str(Path(sys.executable).parent / "segsync")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(["salesforce", "hubspot"], records=20) as running:
        yield running


@pytest.fixture
def cli(database_url: str) -> Cli:
    cli = Cli(database_url)
    cli.env["SEGSYNC_SECRET_KEY"] = new_secret_key()
    return cli


def hubspot_args(sandbox: Sandbox, name: str = "hs") -> list[str]:
    described = sandbox.describe()
    return [
        "connections",
        "add",
        name,
        "--system",
        "hubspot",
        "--set",
        f"base_url={described['hubspot']['base_url']}",
        "--set",
        f"ca_bundle={described['ca_bundle']}",
    ]


def test_add_list_and_test_without_ever_showing_the_secret(
    cli: Cli, sandbox: Sandbox, database_url: str
) -> None:
    token = sandbox.describe()["hubspot"]["access_token"]
    added = cli.ok(*hubspot_args(sandbox), "--secret", f"access_token={token}")
    assert "added connection 'hs' (hubspot)" in added.stdout
    listed = cli.ok("connections", "list")
    assert "access_token" in listed.stdout and token not in listed.stdout
    as_json = cli.json("connections", "list")
    assert as_json[0]["secrets"] == ["access_token"]  # type: ignore[index]
    assert token not in json.dumps(as_json)
    tested = cli.ok("connections", "test", "hs", "--object", "contacts", "--field", "segment_names")
    assert "ok: contacts.segment_names is" in tested.stdout
    assert token not in tested.stdout + tested.stderr
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM connections")).all()
    engine.dispose()
    assert token not in repr(rows)


def test_missing_field_and_bad_token_are_one_line_refusals(cli: Cli, sandbox: Sandbox) -> None:
    token = sandbox.describe()["hubspot"]["access_token"]
    cli.ok(*hubspot_args(sandbox), "--secret", f"access_token={token}")
    reason = cli.refused("connections", "test", "hs", "--object", "contacts", "--field", "nope")
    assert "field nope not found on contacts" in reason
    cli.ok(*hubspot_args(sandbox, "bad"), "--secret", "access_token=pat-refused-token")
    reason = cli.refused("connections", "test", "bad", "--object", "contacts", "--field", "x")
    assert "pat-refused-token" not in reason


def test_secret_from_the_environment(cli: Cli, sandbox: Sandbox) -> None:
    token = sandbox.describe()["hubspot"]["access_token"]
    cli.ok(*hubspot_args(sandbox), "--secret-env", "access_token=HS_TOKEN")
    reason = cli.refused("connections", "test", "hs", "--object", "contacts", "--field", "x")
    assert "reads secret access_token from $HS_TOKEN, which is not set" in reason
    cli.env["HS_TOKEN"] = token
    cli.ok("connections", "test", "hs", "--object", "contacts", "--field", "segment_names")


def test_salesforce_password_login_with_secrets_from_a_file(
    cli: Cli, sandbox: Sandbox, tmp_path: Path
) -> None:
    described = sandbox.describe()
    salesforce = described["salesforce"]
    password_file = tmp_path / "password.txt"
    password_file.write_text(salesforce["password"] + "\n")
    assert "cannot read" in cli.refused(
        "connections",
        "add",
        "sf",
        "--system",
        "salesforce",
        "--secret-file",
        f"password={tmp_path / 'missing.txt'}",
    )
    cli.ok(
        "connections",
        "add",
        "sf",
        "--system",
        "salesforce",
        "--set",
        f"username={salesforce['username']}",
        "--set",
        f"login_url={salesforce['login_url']}",
        "--set",
        f"ca_bundle={described['ca_bundle']}",
        "--secret-file",
        f"password={password_file}",
        "--secret",
        f"security_token={salesforce['security_token']}",
    )
    tested = cli.ok(
        "connections", "test", "sf", "--object", "contact", "--field", "Segment_Names__c"
    )
    assert "ok: Contact.Segment_Names__c is" in tested.stdout


def test_salesforce_connection_by_session(cli: Cli, sandbox: Sandbox) -> None:
    described = sandbox.describe()
    salesforce = described["salesforce"]
    cli.ok(
        "connections",
        "add",
        "sf",
        "--system",
        "salesforce",
        "--set",
        "auth=session",
        "--set",
        f"instance_url={salesforce['instance_url']}",
        "--set",
        f"ca_bundle={described['ca_bundle']}",
        "--secret",
        f"access_token={salesforce['access_token']}",
    )
    tested = cli.ok("connections", "test", "sf", "--object", "Lead", "--field", "Segment_Names__c")
    assert "ok: Lead.Segment_Names__c is" in tested.stdout


def test_refusals(cli: Cli, sandbox: Sandbox) -> None:
    no_key = Cli(cli.env["SEGSYNC_DATABASE_URL"])
    assert "SEGSYNC_SECRET_KEY is not set" in no_key.refused(
        *hubspot_args(sandbox), "--secret", "access_token=x"
    )
    assert "is a secret of hubspot: give it with --secret" in cli.refused(
        *hubspot_args(sandbox), "--set", "access_token=x"
    )
    assert "hubspot has no setting 'colour'" in cli.refused(
        *hubspot_args(sandbox), "--set", "colour=blue", "--secret", "access_token=x"
    )
    assert "needs either access_token" in cli.refused(*hubspot_args(sandbox))
    assert "no terminal to ask on" in cli.refused(
        *hubspot_args(sandbox), "--secret", "access_token"
    )
    assert cli("connections", "add", "x", "--system", "nosuch").exit_code == 2
    assert "no connection named 'zz'" in cli.refused(
        "connections", "test", "zz", "--object", "Lead", "--field", "F"
    )
    assert cli.ok("connections", "keygen").stdout.strip()


def test_sandbox_start_prints_its_description_first_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [SEGSYNC, "sandbox", "start", "--systems", "hubspot,salesforce", "--records", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert process.stdout is not None
        described = json.loads(process.stdout.readline())
        assert set(described) == {"hubspot", "salesforce", "ca_bundle"}
        session = requests.Session()
        session.trust_env = False
        session.verify = described["ca_bundle"]
        answer = session.get(
            f"{described['hubspot']['base_url']}/crm/v3/objects/contacts",
            headers={"Authorization": f"Bearer {described['hubspot']['access_token']}"},
            timeout=10,
        )
        assert answer.status_code == 200
        assert len(answer.json()["results"]) == 5
        ca_bundle = Path(described["ca_bundle"])
        assert ca_bundle.exists()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    assert not ca_bundle.exists()
    assert (
        "unknown sandbox system nosuch"
        in subprocess.run(
            [SEGSYNC, "sandbox", "start", "--systems", "nosuch"], capture_output=True, text=True
        ).stderr
    )


def test_update_fixes_a_token_and_keeps_every_other_setting(cli: Cli, sandbox: Sandbox) -> None:
    token = sandbox.describe()["hubspot"]["access_token"]
    cli.ok(*hubspot_args(sandbox), "--secret", "access_token=pat-refused-token")
    args = ("connections", "test", "hs", "--object", "contacts", "--field", "segment_names")
    cli.refused(*args)
    updated = cli.ok("connections", "update", "hs", "--secret", f"access_token={token}")
    assert updated.stdout.strip() == "updated connection 'hs': access_token"
    assert token not in updated.stdout + updated.stderr
    cli.ok(*args)
    (shown,) = cli.json("connections", "list")  # type: ignore[misc]
    assert shown["settings"] == {  # the base URL and CA bundle given at add are kept
        "base_url": sandbox.describe()["hubspot"]["base_url"],
        "ca_bundle": sandbox.describe()["ca_bundle"],
    }
    assert shown["secrets"] == ["access_token"]
    # From a stored token to one read from the environment, then a setting removed.
    cli.ok("connections", "update", "hs", "--secret-env", "access_token=HS_TOKEN")
    assert "reads secret access_token from $HS_TOKEN" in cli.refused(*args)
    cli.env["HS_TOKEN"] = token
    cli.ok(*args)
    out = cli.ok("connections", "update", "hs", "--unset", "ca_bundle").stdout
    assert out.strip() == "updated connection 'hs': ca_bundle"
    again = cli.ok("connections", "update", "hs", "--secret-env", "access_token=HS_TOKEN").stdout
    assert "nothing changed" in again


def test_update_is_validated_like_add_and_a_refusal_stores_nothing(
    cli: Cli, sandbox: Sandbox
) -> None:
    token = sandbox.describe()["hubspot"]["access_token"]
    cli.ok(*hubspot_args(sandbox), "--secret", f"access_token={token}")
    before = cli.json("connections", "list")
    refusals = [
        (("--set", "access_token=x"), "access_token is a secret of hubspot: give it with --secret"),
        (("--set", "colour=blue"), "hubspot has no setting 'colour'"),
        (("--secret", "colour=blue"), "hubspot has no secret 'colour'"),
        (("--unset", "access_token"), "needs either access_token"),
        (("--unset", "colour"), "connection 'hs' has no setting or secret 'colour'"),
        (
            ("--set", "base_url=ftp://x", "--unset", "ca_bundle"),
            "base_url must start with https://",
        ),
        (("--secret", "access_token"), "no terminal to ask on"),
        (("--secret-env", "access_token=1BAD"), "not an environment variable name"),
    ]
    for options, reason in refusals:
        assert reason in cli.refused("connections", "update", "hs", *options), options
    assert cli.json("connections", "list") == before
    assert "no connection named 'zz'" in cli.refused("connections", "update", "zz", "--unset", "a")
    assert cli("connections", "update", "hs").exit_code == 2  # nothing to change
    no_key = Cli(cli.env["SEGSYNC_DATABASE_URL"])
    assert "SEGSYNC_SECRET_KEY is not set" in no_key.refused(
        "connections", "update", "hs", "--secret", "access_token=other"
    )
    # Settings alone change without the key; the stored token is kept.
    no_key.ok("connections", "update", "hs", "--set", "ca_bundle=/tmp/other.pem")
    cli.ok("connections", "update", "hs", "--set", f"ca_bundle={sandbox.describe()['ca_bundle']}")
    cli.ok("connections", "test", "hs", "--object", "contacts", "--field", "segment_names")


def test_delete_asks_and_is_refused_while_an_orchestration_uses_it(
    cli: Cli, sandbox: Sandbox
) -> None:
    token = sandbox.describe()["hubspot"]["access_token"]
    cli.ok(*hubspot_args(sandbox), "--secret", f"access_token={token}")
    cli.ok("orchestrations", "create", "Contacts", "--connection", "hs", "--object", "contacts",
           "--field", "segment_names")  # fmt: skip
    reason = cli.refused("connections", "delete", "hs")
    assert reason == "segsync: no terminal to ask on: pass --yes to confirm; nothing was deleted"
    reason = cli.refused("connections", "delete", "hs", "--yes")
    assert "connection 'hs' is used by orchestration 'Contacts': delete them or move" in reason
    assert "no connection named 'zz'" in cli.refused("connections", "delete", "zz", "--yes")
    cli.ok("orchestrations", "delete", "Contacts", "--yes")
    assert cli.ok("connections", "delete", "hs", "--yes").stdout.strip() == (
        "deleted connection 'hs'"
    )
    assert cli.json("connections", "list") == []


def test_a_worker_rebuilds_its_connector_when_the_connection_changes(stack: Stack) -> None:
    # The worker caches one logged-in connector per connection until its updated_at moves.
    stack.orchestration("Contacts", "hs", "contacts")
    worker = stack.worker("one", concurrency=1)
    first = stack.finished(stack.queue("Contacts"), timeout=120)
    assert first.status == "succeeded", (first.reason, stack.tails())
    stack.cli.ok("connections", "update", "hs", "--secret", "access_token=pat-refused-token")
    second = stack.finished(stack.queue("Contacts"), timeout=120)
    assert second.status == "failed", stack.tails()
    token = stack.sandbox.describe()["hubspot"]["access_token"]
    stack.cli.ok("connections", "update", "hs", "--secret", f"access_token={token}")
    third = stack.finished(stack.queue("Contacts"), timeout=120)
    assert third.status == "succeeded", (third.reason, stack.tails())
    assert "pat-refused-token" not in worker.output()
