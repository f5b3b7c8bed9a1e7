# Two entry points for people (see README): `make demo` and `make test`.
# Each creates or updates the virtualenv in .venv itself.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
# Every runtime, test, lint and build dependency, pinned with hashes. `make venv` installs
# exactly this; pyproject.toml keeps the honest ranges for people who `pip install rktctl`.
LOCK   := requirements/lock.txt
# The resolver that writes the lock; pinned too, so `make lock` is repeatable.
UV     := uv==0.13.9

.PHONY: demo test test-latest lint venv lock clean

# The fake rkt is `#!/usr/bin/env python3`: with the venv first on PATH it starts the
# venv's interpreter directly (no pyenv-style shim in front of every rkt call).
RUN := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"

define make_venv
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "rktctl needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	@$(PYTHON) -m venv --clear $(1) || \
	  { echo "could not create a virtualenv: on Debian run 'apt-get install python3-venv'"; exit 1; }
endef

# --clear: a venv left from an older lock would keep packages the lock no longer names.
# --no-deps/--no-build-isolation: the lock is the whole set, and rktctl builds with the
# locked setuptools instead of downloading whatever is newest into an isolated env.
$(STAMP): pyproject.toml $(LOCK)
	$(call make_venv,$(VENV))
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	$(VENV)/bin/pip check
	@touch $(STAMP)

venv: $(STAMP)

# `make demo` drives the bundled fake rkt. As root where rkt is installed,
# `make demo RKT=rkt` runs the same demo on it (STAGE1=fly, the default, host, or the
# path of a stage1 ACI), with a busybox image the demo builds (apt-get install busybox-static).
RKT    ?=
STAGE1 ?=
demo: $(STAMP)
	$(RUN) $(VENV)/bin/python -m controller.demo $(if $(RKT),--rkt '$(RKT)') $(if $(STAGE1),--stage1 '$(STAGE1)')

# Tests mostly wait on processes, so more workers than cores pays; each real stage1's
# tests stay on one worker (tests/conftest.py), so real pods never boot two at a time.
TEST_WORKERS ?= 4
test: $(STAMP)
	$(RUN) $(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

# Regenerate the lock after changing a dependency or a range in pyproject.toml, or to take
# newer releases on purpose (then run `make test` and commit the lock with the reason).
lock:
	$(call make_venv,.venv-lock)
	.venv-lock/bin/pip install --quiet '$(UV)'
	.venv-lock/bin/uv pip compile pyproject.toml requirements/build.in \
	  --extra test --extra dev --universal --python-version 3.11 --generate-hashes \
	  --index-url https://pypi.org/simple --custom-compile-command 'make lock' \
	  --output-file $(LOCK)

# Are pyproject.toml's ranges true? The newest allowed releases in a throwaway venv, unit
# tier only. Not run by CI: CI must not depend on what a registry published today.
test-latest:
	$(call make_venv,.venv-latest)
	.venv-latest/bin/pip install --quiet --upgrade pip
	.venv-latest/bin/pip install --quiet --upgrade --upgrade-strategy eager -e '.[test,dev]'
	.venv-latest/bin/pip freeze --exclude-editable
	PATH="$(CURDIR)/.venv-latest/bin:$$PATH" .venv-latest/bin/python -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .venv-lock .venv-latest build dist *.egg-info
