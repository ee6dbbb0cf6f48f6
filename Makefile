# bnlessons: `make html` builds the site, `make test` runs every check.
# Every target depends on the virtual environment, which is (re)built when
# pyproject.toml or the pinned constraints change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BUILD  := _build
SPHINXOPTS ?= -W --keep-going -n
PORT ?= 8000

# One BLAS thread: the lessons and tests use many small matrices, for which OpenBLAS's
# threads cost more than they give on this 2-core machine (and results stay reproducible).
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

.PHONY: help venv lint typecheck unit doctest html test browser-test serve clean bench bench-docs

help:
	@echo "make html        build the site into $(BUILD)/html (creates $(VENV) on first use)"
	@echo "make test        lint, type-check, unit tests, doctests, site build, browser test"
	@echo "make doctest     Sphinx doctest builder + pytest --doctest-modules src"
	@echo "make serve       serve $(BUILD)/html on 127.0.0.1:$(PORT)"
	@echo "make bench       library and training benchmarks"
	@echo "make bench-docs  cold and warm site build times"
	@echo "make clean       remove build outputs (keeps $(VENV))"

$(STAMP): pyproject.toml .ci/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c .ci/constraints.txt -e '.[tests,docs,dev]'
	touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not browser" tests --doctest-modules src

test: lint typecheck unit doctest browser-test

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(BUILD) jupyter_execute .pytest_cache .mypy_cache .ruff_cache .hypothesis
