"""Registrable-domain normalisation with the Public Suffix List bundled offline."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

import tldextract

from models.errors import InputError

# Hosts are letters, digits, hyphens and dots (unicode letters allowed for IDNs).
_HOST_RE = re.compile(r"^[\w-]+(\.[\w-]+)+$")


@lru_cache(maxsize=1)
def _extractor() -> tldextract.TLDExtract:
    # suffix_list_urls=() keeps tldextract on its bundled snapshot: never a network fetch.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=65536)
def registrable_domain(value: str) -> str:
    """`https://www.Shop.Acme.co.uk/x` -> `acme.co.uk`; an email's domain part works too.

    Raises InputError when the value holds no registrable domain (a bare suffix, an IP, junk).
    """
    text = value.strip().lower()
    if "@" in text and "://" not in text:
        text = text.rsplit("@", 1)[1]
    if "://" not in text:
        text = "http://" + text
    try:
        host = urlsplit(text).hostname or ""
    except ValueError as exc:
        raise InputError(f"{value!r} is not a domain or website: {exc}") from None
    host = host.rstrip(".")
    if not _HOST_RE.match(host):
        raise InputError(f"{value!r} is not a domain or website")
    domain = _extractor()(host).top_domain_under_public_suffix
    if not domain:
        raise InputError(f"{value!r} has no registrable domain")
    return str(domain)
