"""Starts several emulators at once with one CA: what `segsync sandbox start` and tests run."""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from connectors.sandbox.seeding import SeededCompanies
from connectors.sandbox.server import Emulator, EmulatorServer
from connectors.sandbox.tls import SandboxCertificates, make_certificates
from connectors.systems import VENDORS

EmulatorFactory = Callable[[int, float], Emulator]


def emulator_class(path: str) -> type[Emulator]:
    """The emulator class at `path` ("module:Class", as the registry names it), imported now."""
    module_name, _, class_name = path.partition(":")
    emulator = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(emulator, type) and issubclass(emulator, Emulator)):
        raise TypeError(f"{path} is not an emulator")
    return emulator


def emulator_factory(path: str) -> EmulatorFactory:
    """Makes the emulator class at `path` ("module:Class"), imported on first use."""

    def make(records: int, latency: float) -> Emulator:
        # Every emulator takes the records to seed and its latency (the base class only latency).
        seeded_emulator: Callable[..., Emulator] = emulator_class(path)
        return seeded_emulator(records=records, latency=latency)

    return make


# system -> factory(records, latency seconds), one per registry entry.
EMULATORS: dict[str, EmulatorFactory] = {
    name: emulator_factory(vendor.emulator) for name, vendor in VENDORS.items()
}


def _seeded(emulator: Emulator) -> SeededCompanies:
    # Every emulator notes the companies its own seed put records at (`seeded`).
    seeded = getattr(emulator, "seeded", None)
    if not isinstance(seeded, SeededCompanies):
        raise TypeError(f"{type(emulator).__name__} notes no seeded companies")
    return seeded


def parse_systems(text: str) -> list[str]:
    """`"salesforce,hubspot"` -> the systems, checked against the emulators there are."""
    systems = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [system for system in systems if system not in EMULATORS]
    if unknown or not systems:
        raise ValueError(
            f"unknown sandbox system {', '.join(unknown) or repr(text)} "
            f"(systems: {', '.join(EMULATORS)})"
        )
    return list(dict.fromkeys(systems))


class Sandbox:
    """Running emulators for some systems, sharing one CA; a context manager that stops them."""

    def __init__(
        self,
        systems: Sequence[str],
        records: int = 0,
        latency: float = 0.0,
        directory: Path | None = None,
    ) -> None:
        self._temporary = None if directory else tempfile.TemporaryDirectory(prefix="segsync-")
        folder = directory or Path(self._temporary.name)  # type: ignore[union-attr]
        self.certificates: SandboxCertificates = make_certificates(folder / "tls")
        self.emulators: dict[str, Emulator] = {}
        # The companies the emulators' own seeds put records at, with the ids linking to them.
        self.seeded = SeededCompanies()
        self._servers: list[EmulatorServer] = []
        try:
            for system in systems:
                emulator = EMULATORS[system](records, latency)
                self.seeded.merge(_seeded(emulator))
                server = EmulatorServer(emulator, self.certificates)
                server.start()
                self._servers.append(server)
                self.emulators[system] = emulator
        except BaseException:
            self.stop()
            raise

    def describe(self) -> dict[str, Any]:
        """One entry per system (base_url, credentials, `fields`) plus the `ca_bundle` path."""
        described: dict[str, Any] = {
            system: emulator.describe() for system, emulator in self.emulators.items()
        }
        described["ca_bundle"] = str(self.certificates.ca_bundle)
        return described

    def stop(self) -> None:
        """Stop every emulator and remove the run's files."""
        for server in self._servers:
            server.stop()
        self._servers.clear()
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
