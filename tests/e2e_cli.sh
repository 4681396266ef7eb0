#!/bin/sh
# e2e_cli.sh - the command line a user meets, on the shipped models/tiny
# (offline, no tokenizer download):
#
# 1. fs --version; fs help, fs help CMD = fs CMD --help for every command.
# 2. One default model: every command that takes a model runs with none
#    given (FS_MODEL unset, run from another directory); -m "" is an error;
#    a tokenizer with more tokens than the model's vocab is refused at load.
# 3. fs run PROMPT: a prompt for the default model; the rule for one
#    argument (a directory or OWNER/NAME is a model, else a prompt; -p
#    forces a prompt).
# 4. One-shot errors: invalid UTF-8 and an over-long prompt exit 2 with a
#    message that fits one-shot mode; stdout that cannot be written
#    (/dev/full) exits 2 with "cannot write" for run, generate (--json
#    too), inspect, logits, and the error comes before the statistics.
# 5. Strict numbers: --seed " -5" and 2^80 are usage errors; --temp 1e-320
#    and -c are accepted; -f - reads stdin.
# 6. fs template --messages - reads stdin; fs quantize refuses to replace
#    an output without --force; fs list shows the cache with sizes.
# 7. make install DESTDIR=... PREFIX=/usr: the installed fs finds its tiny
#    model in ../share/fs/models/tiny.
#
# Docs: docs/testing.md
FS_BIN=${FS_BIN:-build/fs}
FS_BUILD=${FS_BUILD:-build}
case $FS_BIN in /*) ;; *) FS_BIN=$PWD/$FS_BIN ;; esac
case $FS_BUILD in /*) ;; *) FS_BUILD=$PWD/$FS_BUILD ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TINY=$ROOT/models/tiny
T=$(mktemp -d "${TMPDIR:-/tmp}/fs_e2e_cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
export FS_HOME="$T/home"
unset FS_MODEL HF_TOKEN
export HF_ENDPOINT="http://127.0.0.1:9" # nothing listens: no network use

pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { d=$1; shift; if "$@"; then ok; else bad "$d"; fi; }
# fs NAME ARGS...: stdout, stderr and status in $T/NAME.{out,err,rc}
fs() {
    n=$1; shift
    timeout 120 "$FS_BIN" "$@" > "$T/$n.out" 2> "$T/$n.err" < /dev/null
    echo $? > "$T/$n.rc"
}
rc() { cat "$T/$1.rc"; }
err1() { head -n 1 "$T/$1.err"; }
cd "$T" || exit 1 # away from the repository: the model is found next to the executable

# ---- 1. version and help -----------------------------------------------------------
fs version --version
check "fs --version exits 0" [ "$(rc version)" = 0 ]
check "fs --version prints 'fs VERSION'" grep -q '^fs [^ ]' "$T/version.out"
fs help help
check "fs help lists the commands" sh -c "[ $(rc help) = 0 ] && grep -q '^  list ' '$T/help.out'"
for c in run chat generate logits tokenize detokenize template inspect pull list quantize bench perplexity mkmodel; do
    fs "h_$c" help "$c"
    fs "d_$c" "$c" --help
    check "fs help $c = fs $c --help" sh -c "[ $(rc h_$c) = 0 ] && grep -q 'usage: fs $c' '$T/h_$c.out' && cmp -s '$T/h_$c.out' '$T/d_$c.out'"
done
fs nohelp help frobnicate
check "fs help of an unknown command: exit 1" [ "$(rc nohelp)" = 1 ]

# ---- 2. one default model ------------------------------------------------------------
fs inspect inspect
check "inspect with no model uses models/tiny" sh -c "[ $(rc inspect) = 0 ] && grep -q 'models/tiny' '$T/inspect.out'"
fs tok tokenize "Hello there"
check "tokenize with no model" sh -c "[ $(rc tok) = 0 ] && [ -s '$T/tok.out' ]"
fs detok detokenize $(cat "$T/tok.out")
check "detokenize with no model" sh -c "[ $(rc detok) = 0 ] && [ \"\$(cat '$T/detok.out')\" = 'Hello there' ]"
printf '[{"role": "user", "content": "Hi"}]' > "$T/m.json"
fs tmpl template --messages "$T/m.json"
check "template with no model" sh -c "[ $(rc tmpl) = 0 ] && grep -q 'im_start' '$T/tmpl.out'"
fs logits logits -p "Hello there" --top 2
check "logits with no model" [ "$(rc logits)" = 0 ]
fs gen generate -p "In the beginning" -n 4 --temp 0
check "generate with no model" [ "$(rc gen)" = 0 ]
fs bench bench --pp 4 --tg 2 -r 1 --warmup 0 --bw-mib 0
check "bench with no model ($(err1 bench))" sh -c "[ $(rc bench) = 0 ] && grep -q '^model tiny' '$T/bench.out'"
fs ppl perplexity -p "It was the best of times, it was the worst of times." -c 8
check "perplexity with no model ($(err1 ppl))" sh -c "[ $(rc ppl) = 0 ] && grep -q 'ppl' '$T/ppl.out'"
cat > "$T/smallv.json" <<'EOF'
{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
 "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 1000, "max_position_embeddings": 64,
 "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": true, "eos_token_id": 2}
EOF
"$FS_BIN" mkmodel --config "$T/smallv.json" --out "$T/smallv" --tokenizer "$TINY" > /dev/null 2>&1
fs smallv generate -m "$T/smallv" -p hi
check "a tokenizer larger than the model's vocab is refused at load" sh -c "[ $(rc smallv) = 2 ] && grep -q 'tokenizer.json has 4096 tokens but the model only 1000' '$T/smallv.err'"
fs emptym generate -m "" -p hi
check "-m '' is a usage error" sh -c "[ $(rc emptym) = 1 ] && grep -q 'empty' '$T/emptym.err'"

# ---- 3. fs run PROMPT ------------------------------------------------------------------
fs run1 run "Once upon a time" -n 8 --temp 0
fs run2 run "$TINY" "Once upon a time" -n 8 --temp 0
check "fs run PROMPT answers with the default model ($(err1 run1))" [ "$(rc run1)" = 0 ]
check "... the same answer as fs run DIR PROMPT" sh -c "[ -s '$T/run1.out' ] && cmp -s '$T/run1.out' '$T/run2.out'"
fs run3 run -p "either/or" -n 4 --temp 0
check "-p makes a repo-shaped word a prompt" [ "$(rc run3)" = 0 ]
fs run4 run "either/or" -n 4 --temp 0
check "a lone OWNER/NAME is a repo id (pulled: fails offline, exit 2)" sh -c "[ $(rc run4) = 2 ] && grep -q 'pull either/or' '$T/run4.err'"
fs run5 run -m "$TINY" "Once upon a time" -n 8 --temp 0
check "-m MODEL PROMPT" cmp -s "$T/run1.out" "$T/run5.out"

# ---- 4. one-shot errors, write errors ---------------------------------------------------
fs utf run "$TINY" "$(printf 'ok \377 then')"
check "run: invalid UTF-8 exits 2" [ "$(rc utf)" = 2 ]
check "... and says where, in what was typed" grep -q '^fs run: .*not valid UTF-8 (byte 3)' "$T/utf.err"
fs long run "$TINY" "It is a truth universally acknowledged, that a single man in possession of a good fortune" -c 16
check "run: a prompt over the context exits 2" [ "$(rc long)" = 2 ]
check "... with a one-shot message (-c, not /reset)" sh -c "grep -q 'raise -c/--ctx' '$T/long.err' && ! grep -q '/reset' '$T/long.err'"
if [ -w /dev/full ]; then
    for c in "run $TINY hello -n 4" "generate -p hello -n 4" "generate -p hello -n 4 --json" "inspect" "logits -p hello"; do
        timeout 120 "$FS_BIN" $c > /dev/full 2> "$T/full.err" < /dev/null
        r=$?
        check "fs $c > /dev/full: exit 2 ($r)" [ $r = 2 ]
        check "fs $c > /dev/full: the first stderr line says it" grep -q "^fs [a-z]*: cannot write: " "$T/full.err"
    done
    timeout 120 "$FS_BIN" generate -p hello -n 4 > /dev/full 2> "$T/full.err"
    check "generate: the error line first, then the statistics" sh -c "head -n 1 '$T/full.err' | grep -q '^fs generate: cannot write' && sed -n 2p '$T/full.err' | grep -q '^prompt: '"
fi

# ---- 5. numbers, -c, -f - ---------------------------------------------------------------
fs seed1 generate -p hi --seed " -5"
fs seed2 generate -p hi --seed 1208925819614629174706176
fs seed3 generate -p hi --seed 18446744073709551615 -n 2 --json
check "--seed ' -5' is a usage error" [ "$(rc seed1)" = 1 ]
check "--seed 2^80 is a usage error" [ "$(rc seed2)" = 1 ]
check "--seed 2^64 - 1 is a seed" sh -c "[ $(rc seed3) = 0 ] && grep -q '\"seed\": 18446744073709551615' '$T/seed3.out'"
fs tiny_t generate -p hi -n 2 --temp 1e-320
check "--temp 1e-320 is a temperature" [ "$(rc tiny_t)" = 0 ]
fs ctx generate -p hi -n 2 -c 64 -v
check "-c sets the context" grep -q '^context: 64 tokens' "$T/ctx.err"
printf 'In the beginning' | timeout 120 "$FS_BIN" generate -f - -n 6 --temp 0 > "$T/stdin.out" 2>/dev/null
fs pgen generate -p "In the beginning" -n 6 --temp 0
check "generate -f - reads stdin" sh -c "[ -s '$T/stdin.out' ] && cmp -s '$T/stdin.out' '$T/pgen.out'"

# ---- 6. template from stdin, quantize --force, fs list --------------------------------
timeout 60 "$FS_BIN" template --messages - < "$T/m.json" > "$T/tmpl2.out" 2>/dev/null
check "template --messages - reads stdin" cmp -s "$T/tmpl.out" "$T/tmpl2.out"
fs q1 quantize "$TINY" "$T/q" --weights q8_0
fs q2 quantize "$TINY" "$T/q" --weights q4_0
fs q3 quantize "$TINY" "$T/q" --weights q4_0 --force
check "quantize writes OUT" [ "$(rc q1)" = 0 ]
check "quantize refuses to replace OUT without --force" sh -c "[ $(rc q2) = 1 ] && grep -q -- '--force' '$T/q2.err'"
check "quantize --force replaces it" sh -c "[ $(rc q3) = 0 ] && \"$FS_BIN\" inspect '$T/q' | grep -q 'Q4_0'"

export FS_HOME="$T/home2" # the first one holds what the failed pull of either/or left
fs list0 list
check "fs list with an empty cache" sh -c "[ $(rc list0) = 0 ] && grep -q '^no models in $FS_HOME/models' '$T/list0.out'"
mkdir -p "$FS_HOME/models/acme/tiny" "$FS_HOME/models/acme/half"
cp "$TINY"/config.json "$TINY"/tokenizer.json "$TINY"/tokenizer_config.json "$TINY"/model.safetensors "$FS_HOME/models/acme/tiny/"
cp "$TINY"/config.json "$FS_HOME/models/acme/half/"
head -c 100000 "$TINY/model.safetensors" > "$FS_HOME/models/acme/half/model.safetensors.part"
fs list1 list
check "fs list shows the models" sh -c "[ $(rc list1) = 0 ] && grep -q '^  acme/tiny  *[0-9.]* MiB$' '$T/list1.out'"
check "... and which are incomplete" grep -q '^  acme/half  *[0-9.]* KiB  incomplete (fs pull acme/half resumes it)$' "$T/list1.out"
fs list2 list extra
check "fs list takes no arguments" [ "$(rc list2)" = 1 ]

# ---- 7. make install -------------------------------------------------------------------
if command -v make >/dev/null 2>&1 && [ -x "$FS_BUILD/fs" ]; then
    # -o: use the fs that was built; MAKEFLAGS off: not a part of the make running the tests
    (cd "$ROOT" && env -u MAKEFLAGS -u MFLAGS make --no-print-directory -s -o "$FS_BUILD/fs" install \
        BUILD="$FS_BUILD" DESTDIR="$T/dest" PREFIX=/usr) > "$T/install.log" 2>&1
    check "make install ($(tail -n 3 "$T/install.log"))" [ -x "$T/dest/usr/bin/fs" ]
    check "the tiny model is installed" cmp -s "$TINY/model.safetensors" "$T/dest/usr/share/fs/models/tiny/model.safetensors"
    timeout 120 "$T/dest/usr/bin/fs" run "Once upon a time" -n 8 --temp 0 -v > "$T/inst.out" 2> "$T/inst.err"
    check "the installed fs runs offline with its own model" grep -q "^model: $T/dest/usr/share/fs/models/tiny " "$T/inst.err"
    check "... and answers as the built one" cmp -s "$T/inst.out" "$T/run1.out"
fi

echo "e2e_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
