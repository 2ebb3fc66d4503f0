# govbmc — a virtual BMC for libvirt VMs.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/govbmc/govbmc/internal/version.Version=$(VERSION)
BIN      := bin

.PHONY: all build run check test test-deps vet fmt clean bench fuzz soak

all: build

## build: compile bin/vbmc and bin/vbmcd
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/vbmc ./cmd/vbmcd ./cmd/ipmiload

## run: serve the simulated demo fleet (configs/demo.yaml) in the foreground
run: build
	$(BIN)/vbmcd --config configs/demo.yaml

## test-deps: install the real parts the tests drive (apt, when missing) and start them
test-deps:
	scripts/install-test-deps.sh
	scripts/prepare-test-host.sh

## check: vet, every test and each fuzz target briefly, installing and starting nothing and needing no root:
##   a test whose real part (a program, root, a running libvirtd) is missing skips and says why (go test -v shows it);
##   under CI=true it fails instead
# FUZZSMOKE is a count, not a duration: Go 1.26's fuzzer can fail a target
# with a spurious "context deadline exceeded" when a duration runs out
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
FUZZSMOKE ?= 20000x
check: vet
	$(GO) test -race -count=1 ./...
	$(call fuzz-each,$(FUZZSMOKE))

## test: install what the tests need (apt, when missing) and start it, then `make check` with every part present
test: test-deps
	$(MAKE) --no-print-directory check

## BENCH_BASELINE: the revision make bench measures this checkout against, side by side (the last one before the seams work)
BENCH_BASELINE ?= 9dca457

## bench: the full benchmarks (fleet scale to 10k, session rate, Redfish, metrics, virtual media, libvirt latency, slow operations, sensor polling); writes docs/BENCHMARKS.md
bench: build test-deps
	GOVBMC_BENCH=full GOVBMC_BENCH_BASELINE=$(BENCH_BASELINE) $(GO) test -count=1 -v -timeout 45m ./bench

## soak: 200 BMCs under full-session traffic for SOAKTIME with libvirtd restarted every minute
SOAKTIME ?= 10m
soak: test-deps
	GOVBMC_SOAK=$(SOAKTIME) $(GO) test -count=1 -v -timeout 30m -run TestSoak ./soak

## fuzz: run every fuzz target for FUZZTIME each (the seeds also run in `make test`, and each target briefly)
FUZZTIME ?= 60s
FUZZ_TARGETS := ./ipmi:FuzzDatagram ./ipmi:FuzzParseDatagram ./ipmi:FuzzBootFlags ./libvirtconn:FuzzBootXML ./libvirtconn:FuzzParseURI \
	./libvirtconn:FuzzAuthenticate ./libvirtconn/sasl:FuzzDigestMD5Challenge ./libvirtconn/sasl:FuzzLayerOpen \
	./internal/config:FuzzParse
fuzz: test-deps
	$(call fuzz-each,$(FUZZTIME))

# fuzz-each runs every fuzz target for $(1) (a duration or a count).
define fuzz-each
@set -e; for t in $(FUZZ_TARGETS); do \
  echo "fuzz $${t#*:} ($${t%%:*}) for $(1)"; \
  $(GO) test $${t%%:*} -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(1); \
done
endef

vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

fmt:
	gofmt -w .

clean:
	rm -rf $(BIN)
