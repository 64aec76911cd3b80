# Seedfleet developer entry points. `make` alone lists the targets.

GO ?= go
# Use the gofmt that belongs to the selected Go toolchain, not whatever is first on PATH.
GOFMT ?= $(shell $(GO) env GOROOT)/bin/gofmt

# Per-target duration for `make fuzz-smoke`.
FUZZTIME ?= 10s
# Extra flags for the benchmark drivers, e.g. BENCH_ARGS=-smoke.
BENCH_ARGS ?=
# Flags for the crash suite, e.g. CRASH_ARGS=-smoke or CRASH_ARGS='-rounds 50 -seed 42'.
CRASH_ARGS ?=

# Go files git knows about: tracked plus new files that are not ignored.
# Outside a git checkout (e.g. an exported tarball) fall back to every .go
# file not under a dot directory. $(wildcard) drops files deleted from the
# work tree but still in the index.
GO_FILES = $(wildcard $(shell git ls-files -co --exclude-standard -- '*.go' 2>/dev/null || find . -name '*.go' -not -path './.*'))

.DEFAULT_GOAL := help

# controller-gen, pinned: it generates CRDs, RBAC and deepcopy code.
CONTROLLER_TOOLS_VERSION ?= v0.22.0
CONTROLLER_GEN = $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

# golangci-lint, pinned, built with `go install` from the module proxy into
# a cache directory keyed by its version (a cold build takes a few minutes).
GOLANGCI_LINT_VERSION ?= v2.15.0
TOOLS_DIR ?= $(HOME)/.cache/seedfleet/tools
GOLANGCI_LINT = $(TOOLS_DIR)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint

# Image of `make docker-build` and `make deploy` (one image for the operator
# and the seed pods). The tag is the chart's appVersion unless given.
IMG ?= seedfleet:0.1.0
CONTAINER_TOOL ?= docker
# kubectl and helm of `make install`, `deploy` and their opposites: the
# current kubeconfig context's cluster.
KUBECTL ?= kubectl
HELM ?= helm
# Release and namespace of `make deploy`.
RELEASE ?= seedfleet
NAMESPACE ?= seedfleet-system
# Flags of `make run`, e.g. RUN_ARGS='--seed-image=registry.example.org/seedfleet:0.1.0'.
RUN_ARGS ?=

.PHONY: help fmt vet lint lint-fix test test-race fuzz-smoke test-crash bench bench-vault bench-blobs bench-seed bench-operator bench-fleet bench-state build manifests generate envtest-assets test-e2e docker-build install uninstall deploy undeploy run

help: ## List the targets
	@echo 'Usage: make <target> [GO=go] [FUZZTIME=10s] [BENCH_ARGS=...] [IMG=seedfleet:0.1.0]'
	@echo
	@awk 'BEGIN {FS = ":.*## "; n = 0; w = 0} /^[a-zA-Z0-9_-]+:.*## / {name[n] = $$1; text[n++] = $$2; if (length($$1) > w) w = length($$1)} \
		END {for (i = 0; i < n; i++) printf "  %-*s  %s\n", w, name[i], text[i]}' $(MAKEFILE_LIST)

manifests: ## Generate CRDs and RBAC under config/ and copy them into the Helm chart
	$(CONTROLLER_GEN) rbac:roleName=seedfleet-operator crd paths=./api/... paths=./controllers/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	bash ./hack/sync-chart.sh

generate: ## Generate deepcopy code for the API types
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

envtest-assets: ## Build (or reuse) kube-apiserver, etcd, kubectl and helm from the Go module proxy
	@bash ./hack/envtest-assets.sh

fmt: ## gofmt -l -w every tracked (or new, non-ignored) Go file
	@files='$(GO_FILES)'; if [ -n "$$files" ]; then $(GOFMT) -l -w $$files; fi

vet: ## go vet ./...
	$(GO) vet ./...

$(GOLANGCI_LINT):
	@echo "building golangci-lint $(GOLANGCI_LINT_VERSION) into $(dir $@) (once per version)"
	GOBIN='$(dir $@)' $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

lint: $(GOLANGCI_LINT) ## Run golangci-lint (.golangci.yml: vet, staticcheck, errcheck, goimports, ...)
	$(GOLANGCI_LINT) run ./...

lint-fix: $(GOLANGCI_LINT) ## Run golangci-lint and apply its fixes (imports, formatting)
	$(GOLANGCI_LINT) run --fix ./...

test: manifests generate ## Run all tests (the CI test command) after regenerating manifests and code; builds the envtest binaries on first use
	KUBEBUILDER_ASSETS="$$(bash ./hack/envtest-assets.sh)" $(GO) test -count=1 -timeout 20m ./...

test-race: ## All tests again under the race detector (CI runs it after test)
	KUBEBUILDER_ASSETS="$$(bash ./hack/envtest-assets.sh)" $(GO) test -race -count=1 -timeout 30m ./...

test-crash: ## Crash-and-corruption suite: kill -9 of seed and devices, an acknowledged-write ledger, damaged stores (hack/crash; CRASH_ARGS)
	$(GO) run ./hack/crash $(CRASH_ARGS)

test-e2e: ## End-to-end suite on a real single-node cluster in a network namespace (root; hack/e2e/run.sh)
	bash ./hack/e2e/run.sh

fuzz-smoke: ## Run every Fuzz target for FUZZTIME each (hack/fuzz-smoke.sh)
	GO='$(GO)' FUZZTIME='$(FUZZTIME)' bash ./hack/fuzz-smoke.sh

bench: bench-vault bench-blobs bench-seed bench-operator bench-fleet bench-state ## Run all benchmark drivers

bench-vault: ## Run the vault benchmark driver (prints BENCH <name> <value> <unit>)
	$(GO) run ./hack/bench/vault $(BENCH_ARGS)

bench-blobs: ## Run the blob benchmark driver (prints BENCH <name> <value> <unit>)
	$(GO) run ./hack/bench/blobs $(BENCH_ARGS)

bench-seed: ## Run the seed benchmark driver: relay, reservations, DHT provides (prints BENCH <name> <value> <unit>)
	$(GO) run ./hack/bench/seed $(BENCH_ARGS)

bench-fleet: ## Run the fleet benchmark driver: placement at internet scale (prints BENCH <name> <value> <unit>)
	$(GO) run ./hack/bench/fleet $(BENCH_ARGS)

bench-state: ## Run the agent-state benchmark driver: live edits, open, storage, one changed document (cgo; prints BENCH <name> <value> <unit>)
	CGO_ENABLED=1 $(GO) run ./hack/bench/state $(BENCH_ARGS)

bench-operator: ## Run the operator scale benchmark on envtest (prints BENCH <name> <value> <unit>)
	KUBEBUILDER_ASSETS="$$(bash ./hack/envtest-assets.sh)" $(GO) run ./hack/bench/operator $(BENCH_ARGS)

# The binary is built with cgo (agent state links Automerge's Rust core, a
# static library in its Go module) and linked fully statically; netgo and
# osusergo keep glibc's resolver and user lookups out of it. The seed and
# the operator use no cgo code: CGO_ENABLED=0 builds them too (the state
# commands then say they need this build).
STATIC_FLAGS = -tags netgo,osusergo -ldflags '-linkmode external -extldflags "-static"'

build: ## Build the static binary into bin/seedfleet (cgo: needs gcc)
	CGO_ENABLED=1 $(GO) build -trimpath $(STATIC_FLAGS) -o bin/seedfleet .

run: ## Run the operator from source against the current kubeconfig's cluster (RUN_ARGS=...)
	$(GO) run . operator $(RUN_ARGS)

docker-build: ## Build the image IMG (CONTAINER_TOOL=docker)
	$(CONTAINER_TOOL) build -t $(IMG) .

install: ## Install (or update) the CRDs in the current kubeconfig's cluster
	$(KUBECTL) apply --server-side -f config/crd/bases

uninstall: ## Remove the CRDs, and with them every SeedNode and AgentVault
	$(KUBECTL) delete --ignore-not-found -f config/crd/bases

deploy: install ## Install or upgrade the Helm chart with image IMG as RELEASE in NAMESPACE
	$(HELM) upgrade --install $(RELEASE) charts/seedfleet --namespace $(NAMESPACE) --create-namespace \
		--set image.repository=$(firstword $(subst :, ,$(IMG))) --set image.tag=$(or $(word 2,$(subst :, ,$(IMG))),latest)

undeploy: ## Uninstall the Helm chart (the CRDs stay; make uninstall removes them)
	$(HELM) uninstall $(RELEASE) --namespace $(NAMESPACE) --ignore-not-found
