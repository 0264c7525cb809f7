# jobgate: `make dev` runs the whole stack locally, `make test` runs every test.
# Both install what they need first (a virtualenv in .venv, cluster binaries
# built from pinned Go modules into .cache/bin), so they work on a fresh machine.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STATE_DIR ?= .state/dev
# Never put the working directory on sys.path: the folder operator/ must not shadow
# the standard library's `operator` module (the code is imported as jobgate.operator).
export PYTHONSAFEPATH := 1

.PHONY: dev stop test bench bench-quick faults faults-quick lint typecheck crds binaries node install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The control plane's binaries (hack/cluster/build.sh) and the object store's, SeaweedFS
## (hack/store/build.sh): built from pinned Go modules once, then cached in .cache/bin.
binaries:
	@bash hack/cluster/build.sh >/dev/null
	@bash hack/store/build.sh >/dev/null

## The real node's binaries (hack/node/build.sh) and images (devcluster/nodeimages.py), cached;
## says why and does nothing on a machine that cannot run a real node.
node: install
	@$(PY) -m jobgate.devcluster.nodectl prepare

## Start control plane, operator and API on http://127.0.0.1:8265 (Ctrl-C or `make stop` ends it).
## REAL_NODE=1 adds a real node (pool label `real`) that really runs the jobs' entrypoints.
dev: install binaries $(if $(REAL_NODE),node)
	$(PY) -m jobgate.devcluster up --state-dir $(STATE_DIR) --with-jobgate $(if $(REAL_NODE),--real-node)

stop:
	$(PY) -m jobgate.devcluster down --state-dir $(STATE_DIR)

## Every test: unit tests without a cluster, then integration tests on a real local control plane.
test: install binaries node
	$(PY) -m pytest tests

## Benchmarks on fresh local clusters (bench/README.md): figures and chart in bench/results/;
## then a 1 GiB log and a 500 MB package through jobgate, its memory measured (bench/transfer.py).
bench: install binaries
	$(PY) -m jobgate.bench
	$(PY) -m jobgate.bench.transfer

## The same with small numbers (CI: checks the figures are produced, not their values).
bench-quick: install binaries
	$(PY) -m jobgate.bench --quick
	$(PY) -m jobgate.bench.transfer --quick

## Fault and load suite (bench/faults.py): SIGKILL each process with jobs in flight, then load;
## figures in bench/results/faults.json. Fails if a job was lost, doubled or orphaned. Then
## the hostile tenant's attacks (bench/abuse.py): fails if one leaked.
faults: install binaries
	$(PY) -m jobgate.bench.faults
	$(PY) -m jobgate.bench.abuse

## The same with small numbers, a few minutes (CI).
faults-quick: install binaries
	$(PY) -m jobgate.bench.faults --quick
	$(PY) -m jobgate.bench.abuse --quick

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint Dockerfile

typecheck: install
	$(VENV)/bin/mypy

## Regenerate the checked-in CRD from the pydantic models (tests fail when they drift).
crds: install
	$(PY) -m jobgate.crds.generate > crds/jobgate.io_jobs.yaml

clean:
	rm -rf $(VENV) .state .mypy_cache .ruff_cache .pytest_cache
