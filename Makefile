# Two entry points for a fresh machine: `make serve` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The shared weights folder next to the checkout when there is one; otherwise data/models, where missing
# weights are downloaded to.
FACEGATE_WEIGHTS_DIR ?= $(if $(wildcard ../shared/models),../shared/models,data/models)
export FACEGATE_WEIGHTS_DIR

.PHONY: install install-dev serve migrate test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
	bash tests/install_browser.sh  # Chromium for tests/test_admin_browser.py when missing

serve: install
	$(BIN)/facegate serve

migrate: install
	$(BIN)/facegate migrate

test: install-dev
	$(BIN)/python -m pytest

bench: install-dev
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV)
