# cohortlab service image: one image for the API (the default command), the
# Celery worker, Celery beat and the one-shot migration (docker-compose.yml
# picks the command per service).
#
#   docker build -t cohortlab:local .
#   docker run --rm -p 8000:8000 cohortlab:local          # API on the embedded SQLite store
#
# Validated statically in CI (tests/test_deploy_static.py); see the README.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- assets: the dashboard's htmx and the API docs' Swagger UI and ReDoc from
# their npm registry packages (never a CDN; web/package.json, web/package-lock.json) ----
FROM node:20.19.5-bookworm-slim AS assets
WORKDIR /web
COPY web/package.json web/package-lock.json ./
# No install scripts: only files are taken from this stage (and no install-time telemetry).
RUN npm ci --no-audit --no-fund --ignore-scripts

# ---- build: install cohortlab and its production extra into a virtualenv ----
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what the package build needs: metadata, readme, the Python packages.
COPY pyproject.toml README.md ./
COPY simulator/ simulator/
COPY evolution/ evolution/
COPY learning/ learning/
COPY risk/ risk/
COPY manager/ manager/
COPY api/ api/
COPY web/ web/
COPY --from=assets /web/node_modules/htmx.org/dist/htmx.min.js web/node_modules/htmx.org/dist/htmx.min.js
COPY --from=assets /web/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
     /web/node_modules/swagger-ui-dist/swagger-ui.css \
     /web/node_modules/swagger-ui-dist/favicon-32x32.png \
     /web/node_modules/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt \
     /web/node_modules/swagger-ui-dist/LICENSE \
     /web/node_modules/swagger-ui-dist/NOTICE \
     web/node_modules/swagger-ui-dist/
COPY --from=assets /web/node_modules/redoc/bundles/redoc.standalone.js \
     /web/node_modules/redoc/bundles/redoc.standalone.js.LICENSE.txt \
     web/node_modules/redoc/bundles/
COPY --from=assets /web/node_modules/redoc/LICENSE web/node_modules/redoc/LICENSE
COPY migrations/ migrations/
# Production extra only (Celery + Redis, PyMongo, Prometheus client, FastAPI,
# uvicorn); never the test or bench extras.
RUN pip install --upgrade pip \
    && pip install ".[service]"

# ---- runtime ----
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="cohortlab" \
      org.opencontainers.image.description="Intraday cohorts of evolved trading agents on one shared parent bankroll"

# Non-root user with a fixed UID/GID (numeric USER below so orchestrators can
# verify it is not root).
RUN groupadd --system --gid 10001 cohortlab \
    && useradd --system --uid 10001 --gid cohortlab --home-dir /var/lib/cohortlab \
       --shell /usr/sbin/nologin cohortlab \
    && mkdir -p /var/lib/cohortlab/data /var/lib/cohortlab/beat \
       /var/lib/cohortlab/prometheus /var/lib/cohortlab/numba-cache \
    && chown -R cohortlab:cohortlab /var/lib/cohortlab

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/cohortlab \
    COHORTLAB_STORE=sqlite:////var/lib/cohortlab/data/cohortlab.db \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/cohortlab/prometheus \
    NUMBA_CACHE_DIR=/var/lib/cohortlab/numba-cache

WORKDIR /var/lib/cohortlab
USER 10001:10001

# 8000: the API (also /metrics); 9108: a worker's Prometheus endpoint
# (COHORTLAB_METRICS_PORT).
EXPOSE 8000 9108

# The API's health (store opens and answers). docker-compose.yml replaces it
# for the worker (celery inspect ping) and beat.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["uvicorn", "api.app:app", "--host", "0.0.0.0", "--port", "8000"]
