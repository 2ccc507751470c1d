# kfp-mlops: every command a user needs. `make help` lists them.
PYTHON ?= python3.11
VENV ?= .venv
STATE_DIR ?= local_state
BUILD_DIR ?= build
PORT ?= 9000
METRICS_PORT ?= 6000
# monitor-demo serves beside `make demo`'s server, in its own state directory (STATE_DIR/monitor-demo).
MONITOR_PORT ?= 9001
MONITOR_METRICS_PORT ?= 6001
PYTEST_ARGS ?=
# Single-quoted for the shell, whatever the text holds (quotes, $, backticks): make rollback REASON="..."
quote = '$(subst ','\'',$(1))'

PY := $(VENV)/bin/python
PIP_QUIET := --quiet --disable-pip-version-check
UV := $(VENV)/bin/uv pip install --quiet --compile-bytecode

.DEFAULT_GOAL := help
.PHONY: help venv demo monitor-demo stop serve status history rollback compile docs new-component test lint format lock \
	clean distclean

help:  ## list the targets
	@grep -hE '^[a-z.-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# pip installs only uv (pinned in requirements-dev.txt); uv installs the rest, several times faster. Bytecode is
# compiled at install (as pip does): every pipeline step is a fresh process importing sklearn, pandas and kfp.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_QUIET) $$(grep '^uv==' requirements-dev.txt)
	$(UV) --python $(VENV)/bin/python -r requirements.txt -r requirements-dev.txt
	$(UV) --python $(VENV)/bin/python --no-deps -e .
	@touch $@

venv: $(VENV)/.installed  ## create .venv: pipelines, model server (the serving image's exact pins) and tools

# run_local ends a deploy_target=local run with the champion served on PORT and prints how to call it (a Python
# OIP client, then the curl): a re-run whose gate keeps the champion deploys nothing, so the running server stays or
# the champion is started from the registry.
demo: venv compile  ## train locally end to end and serve the champion on PORT (OIP; metrics on METRICS_PORT)
	$(PY) run_local.py training --state-dir $(STATE_DIR) deploy_target=local \
		serving_port=$(PORT) metrics_port=$(METRICS_PORT)
	@echo "metrics: curl -s http://127.0.0.1:$(METRICS_PORT)/metrics | grep ^model_"
	@echo "stop:    make stop$(if $(filter local_state,$(STATE_DIR)),, STATE_DIR=$(STATE_DIR))"

monitor-demo: venv compile  ## serve a champion, replay a shifted market, detect drift, retrain, serve (MONITOR_PORT)
	$(PY) monitor_demo.py --state-dir $(STATE_DIR) --port $(MONITOR_PORT) --metrics-port $(MONITOR_METRICS_PORT)

stop: $(VENV)/.installed  ## stop the local model server(s)
	$(PY) -m serving.local_server --state-dir $(STATE_DIR) stop

serve: venv  ## serve a model directory (OIP): make serve MODEL_DIR=path [MODEL_NAME=model PORT=9000 METRICS_PORT=6000]
	@test -n "$(MODEL_DIR)" || { echo "usage: make serve MODEL_DIR=<model directory> [MODEL_NAME=<OIP model name>]"; exit 2; }
	$(PY) -m serving.local_server --state-dir $(STATE_DIR) start --model-dir $(MODEL_DIR) \
		$(if $(MODEL_NAME),--model-name $(MODEL_NAME)) --port $(PORT) --metrics-port $(METRICS_PORT)

status: $(VENV)/.installed  ## show the local model server(s)
	@$(PY) -m serving.local_server --state-dir $(STATE_DIR) status

history: $(VENV)/.installed  ## a model's promotion history (champion and challenger moves): make history MODEL=name
	@test -n "$(MODEL)" || { echo "usage: make history MODEL=<registered model name>"; exit 2; }
	@$(PY) run_local.py history --state-dir $(STATE_DIR) model_name=$(call quote,$(value MODEL))

# The rollback pipeline, locally: the version is verified, served on PORT through the training pipeline's deploy
# step (smoke test, previous server restored on failure), then becomes the champion; the move is in `make history`.
rollback: $(VENV)/.installed  ## serve a previous version again: make rollback MODEL=name [VERSION=N REASON="..." FORCE=1]
	@test -n "$(MODEL)" || { echo 'usage: make rollback MODEL=<registered model name> [VERSION=<version>] [REASON="why"] [FORCE=1]'; exit 2; }
	$(PY) run_local.py rollback --state-dir $(STATE_DIR) deploy_target=local \
		serving_port=$(PORT) metrics_port=$(METRICS_PORT) model_name=$(call quote,$(value MODEL)) \
		$(if $(VERSION),to_version=$(call quote,$(value VERSION))) $(if $(REASON),reason=$(call quote,$(value REASON))) \
		$(if $(FORCE),force=true)

compile: $(VENV)/.installed  ## compile every pipeline and component into BUILD_DIR
	$(PY) compile.py --output-dir $(BUILD_DIR)

docs: $(VENV)/.installed  ## regenerate docs/components.md, docs/pipeline-parameters.md and each component's README.md and metadata.yaml
	$(PY) docs/reference.py

new-component: $(VENV)/.installed  ## scaffold a component and its tests: make new-component NAME=verb_noun
	@test -n "$(NAME)" || { echo "usage: make new-component NAME=verb_noun"; exit 2; }
	$(PY) new_component.py $(NAME)
	$(PY) docs/reference.py

test: venv  ## run the whole test suite
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed  ## ruff lint and format check; the generated docs are current; the import guard
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) docs/reference.py --check
	$(PY) tools/import_guard.py

format: $(VENV)/.installed  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lock: $(VENV)/.installed  ## re-resolve the exact pins from the .in files (needs network)
	$(VENV)/bin/uv pip compile -q --python-version 3.11 --custom-compile-command "make lock" requirements.in -o requirements.txt
	$(VENV)/bin/uv pip compile -q --python-version 3.11 --custom-compile-command "make lock" requirements-dev.in -o requirements-dev.txt
	$(VENV)/bin/uv pip compile -q --python-version 3.11 --custom-compile-command "make lock" -c requirements.txt images/serving/requirements.in -o images/serving/requirements.txt

# make monitor-demo's server is recorded in STATE_DIR/monitor-demo (monitor_demo.py): stopped too, before its record
# is deleted, or it would keep its ports with nothing left for make stop to find it by.
clean:  ## remove compiled pipelines and local state (registry, runs, served models); stops local servers
	-@test -x $(PY) && $(PY) -m serving.local_server --state-dir $(STATE_DIR) stop
	@if test -x $(PY) && test -d $(STATE_DIR)/monitor-demo/serving; then \
		$(PY) -m serving.local_server --state-dir $(STATE_DIR)/monitor-demo stop; fi
	rm -rf $(BUILD_DIR) $(STATE_DIR)

distclean: clean  ## also remove the environment (.venv)
	rm -rf $(VENV)

# --- kind cluster: KFP, Seldon Core or KServe, MLflow (cluster/; needs docker, kind, kubectl, helm) ---
CLUSTER_NAME ?= kfp-mlops
# The serving platform: seldon or kserve. make cluster installs it (seldon when empty); make run deploys to it (when
# empty: the one make cluster recorded in the cluster).
SERVING ?=
IMAGE_REGISTRY ?=
# <project version>-<short commit>; never `latest` (Kubernetes would always pull, and kind images cannot be pulled).
# The version is read with awk, not Python: the cluster commands need no particular interpreter on PATH.
IMAGE_TAG ?= $(shell awk -F'"' '/^\[/ {p = ($$0 == "[project]")} p && /^version *=/ {print $$2; exit}' pyproject.toml)-$(shell git rev-parse --short HEAD)
BUILD_IMAGES ?= 1
PROMETHEUS ?= 0
REHEARSE_ARGS ?=
IMAGE_BASE ?=
BASE_IMAGE_TAG ?= kfp-mlops-base:bookworm
CLUSTER_ENV = CLUSTER_NAME='$(CLUSTER_NAME)' IMAGE_REGISTRY='$(IMAGE_REGISTRY)' IMAGE_TAG='$(IMAGE_TAG)' IMAGE_BASE='$(IMAGE_BASE)'

.PHONY: cluster cluster-down images base-image rehearse

cluster:  ## kind cluster: KFP 2.17.0, Seldon Core 1.17.1 (SERVING=kserve: KServe v0.20.0), MLflow, the images (PROMETHEUS=1)
	$(CLUSTER_ENV) SERVING='$(or $(SERVING),seldon)' BUILD_IMAGES='$(BUILD_IMAGES)' PROMETHEUS='$(PROMETHEUS)' cluster/up.sh

images:  ## build both images (tag IMAGE_TAG; Docker only); load them into the kind cluster if it exists
	$(CLUSTER_ENV) cluster/images.sh

base-image:  ## slim Debian base image from Debian packages only (debootstrap; root): then make images IMAGE_BASE=$(BASE_IMAGE_TAG)
	BASE_IMAGE_TAG='$(BASE_IMAGE_TAG)' cluster/base-image.sh

# Every container the cluster would run, run here with Docker and no cluster (cluster/rehearsal): S3, MLflow, each
# step in the components image, the storage copy, the serving container as Seldon and as KServe start it; a summary.
rehearse: $(VENV)/.installed  ## rehearse the cluster path with the images IMAGE_TAG (REHEARSE_ARGS='--rows N')
	$(PY) -m cluster.rehearsal --image-tag '$(IMAGE_TAG)' --image-registry '$(IMAGE_REGISTRY)' $(REHEARSE_ARGS)

cluster-down:  ## delete the kind cluster and everything in it
	CLUSTER_NAME='$(CLUSTER_NAME)' cluster/down.sh

# --- runs on the cluster ---
KF_PIPELINES_ENDPOINT ?= http://localhost:8080
TRACKING_URI ?= http://mlflow.kubeflow.svc.cluster.local:5000
MODEL_NAMESPACE ?= models
RUN_ARGS ?=
PIPELINE ?= training
# serving_platform of a run: SERVING, else what make cluster recorded in the kind cluster (ConfigMap kfp-mlops-serving
# in `models`, wherever MODEL_NAMESPACE points), else seldon (no cluster answers, or one made before the record).
# Recursive (=): kubectl runs only when `make run` expands it without SERVING.
RUN_SERVING = $(or $(SERVING),$(shell kubectl --context kind-$(CLUSTER_NAME) --request-timeout=10s -n models get \
	configmap kfp-mlops-serving -o jsonpath='{.data.serving_platform}' 2>/dev/null),seldon)

.PHONY: run

# PIPELINE=rollback is the cluster's rollback: make run PIPELINE=rollback RUN_ARGS='model_name=house-prices reason="..."'
run: $(VENV)/.installed  ## compile with IMAGE_TAG, start a PIPELINE (training) run on KF_PIPELINES_ENDPOINT (RUN_ARGS='k=v ...'; SERVING: the cluster's)
	$(PY) compile.py --output-dir $(BUILD_DIR) --image-registry '$(IMAGE_REGISTRY)' --image-tag '$(IMAGE_TAG)' \
		--pipeline $(call quote,$(value PIPELINE)) $(RUN_ARGS)
	$(VENV)/bin/kfp --endpoint $(KF_PIPELINES_ENDPOINT) run create -e kfp-mlops -r "$(PIPELINE) $(IMAGE_TAG)" \
		-f $(BUILD_DIR)/$(PIPELINE)_pipeline.yaml tracking_uri=$(TRACKING_URI) deploy_target=kubernetes \
		namespace=$(MODEL_NAMESPACE) serving_platform='$(RUN_SERVING)' $(RUN_ARGS) \
		|| { echo "error: no run was started on KF_PIPELINES_ENDPOINT=$(KF_PIPELINES_ENDPOINT) (kfp says why above): no KFP API there? make cluster prints how to reach it" >&2; exit 1; }
