#!/usr/bin/env bash
# Build llama.cpp's own llama-server from the sources vendored in the llama-cpp-python sdist (the
# same llama.cpp the local provider runs), into bench/local_llama_server/ (git-ignored).
# Usage: bench/local_build_llama_server.sh [path/to/python]   (default: .venv/bin/python)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${1:-$here/../.venv/bin/python}"
out="$here/local_llama_server"
mkdir -p "$out"
printf '*\n' > "$out/.gitignore"
version="$("$py" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"
if [ ! -d "$out/src/vendor/llama.cpp" ]; then
  "$py" -m pip download --no-binary :all: --no-deps "llama-cpp-python==$version" -d "$out/sdist"
  mkdir -p "$out/src"
  tar -xzf "$out"/sdist/llama_cpp_python-*.tar.gz -C "$out/src" --strip-components=1
fi
cmake -S "$out/src/vendor/llama.cpp" -B "$out/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DGGML_NATIVE=ON
cmake --build "$out/build" --target llama-server -j "$(nproc)"
ls -l "$out/build/bin/llama-server"
