GO ?= go
# Peer tests (SIPp, osmo-mgw) fail rather than skip when their tool is missing.
export MEDIAGW_REQUIRE_PEERS = 1

.PHONY: test tools vet unit sipp build bench bench-conference bench-sip-cpu bench-state fuzz flood soak soak-restart

test: tools vet unit sipp

tools:
	./test/tools.sh

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# test/e2e builds and runs the gateway binary, which go test's cache cannot
# see: it always runs (-count=1), so a change to the gateway is never
# passed on a cached result.
# Both run in a network namespace of their own (test/isolated.sh) where
# no port-0 socket can take a fixed test port.
unit:
	./test/isolated.sh $(GO) test -race -timeout 15m $$($(GO) list ./... | grep -v '/test/e2e$$')
	./test/isolated.sh $(GO) test -race -count=1 -timeout 15m ./test/e2e

sipp: build
	./test/isolated.sh ./test/sipp/run.sh bin/gateway

build:
	$(GO) build -o bin/gateway ./cmd/gateway

bench:
	./bench/peers.sh

bench-conference:
	./bench/conference/run.sh

# CPU per SIP call at a fixed rate (issue 17): sipp -sn uas, sipgo's own
# minimal UAS and the gateway, in interleaved rounds (~2 min).
bench-sip-cpu:
	./bench/sipcpu.sh

# What state.store costs (issue 13): MGCP pairs/s and SIP calls/s with none,
# file and redis, side by side in one run.
bench-state:
	./bench/state.sh

# A cluster (issue 15): SIP calls/s of 1, 2 and 3 nodes behind Kamailio,
# per-node efficiency and Redis round trips per call (~3 min).
bench-cluster:
	./bench/cluster.sh

# The floods of issue 10 through the binary (also part of unit), verbose for
# their figures: 20,000 un-ACKed INVITEs, 50 sources over sip.rate, 500 idle
# TCP connections; real SIPp calls meanwhile; the process back to baseline.
flood: tools
	$(GO) test -count=1 -v -timeout 10m -run Flood ./test/e2e

# Not in make test: 100,000 SIPp calls and 100,000+ MGCP cycles with RSS,
# fds and goroutines sampled every 10 s; fails unless they end flat.
soak: tools
	./test/soak/run.sh

# Not in make test (issue 13): 20,000 SIPp calls, the gateway SIGKILLed and
# restarted on its state every 5,000; fails on failures beyond the calls in
# flight at the kills, or on anything left. STORE=redis for the Redis store.
soak-restart: tools
	./test/soak/restart.sh
