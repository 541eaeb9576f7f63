# segsync's image: every program (migrate, worker, beat, flower, metrics) from one installed
# wheel. deploy/compose.yaml runs it; README "Deploying". No secret is baked in: the Fernet key,
# Flower's credentials and the database password come at run time from secret files
# (/run/secrets, SEGSYNC_SECRETS_DIR) or the environment. Built with BuildKit (Docker's default
# builder since 23.0) for RUN --mount; no `# syntax` line, so no frontend image is pulled.

# Builder: the wheel of segsync and of every dependency, so the runtime stage needs no compiler
# and no network.
FROM python:3.11-slim AS build
WORKDIR /src
# Only what the wheel is made of (.dockerignore lets nothing else into the context).
COPY pyproject.toml README.md celeryconfig.py ./
COPY models models
COPY connectors connectors
COPY worker worker
COPY web web
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SEGSYNC_STATE_DIR=/var/lib/segsync
# A fixed uid and gid, so volumes and secret files can be given to it on the host, and so a
# platform can check it is not root (Kubernetes runAsNonRoot needs a number).
RUN groupadd --system --gid 10001 segsync \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/segsync \
        --shell /usr/sbin/nologin segsync \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/segsync
# Installed from the builder's wheels only (--no-index), mounted rather than copied, so they
# leave no layer behind.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels segsync
USER 10001:10001
# The state folder (beat's schedule, Flower's database) is the one place segsync writes to.
VOLUME ["/var/lib/segsync"]
WORKDIR /var/lib/segsync
# The service most deployments run many of; compose gives every service its own command.
CMD ["segsync", "worker"]
