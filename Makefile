# The two commands a new user needs: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# PORT: the environment, else PORT= in .env (as the service reads it), else 8000.
PORT ?= $(or $(shell sed -n 's/^[[:space:]]*PORT[[:space:]]*=[[:space:]]*["'"'"']\{0,1\}\([0-9]*\).*/\1/p' .env 2>/dev/null | tail -n 1),8000)

.PHONY: run test setup setup-dev services lint bench snapshot clean heatmap refresh admin

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip >/dev/null

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

setup: $(VENV)/.runtime          ## install runtime dependencies into .venv

setup-dev: $(VENV)/.dev          ## install runtime + test dependencies into .venv

run: setup                       ## set up and run the service (serves the bundled snapshot offline)
	$(BIN)/uvicorn app.main:app --host 0.0.0.0 --port $(PORT) --no-access-log --no-proxy-headers

heatmap: setup                   ## precompute the heatmap: 126/252/504 days, both modes (ARGS=... for more)
	$(BIN)/python scripts/compute_heatmap.py --mode both $(ARGS)

refresh: setup                   ## delta-fetch prices from the provider into the store (ARGS=... for more)
	$(BIN)/python scripts/refresh_prices.py $(ARGS)

admin: setup                     ## create an admin of the margin API: make admin USERNAME=ops (prompts)
	$(BIN)/python scripts/create_admin.py --username $(USERNAME)

services:                        ## install PostgreSQL, PostgREST and Redis for the tests
	bash scripts/setup_test_services.sh

test: setup-dev services         ## set up and run the whole test suite
	$(BIN)/python -m pytest

lint: setup-dev                  ## ruff and mypy
	$(BIN)/ruff check app scripts tests
	$(BIN)/ruff format --check app scripts tests
	$(BIN)/mypy app scripts
	$(BIN)/lint-imports

bench: setup-dev                 ## the benchmark scripts quoted in the README
	$(BIN)/python scripts/bench_rolling_ols.py
	$(BIN)/python scripts/bench_heatmap.py
	$(BIN)/python scripts/bench_api.py
	$(BIN)/python scripts/bench_risk.py
	$(BIN)/python scripts/bench_store.py
	$(BIN)/python scripts/load_test.py

snapshot: setup-dev              ## rebuild app/market/data from ../shared/data
	$(BIN)/python scripts/build_snapshot.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
