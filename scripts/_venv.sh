# Sourced by scripts/serve and scripts/test: make ./.venv with the given extras, once per pyproject change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RUNLEDGER_VENV:-$ROOT/.venv}"
EXTRAS="$1"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade "pip>=24,<26"
fi
STAMP="$VENV/.runledger-$(echo "$EXTRAS" | tr ',' '-')-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo "runledger: installing .[$EXTRAS] into $VENV (first run only)" >&2
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$EXTRAS]"
  touch "$STAMP"
fi
