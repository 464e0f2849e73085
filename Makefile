# Two commands: `make run` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/pigeon serve

SMSC := tests/integration/smsc

# The SMPP interoperability tests run against the npm `smpp` package (a peer we did not write).
$(SMSC)/node_modules/.installed: $(SMSC)/package-lock.json
	cd $(SMSC) && npm ci --no-audit --no-fund
	touch $@

# The console's browser tests drive Debian's chromium (Playwright never downloads a browser here).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

test: $(VENV)/.dev $(SMSC)/node_modules/.installed | $(CHROMIUM)
	$(BIN)/ruff check pigeon tests bench
	$(BIN)/mypy pigeon tests bench
	$(BIN)/lint-imports
	$(BIN)/pytest -q -n 2 --dist loadgroup --ignore=tests/browser
	# Playwright's sync API keeps an event loop in its worker: the browser tests get their own run.
	$(BIN)/pytest -q tests/browser

bench: $(VENV)/.dev
	$(BIN)/python bench/accept.py

clean:
	rm -rf $(VENV) pigeon.db pigeon.db-wal pigeon.db-shm
