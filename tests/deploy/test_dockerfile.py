"""The Dockerfile and .dockerignore, read as Docker reads them (no engine runs the tests): a
builder stage makes the wheel, a slim stage installs only it and runs as a fixed non-root user,
the state folder is a volume, and nothing secret is in the image or its build context."""

from __future__ import annotations

import re

from tests.deploy.compose_local import (
    DOCKERIGNORE,
    build_context_sources,
    dockerfile_instructions,
    image_environment,
)

INSTRUCTIONS = dockerfile_instructions()
SECRET_WORDS = re.compile(r"SECRET|PASSWORD|BASIC_AUTH|TOKEN|FERNET|KEY", re.IGNORECASE)


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the image's last stage (after its FROM)."""
    last_from = max(i for i, (keyword, _) in enumerate(INSTRUCTIONS) if keyword == "FROM")
    return INSTRUCTIONS[last_from:]


def test_a_builder_stage_makes_the_wheel_and_a_slim_python_311_installs_only_it() -> None:
    froms = [arguments for keyword, arguments in INSTRUCTIONS if keyword == "FROM"]
    assert froms == ["python:3.11-slim AS build", "python:3.11-slim"]
    runs = [arguments for keyword, arguments in INSTRUCTIONS if keyword == "RUN"]
    assert any("pip wheel" in run and "--wheel-dir /wheels" in run for run in runs)
    (install,) = [arguments for keyword, arguments in final_stage() if "pip install" in arguments]
    # Only the builder's wheels (no index), which are mounted, not copied into a layer.
    assert "--no-index" in install and "--find-links=/wheels" in install
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in install


def test_the_image_runs_as_a_fixed_non_root_user() -> None:
    users = [arguments for keyword, arguments in final_stage() if keyword == "USER"]
    assert users == ["10001:10001"]
    # The user is made with those ids, and nothing runs as root after USER.
    assert any("--uid 10001" in a and "--gid 10001" in a for k, a in final_stage() if k == "RUN")
    after_user = final_stage()[[k for k, _ in final_stage()].index("USER") :]
    assert not [a for k, a in after_user if k == "RUN"]


def test_the_state_folder_is_a_volume_the_user_owns() -> None:
    state_dir = image_environment()["SEGSYNC_STATE_DIR"]
    assert ("VOLUME", f'["{state_dir}"]') in final_stage()
    assert ("WORKDIR", state_dir) in final_stage()
    assert any(f"install -d -o 10001 -g 10001 -m 0750 {state_dir}" in a for _, a in final_stage())


def test_nothing_secret_is_in_the_image() -> None:
    for keyword, arguments in INSTRUCTIONS:
        if keyword in ("ENV", "ARG", "LABEL"):
            assert not SECRET_WORDS.search(arguments), (keyword, arguments)
    assert not [k for k in image_environment() if SECRET_WORDS.search(k)]


def test_the_default_command_is_a_worker() -> None:
    assert final_stage()[-1] == ("CMD", '["segsync", "worker"]')


def test_the_build_context_holds_the_wheels_sources_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Everything is left out, then the sources are let back in one by one.
    assert patterns[0] == "*"
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    assert allowed == set(build_context_sources())
    assert {"pyproject.toml", "models", "connectors", "worker", "celeryconfig.py"} <= allowed
