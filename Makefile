# One-command set-up: every target builds .venv first, from pyproject.toml and constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.modeldeck-installed

.PHONY: install serve test test-fast bench lint constraints clean

CHROMIUM := /usr/bin/chromium

install: $(STAMP) $(CHROMIUM)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $@

# The browser tests (tests/browser, marker `browser`) drive Debian's chromium with Playwright;
# Playwright's own browser download is not used. Installed as root with apt (as CI runs);
# elsewhere say how, and go on: only the browser tests need it.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "note: $(CHROMIUM) is missing; the browser tests need it: sudo apt-get install chromium"; \
	fi

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
