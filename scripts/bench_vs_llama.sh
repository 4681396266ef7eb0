#!/bin/sh
# bench_vs_llama.sh - fs and llama.cpp side by side on this CPU, same hour,
# alternating runs: the random Qwen3-0.6B shape in bf16, q8_0 and q4_0.
#
#   sh scripts/bench_vs_llama.sh LLAMA_BIN_DIR OUT_DIR [THREADS] [ROUNDS]
#
# LLAMA_BIN_DIR holds llama-bench and llama-quantize (llama.cpp built
# outside this repository as a measuring stick: docs/bench.md says how).
# Makes (once, in OUT_DIR) the checkpoint with `fs mkmodel`, its q8_0 / q4_0
# copies with `fs quantize`, the bf16 GGUF with scripts/gguf_write.py and
# its q8_0 / q4_0 GGUFs with `llama-quantize --pure` (every matrix in the
# one format, the tied embedding included, as fs quantize does). Then,
# ROUNDS times (default 2), for each format: `fs bench --pp 512 --tg 128 -r 3`
# then `llama-bench -p 512 -n 128 -r 3`; then tg128 at depth 0 and 4096
# for q4_0 and bf16 (fs with f32 and f16 KV caches, each named: the cpu
# backend's default is f16). Every output goes to
# OUT_DIR/*.txt with the time it started in OUT_DIR/log.
# Docs: docs/cpu.md, docs/bench.md
set -eu
L=${1:?usage: bench_vs_llama.sh LLAMA_BIN_DIR OUT_DIR [THREADS] [ROUNDS]}
O=${2:?usage: bench_vs_llama.sh LLAMA_BIN_DIR OUT_DIR [THREADS] [ROUNDS]}
T=${3:-2}
ROUNDS=${4:-2}
FS=${FS_BIN:-./fs}
mkdir -p "$O"
M=$O/models
if [ ! -f "$M/q4_0.gguf" ]; then
    mkdir -p "$M"
    "$FS" mkmodel --config configs/qwen3-0.6b.json --tokenizer models/qwen3-tokenizer --out "$M/bf16"
    "$FS" quantize "$M/bf16" "$M/q8_0" --weights q8_0
    "$FS" quantize "$M/bf16" "$M/q4_0" --weights q4_0
    python3 scripts/gguf_write.py "$M/bf16" "$M/bf16.gguf"
    "$L/llama-quantize" --pure "$M/bf16.gguf" "$M/q8_0.gguf" q8_0 "$T"
    "$L/llama-quantize" --pure "$M/bf16.gguf" "$M/q4_0.gguf" q4_0 "$T"
fi
{ date -u; lscpu | grep -E "Model name|Flags"; } > "$O/machine.txt"
stamp() { echo "$(date -u +%FT%TZ) $*" >> "$O/log"; }
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for d in bf16 q8_0 q4_0; do
        stamp "fs $d round $r"
        "$FS" bench -m "$M/$d" --backend cpu --pp 512 --tg 128 -r 3 -t "$T" > "$O/fs_${d}_$r.txt" 2>&1
        stamp "llama.cpp $d round $r"
        "$L/llama-bench" -m "$M/$d.gguf" -p 512 -n 128 -r 3 -t "$T" > "$O/ll_${d}_$r.txt" 2>&1
    done
    r=$((r + 1))
done
for d in q4_0 bf16; do
    stamp "depth $d"
    "$FS" bench -m "$M/$d" --backend cpu --pp 0 --tg 128 --depth 0,4096 -r 3 -t "$T" --kv f32 > "$O/fs_depth_${d}_f32.txt" 2>&1
    "$L/llama-bench" -m "$M/$d.gguf" -p 0 -n 128 -d 0,4096 -r 3 -t "$T" > "$O/ll_depth_$d.txt" 2>&1
    "$FS" bench -m "$M/$d" --backend cpu --pp 0 --tg 128 --depth 0,4096 -r 3 -t "$T" --kv f16 > "$O/fs_depth_${d}_f16.txt" 2>&1
done
stamp done
