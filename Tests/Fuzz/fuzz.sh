#!/usr/bin/env bash
# The libFuzzer targets (Tests/Fuzz/README.md): builds them with
# -sanitize=fuzzer over every module, into their own scratch path, then runs
# each for FUZZ_TIME seconds on a copy of its seed corpus (the committed
# corpus never grows). Prints execs/s, runs and coverage per target; fails
# if any target crashed, timed out or ran out of memory (the input is kept
# in $FUZZ_OUT/<target>/, default .build/fuzz-out).
# FUZZ_ASAN=1 adds AddressSanitizer (-sanitize=fuzzer,address; .build/fuzz-asan,
# about a third of the speed).
#   Tests/Fuzz/fuzz.sh [TARGET...]      targets: config args options state
set -uo pipefail
cd "$(dirname "$0")/../.."
FUZZ_TIME=${FUZZ_TIME:-60}
FUZZ_OUT=${FUZZ_OUT:-.build/fuzz-out}
SCRATCH=.build/fuzz
sanitize=fuzzer; extra=()
# (LeakSanitizer off: what it reports at exit is the Swift runtime's and
# the stdlib's one-time allocations, e.g. a global Regex's program.)
if [ "${FUZZ_ASAN:-0}" = 1 ]; then
    SCRATCH=.build/fuzz-asan; sanitize=fuzzer,address; extra=(-detect_leaks=0)
    export ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config args options state)

flags=(-c release --scratch-path "$SCRATCH" -Xswiftc -sanitize=$sanitize -Xswiftc -parse-as-library -Xswiftc -enable-testing)
buildlog=$(mktemp /tmp/mc-fuzz-build.XXXXXX)
for t in "${targets[@]}"; do
    MC_FUZZ=1 swift build "${flags[@]}" --product "fuzz-$t" >"$buildlog" 2>&1
    rc=$?
    grep -Ev "^\[[0-9]+/[0-9]+\] (Compiling|Write|Emitting)|Cannot export local symbol '__asan" "$buildlog"
    [ $rc -eq 0 ] || { echo "fuzz: building fuzz-$t failed"; rm -f "$buildlog"; exit 1; }
done
rm -f "$buildlog"

# libFuzzer handles the fatal signals itself (and saves the input): not Swift's backtracer.
export SWIFT_BACKTRACE=enable=no
failed=0
printf '%-8s %10s %10s %8s %8s  %s\n' target execs/s runs cov ft result
for t in "${targets[@]}"; do
    work=$(mktemp -d /tmp/mc-fuzz-$t.XXXXXX)
    cp -r "Tests/Fuzz/corpus/$t" "$work/corpus"
    out="$FUZZ_OUT/$t"; rm -rf "$out"; mkdir -p "$out"
    dict=(); [ -f "Tests/Fuzz/$t.dict" ] && dict=(-dict="Tests/Fuzz/$t.dict")
    "$SCRATCH/release/fuzz-$t" "$work/corpus" "${dict[@]}" "${extra[@]}" -max_total_time="$FUZZ_TIME" -timeout=5 -rss_limit_mb=2048 \
        -max_len=16384 -print_final_stats=1 -artifact_prefix="$out/" >"$work/log" 2>&1
    rc=$?
    cp "$work/log" "$out/log"
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$work/log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last"); ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    result=ok
    if [ $rc -ne 0 ] || ls "$out" | grep -qE '^(crash|timeout|oom|leak|slow-unit)-'; then
        result="FAILED (exit $rc): $(ls "$out" | grep -E '^(crash|timeout|oom|leak)-' | tr '\n' ' ')see $out/log"
        failed=1
    fi
    printf '%-8s %10s %10s %8s %8s  %s\n' "$t" "${eps:-?}" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$result"
    rm -rf "$work"
done
exit $failed
