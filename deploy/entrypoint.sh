#!/bin/sh
# The image's one entrypoint: `entrypoint.sh ROLE [args]` starts one service of the deployment.
#   code-server  Dagster code server (gRPC) for the m5_assets code location  port $M5_CODE_SERVER_PORT (4000)
#   webserver    Dagster UI, loading the code server through deploy/workspace.yaml  port $M5_WEBSERVER_PORT (3000)
#   daemon       Dagster daemon: schedules, sensors, the run queue, backfills
#   api          REST API, gunicorn with $M5_API_WORKERS uvicorn workers  port $M5_API_PORT (8000)
#   dashboard    Streamlit dashboard  port $M5_DASHBOARD_PORT (8501)
#   m5 ...       the project's CLI (m5 generate, m5 run, ...); anything else runs as given
# Every server binds $M5_BIND_HOST (0.0.0.0 in the image). Outside a container the same script
# runs from a checkout with the virtual environment's bin on PATH.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
host=${M5_BIND_HOST:-0.0.0.0}
workspace=${M5_WORKSPACE:-$here/workspace.yaml}
role=${1:-}
[ $# -gt 0 ] && shift
# The health check (deploy/healthcheck.py) asks the role it probes from this file.
if [ -n "$role" ]; then echo "$role" > "${M5_ROLE_FILE:-/tmp/m5-role}" 2>/dev/null || true; fi

case "$role" in
  code-server)
    exec dagster code-server start -m m5_assets.definitions --location-name m5_assets \
      -h "$host" -p "${M5_CODE_SERVER_PORT:-4000}" "$@" ;;
  webserver)
    exec dagster-webserver -h "$host" -p "${M5_WEBSERVER_PORT:-3000}" -w "$workspace" "$@" ;;
  daemon)
    exec dagster-daemon run -w "$workspace" "$@" ;;
  api)
    exec python -m m5_serving --host "$host" --port "${M5_API_PORT:-8000}" --workers "${M5_API_WORKERS:-2}" "$@" ;;
  dashboard)
    app=$(python -c "import m5_dashboard, os; print(os.path.join(os.path.dirname(m5_dashboard.__file__), 'app.py'))")
    exec streamlit run "$app" --server.address "$host" --server.port "${M5_DASHBOARD_PORT:-8501}" \
      --server.headless true --browser.gatherUsageStats false "$@" ;;
  "")
    echo "usage: entrypoint.sh code-server|webserver|daemon|api|dashboard|m5 ARGS|COMMAND" >&2
    exit 2 ;;
  *)
    exec "$role" "$@" ;;
esac
