#!/bin/sh
# tests/run.sh BUILD_DIR - run every unit test binary and every end-to-end
# script, then print one "N passed, M failed, K skipped" line (counted per
# test program and script). A test that cannot run here (no tokenizer, no
# tmux, no chromium, ...) says why and exits 77, the automake convention
# for "skipped"; it is listed, not counted as passed. Exit status is
# non-zero if anything failed.
# Docs: docs/testing.md
BUILD=${1:-build}
export FS_BIN="$BUILD/fs"
export FS_BUILD="$BUILD"
export FS_TOKENIZER_DIR="models/qwen3-tokenizer"
pass=0; fail=0; skip=0; failed=""; skipped=""
count() { # count NAME STATUS
    case $2 in
        0) pass=$((pass+1)) ;;
        77) skip=$((skip+1)); skipped="$skipped $1" ;;
        *) fail=$((fail+1)); failed="$failed $1" ;;
    esac
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    echo "== $t"
    "$t"; count "$t" $?
done
for t in tests/e2e_*.sh; do
    [ -f "$t" ] || continue
    echo "== $t"
    sh "$t"; count "$t" $?
done
[ -n "$skipped" ] && echo "SKIPPED:$skipped"
[ -n "$failed" ] && echo "FAILED:$failed"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
