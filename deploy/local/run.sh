#!/usr/bin/env bash
# `make run` / `make demo`: bring up the local stack if nothing answers at the configured
# addresses, run the pipeline (`warning run` or `warning demo`), and on exit or Ctrl-C
# stop what this script started. What was already running stays up.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
started=()
if ! $PY deploy/local/stack.py ready >/dev/null 2>&1; then
  running=" $($PY deploy/local/stack.py running | tr '\n' ' ')"
  for service in kafka redis; do
    [[ "$running" == *" $service "* ]] || started+=("$service")
  done
  $PY deploy/local/stack.py up
fi
cleanup() {
  trap '' INT TERM  # a second Ctrl-C must not leave Kafka or Redis half-stopped
  if [ ${#started[@]} -gt 0 ]; then $PY deploy/local/stack.py down "${started[@]}" || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
.venv/bin/warning "$@"
