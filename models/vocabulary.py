"""The fixed words of segsync's domain that a command offers as choices or defaults.

They live apart from the tables that use them, with no SQLAlchemy import, so that the command line
can build its options (and answer --help) without loading the database layer.
"""

from __future__ import annotations

from connectors.systems import VENDORS

# What a segment can be published for.
USES = ("enrichment", "account_details", "gtm", "api", "sales_intelligence")

# What can reference a GTM segment (and so keep it published), with how a message names each.
REFERENCE_KINDS = {
    "6qa_report": "saved 6QA report",
    "funnel_insights_report": "saved Funnel Insights report",
    "custom_6qa": "custom 6QA",
}

# Where a segment's accounts come from.
SOURCES = ("uploaded_list", "crm_report_sync", "crm_list_sync", "filter")

# What separates the names in an enrichment value unless a field says otherwise.
DEFAULT_DELIMITER = ";"

# Which account column an explicit CRM link refers to, per system that links records to accounts
# (models.matching matches on it; `segsync sandbox start --accounts-csv` writes these columns).
# Each system's column is its registry entry's (connectors.systems).
LINK_COLUMNS = {
    name: vendor.link_column for name, vendor in VENDORS.items() if vendor.link_column is not None
}

# What an API key may do (models.api_keys). A key holds one scope; every scope may read.
API_KEY_SCOPES = ("read", "publish", "trigger")

# What a user of the web app may do (models.users): an admin changes things, a viewer reads.
USER_ROLES = ("admin", "viewer")
