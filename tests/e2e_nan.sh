#!/bin/sh
# e2e_nan.sh - a NaN weight is never a silent wrong answer (issue 18):
#   - a bf16 checkpoint with one NaN weight: `fs quantize --weights q4_0 /
#     q8_0` and `fs generate --weights q4_0 / q8_0` refuse it, naming the
#     tensor, row and column (q4_0 had turned it into 0 and generated
#     normal-looking text, exit 0; q8_0 said "too large"); as bf16 the run
#     stops at "logit ... is NaN" (exit 2);
#   - a q8_0 checkpoint with one block scale NaN: generation stops at the
#     NaN logit on the CPU backend's AVX2 kernels as on the scalar ones (the
#     AVX2 activation quantizer had turned the NaN into q = -128: normal
#     text, exit 0).
# The checkpoints are fs mkmodel's, patched in place by a few lines of
# Python (exit 77 without python3).
#
# Docs: docs/testing.md
FS_BIN=${FS_BIN:-build/fs}
command -v python3 >/dev/null 2>&1 || { echo "e2e_nan: SKIP (no python3)"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/fs_e2e_nan.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
pass=0; fail=0
check() { d=$1; shift; if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $d"; fi; }
# run NAME ARGS...: fs with ARGS, stdout+stderr in $T/NAME.out, status in $T/NAME.rc
run() { n=$1; shift; "$FS_BIN" "$@" > "$T/$n.out" 2>&1; echo $? > "$T/$n.rc"; }
rc() { cat "$T/$1.rc"; }
has() { grep -q -- "$2" "$T/$1.out"; }

cat > "$T/cfg.json" <<'EOF'
{"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "head_dim": 32, "hidden_size": 128,
 "intermediate_size": 256, "max_position_embeddings": 256, "num_attention_heads": 4, "num_hidden_layers": 2,
 "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000, "tie_word_embeddings": true,
 "torch_dtype": "bfloat16", "vocab_size": 4096}
EOF
"$FS_BIN" mkmodel --config "$T/cfg.json" --out "$T/clean" --tokenizer models/tiny > /dev/null ||
    { echo "e2e_nan: FAIL (fs mkmodel)"; exit 1; }
cp -r "$T/clean" "$T/nan"
"$FS_BIN" quantize "$T/clean" "$T/q8" --weights q8_0 > /dev/null 2>&1 ||
    { echo "e2e_nan: FAIL (fs quantize of the clean model)"; exit 1; }

# patch FILE TENSOR BYTE_OFFSET HEX16: write a 16-bit little-endian value
# at BYTE_OFFSET inside TENSOR's data.
patch16() {
    python3 - "$@" <<'EOF'
import json, struct, sys
path, name, off, val = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4], 16)
b = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
t = json.loads(b[8:8 + n])[name]
at = 8 + n + t["data_offsets"][0] + off
b[at:at + 2] = struct.pack("<H", val)
open(path, "wb").write(b)
EOF
}
# bf16 NaN at row 5, column 77 of a [256, 128] matrix
patch16 "$T/nan/model.safetensors" model.layers.1.mlp.gate_proj.weight $(( (5 * 128 + 77) * 2 )) 7fc0
# the f16 scale of block 2 of row 5 of the Q8_0 matrix (34 bytes a block)
patch16 "$T/q8/model.safetensors" model.layers.0.mlp.gate_proj.weight $(( 5 * 4 * 34 + 2 * 34 )) 7e00

where="tensor model.layers.1.mlp.gate_proj.weight row 5 column 77 is NaN"
for w in q4_0 q8_0; do
    W=$(echo $w | tr a-z A-Z)
    run quant_$w quantize "$T/nan" "$T/out_$w" --weights $w
    check "quantize --weights $w: exit 2 ($(rc quant_$w))" [ "$(rc quant_$w)" = 2 ]
    check "quantize --weights $w: names the NaN" has quant_$w "$where: $W cannot store it"
    check "quantize --weights $w: writes nothing" [ ! -e "$T/out_$w/model.safetensors" ]
    run gen_$w generate -m "$T/nan" --weights $w -p hello -n 4
    check "generate --weights $w: exit 2 ($(rc gen_$w))" [ "$(rc gen_$w)" = 2 ]
    check "generate --weights $w: names the NaN" has gen_$w "$where: $W cannot store it"
done
run gen_bf16 generate -m "$T/nan" -p hello -n 4
check "bf16 with a NaN weight: exit 2 ($(rc gen_bf16))" [ "$(rc gen_bf16)" = 2 ]
check "bf16 with a NaN weight: says NaN" has gen_bf16 "is NaN"

run gen_q8 generate -m "$T/q8" -p hello -n 4
check "q8_0 with a NaN scale (default kernels): exit 2 ($(rc gen_q8))" [ "$(rc gen_q8)" = 2 ]
check "q8_0 with a NaN scale (default kernels): says NaN" has gen_q8 "is NaN"
FS_ISA=scalar run gen_q8s generate -m "$T/q8" -p hello -n 4
check "q8_0 with a NaN scale (scalar kernels): exit 2 ($(rc gen_q8s))" [ "$(rc gen_q8s)" = 2 ]
check "q8_0 with a NaN scale (scalar kernels): says NaN" has gen_q8s "is NaN"
run gen_clean generate -m "$T/clean" --weights q4_0 -p hello -n 4
check "the clean model still generates with q4_0 ($(rc gen_clean))" [ "$(rc gen_clean)" = 0 ]

echo "e2e_nan: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
