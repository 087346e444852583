#!/usr/bin/env bash
# Start the API (the store's one writer) and the explorer, wait until both answer, print their addresses.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
API_PORT="${CIVICPULSE_API_PORT:-8000}"
UI_PORT="${CIVICPULSE_UI_PORT:-8501}"
export CIVICPULSE_API_URL="${CIVICPULSE_API_URL:-http://127.0.0.1:${API_PORT}}"
mkdir -p var/log

"$BIN/civicpulse" serve --port "$API_PORT" >var/log/api.log 2>&1 &
API_PID=$!
"$BIN/civicpulse" ui --port "$UI_PORT" >var/log/ui.log 2>&1 &
UI_PID=$!
trap 'kill $API_PID $UI_PID 2>/dev/null || true' EXIT INT TERM

wait_for() {  # url name pid
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    if ! kill -0 "$3" 2>/dev/null; then echo "$2 failed to start; see var/log/" >&2; return 1; fi
    sleep 1
  done
  echo "$2 did not answer at $1 within 120 s; see var/log/" >&2
  return 1
}
wait_for "http://127.0.0.1:${API_PORT}/healthz" "API" $API_PID
wait_for "http://127.0.0.1:${UI_PORT}/_stcore/health" "explorer" $UI_PID
echo
echo "CivicPulse is running:"
echo "  API       http://127.0.0.1:${API_PORT}  (docs: http://127.0.0.1:${API_PORT}/docs)"
echo "  explorer  http://127.0.0.1:${UI_PORT}"
echo "Logs in var/log/. Press Ctrl-C to stop."
wait
