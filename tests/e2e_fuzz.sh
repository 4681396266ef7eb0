#!/bin/sh
# e2e_fuzz.sh - a short fuzzing run inside `make test`: every libFuzzer
# target in fuzz/ first replays its corpus (seeds and the regression inputs
# of bugs found before, fuzz/corpus/NAME), then mutates for a few seconds
# (FS_FUZZ_SECONDS, default 3). Discoveries go to a temporary directory, so
# the run leaves the tree as it was. Exit 77 (skipped, with the reason) when
# clang cannot build libFuzzer targets here. Long runs: scripts/fuzz.sh.
#
# Docs: docs/testing.md
cd "$(dirname "$0")/.." || exit 1
T=$(mktemp -d "${TMPDIR:-/tmp}/fs_e2e_fuzz.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM

FS_FUZZ_OUT=$T sh scripts/fuzz.sh "${FS_FUZZ_SECONDS:-3}" > "$T/summary" 2>&1
rc=$?
cat "$T/summary"
if [ $rc -eq 77 ]; then
    exit 77
fi
if [ $rc -ne 0 ]; then
    # Keep what was found: the inputs and the logs, outside the temp dir.
    mkdir -p fuzz/out
    for a in "$T"/fuzz_*-* "$T"/*.log; do [ -f "$a" ] && cp "$a" fuzz/out/; done
    echo "e2e_fuzz: FAIL (inputs and logs copied to fuzz/out/)"
    exit 1
fi
echo "e2e_fuzz: all targets clean"
