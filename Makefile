# One-command set-up: every target builds .venv first, from pyproject.toml and constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.modeldeck-installed

.PHONY: install serve test test-fast bench lint constraints clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $@

serve: install
	$(VENV)/bin/modeldeck serve

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

bench: install
	$(PY) benchmarks/run.py

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

constraints: install
	(sed -n 1,3p constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v "^modeldeck") > constraints.new
	mv constraints.new constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
