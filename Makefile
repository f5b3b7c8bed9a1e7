# Two entry points for people (see README): `make demo` and `make test`.
# Each creates or updates the virtualenv in .venv itself.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: demo test lint venv clean

# The fake rkt is `#!/usr/bin/env python3`: with the venv first on PATH it starts the
# venv's interpreter directly (no pyenv-style shim in front of every rkt call).
RUN := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "rktctl needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || \
	  { echo "could not create a virtualenv: on Debian run 'apt-get install python3-venv'"; exit 1; }
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(RUN) $(VENV)/bin/python -m controller.demo

test: $(STAMP)
	$(RUN) $(VENV)/bin/python -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info
