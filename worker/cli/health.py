"""`segsync health`: is every part segsync needs working right now? A liveness/readiness probe."""

from __future__ import annotations

import click

# The checks in the order they print (worker.health.CHECKS has one function for each). Here, so
# that `segsync health --help` imports neither SQLAlchemy nor Celery.
CHECK_NAMES = ("database", "broker", "rate_limits", "workers", "beat", "runs")
DEFAULT_TIMEOUT = 5.0


@click.command("health")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as one JSON document.")
@click.option(
    "--check",
    "checks",
    multiple=True,
    type=click.Choice(CHECK_NAMES),
    help="Run only this check (repeatable; default: all).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds the checks get, together (they run at once).",
)
@click.pass_context
def health_command(
    context: click.Context, as_json: bool, checks: tuple[str, ...], timeout: float
) -> None:
    """Check the database, broker, rate-limit Redis, workers, beat and runs; exit 1 if any fails."""
    from worker.cli.output import echo_json
    from worker.health import run_checks
    from worker.settings import Settings

    # The group's settings when run as `segsync health`, else the environment's.
    database = context.obj
    settings = getattr(database, "settings", None) or Settings()
    names = [name for name in CHECK_NAMES if name in checks] if checks else list(CHECK_NAMES)
    results = run_checks(settings, names, timeout)
    if as_json:
        echo_json(
            {
                "ok": all(result.ok for result in results),
                "checks": [
                    {
                        "name": result.name,
                        "ok": result.ok,
                        "detail": result.detail,
                        "seconds": round(result.seconds, 3),
                    }
                    for result in results
                ],
            }
        )
    else:
        width = max(len(name) for name in names) + 2
        for result in results:
            click.echo(f"{result.name:<{width}}{'ok' if result.ok else 'fail':<6}{result.detail}")
    failed = [result.name for result in results if not result.ok]
    if failed:
        click.echo(
            f"segsync: {len(failed)} of {len(results)} checks failed: {', '.join(failed)}", err=True
        )
        raise SystemExit(1)
