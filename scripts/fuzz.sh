#!/bin/sh
# fuzz.sh [SECONDS] [TARGET...] - run the libFuzzer targets in fuzz/, each
# for SECONDS (default 60), one after the other, and print one line per
# target: executions, edges covered (cov), features (ft), corpus size, and
# whether it found anything.
#
#   sh scripts/fuzz.sh              every target, 60 s each
#   sh scripts/fuzz.sh 600 fuzz_model fuzz_pull
#
# Target fuzz_NAME starts from its seeds and regression inputs in
# fuzz/corpus/NAME (kept in git) and adds what it discovers to
# fuzz/out/corpus/NAME (ignored by git), so a later run goes on from there.
# A crash, sanitizer report or abort() leaves the input in
# fuzz/out/fuzz_NAME-crash-* (or -leak-, -timeout-, -oom-) and fails the run: once
# the bug is fixed, copy the input into fuzz/corpus/NAME as a regression
# input (every corpus input is run first, at every start).
#
# Environment: FS_FUZZ_OUT (default fuzz/out) for the working corpora and
# logs; FS_FUZZ_BUILD=0 to use the binaries already in build/fuzz;
# FS_TOKENIZER for fuzz_tokenizer (default models/qwen3-tokenizer).
# Exit status: 0 all clean, 1 something found, 77 no clang with libFuzzer
# (the reason is printed).
#
# Docs: docs/testing.md
set -u
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
[ $# -gt 0 ] && shift
OUT=${FS_FUZZ_OUT:-fuzz/out}
FUZZ_CC=${FUZZ_CC:-clang}

# Can clang build a libFuzzer binary here? (Debian: clang plus libclang-rt-dev
# or the versioned package that ships libclang_rt.fuzzer.)
probe=$(mktemp -d "${TMPDIR:-/tmp}/fs_fuzz_probe.XXXXXX")
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$probe/p.c"
if ! command -v "$FUZZ_CC" >/dev/null 2>&1; then
    echo "fuzz.sh: SKIP: no $FUZZ_CC (libFuzzer targets need clang)"
    exit 77
fi
if ! "$FUZZ_CC" -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" >"$probe/log" 2>&1; then
    echo "fuzz.sh: SKIP: $FUZZ_CC cannot link -fsanitize=fuzzer (libFuzzer runtime missing): $(head -n 1 "$probe/log")"
    exit 77
fi

if [ $# -eq 0 ]; then
    set -- $(for f in fuzz/fuzz_*.c; do basename "$f" .c; done)
fi

# build the targets to run (one that is left out, such as e2e_fuzz.sh's
# fuzz_quant, need not even link)
if [ "${FS_FUZZ_BUILD:-1}" != 0 ]; then
    ${MAKE:-make} -s $(for t in "$@"; do echo "build/fuzz/$t"; done) FUZZ_CC="$FUZZ_CC" ||
        { echo "fuzz.sh: make fuzz failed"; exit 1; }
fi
export FS_TOKENIZER=${FS_TOKENIZER:-models/qwen3-tokenizer/tokenizer.json}

mkdir -p "$OUT"
found=0
for t in "$@"; do
    bin=build/fuzz/$t
    [ -x "$bin" ] || { echo "fuzz.sh: no $bin"; found=1; continue; }
    if [ "$t" = fuzz_tokenizer ] && [ ! -f "$FS_TOKENIZER" ]; then
        echo "$t: SKIP (no $FS_TOKENIZER: make tokenizer)"
        continue
    fi
    name=${t#fuzz_}
    mkdir -p "$OUT/corpus/$name" "fuzz/corpus/$name"
    log=$OUT/$t.log
    # -rss_limit_mb / -timeout: a pathological input is a finding too.
    "$bin" "$OUT/corpus/$name" "fuzz/corpus/$name" -max_total_time="$SECONDS_EACH" \
        -artifact_prefix="$OUT/$t-" -print_final_stats=1 -rss_limit_mb=2048 -timeout=20 \
        >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
    if [ $rc -eq 0 ]; then
        status=clean
    else
        status="FOUND SOMETHING (exit $rc): $(ls "$OUT/$t"-* 2>/dev/null | tr '\n' ' ')see $log"
        found=1
    fi
    echo "$t: ${SECONDS_EACH}s, ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}: $status"
done
exit $found
