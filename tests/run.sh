#!/bin/sh
# tests/run.sh BUILD_DIR - run every unit test binary and every end-to-end
# script, then print one "N passed, M failed" line (counted per test program
# and script). Exit status is non-zero if anything failed.
BUILD=${1:-build}
export FS_BIN="$BUILD/fs"
export FS_BUILD="$BUILD"
export FS_TOKENIZER_DIR="models/qwen3-tokenizer"
pass=0; fail=0; failed=""
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    echo "== $t"
    if "$t"; then pass=$((pass+1)); else fail=$((fail+1)); failed="$failed $t"; fi
done
for t in tests/e2e_*.sh; do
    [ -f "$t" ] || continue
    echo "== $t"
    if sh "$t"; then pass=$((pass+1)); else fail=$((fail+1)); failed="$failed $t"; fi
done
[ -n "$failed" ] && echo "FAILED:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
