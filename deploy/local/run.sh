#!/usr/bin/env bash
# `make run` / `make demo`: bring up the local stack if nothing answers at the configured
# addresses, run the pipeline (`warning run` or `warning demo`), and on exit or Ctrl-C
# stop the stack again if this script started it. A stack that was already up stays up.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
started=0
if ! $PY deploy/local/stack.py ready >/dev/null 2>&1; then
  $PY deploy/local/stack.py up
  started=1
fi
cleanup() {
  trap '' INT TERM  # a second Ctrl-C must not leave Kafka or Redis half-stopped
  if [ "$started" = 1 ]; then $PY deploy/local/stack.py down || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
.venv/bin/warning "$@"
