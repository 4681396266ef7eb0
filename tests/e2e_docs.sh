#!/bin/sh
# e2e_docs.sh - render every page of the learning site (docs/*.html) in
# headless Chromium: no console errors, no blank screenshot, and the
# interactive parts pass their self-tests (docs/NAME.html?test=1); and,
# when node, $FS_BIN and the Qwen3 tokenizer are there, the tokenizer
# playground's JavaScript split agrees with fs on the golden cases.
# The work is done by tests/e2e_docs.py (stdlib Python, DevTools protocol).
# Skips, with a message, when chromium is not installed
# (Debian: apt-get install -y chromium). FS_DOCS_SHOTS=DIR keeps the
# screenshots.
# Docs: docs/testing.md
set -u
CHROMIUM=${CHROMIUM:-}
if [ -z "$CHROMIUM" ]; then
    for c in chromium chromium-browser google-chrome; do
        if command -v "$c" >/dev/null 2>&1; then CHROMIUM=$(command -v "$c"); break; fi
    done
fi
if [ -z "$CHROMIUM" ]; then
    echo "SKIP e2e_docs: chromium not found (apt-get install -y chromium)"
    exit 77
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP e2e_docs: python3 not found"
    exit 77
fi
fail=0
# The playground's teaching copy of the pre-tokenizer against fs itself.
FS_BIN=${FS_BIN:-build/fs}
TOK=${FS_TOKENIZER_DIR:-models/qwen3-tokenizer}
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP e2e_docs split-check: node not found"
elif [ ! -x "$FS_BIN" ] || [ ! -f "$TOK/tokenizer.json" ]; then
    echo "SKIP e2e_docs split-check: needs $FS_BIN and $TOK/tokenizer.json"
else
    timeout 120 python3 tests/e2e_docs.py "$CHROMIUM" --split-check "$FS_BIN" "$TOK" || fail=1
fi
if [ -n "${FS_DOCS_SHOTS:-}" ]; then
    timeout 200 python3 tests/e2e_docs.py "$CHROMIUM" --shots "$FS_DOCS_SHOTS" || fail=1
else
    timeout 200 python3 tests/e2e_docs.py "$CHROMIUM" || fail=1
fi
exit $fail
