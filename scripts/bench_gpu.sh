#!/bin/sh
# scripts/bench_gpu.sh [OUT] - the GPU numbers of docs/gpu.md, on a machine
# with an NVIDIA GPU: a random checkpoint with the exact Qwen3-0.6B shapes
# (fs mkmodel; speed does not depend on the values), stored as bf16, q8_0
# and q4_0 (fs quantize), each measured by
#   fs bench --backend cuda --pp 512 --tg 128 --depth 0,4096 -r 5
# CSV rows and the tables go to OUT (default build/bench-gpu). Needs the
# Qwen3 tokenizer in models/qwen3-tokenizer (make tokenizer).
#
# Docs: docs/gpu.md, docs/bench.md
OUT=${1:-build/bench-gpu}
FS=${FS_BIN:-build/fs}
M=${FS_BENCH_DIR:-/tmp/fs-bench-q06}
set -e
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv >"$OUT/gpu.txt" 2>&1 || true
[ -f "$M/model.safetensors" ] ||
    "$FS" mkmodel --config configs/qwen3-0.6b.json --tokenizer models/qwen3-tokenizer --out "$M" >/dev/null
for w in q8_0 q4_0; do
    [ -f "$M-$w/model.safetensors" ] || "$FS" quantize "$M" "$M-$w" --weights "$w" >/dev/null
done
for w in bf16 q8_0 q4_0; do
    dir=$M; [ "$w" = bf16 ] || dir=$M-$w
    "$FS" bench -m "$dir" --backend cuda --pp 512 --tg 128 --depth 0,4096 -r 5 ${FS_BENCH_ARGS:-} >"$OUT/$w.txt" 2>&1
    "$FS" bench -m "$dir" --backend cuda --pp 512 --tg 128 --depth 0,4096 -r 5 --csv ${FS_BENCH_ARGS:-} >"$OUT/$w.csv" 2>/dev/null
    echo "== $w"; cat "$OUT/$w.txt"
done
