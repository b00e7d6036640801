# backgroundjobs — run `make help` for the targets.
SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/backgroundjobs
VENV ?= $(CACHE)/venv
PY := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(CACHE)/bin:$(PATH)
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

setup: ## Install the Python environment (venv in $(CACHE)) and build the cluster binaries
	@bash hack/setup.sh

venv: ## Install only the Python environment
	@bash hack/setup.sh venv

cluster-tools: ## Build kube-apiserver, controller-manager, scheduler, etcd, kwok, helm from Go modules (cached)
	@bash hack/build-cluster-tools.sh

node-tools: ## Build a real node's kubelet, kube-proxy, containerd, CNI plugins, CoreDNS (cached)
	@bash hack/build-cluster-tools.sh node

cluster-up: setup ## Start (or reuse) the local kwok cluster (REAL_NODES=1: plus a real node)
	@bash hack/cluster.sh up

cluster-down: ## Stop the local cluster
	@bash hack/cluster.sh down

kueue-up: cluster-up ## Kueue's manager (built from Go modules) with a ClusterQueue and LocalQueue, on the local cluster
	@bash hack/kueue.sh up

kueue-down: ## Stop the local Kueue manager
	@bash hack/kueue.sh down

kubeconfig: ## Print the local cluster's kubeconfig path (use with make -s)
	@bash hack/cluster.sh kubeconfig

crd: ## Regenerate crds/ from the pydantic models
	@$(PY) -m backgroundjobs.api.crd > crds/backgroundjobs.dev_backgroundjobs.yaml
	@cp crds/backgroundjobs.dev_backgroundjobs.yaml charts/backgroundjobs-operator/crds/ 2>/dev/null || true
	@$(PY) -m backgroundjobs.api.queues > crds/backgroundjobs.dev_backgroundjobqueues.yaml
	@cp crds/backgroundjobs.dev_backgroundjobqueues.yaml charts/backgroundjobs-operator/crds/ 2>/dev/null || true

install-crd: cluster-up ## Apply the CRD to the cluster in KUBECONFIG (or the local one)
	@KUBECONFIG=$${KUBECONFIG:-$$(bash hack/cluster.sh kubeconfig)} kubectl apply --server-side -f crds/

run: install-crd ## Run the operator locally against the dev cluster
	@KUBECONFIG=$${KUBECONFIG:-$$(bash hack/cluster.sh kubeconfig)} \
	  BACKGROUNDJOBS_POD_POLICY_CHECK=$${BACKGROUNDJOBS_POD_POLICY_CHECK:-false} $(VENV)/bin/bgjobs operator run

lint: ## ruff + mypy --strict
	@$(VENV)/bin/ruff check operator tests bench hack job_images
	@$(VENV)/bin/ruff format --check operator tests bench hack job_images
	@$(VENV)/bin/mypy

test: setup ## Run unit + integration + e2e tests (e2e where Docker and a real node can run)
	@bash hack/test.sh $(PYTEST_ARGS)

test-reliability: setup ## Fault tests (tests/reliability) on a cluster of their own; RELIABILITY_SCALE=0.2 for the small version
	@BGJ_CLUSTER=$${BGJ_RELIABILITY_CLUSTER:-backgroundjobs-reliability} $(PY) -m pytest -m reliability tests/reliability $(PYTEST_ARGS)

test-kueue: setup ## Kueue's own manager admitting a queue's runs (marker kueue; builds Kueue once, 10-40 min cold)
	@bash hack/kueue.sh build
	@bash hack/cluster.sh up
	@KUBECONFIG=$$(bash hack/cluster.sh kubeconfig) $(PY) -m pytest -m "kueue and integration" tests/integration $(PYTEST_ARGS)
	@KUBECONFIG= $(PY) -m pytest -m "kueue and e2e" tests/e2e $(PYTEST_ARGS)

e2e: setup ## e2e tests: the images, and the chart and scenarios on a real node (hack/e2e.sh)
	@bash hack/e2e.sh $(PYTEST_ARGS)

e2e-cluster: setup ## Start (or reuse) the e2e cluster: the local control plane plus a real node
	@REAL_NODES=1 BGJ_CLUSTER=$${BGJ_E2E_CLUSTER:-backgroundjobs-e2e} bash hack/cluster.sh up

e2e-down: ## Stop the e2e cluster and remove its node (processes, mounts, iptables rules)
	@BGJ_CLUSTER=$${BGJ_E2E_CLUSTER:-backgroundjobs-e2e} bash hack/cluster.sh down

e2e-kind: ## The e2e tests on a kind cluster (needs Docker with image pulls; see hack/e2e-kind.sh)
	@bash hack/e2e-kind.sh $(PYTEST_ARGS)

test-unit: venv ## Run the unit tests only
	@$(PY) -m pytest -m unit tests/unit $(PYTEST_ARGS)

images: ## Build the base, example handler and operator images (Docker, local Debian base)
	@bash hack/build-images.sh

demo: setup ## The demo: cluster, CRD, operator, one job of each type moving through its phases
	@bash hack/demo.sh

bench: setup ## Benchmarks against the local cluster; writes bench/RESULTS.md
	@bash hack/bench.sh

chart: promtool ## Generate the chart README (helm-docs), lint the chart (strict), test its renders and alerts
	@bash hack/helm-docs.sh generate
	@helm lint --strict charts/backgroundjobs-operator
	@$(PY) -m pytest -q -m unit tests/unit/test_chart_render.py tests/unit/test_chart_docs.py \
		tests/unit/test_dashboard.py tests/unit/test_alerts.py

dist: venv ## Build what users install into dist/: wheel, sdist, chart package, image tarballs
	@bash hack/dist.sh

promtool: ## Build promtool (PromQL checks of the chart's alerts and dashboard) into the cache
	@bash hack/promtool.sh

helm-docs: ## Build helm-docs (the chart README's values table) into the cache
	@bash hack/helm-docs.sh

.PHONY: help setup venv cluster-tools node-tools cluster-up cluster-down kueue-up kueue-down kubeconfig crd install-crd run lint test test-reliability test-kueue e2e e2e-cluster e2e-down e2e-kind test-unit images demo bench chart dist promtool helm-docs
