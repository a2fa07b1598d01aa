# minicontainer: build, demo, tests. Everything runs as root on Linux.
COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
SWIFTFLAGS := -c release --static-swift-stdlib -Xcc -DMC_COMMIT=\"$(COMMIT)\"
BIN     := .build/release/minicontainer
ROOTFS  ?= /var/lib/minicontainer/rootfs/busybox

.PHONY: all setup build rootfs demo test unit integration clean

all: build

setup:
	bash scripts/setup.sh

build:
	swift build $(SWIFTFLAGS)

rootfs:
	@[ -x $(ROOTFS)/bin/busybox ] || bash scripts/mkrootfs.sh $(ROOTFS)

# Set up everything and show a container: compile a bundle from run flags.
demo: setup build rootfs
	$(BIN) spec --stdout --rootfs $(ROOTFS) --hostname demo --memory 64m -- /bin/sh -c 'hostname; id'

unit:
	swift build --build-tests
	swift test --skip-build

integration: build rootfs
	MINICONTAINER=$(abspath $(BIN)) ROOTFS=$(ROOTFS) python3 -m pytest -q Tests/integration

# The test command: unit tests, then the integration tests as root.
test: setup unit integration

clean:
	rm -rf .build
