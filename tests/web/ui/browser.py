"""Headless Chromium for the web app's tests: Debian's `chromium`, driven by Playwright.

Playwright never downloads a browser here: it launches the machine's chromium by its path
(scripts/check installs the Debian package when it is missing).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# What the machine's closed network needs: no background connections, no updates, no sync.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# Loaded CI machines render slowly; a step that waits for the page waits this long.
STEP_TIMEOUT_MS = 60_000
# Where screenshots go: SEGSYNC_SCREENSHOTS (docs/screenshots to refresh the README's), else
# the test's own temporary folder.
SCREENSHOTS_VARIABLE = "SEGSYNC_SCREENSHOTS"


def chromium_path() -> str:
    """The machine's chromium; an error saying how to install it when there is none."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        "no chromium on PATH: install Debian's package (apt-get install chromium); "
        "scripts/check does this when run as root"
    )


def screenshot_folder(default: Path) -> Path:
    """The folder screenshots are saved in (made if missing)."""
    folder = Path(os.environ.get(SCREENSHOTS_VARIABLE) or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
