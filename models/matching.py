"""Matching a CRM/MAP record to an account: explicit link, then email domain, then website."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from connectors.systems import VENDORS
from models.accounts import Account
from models.domains import registrable_domain
from models.errors import InputError
from models.vocabulary import LINK_COLUMNS

# Personal mailbox providers: an address there says nothing about the person's company, so it
# never matches an account, even one whose own domain it is.
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "ymail.com",
        "hotmail.com", "hotmail.co.uk", "hotmail.fr", "outlook.com", "live.com", "msn.com",
        "icloud.com", "me.com", "mac.com", "aol.com", "gmx.com", "gmx.de", "gmx.net", "web.de",
        "mail.com", "protonmail.com", "proton.me", "yandex.ru", "yandex.com", "mail.ru",
        "qq.com", "163.com", "126.com", "naver.com", "zoho.com", "fastmail.com", "orange.fr",
        "free.fr", "laposte.net", "t-online.de", "libero.it", "btinternet.com", "comcast.net",
    }
)  # fmt: skip


def salesforce_id_key(record_id: str) -> str:
    """The case-sensitive 15-character form of a Salesforce id (18-character ids add a suffix)."""
    return record_id[:15]


_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id_forms(record_id: str) -> tuple[str, ...]:
    """The ways a stored link to the record `record_id` names can be written: its 15-character
    form and, for a well-formed id, its 18-character form (what an index on the column can find).

    The 18-character form appends, for each 5-character chunk, the letter whose number has bit i
    set where the chunk's i-th character is an upper-case letter (Salesforce's documented
    case-safe id, as `CASESAFEID()` and the API return it).
    """
    key = salesforce_id_key(record_id)
    if len(key) != 15 or not key.isascii() or not key.isalnum():
        return (key,)
    suffix = "".join(
        _SUFFIX_ALPHABET[
            sum(1 << i for i, c in enumerate(key[start : start + 5]) if "A" <= c <= "Z")
        ]
        for start in (0, 5, 10)
    )
    return (key, key + suffix)


@dataclass
class AccountIndex:
    """Lookups from a record's match keys to an account id, built in one pass over accounts."""

    by_link: dict[str, int] = field(default_factory=dict)
    by_domain: dict[str, int] = field(default_factory=dict)
    # Domains more than one account has: matching on them would be a guess.
    ambiguous_domains: set[str] = field(default_factory=set)
    link_key: str = "plain"

    def link(self, linked_id: str) -> int | None:
        """The account an explicit CRM link points at."""
        key = salesforce_id_key(linked_id) if self.link_key == "salesforce" else linked_id
        return self.by_link.get(key)

    def domain(self, domain: str) -> int | None:
        """The one account with this registrable domain."""
        return None if domain in self.ambiguous_domains else self.by_domain.get(domain)

    def add(self, account_id: int, link: str | None, domain: str | None) -> None:
        """Index one account by its CRM link (None: none) and its registrable domain."""
        if link:
            self.by_link[salesforce_id_key(link) if self.link_key == "salesforce" else link] = (
                account_id
            )
        if domain:
            if domain in self.by_domain and self.by_domain[domain] != account_id:
                self.ambiguous_domains.add(domain)
            self.by_domain.setdefault(domain, account_id)


def build_account_index(connection: Connection, system: str) -> AccountIndex:
    """Index every account by its CRM link for `system` and by its registrable domain."""
    column_name = LINK_COLUMNS.get(system)
    link_column = getattr(Account, column_name) if column_name else Account.id
    # Salesforce ids (Pardot's links are too) compare on their case-sensitive 15-character form.
    vendor = VENDORS.get(system)
    salesforce_ids = vendor is not None and vendor.links_are_salesforce_ids
    index = AccountIndex(link_key="salesforce" if salesforce_ids else "plain")
    rows = connection.execution_options(stream_results=True, yield_per=20_000).execute(
        select(Account.id, link_column, Account.domain)
    )
    for account_id, link, domain in rows:
        index.add(account_id, str(link) if column_name and link else None, domain)
    return index


def domain_or_none(text: str | None) -> str | None:
    """The registrable domain of a website, domain or address, or None when it holds none."""
    if not text:
        return None
    try:
        return registrable_domain(text)
    except InputError:
        return None


@dataclass(frozen=True)
class MatchKeys:
    """What matches a record to an account, parsed once: what a record's state keeps, so a later
    run can match it again (after accounts or domains changed) without reading it."""

    link: str | None
    # Registrable domains; a free-mail address's domain is kept as None (it never matches).
    email_domain: str | None
    website_domain: str | None


def _company_domain(text: str | None) -> str | None:
    domain = domain_or_none(text)
    return None if domain in FREE_MAIL_DOMAINS else domain


def record_keys(
    *, linked_account_id: str | None, email: str | None, website: str | None
) -> MatchKeys:
    """A record's match keys: its CRM link, its email's domain, its website's domain."""
    email_domain = _company_domain(email.rsplit("@", 1)[1]) if email and "@" in email else None
    return MatchKeys(linked_account_id or None, email_domain, _company_domain(website))


def match_keys(index: AccountIndex, keys: MatchKeys) -> int | None:
    """The account of a record with `keys`: explicit link, then email domain, then website."""
    if keys.link:
        linked = index.link(keys.link)
        if linked is not None:
            return linked
    if keys.email_domain:
        matched = index.domain(keys.email_domain)
        if matched is not None:
            return matched
    if keys.website_domain:
        return index.domain(keys.website_domain)
    return None


def match_account(
    index: AccountIndex,
    *,
    linked_account_id: str | None,
    email: str | None,
    website: str | None,
) -> int | None:
    """The account a record belongs to: explicit link, then email domain, then website."""
    keys = record_keys(linked_account_id=linked_account_id, email=email, website=website)
    return match_keys(index, keys)
