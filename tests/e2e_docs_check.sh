#!/bin/sh
# e2e_docs_check.sh - the learning site stays true to the code: every link and
# source path resolves, every "Docs:" line names a page that links back, and
# the committed HTML (with its generated code excerpts) is what
# tools/docs_build.py makes from today's sources. Fix with `make docs`.
# Docs: docs/testing.md
set -eu
if ! command -v python3 >/dev/null 2>&1; then
    echo "e2e_docs_check: SKIP (no python3)"
    exit 77
fi
python3 tools/docs_check.py
echo "e2e_docs_check: ok"
