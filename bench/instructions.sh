#!/usr/bin/env bash
# Instructions per request of the gateway in-process (bench/hotpath.py under valgrind's callgrind,
# counting only the timed requests; the mock upstream runs outside valgrind). Deterministic within a
# few per mille whatever the machine's load: the figure to compare builds on a shared host.
#   bash bench/instructions.sh [hotpath.py arguments]    e.g. -n 500 --path /v1/messages --body ...
# Prints "instructions per request: N"; the callgrind file stays in $CG_OUT (default a temp dir)
# for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${CG_PY:-.venv/bin/python}
OUT=${CG_OUT:-$(mktemp -d)}
N=500
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ ${args[i]} == -n || ${args[i]} == --requests ]] && N=${args[i + 1]}
done
[[ " ${args[*]-} " == *" -n "* || " ${args[*]-} " == *" --requests "* ]] || args+=(-n "$N")
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.out" \
  "$PY" bench/hotpath.py --callgrind "${args[@]}" >"$OUT/hotpath.json" 2>"$OUT/valgrind.log"
total=$(grep -E '^(summary|totals):' "$OUT/callgrind.out" | tail -1 | awk '{print $2}')
echo "instructions per request: $((total / N)) ($total over $N requests; $OUT)"
cat "$OUT/hotpath.json"
