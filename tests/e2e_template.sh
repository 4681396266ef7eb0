#!/bin/sh
# e2e_template.sh - `fs template` against transformers' apply_chat_template.
#
# 1. Every conversation in tests/golden/template/cases.jsonl (Qwen3,
#    Qwen2.5 and Llama 3.2: system or not, multi-turn, tools with calls and
#    results, thinking on/off, generation prompt on/off, the date line, odd
#    content) is rendered with `$FS_BIN template` by its family's own
#    template and compared byte for byte with the matching line of
#    expected.jsonl (written by scripts/oracle_template.py with transformers
#    5.17 on the GPU machine). A family whose tokenizer directory is absent
#    (make tokenizers) is skipped with a message.
# 2. Bad input: unknown role, missing content, malformed JSON, a template
#    that does not parse or raises, missing options - each must fail with
#    the documented exit code and a one-line "fs template: ..." message.
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
mkdir "$TMP/broken" "$TMP/raises" "$TMP/other" "$TMP/named" "$TMP/nodefault"
printf '{"chat_template": "line one\\n{%% if messages %%}no end"}' >"$TMP/broken/tokenizer_config.json"
expect 2 "template line 2, column 24: expected 'endif'" -m "$TMP/broken" --messages "$TMP/ok.json"
printf '{"chat_template": "{{ raise_exception(\\"no way\\") }}"}' >"$TMP/raises/tokenizer_config.json"
expect 2 'raise_exception: no way' -m "$TMP/raises" --messages "$TMP/ok.json"
printf '{"chat_template": [{"name": "tool_use", "template": "x"}]}' >"$TMP/nodefault/tokenizer_config.json"
expect 2 'no template named "default" among "tool_use"' -m "$TMP/nodefault" --messages "$TMP/ok.json"
expect 2 'no chat template' -m "$TMP/nonexistent" --messages "$TMP/ok.json"
expect 1 'expected YYYY-MM-DD' -m "$TOK" --messages "$TMP/ok.json" --date 2024-13-01
expect 1 'kwargs' -m "$TOK" --messages "$TMP/ok.json" --kwargs '{bad'
expect 2 'set by fs' -m "$TOK" --messages "$TMP/ok.json" --kwargs '{"messages": []}'
# Any template runs: from tokenizer_config.json (a string, or the named
# list's "default"), or chat_template.jinja, which wins.
printf '{"chat_template": "{%% for m in messages %%}[{{ m.content }}]{%% endfor %%}", "bos_token": "<s>"}' \
    >"$TMP/other/tokenizer_config.json"
"$FS_BIN" template -m "$TMP/other" --messages "$TMP/ok.json" >"$TMP/out" || fail=1
printf '[hi]' | cmp -s "$TMP/out" - || { echo "FAIL: another template: $(cat "$TMP/out")"; fail=1; }
printf '{{ bos_token }}{{ messages | length }}{{ strftime_now("%%d %%b %%Y") }}' >"$TMP/other/chat_template.jinja"
"$FS_BIN" template -m "$TMP/other" --messages "$TMP/ok.json" --date 2024-07-26 >"$TMP/out" || fail=1
printf '<s>126 Jul 2024' | cmp -s "$TMP/out" - || { echo "FAIL: chat_template.jinja: $(cat "$TMP/out")"; fail=1; }
printf '{"chat_template": [{"name": "rag", "template": "R"}, {"name": "default", "template": "D{{ tools | length }}"}]}' \
    >"$TMP/named/tokenizer_config.json"
printf '[{"type": "function", "function": {"name": "f"}}]' >"$TMP/tools.json"
"$FS_BIN" template -m "$TMP/named" --messages "$TMP/ok.json" --tools "$TMP/tools.json" >"$TMP/out" || fail=1
printf 'D1' | cmp -s "$TMP/out" - || { echo "FAIL: named templates: $(cat "$TMP/out")"; fail=1; }

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
dirs = {"qwen3": tok, "qwen2_5": "models/tok-qwen2_5", "llama3_2": "models/tok-llama3_2"}
cases = [json.loads(l) for l in open(cases_path, encoding="utf-8") if l.strip()]
expected = [json.loads(l) for l in open(exp_path, encoding="utf-8") if l.strip()]
if len(cases) != len(expected):
    sys.exit(f"e2e_template: {len(cases)} cases but {len(expected)} expected lines (regenerate expected.jsonl)")
bad = run = 0
per = {}
for i, (case, want) in enumerate(zip(cases, expected)):
    fam = case["family"]
    d = dirs[fam]
    if not os.path.exists(os.path.join(d, "tokenizer_config.json")):
        per.setdefault(fam, [0, 0, "skipped: " + d + " absent (make tokenizers)"])
        continue
    per.setdefault(fam, [0, 0, ""])
    per[fam][1] += 1
    run += 1
    path = os.path.join(tmp, "case.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"messages": case["messages"], "tools": case.get("tools")}, f, ensure_ascii=False)
    cmd = [fs_bin, "template", "-m", d, "--messages", path, "--kwargs", json.dumps(case.get("kwargs", {}))]
    if not case["add_generation_prompt"]:
        cmd.append("--no-generation-prompt")
    if case.get("now"):
        cmd += ["--date", case["now"]]
    r = subprocess.run(cmd, capture_output=True, timeout=30)
    if want is None:
        ok = r.returncode != 0 and r.stdout == b""
    else:
        ok = r.returncode == 0 and r.stdout == want.encode("utf-8")
    if ok:
        per[fam][0] += 1
        continue
    bad += 1
    if bad <= 5:
        print(f"case {i} ({fam}): mismatch (exit {r.returncode}, stderr {r.stderr.decode(errors='replace').strip()})")
        print(f"  want: {want!r}")
        print(f"  got:  {r.stdout.decode('utf-8', errors='replace')!r}")
for fam, (ok, n, note) in per.items():
    print(f"e2e_template: golden {fam}: {ok}/{n} match {note}".rstrip())
print(f"e2e_template: golden {run - bad}/{run} match ({len(cases) - run} skipped)")
sys.exit(1 if bad else 0)
PY
fi
[ "$fail" -eq 0 ] && echo "e2e_template: ok"
exit "$fail"
