"""An installed segsync (a wheel, not the checkout) runs its Celery programs from any folder.

The wheel is built from a copy of the source tree and installed into a fresh venv that reaches
the dependencies through a .pth line naming the test environment's site-packages. Python adds that
folder to sys.path without running the .pth files inside it, so the editable install of segsync
stays switched off: `worker` and `celeryconfig` can only come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from tests.services import free_port
from tests.worker.celery_processes import BEAT_STARTED, WORKER_READY, CeleryProcess
from tests.worker.celery_stack import wait_until

REPO = Path(__file__).resolve().parents[2]
# What a fresh clone does not have; a stale build/ would even leak old files into the wheel.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "*.db*"
)
# Each program waits on a loaded 2-core machine, next to four others starting with it.
START_TIMEOUT = 120.0
FLOWER_AUTH = ("ops", "wheel-flower-pass")


@dataclass(frozen=True)
class Installed:
    """A fresh venv holding only the segsync wheel (dependencies reached through a .pth)."""

    venv: Path
    python: Path
    segsync: Path


def run(args: list[str], cwd: Path | None = None) -> str:
    """Run a build step; fail with its output if it fails."""
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(root / "dist"), str(source)])
    (wheel,) = (root / "dist").glob("segsync-*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    # Installed before the .pth exists, so pip cannot see (and try to replace) the editable one.
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    run([*pip, "install", "--no-deps", "--no-index", str(wheel)])
    venv_site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    dependencies = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    Path(venv_site.strip(), "segsync-test-dependencies.pth").write_text(
        "".join(f"{folder}\n" for folder in dependencies)
    )
    return Installed(venv=venv, python=python, segsync=venv / "bin" / "segsync")


def program_environment(
    tmp_path: Path, sqlite_template: Path, redis_url: str, redis_db: int
) -> dict[str, str]:
    """The environment of a Celery program started by a test: its own SQLite copy, its own
    Redis database, its own state folder and home (nothing lands in the user's)."""
    database = tmp_path / "data" / "segsync.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sqlite_template, database)
    broker = f"{redis_url.rsplit('/', 1)[0]}/{redis_db}"
    redis.Redis.from_url(broker).flushdb()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.pop("XDG_STATE_HOME", None)
    return {
        **env,
        "HOME": str(tmp_path / "home"),
        "SEGSYNC_DATABASE_URL": f"sqlite:///{database}",
        "SEGSYNC_BROKER_URL": broker,
        "SEGSYNC_STATE_DIR": str(tmp_path / "state" / "segsync"),
    }


class Program(CeleryProcess):
    """A program of the fresh venv, started in its own process group from `cwd`."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        self.log = log
        self._handle = log.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def local_http() -> requests.Session:
    """HTTP to 127.0.0.1 that no proxy setting of the environment reroutes."""
    session = requests.Session()
    session.trust_env = False
    return session


def flower_answers(http: requests.Session, port: int) -> bool:
    """Whether Flower serves its health check yet."""
    try:
        return http.get(f"http://127.0.0.1:{port}/healthcheck", timeout=10).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # not listening yet, or busy starting
        return False


def test_the_wheel_holds_worker_and_celeryconfig(installed: Installed, tmp_path: Path) -> None:
    printed = run(
        [
            str(installed.python),
            "-c",
            "import celery, celeryconfig, worker; "
            "print(worker.__file__, celeryconfig.__file__, celery.__file__, sep='\\n')",
        ],
        cwd=tmp_path,
    )
    worker_file, celeryconfig_file, celery_file = map(Path, printed.split())
    assert worker_file.is_relative_to(installed.venv), worker_file
    assert celeryconfig_file.is_relative_to(installed.venv), celeryconfig_file
    assert not celery_file.is_relative_to(installed.venv)  # a dependency, through the .pth
    assert list(tmp_path.iterdir()) == []


def test_celery_programs_of_the_wheel_run_from_any_folder(
    installed: Installed, tmp_path: Path, sqlite_template: Path, redis_url: str
) -> None:
    env = program_environment(tmp_path, sqlite_template, redis_url, redis_db=7)
    state = Path(env["SEGSYNC_STATE_DIR"])
    xdg_state = tmp_path / "xdg-state"
    cwd = tmp_path / "anywhere"
    logs = tmp_path / "logs"
    cwd.mkdir()
    logs.mkdir()
    port = free_port()
    celery = [str(installed.python), "-m", "celery", "-A", "worker"]
    quick = ["--without-gossip", "--without-mingle", "--concurrency=1"]
    # Without SEGSYNC_STATE_DIR, beat's state folder is $XDG_STATE_HOME/segsync.
    default_state_env = {k: v for k, v in env.items() if k != "SEGSYNC_STATE_DIR"}
    started = {
        "segsync worker": ([str(installed.segsync), "worker", "-n", "wheel-a@%h", *quick], env),
        "celery worker": ([*celery, "worker", "-l", "INFO", "-n", "wheel-b@%h", *quick], env),
        "segsync beat": ([str(installed.segsync), "beat"], env),
        "celery beat": (
            [*celery, "beat", "-l", "INFO"],
            {**default_state_env, "XDG_STATE_HOME": str(xdg_state)},
        ),
        "segsync flower": (
            [str(installed.segsync), "flower", f"--port={port}", "--persistent=True"],
            {**env, "SEGSYNC_FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH)},
        ),
    }
    programs = {
        name: Program(command, program_env, logs / f"{name.replace(' ', '-')}.log", cwd)
        for name, (command, program_env) in started.items()
    }
    try:
        programs["segsync worker"].wait_for(WORKER_READY, START_TIMEOUT)
        programs["celery worker"].wait_for(WORKER_READY, START_TIMEOUT)
        programs["segsync beat"].wait_for(BEAT_STARTED, START_TIMEOUT)
        programs["celery beat"].wait_for(BEAT_STARTED, START_TIMEOUT)
        flower = programs["segsync flower"]
        http = local_http()
        wait_until(lambda: flower_answers(http, port), START_TIMEOUT, "Flower", flower.output)
        metrics = f"http://127.0.0.1:{port}/metrics"
        assert http.get(metrics, timeout=30).status_code == 401
        assert http.get(metrics, auth=FLOWER_AUTH, timeout=30).status_code == 200
    finally:
        for program in programs.values():
            program.stop()
    for name, program in programs.items():
        assert "Traceback" not in program.output(), f"{name}:\n{program.output()[-3000:]}"
    assert list(state.glob("celerybeat-schedule*")), sorted(state.parent.rglob("*"))
    assert list(state.glob("flower*")), sorted(state.parent.rglob("*"))  # Flower's database
    assert list((xdg_state / "segsync").glob("celerybeat-schedule*"))
    assert list(cwd.iterdir()) == []
    redis.Redis.from_url(env["SEGSYNC_BROKER_URL"]).flushdb()


def test_beat_refuses_a_state_folder_it_cannot_create_in_one_line(
    installed: Installed, tmp_path: Path, sqlite_template: Path, redis_url: str
) -> None:
    env = program_environment(tmp_path, sqlite_template, redis_url, redis_db=7)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env["SEGSYNC_STATE_DIR"] = str(blocker / "state")
    commands = {
        "segsync beat": [str(installed.segsync), "beat"],
        "celery beat": [str(installed.python), "-m", "celery", "-A", "worker", "beat"],
    }
    for name, command in commands.items():
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 1, (name, done.stdout, done.stderr)
        refusal = done.stderr.strip().splitlines()[-1]
        assert refusal == (
            f"segsync: cannot create the state folder {blocker / 'state'} (Not a directory): "
            "set SEGSYNC_STATE_DIR to a folder segsync may write"
        ), (name, done.stderr)
        assert "Traceback" not in done.stderr, name


def test_git_ignores_celery_state_files_left_in_the_checkout() -> None:
    stray = ["celerybeat-schedule", "celerybeat-schedule.db", "examples/celerybeat-schedule.dat"]
    stray += ["celerybeat.pid", "flower", "flower.db"]
    kept = ["celeryconfig.py", "worker/flower_gate.py", "tests/worker/test_flower.py"]
    check = ["git", "-C", str(REPO), "check-ignore", "--no-index", "--verbose", "--non-matching"]
    done = subprocess.run([*check, *stray, *kept], capture_output=True, text=True, check=False)
    # --verbose --non-matching prints "source:line:pattern<TAB>path", with "::" for no match.
    matched = {line.split("\t")[1]: not line.startswith("::") for line in done.stdout.splitlines()}
    assert matched == {**dict.fromkeys(stray, True), **dict.fromkeys(kept, False)}, done.stderr


def test_the_wheels_web_app_serves_its_pages_and_files_from_any_folder(
    installed: Installed, tmp_path: Path, sqlite_template: Path, redis_url: str
) -> None:
    env = program_environment(tmp_path, sqlite_template, redis_url, redis_db=7)
    cwd = tmp_path / "anywhere"
    cwd.mkdir()
    password = "wheel web app password"
    made = subprocess.run(
        [str(installed.segsync), "users", "create", "ana", "--role", "admin", "--password-stdin"],
        input=password + "\n",
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    port = free_port()
    server = Program(
        [str(installed.segsync), "api", "--port", str(port)], env, tmp_path / "api.log", cwd
    )
    http = local_http()
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return http.get(base + "/healthz", timeout=10).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            return False

    try:
        wait_until(answers, START_TIMEOUT, "segsync api", server.output)
        form = http.get(base + "/sign-in", timeout=30)
        assert form.status_code == 200 and 'action="/sign-in"' in form.text
        for asset in ("/static/app.css", "/static/app.js"):
            assert http.get(base + asset, timeout=30).status_code == 200, asset
        token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed_in = http.post(
            base + "/sign-in",
            data={"name": "ana", "password": password, "csrf_token": token, "next": "/accounts"},
            timeout=30,
        )
        assert signed_in.status_code == 200 and "<h1>Account Details</h1>" in signed_in.text
    finally:
        server.stop()
    assert "Traceback" not in server.output(), server.output()[-3000:]
    assert list(cwd.iterdir()) == []
