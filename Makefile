# One command to set up and run the service, one to set up and run the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
CONSTRAINTS := requirements/constraints.txt
HOST ?= 127.0.0.1
PORT ?= 8000
UCI_DATA ?= ../shared/data/online_shoppers_intention.csv

.PHONY: help run test test-unit lint format train-uci train-storefront bench lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)

# Stamps make reinstalling cheap: they are redone only when the project's dependencies change.
$(VENV)/.serve: pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) install -c $(CONSTRAINTS) -e .
	@touch $@

$(VENV)/.dev: pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) install -c $(CONSTRAINTS) -e '.[training,dev]'
	@touch $@ $(VENV)/.serve

run: $(VENV)/.serve  ## install the serving dependencies and start the service on $(HOST):$(PORT)
	PROPENSITY_DEFAULT_MODEL=$${PROPENSITY_DEFAULT_MODEL:-storefront} PROPENSITY_HOST=$(HOST) \
		PROPENSITY_PORT=$(PORT) $(PY) -m app

test: $(VENV)/.dev  ## install everything the tests need and run them all
	$(PY) -m pytest

test-unit: $(VENV)/.dev  ## the fast tests only (no TensorFlow)
	$(PY) -m pytest tests/unit

lint: $(VENV)/.dev  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

train-uci: $(VENV)/.dev  ## retrain the shipped UCI bundle (models/uci_online_shoppers)
	$(PY) -m training train --spec uci_online_shoppers --data $(UCI_DATA) \
		--config training/configs/uci_online_shoppers.toml --out models/uci_online_shoppers --cv 5

STOREFRONT_DATA ?= data/storefront
train-storefront: $(VENV)/.dev  ## regenerate the synthetic store's log and retrain models/storefront
	$(PY) -m training synth-storefront --users 2000 --items 400 --days 180 --seed 0 \
		--out-dir $(STOREFRONT_DATA)
	$(PY) -m training train-recs --spec storefront --events $(STOREFRONT_DATA)/purchases.csv \
		--items $(STOREFRONT_DATA)/items.csv --truth $(STOREFRONT_DATA)/storefront.json \
		--config training/configs/storefront.toml --out models/storefront

# The peers of the load benchmark, each in a virtual environment of its own (their pins clash
# with ours). MLServer 1.7 needs uvloop < 0.22 (SeldonIO/MLServer#2286).
bench/.venv-mlserver/.done:
	$(PYTHON) -m venv bench/.venv-mlserver
	bench/.venv-mlserver/bin/pip --disable-pip-version-check -q install "mlserver==1.7.1" \
		"onnxruntime==1.32.0" numpy "uvloop<0.22" httptools
	@touch $@

bench/.venv-bentoml/.done:
	$(PYTHON) -m venv bench/.venv-bentoml
	bench/.venv-bentoml/bin/pip --disable-pip-version-check -q install "bentoml==1.4.40" \
		"onnxruntime==1.32.0" numpy uvloop httptools
	@touch $@

bench: $(VENV)/.dev bench/.venv-mlserver/.done bench/.venv-bentoml/.done  ## benchmarks -> docs/benchmarks.md (~45 min)
	@command -v wrk >/dev/null || apt-get install -y -qq wrk || sudo apt-get install -y -qq wrk
	$(PY) bench/run.py

lock: $(VENV)/.dev  ## re-pin requirements/ from the dev venv and a fresh serving-only venv
	$(PIP) freeze --exclude-editable | sed '/^-e /d' > $(CONSTRAINTS).new
	{ echo "# Exact versions the project is tested with; every make target installs through them."; \
	  echo "# Regenerate with 'make lock' after changing dependencies in pyproject.toml."; \
	  cat $(CONSTRAINTS).new; } > $(CONSTRAINTS) && rm $(CONSTRAINTS).new
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip --disable-pip-version-check -q install -c $(CONSTRAINTS) .
	{ echo "# Serving dependencies, pinned (the image installs exactly these). Regenerate with 'make lock'."; \
	  .lock-venv/bin/pip freeze --exclude-editable | sed '/^propensity-service/d'; } > requirements/serve.txt
	rm -rf .lock-venv build *.egg-info

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
