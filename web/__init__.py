"""segsync's HTTP service: the API under /v1 (and, later, the web app), on top of models and worker.

Nothing below imports this package: `segsync api` reaches the command line through the
`segsync.commands` entry point (web/commands.py), and runs are queued through worker's tasks.
"""
