# tvr-notebooks: every target does its own setup; a second run reuses what exists.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= quick
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
EXECUTED  := results/$(PROFILE)/executed

.PHONY: setup data reproduce test unit notebooks-run nbval notebooks bench clean-cache help

help:
	@echo "make reproduce   run the whole suite (profile=$(PROFILE)): benchmark, tiny CLIP, every notebook"
	@echo "make test        unit tests + every notebook under papermill + nbval regression checks"
	@echo "make notebooks   re-execute the committed notebooks in place (updates nbval references)"
	@echo "make bench       run benchmarks/ and print the numbers for docs/performance.md"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

# generate the synthetic benchmark and pretrain the tiny CLIP (both cached)
data: setup
	$(BIN)/python -m tvrlib prepare --profile $(PROFILE)

# execute every notebook under papermill; executed copies and results go to results/$(PROFILE)/
reproduce: data
	$(BIN)/python -m tvrlib run-notebooks --profile $(PROFILE) --out $(EXECUTED) $(NOTEBOOKS)
	@echo "executed notebooks: $(EXECUTED)/   results: results/$(PROFILE)/"

unit: setup
	$(BIN)/python -m pytest -q tests

notebooks-run: data
	$(BIN)/python -m tvrlib run-notebooks --profile quick --out results/quick/executed $(NOTEBOOKS)

nbval: data
	$(BIN)/python -m pytest -q --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg $(NOTEBOOKS)

test: data
	$(BIN)/python -m pytest -q tests
	$(MAKE) --no-print-directory notebooks-run
	$(MAKE) --no-print-directory nbval

# re-execute the committed notebooks in place (quick profile) to refresh their outputs
notebooks: data
	$(BIN)/python -m tvrlib run-notebooks --profile quick --in-place $(NOTEBOOKS)

bench: data
	$(BIN)/python benchmarks/encode_throughput.py
	$(BIN)/python benchmarks/text_conditioned_eval.py
	$(BIN)/python benchmarks/training_speed.py

clean-cache:
	rm -rf data/cache
