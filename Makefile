# voxfleet: `make demo` runs the product locally, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch 2.13.0's CPU wheel lies in /opt/wheels on our build machines; elsewhere pip
# takes it from PyPI (a CPU-only index may be added with PIP_EXTRA_INDEX_URL).
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
VERSION ?= v1.3.0
PORT ?= 6006
MODELS := build/models
STAMP := $(VENV)/.installed

.PHONY: setup models serve image demo run-image run-image-stop sandbox-down test test-unit test-integration test-docker test-sandbox lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/image.txt requirements/torch.txt requirements/controller.txt requirements/test.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@mkdir -p build/logs
	@echo "installing the pinned packages into $(VENV) (log: build/logs/setup.log)"
	@( $(PIP) install -q --upgrade pip && \
	   $(PIP) install -q $(FIND_LINKS) -r requirements/torch.txt -r requirements/image.txt \
		-r requirements/controller.txt -r requirements/test.txt && \
	   $(PIP) install -q --no-deps -e . ) > build/logs/setup.log 2>&1 || { tail -40 build/logs/setup.log; exit 1; }
	touch $@

models: setup
	$(PY) -m models build v1.2.0 v1.3.0 --out $(MODELS)

serve: models
	MODEL_DIR=$(MODELS)/$(VERSION) PORT=$(PORT) $(PY) -m service

image: models
	$(VENV)/bin/rollout build $(VERSION)

# The product end to end on the local sandbox fleet: sandbox up, build and publish
# v1.2.0 and v1.3.0, v1.2.0 everywhere, steady traffic, `rollout start v1.3.0`.
demo: models
	$(PY) -m canary.devtools.demo

# Just the service image, run hardened on local Docker at :$(PORT).
run-image: image
	$(VENV)/bin/rollout run $(VERSION) --port $(PORT)

run-image-stop: setup
	$(VENV)/bin/rollout stop $(VERSION)

sandbox-down: setup
	$(VENV)/bin/rollout sandbox down

test: models
	$(PY) -m pytest -q

test-unit: setup
	$(PY) -m pytest -q tests/unit

test-integration: models
	$(PY) -m pytest -q tests/integration -m "not docker and not sandbox"

test-docker: models
	$(PY) -m pytest -q -m docker

test-sandbox: models
	$(PY) -m pytest -q -m sandbox

lint: setup
	$(VENV)/bin/ansible-lint --profile production roles playbooks
	$(VENV)/bin/ruff check service canary models bench tests
	$(VENV)/bin/mypy
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/actionlint .github/workflows/*.yml
	$(VENV)/bin/hadolint Dockerfile

bench: models
	$(PY) bench/service.py
	$(PY) bench/fleet.py
	$(PY) bench/rollout.py

clean:
	rm -rf build $(VENV) .pytest_cache
