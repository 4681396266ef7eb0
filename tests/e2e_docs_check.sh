#!/bin/sh
# e2e_docs_check.sh - the learning site stays true to the code: every link
# stays inside the site and resolves, every line anchor exists and every
# excerpt shows the lines it links, no Markdown is left unrendered, every
# "Docs:" line names a page that links back, and the committed site (pages,
# source views, pictures) is what tools/docs_build.py makes from today's
# sources. Fix with `make docs`. First, the checker itself must catch the
# two rendering bugs the site once had.
# Docs: docs/testing.md
set -eu
if ! command -v python3 >/dev/null 2>&1; then
    echo "e2e_docs_check: SKIP (no python3)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the two bugs of issue 19, as the old generator wrote them, and code that must pass
cat > "$tmp/bad.html" <<'HTML'
<ul><li>**<code>\s</code> is not the same everywhere.** Oniguruma's Unicode</li></ul>
<p>one uniform number u in <a href="../src/util.c">0, 1), scaled by the total mass of the survivors, and the first token whose running sum exceeds it. ([src/util.c</a>, shared with</p>
<p>fine: <code>a ** b</code>, <a href="x.html">Reading shapes: [T, H] · [H, N] = [T, N]</a>, xoshiro256&#42;&#42;</p>
HTML
python3 - "$tmp/bad.html" <<'PY'
import sys
sys.path.insert(0, "tools")
import docs_check
got = docs_check.leftovers(sys.argv[1], docs_check.parse(sys.argv[1]))
for g in got:
    print("  caught:", g.split(": ", 1)[1])
stars = sum("literal **" in g for g in got)
swallowed = sum("swallowed" in g for g in got)
if stars != 2 or swallowed != 1 or len(got) != 3:
    sys.exit(f"e2e_docs_check: FAIL: expected the two ** and one swallowing link, got {len(got)} problems")
PY
python3 tools/docs_check.py
echo "e2e_docs_check: ok"
