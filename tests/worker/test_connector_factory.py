"""Connection-to-adapter wiring: the vendor limits every worker shares (real Redis, real HTTP)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from connectors.errors import RetryableError
from connectors.pardot import PardotConnector
from connectors.ratelimit import RedisRateLimiter
from connectors.sandbox.pardot import SEGMENT_FIELD, PardotEmulator
from connectors.sandbox.tls import SandboxCertificates, make_certificates
from tests.connectors.harness import serving
from tests.connectors.harness_pardot import pardot_connector
from worker.connector_factory import apply_rate_limits

# More callers than Pardot's five concurrent calls, each call held 0.15 s by the emulator.
CALLERS = 8
CALLS_EACH = 4


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> SandboxCertificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def pardot(certificates: SandboxCertificates) -> Iterator[PardotEmulator]:
    with serving(PardotEmulator(latency=0.15), certificates) as served:
        yield served


def call_at_once(connectors: list[PardotConnector], record_id: str) -> list[BaseException]:
    """Each connector in its own thread (a worker process each, as far as Redis can tell)."""
    failures: list[BaseException] = []
    start = threading.Barrier(len(connectors))

    def work(connector: PardotConnector) -> None:
        start.wait()
        try:
            for _ in range(CALLS_EACH):
                connector.read_values("prospects", SEGMENT_FIELD, [record_id])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in connectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return failures


def test_pardot_calls_from_many_workers_stay_under_five_at_once(
    pardot: PardotEmulator, certificates: SandboxCertificates, redis_url: str
) -> None:
    [record_id] = pardot.add_records("prospects", [{"email": "ada@acme.example"}])
    key = f"pardot:test-{uuid.uuid4().hex}"
    connectors = []
    for _ in range(CALLERS):
        connector = pardot_connector(pardot, certificates, auth="access_token")
        # Each has its own limiter, as each worker process does; Redis is what they share.
        apply_rate_limits(connector, "pardot", key, RedisRateLimiter(redis_url))
        connectors.append(connector)

    assert call_at_once(connectors, record_id) == []
    assert sum(c.api_calls for c in connectors) == CALLERS * CALLS_EACH


def test_without_the_shared_cap_pardot_refuses_the_sixth_call(
    pardot: PardotEmulator, certificates: SandboxCertificates
) -> None:
    # The same load with no limits applied: the emulator answers code 66, so the test above
    # would fail if apply_rate_limits did not hold the cap.
    [record_id] = pardot.add_records("prospects", [{"email": "ada@acme.example"}])
    connectors = [
        pardot_connector(pardot, certificates, auth="access_token") for _ in range(CALLERS)
    ]

    failures = call_at_once(connectors, record_id)

    assert failures and all(isinstance(f, RetryableError) and f.code == "66" for f in failures)
