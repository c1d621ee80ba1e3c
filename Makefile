# Two commands on a fresh clone: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
SYNCED := $(VENV)/.synced

.PHONY: install demo test lint format bench clean browser

# The dashboard's browser test drives Debian's Chromium through its own driver (no browser
# download): installed from Debian's packages when missing.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Create the virtualenv and install the locked dependencies (uv.lock) and the package.
$(SYNCED): pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv sync --frozen --all-extras --python $(BIN)/python
	touch $(SYNCED)

install: $(SYNCED)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "Install Chromium and ChromeDriver (Debian: chromium chromium-driver)" >&2; exit 1; }
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium chromium-driver

browser: $(CHROMIUM)

## Run the pipeline on the built-in simulators with the Dagster UI on http://127.0.0.1:3000
demo: $(SYNCED)
	./scripts/demo.sh

## Lint, type-check and run the whole test suite
test: $(SYNCED) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(SYNCED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(SYNCED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks: ratios measured side by side in one run
bench: $(SYNCED)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data/demo .pytest_cache .ruff_cache .mypy_cache
