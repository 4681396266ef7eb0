#!/bin/sh
# e2e_serve_openai.sh - `fs serve` driven by the real `openai` npm client
# (tests/serve/openai_client.mjs): models, chat and completions, streamed
# and not, logprobs and usage, and errors that surface as the client's
# typed errors (BadRequestError with the field, AuthenticationError).
# The package is installed into a temporary directory; without npm or the
# registry the test is skipped (exit 77) and says why.
FS_BIN=${FS_BIN:-build/fs}
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP e2e_serve_openai: node/npm not found"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fs-e2e-openai.XXXXXX") || exit 1
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
if ! (cd "$TMP" && npm init -y >/dev/null 2>&1 && timeout 180 npm install --no-audit --no-fund openai >npm.log 2>&1); then
    echo "SKIP e2e_serve_openai: npm install openai failed (no network?): $(tail -n 3 "$TMP/npm.log")"
    exit 77
fi
cp tests/serve/openai_client.mjs "$TMP/"
"$FS_BIN" serve -m models/tiny --port 0 --parallel 2 -c 512 --api-key k3y >"$TMP/out" 2>"$TMP/err" &
PID=$!
i=0
while ! grep -q "listening on" "$TMP/out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 $PID 2>/dev/null; then echo "FAIL: fs serve did not start: $(cat "$TMP/err")"; exit 1; fi
    sleep 0.1
done
URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$TMP/out")
echo "e2e_serve_openai: openai $(node -p "require(\"$TMP/node_modules/openai/package.json\").version")"
node "$TMP/openai_client.mjs" "$URL" k3y
