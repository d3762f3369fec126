#!/usr/bin/env bash
# One command for the whole benchmark: bash bench/run.sh  (see bench/run.py for the knobs)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if ! command -v wrk >/dev/null 2>&1; then
  echo "[bench] wrk not found: apt-get install -y wrk (falling back to bench/loadgen.py)" >&2
fi
if [[ "${BENCH_SKIP_BASELINE:-0}" != 1 && ! -x .bench-venv/bin/litellm ]]; then
  echo "[bench] installing the LiteLLM baseline into .bench-venv/ (once)" >&2
  python3 -m venv .bench-venv
  .bench-venv/bin/pip install -q 'litellm[proxy]' py-spy pyinstrument
fi
exec "$PY" bench/run.py "$@"
