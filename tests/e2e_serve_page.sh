#!/bin/sh
# e2e_serve_page.sh - fs serve's chat page in headless Chromium
# (tests/serve/page_client.mjs through puppeteer-core): it loads, sends a
# message, shows the streamed reply with its statistics, and a hovered
# token shows its probability and five alternatives. FS_PAGE_SHOT=FILE
# keeps a screenshot (docs/img/serve-page.png is made so). Skipped (exit
# 77, with the reason) without Chromium, node/npm or the registry.
FS_BIN=${FS_BIN:-build/fs}
CHROMIUM=${FS_CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome)}
[ -n "$CHROMIUM" ] || { echo "SKIP e2e_serve_page: no chromium (set FS_CHROMIUM)"; exit 77; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP e2e_serve_page: node/npm not found"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fs-e2e-page.XXXXXX") || exit 1
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
if ! (cd "$TMP" && npm init -y >/dev/null 2>&1 &&
      PUPPETEER_SKIP_DOWNLOAD=1 timeout 180 npm install --no-audit --no-fund puppeteer-core >npm.log 2>&1); then
    echo "SKIP e2e_serve_page: npm install puppeteer-core failed (no network?): $(tail -n 3 "$TMP/npm.log")"
    exit 77
fi
cp tests/serve/page_client.mjs "$TMP/"
"$FS_BIN" serve -m models/tiny --port 0 --parallel 2 -c 512 >"$TMP/out" 2>"$TMP/err" &
PID=$!
i=0
while ! grep -q "listening on" "$TMP/out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 $PID 2>/dev/null; then echo "FAIL: fs serve did not start: $(cat "$TMP/err")"; exit 1; fi
    sleep 0.1
done
URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$TMP/out")
node "$TMP/page_client.mjs" "$URL" "$CHROMIUM" ${FS_PAGE_SHOT:+"$(cd "$(dirname "$FS_PAGE_SHOT")" && pwd)/$(basename "$FS_PAGE_SHOT")"}
