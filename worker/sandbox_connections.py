"""The connection settings and secrets for each sandbox emulator, as `segsync sandbox start`
describes them: one place for the demo, the benchmarks and the tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Seconds between status polls of a Marketo lead export, a Pardot import and an Eloqua import
# sync. The adapters' defaults (60 s, 5 s and 1 s) suit real instances, which take that long to
# process one; the emulators finish at once, so a run would spend its time waiting.
SANDBOX_POLL_SECONDS = "0.05"


def sandbox_connection(
    system: str, described: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """(settings, secrets) of a connection to `system`'s emulator.

    `described` is the sandbox's whole description (its first-line JSON): the system's entry and
    `ca_bundle`. Salesforce logs in by password, HubSpot by private-app token, Marketo by client
    credentials, Pardot by access token and business unit, Eloqua by Basic authentication.
    """
    entry, ca_bundle = described[system], str(described["ca_bundle"])
    if system == "salesforce":
        settings = {
            "auth": "password",
            "login_url": entry["login_url"],
            "username": entry["username"],
        }
        secrets = {"password": entry["password"], "security_token": entry["security_token"]}
    elif system == "hubspot":
        settings = {"base_url": entry["base_url"]}
        secrets = {"access_token": entry["access_token"]}
    elif system == "marketo":
        settings = {
            "base_url": entry["base_url"],
            "client_id": entry["client_id"],
            "export_poll_interval": SANDBOX_POLL_SECONDS,
        }
        secrets = {"client_secret": entry["client_secret"]}
    elif system == "pardot":
        settings = {
            "base_url": entry["base_url"],
            "business_unit_id": entry["business_unit_id"],
            "import_poll_interval": SANDBOX_POLL_SECONDS,
        }
        secrets = {"access_token": entry["access_token"]}
    elif system == "eloqua":
        settings = {
            "login_url": entry["login_url"],
            "site": entry["site"],
            "username": entry["username"],
            "poll_interval": SANDBOX_POLL_SECONDS,
        }
        secrets = {"password": entry["password"]}
    else:
        raise ValueError(f"the sandbox has no emulator of {system!r}")
    return settings | {"ca_bundle": ca_bundle}, secrets
