#!/bin/sh
# e2e_tiny.sh - fs on the shipped models/tiny agrees with transformers.
#
# models/tiny/greedy.json was written by the training run's HF oracle
# (scripts/train_tiny.py): for 6 prompts, the prompt's ids and 32 greedy
# tokens (float32 on the bf16 weights, no eos stopping) with each step's
# top-2 logit margin. Here:
#   - `fs tokenize` of each prompt must give exactly prompt_ids;
#   - `fs generate --temp 0 --json -n 32` must give the same ids, token for
#     token, up to the first step whose margin is < 1e-3, that step left
#     out: there two float orders may legitimately pick different tokens
#     (at an exact tie fs takes the lowest id, torch.topk its own order),
#     and everything after depends on that pick. If the oracle's ids contain an
#     eos, fs stops there: the comparison ends at it.
# Needs python3 (standard library) to read JSON. A second or two.
#
# Docs: docs/testing.md
FS_BIN=${FS_BIN:-build/fs}
case $FS_BIN in /*) ;; *) FS_BIN=$PWD/$FS_BIN ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
M=$HERE/../models/tiny
[ -f "$M/greedy.json" ] || { echo "FAIL: $M/greedy.json missing"; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "e2e_tiny: SKIP (no python3)"; exit 77; }

python3 - "$FS_BIN" "$M" <<'EOF'
import json, subprocess, sys

fs, model = sys.argv[1], sys.argv[2]
ref = json.load(open(model + "/greedy.json", encoding="utf-8"))
cfg = json.load(open(model + "/config.json"))
gen_cfg = json.load(open(model + "/generation_config.json"))
eos = set()
for v in (cfg.get("eos_token_id"), gen_cfg.get("eos_token_id")):
    eos.update(v if isinstance(v, list) else [v] if v is not None else [])
n_new = ref["new_tokens"]
passed = failed = 0

def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)

for case in ref["cases"]:
    p = case["prompt"]
    tok = subprocess.run([fs, "tokenize", "-m", model, p], capture_output=True, text=True)
    ids = [int(x) for x in tok.stdout.split()] if tok.returncode == 0 else None
    check(ids == case["prompt_ids"], "tokenize %r: fs %s, HF %s" % (p, ids, case["prompt_ids"]))

    g = subprocess.run([fs, "generate", "-m", model, "-p", p, "--temp", "0", "--json", "-n", str(n_new)],
                       capture_output=True, text=True)
    if g.returncode != 0:
        check(False, "generate %r exited %d: %s" % (p, g.returncode, g.stderr.strip()))
        continue
    out = json.loads(g.stdout)
    want, margins = case["ids"], case["top2_margins"]
    # how many leading tokens must match: through the first near-tie, or
    # through the first eos (fs stops there), else all of them
    n = len(want)
    for i, m in enumerate(margins):
        if m < 1e-3:
            n = i
            break
    for i in range(n):
        if want[i] in eos:
            n = i + 1
            break
    got = out["ids"][:n]
    check(len(out["ids"]) >= n, "generate %r: fs gave %d tokens, need %d" % (p, len(out["ids"]), n))
    first = next((i for i in range(min(len(got), n)) if got[i] != want[i]), None)
    check(first is None,
          "generate %r: first difference at step %d: fs %s, HF %s (margin %.5f)" %
          (p, first if first is not None else -1, got[first] if first is not None else None,
           want[first] if first is not None else None, margins[first] if first is not None else 0))
    if n == len(want) and first is None:
        check(out["text"] == case["text"], "generate %r: text %r, HF %r" % (p, out["text"], case["text"]))
    print("%-42r %2d/%d tokens compared, min margin %.5f: %s" %
          (p, n, len(want), case["min_margin"], "ok" if first is None else "DIFFERS"))

print("e2e_tiny: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF
