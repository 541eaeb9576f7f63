"""The batched script a competent user would write instead of segsync: read every record each
time (whole pages at the vendor's page size), compare each record's field with the value it must
hold, and write the changes in batches of the vendor's maximum, one call after the other.

It is given the value each record must hold (the benchmark's expected values), so it is not
charged for matching records to accounts or computing the values, which segsync's times include.
It keeps no state: every run reads everything again. Each function takes a `BatchedJob` and runs
in a child process of its own (bench/sync.py spawns it), like the plain scripts.

- Salesforce: simple-salesforce, `sf.query_all_iter("SELECT Id, <field> FROM <object>")` (SOQL
  pages of 2,000 through nextRecordsUrl), then `PATCH composite/sobjects` (sObject Collections,
  allOrNone false) 200 records a call through `sf.restful`.
- HubSpot: hubspot-api-client, `crm.contacts.basic_api.get_page(limit=100, properties=[field])`
  page by page, then `crm.contacts.batch_api.update` 100 a call; on a 429 it sleeps Retry-After
  (else `wait_429` s) and sends the same call again.
- Marketo (requests; no official client): a client-credentials token, then `GET
  /rest/v1/leads.json?filterType=id` 300 ids a call (Marketo has no "list every lead" call
  short of a bulk extract; the script knows the ids), then `POST /rest/v1/leads.json`
  (updateOnly, lookupField id) 300 leads a call; it sleeps 20 s on 606 and 1 s on 615.
- Pardot (requests): `GET /api/v5/objects/prospects?fields=id,<field>&limit=1000` through
  nextPageUrl, then one `PATCH /api/v5/objects/prospects/{id}` per prospect: API v5 has no batch
  update, and the Import API (CSV, asynchronous) is not what a hand-written script reaches for
  first; it sleeps 1 s on a 429 (code 66).
- Eloqua (requests): the base URL from `/id`, `GET /api/REST/1.0/data/contacts?depth=complete`
  pages of 1,000, then the Bulk API 2.0 contact import as segsync writes (one import definition
  keyed by Contact.Id, then per 5,000 rows: upload, start the sync when the upload did not, poll
  the sync until it ends): REST 1.0 updates one contact per call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")

# Records one write call takes at each vendor's maximum (Pardot: one PATCH per prospect).
SALESFORCE_BATCH = 200
HUBSPOT_BATCH = 100
MARKETO_BATCH = 300
ELOQUA_IMPORT_ROWS = 5000


@dataclass(frozen=True)
class BatchedJob:
    """What the batched script is given: the emulator's URLs and credentials, the CA file, the
    object and field (`field` as the vendor's API names it, `field_id` as a one-record update
    names it: Eloqua's field id) and each record's value."""

    described: dict[str, Any]
    ca_bundle: str
    object_type: str
    field: str
    field_id: str
    expected: dict[str, str]  # record id -> the value its field must hold ("" empty)
    wait_429: float
    deadline_seconds: float


@dataclass(frozen=True)
class BatchedResult:
    """How one run of the batched script went, as it counted."""

    read: int
    written: int
    failed: int
    calls: int
    rate_limited: int
    seconds: float
    first_error: str | None = None


class _Counter:
    """Calls, refusals waited out, written and failed records, and the first error."""

    def __init__(self, deadline_seconds: float) -> None:
        self.started = time.perf_counter()
        self.deadline = self.started + deadline_seconds
        self.calls = self.limited = self.written = self.failed = 0
        self.first_error: str | None = None

    def check_deadline(self) -> None:
        if time.perf_counter() > self.deadline:
            raise TimeoutError("stopped at the deadline")

    def refused(self, count: int, error: str) -> None:
        self.failed += count
        self.first_error = self.first_error or error[:300]

    def result(self, read: int) -> BatchedResult:
        seconds = time.perf_counter() - self.started
        return BatchedResult(
            read,
            self.written,
            self.failed,
            self.calls,
            self.limited,
            seconds,
            self.first_error,
        )


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _changes(job: BatchedJob, current: dict[str, str]) -> list[tuple[str, str]]:
    """(id, value) of every record read whose field differs from its value, in id order read."""
    return [
        (record_id, job.expected[record_id])
        for record_id, value in current.items()
        if record_id in job.expected and value != job.expected[record_id]
    ]


def _session(job: BatchedJob) -> Any:
    import requests

    session = requests.Session()
    session.verify = job.ca_bundle
    session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies must not apply (127.0.0.1 only)
    return session


def batched_salesforce(job: BatchedJob) -> BatchedResult:
    """SOQL read of every record, composite/sobjects updates of 200."""
    from simple_salesforce.api import Salesforce

    session = _session(job)
    sf = Salesforce(
        instance_url=job.described["instance_url"],
        session_id=job.described["access_token"],
        session=session,
    )
    count = _Counter(job.deadline_seconds)
    current: dict[str, str] = {}
    rows = sf.query_all_iter(f"SELECT Id, {job.field} FROM {job.object_type}")
    for row in rows:
        current[str(row["Id"])] = str(row.get(job.field) or "")
    # query_all_iter fetches one page per call: 2,000 rows each.
    count.calls += max(1, -(-len(current) // 2000))
    for batch in _chunks(_changes(job, current), SALESFORCE_BATCH):
        count.check_deadline()
        body = {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": job.object_type}, "id": i, job.field: v or None}
                for i, v in batch
            ],
        }
        count.calls += 1
        answer = sf.restful("composite/sobjects", method="PATCH", json=body)
        for item in answer or []:
            if item.get("success"):
                count.written += 1
            else:
                count.refused(1, json.dumps(item.get("errors")))
    session.close()
    return count.result(len(current))


def batched_hubspot(job: BatchedJob) -> BatchedResult:
    """get_page reads of 100, batch_api.update of 100, sleeping on 429s."""
    from hubspot import HubSpot  # type: ignore[import-untyped]
    from hubspot.crm.contacts import (  # type: ignore[import-untyped]
        ApiException,
        BatchInputSimplePublicObjectBatchInput,
        SimplePublicObjectBatchInput,
    )

    client = HubSpot(
        access_token=job.described["access_token"],
        host=job.described["base_url"],
        ssl_ca_cert=job.ca_bundle,
    )
    api = client.crm.contacts
    count = _Counter(job.deadline_seconds)

    def call(send: Callable[[], T]) -> T:
        while True:
            count.check_deadline()
            count.calls += 1
            try:
                return send()
            except ApiException as exc:
                if exc.status != 429:
                    raise
                count.limited += 1
                retry_after = (exc.headers or {}).get("Retry-After")
                time.sleep(float(retry_after) if retry_after else job.wait_429)

    current: dict[str, str] = {}
    after: str | None = None
    while True:
        page = call(partial(api.basic_api.get_page, limit=100, after=after, properties=[job.field]))
        for item in page.results or []:
            current[str(item.id)] = str((item.properties or {}).get(job.field) or "")
        following = page.paging.next if page.paging else None
        if following is None or not following.after:
            break
        after = str(following.after)
    for batch in _chunks(_changes(job, current), HUBSPOT_BATCH):
        inputs = [SimplePublicObjectBatchInput(id=i, properties={job.field: v}) for i, v in batch]
        body = BatchInputSimplePublicObjectBatchInput(inputs=inputs)
        try:
            answer = call(partial(api.batch_api.update, body))
        except ApiException as exc:
            count.refused(len(batch), f"{exc.status}: {exc.body!r}")
            continue
        count.written += len(answer.results or [])
    return count.result(len(current))


def batched_marketo(job: BatchedJob) -> BatchedResult:
    """Leads read 300 ids a call, Sync Leads (updateOnly) 300 a call, sleeping on 606/615."""
    base_url = job.described["base_url"]
    session = _session(job)
    count = _Counter(job.deadline_seconds)
    count.calls += 1
    answer = session.get(
        f"{base_url}/identity/oauth/token",
        params={
            "grant_type": "client_credentials",
            "client_id": job.described["client_id"],
            "client_secret": job.described["client_secret"],
        },
        timeout=60,
    )
    answer.raise_for_status()
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def call(method: str, **kwargs: Any) -> dict[str, Any]:
        while True:
            count.check_deadline()
            count.calls += 1
            response = session.request(
                method, f"{base_url}/rest/v1/leads.json", headers=headers, timeout=60, **kwargs
            )
            result: dict[str, Any] = response.json() if response.status_code == 200 else {}
            codes = [str(e.get("code")) for e in result.get("errors") or []]
            if "606" in codes or "615" in codes:
                count.limited += 1
                time.sleep(20.0 if "606" in codes else 1.0)
                continue
            if result.get("success") is not True:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            return result

    current: dict[str, str] = {}
    for ids in _chunks(list(job.expected), MARKETO_BATCH):
        params = {"filterType": "id", "filterValues": ",".join(ids), "fields": f"id,{job.field}"}
        for lead in call("GET", params=params).get("result") or []:
            current[str(lead["id"])] = str(lead.get(job.field) or "")
    for batch in _chunks(_changes(job, current), MARKETO_BATCH):
        body = {
            "action": "updateOnly",
            "lookupField": "id",
            "input": [{"id": int(i), job.field: v or None} for i, v in batch],
        }
        for item in call("POST", json=body).get("result") or []:
            if item.get("status") == "updated":
                count.written += 1
            else:
                count.refused(1, json.dumps(item))
    session.close()
    return count.result(len(current))


def batched_pardot(job: BatchedJob) -> BatchedResult:
    """Prospects read 1,000 a page, one PATCH per changed prospect (v5 has no batch update)."""
    base_url = job.described["base_url"]
    session = _session(job)
    session.headers.update(
        {
            "Authorization": f"Bearer {job.described['access_token']}",
            "Pardot-Business-Unit-Id": job.described["business_unit_id"],
        }
    )
    count = _Counter(job.deadline_seconds)

    def call(method: str, url: str, **kwargs: Any) -> Any:
        while True:
            count.check_deadline()
            count.calls += 1
            response = session.request(method, url, timeout=60, **kwargs)
            if response.status_code == 429:
                count.limited += 1
                time.sleep(1.0)
                continue
            return response

    current: dict[str, str] = {}
    url: str | None = f"{base_url}/api/v5/objects/prospects"
    params: dict[str, Any] | None = {
        "fields": f"id,{job.field}",
        "limit": 1000,
        "orderBy": "id ASC",
    }
    while url:
        response = call("GET", url, params=params)
        response.raise_for_status()
        page = response.json()
        for item in page.get("values") or []:
            current[str(item["id"])] = str(item.get(job.field) or "")
        url, params = page.get("nextPageUrl"), None
    for record_id, value in _changes(job, current):
        response = call(
            "PATCH",
            f"{base_url}/api/v5/objects/prospects/{record_id}",
            json={job.field: value or None},
        )
        if response.ok:
            count.written += 1
        else:
            count.refused(1, f"{response.status_code}: {response.text!r}")
    session.close()
    return count.result(len(current))


def batched_eloqua(job: BatchedJob) -> BatchedResult:
    """REST pages of 1,000 contacts, then Bulk API contact imports of 5,000 rows."""
    session = _session(job)
    session.auth = (
        f"{job.described['site']}\\{job.described['username']}",
        job.described["password"],
    )
    count = _Counter(job.deadline_seconds)

    def call(method: str, url: str, **kwargs: Any) -> Any:
        while True:
            count.check_deadline()
            count.calls += 1
            response = session.request(method, url, timeout=60, **kwargs)
            if response.status_code == 429:
                count.limited += 1
                time.sleep(1.0)
                continue
            response.raise_for_status()
            return response.json() if response.content else {}

    found = call("GET", f"{job.described['login_url']}/id")
    base_url = str(found["urls"]["base"]).rstrip("/")
    current: dict[str, str] = {}
    page = 1
    while True:
        answer = call(
            "GET",
            f"{base_url}/api/REST/1.0/data/contacts",
            params={"depth": "complete", "count": 1000, "page": page},
        )
        elements = answer.get("elements") or []
        for element in elements:
            values = {str(v.get("id")): v.get("value") for v in element.get("fieldValues") or []}
            current[str(element["id"])] = str(values.get(job.field_id) or "")
        if not elements or page * 1000 >= int(answer.get("total") or 0):
            break
        page += 1
    changes = _changes(job, current)
    if changes:
        bulk = f"{base_url}/api/bulk/2.0"
        definition = call(
            "POST",
            f"{bulk}/contacts/imports",
            json={
                "name": "batched script import",
                "fields": {
                    "ContactId": "{{Contact.Id}}",
                    "Value": f"{{{{Contact.Field({job.field})}}}}",
                },
                "identifierFieldName": "ContactId",
                "isSyncTriggeredOnImport": True,
                "updateRule": "always",
            },
        )
        for batch in _chunks(changes, ELOQUA_IMPORT_ROWS):
            rows = [{"ContactId": i, "Value": v} for i, v in batch]
            sync = call("POST", f"{bulk}{definition['uri']}/data", json=rows)
            if not sync.get("uri"):
                sync = call("POST", f"{bulk}/syncs", json={"syncedInstanceUri": definition["uri"]})
            while True:
                status = call("GET", f"{bulk}{sync['uri']}").get("status")
                if status in ("success", "warning", "error"):
                    break
                time.sleep(0.05)  # as segsync's connection polls the emulator's syncs
            if status == "success":
                count.written += len(batch)
            else:
                count.refused(len(batch), f"sync {sync['uri']} ended {status}")
    session.close()
    return count.result(len(current))
