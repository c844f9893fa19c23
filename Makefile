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
	npx --no-install asl-validator --json-path statemachine/moderation.asl.json --json-path statemachine/audit.asl.json --json-path statemachine/backfill.asl.json

# Two pytest workers (the machine's 2 cores), a test file per worker at a time: a module's local stack stays in one
# process, and while one file waits on the workflow's timers the other computes. The order is random
# (pytest-randomly); the seed is on the command line make prints: `make test SEED=<it>` repeats that order.
SEED ?= $(shell date +%s)
test: test-deps lint  ## everything: lint, template checks, unit, workflow, detector, browser tests (random order)
	SAM_CLI=$(CURDIR)/$(SAM_VENV)/bin/sam $(VPY) -m pytest -q -n 2 --dist loadfile -p randomly --randomly-seed=$(SEED)

# Mutation testing of the decision code (docs/testing.md): mutmut copies it to $(MUTATE)/mutants/, changes one
# operator, constant or name at a time and runs the unit tests that reach it; a change no test notices survives.
# mutmut names a mutant after its file's path while the tests import the Lambda code as Lambda does (`rules`,
# `vidmod_contracts`): $(MUTATE)/ links each file under the path of its import name, and the copy's functions/ and
# layers/ link back to the mutated files. Bytecode is written: the mutated files are large and the tests import them
# afresh for each test. The output lists each mutant not killed.
MUTATE := .mutate
DECISION_MUTANTS := 'rules.*' 'segments.*' 'vidmod_contracts.*'
NOT_KILLED := perl -e '$$| = 1; my $$p = ""; while (sysread(STDIN, my $$b, 4096)) { $$p .= $$b; if ($$p =~ s/\A(.*[\r\n])//s) { (my $$o = $$1) =~ s/^\xF0\x9F\x8E\x89 [^\n]*\n//mg; print $$o } } print $$p'
MUTATION_SCORE := import json; s = json.load(open("mutants/mutmut-cicd-stats.json")); n = sum(v for k, v in s.items() if k != "total"); k, t = s["killed"], s["timeout"]; print(f"decision code: {n} mutants, {k} killed, {t} timed out, {n - k - t} not killed: score {(k + t) / n:.1%}")
mutate: venv  ## mutation score of the decision code: rules, segments, taxonomy, review answers, record hash, audit sample
	rm -rf $(MUTATE) && mkdir -p $(MUTATE)/mutants/layers/contracts
	ln -s $(CURDIR)/{pyproject.toml,tests,vidmod,layers/contracts/vidmod_contracts} $(MUTATE)/
	ln -s $(CURDIR)/functions/evaluate_rules/{rules,segments}.py $(MUTATE)/
	ln -s $(CURDIR)/{ui,statemachine,template.yaml} $(MUTATE)/mutants/
	cp -rs $(CURDIR)/functions $(MUTATE)/mutants/ && find $(MUTATE)/mutants/functions -name __pycache__ -prune -exec rm -r {} +
	ln -sf $(CURDIR)/$(MUTATE)/mutants/{rules,segments}.py $(MUTATE)/mutants/functions/evaluate_rules/
	ln -s $(CURDIR)/$(MUTATE)/mutants/vidmod_contracts $(MUTATE)/mutants/layers/contracts/
	set -o pipefail; cd $(MUTATE) && PYTHONDONTWRITEBYTECODE= $(CURDIR)/$(VENV)/bin/mutmut run --max-children 2 $(DECISION_MUTANTS) | $(NOT_KILLED)
	cd $(MUTATE) && $(CURDIR)/$(VENV)/bin/mutmut export-cicd-stats >/dev/null && $(CURDIR)/$(VPY) -c '$(MUTATION_SCORE)'

bench: venv  ## benchmarks: detector (decode limit, models, real-time factor, false positives), upload to review, Lambda overhead
	$(VPY) -m vidmod.cli.bench

# AWS: needs credentials; the first `make deploy` also needs WORKTEAM_ARN (your reviewers' private work team) and
# asks sam deploy's questions (saved in samconfig.toml). REGION=... overrides samconfig.toml / the AWS default chain.
DEPLOY := $(VPY) -m vidmod.cli.deploy --sam $(CURDIR)/$(SAM_VENV)/bin/sam $(if $(REGION),--region $(REGION))
deploy: venv $(SAM_VENV)/.installed  ## sam build, sam deploy (guided the first time), A2I UI + flow definition until Active
	$(DEPLOY) deploy $(if $(WORKTEAM_ARN),--workteam-arn $(WORKTEAM_ARN))

undeploy: venv $(SAM_VENV)/.installed  ## sam delete, then lists what it keeps (records, evidence, logs) and how to remove it
	$(DEPLOY) undeploy

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam node_modules .vidmod

.PHONY: help venv demo test-deps chromium lint validate test mutate bench deploy undeploy clean
