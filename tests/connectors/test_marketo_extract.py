"""Reading large Marketo lead sets through the Bulk Lead Extract (connectors/marketo_extract.py).

Through the emulator over HTTPS, then documented answers the emulator cannot be made to give
(a cut file, a token refused at download) with `responses`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from connectors.errors import FatalError, RetryableError
from connectors.marketo import MarketoConfig, MarketoConnector
from connectors.marketo_extract import MAX_SPAN, export_rows
from connectors.sandbox.marketo import SEGMENT_FIELD, MarketoEmulator
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness import serving
from tests.connectors.harness_marketo import marketo_connector

FIELD = SEGMENT_FIELD
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def emulator(sandbox_certificates: SandboxCertificates) -> Iterator[MarketoEmulator]:
    with serving(MarketoEmulator(calls_per_twenty_seconds=100_000), sandbox_certificates) as served:
        yield served


@pytest.fixture
def connect(
    emulator: MarketoEmulator, sandbox_certificates: SandboxCertificates
) -> Callable[..., MarketoConnector]:
    def make(**options: Any) -> MarketoConnector:
        settings = {"export_threshold": 1_000, "export_poll_interval": 0.01} | options
        return marketo_connector(emulator, sandbox_certificates, **settings)

    return make


def add_leads(emulator: MarketoEmulator, count: int, **created: Any) -> list[str]:
    """`count` leads, every third without a value; created now or at created['at'](n)."""
    at: Callable[[int], dt.datetime] | None = created.get("at")
    rows = [
        {"email": f"p{n}@c{n % 40}.example", FIELD: None if n % 3 == 0 else f"S{n % 7}"}
        | ({"createdAt": at(n)} if at else {})
        for n in range(count)
    ]
    return emulator.add_records("leads", rows)


def read_all(connector: MarketoConnector) -> dict[str, tuple[str | None, str | None]]:
    records = list(connector.read_records("leads", FIELD))
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)), "a lead was read twice"
    return {r.id: (r.email, r.value) for r in records}


def expected(emulator: MarketoEmulator, ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
    return {
        i: (emulator.record("leads", i)["email"], emulator.record("leads", i)[FIELD]) for i in ids
    }


def test_a_large_set_is_read_through_one_export_in_a_few_calls(
    emulator: MarketoEmulator, connect: Callable[..., MarketoConnector]
) -> None:
    ids = add_leads(emulator, 5_000)
    reader = connect()

    assert read_all(reader) == expected(emulator, ids)

    calls = emulator.calls
    # The first window, a probe 1,000 ids ahead, the export, and one empty window: done.
    assert calls["GET /rest/v1/leads.json"] == 3
    assert calls["POST /bulk/v1/leads/export/create.json"] == 1
    for action in ("POST {id}/enqueue.json", "GET {id}/status.json", "GET {id}/file.json"):
        method, path = action.split(" ")
        assert calls[f"{method} /bulk/v1/leads/export/{path}"] == 1
    assert "GET /rest/v1/activities.json" not in calls
    # token, 3 windows, create, enqueue, status, file, usage
    assert reader.api_calls == 9
    [job] = emulator.exports.jobs.values()
    assert job.fields == ["id", "email", "website", FIELD]
    assert job.end - job.start <= MAX_SPAN


def test_leads_spread_over_months_take_one_export_per_thirty_days(
    emulator: MarketoEmulator, connect: Callable[..., MarketoConnector]
) -> None:
    # 3,000 leads 40 minutes apart: 83 days, about 1,080 a month.
    first = NOW - dt.timedelta(minutes=40 * 3_000)
    ids = add_leads(emulator, 3_000, at=lambda n: first + dt.timedelta(minutes=40 * n))

    assert read_all(connect()) == expected(emulator, ids)

    # Two exports of 30 days (1,080 leads each); the newest few hundred, fewer than the
    # threshold up to now at their rate, are read by id windows.
    jobs = list(emulator.exports.jobs.values())
    assert len(jobs) == 2 and [job.records for job in jobs] == [1_080, 1_080]
    assert all(job.end - job.start <= dt.timedelta(days=31) for job in jobs)
    assert all(job.status == "Completed" for job in jobs)


def test_a_small_set_is_read_by_id_windows_after_an_empty_probe(
    emulator: MarketoEmulator, connect: Callable[..., MarketoConnector]
) -> None:
    # 700 leads created at once: the probe 1,000 ids ahead finds nothing.
    ids = add_leads(emulator, 700)
    assert read_all(connect()) == expected(emulator, ids)
    assert emulator.exports.jobs == {}


def test_a_sparse_set_is_read_by_id_windows_without_a_probe(
    emulator: MarketoEmulator, connect: Callable[..., MarketoConnector]
) -> None:
    # A day apart: 30 days at that rate is 30 leads, not worth an export.
    first = NOW - dt.timedelta(days=500)
    ids = add_leads(emulator, 400, at=lambda n: first + dt.timedelta(days=n))
    assert read_all(connect()) == expected(emulator, ids)
    assert emulator.exports.jobs == {}
    assert emulator.calls["GET /rest/v1/leads.json"] == 3


def test_exports_can_be_turned_off(
    emulator: MarketoEmulator, connect: Callable[..., MarketoConnector]
) -> None:
    ids = add_leads(emulator, 2_000)
    assert read_all(connect(export_threshold=0)) == expected(emulator, ids)
    assert emulator.exports.jobs == {}
    assert emulator.calls["GET /rest/v1/leads.json"] == 8


@pytest.mark.parametrize("trouble", ["queue full", "allocation spent", "job failed", "too slow"])
def test_without_a_usable_export_the_read_goes_on_by_id_windows(
    emulator: MarketoEmulator,
    connect: Callable[..., MarketoConnector],
    caplog: pytest.LogCaptureFixture,
    trouble: str,
) -> None:
    ids = add_leads(emulator, 2_500)
    options: dict[str, Any] = {}
    if trouble == "queue full":
        # Another integration's ten jobs fill the queue.
        emulator.exports.export_seconds = 3_600
        for _ in range(10):
            job = emulator.exports.create(
                {
                    "fields": ["id"],
                    "filter": {
                        "createdAt": {
                            "startAt": "2024-01-01T00:00:00Z",
                            "endAt": "2024-01-02T00:00:00Z",
                        }
                    },
                }
            )
            emulator.exports.enqueue(job["exportId"], [], fail=False)
    elif trouble == "allocation spent":
        emulator.exports.daily_allocation = 0
    elif trouble == "job failed":
        emulator.faults.inject("export_failed")
    else:
        emulator.exports.export_seconds = 3_600
        options = {"export_timeout": 0.2, "export_poll_interval": 0.05}

    with caplog.at_level(logging.WARNING, logger="connectors.marketo"):
        assert read_all(connect(**options)) == expected(emulator, ids)

    assert "reading on by id windows" in caplog.text
    ours = [job for job in emulator.exports.jobs.values() if job.fields != ["id"]]
    assert len(ours) == 1
    # A job that could not be queued or was too slow is cancelled, leaving the queue to others.
    assert ours[0].status == {"job failed": "Failed"}.get(trouble, "Cancelled")


def test_an_expired_token_during_an_export_is_renewed(
    emulator: MarketoEmulator, connect: Callable[..., MarketoConnector]
) -> None:
    ids = add_leads(emulator, 1_500)
    reader = connect()
    records = reader.read_records("leads", FIELD)
    first = [next(records) for _ in range(300)]
    # Every token so far expires before the probe, the export's calls and its download.
    emulator.expire_tokens()
    rest = list(records)
    assert {r.id for r in first + rest} == set(ids) and len(first + rest) == 1_500
    assert emulator.calls["POST /identity/oauth/token"] == 2


# ---- documented answers the emulator does not give -----------------------------------------

BASE = "https://123-abc-456.mktorest.com"
EXPORTS = f"{BASE}/bulk/v1/leads/export"
TOKEN = "cdf01657-110d-4155-99a7-f986b2ff13a0:int"


def ok(**body: Any) -> dict[str, Any]:
    return {"requestId": "e42b#14272d07d78", "success": True} | body


@pytest.fixture
def documented() -> Iterator[MarketoConnector]:
    """responses active: one dense window of leads 1-300, a probe, and an export ready at once."""
    responses.start()
    try:
        responses.post(
            f"{BASE}/identity/oauth/token",
            json={"access_token": TOKEN, "token_type": "bearer", "expires_in": 3599},
        )
        created = (NOW - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        window = [
            {"id": n, "email": None, FIELD: None, "createdAt": created} for n in range(1, 301)
        ]
        responses.get(f"{BASE}/rest/v1/leads.json", json=ok(result=window))
        responses.get(f"{BASE}/rest/v1/leads.json", json=ok(result=[{"id": 1300}]))
        job = {"exportId": "e-1", "format": "CSV", "status": "Created"}
        responses.post(f"{EXPORTS}/create.json", json=ok(result=[job]))
        responses.post(f"{EXPORTS}/e-1/enqueue.json", json=ok(result=[job | {"status": "Queued"}]))
        responses.post(f"{EXPORTS}/e-1/cancel.json", json=ok(result=[job]))
        config = MarketoConfig(
            client_id="client-id",
            client_secret="s3cr3t",
            base_url=BASE,
            export_threshold=1_000,
            export_poll_interval=0.0,
        )
        yield MarketoConnector(config)
    finally:
        responses.stop()
        responses.reset()


def completed(content: bytes, checksum: str | None = None) -> dict[str, Any]:
    digest = checksum or hashlib.sha256(content).hexdigest()
    job = {"exportId": "e-1", "status": "Completed", "fileSize": len(content)}
    return ok(result=[job | {"fileChecksum": f"sha256:{digest}"}])


def test_a_file_that_does_not_match_its_checksum_is_retried_not_used(
    documented: MarketoConnector,
) -> None:
    content = b"id,email,website,segmentNames\n301,a@b.example,null,X\n"
    responses.get(f"{EXPORTS}/e-1/status.json", json=completed(content, "0" * 64))
    responses.get(f"{EXPORTS}/e-1/file.json", body=content[:-5], content_type="text/csv")

    with pytest.raises(RetryableError, match="checksum"):
        list(documented.read_records("leads", FIELD))


def test_a_token_refused_at_download_is_renewed_once(documented: MarketoConnector) -> None:
    content = b"id,email,website,segmentNames\n301,a@b.example,null,X\n302,null,w.example,null\n"
    responses.get(f"{EXPORTS}/e-1/status.json", json=completed(content))
    expired = {"requestId": "1", "success": False, "errors": [{"code": "602", "message": "x"}]}
    responses.get(f"{EXPORTS}/e-1/file.json", json=expired)
    responses.get(f"{EXPORTS}/e-1/file.json", body=content, content_type="text/csv")
    responses.get(f"{BASE}/rest/v1/leads.json", json=ok(result=[]))
    responses.get(f"{BASE}/rest/v1/stats/usage.json", json=ok(result=[]))

    records = list(documented.read_records("leads", FIELD))

    by_id = {r.id: (r.email, r.website, r.value) for r in records}
    assert by_id["301"] == ("a@b.example", None, "X") and by_id["302"] == (None, "w.example", None)
    # 300 from the window, 1 from the probe, 2 from the export.
    assert len(records) == 303
    token_calls = [c for c in responses.calls if "/identity/" in (c.request.url or "")]
    assert len(token_calls) == 2


def test_a_refusal_other_than_queue_or_allocation_stops_the_read(
    documented: MarketoConnector,
) -> None:
    responses.replace(
        responses.POST,
        f"{EXPORTS}/create.json",
        json={"requestId": "1", "success": False, "errors": [{"code": "603", "message": "no"}]},
    )
    with pytest.raises(FatalError, match="603"):
        list(documented.read_records("leads", FIELD))


def test_export_rows_reads_null_as_none_and_refuses_a_ragged_row() -> None:
    text = b'id,email,segmentNames\n1,null,"A, B"\n2,x@y.example,\n'
    assert list(export_rows(io.BytesIO(text))) == [
        {"id": "1", "email": None, "segmentNames": "A, B"},
        {"id": "2", "email": "x@y.example", "segmentNames": None},
    ]
    assert list(export_rows(io.BytesIO(b""))) == []
    with pytest.raises(RetryableError, match="row 3 has 1 columns, not 2"):
        list(export_rows(io.BytesIO(b"id,email\n1,a\n2\n")))


def test_export_settings_are_checked() -> None:
    base: dict[str, Any] = {"client_id": "c", "client_secret": "s", "base_url": BASE}
    with pytest.raises(FatalError, match="cannot be negative"):
        MarketoConfig(**base, export_threshold=-1)
    with pytest.raises(FatalError, match="export_timeout"):
        MarketoConfig(**base, export_timeout=0)
    defaults = MarketoConfig(**base)
    assert (defaults.export_threshold, defaults.export_poll_interval) == (50_000, 60.0)
