"""The CRM/MAP systems segsync connects to, and where each one's adapter lives.

Plain names only, no imports: the command line offers the systems as choices (and `--help` shows
them) without loading any adapter, vendor SDK or emulator.
"""

from __future__ import annotations

# system -> (module, adapter class, config dataclass). A config field declared with repr=False is
# a secret. The adapters are imported on first use (worker.connector_factory): the vendor SDKs
# take a while to load and most commands need none.
ADAPTERS: dict[str, tuple[str, str, str]] = {
    "salesforce": ("connectors.salesforce", "SalesforceConnector", "SalesforceConfig"),
    "hubspot": ("connectors.hubspot", "HubSpotConnector", "HubSpotConfig"),
    "marketo": ("connectors.marketo", "MarketoConnector", "MarketoConfig"),
    "pardot": ("connectors.pardot", "PardotConnector", "PardotConfig"),
    "eloqua": ("connectors.eloqua", "EloquaConnector", "EloquaConfig"),
}

# Every system by name, in the order commands list them.
SYSTEMS = tuple(ADAPTERS)
