# tlr: build the book and run the tests in a local virtual environment (.venv).
#
#   make book   execute every chapter and render the book to _build/html
#   make test   ruff, unit tests, nbval, HTML build (no re-execution), the HTML in Chromium
#   make test-other-cpus  nbval as other kinds of CPU round (MKL's AVX2 and generic paths)
#   make sync   re-pair book/*.py with book/*.ipynb (jupytext)
#   make assignments  student and instructor notebooks of the exercises, in _build/assignments
#   make reproduce  both tables' sweeps (--device auto) into _build/reproduce, then summary.md
#   make clean  remove _build
#
# Both `book` and `test` create .venv first if it is missing (needs Python >= 3.10).

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# Stages must run in the listed order and stop at the first failure, even under -j.
.NOTPARALLEL:

# Per-stage timing: $(call timed,NAME,COMMAND)
define timed
	@echo "==> [$(1)] $(2)"
	@start=$$(date +%s); $(2); echo "<== [$(1)] ok in $$(( $$(date +%s) - start ))s"
endef

# `make test` renders the committed outputs: the same _config.yml, but execute_notebooks
# set to "off" (JB1 has no command-line override for config keys, only --config FILE).
TEST_BUILD := _build/test
TEST_CONFIG := $(TEST_BUILD)/_config.yml
TEST_HTML := $(TEST_BUILD)/_build/html
JB_FLAGS := -W -n --keep-going --all

.PHONY: help venv book test test-lint test-unit test-nbval test-other-cpus test-html test-browser sync \
	assignments clean

help:
	@sed -n '3,11p' Makefile | sed 's/^# \{0,1\}//'

venv: $(STAMP)

# Re-run whenever the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	@if [ ! -x $(BIN)/python ]; then echo "==> creating $(VENV) with $(PY)"; $(PY) -m venv $(VENV); fi
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install -e .
	@touch $@

# `make book` executes every chapter afresh, BOOK_JOBS at a time (each on one CPU thread; JB1
# itself executes one notebook after another), in a copy of the book's sources under
# _build/src, so the committed notebooks are left as they are; then it renders that copy with
# execution off (--all: every page re-read, so that -W sees every warning).
BOOK_JOBS ?= 2
BOOK_SRC := _build/src
book: $(STAMP)
	@rm -rf $(BOOK_SRC) && mkdir -p $(BOOK_SRC)/book
	@cp _toc.yml $(BOOK_SRC)/ && cp book/*.md book/*.ipynb $(BOOK_SRC)/book/
	@$(BIN)/python -c 'import sys, yaml; \
	c = yaml.safe_load(open(sys.argv[1])); \
	c.setdefault("execute", {})["execute_notebooks"] = "off"; \
	yaml.safe_dump(c, open(sys.argv[2], "w"), sort_keys=False)' _config.yml $(BOOK_SRC)/_config.yml
	@echo "==> [execute] the chapters in $(BOOK_SRC)/book, $(BOOK_JOBS) at a time"
	@start=$$(date +%s); ls $(BOOK_SRC)/book/*.ipynb | xargs -P $(BOOK_JOBS) -I{} sh -c \
	  't0=$$(date +%s); $(BIN)/jupyter execute --inplace --timeout=600 {} >{}.log 2>&1 \
	   || { cat {}.log; echo "FAILED: {}"; exit 255; }; \
	   echo "  {}: $$(( $$(date +%s) - t0 ))s"'; \
	echo "<== [execute] ok in $$(( $$(date +%s) - start ))s"
	$(call timed,render,$(BIN)/jupyter-book build $(BOOK_SRC) --path-output . $(JB_FLAGS))
	@echo "Book: $(CURDIR)/_build/html/index.html"

test: test-lint test-unit test-nbval test-html test-browser
	@echo "All checks passed."

test-lint: $(STAMP)
	$(call timed,ruff,$(BIN)/ruff check tlr tests)

test-unit: $(STAMP)
	$(call timed,unit,$(BIN)/python -m pytest tests/)

# nbval runs every code cell of every committed chapter (errors only; --nbval-lax).
# No chapters yet, or pytest's exit code 5 ("no tests collected"), is not a failure.
test-nbval: $(STAMP)
	@echo "==> [nbval] pytest --nbval-lax --nbval-current-env -p no:python book/"
	@start=$$(date +%s); \
	if ! ls book/*.ipynb >/dev/null 2>&1; then echo "no book/*.ipynb yet: nbval skipped"; exit 0; fi; \
	rc=0; $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:python book/ || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "nbval: no notebook cells collected"; rc=0; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; \
	echo "<== [nbval] ok in $$(( $$(date +%s) - start ))s"

# The chapters' checks must hold on any kind of CPU: MKL picks its kernels by processor, the
# last bits differ, and trained models carry the difference on. `make test-other-cpus` runs the
# notebooks under MKL's AVX2 and generic (COMPATIBLE) code paths, as other CPUs would (15 to 20
# minutes each on 2 cores; not part of `make test`).
test-other-cpus: $(STAMP)
	@for path in AVX2 COMPATIBLE; do \
	  echo "==> [nbval, MKL_CBWR=$$path]"; \
	  MKL_CBWR=$$path $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:python -q \
	    book/ || exit $$?; \
	done

test-html: $(STAMP)
	@mkdir -p $(TEST_BUILD)
	@$(BIN)/python -c 'import sys, yaml; \
	c = yaml.safe_load(open(sys.argv[1])); \
	c.setdefault("execute", {})["execute_notebooks"] = "off"; \
	yaml.safe_dump(c, open(sys.argv[2], "w"), sort_keys=False)' _config.yml $(TEST_CONFIG)
	$(call timed,html,$(BIN)/jupyter-book build . --config $(TEST_CONFIG) --path-output $(TEST_BUILD) $(JB_FLAGS))

# Every page of the test-html build in headless Chromium with no network: console errors,
# formulas typeset by the book's own MathJax, images, animation players, Colab buttons
# (tests/browser). Chromium is the system's, never downloaded here: on Debian
# `apt-get install -y chromium`. Without it the tests skip and print why;
# TLR_REQUIRE_BROWSER=1 turns that skip into a failure.
test-browser: $(STAMP)
	$(call timed,browser,TLR_HTML_DIR=$(TEST_HTML) $(BIN)/python -m pytest tests/browser -rs)

sync: $(STAMP)
	@if ls book/*.py >/dev/null 2>&1; then $(BIN)/jupytext --sync book/*.py; else echo "no book/*.py"; fi

# From each chapter's exercises (book/NAME.py): student/NAME.ipynb (stubs, public checks) and
# instructor/NAME.ipynb (solutions, hidden checks, the grading key) with a README; see
# book/instructors.md. Grade with `python -m tlr.exercises grade SUBMISSION --key KEY`.
assignments: $(STAMP)
	$(call timed,assignments,$(BIN)/python tools/assignments.py --out _build/assignments)

clean:
	rm -rf _build

# The poster's Tables 1 and 2 at paper scale: sweeps/table1.yaml and sweeps/table2.yaml (50 + 21
# runs; many CPU-hours), as local processes (SWEEP_JOBS at once) on the GPU if there is one,
# into _build/reproduce/{table1,table2}, then their summary (summary.md, summary.json).
# Re-running skips the finished runs. Exits 1 if a run failed (listed in the summary).
SWEEP_JOBS ?= 1
.PHONY: reproduce
reproduce: $(STAMP)
	@rc=0; for t in table1 table2; do \
	  $(BIN)/python -m tlr sweep --grid sweeps/$$t.yaml --executor local --device auto \
	    --jobs $(SWEEP_JOBS) --out _build/reproduce/$$t || rc=$$?; \
	done; \
	$(BIN)/python -m tlr summarize _build/reproduce --json _build/reproduce/summary.json \
	  --markdown _build/reproduce/summary.md; \
	exit $$rc
