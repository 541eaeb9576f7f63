"""Rendering the web app's Jinja2 templates, which ship inside the package (no CDN, no build)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from models.sign_in_sessions import SignedIn

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
# The screens in the navigation, in order: (path, title).
NAVIGATION = (
    ("/published-segments", "Published Segments"),
    ("/segments", "Segments"),
    ("/accounts", "Account Details"),
    ("/orchestrations", "Orchestrations"),
)
# Where signing in leads when no page was asked for.
HOME = NAVIGATION[0][0]

# StrictUndefined: a name a template uses but a route forgot is an error, not an empty string.
_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    request: Request,
    template: str,
    who: SignedIn | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page `template` for `who` (None on the sign-in page), with `context`."""
    page = _ENVIRONMENT.get_template(template).render(
        request=request,
        who=who,
        csrf_token=who.csrf_token if who else "",
        navigation=NAVIGATION,
        current_path=request.url.path,
        **context,
    )
    return HTMLResponse(page, status_code=status_code)
