# Setpoint build targets. `make run` starts the server on embedded SQLite;
# `make test` runs every test, as CI does.

GO        ?= go
BIN       := bin/setpoint
FUZZTIME  ?= 20s
BENCHTIME ?= 1x

ROUNDS    ?= 3
OBJECTS   ?= 20000

# bench-ha: the machine's PostgreSQL, and the widgets of the label-selector
# list, kept in schema KEEP_SCHEMA of that database across runs.
PG_URL           ?= postgres://postgres@127.0.0.1:5432/setpoint_dev?sslmode=disable
SELECTOR_OBJECTS ?= 1000000
KEEP_SCHEMA      ?= bench_selector_$(SELECTOR_OBJECTS)

.PHONY: all build run test test-unit test-e2e bench bench-compare bench-ha fuzz lint fmt

all: build

build:
	$(GO) build -o $(BIN) ./cmd/setpoint

run: build
	./$(BIN) serve

# The race detector runs on every package of the main module; the end-to-end
# suite (its own module) starts the real binary.
test: lint test-unit test-e2e

test-unit:
	$(GO) test -race -count=1 -timeout 20m ./...

test-e2e: build
	cd test/e2e && SETPOINT_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...
	cd bench && $(GO) run . -out results

# Setpoint and, once bench/peer/start.sh exists, Kubernetes' API server on
# etcd, ROUNDS rounds interleaved; OBJECTS=100000 for the full size.
bench-compare: build
	ROUNDS=$(ROUNDS) BENCH_ARGS="-objects $(OBJECTS)" bench/compare.sh

# Setpoint on PostgreSQL at PG_URL: one replica, then three, ROUNDS rounds
# each, results in bench/results/ha. The one-replica run also times the
# label-selector list over SELECTOR_OBJECTS widgets; its first run fills
# KEEP_SCHEMA through the API (about 25 minutes at 1,000,000 on 2 cores),
# later runs reuse it.
HA_ARGS = -storage '$(PG_URL)' -rounds $(ROUNDS) -objects $(OBJECTS) -out results/ha
bench-ha: build
	cd bench && $(GO) run . $(HA_ARGS) -replicas 1 -label setpoint-postgres-1 \
	    -selector-objects $(SELECTOR_OBJECTS) -keep-schema $(KEEP_SCHEMA) && \
	  $(GO) run . $(HA_ARGS) -replicas 3 -label setpoint-postgres-3 -selector-objects 0

# Each fuzz target runs for FUZZTIME; `go test` alone replays the seed corpus.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

lint:
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd test/e2e && $(GO) vet ./...

fmt:
	gofmt -w .
