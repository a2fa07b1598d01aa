#!/usr/bin/env bash
# The module import graph: for each Swift module under Sources/ (a directory
# holding .swift files), the modules its sources import, Glibc and the C
# targets (directories without .swift files) left out. One line a module,
# sorted:  Runtime: Cgroups JSON Privileges Rootfs Spec SpecJSON Sys
# ARCHITECTURE.md says which of these are allowed; ArchitectureTests checks it.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

swift_modules=() c_targets=()
for d in Sources/*/; do
    m=$(basename "$d")
    if [ -n "$(find "$d" -name '*.swift' -print -quit)" ]; then
        swift_modules+=("$m")
    else
        c_targets+=("$m")
    fi
done

for m in "${swift_modules[@]}"; do
    imports=$(find "Sources/$m" -name '*.swift' -print0 | xargs -0 cat |
        awk -v skip="Glibc ${c_targets[*]}" '
            BEGIN { n = split(skip, s, " "); for (i = 1; i <= n; i++) ignore[s[i]] = 1 }
            {
                line = $0
                sub(/^[ \t]+/, "", line)
                # attributes: @testable, @_implementationOnly, @preconcurrency, ...
                while (match(line, /^@[A-Za-z_]+(\([^)]*\))?[ \t]+/)) line = substr(line, RLENGTH + 1)
                if (line !~ /^import[ \t]/) next
                sub(/^import[ \t]+/, "", line)
                sub(/^(typealias|struct|class|enum|protocol|let|var|func)[ \t]+/, "", line)
                if (!match(line, /^[A-Za-z_][A-Za-z0-9_]*/)) next
                name = substr(line, 1, RLENGTH)
                if (!(name in ignore)) print name
            }' | sort -u | tr '\n' ' ')
    echo "$m: ${imports% }"
done | sed 's/ *$//'
