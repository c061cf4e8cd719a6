# labrunner: build, lint, test and demo. `make test` is what CI runs.
GO        ?= go
TOOLS     := $(CURDIR)/.cache/tools
PLATFORMS := windows/amd64 windows/arm64 darwin/amd64 darwin/arm64 linux/amd64
COMMANDS  := $(notdir $(wildcard cmd/*))
# Packages with Windows-specific code, whose tests also run under Wine.
WINPKGS   := ./platform/... ./agent/... ./runner/...
# Every binary says which build it is (`runner version --json`): the version
# from `git describe` (a tag such as v1.4.0 gives 1.4.0; untagged, the short
# commit), the commit and the build date, stamped into internal/version.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null | sed 's/^v//' || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
BUILDDATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VPKG      := github.com/labrunner/labrunner/internal/version
LDFLAGS   := -X $(VPKG).version=$(VERSION) -X $(VPKG).commit=$(COMMIT) -X $(VPKG).date=$(BUILDDATE)
export CGO_ENABLED ?= 0
export PATH := $(PATH):/usr/local/go/bin

.PHONY: all build print-ldflags demo test unit faults wintest installers fuzz lint cross bench bench-compare bench-quick services chromium dashboard-shots tools taskcluster-cli clean

all: cross

# print-ldflags: the stamp `build` and `cross` use (the version test reads it).
print-ldflags:
	@echo '$(LDFLAGS)'

## build: every command for this machine, stamped with the version, into bin/.
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

## demo: the whole system in one process (devstack, three runners) through a scripted scenario; exit 0 if every outcome was the expected one.
demo:
	$(GO) run ./cmd/devstack demo

## test: lint, cross-build every target, every test against real services (the
## fault suite with its figures), a short fuzz run, and the benchmark
## comparison's quick mode (so that its harness cannot rot).
test: services lint cross unit faults wintest installers fuzz bench-quick

# The fault suite and the installers' tests run on their own, verbose, so that their figures show.
unit: services chromium
	LABRUNNER_REQUIRE_BROWSER=1 CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v -e '/e2e/faults$$' -e '/installers')

## faults: the fault suite (real runner and provisioner processes behind fault
## proxies); each test prints its figures on a line starting with FIGURE.
faults: services
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 15m -v ./e2e/faults/

## wintest: the Windows builds of WINPKGS' tests, run under Wine.
wintest:
	@scripts/ensure-wine.sh
	PATH=$(CURDIR)/scripts/wine:$$PATH GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) test -count=1 $(WINPKGS)

## installers: the Windows MSI and the macOS pkg into dist/ (installers/build.sh;
## SIGN_PKCS12 or SIGN_CERT + SIGN_KEY sign the MSI, docs/install-windows.md),
## then their tests: the MSI's tables, signing, install/upgrade/uninstall
## under Wine against a provisioner on loopback, the pkg read back. The tools
## come from apt-get when missing (scripts/ensure-installer-tools.sh, ensure-wine.sh).
installers:
	@scripts/ensure-installer-tools.sh
	VERSION='$(VERSION)' LDFLAGS='$(LDFLAGS)' installers/build.sh all
	LABRUNNER_PKG='$(CURDIR)/dist/labrunner-$(VERSION).pkg' CGO_ENABLED=1 $(GO) test -count=1 -timeout 20m -v ./installers/...

## fuzz: each fuzz target for FUZZTIME; docs/testing.md has the longer run.
# A count, not a duration: with a duration, Go 1.26's fuzzing coordinator can
# fail a target with "context deadline exceeded" at the deadline having found
# nothing (golang/go#75804, fixed in Go 1.27).
FUZZTIME    ?= 4000x
FUZZTARGETS := FuzzDecoders:./provisioner/ FuzzWriteRoutes:./provisioner/ FuzzParsePayload:./agent/
fuzz:
	@for t in $(FUZZTARGETS); do \
		echo "fuzz $${t%%:*} ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $${t#*:} || exit 1; \
	done

## services: install (apt-get) and start PostgreSQL, MariaDB and RabbitMQ.
services:
	@scripts/ensure-services.sh

## chromium: install (apt-get) Chromium, at the pinned version, for the browser
## tests. `make test` needs it: a run without the browser tests is not a pass.
chromium:
	@scripts/ensure-chromium.sh

## dashboard-shots: the browser tests, writing their screenshots into docs/img.
dashboard-shots: chromium
	LABRUNNER_DASHBOARD_SHOTS=docs/img CGO_ENABLED=1 $(GO) test -count=1 -run '^TestDashboard' ./e2e/dashboard/

tools:
	@scripts/install-tools.sh

## taskcluster-cli: Taskcluster's CLI at the pinned version, into .cache/tools/taskcluster.
taskcluster-cli:
	@scripts/install-tools.sh taskcluster

## lint: gofmt, go vet and staticcheck, for Linux, Windows and macOS.
lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>&1); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@for os in linux windows darwin; do \
		echo "go vet + staticcheck (GOOS=$$os)"; \
		GOOS=$$os $(GO) vet ./... || exit 1; \
		GOOS=$$os $(TOOLS)/staticcheck ./... || exit 1; \
	done

## cross: build every command for every supported platform with cgo off.
cross:
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		echo "build $$os/$$arch: $(COMMANDS)"; \
		GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o dist/$$os-$$arch/ ./cmd/... || exit 1; \
	done

## bench: every benchmark, then the labrunner / generic-worker comparison,
## which also runs the bridge's and the provisioner's benchmarks and
## rewrites the generated section of docs/benchmarks.md.
bench: services
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $$($(GO) list ./... | grep -v -e '/bridge$$' -e '/provisioner$$')
	$(MAKE) bench-compare

# The comparison harness (internal/benchcompare, Linux only): labrunner's
# agent and generic-worker against one devstack, binaries and logs in
# .cache/bench/, then the bridge's and the provisioner's benchmarks.
# bench-quick (one round, tiny counts, both workers at once) checks that
# every scenario still runs and leaves the doc alone.
BENCHCOMPARE := $(GO) test -count=1 -v -run '^TestCompareWorkers$$' ./internal/benchcompare/

## bench-compare: three rounds, writes the table into docs/benchmarks.md.
bench-compare:
	LABRUNNER_BENCH_COMPARE=full LABRUNNER_BENCH_DOC=$(CURDIR)/docs/benchmarks.md $(BENCHCOMPARE) -timeout 30m

## bench-quick: one round with tiny counts, printing the table only.
bench-quick: services
	LABRUNNER_BENCH_COMPARE=quick $(BENCHCOMPARE) -timeout 10m

clean:
	rm -rf dist bin
