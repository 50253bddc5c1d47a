GO ?= go
# Peer tests (SIPp, osmo-mgw) fail rather than skip when their tool is missing.
export MEDIAGW_REQUIRE_PEERS = 1

.PHONY: test tools vet unit sipp build bench bench-conference fuzz

test: tools vet unit sipp

tools:
	./test/tools.sh

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -timeout 15m ./...

sipp: build
	./test/sipp/run.sh bin/gateway

build:
	$(GO) build -o bin/gateway ./cmd/gateway

bench:
	./bench/peers.sh

bench-conference:
	./bench/conference/run.sh
