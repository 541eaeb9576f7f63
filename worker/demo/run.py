"""`segsync demo`: segsync's whole job on a fresh machine, with no services and no settings.

A SQLite database in a folder of its own gets the realistic sample (worker.demo.data) through the
same functions a user's commands call; the sandbox emulators hold CRM/MAP records that match those
accounts; one orchestration per supported system and object runs twice in the foreground: the
first run fills the field, the second finds nothing left to write. The user's own database and
SEGSYNC_* settings are never read.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connectors.sandbox.cluster import Sandbox
from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.systems import SYSTEMS, VENDORS
from models.connections import ConnectionSpec, add_connection, find_connection, new_secret_key
from models.db import upgrade
from models.errors import RuleError
from models.orchestrations import OrchestrationSpec, Scope, create_orchestration, find_orchestration
from models.runs import RUN_COUNTS, SyncRun
from worker.connector_factory import build_config, check_keys, connector_for
from worker.database import Database
from worker.demo.data import DemoSample, load_sample, make_sample, seed_emulators
from worker.demo.defaults import DATABASE_FILE, DEFAULT_ACCOUNTS
from worker.sandbox_connections import sandbox_connection
from worker.settings import Settings
from worker.sync import run_in_foreground, start_run

Say = Callable[[str], None]


def targets(described: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(system, object, field): each object every registry system's emulator describes, with its
    segment field, system by system in the registry's order.

    `described` is the running sandbox's description (`Sandbox.describe()`): an emulator names
    its objects and their segment fields under "fields" (a test holds them to the adapters).
    """
    return [
        (system, object_type, field)
        for system in SYSTEMS
        for object_type, field in described[system]["fields"].items()
    ]


@dataclass(frozen=True)
class Target:
    """One demo orchestration: its name, the connection it writes through, and what it fills."""

    name: str
    connection: str
    system: str
    object_type: str
    field: str


class DemoEnvironment:
    """The demo's database, running emulators, connections and orchestrations, ready to run."""

    def __init__(
        self, folder: Path, database: Database, sandbox: Sandbox, sample: DemoSample, say: Say
    ) -> None:
        self.folder = folder
        self.database = database
        self.sandbox = sandbox
        self.sample = sample  # with the record ids the emulators assigned
        self.say = say
        self.targets: list[Target] = []

    def run_all(self) -> list[dict[str, Any]]:
        """Run every orchestration once in the foreground; one row of counts per orchestration."""
        return [self.run(target) for target in self.targets]

    def run(self, target: Target) -> dict[str, Any]:
        """Run one orchestration as `segsync sync NAME` does; refuse if it does not succeed."""
        with self.database.transaction() as session:
            run_id = start_run(session, find_orchestration(session, target.name), "manual").id
        # A fresh connector per run, as each `segsync sync` has: the run counts its API calls.
        connector = connector_for(self.database, target.connection)
        finished: SyncRun = run_in_foreground(self.database.sessions(), run_id, connector)
        if finished.status != "succeeded":
            raise RuleError(f"demo run of {target.name!r} {finished.status}: {finished.reason}")
        self.say(f"  {target.name}: {finished.enriched} written, {finished.unchanged} unchanged")
        return {
            "system": target.system,
            "object": target.object_type,
            **{key: getattr(finished, key) for key in RUN_COUNTS},
        }


def isolated_database(folder: Path, secret_key: str) -> Database:
    """The demo's own database, with settings that never come from the environment."""
    # model_construct skips the environment: SEGSYNC_DATABASE_URL and SEGSYNC_SECRET_KEY belong
    # to the user's own segsync and must neither be read nor matter here.
    settings = Settings.model_construct(
        database_url=f"sqlite:///{folder.resolve() / DATABASE_FILE}",
        secret_key=SecretStr(secret_key),
    )
    return Database(settings)


@contextmanager
def demo_environment(
    accounts: int = DEFAULT_ACCOUNTS, folder: Path | None = None, say: Say = lambda _: None
) -> Iterator[DemoEnvironment]:
    """Set the demo up, yield it, then stop the emulators and remove a temporary folder."""
    if folder is not None and (folder / DATABASE_FILE).exists():
        raise RuleError(f"{folder / DATABASE_FILE} exists already: give --folder a new folder")
    with ExitStack() as stack:
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="segsync-demo-"))
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
            say(f"demo folder {folder} (temporary: removed at the end)")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            say(f"demo folder {folder} (kept)")
        database = isolated_database(folder, new_secret_key())
        # Registered after the folder's removal, so it runs before it: no open file stays behind.
        stack.callback(lambda: database.engine.dispose())
        upgrade(database.engine)
        sample = make_sample(accounts)
        say(f"starting the {_listed(VENDORS[system].title for system in SYSTEMS)} emulators")
        sandbox = stack.enter_context(Sandbox(list(SYSTEMS)))
        # HubSpot allows a Professional or Enterprise portal's private app 190 requests per 10 s
        # (100 on Free and Starter): with that, both rounds at the default size fit in the window
        # instead of stalling 10 s on a 429, which the runs would otherwise handle the same way.
        hubspot = sandbox.emulators["hubspot"]
        assert isinstance(hubspot, HubSpotEmulator)
        hubspot.requests_per_ten_seconds = 190
        seeded = seed_emulators(sample, sandbox.emulators)
        records = sum(len(r) for tables in seeded.records.values() for r in tables.values())
        say(f"seeded the emulators with {records} CRM/MAP records")
        with database.transaction() as session:
            loaded = load_sample(session, seeded, folder / "sample")
        environment = DemoEnvironment(folder, database, sandbox, seeded, say)
        say(
            f"imported {loaded.created} accounts, created {len(sample.segments)} segments, "
            f"{sum(bool(s.uses) for s in sample.segments)} of them published"
        )
        _connect(environment)
        yield environment


def _listed(names: Iterable[str]) -> str:
    """The names as prose: "A, B and C"."""
    *others, last = names
    return f"{', '.join(others)} and {last}" if others else last


def _connect(environment: DemoEnvironment) -> None:
    """Add a connection per emulator and an orchestration per object, as the CLI commands do."""
    described = environment.sandbox.describe()
    connections = {}
    for system in SYSTEMS:
        settings, secrets = sandbox_connection(system, described)
        connections[system] = ConnectionSpec(
            name=f"demo-{system}",
            system=system,
            settings=settings,
            secrets=secrets,
            secret_environment={},
        )
    database = environment.database
    for spec in connections.values():
        check_keys(spec.system, spec.settings, spec.secrets)
        build_config(spec.system, {**spec.settings, **spec.secrets})
        with database.transaction() as session:
            add_connection(session, spec, database.settings.secret_key_text())
    for system, object_type, field in targets(described):
        connection_name = connections[system].name
        connector = connector_for(database, connection_name)
        described_field = connector.describe_field(connector.check_object(object_type), field)
        target = Target(
            name=f"{system} {object_type}",
            connection=connection_name,
            system=system,
            object_type=described_field.object_type,
            field=described_field.name,
        )
        with database.transaction() as session:
            connection_id = find_connection(session, connection_name).id
            create_orchestration(
                session,
                OrchestrationSpec(
                    name=target.name,
                    connection_id=connection_id,
                    object_type=target.object_type,
                    field=target.field,
                    scope=Scope("all"),
                ),
            )
        environment.targets.append(target)
    environment.say(f"created {len(environment.targets)} orchestrations")


@dataclass(frozen=True)
class DemoResult:
    """The counts of both rounds of runs, and the folder that was kept (None: removed)."""

    first: list[dict[str, Any]]
    second: list[dict[str, Any]]
    kept_folder: Path | None


def run_demo(
    accounts: int = DEFAULT_ACCOUNTS, folder: Path | None = None, say: Say = lambda _: None
) -> DemoResult:
    """Set up the demo, run every orchestration twice, and stop what it started."""
    with demo_environment(accounts, folder, say) as environment:
        say("first run: every record that needs its segment names gets them")
        first = environment.run_all()
        say("second run: nothing changed, so nothing is left to write")
        second = environment.run_all()
    return DemoResult(first, second, folder)
