"""The running server's OpenAPI document, loaded by schemathesis to judge answers against it."""

from __future__ import annotations

from typing import Any

import schemathesis

from tests.web.server import ApiServer

# What an answer must satisfy: no 5xx, and a documented status code, content type, headers and
# body; a malformed request must be refused (4xx).
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
]


def documented(server: ApiServer, key: str | None = None) -> schemathesis.BaseSchema:
    """`server`'s OpenAPI document; every request of its cases carries `key` when one is given
    (without one, schemathesis sends missing and made-up keys itself)."""
    config: dict[str, Any] = {
        "base-url": server.base_url,
        "request-timeout": 60,
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
    }
    if key is not None:
        config["headers"] = {"Authorization": f"Bearer {key}"}
        config["generation"] = {"with-security-parameters": False}
    return schemathesis.openapi.from_url(
        server.url("/openapi.json"), config=schemathesis.Config.from_dict(config)
    )
