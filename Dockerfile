# ainews: one `ainews run` process per container. compose.yaml runs two of them against one
# PostgreSQL (README: "Scaling out"). Build: docker build -t ainews .

# ── build: resolve from uv.lock into /app/.venv, the project installed as a wheel ──────────────
FROM python:3.11-slim-bookworm AS build

# The same uv as the Makefile (UV_VERSION), so the image resolves uv.lock exactly as `make sync`.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

# Bytecode is compiled at install: containers often run with a read-only or throwaway layer,
# where every start would otherwise recompile ~500 modules (most of a command's start-up).
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /src
# Dependencies first (their layer is kept while only the code changes), then the project itself,
# installed non-editable so the image needs no checkout: bot/defaults/*.toml, the demo feeds and
# the migrations ship inside the packages.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --no-editable
COPY bot ./bot
COPY handlers ./handlers
COPY jobs ./jobs
COPY storage ./storage
RUN uv sync --frozen --no-dev --no-editable

# ── runtime: the virtualenv only, as an unprivileged user ──────────────────────────────────────
FROM python:3.11-slim-bookworm

RUN groupadd --system --gid 10001 ainews \
    && useradd --system --uid 10001 --gid ainews --home-dir /var/lib/ainews --create-home ainews

COPY --from=build /app/.venv /app/.venv

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AINEWS_VAR_DIR=/var/lib/ainews/var \
    AINEWS_HEALTH_PORT=8080

USER ainews
WORKDIR /var/lib/ainews

# 8080: /healthz and /readyz (AINEWS_HEALTH_PORT); 3000: Slack HTTP mode (AINEWS_HTTP_PORT).
EXPOSE 8080 3000

# Liveness: the health server of `ainews run` answers. The slim image has no curl, so Python asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AINEWS_HEALTH_PORT', '8080'), timeout=4)"]

# SIGTERM (docker stop) lets running jobs finish for AINEWS_SHUTDOWN_GRACE seconds.
STOPSIGNAL SIGTERM
CMD ["ainews", "run"]
