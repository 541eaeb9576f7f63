"""Marketo adapter: leads through the REST API, with `requests` (no SDK).

Marketo reports nearly every failure with HTTP 200 and `{"success": false, "errors": [...]}`;
a sync's per-lead outcomes are each result's `status` and `reasons`, in input order.
experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/ (error-codes, authentication,
lead-database/leads, paging-tokens, activities).

Reading every lead: Marketo has no "list all leads" call, and none answers the highest lead id
or a count of leads (Get Leads by Filter Type only matches given values of a searchable field,
at most 1,000 leads; Describe, the usage stats and the paging tokens say nothing of ids). Lead
ids are assigned in sequence, so `read_records` asks Get Leads by Filter Type for consecutive id
windows of 300 (`filterType=id`, one call each). Deleted leads leave gaps: an empty window is not
the end. Then one look at the "New Lead" activities (type 12, which Marketo keeps for the life of
the lead, and deletes with it) created after the newest lead read so far settles it: a paging
token for that lead's createdAt, then one page of Get Lead Activities, whose lowest lead id past
the window is where reading goes on (jumping the whole gap), and none means every lead was read.
A read of N leads thus costs ceil(N/300) windows, the one empty window past the last lead and two
calls for that look, plus one more empty window and two calls per gap of deleted leads; after an
export that reached the present, the first empty window is the end, with no look at all. (The
look used to page every New Lead activity of the last day to find the highest id: as many pages
as leads created that day, 300 a page, on top of the windows.)

What the look cannot see: a lead created in the very second of the newest lead read (or stamped
earlier), lying past 300 or more ids deleted since, all created in that same second, since the
look starts after that second: starting within it would page every lead created in it, which is
every lead of an instance loaded at once. Such a lead was created after any earlier incremental
read's moment, which read it then (a New Lead activity).

Reading what changed since a moment: Get Lead Changes from a paging token for that moment lists
New Lead activities and Change Data Value activities of the fields the read returns, page by
page; their leads are read by id, 300 a call, each once.

Large sets go through the Bulk Lead Extract instead (connectors/marketo_extract.py), whose
filter is a createdAt range of at most 31 days. Since ids follow creation time, a window's
createdAt values tell how densely leads were created from there on: when 30 days at that rate
would hold `export_threshold` leads or more, one probe window that many ids ahead confirms they
exist, and a single export then reads every lead created in the next 30 days (from the window's
newest createdAt, less an hour for clock skew) in about four calls, where id windows would take
one call per 300. Reading goes on by id windows after the export's newest id. Without a
usable export (queue or daily allocation full, job failed or slower than `export_timeout`) the
read simply continues by id windows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import requests

from connectors.base import Connector, FieldInfo, Record, Update, WriteResult
from connectors.errors import ConnectorError, DailyQuotaError, FatalError, RetryableError
from connectors.http import AccessToken, VendorHttp, json_object, redact, require_web_url
from connectors.marketo_extract import MAX_SPAN, ExportUnavailable, LeadExporter, export_rows

log = logging.getLogger(__name__)

# Marketo's default daily API quota per subscription; the API does not report the quota itself
# (it is shown in Admin > Web Services), so a subscription with another one configures it.
DEFAULT_DAILY_QUOTA = 50_000
# Get Leads by Filter Type takes up to 300 filterValues; Sync Leads up to 300 inputs.
BATCH_SIZE = 300
# Renew the access token this long before its expires_in runs out.
_RENEW_MARGIN = 60.0
_NEW_LEAD_ACTIVITY = "12"
# Before any Marketo lead: where the look for leads starts when no lead was read yet.
_BEFORE_ANY_LEAD = dt.datetime(2006, 1, 1, tzinfo=dt.UTC)
# Activity dates are whole seconds and a paging token returns what came *after* its moment: a
# token for one second before the watermark's own second also returns a change made later in
# that second (read again, at worst: harmless).
_ACTIVITY_RESOLUTION = dt.timedelta(seconds=1)
# 606: at most 100 calls in any 20 s; 615: at most 10 calls in flight, which free quickly.
_RATE_RETRY_AFTER = 20.0
_CONCURRENCY_RETRY_AFTER = 1.0
_TOKEN_CODES = frozenset({"600", "601", "602"})
# Response-level codes the documentation calls transient (timeouts, unavailable, system error,
# gateway, subscription briefly unreachable, transient error, lock wait).
_TRANSIENT_CODES = frozenset({"500", "502", "604", "608", "611", "614", "713", "719"})
_WRITTEN = frozenset({"updated", "created"})
# An export starts this long before the newest createdAt of the window that led to it, so a lead
# stamped a little earlier than one with a lower id is still in it.
_EXPORT_SKEW = dt.timedelta(hours=1)


@dataclass(frozen=True)
class MarketoConfig:
    """One Marketo instance's custom service (LaunchPoint > View Details) and REST root."""

    client_id: str
    client_secret: str = field(repr=False)
    # The REST root, e.g. https://123-ABC-456.mktorest.com: /rest/... and /identity/... live
    # under it. The "REST API Endpoint" or "Identity" URL from Admin > Web Services also works.
    base_url: str
    # CA file that verifies base_url's certificate (the sandbox's); None trusts the system CAs.
    ca_bundle: str | None = None
    # Seconds to wait for an answer (after connecting).
    timeout: float = 60.0
    daily_quota: int = DEFAULT_DAILY_QUOTA
    # Read through a Bulk Lead Extract when 30 days of leads at the rate they were created hold
    # at least this many; 0: never export. An export costs about 4 calls where id windows cost
    # one per 300 leads, but it waits at least a status poll and often minutes in Marketo's
    # queue: at 50,000 it saves 160 calls or more for each such wait, and a long history at a
    # steady pace is still read by id windows within the planning task's time limit.
    export_threshold: int = 50_000
    # Seconds between export status polls: Marketo updates a job's status once a minute.
    export_poll_interval: float = 60.0
    # An export not done after this many seconds is cancelled and the read goes on by id windows.
    export_timeout: float = 600.0

    def __post_init__(self) -> None:
        if not self.client_id or not self.client_secret:
            raise FatalError("a marketo connection needs client_id and client_secret")
        require_web_url("marketo", "base_url", self.base_url)
        if not self.timeout > 0 or self.daily_quota < 1:
            raise FatalError("marketo timeout and daily_quota must be positive")
        if self.export_threshold < 0 or not self.export_poll_interval >= 0:
            raise FatalError("marketo export_threshold and export_poll_interval cannot be negative")
        if not self.export_timeout > 0:
            raise FatalError("marketo export_timeout must be positive")

    @property
    def root(self) -> str:
        """base_url without a trailing /rest or /identity (or slash)."""
        root = self.base_url.rstrip("/")
        for suffix in ("/rest", "/identity"):
            if root.endswith(suffix):
                return root[: -len(suffix)]
        return root


class MarketoConnector(Connector):
    """The leads of one Marketo instance, 300 per call."""

    system = "marketo"
    objects = ("leads",)
    batch_size = BATCH_SIZE

    def __init__(self, config: MarketoConfig) -> None:
        super().__init__()
        self._config = config
        self._root = config.root
        self._token = AccessToken(self._identity)
        self._http = VendorHttp(self, ca_bundle=config.ca_bundle, timeout=config.timeout)
        self._exporter = LeadExporter(
            self._api,
            self._download,
            poll_interval=config.export_poll_interval,
            timeout=config.export_timeout,
        )

    def __repr__(self) -> str:
        return f"MarketoConnector(base_url={self._root!r}, client_id={self._config.client_id!r})"

    # Get Lead Changes lists what changed since a paging token's moment (see _read_modified).
    reads_modified = True

    # ---- the interface ----------------------------------------------------------------------

    def check_credentials(self) -> None:
        """Get an access token, then read today's API usage with it (the quota)."""
        self._token.value()
        self._refresh_quota(strict=True)

    def _describe_field(self, object_type: str, field: str) -> FieldInfo:
        """The lead field's type, length and read-only flag from Describe Lead."""
        answer = self._api("GET", "/rest/v1/leads/describe.json", what="describing leads")
        described = [item for item in answer.get("result") or [] if isinstance(item, dict)]
        # Only fields with a `rest` member can be used through the REST API.
        usable = [(item, item["rest"]) for item in described if isinstance(item.get("rest"), dict)]
        found = next((pair for pair in usable if pair[1].get("name") == field), None) or next(
            (pair for pair in usable if str(pair[1].get("name", "")).lower() == field.lower()),
            None,
        )
        if found is None:
            raise FatalError(f"field {field} not found on {object_type}", code="1006")
        item, rest = found
        length = item.get("length")
        return FieldInfo(
            object_type=object_type,
            name=str(rest["name"]),
            type=str(item.get("dataType") or "string"),
            max_length=int(length) if isinstance(length, int) else None,
            writable=not rest.get("readOnly", False),
            label=item.get("displayName"),
        )

    def _read_records(self, object_type: str, field: str) -> Iterator[Record]:
        """Every lead with the field, email and website, id window by id window, lazily."""
        return self._scan(field)

    def _read_modified(self, object_type: str, field: str, since: dt.datetime) -> Iterator[Record]:
        """The leads created or changed after `since`, as _read_records reads them, lazily."""
        return self._changed(field, since)

    def _read_values(
        self, object_type: str, field: str, record_ids: Sequence[str]
    ) -> dict[str, str | None]:
        """One Get Leads by Filter Type call (filterType=id) for up to 300 ids."""
        # Marketo ids are integers: anything else names no lead, so it is simply absent.
        asked: dict[int, list[str]] = {}
        for record_id in record_ids:
            if (number := _lead_number(record_id)) is not None:
                asked.setdefault(number, []).append(record_id)
        if not asked:
            return {}
        rows = self._leads_by_id(
            list(asked), [field], what=f"reading {field} of leads", field=field
        )
        values: dict[str, str | None] = {}
        for row in rows:
            for given in asked.get(_lead_id(row), []):
                values[given] = _text(row.get(field))
        return values

    def _write_batch(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        """One Sync Leads call, action updateOnly by id; skipped leads fail with their reason."""
        outcomes: dict[str, WriteResult] = {}
        sent: list[tuple[int, Update]] = []
        for update in updates:
            if (number := _lead_number(update.record_id)) is not None:
                sent.append((number, update))
            else:
                message = f"{update.record_id!r} is not a Marketo lead id"
                outcomes[update.record_id] = WriteResult(update.record_id, False, "1001", message)
        if sent:
            self._sync(field, sent, outcomes)
        return [outcomes[update.record_id] for update in updates]

    # ---- reading ----------------------------------------------------------------------------

    def _scan(self, field: str) -> Iterator[Record]:
        fields = _read_fields(field)
        start = 1
        exports = self._config.export_threshold > 0
        # Ids a probe already yielded (skipped when reached again), and how far a probe that
        # found nothing reached (no new probe before it).
        ahead: set[int] = set()
        no_probe_before = 0
        # An export read every lead created until it was made: an empty window is then the end.
        read_to_now = False
        # Every lead of id `start` or more was created after this moment (but for the skew):
        # the createdAt of the newest lead read in sequence, or the end of an export's span.
        read_until: dt.datetime | None = None
        while True:
            first = start
            rows = self._window(first, [*fields, "createdAt"], field)
            yield from _records(rows, field, ahead)
            start += BATCH_SIZE
            if rows:
                read_to_now = False
                read_until = _created(max(rows, key=_lead_id)) or read_until
                span = self._export_span(rows) if exports and start > no_probe_before else None
                if span is None:
                    continue
                probe = max(start, first + self._config.export_threshold - BATCH_SIZE)
                found = self._window(probe, fields, field)
                yield from _records(found, field, ahead)
                ahead.update(_lead_id(row) for row in found)
                if not found:
                    no_probe_before = probe + BATCH_SIZE
                    continue
                try:
                    top = yield from self._exported(field, fields, span, start, ahead)
                except ExportUnavailable as exc:
                    log.warning("marketo: reading on by id windows: %s", exc)
                    exports = False
                    continue
                start = max(start, top + 1)
                read_until = span[1]
                read_to_now = span[1] >= dt.datetime.now(dt.UTC) - _EXPORT_SKEW
                continue
            if read_to_now:
                break
            following = self._next_lead_id(start, read_until)
            if following is None:
                break
            start = following
        # Best effort: the read is done, and the quota only informs.
        self._refresh_quota(strict=False)

    def _window(self, first: int, fields: Sequence[str], field: str) -> list[dict[str, Any]]:
        """The leads of ids first .. first + 299."""
        ids = list(range(first, first + BATCH_SIZE))
        return self._read_page(
            lambda: self._leads_by_id(ids, fields, what="reading leads", field=field),
            f"leads {first}-{first + BATCH_SIZE - 1}",
        )

    def _export_span(
        self, rows: Sequence[dict[str, Any]]
    ) -> tuple[dt.datetime, dt.datetime] | None:
        """The createdAt range to export next, when these leads' rate makes it worth it."""
        created = sorted(c for c in (_created(row) for row in rows) if c is not None)
        # One lead alone tells no rate (a gap of deleted leads leaves windows like that).
        if len(created) < 2:
            return None
        since = created[-1] - _EXPORT_SKEW
        until = min(since + MAX_SPAN, dt.datetime.now(dt.UTC).replace(microsecond=0))
        if until <= since:
            return None
        rate = len(created) / max((created[-1] - created[0]).total_seconds(), 1.0)
        expected = rate * (until - since).total_seconds()
        return (since, until) if expected >= self._config.export_threshold else None

    def _exported(
        self,
        field: str,
        fields: Sequence[str],
        span: tuple[dt.datetime, dt.datetime],
        start: int,
        ahead: set[int],
    ) -> Generator[Record, None, int]:
        """Leads of ids from `start` created in `span`, by export; returns the highest id read."""
        top = 0
        with self._exporter.export(["id", *fields], *span) as file:
            for row in export_rows(file):
                lead_id = _int(row.get("id"))
                if lead_id < start or lead_id in ahead:
                    continue
                top = max(top, lead_id)
                yield _record(lead_id, row, field)
        return top

    def _leads_by_id(
        self, ids: Sequence[int], fields: Sequence[str], *, what: str, field: str
    ) -> list[dict[str, Any]]:
        """Get Leads by Filter Type for up to 300 ids, following nextPageToken."""
        params = {
            "filterType": "id",
            "filterValues": ",".join(str(i) for i in ids),
            "fields": ",".join(dict.fromkeys(["id", *fields])),
            "batchSize": str(BATCH_SIZE),
        }
        rows: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            paging = {"nextPageToken": token} if token else {}
            answer = self._api(
                "GET", "/rest/v1/leads.json", params=params | paging, what=what, field=field
            )
            rows.extend(row for row in answer.get("result") or [] if _lead_id(row))
            following = answer.get("nextPageToken")
            if not answer.get("moreResult") or not following or following == token:
                return rows
            token = str(following)

    def _next_lead_id(self, start: int, read_until: dt.datetime | None) -> int | None:
        """The lowest id from `start` that a lead holds, or None when no lead lies past it.

        Every lead of id `start` or more was created after `read_until` (ids follow creation;
        see the module's docstring for the one exception), so its New Lead activity is among
        those after it, which come oldest first: the lowest lead id from `start` on their first
        page is the next lead (a lower id, created earlier, is on the same page). Only within
        the page's last second may the next page hold a lower one, so a page whose ids from
        `start` all share its last second is followed.
        """
        since = read_until if read_until is not None else _BEFORE_ANY_LEAD
        token = self._paging_token(since)
        # (activityDate, leadId) of the New Lead activities of ids from `start` seen so far.
        found: list[tuple[str, int]] = []
        while True:
            page = self._read_page(
                partial(self._activities_page, token), f"New Lead activities past lead {start}"
            )
            activities = [a for a in page.get("result") or [] if isinstance(a, dict)]
            dated = [(str(a.get("activityDate")), _int(a.get("leadId"))) for a in activities]
            found.extend((date, lead_id) for date, lead_id in dated if lead_id >= start)
            more = bool(page.get("moreResult"))
            lowest = min(found, key=lambda pair: pair[1]) if found else None
            if lowest is None and not more:
                return None
            if lowest is not None and (not more or (dated and lowest[0] != dated[-1][0])):
                log.debug("marketo: the next lead from id %d is %d", start, lowest[1])
                return lowest[1]
            token = _following(page, token, "New Lead activities")

    def _changed(self, field: str, since: dt.datetime) -> Iterator[Record]:
        """Leads with a New Lead or Change Data Value activity after `since`, each read once.

        Get Lead Changes only lists changes to the fields it is given: those the full read
        returns (email, website, the field). A lead whose other fields changed reads the same as
        before, so segsync has nothing to do for it and it is rightly left out. Ids are read 300
        a call as they accumulate over the pages (lazily, a lead changed twice once); a lead
        deleted since its change is simply not found.
        """
        fields = _read_fields(field)
        moment = since.astimezone(dt.UTC).replace(microsecond=0) - _ACTIVITY_RESOLUTION
        token = self._paging_token(moment)
        seen: set[int] = set()
        pending: list[int] = []
        more = True
        while more:
            page = self._read_page(
                partial(self._lead_changes_page, token, fields, field), "lead changes"
            )
            for activity in page.get("result") or []:
                lead_id = _int(activity.get("leadId")) if isinstance(activity, dict) else 0
                if lead_id > 0 and lead_id not in seen:
                    seen.add(lead_id)
                    pending.append(lead_id)
            more = bool(page.get("moreResult"))
            if more:
                token = _following(page, token, "lead changes")
            while len(pending) >= BATCH_SIZE or (pending and not more):
                batch, pending = pending[:BATCH_SIZE], pending[BATCH_SIZE:]
                rows = self._read_page(
                    partial(
                        self._leads_by_id, batch, fields, what="reading changed leads", field=field
                    ),
                    f"{len(batch)} changed leads",
                )
                yield from _records(rows, field, set())

    def _paging_token(self, since: dt.datetime) -> str:
        """A date-based paging token: activities after `since` (to the second)."""
        stamp = since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        def fetch() -> str:
            answer = self._api(
                "GET",
                "/rest/v1/activities/pagingtoken.json",
                params={"sinceDatetime": stamp},
                what="getting an activities paging token",
            )
            token = str(answer.get("nextPageToken") or "")
            if not token:
                raise RetryableError("marketo sent no paging token", code="NO_TOKEN")
            return token

        return self._read_page(fetch, "a paging token")

    def _activities_page(self, token: str) -> dict[str, Any]:
        """One page of New Lead activities from `token`."""
        return self._api(
            "GET",
            "/rest/v1/activities.json",
            params={"activityTypeIds": _NEW_LEAD_ACTIVITY, "nextPageToken": token},
            what="reading New Lead activities",
        )

    def _lead_changes_page(self, token: str, fields: Sequence[str], field: str) -> dict[str, Any]:
        """One page of Get Lead Changes from `token`, for changes to `fields`."""
        return self._api(
            "GET",
            "/rest/v1/activities/leadchanges.json",
            params={
                "nextPageToken": token,
                "fields": ",".join(fields),
                "batchSize": str(BATCH_SIZE),
            },
            what="reading lead changes",
            field=field,
        )

    # ---- writing ----------------------------------------------------------------------------

    def _sync(
        self, field: str, sent: list[tuple[int, Update]], outcomes: dict[str, WriteResult]
    ) -> None:
        body = {
            "action": "updateOnly",
            "lookupField": "id",
            # null clears a Marketo field; an empty string is not a value either.
            "input": [{"id": number, field: u.value or None} for number, u in sent],
        }
        answer = self._api(
            "POST", "/rest/v1/leads.json", body=body, what="updating leads", field=field
        )
        results = [item for item in answer.get("result") or [] if isinstance(item, dict)]
        # Results come in input order; a skipped lead may carry no id, so order is the key.
        updates = [update for _, update in sent]
        if len(results) == len(sent):
            paired = list(zip(updates, results, strict=True))
        else:
            by_id = {_lead_id(item): item for item in results if _lead_id(item)}
            paired = [(u, by_id.get(number, {})) for number, u in sent]
        for update, item in paired:
            record_id = update.record_id
            status = str(item.get("status") or "")
            if status in _WRITTEN:
                outcomes[record_id] = WriteResult(record_id, True)
                continue
            reasons = [r for r in item.get("reasons") or [] if isinstance(r, dict)]
            reason = reasons[0] if reasons else {}
            code = str(reason.get("code") or ("NO_RESULT" if not item else "NO_REASON"))
            if code == "1006":
                # Field not found: no lead can take the value, so the run stops.
                raise FatalError(f"field {field} not found on leads", code=code)
            message = self._clean(
                str(reason.get("message") or f"marketo reported status {status or 'none'}")
            )
            outcomes[record_id] = WriteResult(record_id, False, code, message)

    # ---- HTTP, tokens, errors ---------------------------------------------------------------

    def _api(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        field: str | None = None,
    ) -> dict[str, Any]:
        """One REST call; a refused token is renewed once and the call made again."""

        def attempt() -> dict[str, Any]:
            headers = {
                "Authorization": f"Bearer {self._token.value()}",
                "Accept": "application/json",
            }
            url = f"{self._root}{path}"
            response = self._http.request(
                method, url, what=what, params=params, json=body, headers=headers
            )
            return self._answer(response, what)

        answer = self._token.send(attempt, _token_refused)
        if answer.get("success") is not False:
            return answer
        code, message = self._refusal(answer)
        raise self._classify(code, message, what, field)

    def _download(self, path: str) -> requests.Response:
        """GET an export file, streamed; a refused token is renewed once, as in `_api`."""
        what = "downloading a lead export"

        def attempt() -> requests.Response | dict[str, Any]:
            headers = {"Authorization": f"Bearer {self._token.value()}"}
            url = f"{self._root}{path}"
            response = self._http.request("GET", url, what=what, headers=headers, stream=True)
            kind = response.headers.get("Content-Type", "")
            if response.status_code == 200 and not kind.startswith("application/json"):
                return response
            with response:
                if response.status_code == 404:
                    # Documented for a job that is not Completed; this one was, a moment ago.
                    raise RetryableError(f"marketo answered HTTP 404 while {what}", code="404")
                return self._answer(response, what)

        answer = self._token.send(
            attempt, lambda got: isinstance(got, dict) and _token_refused(got)
        )
        if isinstance(answer, requests.Response):
            return answer
        code, message = self._refusal(answer)
        raise self._classify(code, message, what, None)

    def _refusal(self, answer: Mapping[str, Any]) -> tuple[str, str]:
        """The code and (cleaned) message of a `success: false` answer's first error."""
        code, message = _first_error(answer)
        return code, self._clean(message)

    def _classify(self, code: str, message: str, what: str, field: str | None) -> ConnectorError:
        """Map a response-level error code to retryable, daily-quota or fatal."""
        if code in ("606", "615"):
            self._note_throttled()
        if code == "606":
            return RetryableError(
                f"marketo rate limit reached while {what} (606 {message}); "
                f"retry in {_RATE_RETRY_AFTER:g} s",
                code=code,
                retry_after=_RATE_RETRY_AFTER,
            )
        if code == "615":
            return RetryableError(
                f"marketo concurrent call limit reached while {what} (615 {message})",
                code=code,
                retry_after=_CONCURRENCY_RETRY_AFTER,
            )
        if code == "607":
            return DailyQuotaError(f"marketo's daily API quota is spent (607 {message})", code=code)
        if code in _TRANSIENT_CODES:
            return RetryableError(f"marketo failed while {what} ({code} {message})", code=code)
        if code in _TOKEN_CODES:
            return FatalError(
                f"marketo refused a freshly issued access token ({code} {message})", code=code
            )
        if code == "1006" and field is not None:
            return FatalError(f"field {field} not found on leads", code=code)
        if code == "603":
            return FatalError(
                f"marketo denied access while {what} (603 {message}): check the API user's role",
                code=code,
            )
        return FatalError(f"marketo refused {what} ({code} {message})", code=code)

    def _answer(self, response: requests.Response, what: str) -> dict[str, Any]:
        """The JSON body of a 200, or the error an HTTP-level failure stands for."""
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetryableError(f"marketo answered HTTP {status} while {what}", code=str(status))
        if status != 200:
            # 413/414 (payload or URI too large) and anything else: not worth repeating.
            raise FatalError(f"marketo answered HTTP {status} while {what}", code=str(status))
        answer = json_object(response.content)
        if not answer:
            raise RetryableError(
                f"marketo sent an unreadable answer while {what}", code="UNREADABLE"
            )
        return answer

    def _identity(self) -> tuple[str, float]:
        """Client credentials for an access token at /identity/oauth/token.

        POST with a form body, which Marketo accepts as well as GET, so the secret is never
        part of a URL (proxies and servers log URLs).
        """
        form = {
            "grant_type": "client_credentials",
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret,
        }
        response = self._http.request(
            "POST",
            f"{self._root}/identity/oauth/token",
            what="getting an access token",
            data=form,
            headers={"Accept": "application/json"},
        )
        answer = json_object(response.content)
        if response.status_code == 200 and answer.get("access_token"):
            lifetime = float(_int(answer.get("expires_in")))
            log.debug("marketo access token obtained, valid %.0f s", lifetime)
            # Asking again before expiry returns the same token with its remaining life, so a
            # token near its end is used until it expires; a 602 after that renews it.
            usable = lifetime - _RENEW_MARGIN if lifetime > 2 * _RENEW_MARGIN else lifetime
            return str(answer["access_token"]), usable
        error = self._clean(str(answer.get("error") or response.status_code))
        description = self._clean(str(answer.get("error_description") or response.reason))
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(
                f"marketo's identity service failed ({error}): {description}", code=error
            )
        raise FatalError(
            f"marketo refused the client credentials ({error}): {description}", code=error
        )

    def _refresh_quota(self, *, strict: bool) -> None:
        """Today's call count from Get Daily Usage, against the configured daily quota."""
        limit = self._config.daily_quota
        try:
            answer = self._api("GET", "/rest/v1/stats/usage.json", what="reading API usage")
        except DailyQuotaError:
            self._report_quota(limit, limit, "daily")
            if strict:
                raise
            return
        except ConnectorError as exc:
            # The API user's role may not allow it (603); that says nothing about the sync.
            if strict and exc.code != "603":
                raise
            log.info("marketo API usage unavailable: %s", exc)
            return
        days = [item for item in answer.get("result") or [] if isinstance(item, dict)]
        used = _int(days[0].get("total")) if days else 0
        self._report_quota(min(used, limit), limit, "daily")

    def _clean(self, text: str) -> str:
        """`text` clipped, with this connection's token and secret blanked out."""
        return redact(text, (self._token.current, self._config.client_secret))


def _first_error(answer: Mapping[str, Any]) -> tuple[str, str]:
    """The code and message of a `success: false` answer's first error."""
    errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
    error = errors[0] if errors else {}
    return str(error.get("code") or "UNKNOWN"), str(error.get("message") or "no message")


def _token_refused(answer: Mapping[str, Any]) -> bool:
    """Marketo refused the access token (6xx: the call was not executed, so it can be sent
    again)."""
    return answer.get("success") is False and _first_error(answer)[0] in _TOKEN_CODES


def _read_fields(field: str) -> list[str]:
    """The fields a read returns: email and website to match an account by, and the field."""
    return list(dict.fromkeys(["email", "website", field]))


def _following(page: Mapping[str, Any], token: str, what: str) -> str:
    """The token of the page after `page` (one with moreResult true).

    Marketo may say more follow with fewer than 300 activities, so only moreResult ends a read;
    a token that does not move would repeat the page forever, so the read fails and is retried.
    """
    following = str(page.get("nextPageToken") or "")
    if not following or following == token:
        raise RetryableError(f"marketo's {what} did not move past a page", code="STUCK_PAGE")
    return following


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _lead_id(row: Any) -> int:
    return _int(row.get("id")) if isinstance(row, dict) else 0


def _records(rows: Sequence[dict[str, Any]], field: str, skip: set[int]) -> Iterator[Record]:
    """A window's leads in id order, but for those in `skip` (already read)."""
    for row in sorted(rows, key=_lead_id):
        if (lead_id := _lead_id(row)) not in skip:
            yield _record(lead_id, row, field)


def _record(lead_id: int, row: Mapping[str, Any], field: str) -> Record:
    return Record(
        id=str(lead_id),
        value=_text(row.get(field)),
        email=_text(row.get("email")),
        website=_text(row.get("website")),
    )


def _created(row: Mapping[str, Any]) -> dt.datetime | None:
    """A lead's createdAt as an aware datetime (None if missing or unreadable)."""
    text = row.get("createdAt")
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _lead_number(record_id: str) -> int | None:
    """`record_id` as a Marketo lead id (a positive integer), or None when it cannot be one."""
    text = record_id.strip()
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


def _text(value: Any) -> str | None:
    """A field value as text; Marketo's null and an empty string are both None."""
    return None if value is None or value == "" else str(value)
