#!/usr/bin/env bash
# A/B benchmark of two refs, interleaved against one mock: bash bench/ab.sh REF_A REF_B
# ("." = this working tree). Knobs and method: bench/ab.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  echo "[ab] wrk is needed: apt-get install -y wrk" >&2
  exit 2
fi
PY=${AB_PY:-.venv/bin/python}
[[ -x "$PY" ]] || PY=python3
exec "$PY" bench/ab.py "$@"
