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

test: $(VENV)/.dev $(SMSC)/node_modules/.installed
	$(BIN)/ruff check pigeon tests bench
	$(BIN)/mypy pigeon
	$(BIN)/lint-imports
	$(BIN)/pytest -q -n 2 --dist loadgroup

bench: $(VENV)/.dev
	$(BIN)/python bench/accept.py

clean:
	rm -rf $(VENV) pigeon.db pigeon.db-wal pigeon.db-shm
