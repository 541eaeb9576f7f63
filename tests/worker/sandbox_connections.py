"""`segsync connections add` arguments for the sandbox emulators, shared by the worker tests."""

from __future__ import annotations

from connectors.sandbox.cluster import Sandbox
from worker.sandbox_connections import sandbox_connection


def connection_arguments(sandbox: Sandbox, system: str, name: str) -> list[str]:
    """`connections add NAME` with the settings and secrets worker.sandbox_connections gives."""
    settings, secrets = sandbox_connection(system, sandbox.describe())
    arguments = ["connections", "add", name, "--system", system]
    for key, value in settings.items():
        arguments += ["--set", f"{key}={value}"]
    for key, value in secrets.items():
        arguments += ["--secret", f"{key}={value}"]
    return arguments


def hubspot_connection(sandbox: Sandbox, name: str = "hs") -> list[str]:
    """A HubSpot connection by private-app token."""
    return connection_arguments(sandbox, "hubspot", name)


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
    return connection_arguments(sandbox, "salesforce", name)


def marketo_connection(sandbox: Sandbox, name: str = "mkto") -> list[str]:
    """A Marketo connection by client credentials."""
    return connection_arguments(sandbox, "marketo", name)


def pardot_connection(sandbox: Sandbox, name: str = "pardot") -> list[str]:
    """A Pardot connection by access token and business unit."""
    return connection_arguments(sandbox, "pardot", name)


def eloqua_connection(sandbox: Sandbox, name: str = "eloqua") -> list[str]:
    """An Eloqua connection by Basic authentication (base URL discovered at login_url)."""
    return connection_arguments(sandbox, "eloqua", name)
