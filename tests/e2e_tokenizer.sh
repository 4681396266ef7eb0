#!/bin/sh
# e2e_tokenizer.sh - every golden tokenizer case through the fs binary.
#
#   1. `fs tokenize --jsonl` on tests/golden/tokenizer/cases.jsonl must give
#      exactly the ids of expected.jsonl (written by HF tokenizers through
#      scripts/oracle_tokenizer.py), and `fs detokenize --jsonl` of those ids
#      must give HF's decoded text;
#   2. round trip: detokenize(tokenize(x)) == NFC(x) for every case, NFC taken
#      per span between added tokens as HF normalizes (from the oracle file,
#      or from Python's unicodedata when it is absent);
#   3. the CLI contract: exit 2 on invalid UTF-8, a bad JSON line, an id out
#      of range; exit 1 on a usage error.
# Needs $FS_BIN and $FS_TOKENIZER_DIR (tests/run.sh sets both) and python3.
# Docs: docs/tokenizer.md
set -u
FS_BIN=${FS_BIN:-build/fs}
TOK=${FS_TOKENIZER_DIR:-models/qwen3-tokenizer}
G=tests/golden/tokenizer
if [ ! -f "$TOK/tokenizer.json" ]; then
    echo "SKIP e2e_tokenizer: $TOK/tokenizer.json not found (run: make tokenizer)"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0

"$FS_BIN" tokenize -m "$TOK" --jsonl < "$G/cases.jsonl" > "$TMP/ids.jsonl" || { echo "FAIL: tokenize --jsonl exited $?"; exit 1; }
"$FS_BIN" detokenize -m "$TOK" --jsonl < "$TMP/ids.jsonl" > "$TMP/text.jsonl" || { echo "FAIL: detokenize --jsonl exited $?"; exit 1; }
if [ -f "$G/expected.jsonl" ]; then
    tail -n +2 "$G/expected.jsonl" | python3 -c 'import sys, json
for l in sys.stdin: print(json.dumps(json.loads(l)["ids"]))' > "$TMP/exp_ids.jsonl"
    "$FS_BIN" detokenize -m "$TOK" --jsonl < "$TMP/exp_ids.jsonl" > "$TMP/exp_text.jsonl" || { echo "FAIL: detokenize of expected ids"; exit 1; }
else
    echo "NOTE e2e_tokenizer: $G/expected.jsonl not found; the HF comparison is skipped"
    echo "     (python3 scripts/oracle_tokenizer.py $TOK/tokenizer.json $G/cases.jsonl > $G/expected.jsonl)"
fi

python3 - "$G" "$TMP" <<'EOF' || fail=1
import json, os, sys, unicodedata
g, tmp = sys.argv[1], sys.argv[2]
cases = [json.loads(l) for l in open(os.path.join(g, "cases.jsonl"), encoding="utf-8")]
ids = [json.loads(l) for l in open(os.path.join(tmp, "ids.jsonl"), encoding="utf-8")]
text = [json.loads(l) for l in open(os.path.join(tmp, "text.jsonl"), encoding="utf-8")]
bad = 0
def report(msg):
    global bad
    bad += 1
    if bad <= 10: print("FAIL:", msg)
if len(ids) != len(cases) or len(text) != len(cases):
    print("FAIL: %d cases, %d id lines, %d text lines" % (len(cases), len(ids), len(text))); sys.exit(1)
exp_path = os.path.join(g, "expected.jsonl")
if os.path.exists(exp_path):
    lines = open(exp_path, encoding="utf-8").read().splitlines()
    header, exp = json.loads(lines[0]), [json.loads(l) for l in lines[1:]]
    exp_text = [json.loads(l) for l in open(os.path.join(tmp, "exp_text.jsonl"), encoding="utf-8")]
    if len(exp) != len(cases):
        print("FAIL: expected.jsonl has %d cases, cases.jsonl %d (rerun the oracle)" % (len(exp), len(cases))); sys.exit(1)
    for i, (c, e) in enumerate(zip(cases, exp)):
        if ids[i] != e["ids"]:
            report("case %d %r: ids differ\n  fs: %s\n  hf: %s" % (i + 1, c[:60], ids[i][:30], e["ids"][:30]))
        if exp_text[i] != e["decoded"]:
            report("case %d %r: decode of HF ids differs: %r vs %r" % (i + 1, c[:60], exp_text[i][:60], e["decoded"][:60]))
    nfc = [e["nfc"] for e in exp]
    print("e2e_tokenizer: compared %d cases with %s (unicodedata %s)" % (len(cases), header.get("oracle"), header.get("unicodedata")))
else:
    # NFC per span between added tokens, as HF normalizes (see oracle_tokenizer.py).
    import re
    tok = json.load(open(os.path.join(os.environ.get("FS_TOKENIZER_DIR", "models/qwen3-tokenizer"), "tokenizer.json"), encoding="utf-8"))
    added = sorted((a["content"] for a in tok["added_tokens"]), key=len, reverse=True)
    split = re.compile("(" + "|".join(re.escape(a) for a in added) + ")")
    nfc = ["".join(p if i % 2 else unicodedata.normalize("NFC", p) for i, p in enumerate(split.split(c))) for c in cases]
for i, c in enumerate(cases):
    if text[i] != nfc[i]:
        report("case %d %r: decode(encode(x)) = %r, NFC(x) = %r" % (i + 1, c[:60], text[i][:60], nfc[i][:60]))
print("e2e_tokenizer: %d cases, %d failures" % (len(cases), bad))
sys.exit(1 if bad else 0)
EOF

# CLI contract: exit codes.
expect_rc() { # expected_rc description command...
    want=$1; what=$2; shift 2
    "$@" > /dev/null 2> "$TMP/err"; got=$?
    if [ "$got" -ne "$want" ]; then echo "FAIL: $what: exit $got, want $want ($(cat "$TMP/err"))"; fail=1; fi
}
printf '\377abc' > "$TMP/bad_utf8"
expect_rc 2 "invalid UTF-8 file" "$FS_BIN" tokenize -m "$TOK" -f "$TMP/bad_utf8"
printf '"ok"\n"unterminated\n' > "$TMP/bad.jsonl"
expect_rc 2 "bad JSON line" sh -c "\"$FS_BIN\" tokenize -m \"$TOK\" --jsonl < \"$TMP/bad.jsonl\""
expect_rc 2 "id out of range" "$FS_BIN" detokenize -m "$TOK" 151669
expect_rc 2 "negative id" "$FS_BIN" detokenize -m "$TOK" -1
expect_rc 2 "id out of range (jsonl)" sh -c "echo '[1, 999999]' | \"$FS_BIN\" detokenize -m \"$TOK\" --jsonl"
expect_rc 2 "missing tokenizer" "$FS_BIN" tokenize -m "$TMP/nowhere" hi
expect_rc 1 "unknown option" "$FS_BIN" tokenize -m "$TOK" --bogus
expect_rc 1 "-m ''" env FS_MODEL= "$FS_BIN" tokenize -m '' hi
# no model: the shipped models/tiny, whose tokenizer is not Qwen3's
tiny=$(env FS_MODEL= "$FS_BIN" tokenize "Hello, world!") || { echo "FAIL: tokenize with no model"; fail=1; }
[ "$tiny" = "$("$FS_BIN" tokenize -m models/tiny "Hello, world!")" ] ||
    { echo "FAIL: tokenize with no model should use models/tiny, gave '$tiny'"; fail=1; }
printf 'Hello, world!' | "$FS_BIN" tokenize -m "$TOK" -f - > "$TMP/stdin_ids"
[ "$(cat "$TMP/stdin_ids")" = "9707 11 1879 0" ] || { echo "FAIL: tokenize -f - gave '$(cat "$TMP/stdin_ids")'"; fail=1; }
expect_rc 0 "tokenize --help" "$FS_BIN" tokenize --help
expect_rc 0 "detokenize --help" "$FS_BIN" detokenize --help

# Plain forms: ids on one line; detokenize prints the text with no newline.
out=$("$FS_BIN" tokenize -m "$TOK" "Hello, world!")
[ "$out" = "9707 11 1879 0" ] || { echo "FAIL: tokenize 'Hello, world!' gave '$out'"; fail=1; }
"$FS_BIN" detokenize -m "$TOK" 9707 11 1879 0 > "$TMP/d"
printf 'Hello, world!' | cmp -s - "$TMP/d" || { echo "FAIL: detokenize 9707 11 1879 0 gave '$(cat "$TMP/d")'"; fail=1; }
echo "9707 11 1879 0" | FS_MODEL="$TOK" "$FS_BIN" detokenize > "$TMP/d2"
cmp -s "$TMP/d" "$TMP/d2" || { echo "FAIL: detokenize from stdin with FS_MODEL"; fail=1; }

[ "$fail" -eq 0 ] && echo "e2e_tokenizer: ok"
exit "$fail"
