# The two commands a newcomer needs (see README):
#   make book   — create .venv, install everything, build the course (chapters + HTML book)
#   make test   — the same install, then the whole test suite (CI runs exactly this)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# nbgrader shells out to `alembic`, so the venv's bin/ must be on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install book test lint

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt -e .
	touch $@

install: $(VENV)/.installed

book: install
	$(PY) -m autograder book

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: book lint
	$(PY) -m pytest -n 2 --dist loadfile
