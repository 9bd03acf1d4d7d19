# The front door. `make report` runs the main job (every bundled study), `make test` the whole
# test suite; both
# create .venv and install the package on first use. Everything runs offline on the bundled
# snapshot unless you ask for --source yahoo.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
MARKETDATA ?= ../shared/marketdata

.PHONY: help install report test lint format snapshot bench clean

help:
	@echo "make report   - run the main job on the bundled snapshot"
	@echo "make test     - run the whole test suite"
	@echo "make lint     - ruff check and format check"
	@echo "make snapshot - rebuild the bundled snapshot from $(MARKETDATA)"
	@echo "make bench    - run the benchmarks, write benchmarks/RESULTS.md (not part of test)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

STUDIES ?= deepseek tariffs-2025

report: $(STAMP)
	@$(BIN)/marketlib report $(addprefix --study ,$(STUDIES)) --out .

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

snapshot: $(STAMP)
	$(BIN)/marketlib snapshot build --from $(MARKETDATA)
	$(BIN)/marketlib snapshot verify

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
