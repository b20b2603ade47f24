# Flotilla's build. `make demo` runs the main job, `make test` runs every test; see README.md.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X flotilla.dev/flotilla/internal/version.Version=$(VERSION)
CACHE ?= $(or $(FLOTILLA_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/flotilla)
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(CACHE)/tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck
FLEET_DIR ?= .fleet
CLUSTERS ?= 3

export FLOTILLA_DEVFLEET_BIN := $(CURDIR)/bin/flotilla-devfleet

.PHONY: all build fleet test test-demo fuzz test-unit test-e2e lint vet staticcheck tools demo fleet-up bench clean

all: build

## build: the flotilla binary, and the agent-only flotilla-agent (a smaller footprint), in bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/flotilla ./cmd/flotilla
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/flotilla-agent ./cmd/flotilla-agent

## fleet: the local-fleet program, built once per machine and cached (rebuilt when devfleet/ changes)
fleet:
	@./hack/build-fleet.sh

## test: unit and end-to-end tests (the end-to-end ones on a local fleet of real clusters)
test: build fleet
	$(GO) test -count=1 -timeout 25m ./...
	$(GO) test -count=1 -race -timeout 15m $$($(GO) list ./internal/store/... ./internal/server/... ./client/... ./internal/analysis/... ./internal/traffic/... 2>/dev/null)

## fuzz: a short run of every fuzz target (FUZZTIME each); longer runs: make fuzz FUZZTIME=10m
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeYAML$$' -fuzztime $(FUZZTIME) ./api/v1
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/bundle
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/render/manifest
	$(GO) test -run '^$$' -fuzz '^FuzzResolve$$' -fuzztime $(FUZZTIME) ./internal/render/repofs
	$(GO) test -run '^$$' -fuzz '^FuzzParseServersState$$' -fuzztime $(FUZZTIME) ./internal/traffic/haproxy
	$(GO) test -run '^$$' -fuzz '^FuzzCompileCondition$$' -fuzztime $(FUZZTIME) ./internal/analysis
	$(GO) test -run '^$$' -fuzz '^FuzzJSONPath$$' -fuzztime $(FUZZTIME) ./internal/analysis
	$(GO) test -run '^$$' -fuzz '^FuzzParseRoleMap$$' -fuzztime $(FUZZTIME) ./internal/auth

## test-demo: the demo's whole story, checked (its own fleet of four clusters; about 5 minutes)
test-demo: build fleet
	@./hack/ensure-packages.sh prometheus:prometheus haproxy:haproxy git:git
	FLOTILLA_TEST_DEMO=1 $(GO) test -count=1 -timeout 20m -run '^TestDemoRunsTheCanaryStory$$' -v ./test/e2e

## test-unit: only the tests that need no local fleet
test-unit:
	FLOTILLA_TEST_NO_FLEET=1 $(GO) test -count=1 ./...

## lint: gofmt, go vet (both modules) and staticcheck (product module)
lint: vet staticcheck
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi

vet:
	$(GO) vet ./...
	cd devfleet && $(GO) vet ./...

staticcheck: tools
	$(STATICCHECK) ./...

## tools: development tools pinned by version, built once per machine into the cache
tools: $(STATICCHECK)
$(STATICCHECK):
	@echo "installing staticcheck $(STATICCHECK_VERSION) (first time on this machine: a minute or two)"
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## demo: the main job: control plane, a local fleet with agents, Git, Prometheus, a good and a bad canary rollout
demo: build fleet
	@./hack/ensure-packages.sh prometheus:prometheus haproxy:haproxy git:git
	./bin/flotilla demo

## fleet-up: the same local fleet without building flotilla
fleet-up: fleet
	./bin/flotilla-devfleet up --clusters $(CLUSTERS) --dir $(FLEET_DIR)

## bench: benchmarks of the product module (figures go to docs/performance.md)
bench: fleet
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin $(FLEET_DIR) .demo
