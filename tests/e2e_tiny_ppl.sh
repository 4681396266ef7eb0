#!/bin/sh
# e2e_tiny_ppl.sh - fs's perplexity of the trained tiny model (models/tiny)
# against transformers, on the first 8 windows of the held-out text.
#
# tests/golden/tiny/ppl.json is written by scripts/oracle_tiny_ppl.py (GPU
# machine, torch + transformers): the token ids of each 256-token window and
# transformers' loss of each window. fs gets the same ids (--ids-file) and
# must match every window's loss and the total loss within 0.1%; the ids
# must begin with eval.json's ids_head (the tokenization the model card
# reports). The whole held-out file (84407 tokens, ppl 41.914 in
# models/tiny/eval.json) is too slow for `make test`; run
#   fs perplexity -m models/tiny -f build/corpus/heldout.txt --ctx 256
# by hand for that.
# Docs: docs/testing.md
FS_BIN=${FS_BIN:-build/fs}
GOLDEN=${FS_TINY_PPL_GOLDEN:-tests/golden/tiny/ppl.json}
if [ ! -f "$GOLDEN" ]; then
    echo "SKIP: $GOLDEN is missing (python3 scripts/oracle_tiny_ppl.py on a machine with torch writes it)"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fs-e2e-tiny-ppl.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

python3 - "$GOLDEN" "$TMP/ids.txt" models/tiny/eval.json <<'EOF' || exit 1
import json, sys
g = json.load(open(sys.argv[1]))
ids = [i for w in g["ids"] for i in w]
head = json.load(open(sys.argv[3]))["heldout"]["ids_head"]
if ids[:len(head)] != head:
    sys.exit("FAIL: golden ids start %r, eval.json's ids_head is %r" % (ids[:len(head)], head))
if g["heldout_tokens"] != json.load(open(sys.argv[3]))["heldout"]["tokens"]:
    sys.exit("FAIL: golden heldout_tokens differs from eval.json")
open(sys.argv[2], "w").write(" ".join(map(str, ids)) + "\n")
EOF
"$FS_BIN" perplexity -m models/tiny --ids-file "$TMP/ids.txt" --ctx 256 --json >"$TMP/fs.json" 2>"$TMP/err" \
    || { echo "FAIL: fs perplexity: $(cat "$TMP/err")"; exit 1; }
python3 - "$GOLDEN" "$TMP/fs.json" <<'EOF'
import json, sys
g, f = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ok = True
def bad(msg):
    global ok
    ok = False
    print("FAIL:", msg)
if f["windows"] != g["windows"] or f["predicted_tokens"] != g["predicted_tokens"]:
    bad("windows %d / predicted %d, transformers %d / %d" % (f["windows"], f["predicted_tokens"], g["windows"],
                                                           g["predicted_tokens"]))
for w, (a, b) in enumerate(zip(f["window_loss"], g["window_loss"])):
    if abs(a - b) > 1e-3 * b:
        bad("window %d: loss %.6f, transformers %.6f" % (w, a, b))
rel = abs(f["ppl"] - g["ppl"]) / g["ppl"]
if rel > 1e-3:
    bad("ppl %.4f, transformers %.4f (%.3f%%)" % (f["ppl"], g["ppl"], 100 * rel))
if ok:
    print("e2e_tiny_ppl: ok: ppl %.4f vs transformers %.4f (rel %.1e) over %d windows" % (f["ppl"], g["ppl"], rel,
                                                                                       f["windows"]))
sys.exit(0 if ok else 1)
EOF
