#!/usr/bin/env bash
# clickrec bootstrap: creates .venv with the pinned dependencies when missing, then runs.
#   bash run.sh demo [--home DIR]    the main job end to end on embedded defaults
#   bash run.sh test [PYTEST ARGS]   the test suite
#   bash run.sh <command> [ARGS]     any clickrec command (bash run.sh --help)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PY=${CLICKREC_PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv
STAMP="$VENV/.installed-$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo "run.sh: installing pinned dependencies into $VENV (first run only, a few minutes)..." >&2
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.lock 2> >(grep -v "is ignored: it is neither" >&2)
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2> >(grep -v "is ignored: it is neither" >&2)
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi

# Embedded defaults: no telemetry, Prefect without a server.
export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false GX_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-120}

cmd=${1:-demo}
[ $# -gt 0 ] && shift
case "$cmd" in
  test)
    PREFECT_HOME=$(mktemp -d -t clickrec-prefect-XXXXXX)
    export PREFECT_HOME
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    exec "$VENV/bin/clickrec" "$cmd" "$@"
    ;;
esac
