#!/usr/bin/env bash
# Assembles scripts/exec-stub-x86_64.S (a whole ELF file, header included)
# and prints its bytes as the Swift array in Sources/Runtime/ExecStub.swift.
# Needs binutils (as, objcopy). ExecStubTests checks the two agree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as --64 -o "$tmp/stub.o" "$here/exec-stub-x86_64.S"
objcopy -O binary -j .text "$tmp/stub.o" "$tmp/stub.bin"
od -An -v -tx1 "$tmp/stub.bin" | awk '{ s = "        "; for (i = 1; i <= NF; i++) s = s "0x" $i ","; sub(/,$/, "", s); lines[++n] = s }
  END { for (i = 1; i <= n; i++) print lines[i] (i < n ? "," : "") }'
