#!/usr/bin/env bash
# `make ui`: a local Prefect server and its UI on 127.0.0.1, with a home of its own (runs,
# deployments and logs in $WIREHOUSE_PREFECT_HOME, default ./.prefect), in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${WIREHOUSE_UI_PORT:-4200}"
export PREFECT_HOME="${WIREHOUSE_PREFECT_HOME:-$PWD/.prefect}"
export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
# The UI calls the API at this address; keep it on the loopback interface only.
export PREFECT_UI_API_URL="http://127.0.0.1:${port}/api"
unset PREFECT_API_URL
mkdir -p "$PREFECT_HOME"
cat <<MSG
Prefect UI:  http://127.0.0.1:${port}
In another terminal, serve the nightly deployment against it:
  make serve            (or: PREFECT_API_URL=http://127.0.0.1:${port}/api .venv/bin/wirehouse serve)
Stop with Ctrl-C.
MSG
exec .venv/bin/prefect server start --host 127.0.0.1 --port "$port"
