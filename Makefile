# Two entry points on a fresh machine with only Python 3.11+ and make:
#   make demo   - set up .venv, generate a synthetic province and certify it
#   make test   - set up .venv, run lint, type checks and the whole test suite
PYTHON ?= python3
UV_VERSION ?= 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup demo test lint typecheck bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

setup: $(VENV)/.synced

demo: setup
	$(VENV)/bin/zige demo $(DEMO_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest -n 2 $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(TOOLS) $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
