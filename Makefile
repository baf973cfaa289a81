# xvs: a userspace software switch on AF_XDP.
# `make` or `make help` lists the targets.

GO      ?= go
BIN     ?= bin
CLANG   ?= clang-16
GOFLAGS ?=
TESTFLAGS ?= -count=1 -timeout 20m

# make install: where things go (DESTDIR is prepended to each, for packaging).
PREFIX        ?= /usr/local
BINDIR        ?= $(PREFIX)/bin
SBINDIR       ?= $(PREFIX)/sbin
UNITDIR       ?= $(PREFIX)/lib/systemd/system
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
DESTDIR       ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/xvsd, bin/xvsctl and bin/xvs-traffic.
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/...

.PHONY: test
test: ## Run every test (as root the privileged ones run too: netns, veth, XDP, AF_XDP).
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) -p 1 ./...

DURATION ?= 10m

.PHONY: soak
soak: ## As root: the soak test for DURATION (default 10m): churn from several clients, traffic, kill -9 and restarts; prints what it held.
	XVS_SOAK=$(DURATION) $(GO) test -count=1 -timeout 0 -run '^TestSoak$$' -v ./cmd/xvsd/

.PHONY: bench
bench: ## Run the microbenchmarks (per-packet cost, flow install).
	$(GO) test -run '^$$' -bench . -benchmem ./flowtable/ ./afxdp/ ./datapath/

.PHONY: generate
generate: ## Rebuild the XDP program's bpf2go objects (needs clang-16).
	cd bpf && BPF2GO_CC=$(CLANG) $(GO) generate ./...

.PHONY: check
check: ## gofmt, go vet, and (with clang) that the committed bpf2go output is current.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	@if command -v $(CLANG) >/dev/null; then \
		$(MAKE) generate && git diff --exit-code -- bpf/ || { echo "bpf2go output is stale: run make generate and commit"; exit 1; }; \
	else echo "check: $(CLANG) not installed, skipping the bpf2go freshness check"; fi

.PHONY: demo
demo: build ## As root: veth topology, xvsd, ports and flows via xvsctl, traffic, counters, teardown.
	./testenv/demo.sh

.PHONY: install
.PHONY: sdwan-demo
sdwan-demo: build ## As root: an SD-WAN edge (LAN, two uplinks): tables, groups, DSCP, XDP drops, failover measured.
	./testenv/sdwan-demo.sh

install: build ## Install xvsd, xvsctl, the systemd unit and bash completion (PREFIX=/usr/local, DESTDIR=).
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(COMPLETIONDIR)
	install -m 0755 $(BIN)/xvsd $(DESTDIR)$(SBINDIR)/xvsd
	install -m 0755 $(BIN)/xvsctl $(DESTDIR)$(BINDIR)/xvsctl
	sed 's|@SBINDIR@|$(SBINDIR)|g' dist/xvsd.service.in > $(DESTDIR)$(UNITDIR)/xvsd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/xvsd.service
	$(BIN)/xvsctl completion bash > $(DESTDIR)$(COMPLETIONDIR)/xvsctl
	chmod 0644 $(DESTDIR)$(COMPLETIONDIR)/xvsctl
	@echo "installed; as root: systemctl daemon-reload && systemctl enable --now xvsd"

.PHONY: clean
clean: ## Remove build output.
	rm -rf $(BIN)
