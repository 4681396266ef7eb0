#!/bin/sh
# e2e_tokenizers.sh - every tokenizer family against HF `tokenizers`, through
# the fs binary. (tests/e2e_tokenizer.sh is Qwen3's own set.)
#
# For each family whose tokenizer is here (`make tokenizers`):
#   qwen3     models/qwen3-tokenizer          real (Qwen/Qwen3-*)
#   llama3_2  models/tok-llama3_2             real (meta-llama/Llama-3.2-*)
#   qwen2_5   models/tok-qwen2_5              real (Qwen/Qwen2.5-*)
#   gpt2      models/tok-gpt2                 real (openai-community/gpt2)
#   smol flags splits                         hand-made pipelines on GPT-2's
#             vocabulary (scripts/make_tokenizer_variants.py, built here)
# the 768 strings of tests/golden/tokenizers/cases.jsonl must give exactly
# HF's ids (tests/golden/tokenizers/FAMILY.jsonl, scripts/oracle_tokenizer.py
# on the GPU machine):
#   1. `fs tokenize --jsonl`: encode(text, add_special_tokens=False);
#   2. `fs tokenize --jsonl --add-special`: encode(text, add_special_tokens=True),
#      i.e. the post-processor's tokens around those ids;
#   3. `fs detokenize --jsonl` of HF's ids gives HF's decode, and so does the
#      decode of our own ids (the round trip).
# Needs $FS_BIN and python3. Skips (77) when no family's tokenizer is here.
# Docs: docs/tokenizer.md
set -u
FS_BIN=${FS_BIN:-build/fs}
G=tests/golden/tokenizers
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
ran=0

if [ -f models/tok-gpt2/tokenizer.json ]; then
    python3 scripts/make_tokenizer_variants.py models/tok-gpt2 "$TMP" || { echo "FAIL: make_tokenizer_variants.py"; exit 1; }
fi

for fam in qwen3 llama3_2 qwen2_5 gpt2 smol flags splits; do
    case $fam in
        qwen3) dir=models/qwen3-tokenizer ;;
        smol|flags|splits) dir=$TMP/tok-$fam ;;
        *) dir=models/tok-$fam ;;
    esac
    if [ ! -f "$dir/tokenizer.json" ]; then
        echo "NOTE e2e_tokenizers: $fam skipped ($dir/tokenizer.json not found; run: make tokenizers)"
        continue
    fi
    if [ ! -f "$G/$fam.jsonl" ]; then
        echo "FAIL: $G/$fam.jsonl is missing"; fail=1; continue
    fi
    ran=$((ran + 1))
    "$FS_BIN" tokenize -m "$dir" --jsonl < "$G/cases.jsonl" > "$TMP/$fam.ids" ||
        { echo "FAIL: $fam: tokenize --jsonl exited $?"; fail=1; continue; }
    "$FS_BIN" tokenize -m "$dir" --jsonl --add-special < "$G/cases.jsonl" > "$TMP/$fam.sids" ||
        { echo "FAIL: $fam: tokenize --jsonl --add-special exited $?"; fail=1; continue; }
    "$FS_BIN" detokenize -m "$dir" --jsonl < "$TMP/$fam.ids" > "$TMP/$fam.text" ||
        { echo "FAIL: $fam: detokenize --jsonl exited $?"; fail=1; continue; }
    tail -n +2 "$G/$fam.jsonl" | python3 -c 'import sys, json
for l in sys.stdin: print(json.dumps(json.loads(l)["ids"]))' > "$TMP/$fam.hfids"
    "$FS_BIN" detokenize -m "$dir" --jsonl < "$TMP/$fam.hfids" > "$TMP/$fam.hftext" ||
        { echo "FAIL: $fam: detokenize of HF's ids exited $?"; fail=1; continue; }
    python3 - "$G" "$TMP" "$fam" <<'EOF' || fail=1
import json, sys
g, tmp, fam = sys.argv[1:4]
def lines(p):
    return [json.loads(l) for l in open(p, encoding="utf-8")]
cases = lines(g + "/cases.jsonl")
exp_all = open(g + "/" + fam + ".jsonl", encoding="utf-8").read().splitlines()
header, exp = json.loads(exp_all[0]), [json.loads(l) for l in exp_all[1:]]
ids, sids = lines(tmp + "/" + fam + ".ids"), lines(tmp + "/" + fam + ".sids")
text, hftext = lines(tmp + "/" + fam + ".text"), lines(tmp + "/" + fam + ".hftext")
if not (len(cases) == len(exp) == len(ids) == len(sids) == len(text) == len(hftext)):
    print("FAIL: %s: %d cases, %d expected, %d/%d/%d/%d outputs" % (fam, len(cases), len(exp), len(ids), len(sids),
          len(text), len(hftext)))
    sys.exit(1)
bad = 0
def report(msg):
    global bad
    bad += 1
    if bad <= 8:
        print("FAIL: %s: %s" % (fam, msg))
n_special = 0
for i, (c, e) in enumerate(zip(cases, exp)):
    want_s = e.get("ids_special", e.get("pre", []) + e["ids"] + e.get("post", []))
    n_special += want_s != e["ids"]
    if ids[i] != e["ids"]:
        report("case %d %r: ids differ\n  fs: %s\n  hf: %s" % (i + 1, c[:60], ids[i][:24], e["ids"][:24]))
    elif sids[i] != want_s:
        report("case %d %r: add_special ids differ\n  fs: %s\n  hf: %s" % (i + 1, c[:60], sids[i][:24], want_s[:24]))
    if hftext[i] != e["decoded"]:
        report("case %d %r: decode of HF's ids: %r, HF %r" % (i + 1, c[:60], hftext[i][:60], e["decoded"][:60]))
    if text[i] != e["decoded"]:
        report("case %d %r: decode(encode(x)) = %r, HF %r" % (i + 1, c[:60], text[i][:60], e["decoded"][:60]))
print("e2e_tokenizers: %s: %d cases (%d with special tokens added) against %s, %d failures"
      % (fam, len(cases), n_special, header.get("oracle"), bad))
sys.exit(1 if bad else 0)
EOF
done

if [ "$ran" -eq 0 ]; then
    echo "SKIP e2e_tokenizers: no tokenizer here (run: make tokenizers)"
    exit 77
fi
[ "$fail" -eq 0 ] && echo "e2e_tokenizers: ok ($ran families)"
exit "$fail"
