# Two entry points for a fresh machine: `make serve` and `make test`. Both create .venv and install what they need,
# from pyproject.toml's dependencies at the exact versions of requirements.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The shared weights folder next to the checkout when there is one; otherwise data/models, where missing
# weights are downloaded to.
FACEGATE_WEIGHTS_DIR ?= $(if $(wildcard ../shared/models),../shared/models,data/models)
export FACEGATE_WEIGHTS_DIR

.PHONY: install install-dev serve migrate lint format test test-fast docker-smoke bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e .
	touch $@

# The Python client is its own package (clients/python): the tests and bench/ run it against the service.
$(VENV)/.installed-dev: $(VENV)/.installed clients/python/pyproject.toml
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]' -e clients/python
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
	bash tests/install_browser.sh  # Chromium for tests/test_admin_browser.py when missing

serve: install
	$(BIN)/facegate serve

migrate: install
	$(BIN)/facegate migrate

# Quality gates: lint, formatting and types, all clean.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Everything, as CI runs it: the quality gates, every test (real database, models, data and browser), then the
# container image built and run.
test: install-dev lint
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered
	$(MAKE) docker-smoke

# The Dockerfile's image built on a private Docker engine and run: ready, an LFW photo identified, non-root; prints
# its size (needs root; deploy/docker-smoke.sh).
docker-smoke:
	bash deploy/docker-smoke.sh

# The edit-and-test loop: no weights, no browser (under 30 s).
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not models and not browser" -q

bench: install-dev
	$(BIN)/python -m bench.run

# Re-pin every dependency after changing pyproject.toml: a fresh environment, resolved and frozen.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e '.[dev]'
	(echo "# Exact versions of every dependency (make lock). Installed with: pip install -c requirements.lock -e ."; \
	 .venv-lock/bin/pip freeze --exclude-editable) > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV)
