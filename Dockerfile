# Two targets over one install: `--target api` serves the REST API (gunicorn with uvicorn
# workers); the default serves the Dagster UI. Mount real Kaggle files at /app/data/raw, or run
# `m5 generate --scale small --out /app/data/raw` in the container for the demo set.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    DAGSTER_HOME=/app \
    M5_DATA_DIR=/app/data \
    M5_DAGSTER_STORAGE=/app/data/dagster/storage \
    M5_DAGSTER_ARTIFACTS=/app/data/dagster/artifacts \
    M5_DAGSTER_LOGS=/app/data/dagster/logs

WORKDIR /app
COPY pyproject.toml README.md ./
COPY m5_assets ./m5_assets
COPY m5_serving ./m5_serving
COPY m5_dashboard ./m5_dashboard
RUN pip install .
COPY workspace.yaml dagster.yaml ./
RUN mkdir -p /app/data/raw

# The API needs a key to bind beyond loopback: pass M5_API_KEYS or mount M5_API_KEYS_FILE.
FROM base AS api
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
CMD ["python", "-m", "m5_serving", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]

FROM base AS webserver
EXPOSE 3000
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]
