# One task runner for people and CI alike. `make demo` and `make test` do all the set-up.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo serve ingest test lint clean

# Everything pinned in requirements.lock, installed without resolving (see its header for why).
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==24.3.1
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

ingest: $(STAMP)
	$(BIN)/clearance ingest

# Ingest the example corpus, issue a key per example user, print how to query, then serve.
demo: $(STAMP)
	$(BIN)/clearance ingest
	BIN=$(BIN) bash examples/demo.sh
	$(BIN)/clearance serve --host 127.0.0.1 --port 8000

serve: $(STAMP)
	$(BIN)/clearance serve

# The real OpenID provider the identity tests run (node-oidc-provider, pinned by its lock file).
PROVIDER := tests/identity/provider
$(PROVIDER)/node_modules/.package-lock.json: $(PROVIDER)/package-lock.json
	npm ci --prefix $(PROVIDER) --no-audit --no-fund --loglevel=error

# axe-core for the browser tests' accessibility checks (tests/web/, pinned by its lock file).
WEB := tests/web
$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	npm ci --prefix $(WEB) --no-audit --no-fund --loglevel=error

test: $(STAMP) $(PROVIDER)/node_modules/.package-lock.json $(WEB)/node_modules/.package-lock.json
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache $(PROVIDER)/node_modules $(WEB)/node_modules \
		.import_linter_cache
