#!/bin/sh
# e2e_template.sh - `fs template` against transformers' apply_chat_template.
#
# 1. Every conversation in tests/golden/template/cases.jsonl is rendered with
#    `$FS_BIN template` and compared byte for byte with the matching line of
#    expected.jsonl (written by scripts/oracle_template.py on a machine with
#    transformers; skipped with a message when that file is absent).
# 2. Bad input: unknown role, missing content, malformed JSON, a different
#    chat template, missing options - each must fail with the documented exit
#    code and a one-line "fs template: ..." message.
# Docs: docs/testing.md
FS_BIN=${FS_BIN:-build/fs}
TOK=${FS_TOKENIZER_DIR:-models/qwen3-tokenizer}
GOLD=tests/golden/template
if [ ! -f "$TOK/tokenizer_config.json" ]; then
    echo "e2e_template: SKIP ($TOK/tokenizer_config.json missing; run make tokenizer)"
    exit 77
fi
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fail=0

# expect CODE PATTERN ARGS...: run fs template, check exit code and stderr.
expect() {
    code=$1; pat=$2; shift 2
    "$FS_BIN" template "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -ne "$code" ] || ! grep -q "$pat" "$TMP/err" || [ -s "$TMP/out" ]; then
        echo "FAIL: fs template $* -> exit $rc (want $code), stderr: $(cat "$TMP/err")"
        fail=1
    fi
}

printf '[{"role": "robot", "content": "hi"}]' >"$TMP/badrole.json"
expect 2 'unknown role "robot"' -m "$TOK" --messages "$TMP/badrole.json"
printf '[{"role": "user"}]' >"$TMP/nocontent.json"
expect 2 'missing "content"' -m "$TOK" --messages "$TMP/nocontent.json"
printf '[{"content": "hi"}]' >"$TMP/norole.json"
expect 2 'missing "role"' -m "$TOK" --messages "$TMP/norole.json"
printf '[{"role": "user", "content": 5}]' >"$TMP/numcontent.json"
expect 2 'must be a string' -m "$TOK" --messages "$TMP/numcontent.json"
printf '[]' >"$TMP/empty.json"
expect 2 'empty' -m "$TOK" --messages "$TMP/empty.json"
printf '{"role": "user"}' >"$TMP/obj.json"
expect 2 'must be a JSON array' -m "$TOK" --messages "$TMP/obj.json"
printf '[{"role": "user", "content": "hi"' >"$TMP/trunc.json"
expect 2 'trunc.json' -m "$TOK" --messages "$TMP/trunc.json"
printf '[{"role": "user", "content": "hi"}]' >"$TMP/ok.json"
expect 2 'no-such-file' -m "$TOK" --messages "$TMP/no-such-file.json"
expect 1 'missing --messages' -m "$TOK"
expect 1 'unknown option' -m "$TOK" --messages "$TMP/ok.json" --bogus
mkdir "$TMP/other"
printf '{"chat_template": "{%% for m in messages %%}{{ m.content }}{%% endfor %%}"}' \
    >"$TMP/other/tokenizer_config.json"
expect 2 'unsupported chat template' -m "$TMP/other" --messages "$TMP/ok.json"
expect 2 'tokenizer_config.json' -m "$TMP/nonexistent" --messages "$TMP/ok.json"

# A plain success, checked by hand: exact bytes, no trailing newline added.
"$FS_BIN" template -m "$TOK" --messages "$TMP/ok.json" --no-think >"$TMP/out" || fail=1
printf '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n' >"$TMP/want"
cmp -s "$TMP/out" "$TMP/want" || { echo "FAIL: simple --no-think rendering differs"; fail=1; }
# Also accepted: {"messages": [...]}.
printf '{"messages": [{"role": "user", "content": "hi"}]}' >"$TMP/wrapped.json"
"$FS_BIN" template -m "$TOK" --messages "$TMP/wrapped.json" --no-generation-prompt >"$TMP/out" || fail=1
printf '<|im_start|>user\nhi<|im_end|>\n' >"$TMP/want"
cmp -s "$TMP/out" "$TMP/want" || { echo "FAIL: --no-generation-prompt rendering differs"; fail=1; }

if [ ! -f "$GOLD/expected.jsonl" ]; then
    echo "e2e_template: golden comparison SKIPPED ($GOLD/expected.jsonl absent;" \
         "run scripts/oracle_template.py where transformers is installed)"
else
    python3 - "$FS_BIN" "$TOK" "$GOLD/cases.jsonl" "$GOLD/expected.jsonl" "$TMP" <<'PY' || fail=1
import json, os, subprocess, sys
fs_bin, tok, cases_path, exp_path, tmp = sys.argv[1:]
cases = [json.loads(l) for l in open(cases_path, encoding="utf-8") if l.strip()]
expected = [json.loads(l) for l in open(exp_path, encoding="utf-8") if l.strip()]
if len(cases) != len(expected):
    sys.exit(f"e2e_template: {len(cases)} cases but {len(expected)} expected lines (regenerate expected.jsonl)")
bad = 0
for i, (case, want) in enumerate(zip(cases, expected)):
    path = os.path.join(tmp, "case.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(case["messages"], f, ensure_ascii=False)
    cmd = [fs_bin, "template", "-m", tok, "--messages", path]
    if not case["enable_thinking"]:
        cmd.append("--no-think")
    r = subprocess.run(cmd, capture_output=True, timeout=30)
    if want is None:
        if r.returncode == 0:
            bad += 1
            print(f"case {i}: transformers refused it but fs rendered it")
        continue
    if r.returncode != 0 or r.stdout != want.encode("utf-8"):
        bad += 1
        if bad <= 5:
            print(f"case {i}: mismatch (exit {r.returncode}, stderr {r.stderr.decode(errors='replace').strip()})")
            print(f"  want: {want!r}")
            print(f"  got:  {r.stdout.decode('utf-8', errors='replace')!r}")
print(f"e2e_template: golden {len(cases) - bad}/{len(cases)} match")
sys.exit(1 if bad else 0)
PY
fi
[ "$fail" -eq 0 ] && echo "e2e_template: ok"
exit "$fail"
