# Two entry points on a fresh machine with only Python 3.11+ and make:
#   make demo   - set up .venv, generate a synthetic province and certify it
#   make test   - set up .venv, run lint, type checks and the whole test suite (SQLite and PostgreSQL)
PYTHON ?= python3
UV_VERSION ?= 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PYTEST_WORKERS ?= 2
# The PostgreSQL pass of the suite; pytest-django creates and drops its own test database.
ZIGE_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/zige
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup assets native bytecode demo test test-sqlite test-postgres lint typecheck migrations-check bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	touch $@

# Browser libraries (ECharts, htmx) from package-lock.json, copied into the static files.
# Without npm the batch engine and the site still work; the site's charts and live progress don't.
VENDOR := src/zige/web/static/vendor
$(VENDOR)/.copied: package.json package-lock.json scripts/vendor_assets.py
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund && $(PYTHON) scripts/vendor_assets.py && touch $@; \
	else \
		echo "warning: npm not found: web pages will have no charts or live progress (install Node.js, then make assets)" >&2; \
	fi

assets: $(VENDOR)/.copied

# The evidence store's native CSV scan (C, loaded with ctypes); without a C compiler the store
# ingests through SQL only (same store, slower).
NATIVE := src/zige/engine/native/_fastcsv.so
$(NATIVE): src/zige/engine/native/fastcsv.c $(VENV)/.synced
	$(VENV)/bin/python -m zige.engine.native

native: $(NATIVE)

# Bytecode, written once: these machines set PYTHONDONTWRITEBYTECODE, so without it every process
# (each test worker, each subprocess a test starts, each `zige` command) compiles Django, pandas,
# DuckDB's Python side and the project again: tests/functional took 215 s without, 104 s with
# (docs/performance.md). A package that does not compile (a test file for another Python) only
# stays uncompiled. The project's own modules are compiled on every setup (compileall skips those
# already done); a module changed since is compiled again in memory, as without bytecode.
$(VENV)/.compiled: $(VENV)/.synced
	-$(VENV)/bin/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1
	touch $@

bytecode: $(VENV)/.compiled
	$(VENV)/bin/python -m compileall -q -j 0 src

setup: $(VENV)/.synced assets native bytecode

demo: setup
	$(VENV)/bin/zige demo $(DEMO_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy

migrations-check: setup
	ZIGE_DATA_DIR=$$(mktemp -d) $(VENV)/bin/python manage.py makemigrations --check --dry-run

# Everything on the embedded default (SQLite), then every database test again on PostgreSQL.
test: lint typecheck migrations-check test-sqlite test-postgres

# With a C compiler, setup built the native scan: its tests must run, not be skipped.
test-sqlite: setup
	ZIGE_REQUIRE_NATIVE=$$(command -v $${CC:-cc} >/dev/null 2>&1 && echo 1 || echo 0) $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test-postgres: setup
	ZIGE_DATABASE_URL=$(ZIGE_TEST_DATABASE_URL) $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "django_db or postgres" $(PYTEST_ARGS)

# Issue 6: generated store, scan floor, certify, daily increment, ingest, pandas/Splink baselines.
# make bench BENCH_ARGS="--full" for 2,000,000 recipients x 1,000,000,000 stored rows.
bench: setup
	$(VENV)/bin/zige bench $(BENCH_ARGS)

clean:
	rm -rf $(TOOLS) $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache node_modules $(VENDOR)
