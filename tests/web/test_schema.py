"""Property-based tests of the whole OpenAPI document against the real `segsync api` (schemathesis).

Every operation the document lists when the test runs gets valid and malformed requests generated
from its schema, and hostile values in each path and query parameter (huge names, unicode, path
traversal, odd numbers): no answer may be a 5xx, and each must be documented (status code,
content type, headers, body schema). It runs without a key (schemathesis then sends missing and
made-up ones) and with a live key of each scope, so that the authenticated paths are reached too.
Hypothesis is derandomized and bounded, so CI repeats the same requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from sqlalchemy.orm import Session, sessionmaker

from models.api_keys import create_api_key
from models.db import transaction
from models.publishing import publish
from models.segment_catalog import create_segment
from tests.factories import add_accounts
from tests.services import free_port
from tests.web.documented import documented
from tests.web.server import ApiServer, running_api

# Generated requests per operation, asker and mode (valid, malformed): enough to find the shapes
# of input that break a route (each mode is run for four askers, so every operation meets 40
# requests of each kind), few enough that the suite stays within its 15 minutes on 2 cores.
MAX_EXAMPLES = 10
# Who asks: no key (schemathesis makes up missing and wrong ones), or a live key of a scope.
ASKERS = ["no key", "read", "publish", "trigger"]
# Put in every path and query parameter in turn, whatever its type.
HOSTILE_VALUES = [
    "../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "x" * 5000,
    "Ünïcødé 💥 名前 \u202e",
    "\u0000",
    " ",
    "%",
    "' OR 1=1 --",
    "-1",
    "0",
    "9" * 40,
    "1e309",
    "NaN",
    "true",
]


def _world(session: Session, tag: str) -> dict[str, str]:
    """Accounts, segments published to api and account_details, and a key of each scope."""
    add_accounts(
        session,
        [
            {
                "external_id": f"{tag}-1",
                "name": "Ünïcødé",
                "domain": f"a-{tag}.com",
                "country": tag,
            },
            {"external_id": f"{tag}-2", "name": "Globex", "country": tag},
        ],
    )
    for name, uses in ((f"{tag} api", ("api",)), (f"{tag} details", ("account_details",))):
        create_segment(session, name, filter_expression=f'country = "{tag}"')
        publish(session, name, uses)
    return {scope: create_api_key(session, f"{scope}-{tag}", scope)[1] for scope in ASKERS[1:]}


@pytest.fixture(scope="module")
def schema_keys(api_sessions: sessionmaker[Session]) -> dict[str, str]:
    """A live key of each scope, on a database with something to read."""
    with transaction(api_sessions) as session:
        return _world(session, uuid.uuid4().hex[:8])


@pytest.fixture(scope="module")
def schema_api(
    api_database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """A server limiting keys through the tests' Redis, as production does, at a rate the test
    never reaches (a 429 would hide the route's own answers)."""
    env = {
        "SEGSYNC_DATABASE_URL": api_database_url,
        "SEGSYNC_REDIS_URL": redis_url,
        # Runs can be queued (none of the test's orchestrations exists, so none is).
        "SEGSYNC_BROKER_URL": redis_url,
        "SEGSYNC_API_RATE_LIMIT": "1000000/60",
    }
    with running_api(env, tmp_path_factory.mktemp("schema-api")) as server:
        yield server


def _operations(schema: schemathesis.BaseSchema) -> list[APIOperation]:
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the OpenAPI document lists no operation"
    return operations


def _failure(operation: APIOperation, how: str, error: BaseException) -> str:
    """What failed, with schemathesis's account (the checks, the answer, a curl to repeat it)."""
    if isinstance(error, FailureGroup):
        found = "; ".join(failure.title for failure in error.exceptions)
        return f"{operation.label} ({how}): {found}\n{error.message}"
    lines = str(error).strip().splitlines()
    return f"{operation.label} ({how}): {type(error).__name__}: {' / '.join(lines[:12])}"


def _run(operation: APIOperation, how: str, cases: st.SearchStrategy[Case], examples: int) -> str:
    """Send `examples` cases of `cases`; the first failure found, or ''."""

    # Derandomized: the same requests on every run. No shrinking: the first failing input is
    # reported as it was sent, and a slow loaded machine is no bug (no deadline).
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def check(case: Case) -> None:
        case.call_and_validate()

    try:
        check()
    except Unsatisfiable:
        return ""  # no malformed request exists: an operation without parameters
    except (Exception, FailureGroup) as error:
        return _failure(operation, how, error)
    return ""


@pytest.mark.parametrize("asker", ASKERS)
def test_every_operation_answers_as_documented(
    schema_api: ApiServer, schema_keys: dict[str, str], asker: str
) -> None:
    schema = documented(schema_api, schema_keys.get(asker))
    failures = []
    for operation in _operations(schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases = operation.as_strategy(generation_mode=mode)
            failures.append(_run(operation, f"{asker}, {mode.value}", cases, MAX_EXAMPLES))

    assert not any(failures), "\n".join(failure for failure in failures if failure)


@pytest.mark.parametrize("asker", ["no key", "publish", "trigger"])
def test_hostile_parameter_values_are_refused_as_documented(
    schema_api: ApiServer, schema_keys: dict[str, str], asker: str
) -> None:
    schema = documented(schema_api, schema_keys.get(asker))
    failures = []
    for operation in _operations(schema):
        path = [parameter.name for parameter in operation.path_parameters]
        query = [parameter.name for parameter in operation.query]
        if not path and not query:
            continue
        for value in HOSTILE_VALUES:
            cases = operation.as_strategy(
                generation_mode=GenerationMode.POSITIVE,
                path_parameters=dict.fromkeys(path, value) or None,
                query=dict.fromkeys(query, value) or None,
            )
            failures.append(_run(operation, f"{asker}, {value[:20]!r}", cases, 1))

    assert not any(failures), "\n".join(failure for failure in failures if failure)


def test_no_answer_was_an_internal_error_and_no_key_was_logged(
    schema_api: ApiServer, schema_keys: dict[str, str]
) -> None:
    """After the tests above on the same server (module order): its log is clean."""
    logged = schema_api.logged()

    assert "Traceback" not in logged and "failed" not in logged, logged[-4000:]
    assert not any(key in logged for key in schema_keys.values())


def test_readyz_answers_as_documented_when_the_broker_does_not_answer(
    api_database_url: str, tmp_path: Path
) -> None:
    broker = f"redis://127.0.0.1:{free_port()}/0"
    env = {"SEGSYNC_DATABASE_URL": api_database_url, "SEGSYNC_BROKER_URL": broker}
    with running_api(env, tmp_path) as server:
        answer = server.get("/readyz")
        operation = documented(server)["/readyz"]["GET"]

    assert answer.status_code == 503
    documented_503 = operation.definition.raw["responses"]["503"]
    assert documented_503["content"]["application/json"]["schema"]  # not just a description
    # Its status, content type and body are the documented ones (it is a 5xx by design).
    operation.Case().validate_response(answer, excluded_checks=[not_a_server_error])
