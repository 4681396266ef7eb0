#!/bin/sh
# scripts/serve_bench.sh - the measurements of docs/serve.md: fs serve's
# aggregate decode tokens/s at 1, 2, 4 and 8 concurrent streams (CPU, -t 2),
# for bf16 and q4_0 weights of the random Qwen3-0.6B shape, ROUNDS times
# over (the machine is shared and noisy: the medians and ranges are
# reported), then time to first token idle and with 7 streams decoding.
# Writes docs/data/serve-throughput.json and draws docs/img/serve-throughput.svg.
#
#   ./fs mkmodel --config configs/qwen3-0.6b.json --tokenizer models/qwen3-tokenizer --out /tmp/q06
#   ./fs quantize /tmp/q06 /tmp/q06-q4 --weights q4_0
#   sh scripts/serve_bench.sh /tmp/q06 /tmp/q06-q4 [ROUNDS]
#
# Docs: docs/serve.md
set -eu
BF16=${1:-/tmp/q06}
Q4=${2:-/tmp/q06-q4}
ROUNDS=${3:-3}
FS=${FS_BIN:-./fs}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/fs-serve-bench.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
for w in q4_0 bf16; do
    dir=$Q4
    [ $w = bf16 ] && dir=$BF16
    for r in $(seq "$ROUNDS"); do
        python3 scripts/serve_load.py --max-seconds 900 --spawn "$FS serve -m $dir -t 2 --parallel 8 -c 512" \
            throughput --clients 1,2,4,8 --requests 2 --max-tokens 64 >>"$OUT/$w.jsonl"
    done
    python3 scripts/serve_load.py --max-seconds 900 --spawn "$FS serve -m $dir -t 2 --parallel 8 -c 512" \
        ttft --busy 7 --busy-tokens 160 --probes 10 >>"$OUT/ttft-$w.jsonl"
done
python3 - "$OUT" "$(git describe --always --dirty 2>/dev/null || echo unknown)" <<'EOF'
import json, os, platform, statistics, sys, time
out, commit = sys.argv[1:3]
cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
res = {"machine": f"{cpu}, {os.cpu_count()} vCPUs, fs serve -t 2 --parallel 8 -c 512, 64-token greedy completions",
       "commit": commit, "date": time.strftime("%Y-%m-%d %H:%M"), "series": {}, "rounds": {}, "ttft": {}}
for w in ("q4_0", "bf16"):
    rows = [json.loads(l) for l in open(os.path.join(out, f"{w}.jsonl"))]
    by = {}
    for r in rows:
        by.setdefault(r["clients"], []).append(r["aggregate_tok_s"])
    res["series"][w] = [{"clients": c, "aggregate_tok_s": round(statistics.median(v), 1), "min": min(v), "max": max(v)}
                        for c, v in sorted(by.items())]
    ones, eights = by[1], by[8]
    res["rounds"][w] = {"ratio_8_to_1_per_round": [round(e / o, 2) for o, e in zip(ones, eights)]}
    res["ttft"][w] = [json.loads(l) for l in open(os.path.join(out, f"ttft-{w}.jsonl"))]
    s = res["series"][w]
    print(f"{w}: " + ", ".join(f"{p['clients']}: {p['aggregate_tok_s']} [{p['min']}..{p['max']}]" for p in s)
          + f" tok/s; 8 vs 1 per round: {res['rounds'][w]['ratio_8_to_1_per_round']}")
    for t in res["ttft"][w]:
        print(f"{w}: TTFT idle {t['idle_ttft_p50_ms']} ms, 7 busy {t['busy_ttft_p50_ms']} ms (x{t['ratio_p50']})")
with open("docs/data/serve-throughput.json", "w") as f:
    json.dump(res, f, indent=1)
    f.write("\n")
EOF
python3 scripts/serve_plot.py docs/data/serve-throughput.json docs/img/serve-throughput.svg
echo "wrote docs/data/serve-throughput.json, docs/img/serve-throughput.svg"
