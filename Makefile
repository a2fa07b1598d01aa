# minicontainer: build, demo, tests. Everything runs as root on Linux.
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# One static executable (no dynamic loading at each of the several starts a
# container costs), linked by lld with every function in its own section, in
# the order scripts/symbol-order.txt gives (scripts/order.sh): the code a
# container's life runs lies together, so the pages the kernel maps around
# each fault are mostly pages we use (peak RSS). --icf=all folds the copies
# of one function several modules emit (value witnesses), which otherwise
# keep no symbol to be ordered by.
# -disable-concrete-type-metadata-mangled-name-accessors: a generic type's
# metadata (Array<String>'s storage, say) is made at its first use by a call
# with its arguments' metadata and witness tables, not by demangling its name
# and scanning every conformance in the binary for its requirements: that
# path was 7.5% of a `run`'s CPU (perf), and about 2% is left.
ORDER   := $(CURDIR)/scripts/symbol-order.txt
SWIFTFLAGS := -c release -Xswiftc -static-executable -Xcc -DMC_COMMIT=\"$(COMMIT)\" \
	-Xswiftc -use-ld=lld -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections \
	-Xswiftc -Xfrontend -Xswiftc -disable-concrete-type-metadata-mangled-name-accessors \
	-Xlinker --symbol-ordering-file=$(ORDER) -Xlinker --no-warn-symbol-ordering -Xlinker --icf=all -Xlinker $(CURDIR)/scripts/curl-unlinked.ld -Xlinker --emit-relocs
BIN     := .build/release/minicontainer
# After the link, scripts/bolt.sh has BOLT (Debian's bolt-16) lay out the
# functions again in the same order, from the relocations lld keeps
# (--emit-relocs): lld can only move whole sections, and the Swift stdlib's
# code is one. Peak RSS of `run` 4064 -> 2940 KiB with scripts/bolt-order.py
# and bolt-relative.py (2026-12-06).
ROOTFS  ?= /var/lib/minicontainer/rootfs/busybox

.PHONY: all setup build rootfs demo bench bench-all bench-docker bench-rootless bench-scale test unit integration test-security fuzz fuzz-short clean man install

all: build

setup:
	bash scripts/setup.sh

build:
	@[ ! -e $(BIN) ] || [ $(BIN) -nt $(ORDER) ] || rm -f $(BIN)   # relink after a new order
	swift build $(SWIFTFLAGS)
	bash scripts/bolt.sh $(BIN) $(ORDER)

rootfs:
	@[ -x $(ROOTFS)/bin/busybox ] || bash scripts/mkrootfs.sh $(ROOTFS)

DEMO    := /tmp/minicontainer-demo

# Set up everything and run a container: run flags compile to a bundle, and
# the OCI lifecycle runs it (create, start, wait, delete); then the same
# rootfs as an image, loaded into the store and run Docker-style.
demo: setup build rootfs
	rm -rf $(DEMO)
	$(BIN) spec --bundle $(DEMO) --rootfs $(ROOTFS) --hostname demo --network none -- \
	    /bin/sh -c 'echo "hello from $$(hostname), pid $$$$"; id; ls /; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status'
	$(BIN) run --bundle $(DEMO) demo
	rm -rf $(DEMO)
	@echo "--- Docker-style: an image built here from the same rootfs (umoci, skopeo), loaded, run"
	bash scripts/mkimage.sh $(ROOTFS) $(DEMO).tar busybox:latest
	$(BIN) load -i $(DEMO).tar
	rm -f $(DEMO).tar
	$(BIN) images
	$(BIN) run --rm --network none busybox sh -c 'echo "hello from the busybox image, pid $$$$ on $$(hostname)"; cat /proc/self/cgroup | head -1'

bench: build rootfs
	bash bench/lifecycle.sh 100 5

# minicontainer beside runc and crun on every figure (bench/compare.sh).
bench-all: build rootfs
	bash bench/compare.sh

# Docker-style run --rm --rootfs, seccomp on, beside podman run --rootfs and runc/crun run of the same bundle (bench/docker-run.sh).
bench-docker: build rootfs
	bash bench/docker-run.sh

# Rootless minicontainer beside rootless podman, as a user made for it (bench/rootless.sh).
bench-rootless: build rootfs
	bash bench/rootless.sh

# 200 running detached containers beside rootful podman: start cost 1 to 200, ps, inspect, memory, rm (bench/scale.sh).
bench-scale: build rootfs
	bash bench/scale.sh

unit:
	swift build --build-tests
	swift test --skip-build

integration: build rootfs
	MINICONTAINER=$(abspath $(BIN)) ROOTFS=$(ROOTFS) python3 -m pytest -q Tests/integration

# The attack suite alone (issue 11): each attack made from inside a
# container against a copy of the binary; part of `integration` as well.
# ATTACK_KILL_RUNS sets the killed-create runs (default 200).
test-security: build rootfs
	MINICONTAINER=$(abspath $(BIN)) ROOTFS=$(ROOTFS) python3 -m pytest -q Tests/integration/test_security_*.py

# The libFuzzer targets (Tests/Fuzz/README.md): FUZZ_TIME seconds each on a
# copy of the seed corpus; fails on a crash, timeout (5 s) or 2 GB of memory.
FUZZ_TIME ?= 60
fuzz:
	FUZZ_TIME=$(FUZZ_TIME) bash Tests/Fuzz/fuzz.sh

fuzz-short:
	FUZZ_TIME=10 bash Tests/Fuzz/fuzz.sh

# The test command: unit tests, 10 s of each fuzz target, then the integration tests as root.
test: setup unit fuzz-short integration

# Man pages and completion scripts, generated from the command table.
PREFIX  ?= /usr/local
man: build
	rm -rf man && $(BIN) __man man

install: build man
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/minicontainer
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	$(BIN) completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/minicontainer
	$(BIN) completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_minicontainer
	$(BIN) completion fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/minicontainer.fish

clean:
	rm -rf .build
