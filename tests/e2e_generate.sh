#!/bin/sh
# e2e_generate.sh - `fs generate` and `fs logits` on a small random
# checkpoint with the real Qwen3 tokenizer (tests/data/gen_tiny.json:
# V 151936, H 64, L 2).
#
# 1. Determinism: greedy twice -> identical text; a seed twice -> identical
#    ids; another seed -> different ids.
# 2. --json parses and has its fields; the streamed text equals the JSON
#    text; -n limits the tokens; -n 0 runs the prefill only.
# 3. --stop cuts the text before the first occurrence of the stop string.
# 4. fs logits: --dump-logits writes V*4 bytes whose argmax is the first
#    greedy token; --top lists K rows; --ids feeds ids directly.
# 5. Bad input: prompt longer than --ctx, empty prompt, missing model,
#    id out of range -> exit 2; bad flags -> exit 1; one "fs CMD:" line.
# Docs: docs/generate.md
FS_BIN=${FS_BIN:-build/fs}
FS_TOKENIZER_DIR=${FS_TOKENIZER_DIR:-models/qwen3-tokenizer}
if [ ! -f "$FS_TOKENIZER_DIR/tokenizer.json" ]; then
    echo "SKIP e2e_generate: $FS_TOKENIZER_DIR/tokenizer.json not found (make tokenizer fetches it with npm)"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fs-e2e-generate.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fail=0
die() { echo "FAIL: $*"; fail=1; }
M="$TMP/m"

"$FS_BIN" mkmodel --config tests/data/gen_tiny.json --tokenizer "$FS_TOKENIZER_DIR" --out "$M" --seed 5 \
    >/dev/null 2>"$TMP/err" || { echo "FAIL: mkmodel: $(cat "$TMP/err")"; exit 1; }

gen() { "$FS_BIN" generate -m "$M" "$@" 2>"$TMP/err"; }
P="The quick brown fox jumps over"

# --- 1. determinism -------------------------------------------------------
gen -p "$P" -n 16 --temp 0 >"$TMP/g1" || die "greedy run 1: $(cat "$TMP/err")"
gen -p "$P" -n 16 --temp 0 >"$TMP/g2" || die "greedy run 2: $(cat "$TMP/err")"
[ -s "$TMP/g1" ] || die "greedy output is empty"
cmp -s "$TMP/g1" "$TMP/g2" || die "greedy output differs between runs"
grep -q '^prompt: [0-9]* tokens, prefill [0-9.]* tok/s' "$TMP/err" || die "no prefill statistics on stderr: $(cat "$TMP/err")"
grep -q '^generated: 16 tokens, decode [0-9.]* tok/s' "$TMP/err" || die "no decode statistics on stderr: $(cat "$TMP/err")"
grep -q '^stop: max_tokens' "$TMP/err" || die "no stop reason on stderr: $(cat "$TMP/err")"

gen -p "$P" -n 16 --temp 1.2 --top-k 0 --top-p 1 --seed 11 --json >"$TMP/s1" || die "seeded run 1: $(cat "$TMP/err")"
gen -p "$P" -n 16 --temp 1.2 --top-k 0 --top-p 1 --seed 11 --json >"$TMP/s2" || die "seeded run 2: $(cat "$TMP/err")"
gen -p "$P" -n 16 --temp 1.2 --top-k 0 --top-p 1 --seed 12 --json >"$TMP/s3" || die "seeded run 3: $(cat "$TMP/err")"
gen -p "$P" -n 16 --temp 0 --json >"$TMP/gj" || die "greedy --json: $(cat "$TMP/err")"
gen -p "$P" -n 5 --temp 0 --json >"$TMP/n5" || die "-n 5: $(cat "$TMP/err")"
gen -p "$P" -n 0 --json >"$TMP/n0" || die "-n 0: $(cat "$TMP/err")"

# --- 2 + 3. JSON, -n, --stop (python3 standard library only) --------------
python3 - "$TMP" "$FS_BIN" "$M" <<'EOF' || fail=1
import json, os, subprocess, sys
tmp, fs, model = sys.argv[1:4]
bad = 0
def check(ok, msg):
    global bad
    if not ok:
        print("FAIL:", msg)
        bad = 1
def load(name):
    with open(os.path.join(tmp, name), encoding="utf-8") as f:
        return json.load(f)
s1, s2, s3, gj, n5, n0 = (load(n) for n in ("s1", "s2", "s3", "gj", "n5", "n0"))
for name, j in (("s1", s1), ("gj", gj), ("n5", n5), ("n0", n0)):
    for key, typ in (("ids", list), ("text", str), ("prompt_tokens", int), ("generated_tokens", int),
                     ("prefill_tok_s", (int, float)), ("decode_tok_s", (int, float)), ("stop_reason", str),
                     ("seed", int)):
        check(isinstance(j.get(key), typ), f"{name}: field {key} missing or not {typ}")
check(s1["ids"] == s2["ids"] and s1["text"] == s2["text"], "same seed, different output")
check(s1["ids"] != s3["ids"], "seeds 11 and 12 gave the same 16 tokens")
check(s1["seed"] == 11, "seed not reported")
check(len(gj["ids"]) == gj["generated_tokens"], "ids and generated_tokens disagree")
check(gj["prompt_tokens"] == 6, f"prompt_tokens {gj['prompt_tokens']}, expected 6")
with open(os.path.join(tmp, "g1"), "rb") as f:
    streamed = f.read().decode("utf-8")
check(streamed == gj["text"], f"streamed text {streamed!r} != JSON text {gj['text']!r}")
check(n5["generated_tokens"] == 5 or n5["stop_reason"] == "eos", f"-n 5 generated {n5['generated_tokens']}")
check(n5["ids"] == gj["ids"][:len(n5["ids"])], "-n 5 is not a prefix of the -n 16 greedy run")
check(n0["generated_tokens"] == 0 and n0["ids"] == [] and n0["text"] == "", "-n 0 generated something")

# --stop: a piece from the middle of the greedy text
text = gj["text"]
if len(text) >= 4:
    mid = len(text) // 2
    stop = text[mid:mid + 2]
    r = subprocess.run([fs, "generate", "-m", model, "-p", "The quick brown fox jumps over", "-n", "16",
                        "--temp", "0", "--stop", stop, "--stop", "\x01never", "--json"], capture_output=True)
    check(r.returncode == 0, f"--stop run failed: {r.stderr!r}")
    if r.returncode == 0:
        j = json.loads(r.stdout)
        want = text[:text.index(stop)]
        check(j["text"] == want, f"--stop {stop!r}: got {j['text']!r}, want {want!r}")
        check(j["stop_reason"] == "stop_string", f"--stop: stop_reason {j['stop_reason']}")
    # streaming mode, the same cut
    r = subprocess.run([fs, "generate", "-m", model, "-p", "The quick brown fox jumps over", "-n", "16",
                        "--temp", "0", "--stop", stop], capture_output=True)
    check(r.returncode == 0 and r.stdout.decode("utf-8") == text[:text.index(stop)], "--stop (streaming)")
    check(b"stop: stop_string" in r.stderr, "--stop (streaming): stop reason")
else:
    check(False, f"greedy text too short for the --stop test: {text!r}")

# logits: dump size and argmax == first greedy token
V = 151936
dump = os.path.join(tmp, "l.f32")
r = subprocess.run([fs, "logits", "-m", model, "-p", "The quick brown fox jumps over", "--top", "3",
                    "--dump-logits", dump], capture_output=True)
check(r.returncode == 0, f"fs logits failed: {r.stderr!r}")
if r.returncode == 0:
    import struct
    with open(dump, "rb") as f:
        raw = f.read()
    check(len(raw) == V * 4, f"--dump-logits wrote {len(raw)} bytes, expected {V * 4}")
    vals = struct.unpack(f"<{len(raw) // 4}f", raw)
    am = max(range(len(vals)), key=lambda i: (vals[i], -i))
    check(am == gj["ids"][0], f"logits argmax {am} != first greedy token {gj['ids'][0]}")
    lines = r.stdout.decode("utf-8").splitlines()
    rows = [l for l in lines if l[:1].isdigit()]
    check(len(rows) == 3, f"--top 3 printed {len(rows)} rows")
    check(rows and rows[0].split()[1] == str(am), "the first row is not the argmax")
    # --ids: the same prompt as ids gives the same logits
    ids = subprocess.run([fs, "tokenize", "-m", model, "The quick brown fox jumps over"], capture_output=True)
    if ids.returncode == 0:
        dump2 = os.path.join(tmp, "l2.f32")
        r2 = subprocess.run([fs, "logits", "-m", model, "--ids", ids.stdout.decode().strip(), "--top", "1",
                             "--dump-logits", dump2], capture_output=True)
        check(r2.returncode == 0, f"--ids failed: {r2.stderr!r}")
        if r2.returncode == 0:
            with open(dump2, "rb") as f:
                check(f.read() == raw, "--ids gives different logits than -p")
sys.exit(bad)
EOF

# --- 5. bad input -----------------------------------------------------------
expect() { # expect CODE PATTERN ARGS...
    code=$1; pat=$2; shift 2
    "$FS_BIN" "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    [ "$rc" -eq "$code" ] || die "fs $*: exit $rc, expected $code ($(cat "$TMP/err"))"
    grep -q -- "$pat" "$TMP/err" || die "fs $*: stderr lacks '$pat': $(cat "$TMP/err")"
    [ "$code" -eq 0 ] || [ "$(grep -c '^fs[ :]' "$TMP/err")" -eq 1 ] || die "fs $*: not one 'fs ...' error line"
}
expect 2 'longer than the context' generate -m "$M" -p "$P $P $P" --ctx 8
expect 2 'longer than the context' logits -m "$M" -p "$P $P $P" --ctx 8
expect 2 'empty prompt' generate -m "$M" -p ""
expect 2 'empty prompt' logits -m "$M" -p ""
expect 2 'nonexistent' generate -m "$TMP/nonexistent" -p "hi"
expect 2 'nonexistent' logits -m "$TMP/nonexistent" -p "hi"
expect 2 'out of range' logits -m "$M" --ids "1 999999"
expect 2 'nonexistent' generate -m "$M" -f "$TMP/nonexistent.txt"
expect 1 'unknown argument' generate -m "$M" -p "hi" --frobnicate
expect 1 'unknown argument' logits -m "$M" -p "hi" --frobnicate
expect 1 '--temp' generate -m "$M" -p "hi" --temp abc
expect 1 '--top-p' generate -m "$M" -p "hi" --top-p 0
expect 1 '-n' generate -m "$M" -p "hi" -n -1
expect 1 '--seed' generate -m "$M" -p "hi" --seed -3
expect 1 '--stop' generate -m "$M" -p "hi" --stop ""
expect 1 'no prompt' generate -m "$M"
expect 1 'no prompt' logits -m "$M"
expect 1 '--ids' logits -m "$M" --ids "1 x 2"
expect 1 'needs a value' generate -m "$M" -p
# a prompt of exactly the context: one token from the last logits, then full
printf '%s' "$P" >"$TMP/p.txt"
gen -f "$TMP/p.txt" --ctx 6 --temp 0 -n 10 >/dev/null || die "prompt == context: $(cat "$TMP/err")"
grep -q '^generated: 1 tokens' "$TMP/err" && grep -q '^stop: context_full' "$TMP/err" ||
    die "prompt == context: expected 1 token and context_full: $(cat "$TMP/err")"
"$FS_BIN" generate --help >"$TMP/out" 2>&1 && grep -q 'usage: fs generate' "$TMP/out" || die "fs generate --help"
"$FS_BIN" logits --help >"$TMP/out" 2>&1 && grep -q 'usage: fs logits' "$TMP/out" || die "fs logits --help"

[ "$fail" -eq 0 ] && echo "e2e_generate: ok"
exit "$fail"
