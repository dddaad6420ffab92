# Two commands matter: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONSTRAINTS := deploy/constraints.txt

.PHONY: install lock up down status run demo test test-cluster bench lint deploy-check clean

install: $(STAMP)

# The versions in $(CONSTRAINTS), the ones the tests passed with (see its header).
$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' -c $(CONSTRAINTS)
	@touch $@

# Resolve pyproject.toml's ranges afresh (newest versions) and rewrite $(CONSTRAINTS);
# `make install` then installs them. Run `make test` and `make test-cluster` before committing it.
lock:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install -q --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install -q -e '.[dev]'; \
	{ sed -n '/^#/p;/^#/!q' $(CONSTRAINTS); "$$tmp/venv/bin/python" -m pip freeze --exclude-editable; } > "$$tmp/constraints.txt"; \
	mv "$$tmp/constraints.txt" $(CONSTRAINTS); \
	git diff --stat -- $(CONSTRAINTS) || true

# KAFKA_NODES=3: a 3-node KRaft cluster (set WARNING_KAFKA_BOOTSTRAP to the addresses it prints)
up: install
	$(PY) deploy/local/stack.py up $(if $(KAFKA_NODES),--kafka-nodes $(KAFKA_NODES))

down:
	@if [ -x $(PY) ]; then $(PY) deploy/local/stack.py down; else echo "nothing to stop"; fi

status: install
	$(PY) deploy/local/stack.py status

# Starts the stack only if nothing answers, and stops on exit only what it started.
run: install
	@deploy/local/run.sh run

demo: install
	@deploy/local/run.sh demo

# The test session starts the stack itself (or reuses a running one).
test: install
	$(PY) deploy/local/stack.py browser
	$(PY) deploy/local/stack.py tools
	$(VENV)/bin/pytest -q

# The integration and acceptance tests on a 3-node Kafka cluster of their own ports, with
# production replication (3 copies, 2 in sync, a standby per table), and on a Redis Cluster
# of 3 masters + 3 replicas (deploy/local/redis_cluster.py), the queues in 4 shard lanes per
# channel and writes waiting for each master's replica.
CLUSTER_BOOTSTRAP := 127.0.0.1:39192,127.0.0.1:39194,127.0.0.1:39196
REDIS_CLUSTER_URL := redis+cluster://127.0.0.1:21001
test-cluster: install
	$(PY) deploy/local/stack.py browser
	$(PY) deploy/local/stack.py tools
	WARNING_KAFKA_BOOTSTRAP=$(CLUSTER_BOOTSTRAP) WARNING_REPLICATION_FACTOR=3 WARNING_MIN_INSYNC_REPLICAS=2 \
	  WARNING_TABLE_STANDBY_REPLICAS=1 WARNING_REDIS_URL=$(REDIS_CLUSTER_URL) WARNING_SHARD_LANES=4 \
	  WARNING_REDIS_WAIT_REPLICAS=1 $(VENV)/bin/pytest -q tests/integration tests/acceptance $(PYTEST_ARGS)

# deploy/ checked without a cluster or a container engine: alert rules (promtool), compose,
# Kubernetes overlays (kustomize + API schemas), the image's stages in a fresh virtualenv.
deploy-check: install
	$(PY) deploy/check.py

# Every scenario on the real local stack (started and stopped if not running); figures are
# medians of 3 runs, printed as a table and kept in bench/results/latest.json (+ a dated copy).
bench: install
	$(VENV)/bin/warning bench all --repeats 3 --save

lint: install
	$(VENV)/bin/ruff check warning consumers tests deploy
	$(VENV)/bin/mypy

clean: down
	rm -rf .run $(VENV)
