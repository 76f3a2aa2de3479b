# hubd — build, test, benchmark. Run `make help` for the list.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
# One version for `make build` and `make deb` (scripts/version.sh: X.Y.Z on a vX.Y.Z tag, else
# <next>~dev.<n>+g<commit>); override with `make deb VERSION=...`. BIN and DIST move the outputs.
VERSION := $(shell scripts/version.sh)
COMMIT := $(shell scripts/version.sh commit)
BIN ?= bin
DIST ?= dist
# Release binaries as Debian builds them: position independent, full RELRO, the C part (PAM)
# with stack protector and fortified functions, no symbol tables.
export CGO_CFLAGS := -g -O2 -fstack-protector-strong -Wformat -Werror=format-security
export CGO_CPPFLAGS := -D_FORTIFY_SOURCE=2
LDFLAGS := -s -w -X github.com/hubd/hubd/internal/version.Version=$(VERSION) -X github.com/hubd/hubd/internal/version.Commit=$(COMMIT)
BUILDFLAGS := -trimpath -buildmode=pie

.PHONY: help build deb test test-short bench fuzz crashloop soak lint deps demo clean

help:
	@echo "make build   build bin/hubd (cgo, PAM) and bin/hubtui (static)"
	@echo "make deb     build dist/hubd_<version>_<arch>.deb (install it with apt install ./dist/...)"
	@echo "make test    install test dependencies, lint, run every test (as root)"
	@echo "make bench   run the benchmarks and write bench/results/<date>.md"
	@echo "make fuzz    run every fuzz target for FUZZTIME (default 20s) each; not part of make test"
	@echo "make crashloop  kill -9 a hub under writes CRASHLOOP_ROUNDS times (default 100): bench/results/<date>-crashloop.md"
	@echo "make soak    mixed load on a hub for SOAK_MINUTES (default 30): bench/results/<date>-soak.{md,png}"
	@echo "make lint    gofmt, go mod tidy check, go vet, staticcheck (go tool), docs/config.md up to date, dependency pins"
	@echo "make deps    install the Debian packages and tools the tests need"
	@echo "make demo    install, build and run a hub with a demo member in the foreground"
	@echo "make clean   remove build outputs"

build:
	@test -n "$(VERSION)" || { echo "no version: scripts/version.sh failed"; exit 1; }
	CGO_ENABLED=1 $(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS) -extldflags "-Wl,-z,relro,-z,now"' -o $(BIN)/hubd ./cmd/hubd
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/hubtui ./cmd/hubtui

deb:
	scripts/deps.sh build
	$(MAKE) --no-print-directory build
	scripts/deb/build.sh '$(VERSION)' '$(BIN)' '$(DIST)'

deps:
	scripts/deps.sh test

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod download
	$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy and commit the result"; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) run ./core/config/internal/configdoc -src core/config/config.go -o docs/config.md -check
	scripts/check-pins.sh

# Test packages run side by side: those that need one host resource
# (systemd booted in namespaces, the Docker and Slurm labs, the LDAP NSS
# directory) take turns through locks the tests take themselves
# (internal/testlab.Lock). test/deb installs the product itself and
# compares the whole host before and after, so it runs alone, last.
test: deps lint build
	$(GO) test -count=1 -p 3 -timeout 45m $$($(GO) list ./... | grep -v '/test/deb$$')
	$(GO) test -count=1 -timeout 20m ./test/deb

test-short:
	$(GO) test -count=1 -short ./...

bench: build
	scripts/deps.sh bench
	scripts/bench.sh

# Each fuzz target runs on its own; `go test` replays the committed
# corpora (testdata/fuzz) in make test.
FUZZTIME ?= 20s
FUZZ_TARGETS := ./core/config:FuzzParse ./core/names:FuzzCheck ./core/names:FuzzNormalize \
	./core/web:FuzzDecodeJSON ./core/web:FuzzAPIBody ./core/proxy:FuzzRoute ./core/proxy:FuzzProxyPath \
	./core/admin:FuzzRequest ./core/admin/client:FuzzResponse ./backups:FuzzVerify
# A target fails the run only with a finding (a failing input written to
# testdata/fuzz); the engine's own "context deadline exceeded" at the end
# of a run on a loaded machine is reported and skipped.
fuzz:
	@set -o pipefail; fail=0; log=$$(mktemp); for t in $(FUZZ_TARGETS); do \
	  echo "fuzz: $${t%%:*} $${t##*:} for $(FUZZTIME)"; \
	  if ! $(GO) test -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s -parallel 2 "$${t%%:*}" 2>&1 | tee "$$log"; then \
	    if grep -q 'Failing input written' "$$log"; then fail=1; else echo "fuzz: $${t##*:}: the fuzzing engine stopped without a finding"; fi; \
	  fi; \
	done; rm -f "$$log"; exit $$fail

CRASHLOOP_ROUNDS ?= 100
crashloop:
	HUBD_CRASHLOOP_ROUNDS=$(CRASHLOOP_ROUNDS) HUBD_CRASHLOOP_REPORT=$(CURDIR)/bench/results/$$(date -u +%F)-crashloop.md \
	  $(GO) test -count=1 -timeout 120m -run '^TestCrashLoop$$' -v ./test/faults

SOAK_MINUTES ?= 30
soak:
	SOAK_MINUTES=$(SOAK_MINUTES) HUBD_SOAK_REPORT=$(CURDIR)/bench/results/$$(date -u +%F)-soak \
	  $(GO) test -count=1 -timeout $$(( $(SOAK_MINUTES) + 30 ))m -run '^TestSoak$$' -v ./test/faults

demo:
	scripts/deps.sh run
	$(MAKE) build
	scripts/demo.sh

clean:
	rm -rf bin dist test-artifacts bench/tmp
