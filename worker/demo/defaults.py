"""The demo's defaults, apart from worker.demo.run so that `segsync demo --help` can show them
without loading the sandbox, the models and SQLAlchemy."""

from __future__ import annotations

# Accounts in the sample unless --accounts says otherwise.
DEFAULT_ACCOUNTS = 3000
# The demo's SQLite database, in the demo's folder.
DATABASE_FILE = "segsync.db"
