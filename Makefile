# One command each for serving, testing, linting and benchmarking; CI runs the same.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/interop/node_modules/.installed
BENCH_NODE_STAMP := bench/node/node_modules/.installed
WEB_NODE_STAMP := web/node_modules/.installed

.PHONY: serve test test-latest lint bench fmt clean setup web

setup: $(STAMP) $(NODE_STAMP) $(BENCH_NODE_STAMP) $(WEB_NODE_STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit("collab needs Python 3.11+") if sys.version_info < (3, 11) else None'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,ypy,uvloop,postgres,dev]'
	touch $@

$(NODE_STAMP): tests/interop/package.json tests/interop/package-lock.json
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(BENCH_NODE_STAMP): bench/node/package.json bench/node/package-lock.json
	cd bench/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_NODE_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Rebuild the web app (web/src) into collab/static with the pinned esbuild;
# tests/unit/test_web_bundle.py checks that the shipped files are this build.
web: $(WEB_NODE_STAMP)
	node web/build.mjs

serve: $(STAMP)
	$(BIN)/collab serve --dev

# Two workers (pytest-xdist): each test starts its own servers on free ports,
# and most of a test's time is spent waiting on them. TEST_WORKERS=0 runs in one.
TEST_WORKERS ?= 2
test: $(STAMP) $(NODE_STAMP) $(BENCH_NODE_STAMP) $(WEB_NODE_STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS)

# The suite's Python part against the newest versions pyproject.toml allows
# (no constraints.txt), in its own venv: an upgrade that breaks what collab
# borrows (collab/upstream.py) shows up here before it is pinned.
LATEST_VENV ?= .venv-latest
test-latest: $(NODE_STAMP)
	test -d $(LATEST_VENV) || $(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/pip install --quiet --upgrade -e '.[test,ypy,uvloop,postgres]'
	$(LATEST_VENV)/bin/pip list 2>/dev/null | grep -iE '^(aiohttp|python-socketio|python-engineio|pycrdt|redis) '
	$(LATEST_VENV)/bin/pytest -q -n $(TEST_WORKERS) -p no:cacheprovider tests/unit tests/integration tests/hostile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The quick profile: fan-out at 50 and 100 receivers, 100 updates/s, against
# collab, the python-socketio relay and y-websocket's server (BENCHMARKS.md).
bench: $(STAMP) $(BENCH_NODE_STAMP)
	$(BIN)/python -m bench quick

clean:
	rm -rf $(VENV) $(LATEST_VENV) tests/interop/node_modules bench/node/node_modules web/node_modules .pytest_cache \
		.mypy_cache .ruff_cache
