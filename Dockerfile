# The Dagster UI for m5-forecasting. Mount real Kaggle files at /app/data/raw, or run
# `m5 generate --scale small --out /app/data/raw` in the container for the demo set.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    DAGSTER_HOME=/app \
    M5_DATA_DIR=/app/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY m5_assets ./m5_assets
COPY m5_serving ./m5_serving
COPY m5_dashboard ./m5_dashboard
RUN pip install .
COPY workspace.yaml dagster.yaml ./
RUN mkdir -p /app/data/raw

EXPOSE 3000
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]
