#!/bin/sh
# tests/gpu.sh BUILD_DIR - everything that checks the GPU backend, on a
# machine with one (`make test-cuda` runs it; through the lent GPU machine
# whenever CUDA code changes). Without a usable GPU it says why and exits
# 77 (skipped).
#   1. test_cuda        the kernels, op by op, against double-precision math
#   2. test_backend     every op of "cuda" against the reference "cpu-ref"
#   3. test_forward     sessions, chunking, cached == uncached, two sessions,
#                       cancel, argmax - on "cuda"; 3b. again with the
#                       persistent decode step (FS_CUDA_PERSIST=1)
#   4. test_forward_golden  the golden cases against transformers (its cuda pass)
#   4b. test_forward_golden again with the staged GEMV on
#   5. the tiny model: greedy continuations on cuda identical to the CPU's
#      for the first 32 tokens of 6 prompts (as e2e_tiny compares the CPU
#      with transformers; the prompt's prefill rounds to bf16, so a near tie
#      further on may go the other way: how far they agree, of 64, is
#      printed), perplexity within 0.1% of the CPU's; then again with the
#      staged GEMV on (it stages every matmul of the tiny model)
# Each part runs under `timeout 300`. Prints one line per part and
# "gpu: N passed, M failed".
#
# Docs: docs/gpu.md, docs/testing.md
BUILD=${1:-build}
FS=$BUILD/fs
export FS_BIN=$FS
reason=$("$BUILD/tests/test_cuda" --probe 2>&1 | sed -n 's/^test_cuda: skipped: //p')
if [ -n "$reason" ]; then
    echo "gpu: skipped ($reason)"
    exit 77
fi
pass=0; fail=0; failed=""
part() {   # part NAME COMMAND...: run it, log under $BUILD/gpu-logs
    name=$1; shift
    mkdir -p "$BUILD/gpu-logs"
    if "$@" >"$BUILD/gpu-logs/$name.log" 2>&1; then
        pass=$((pass + 1)); echo "gpu: $name: ok ($(tail -1 "$BUILD/gpu-logs/$name.log"))"
    else
        fail=$((fail + 1)); failed="$failed $name"
        echo "gpu: $name: FAILED (log: $BUILD/gpu-logs/$name.log)"; tail -15 "$BUILD/gpu-logs/$name.log"
    fi
}
# each part bounded in time, so that a hang (a kernel that never ends)
# costs its part, not the rest of the run
part test_cuda timeout 300 "$BUILD/tests/test_cuda"
part test_backend timeout 300 "$BUILD/tests/test_backend" cuda
part test_forward timeout 300 "$BUILD/tests/test_forward" cuda
# recorded decode steps as one launch of the persistent kernel
# (persist.cu; off by default: FS_CUDA_PERSIST=1 turns it on)
part test_forward_persist timeout 300 env FS_CUDA_PERSIST=1 "$BUILD/tests/test_forward" cuda
part test_forward_golden timeout 300 "$BUILD/tests/test_forward_golden"
# the staged GEMV (gemv_stage.cu; off by default until measured): whole
# forward passes with it on, against the same bounds. test_forward's
# models have no K a multiple of 256, so they stage nothing; the golden
# models stage o_proj and down_proj, and the tiny model (below) every
# matmul, the norm-fused ones included. (Decode steps there are recorded
# with FS_CUDA_PERSIST=0: the persistent step would take those matmuls.)
part test_forward_golden_staged timeout 300 env FS_CUDA_GEMV_STAGE=64 FS_CUDA_PERSIST=0 "$BUILD/tests/test_forward_golden"

tiny() {   # bounded like the parts above (a shell function cannot run under timeout itself)
    timeout 300 python3 - "$FS" <<'PY'
import json, subprocess, sys
fs = sys.argv[1]
prompts = ["In the beginning God created", "The jury said that", "And it came to pass, when",
           "It is a truth universally acknowledged", "The President of the United States", "Once upon a time"]
bad = 0
agree = []   # tokens equal before the first difference (of 64)
for p in prompts:
    out = {}
    for be in ("cpu", "cuda"):
        r = subprocess.run([fs, "generate", "-m", "models/tiny", "--backend", be, "-p", p, "-n", "64", "--temp", "0",
                            "--json"], capture_output=True, text=True)
        if r.returncode:
            print("FAIL: %s on %s: %s" % (p, be, r.stderr.strip())); bad += 1; break
        out[be] = json.loads(r.stdout)["ids"]
    if len(out) == 2:
        n = next((i for i, (a, b) in enumerate(zip(out["cpu"], out["cuda"])) if a != b), min(map(len, out.values())))
        agree.append(n)
        if n < 32:
            print("FAIL: %r: cuda differs from cpu at token %d" % (p, n)); bad += 1
ppl = {}
for be in ("cpu", "cuda"):
    r = subprocess.run([fs, "perplexity", "-m", "models/tiny", "--backend", be, "-f", "models/tiny/README.md",
                        "-c", "256", "--max-windows", "8", "--json"], capture_output=True, text=True)
    if r.returncode:
        print("FAIL: perplexity on %s: %s" % (be, r.stderr.strip())); sys.exit(1)
    ppl[be] = json.loads(r.stdout)["ppl"]
rel = abs(ppl["cuda"] - ppl["cpu"]) / ppl["cpu"]
if rel > 1e-3:
    print("FAIL: perplexity cuda %.5f, cpu %.5f (%.3f%%)" % (ppl["cuda"], ppl["cpu"], 100 * rel)); bad += 1
print("tiny: greedy ids equal to the cpu's for %s of 64 tokens (32 required); ppl cuda %.5f cpu %.5f (rel %.1e)%s"
      % ("/".join(map(str, agree)), ppl["cuda"], ppl["cpu"], rel, "" if not bad else " - %d failures" % bad))
sys.exit(1 if bad else 0)
PY
}
part tiny tiny
FS_CUDA_GEMV_STAGE=64 FS_CUDA_PERSIST=0; export FS_CUDA_GEMV_STAGE FS_CUDA_PERSIST   # reach fs through python's subprocesses
part tiny_staged tiny
FS_CUDA_PERSIST=1; unset FS_CUDA_GEMV_STAGE
part tiny_persist tiny
unset FS_CUDA_PERSIST

# The persistent decode step (persist.cu) against the step launched op by
# op, on the same GPU, with quantized weights (their scale rows ride in
# the same slots; test_forward's models have no K a multiple of 256, so
# only the tiny model's quantized copies take that path): greedy ids
# identical for the first 32 of 64 tokens of 3 prompts, per format.
persist_quant() {
    tmp=$(mktemp -d) || return 1
    bad=0; agree=""
    for w in q8_0 q4_0; do
        timeout 120 "$FS" quantize models/tiny "$tmp/$w" --weights "$w" >/dev/null || { echo "FAIL: quantize $w"; bad=1; continue; }
        for p in "Once upon a time" "The jury said that" "In the beginning"; do
            a=$(FS_CUDA_PERSIST=1 timeout 120 "$FS" generate -m "$tmp/$w" --backend cuda -p "$p" -n 64 --temp 0 --json) || bad=1
            b=$(FS_CUDA_PERSIST=0 timeout 120 "$FS" generate -m "$tmp/$w" --backend cuda -p "$p" -n 64 --temp 0 --json) || bad=1
            n=$(printf '%s\n%s\n' "$a" "$b" | python3 -c '
import json, sys
x, y = (json.loads(l)["ids"] for l in sys.stdin.read().splitlines()[:2])
print(next((i for i, (u, v) in enumerate(zip(x, y)) if u != v), min(len(x), len(y))))') || n=0
            agree="$agree $w:$n"
            [ "$n" -ge 32 ] || { echo "FAIL: $w \"$p\": persistent and op-by-op steps differ at token $n"; bad=1; }
        done
    done
    rm -rf "$tmp"
    echo "persist_quant: greedy ids of the persistent step equal to op by op for$agree of 64 tokens (32 required)"
    [ "$bad" -eq 0 ]
}
part persist_quant persist_quant
echo "gpu: $pass passed, $fail failed${failed:+ (failed:$failed)}"
[ "$fail" -eq 0 ]
