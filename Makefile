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
NPM ?= npm
# SOLUTIONS=0: `make html` builds the edition without solutions into $(BUILD)/html-exercises.
SOLUTIONS ?= 1
CHROMIUM ?= /usr/bin/chromium
MATHJAX := docs/node_modules/mathjax/es5/tex-mml-chtml.js

# One BLAS thread: the lessons and tests use many small matrices, for which OpenBLAS's
# threads cost more than they give on this 2-core machine (and results stay reproducible).
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

.PHONY: help venv lint typecheck unit doctest html pdf test browser-test serve clean bench \
	bench-docs assets chromium portability reader-test html-exercises

help:
	@echo "make html        build the site into $(BUILD)/html (creates $(VENV) on first use);"
	@echo "                 SOLUTIONS=0: the edition without solutions, $(BUILD)/html-exercises"
	@echo "make pdf         print the built site to PDF: $(BUILD)/html/pdf/bnlessons.pdf and one"
	@echo "                 PDF per lesson (Chromium)"
	@echo "make test        lint, type-check, unit tests + module doctests, site build and its"
	@echo "                 doctests, reader's notebooks, PDFs, browser tests"
	@echo "make reader-test run every lesson's reader's notebook in a fresh venv with only the"
	@echo "                 site's wheel, ipykernel and nbclient; compare its claims to the site's"
	@echo "make unit        pytest: tests/ and the docstring examples of src/ and tools/"
	@echo "make doctest     Sphinx doctest builder (the docs' examples; module doctests: unit)"
	@echo "make serve       serve $(BUILD)/html on 127.0.0.1:$(PORT)"
	@echo "make portability every lesson cold and the tests under several BLAS kernels (CI)"
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
	$(BIN)/mypy --strict src tools docs/_ext

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not browser" tests --doctest-modules src tools

test: lint typecheck unit doctest html reader-test browser-test

# ---------------------------------------------------------------------------- the site
# MathJax is served by the site itself: npm installs the locked mathjax@3 into docs/.
$(MATHJAX): docs/package.json docs/package-lock.json
	cd docs && $(NPM) ci --no-audit --no-fund
	touch $@

assets: $(MATHJAX)

html: $(STAMP) $(MATHJAX)
ifeq ($(SOLUTIONS),0)
	$(BIN)/sphinx-build -b html $(SPHINXOPTS) -t exercises . $(BUILD)/html-exercises
else
	$(BIN)/sphinx-build -b html $(SPHINXOPTS) . $(BUILD)/html
endif

# The edition without solutions, for the browser test. The lessons come from the notebook
# cache the default edition filled: they are read again, not executed again.
html-exercises: html
	$(MAKE) html SOLUTIONS=0

doctest: $(STAMP) $(MATHJAX)
	$(BIN)/sphinx-build -b doctest $(SPHINXOPTS) . $(BUILD)/doctest

# Every reader's notebook (the site's .ipynb downloads) run as a reader would: a fresh venv
# with only the site's wheel, ipykernel and nbclient; its claims must equal the site's.
reader-test: html
	$(BIN)/python tools/reader_test.py $(BUILD)/html

serve: html
	@echo "Serving $(BUILD)/html at http://127.0.0.1:$(PORT)/ (Ctrl-C stops)"
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory $(BUILD)/html

# Debian's Chromium for the browser test; installed when missing and we are root. Where it
# cannot be installed, tests/test_site.py fails and says how to install it.
chromium:
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "chromium: $(CHROMIUM)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
			|| echo "chromium: apt-get could not install it; the browser test will say so"; \
	else \
		echo "chromium: $(CHROMIUM) is missing and cannot be installed here (not root or no apt-get);"; \
		echo "          install it with: sudo apt-get install chromium"; \
	fi

# The whole site as one PDF and each lesson as its own, printed by Chromium into the site
# (pdf/), where the landing page and the lessons' download menus link them.
pdf: html chromium
	$(BIN)/python tools/make_pdf.py $(BUILD)/html

browser-test: html html-exercises chromium pdf
	$(BIN)/python -m pytest -m browser tests/test_site.py tests/test_checks_page.py tests/test_pdf.py tests/test_codelinks.py

# Every lesson executed cold (no cache) and the unit tests, under the native BLAS kernel and
# forced Haswell / Sandybridge (/ SkylakeX) kernels: a claim must hold on every machine.
portability: $(STAMP)
	$(BIN)/python .ci/portability.py

bench-docs: $(STAMP) $(MATHJAX)
	bash benchmarks/bench_docs.sh

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(BUILD) jupyter_execute .pytest_cache .mypy_cache .ruff_cache .hypothesis
