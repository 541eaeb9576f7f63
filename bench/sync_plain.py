"""The plain approach a user would otherwise script: one update call per record, with the
vendor's official Python client, one record after the other.

Each function takes a `PlainJob` and runs in a child process of its own (bench/sync.py spawns
it), so the script does not share an interpreter with the emulators, as segsync's workers do not.
A vendor's script is named by its entry in bench/sync_vendors.py.

- Salesforce: simple-salesforce, `sf.Lead.update(record_id, {field: value})`, with the session id
  the sandbox hands out (simple-salesforce's own login only speaks to *.salesforce.com hosts).
- HubSpot: hubspot-api-client, `client.crm.contacts.basic_api.update(record_id,
  SimplePublicObjectInput(properties={field: value}))`. A 429 is handled as a careful user's
  script does: sleep for Retry-After when HubSpot sends it, else `wait_429` seconds, and send the
  same update again. (The client's urllib3 Retry would not help: it never retries PATCH.)

Marketo, Pardot and Eloqua have no official Python client: the scripts use `requests`, as their
documentation's examples do.

- Marketo: one client-credentials token from `/identity/oauth/token`, then one
  `POST /rest/v1/leads.json` per lead (`action=updateOnly`, `lookupField=id`, one input). Marketo
  answers its limits with HTTP 200: on 606 (100 calls per 20 s) the script sleeps 20 s, on 615
  (10 at once) one second, and sends the same update again.
- Pardot: one `PATCH /api/v5/objects/prospects/{id}` per prospect with the access token and the
  `Pardot-Business-Unit-Id` header; on a 429 (code 66, concurrency) it sleeps one second.
- Eloqua: the base URL from `GET {login_url}/id` once, then one REST 1.0
  `PUT /api/REST/1.0/data/contact/{id}` per contact with the field in `fieldValues`, Basic
  authentication; on a 429 it sleeps one second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PlainJob:
    """What a plain script is given: the emulator's description (its URLs and credentials), the
    CA file, the object and field (as a one-record update names it) and the updates to send."""

    described: dict[str, Any]
    ca_bundle: str
    object_type: str
    field: str
    updates: list[tuple[str, str]]
    wait_429: float  # seconds to sleep after a 429 without Retry-After (HubSpot)
    deadline_seconds: float


@dataclass(frozen=True)
class PlainResult:
    """How the plain script went: its time and the calls it made, as it counted them."""

    records: int
    written: int
    failed: int
    calls: int
    rate_limited: int  # 429 answers (HubSpot)
    seconds: float
    first_error: str | None = None


def plain_salesforce(job: PlainJob) -> PlainResult:
    """Update each record with its own `sf.<Object>.update` call."""
    instance_url = job.described["instance_url"]
    session_id = job.described["access_token"]
    ca_bundle, object_type, field = job.ca_bundle, job.object_type, job.field
    updates, deadline_seconds = job.updates, job.deadline_seconds
    import requests
    from simple_salesforce.api import Salesforce
    from simple_salesforce.exceptions import SalesforceError

    session = requests.Session()
    session.verify = ca_bundle
    session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies must not apply (127.0.0.1 only)
    sf = Salesforce(instance_url=instance_url, session_id=session_id, session=session)
    sobject = getattr(sf, object_type)
    written = failed = calls = 0
    first_error = None
    started = time.perf_counter()
    for record_id, value in updates:
        if time.perf_counter() - started > deadline_seconds:
            first_error = first_error or f"stopped after {deadline_seconds:g} s"
            break
        calls += 1
        try:
            sobject.update(record_id, {field: value or None})
            written += 1
        except SalesforceError as exc:
            failed += 1
            first_error = first_error or f"{exc.status}: {exc.content!r}"[:300]
    seconds = time.perf_counter() - started
    session.close()
    return PlainResult(len(updates), written, failed, calls, 0, seconds, first_error)


def plain_hubspot(job: PlainJob) -> PlainResult:
    """Update each contact with its own `basic_api.update` call, sleeping on 429s."""
    base_url, access_token = job.described["base_url"], job.described["access_token"]
    ca_bundle, field, updates = job.ca_bundle, job.field, job.updates
    wait_429, deadline_seconds = job.wait_429, job.deadline_seconds
    from hubspot import HubSpot  # type: ignore[import-untyped]
    from hubspot.crm.contacts import (  # type: ignore[import-untyped]
        ApiException,
        SimplePublicObjectInput,
    )

    client = HubSpot(access_token=access_token, host=base_url, ssl_ca_cert=ca_bundle)
    api = client.crm.contacts.basic_api
    written = failed = calls = limited = 0
    first_error = None
    started = time.perf_counter()
    for record_id, value in updates:
        while True:
            if time.perf_counter() - started > deadline_seconds:
                seconds = time.perf_counter() - started
                error = f"stopped after {deadline_seconds:g} s"
                return PlainResult(
                    len(updates), written, failed, calls, limited, seconds, first_error or error
                )
            calls += 1
            try:
                api.update(record_id, SimplePublicObjectInput(properties={field: value}))
                written += 1
            except ApiException as exc:
                if exc.status == 429:
                    limited += 1
                    headers = exc.headers or {}
                    retry_after = headers.get("Retry-After")
                    time.sleep(float(retry_after) if retry_after else wait_429)
                    continue
                failed += 1
                first_error = first_error or f"{exc.status}: {exc.body!r}"[:300]
            break
    seconds = time.perf_counter() - started
    return PlainResult(len(updates), written, failed, calls, limited, seconds, first_error)


def plain_marketo(job: PlainJob) -> PlainResult:
    """Update each lead with its own Sync Leads call, sleeping 20 s on 606."""
    base_url = job.described["base_url"]
    client_id, client_secret = job.described["client_id"], job.described["client_secret"]
    ca_bundle, field, updates = job.ca_bundle, job.field, job.updates
    deadline_seconds = job.deadline_seconds
    import requests

    session = requests.Session()
    session.verify = ca_bundle
    session.trust_env = False
    started = time.perf_counter()
    answer = session.get(
        f"{base_url}/identity/oauth/token",
        params={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        },
        timeout=60,
    )
    answer.raise_for_status()
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    written = failed = limited = 0
    calls = 1
    first_error = None
    for record_id, value in updates:
        while True:
            if time.perf_counter() - started > deadline_seconds:
                seconds = time.perf_counter() - started
                error = f"stopped after {deadline_seconds:g} s"
                return PlainResult(
                    len(updates), written, failed, calls, limited, seconds, first_error or error
                )
            calls += 1
            body: dict[str, Any] = {
                "action": "updateOnly",
                "lookupField": "id",
                "input": [{"id": int(record_id), field: value or None}],
            }
            response = session.post(
                f"{base_url}/rest/v1/leads.json", json=body, headers=headers, timeout=60
            )
            result = response.json() if response.status_code == 200 else {}
            if result.get("success") is False:
                codes = [str(e.get("code")) for e in result.get("errors") or []]
                if "606" in codes or "615" in codes:
                    limited += 1
                    time.sleep(20.0 if "606" in codes else 1.0)
                    continue
            items = result.get("result") or []
            if response.status_code == 200 and items and items[0].get("status") == "updated":
                written += 1
            else:
                failed += 1
                first_error = first_error or f"{response.status_code}: {response.text!r}"[:300]
            break
    seconds = time.perf_counter() - started
    session.close()
    return PlainResult(len(updates), written, failed, calls, limited, seconds, first_error)


def plain_pardot(job: PlainJob) -> PlainResult:
    """Update each prospect with its own PATCH."""
    base_url, access_token = job.described["base_url"], job.described["access_token"]
    business_unit_id = job.described["business_unit_id"]
    ca_bundle, field, updates = job.ca_bundle, job.field, job.updates
    deadline_seconds = job.deadline_seconds
    import requests

    session = requests.Session()
    session.verify = ca_bundle
    session.trust_env = False
    session.headers.update(
        {"Authorization": f"Bearer {access_token}", "Pardot-Business-Unit-Id": business_unit_id}
    )
    written = failed = calls = limited = 0
    first_error = None
    started = time.perf_counter()
    for record_id, value in updates:
        while True:
            if time.perf_counter() - started > deadline_seconds:
                seconds = time.perf_counter() - started
                error = f"stopped after {deadline_seconds:g} s"
                return PlainResult(
                    len(updates), written, failed, calls, limited, seconds, first_error or error
                )
            calls += 1
            response = session.patch(
                f"{base_url}/api/v5/objects/prospects/{record_id}",
                json={field: value or None},
                timeout=60,
            )
            if response.status_code == 429:
                limited += 1
                time.sleep(1.0)
                continue
            if response.ok:
                written += 1
            else:
                failed += 1
                first_error = first_error or f"{response.status_code}: {response.text!r}"[:300]
            break
    seconds = time.perf_counter() - started
    session.close()
    return PlainResult(len(updates), written, failed, calls, limited, seconds, first_error)


def plain_eloqua(job: PlainJob) -> PlainResult:
    """Discover the base URL once, then update each contact with its own REST PUT (the job's
    field is the contact field's id, as fieldValues name it)."""
    login_url, site = job.described["login_url"], job.described["site"]
    username, password = job.described["username"], job.described["password"]
    ca_bundle, field_id, updates = job.ca_bundle, job.field, job.updates
    deadline_seconds = job.deadline_seconds
    import requests

    session = requests.Session()
    session.verify = ca_bundle
    session.trust_env = False
    session.auth = (f"{site}\\{username}", password)
    started = time.perf_counter()
    found = session.get(f"{login_url}/id", timeout=60)
    found.raise_for_status()
    base_url = str(found.json()["urls"]["base"]).rstrip("/")
    written = failed = limited = 0
    calls = 1
    first_error = None
    for record_id, value in updates:
        while True:
            if time.perf_counter() - started > deadline_seconds:
                seconds = time.perf_counter() - started
                error = f"stopped after {deadline_seconds:g} s"
                return PlainResult(
                    len(updates), written, failed, calls, limited, seconds, first_error or error
                )
            calls += 1
            body: dict[str, Any] = {
                "type": "Contact",
                "id": record_id,
                "fieldValues": [{"type": "FieldValue", "id": field_id, "value": value or ""}],
            }
            response = session.put(
                f"{base_url}/api/REST/1.0/data/contact/{record_id}", json=body, timeout=60
            )
            if response.status_code == 429:
                limited += 1
                time.sleep(1.0)
                continue
            if response.ok:
                written += 1
            else:
                failed += 1
                first_error = first_error or f"{response.status_code}: {response.text!r}"[:300]
            break
    seconds = time.perf_counter() - started
    session.close()
    return PlainResult(len(updates), written, failed, calls, limited, seconds, first_error)
