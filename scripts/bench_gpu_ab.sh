#!/bin/sh
# scripts/bench_gpu_ab.sh VAR VALUE... - one GPU knob, A/B'd: for each
# value of the environment variable VAR (e.g. FS_CUDA_GEMV_STAGE 0 64, or
# FS_CUDA_ATT_MIN_KEYS 16 64 256), on the random Qwen3-0.6B checkpoint
# (bf16, q8_0, q4_0, made as scripts/bench_gpu.sh makes them):
#   fs bench --backend cuda --pp 512 --tg 128 -r 3      (each format)
#   fs bench ... --tg 128 --depth 4096 -r 2              (bf16)
#   test_cuda --bench bf16                               (the per-op table)
# in rounds - every value once, then every value again - so that a drift
# of the machine shows as a spread, not as a difference. Prints one line
# per measurement: round, value, what, tokens/s (or the op's line).
# For a device call: one command, ~1 minute per value.
#
# Docs: docs/gpu.md
[ $# -ge 2 ] || { echo "usage: sh scripts/bench_gpu_ab.sh VAR VALUE..." >&2; exit 1; }
VAR=$1; shift
FS=${FS_BIN:-build/fs}
TC=${TEST_CUDA:-build/tests/test_cuda}
M=${FS_BENCH_DIR:-/tmp/fs-bench-q06}
ROUNDS=${ROUNDS:-2}
set -e
[ -f "$M/model.safetensors" ] ||
    "$FS" mkmodel --config configs/qwen3-0.6b.json --tokenizer models/qwen3-tokenizer --out "$M" >/dev/null
for w in q8_0 q4_0; do
    [ -f "$M-$w/model.safetensors" ] || "$FS" quantize "$M" "$M-$w" --weights "$w" >/dev/null
done
set +e
r=1
while [ $r -le "$ROUNDS" ]; do
    for v in "$@"; do
        for w in bf16 q8_0 q4_0; do
            dir=$M; [ "$w" = bf16 ] || dir=$M-$w
            env "$VAR=$v" timeout 120 "$FS" bench -m "$dir" --backend cuda --pp 512 --tg 128 -r 3 2>&1 |
                awk -v r=$r -v v="$v" -v w=$w '/ (pp|tg)[0-9]+ /{print "round " r "  " v "  " w "  " $5 "  " $6}'
        done
        env "$VAR=$v" timeout 120 "$FS" bench -m "$M" --backend cuda --pp 0 --tg 128 --depth 4096 -r 2 2>&1 |
            awk -v r=$r -v v="$v" '/ tg[0-9]+ /{print "round " r "  " v "  bf16  " $5 " @ d4096  " $8}'
        [ $r -gt 1 ] || env "$VAR=$v" timeout 120 "$TC" --bench bf16 2>&1 |
            grep -E "step on the GPU|^  [a-z]" | sed "s/^/round $r  $v  op /"
    done
    r=$((r + 1))
done
