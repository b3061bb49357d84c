# tvr-notebooks: every target does its own setup; a second run reuses what exists.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= quick
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
SCRIPTS   := $(NOTEBOOKS:.ipynb=.py)
EXECUTED  := results/$(PROFILE)/executed
# what the test command writes goes here (ignored by git), never into the committed results/
TEST_OUT  := $(CURDIR)/build/test

.PHONY: setup data reproduce test unit lint format sync lab notebooks-tiny notebooks-fixture nbval notebooks bench clean-cache help

help:
	@echo "make reproduce   run the whole suite (profile=$(PROFILE)): benchmark, tiny CLIP, every notebook"
	@echo "make test        lint + unit tests + every notebook on the fixture profile (papermill) + nbval on the committed notebooks"
	@echo "make lab         open the notebooks in JupyterLab (the project's environment and kernel)"
	@echo "make sync        after editing notebooks/NN_*.py: update the paired .ipynb (outputs kept)"
	@echo "make notebooks   re-execute the committed notebooks in place (refreshes outputs and results/quick/)"
	@echo "make format      ruff format + ruff check --fix"
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

# a student's way in: JupyterLab from .venv, so the notebooks' python3 kernel is the project's
lab: data
	$(BIN)/jupyter lab notebooks/

# notebooks are edited as notebooks/NN_*.py (jupytext percent format); this writes the changes into the
# paired .ipynb files and keeps their outputs (and the other way round after editing in JupyterLab)
sync: setup
	$(BIN)/jupytext --sync --quiet $(NOTEBOOKS)

lint: setup
	$(BIN)/ruff check tvrlib tests benchmarks $(SCRIPTS)
	$(BIN)/ruff format --check tvrlib tests benchmarks $(SCRIPTS)

format: setup
	$(BIN)/ruff format tvrlib tests benchmarks $(SCRIPTS)
	$(BIN)/ruff check --fix tvrlib tests benchmarks $(SCRIPTS)

unit: setup
	$(BIN)/python -m pytest -q tests

# every notebook end to end under papermill on the tiny profile: proves each runs with parameters
# (numbers there are meaningless); results and executed copies go to $(TEST_OUT)/, not to results/
notebooks-tiny: setup
	$(BIN)/python -m tvrlib prepare --profile tiny
	TVR_RESULTS_DIR=$(TEST_OUT)/results $(BIN)/python -m tvrlib run-notebooks --profile tiny \
		--out $(TEST_OUT)/executed-tiny $(NOTEBOOKS)

# the commands of docs/reproduce-real-data.md (extract, every notebook, torchrun) on the fixture profile:
# real-format MSR-VTT files (tests/fixtures/real/) and the tiny CLIP, so a notebook that assumes the synthetic
# benchmark fails here (numbers meaningless; the path is the point)
notebooks-fixture: setup
	$(BIN)/python -m tvrlib prepare --profile fixture
	TVR_RESULTS_DIR=$(TEST_OUT)/results $(BIN)/python tests/run_doc_commands.py --out $(TEST_OUT)/doc-commands

# regression check of the committed (quick) notebooks: nbval re-executes them and compares the cells
# marked NBVAL_CHECK_OUTPUT; what they write goes to $(TEST_OUT)/, so the committed results/ stay as they are.
# Two notebooks at a time (pytest-xdist; --dist loadfile keeps a notebook's cells in one kernel), one torch thread
# each (TVR_THREADS=1 for the notebooks that leave `threads` unset): the two cores are used without oversubscribing
# The longest notebooks go first (--no-loadscope-reorder: xdist hands out files in this order, two to each worker
# at the start), so the two workers end close together
# Notebook 11 reads what the others write, so it runs after them (a second pytest call), never beside a notebook
# that is still writing (12 reads only the committed benchmark results). Notebook 11 also compares quick with the
# second benchmark (quick_alt), which nbval does not re-run: the committed results/quick_alt/ are copied in, fresh,
# as the other side of that comparison.
NBVAL_WORKERS ?= 2
NBVAL_FIRST := $(wildcard notebooks/04_*.ipynb notebooks/03_*.ipynb notebooks/06_*.ipynb notebooks/09_*.ipynb notebooks/05_*.ipynb notebooks/07_*.ipynb)
NBVAL_LAST := $(wildcard notebooks/11_*.ipynb)
NBVAL_ORDER := $(NBVAL_FIRST) $(filter-out $(NBVAL_FIRST) $(NBVAL_LAST),$(NOTEBOOKS))
NBVAL_RUN = TVR_RESULTS_DIR=$(TEST_OUT)/results $(BIN)/python -m pytest -q --nbval-lax \
	--nbval-sanitize-with tests/nbval_sanitize.cfg
nbval: data
	rm -rf $(TEST_OUT)/results/quick_alt && mkdir -p $(TEST_OUT)/results && cp -r results/quick_alt $(TEST_OUT)/results/
	TVR_THREADS=1 $(NBVAL_RUN) -n $(NBVAL_WORKERS) --dist loadfile --no-loadscope-reorder $(NBVAL_ORDER)
	$(NBVAL_RUN) $(NBVAL_LAST)

test: data
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -q tests
	$(MAKE) --no-print-directory notebooks-fixture
	$(MAKE) --no-print-directory nbval

# re-execute the committed notebooks in place (quick profile) to refresh their outputs and results/quick/
notebooks: data sync
	$(BIN)/python -m tvrlib run-notebooks --profile quick --in-place $(NOTEBOOKS)

bench: data
	$(BIN)/python benchmarks/encode_throughput.py
	$(BIN)/python benchmarks/text_conditioned_eval.py
	$(BIN)/python benchmarks/training_speed.py
	$(BIN)/python benchmarks/gemm_bound.py --threads 1
	$(BIN)/python benchmarks/efficiency.py --threads 1
	$(BIN)/python benchmarks/reranking.py

clean-cache:
	rm -rf data/cache
