"""deploy/compose.yaml and the Dockerfile, played without Docker: each segsync service becomes a
local process of a wheel built from the image's build context, with the service's command,
environment, secret files, state volume and healthcheck, its hosts and ports mapped to the test's.

What Docker would do, and how it is done here:
- the image: the files the Dockerfile COPYs into its builder stage make a wheel, installed into a
  fresh venv whose bin/ stands for the image's PATH (dependencies reached through a .pth, as in
  tests/worker/test_packaging.py, so `worker` can only come from that wheel);
- a secret: its file goes into a folder of the service's own, named by SEGSYNC_SECRETS_DIR, which
  stands for /run/secrets (only the secrets the service lists are there);
- the state volume (the image's SEGSYNC_STATE_DIR): a folder of the service's own;
- the hosts `postgres` and `redis`: the test's servers (and a fresh database of its own);
- a published port: a free port, replaced in the command and in the healthcheck alike;
- HOSTNAME, which Docker sets in every container: this machine's host name.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from tests.services import free_port

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "deploy" / "compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
# The services built from the Dockerfile; postgres and redis are images of their own.
SEGSYNC_SERVICES = ("migrate", "worker", "beat", "flower", "metrics", "api")
LONG_RUNNING = ("worker", "beat", "flower", "metrics", "api")


def load_compose() -> dict[str, Any]:
    """deploy/compose.yaml as Compose reads it (YAML anchors and merge keys resolved)."""
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return compose


def unescape(text: str) -> str:
    """A compose string with its `$$` turned into `$`; any other `$` (interpolation from the
    host's environment, which this test does not play) fails the test."""
    left = text.replace("$$", "")
    assert "$" not in left, f"compose interpolation is not played by this test: {text!r}"
    return text.replace("$$", "$")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def image_environment() -> dict[str, str]:
    """The variables the image's ENV lines set (KEY=VALUE forms)."""
    values: dict[str, str] = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == "ENV":
            for pair in arguments.split():
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def build_context_sources() -> list[str]:
    """What the builder stage COPYs from the build context (not from another stage)."""
    sources: list[str] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY" and "--from" not in arguments:
            *copied, _destination = arguments.split()
            sources += copied
    return sources


@dataclass(frozen=True)
class Image:
    """The wheel of the build context installed into a fresh venv: the image's programs."""

    bin: Path

    def path(self) -> str:
        """PATH of a container of the image: the venv's programs, then the system's."""
        return f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"


def _run(args: list[str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_image(root: Path) -> Image:
    """Build the wheel from the Dockerfile's build context alone and install it (no deps)."""
    context = root / "context"
    context.mkdir(parents=True)
    for source in build_context_sources():
        origin = REPO / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(origin, context / source)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(root / "dist"),
            str(context),
        ]
    )
    (wheel,) = (root / "dist").glob("segsync-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ]
    )
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    dependencies = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    Path(site.strip(), "segsync-test-dependencies.pth").write_text(
        "".join(f"{folder}\n" for folder in dependencies)
    )
    # pip makes each dependency's console scripts in the image; here Celery's, by the same recipe.
    celery = venv / "bin" / "celery"
    celery.write_text(
        f"#!{python}\nimport sys\nfrom celery.__main__ import main\nsys.exit(main())\n"
    )
    celery.chmod(0o755)
    return Image(venv / "bin")


@dataclass(frozen=True)
class Servers:
    """Where the compose hosts point in the test: its PostgreSQL database and its Redis."""

    # postgresql+psycopg://user@127.0.0.1:port/fresh_database: no password, that is a secret.
    database_url: str
    redis_url: str  # redis://127.0.0.1:port/0


def map_url(value: str, servers: Servers) -> str:
    """A compose URL naming the host `postgres` or `redis`, pointed at the test's server."""
    parts = urlsplit(value)
    if parts.hostname == "postgres":
        assert parts.password is None, "the compose database URL must not carry a password"
        test = urlsplit(servers.database_url)
        return urlunsplit((parts.scheme, test.netloc, test.path, "", ""))
    if parts.hostname == "redis":
        return urlunsplit((parts.scheme, urlsplit(servers.redis_url).netloc, parts.path, "", ""))
    return value


def container_ports(service: dict[str, Any]) -> list[str]:
    """The container side of each published port ("127.0.0.1:5555:5555" -> "5555")."""
    return [str(entry).rsplit(":", 1)[-1].split("/")[0] for entry in service.get("ports", [])]


def secret_names(service: dict[str, Any]) -> list[str]:
    """Names of the secrets a service mounts (short or long syntax)."""
    return [
        entry if isinstance(entry, str) else entry["source"] for entry in service.get("secrets", [])
    ]


@dataclass
class LocalService:
    """One compose service as a local process: its command, environment and healthcheck."""

    name: str
    command: list[str]
    environment: dict[str, str]
    workdir: Path
    healthcheck: list[str] | None
    healthcheck_timeout: float
    ports: dict[str, int]


def seconds(duration: str) -> float:
    """A compose duration ("30s", "1m", "1m30s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def local_service(
    compose: dict[str, Any],
    name: str,
    image: Image,
    servers: Servers,
    secrets_folder: Path,
    root: Path,
) -> LocalService:
    """Service `name` of `compose`, ready to start here (its folders made under `root`)."""
    service = compose["services"][name]
    home = root / name
    mounted = home / "run-secrets"
    mounted.mkdir(parents=True)
    for secret in secret_names(service):
        source = Path(compose["secrets"][secret]["file"]).name
        shutil.copyfile(secrets_folder / source, mounted / secret)
    state = home / "state"
    state.mkdir()
    ports = {port: free_port() for port in container_ports(service)}

    def mapped(text: str) -> str:
        text = unescape(text)
        for container, local in ports.items():
            text = re.sub(rf"\b{container}\b", str(local), text)
        return text

    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SEGSYNC_", "XDG_", "PYTHON"))
    }
    environment = {
        **inherited,
        **image_environment(),
        "PATH": image.path(),
        "HOME": str(home),
        "HOSTNAME": socket.gethostname(),
        **{
            key: map_url(unescape(str(value)), servers)
            for key, value in service["environment"].items()
        },
        "SEGSYNC_SECRETS_DIR": str(mounted),
        "SEGSYNC_STATE_DIR": str(state),
    }
    healthcheck = None
    timeout = 30.0
    if "healthcheck" in service:
        test = service["healthcheck"]["test"]
        if isinstance(test, str):
            test = ["CMD-SHELL", test]
        kind, *rest = test
        assert kind in ("CMD", "CMD-SHELL"), test
        healthcheck = [mapped(part) for part in rest]
        if kind == "CMD-SHELL":
            healthcheck = ["/bin/sh", "-c", *healthcheck]
        timeout = seconds(service["healthcheck"].get("timeout", "30s"))
    return LocalService(
        name=name,
        command=[mapped(str(part)) for part in service["command"]],
        environment=environment,
        workdir=state,
        healthcheck=healthcheck,
        healthcheck_timeout=timeout,
        ports=ports,
    )
