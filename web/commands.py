"""The commands web adds to `segsync`, registered under the `segsync.commands` entry point.

Plain data: `segsync --help` reads the short help here without importing FastAPI or uvicorn.
"""

from __future__ import annotations

from worker.cli import LazyCommand

API = LazyCommand(
    "web.cli:api_command",
    "Serve the HTTP API (/v1) and the web app (/) for people who sign in.",
)
