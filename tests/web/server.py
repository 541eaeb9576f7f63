"""The real `segsync api` process the web tests talk to, over HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.services import free_port, stop_process_group
from tests.worker.celery_stack import wait_until

SEGSYNC = str(Path(sys.executable).parent / "segsync")
# Loaded machines start a Python process with FastAPI in a few seconds; give it plenty.
START_SECONDS = 90


@dataclass
class ApiServer:
    """A running `segsync api`: where it answers and what it logged."""

    base_url: str
    log: Path
    process: subprocess.Popen[bytes]

    def url(self, path: str) -> str:
        return self.base_url + path

    def get(self, path: str, key: str | None = None, **options: object) -> requests.Response:
        return self.call("GET", path, key, **options)

    def call(
        self, method: str, path: str, key: str | None = None, **options: object
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return requests.request(method, self.url(path), headers=headers, timeout=30, **options)  # type: ignore[arg-type]

    def logged(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _answers(base_url: str, verify: str | bool = True) -> bool:
    try:
        return requests.get(base_url + "/healthz", timeout=2, verify=verify).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def running_api(
    env: Mapping[str, str],
    folder: Path,
    *,
    workers: int = 1,
    tls: tuple[Path, Path, Path] | None = None,
) -> Iterator[ApiServer]:
    """`segsync api` on a free port with `env` added to the environment, until the block ends;
    over HTTPS with `tls` (certificate, key, and the CA bundle that verifies them)."""
    port = free_port()
    log = folder / f"api-{port}.log"
    command = [SEGSYNC, "api", "--port", str(port), "--workers", str(workers)]
    if tls is not None:
        command += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    verify: str | bool = str(tls[2]) if tls is not None else True
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=folder,
            start_new_session=True,
        )
    scheme = "https" if tls is not None else "http"
    server = ApiServer(f"{scheme}://127.0.0.1:{port}", log, process)
    try:
        wait_until(
            lambda: process.poll() is not None or _answers(server.base_url, verify),
            START_SECONDS,
            "segsync api to answer /healthz",
            server.logged,
        )
        assert process.poll() is None, f"segsync api ended:\n{server.logged()}"
        yield server
    finally:
        stop_process_group(process)
