#!/bin/sh
# tests/e2e_gpu_timeline.sh - tools/gpu_timeline.py on events whose answer
# is known: a synthetic FS_CUDA_TIMELINE file (src/cuda/timeline.c's
# format) of 6 decode steps, every call with fixed gaps, must come out as
# those gaps; a bad file gets a clear error, not a traceback. Needs no GPU.
# Docs: docs/gpu.md
set -e
command -v python3 >/dev/null || { echo "e2e_gpu_timeline: skipped (no python3)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/ev.txt" <<'PY'
import sys
# per call kind (common.cuh TL_*): start 7 us before the wait, a GEMV's
# weights in 1 us before it, input 2 us and end 4 us after it (attention:
# mid 3 us), the next call's wait 1 us after its end
ev, t = [], 1_000_000
def call(kind, tag, mid=False, early=7000):
    global t
    for last in (0, 1):
        ev.append((t - early, kind, 0, last, 3, tag))
        if kind in (3, 4):
            ev.append((t - 1000, kind, 5, last, 3, tag))
        ev.append((t, kind, 1, last, 3, tag))
        ev.append((t + (3000 if mid else 2000), kind, 4 if mid else 3, last, 3, tag))
        ev.append((t + 4000, kind, 2, last, 3, tag))
    t += 5000
for s in range(6):
    ev.append((t, 1, 0, 0, 0, 0)); ev.append((t + 500, 1, 1, 0, 0, 0)); t += 1000
    call(2, 0, early=200)   # embed: not before its step's set_step
    for l in range(28):
        call(3, 1000 + l); call(5, 2000 + l); call(6, 3000 + l, mid=True)
        call(4, 4000 + l); call(3, 5000 + l); call(4, 6000 + l)
    call(3, 9999); call(7, 0)
with open(sys.argv[1], "w") as f:
    f.write("# t_ns kind phase last_block sm tag\n")
    for e in ev:
        f.write(" ".join(map(str, e)) + "\n")
PY
python3 tools/gpu_timeline.py "$tmp/ev.txt" > "$tmp/out.txt"
cat "$tmp/out.txt"
# a step: set_step 1 us + 171 calls of 5 us = 856 us
grep -q "^3 steps of 172 kernel calls; a step 856.0 us" "$tmp/out.txt" || { echo "FAIL: steps / step time"; exit 1; }
row() {   # row NAME EXPECTED: the table's line for NAME must be EXPECTED
    grep -qF "| $1 | $2" "$tmp/out.txt" || { echo "FAIL: the $1 row is not '| $1 | $2'"; exit 1; }
}
# call | per step | chain | of the step | wait | loaded | input | mid | work | early
row qkv "28 | 5.00 | 16.4% | 1.00 | -1.00 | 2.00 | - | 4.00 | 7.00 |"
row rope_kv "28 | 5.00 | 16.4% | 1.00 | - | 2.00 | - | 4.00 | 7.00 |"
row attention "28 | 5.00 | 16.4% | 1.00 | - | - | 3.00 | 4.00 | 7.00 |"
row o_proj "28 | 5.00 | 16.4% | 1.00 | -1.00 | 2.00 | - | 4.00 | 7.00 |"
row gate/up "28 | 5.00 | 16.4% | 1.00 | -1.00 | 2.00 | - | 4.00 | 7.00 |"
row down "28 | 5.00 | 16.4% | 1.00 | -1.00 | 2.00 | - | 4.00 | 7.00 |"
row lm_head "1 | 5.00 | 0.6% | 1.00 | -1.00 | 2.00 | - | 4.00 | 7.00 |"
row embed "1 | 5.00 | 0.6% | - | - | 2.00 | - | 4.00 | 0.20 |"
row argmax "1 | 5.00 | 0.6% | 1.00 | - | 2.00 | - | 4.00 | 7.00 |"
# bad input: a clear error and exit 1
echo "12 3 x" > "$tmp/bad.txt"
if python3 tools/gpu_timeline.py "$tmp/bad.txt" > "$tmp/err.txt" 2>&1; then echo "FAIL: a bad line accepted"; exit 1; fi
grep -q "bad.txt:1: expected" "$tmp/err.txt" || { echo "FAIL: bad line message"; cat "$tmp/err.txt"; exit 1; }
if python3 tools/gpu_timeline.py "$tmp/none.txt" > "$tmp/err.txt" 2>&1; then echo "FAIL: a missing file accepted"; exit 1; fi
grep -q "No such file" "$tmp/err.txt" || { echo "FAIL: missing file message"; exit 1; }
head -3 "$tmp/ev.txt" > "$tmp/short.txt"
if python3 tools/gpu_timeline.py "$tmp/short.txt" > "$tmp/err.txt" 2>&1; then echo "FAIL: too few steps accepted"; exit 1; fi
grep -q "fewer than 4 decode steps" "$tmp/err.txt" || { echo "FAIL: too few steps message"; exit 1; }
printf '1 2 \302\271 0 0 0\n' > "$tmp/sup.txt"   # a superscript one is a digit to Python, not a number
if python3 tools/gpu_timeline.py "$tmp/sup.txt" > "$tmp/err.txt" 2>&1; then echo "FAIL: a non-ASCII digit accepted"; exit 1; fi
grep -q "sup.txt:1: expected" "$tmp/err.txt" || { echo "FAIL: non-ASCII digit message"; cat "$tmp/err.txt"; exit 1; }
for i in 1 2 3 4 5; do printf '1000 1 0 0 0 0\n1000 1 1 0 0 0\n'; done > "$tmp/empty.txt"   # steps with no calls
if python3 tools/gpu_timeline.py "$tmp/empty.txt" > "$tmp/err.txt" 2>&1; then echo "FAIL: empty steps accepted"; exit 1; fi
grep -q "hold no kernel calls" "$tmp/err.txt" || { echo "FAIL: empty steps message"; cat "$tmp/err.txt"; exit 1; }
echo "e2e_gpu_timeline: ok"
