"""The CRM/MAP systems segsync connects to: one registry entry per vendor that everything reads.

An entry names the vendor's adapter and config, its short-window API limits, the account column
its explicit links name, its sandbox emulator and how a connection to that emulator is made (the
adapter, config and emulator by the vendor's title: `Vendor.by_title`). The
command line, the connector factory, the rate limiter, the sandbox, the demo, account matching,
the contract tests and the benchmarks all read it, so a vendor is listed here and nowhere else.

Plain data, no imports beyond the standard library: the command line offers the systems as choices
(and `--help` shows them) without loading any adapter, vendor SDK, Redis client or emulator; the
adapter and the emulator are named by module and class and imported on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Seconds between status polls of a Marketo lead export, a Pardot import and an Eloqua import
# sync. The adapters' defaults (60 s, 5 s and 1 s) suit real instances, which take that long to
# process one; the emulators finish at once, so a run would spend its time waiting.
SANDBOX_POLL_SECONDS = "0.05"


@dataclass(frozen=True)
class RateLimit:
    """At most `calls` calls in any sliding window of `per_seconds` seconds."""

    calls: int
    per_seconds: float

    def __post_init__(self) -> None:
        if self.calls < 1 or not self.per_seconds > 0:
            raise ValueError(f"invalid rate limit: {self.calls} calls per {self.per_seconds} s")


@dataclass(frozen=True)
class VendorLimits:
    """One vendor account's short-term limits: a call rate and a cap on calls in flight."""

    rate: RateLimit | None
    max_concurrent: int | None


@dataclass(frozen=True)
class SandboxConnection:
    """How a connection to the system's emulator is made from the emulator's description."""

    # Setting names, in order: each one's value is `given`'s, else the description's.
    settings: tuple[str, ...]
    secrets: tuple[str, ...]
    given: Mapping[str, str] = field(default_factory=dict)

    def settings_and_secrets(
        self, entry: Mapping[str, Any]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(settings, secrets) from the system's entry of the sandbox's description (`segsync
        sandbox start`'s first line); the caller adds `ca_bundle`."""
        settings = {
            key: self.given[key] if key in self.given else entry[key] for key in self.settings
        }
        return settings, {key: entry[key] for key in self.secrets}


@dataclass(frozen=True)
class AccountLinks:
    """The account column an explicit link from a system's records names.

    models.matching matches on it; `segsync sandbox start --accounts-csv` writes it.
    """

    column: str
    # Whether the links are Salesforce ids (compared on their case-sensitive 15-character form).
    salesforce_ids: bool = False


@dataclass(frozen=True)
class Vendor:
    """Everything segsync keeps about one CRM/MAP system, by which the rest finds its parts."""

    # The system's name in commands, stored connections and rate-limit keys.
    name: str
    # How messages write it.
    title: str
    # The adapter's module, its Connector class and its config dataclass (imported on first use
    # by worker.connector_factory). A config field declared with repr=False is a secret.
    module: str
    adapter: str
    config: str
    limits: VendorLimits
    # The emulator class, "module:Class", taking (records=, latency=); imported on first use.
    emulator: str
    sandbox: SandboxConnection
    # None: this system's records name no account.
    links: AccountLinks | None = None

    @classmethod
    def by_title(
        cls,
        title: str,
        limits: VendorLimits,
        sandbox: SandboxConnection,
        links: AccountLinks | None = None,
    ) -> Vendor:
        """The vendor whose name and parts follow from its title, as every vendor's here do.

        Its name is the title in lower case; its adapter is the module connectors.<name> with
        the classes <Title>Connector and <Title>Config, its emulator connectors.sandbox.<name>'s
        <Title>Emulator.
        """
        name = title.lower()
        return cls(
            name=name,
            title=title,
            module=f"connectors.{name}",
            adapter=f"{title}Connector",
            config=f"{title}Config",
            limits=limits,
            emulator=f"connectors.sandbox.{name}:{title}Emulator",
            sandbox=sandbox,
            links=links,
        )

    @property
    def link_column(self) -> str | None:
        """The account column this system's explicit links name, or None: no links."""
        return self.links.column if self.links else None

    @property
    def links_are_salesforce_ids(self) -> bool:
        """Whether this system's links are Salesforce ids."""
        return self.links is not None and self.links.salesforce_ids


SALESFORCE = Vendor.by_title(
    title="Salesforce",
    # No short-window rate; the daily allocation comes back in Sforce-Limit-Info. Production
    # and sandbox orgs allow 25 concurrent long-running (20 s or longer) requests, Developer
    # Edition 5; shorter ones are not capped, so capping every call at 25 is merely cautious.
    # developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/
    #   salesforce-app-limits-platform-api.html ("Concurrent API Request Limits")
    limits=VendorLimits(rate=None, max_concurrent=25),
    # Salesforce logs in by password (the emulator is its own login server).
    sandbox=SandboxConnection(
        settings=("auth", "login_url", "username"),
        secrets=("password", "security_token"),
        given={"auth": "password"},
    ),
    links=AccountLinks("salesforce_account_id", salesforce_ids=True),
)

HUBSPOT = Vendor.by_title(
    title="HubSpot",
    # 100 per 10 s per private app on Free/Starter and for OAuth apps; Professional and
    # Enterprise private apps get 190, the API Limit Increase pack 200: pass
    # `rate=RateLimit(190, 10.0)` to vendor_limits() for those accounts.
    # developers.hubspot.com/docs/apps/legacy-apps/private-apps/overview, .../apisbytier
    limits=VendorLimits(rate=RateLimit(100, 10.0), max_concurrent=None),
    # HubSpot by private-app token.
    sandbox=SandboxConnection(settings=("base_url",), secrets=("access_token",)),
    links=AccountLinks("hubspot_company_id"),
)

MARKETO = Vendor.by_title(
    title="Marketo",
    # 100 calls per 20 s per instance (error 606) and 10 concurrent calls (error 615).
    # experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/
    #   marketo-integration-best-practices ("API Limits")
    limits=VendorLimits(rate=RateLimit(100, 20.0), max_concurrent=10),
    # Marketo by client credentials.
    sandbox=SandboxConnection(
        settings=("base_url", "client_id", "export_poll_interval"),
        secrets=("client_secret",),
        given={"export_poll_interval": SANDBOX_POLL_SECONDS},
    ),
)

PARDOT = Vendor.by_title(
    title="Pardot",
    # Up to five concurrent requests (error 66); otherwise only a daily cap by edition (122).
    # help.salesforce.com article sf.pardot_admin_api_using ("Account Engagement API Limits")
    limits=VendorLimits(rate=None, max_concurrent=5),
    # Pardot by access token and business unit.
    sandbox=SandboxConnection(
        settings=("base_url", "business_unit_id", "import_poll_interval"),
        secrets=("access_token",),
        given={"import_poll_interval": SANDBOX_POLL_SECONDS},
    ),
    # Pardot prospects carry the Salesforce account id of their synced account.
    links=AccountLinks("salesforce_account_id", salesforce_ids=True),
)

ELOQUA = Vendor.by_title(
    title="Eloqua",
    # Oracle publishes no numeric REST rate, only 429 (REST API "HTTP status codes"). Its Bulk
    # API soft limits (2,000 import and 2,000 export syncs an hour, OMCAB "Bulk API limits")
    # count syncs, not calls, and one import sync per batch stays far below them.
    limits=VendorLimits(rate=None, max_concurrent=None),
    # Eloqua by Basic authentication.
    sandbox=SandboxConnection(
        settings=("login_url", "site", "username", "poll_interval"),
        secrets=("password",),
        given={"poll_interval": SANDBOX_POLL_SECONDS},
    ),
)

# Every system by name, in the order commands list them: the one list of systems.
VENDORS: Mapping[str, Vendor] = MappingProxyType(
    {vendor.name: vendor for vendor in (SALESFORCE, HUBSPOT, MARKETO, PARDOT, ELOQUA)}
)
SYSTEMS = tuple(VENDORS)

# system -> (module, adapter class, config dataclass), as the registry names them.
ADAPTERS: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {vendor.name: (vendor.module, vendor.adapter, vendor.config) for vendor in VENDORS.values()}
)
