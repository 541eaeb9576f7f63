"""`segsync connections add` arguments for the sandbox emulators, shared by the worker tests."""

from __future__ import annotations

from connectors.sandbox.cluster import Sandbox


def hubspot_connection(sandbox: Sandbox, name: str = "hs") -> list[str]:
    """A HubSpot connection by private-app token."""
    described = sandbox.describe()
    return [
        "connections", "add", name, "--system", "hubspot",
        "--set", f"base_url={described['hubspot']['base_url']}",
        "--set", f"ca_bundle={described['ca_bundle']}",
        "--secret", f"access_token={described['hubspot']['access_token']}",
    ]  # fmt: skip


def salesforce_session_connection(sandbox: Sandbox, name: str = "sf") -> list[str]:
    """A Salesforce connection by an existing session (it cannot log in again)."""
    described = sandbox.describe()
    return [
        "connections", "add", name, "--system", "salesforce", "--set", "auth=session",
        "--set", f"instance_url={described['salesforce']['instance_url']}",
        "--set", f"ca_bundle={described['ca_bundle']}",
        "--secret", f"access_token={described['salesforce']['access_token']}",
    ]  # fmt: skip


def salesforce_password_connection(sandbox: Sandbox, name: str = "sf") -> list[str]:
    """A Salesforce connection by username, password and security token (re-logs in)."""
    described = sandbox.describe()
    salesforce = described["salesforce"]
    return [
        "connections", "add", name, "--system", "salesforce",
        "--set", f"username={salesforce['username']}",
        "--set", f"login_url={salesforce['login_url']}",
        "--set", f"ca_bundle={described['ca_bundle']}",
        "--secret", f"password={salesforce['password']}",
        "--secret", f"security_token={salesforce['security_token']}",
    ]  # fmt: skip


def marketo_connection(sandbox: Sandbox, name: str = "mkto") -> list[str]:
    """A Marketo connection by client credentials."""
    described = sandbox.describe()
    marketo = described["marketo"]
    return [
        "connections", "add", name, "--system", "marketo",
        "--set", f"base_url={marketo['base_url']}",
        "--set", f"client_id={marketo['client_id']}",
        "--set", f"ca_bundle={described['ca_bundle']}",
        "--set", "export_poll_interval=0.05",
        "--secret", f"client_secret={marketo['client_secret']}",
    ]  # fmt: skip


def pardot_connection(sandbox: Sandbox, name: str = "pardot") -> list[str]:
    """A Pardot connection by access token and business unit."""
    described = sandbox.describe()
    pardot = described["pardot"]
    return [
        "connections", "add", name, "--system", "pardot",
        "--set", f"base_url={pardot['base_url']}",
        "--set", f"business_unit_id={pardot['business_unit_id']}",
        "--set", f"ca_bundle={described['ca_bundle']}",
        "--secret", f"access_token={pardot['access_token']}",
    ]  # fmt: skip


def eloqua_connection(sandbox: Sandbox, name: str = "eloqua") -> list[str]:
    """An Eloqua connection by Basic authentication (base URL discovered at login_url)."""
    described = sandbox.describe()
    eloqua = described["eloqua"]
    return [
        "connections", "add", name, "--system", "eloqua",
        "--set", f"login_url={eloqua['login_url']}",
        "--set", f"site={eloqua['site']}",
        "--set", f"username={eloqua['username']}",
        "--set", f"ca_bundle={described['ca_bundle']}",
        # The emulator finishes a sync at once; polling every second would only slow tests.
        "--set", "poll_interval=0.05",
        "--secret", f"password={eloqua['password']}",
    ]  # fmt: skip
