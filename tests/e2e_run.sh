#!/bin/sh
# e2e_run.sh - `fs run`: offline with the shipped models/tiny (no model
# argument, found next to the executable), a model directory with a
# one-shot prompt, and a hub repo id pulled from tests/mock_hub.py (a small
# random checkpoint with the tiny model's tokenizer) and then answered; the
# second run finds it already pulled. FS_HOME in a temp dir. A few seconds.
#
# Docs: docs/chat.md, docs/pull.md
FS_BIN=${FS_BIN:-build/fs}
case $FS_BIN in /*) ;; *) FS_BIN=$PWD/$FS_BIN ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
TINY=$(cd "$HERE/../models/tiny" && pwd)

T=$(mktemp -d "${TMPDIR:-/tmp}/fs_e2e_run.XXXXXX")
HUB_PID=
cleanup() {
    [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null
    [ -n "$KEEP" ] || rm -rf "$T"
}
trap cleanup EXIT INT TERM
export FS_HOME="$T/home"
unset FS_MODEL HF_TOKEN
# nothing listens on port 9 of loopback: any network use would fail
export HF_ENDPOINT="http://127.0.0.1:9"

pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { d=$1; shift; if "$@"; then ok; else bad "$d"; fi; }
# run NAME ARGS... : fs run ARGS, stdout/stderr/status in $T/NAME.{out,err,rc}
run() {
    n=$1; shift
    timeout 60 "$FS_BIN" run "$@" > "$T/$n.out" 2> "$T/$n.err"
    echo $? > "$T/$n.rc"
}
rc() { cat "$T/$1.rc"; }

# ---- offline, no model argument: the shipped tiny model --------------------------
cd "$T" || exit 1 # away from the repository: found next to the executable, not the cwd
printf 'Hello there\n/stats\n' | run default --temp 0 -n 8 -v
check "fs run with no model exits 0 ($(cat "$T/default.err"))" [ "$(rc default)" = 0 ]
check "it used models/tiny" grep -q "^model: $TINY " "$T/default.err"
check "it replied and /stats works" grep -q '^turns: 1,' "$T/default.out"
check "nothing was pulled" [ ! -d "$FS_HOME/models" ]

# the same from fs chat and fs generate
printf 'Hello there\n/stats\n' | timeout 60 "$FS_BIN" chat --temp 0 -n 8 > "$T/chat.out" 2>/dev/null
check "fs chat with no model: same conversation" sh -c "sed '/tok\/s/d' '$T/chat.out' > '$T/a'; sed '/tok\/s/d' '$T/default.out' > '$T/b'; cmp -s '$T/a' '$T/b'"
timeout 60 "$FS_BIN" generate -p "In the beginning God created" -n 4 --temp 0 > "$T/gen.out" 2>/dev/null
timeout 60 "$FS_BIN" generate -m "$TINY" -p "In the beginning God created" -n 4 --temp 0 > "$T/gen_m.out" 2>/dev/null
check "fs generate with no model uses the tiny model" sh -c "[ -s '$T/gen.out' ] && cmp -s '$T/gen.out' '$T/gen_m.out'"

# FS_MODEL wins over the shipped model
mkdir -p "$T/other" && cp "$TINY"/*.json "$TINY/model.safetensors" "$T/other/"
printf 'Hi\n' | FS_MODEL="$T/other" run envmodel --temp 0 -n 4 -v
check "FS_MODEL is used" grep -q "^model: $T/other " "$T/envmodel.err"

# an fs binary with no models/tiny anywhere near it: a clear error
mkdir -p "$T/lonely/bin" && cp "$FS_BIN" "$T/lonely/bin/fs"
"$T/lonely/bin/fs" run < /dev/null > "$T/lonely.out" 2> "$T/lonely.err"
check "no model anywhere: exit 1" [ $? = 1 ]
check "the error says what was looked for" grep -q "^fs run: no model given: use -m MODEL_DIR or set FS_MODEL (no shipped model found: looked for models/tiny/config.json in $T/lonely/bin" "$T/lonely.err"

# ---- fs run DIR PROMPT: one answer -------------------------------------------------------------
run once "$TINY" "Hello there" --temp 0 -n 12
check "fs run DIR PROMPT exits 0" [ "$(rc once)" = 0 ]
printf 'Hello there\n' | timeout 60 "$FS_BIN" chat -m "$TINY" --temp 0 -n 12 > "$T/chat1.out" 2>/dev/null
check "the answer equals fs chat's first reply" cmp -s "$T/once.out" "$T/chat1.out"
check "the answer is not empty" [ "$(wc -c < "$T/once.out")" -gt 1 ]
run oncep "$TINY" -p "Hello there" --temp 0 -n 12
check "-p PROMPT is the same" cmp -s "$T/once.out" "$T/oncep.out"
run sampled "$TINY" "Hello there" --temp 0.7 --top-k 20 --top-p 0.9 --min-p 0.01 --seed 3 -n 12 --no-think --ctx 256
check "sampling flags are accepted" [ "$(rc sampled)" = 0 ]

# ---- usage errors ------------------------------------------------------------------------------------
run badid 'not a repo!' "hi"
check "neither dir nor repo id: exit 1" [ "$(rc badid)" = 1 ]
check "... with a clear message" grep -q "is neither a model directory nor a hub repo id" "$T/badid.err"
run toomany "$TINY" a b
check "too many arguments: exit 1" [ "$(rc toomany)" = 1 ]
run badflag --bogus
check "unknown flag: exit 1" [ "$(rc badflag)" = 1 ]

# ---- a hub repo: pulled, then answered --------------------------------------------------------------
if ! command -v curl >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then
    echo "e2e_run: hub part SKIPPED (needs curl and python3)"
else
    ROOT=$T/hub
    mkdir -p "$ROOT/acme"
    cat > "$T/small.json" <<'EOF'
{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
 "vocab_size": 4096, "max_position_embeddings": 512, "rope_theta": 10000.0,
 "rms_norm_eps": 1e-6, "tie_word_embeddings": true, "bos_token_id": 4070,
 "eos_token_id": 4072}
EOF
    "$FS_BIN" mkmodel --config "$T/small.json" --out "$ROOT/acme/rand" --tokenizer "$TINY" --seed 5 > /dev/null ||
        { echo "FAIL: fs mkmodel"; exit 1; }
    LOG=$T/hub.log
    python3 "$HERE/mock_hub.py" --root "$ROOT" --log "$LOG" --timeout 120 > "$T/port" &
    HUB_PID=$!
    i=0
    while [ ! -s "$T/port" ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
    PORT=$(cat "$T/port")
    [ -n "$PORT" ] || { echo "FAIL: mock hub did not start"; exit 1; }
    export HF_ENDPOINT="http://127.0.0.1:$PORT"

    run pull acme/rand "Hello there" --temp 0 -n 8
    DEST=$FS_HOME/models/acme/rand
    check "fs run OWNER/NAME PROMPT exits 0 (status $(rc pull): $(cat "$T/pull.err"))" [ "$(rc pull)" = 0 ]
    check "it said it was pulling" grep -q "^pulling acme/rand into $DEST" "$T/pull.err"
    check "progress per file" grep -q "^model.safetensors: downloaded" "$T/pull.err"
    check "weights identical to the hub's" cmp -s "$ROOT/acme/rand/model.safetensors" "$DEST/model.safetensors"
    run local "$DEST" "Hello there" --temp 0 -n 8
    check "the answer equals running the pulled dir" cmp -s "$T/pull.out" "$T/local.out"
    : > "$LOG"
    printf 'Hello there\n/stats\n' | run again acme/rand --temp 0 -n 8
    check "second run exits 0" [ "$(rc again)" = 0 ]
    check "second run does not pull" sh -c "! grep -q pulling '$T/again.err' && [ ! -s '$LOG' ]"
    check "second run chats" grep -q '^turns: 1,' "$T/again.out"
    run missing acme/nothing "hi"
    check "a repo the hub lacks: exit 2" [ "$(rc missing)" = 2 ]
    check "... with the pull error" grep -q "^fs run: pull acme/nothing:" "$T/missing.err"
fi

echo "e2e_run: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
