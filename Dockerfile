# One image, five roles (deploy/entrypoint.sh): code-server, webserver, daemon, api, dashboard;
# `m5 ...` runs the CLI. compose.yaml starts one service per role; `docker run IMAGE api` runs one.
# The instance, warehouse and MLflow store live under /app/data (a volume); mount real Kaggle files
# at /app/data/raw, or run `docker run -v ... IMAGE m5 generate --scale small --out /app/data/raw`.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: a virtual environment from the pinned lock file, wheels only, then the project.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.lock ./
# --only-binary: nothing may need a compiler (the runtime stage has none), so a missing wheel
# fails the build here instead of pulling a toolchain in.
RUN pip install --only-binary=:all: --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY m5_assets ./m5_assets
COPY m5_serving ./m5_serving
COPY m5_dashboard ./m5_dashboard
# --no-deps: the lock file is the whole dependency set; `pip check` proves it is complete.
RUN pip install --no-deps . && pip check

# Runtime stage: the environment and the deployment files, a non-root user, no build tools.
FROM ${PYTHON_IMAGE} AS runtime
# libgomp1 is LightGBM's OpenMP runtime, which its wheels expect from the system.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 m5 \
    && useradd --system --uid 10001 --gid m5 --create-home --home-dir /home/m5 --shell /usr/sbin/nologin m5
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY deploy ./deploy
# DAGSTER_HOME holds only the instance config; the instance itself follows the data folder
# (SQLite there, or Postgres when DAGSTER_PG_* are set).
COPY dagster.yaml ./dagster_home/dagster.yaml
# /app itself is the user's too: an in-memory DuckDB (the API's and the dashboard's reads) spills
# to ./.tmp when it runs short of memory.
RUN mkdir -p /app/data/raw && chown -R m5:m5 /app/data /app/dagster_home && chown m5:m5 /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/app/dagster_home \
    M5_DATA_DIR=/app/data \
    M5_DAGSTER_STORAGE=/app/data/dagster/storage \
    M5_DAGSTER_ARTIFACTS=/app/data/dagster/artifacts \
    M5_DAGSTER_LOGS=/app/data/dagster/logs \
    M5_BIND_HOST=0.0.0.0 \
    M5_CODE_SERVER_HOST=code-server \
    M5_CODE_SERVER_PORT=4000 \
    M5_WEBSERVER_PORT=3000 \
    M5_API_PORT=8000 \
    M5_DASHBOARD_PORT=8501
USER m5
VOLUME ["/app/data"]
EXPOSE 3000 4000 8000 8501
# Probes the role the entrypoint started (see deploy/healthcheck.py); one-off commands pass.
HEALTHCHECK --interval=30s --timeout=25s --start-period=120s --retries=3 CMD ["python", "/app/deploy/healthcheck.py"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["webserver"]
