# Two commands on a fresh clone: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
SYNCED := $(VENV)/.synced

.PHONY: install demo test lint format bench clean

# Create the virtualenv and install the locked dependencies (uv.lock) and the package.
$(SYNCED): pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv sync --frozen --all-extras --python $(BIN)/python
	touch $(SYNCED)

install: $(SYNCED)

## Run the pipeline on the built-in simulators with the Dagster UI on http://127.0.0.1:3000
demo: $(SYNCED)
	./scripts/demo.sh

## Lint and run the whole test suite
test: $(SYNCED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(SYNCED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(SYNCED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks: ratios measured side by side in one run
bench: $(SYNCED)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data/demo .pytest_cache .ruff_cache
