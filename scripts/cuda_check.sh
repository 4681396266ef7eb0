#!/bin/sh
# scripts/cuda_check.sh [test|bench|memcheck ...] - on a machine with an
# NVIDIA GPU: the CUDA backend's tests, benchmark and memory check, each
# log written under $OUT (default build/cuda-logs), a short table printed.
# nopdl: the bf16 bench without programmatic launches, to compare.
# ncu: Nsight Compute on one decode step and one prefill chunk.
# Uses build/tests/test_cuda when it runs there (built elsewhere and
# carried), else builds it with make. Default: test bench memcheck.
# Docs: docs/gpu.md
OUT=${OUT:-build/cuda-logs}
mkdir -p "$OUT"
BIN=build/tests/test_cuda
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$OUT/gpu.txt"
if ! "$BIN" --help >/dev/null 2>&1; then
    echo "== building ($BIN did not run here)"
    make -j"$(nproc)" "$BIN" >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
fi
[ $# -eq 0 ] && set -- test bench memcheck
# the clocks while we run (an idle GPU starts slow)
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,utilization.gpu,clocks_event_reasons.active \
    --format=csv -lms 100 >"$OUT/clocks.csv" 2>&1 &
smi=$!
status=0
for what in "$@"; do
    start=$(date +%s)
    case $what in
    test) "$BIN" >"$OUT/test.log" 2>&1 || status=1
        grep -E "FAIL|CHECK|skipped|passed" "$OUT/test.log" | head -40 ;;
    bench) "$BIN" --bench >"$OUT/bench.log" 2>&1 || status=1
        cat "$OUT/bench.log" ;;
    nopdl) FS_CUDA_NO_PDL=1 "$BIN" --bench bf16 >"$OUT/bench-nopdl.log" 2>&1 || status=1
        grep -E "decode tg|prefill pp" "$OUT/bench-nopdl.log" ;;
    ncu) for k in 'gemv_bf16|gemv_bf16_split|rope_kv|attention_decode|embed' 'mm_input_bf16|gemm_bf16|attention_tc_128'; do
            timeout 150 ncu --clock-control none -k "regex:^($k)\$" -c 7 --section SpeedOfLight --section Occupancy \
                --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
                "$BIN" --bench profile >>"$OUT/ncu.txt" 2>&1
        done
        grep -E "^  [a-z_0-9]+ \(|Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Stall|Warp Cycles Per Issued" "$OUT/ncu.txt" | head -80 ;;
    memcheck) timeout 240 compute-sanitizer --tool memcheck --print-limit 20 "$BIN" >"$OUT/memcheck.log" 2>&1 || status=1
        grep -E "ERROR SUMMARY|Invalid|passed" "$OUT/memcheck.log" | head -20 ;;
    esac
    echo "== $what: $(($(date +%s) - start)) s"
done
kill "$smi" 2>/dev/null
awk -F', ' 'NR > 1 { n[$2]++ } END { for (c in n) printf "%s x%d  ", c, n[c]; print "" }' "$OUT/clocks.csv"
exit $status
