# The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runtime is python3.13: use a 3.13 interpreter for the venv and for `sam build`.
PY313 := $(or $(shell command -v python3.13 2>/dev/null | xargs -r -I{} sh -c '{} -V >/dev/null 2>&1 && echo {}'),$(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13))))
PYTHON ?= $(or $(PY313),python3)
VENV := .venv
VPY := $(VENV)/bin/python
SAM_VENV := .venv-sam
export SAM_CLI_TELEMETRY := 0
export PATH := $(dir $(PYTHON)):$(CURDIR)/$(VENV)/bin:$(PATH)

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed  ## create the virtual environment with the project and test tooling

demo: venv  ## run the main job on the embedded default: local stack + a real sample video
	$(VENV)/bin/vidmod demo

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip
	$(SAM_VENV)/bin/python -m pip install -q 'aws-sam-cli>=1.120,<2'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --silent
	touch $@

chromium:  ## install Debian chromium for the browser tests (needs root / apt)
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test-deps: venv $(SAM_VENV)/.installed node_modules/.installed chromium

lint: venv  ## ruff, and import-linter: no upward import and no cycle in vidmod/ (contracts in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

validate: test-deps  ## sam validate --lint, sam build, asl-validator
	$(SAM_VENV)/bin/sam validate --lint
	$(SAM_VENV)/bin/sam build --cached --parallel >/dev/null
	npx --no-install asl-validator --json-path statemachine/moderation.asl.json --json-path statemachine/backfill.asl.json

# Two pytest workers (the machine's 2 cores), a test file per worker at a time: a module's local stack stays in one
# process, and while one file waits on the workflow's timers the other computes. The order is random
# (pytest-randomly); the seed is on the command line make prints: `make test SEED=<it>` repeats that order.
SEED ?= $(shell date +%s)
test: test-deps lint  ## everything: lint, template checks, unit, workflow, detector, browser tests (random order)
	SAM_CLI=$(CURDIR)/$(SAM_VENV)/bin/sam $(VPY) -m pytest -q -n 2 --dist loadfile -p randomly --randomly-seed=$(SEED)

bench: venv  ## benchmarks: detector (decode limit, models, real-time factor, false positives), upload to review, Lambda overhead
	$(VPY) -m vidmod.cli.bench

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam node_modules .vidmod

.PHONY: help venv demo test-deps chromium lint validate test bench clean
