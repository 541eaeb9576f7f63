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
