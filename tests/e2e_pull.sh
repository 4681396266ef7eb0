#!/bin/sh
# e2e_pull.sh - `fs pull` against tests/mock_hub.py on 127.0.0.1: success,
# up to date, resume after a cut, server ignoring Range, 404s, corrupt
# download, no network, gated repo with/without HF_TOKEN, bad repo ids,
# sharded checkpoint, curl missing. Loopback only; a few seconds.
#
# Docs: docs/pull.md
FS_BIN=${FS_BIN:-build/fs}
case $FS_BIN in /*) ;; *) FS_BIN=$PWD/$FS_BIN ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)

command -v curl >/dev/null 2>&1 || { echo "e2e_pull: SKIP (no curl)"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "e2e_pull: SKIP (no python3)"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/fs_e2e_pull.XXXXXX")
HUB_PID=
cleanup() {
    [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# check DESCRIPTION COMMAND...: the command must succeed
check() { d=$1; shift; if "$@"; then ok; else bad "$d"; fi; }

# ---- checkpoints ------------------------------------------------------------
ROOT=$T/hub
mkdir -p "$ROOT/acme" "$ROOT/gated"
cat > "$T/small.json" <<'EOF'
{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
 "vocab_size": 256, "max_position_embeddings": 512, "rope_theta": 1000000.0,
 "rms_norm_eps": 1e-6, "tie_word_embeddings": true, "bos_token_id": 1,
 "eos_token_id": 2}
EOF
# pull does not read the tokenizer; small stand-ins keep the test fast.
mkdir -p "$T/tok"
echo '{"version": "1.0", "model": {"type": "BPE", "vocab": {}, "merges": []}}' > "$T/tok/tokenizer.json"
echo '{"tokenizer_class": "Qwen2Tokenizer"}' > "$T/tok/tokenizer_config.json"

if "$FS_BIN" mkmodel --help >/dev/null 2>&1; then
    "$FS_BIN" mkmodel --config "$T/small.json" --out "$ROOT/acme/tiny" --tokenizer "$T/tok" >/dev/null &&
    "$FS_BIN" mkmodel --config "$T/small.json" --out "$ROOT/acme/sharded" --shards 3 --tokenizer "$T/tok" >/dev/null ||
        { echo "FAIL: fs mkmodel"; exit 1; }
else
    # No mkmodel: any bytes do for a transfer test (the config is still a
    # real Qwen3 config, so fs pull's config check passes).
    python3 - "$ROOT/acme" "$T" <<'EOF'
import json, os, random, shutil, sys
root, t = sys.argv[1], sys.argv[2]
rnd = random.Random(7)
for name, shards in (("tiny", 1), ("sharded", 3)):
    d = os.path.join(root, name); os.makedirs(d)
    cfg = json.load(open(os.path.join(t, "small.json")))
    cfg.update(architectures=["Qwen3ForCausalLM"], model_type="qwen3", torch_dtype="bfloat16")
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(t, "tok", f), d)
    if shards == 1:
        open(os.path.join(d, "model.safetensors"), "wb").write(rnd.randbytes(150000))
    else:
        wm = {}
        for i in range(shards):
            f = "model-%05d-of-%05d.safetensors" % (i + 1, shards)
            open(os.path.join(d, f), "wb").write(rnd.randbytes(40000 + i))
            wm["t%d.weight" % i] = f; wm["u%d.weight" % i] = f
        json.dump({"metadata": {}, "weight_map": wm}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
EOF
fi
cp -r "$ROOT/acme/tiny" "$ROOT/gated/tiny"
# A repo whose shard list tries to escape the model directory.
mkdir -p "$ROOT/evil/repo"
cp "$ROOT/acme/tiny/config.json" "$ROOT/acme/tiny/tokenizer.json" "$ROOT/acme/tiny/tokenizer_config.json" "$ROOT/evil/repo/"
echo '{"weight_map": {"a.weight": "../../escape.safetensors"}}' > "$ROOT/evil/repo/model.safetensors.index.json"

# ---- the hub ------------------------------------------------------------------
CTL=$T/control.json
LOG=$T/hub.log
echo '{}' > "$CTL"
python3 "$HERE/mock_hub.py" --root "$ROOT" --control "$CTL" --log "$LOG" --timeout 120 > "$T/port" &
HUB_PID=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
PORT=$(cat "$T/port")
[ -n "$PORT" ] || { echo "FAIL: mock hub did not start"; exit 1; }
export HF_ENDPOINT="http://127.0.0.1:$PORT"
unset HF_TOKEN
export FS_HOME="$T/home"

# pull REPO [ARGS...]: run fs pull, keep stdout/stderr/status in $T
pull() {
    "$FS_BIN" pull "$@" > "$T/out" 2> "$T/err"
    echo $? > "$T/rc"
}
rc() { cat "$T/rc"; }
err_has() { grep -q -- "$1" "$T/err"; }
same_files() { # same_files SRC DST: every file of SRC is byte-identical in DST
    for f in "$1"/*; do cmp -s "$f" "$2/$(basename "$f")" || { echo "differs: $f"; return 1; }; done
}
no_parts() { ! ls "$1" 2>/dev/null | grep -q '\.part$'; }

# ---- success into the default dir, then up to date -----------------------------
pull acme/tiny
DEST=$FS_HOME/models/acme/tiny
check "pull acme/tiny exits 0 ($(cat "$T/err"))" [ "$(rc)" = 0 ]
check "stdout is the model dir" [ "$(cat "$T/out")" = "$DEST" ]
check "files identical" same_files "$ROOT/acme/tiny" "$DEST"
check "no .part left" no_parts "$DEST"
pull acme/tiny
check "second pull exits 0" [ "$(rc)" = 0 ]
check "second pull says up to date" err_has "model.safetensors: up to date"
check "second pull downloads nothing" sh -c "! grep -q downloaded '$T/err'"

# ---- sharded checkpoint, --dir ------------------------------------------------
pull acme/sharded --dir "$T/sharded"
check "sharded pull exits 0 ($(cat "$T/err"))" [ "$(rc)" = 0 ]
check "sharded files identical" same_files "$ROOT/acme/sharded" "$T/sharded"
check "sharded: 3 shards" [ "$(ls "$T/sharded" | grep -c '^model-.*safetensors$')" = 3 ]

# ---- resume after a cut -------------------------------------------------------------
echo '{"drop": {"model.safetensors": 50000}}' > "$CTL"
pull acme/tiny --dir "$T/cut"
check "cut download exits 2" [ "$(rc)" = 2 ]
check "cut download says interrupted" err_has "interrupted"
check "cut leaves model.safetensors.part" [ -f "$T/cut/model.safetensors.part" ]
check "cut does not promote model.safetensors" [ ! -e "$T/cut/model.safetensors" ]
check "the .part has the bytes received" [ "$(wc -c < "$T/cut/model.safetensors.part")" -eq 50000 ]
echo '{}' > "$CTL"
: > "$LOG"
pull acme/tiny --dir "$T/cut"
check "resumed pull exits 0 ($(cat "$T/err"))" [ "$(rc)" = 0 ]
check "resumed pull says resuming" err_has "resuming at"
check "server saw a Range request" grep -q 'range=bytes=50000-.*status=206' "$LOG"
check "resumed files identical" same_files "$ROOT/acme/tiny" "$T/cut"
check "no .part after resume" no_parts "$T/cut"

# ---- a server that ignores Range: start over ------------------------------------------
echo '{"drop": {"model.safetensors": 30000}}' > "$CTL"
pull acme/tiny --dir "$T/norange"
echo '{"ignore_range": true}' > "$CTL"
pull acme/tiny --dir "$T/norange"
check "ignored Range: exits 0 ($(cat "$T/err"))" [ "$(rc)" = 0 ]
check "ignored Range: says starting over" err_has "starting over"
check "ignored Range: files identical" same_files "$ROOT/acme/tiny" "$T/norange"
echo '{}' > "$CTL"

# ---- corrupt download: nothing promoted, good files untouched -------------------------
mkdir -p "$T/corrupt"
pull acme/tiny --dir "$T/corrupt"
cp "$T/corrupt/config.json" "$T/config.before"
rm "$T/corrupt/model.safetensors"
echo '{"corrupt": ["model.safetensors"]}' > "$CTL"
pull acme/tiny --dir "$T/corrupt"
check "corrupt download exits 2" [ "$(rc)" = 2 ]
check "corrupt download says so" err_has "corrupt download"
check "corrupt: no model.safetensors" [ ! -e "$T/corrupt/model.safetensors" ]
check "corrupt: .part deleted" no_parts "$T/corrupt"
check "corrupt: good files untouched" cmp -s "$T/config.before" "$T/corrupt/config.json"
echo '{}' > "$CTL"

# ---- not found -----------------------------------------------------------------------
pull acme/nosuchrepo --dir "$T/nf"
check "missing repo exits 2" [ "$(rc)" = 2 ]
check "missing repo message" err_has "repository acme/nosuchrepo not found"
pull acme/tiny --dir "$T/nf2" --revision v9
check "missing revision exits 2" [ "$(rc)" = 2 ]
check "missing revision message" err_has "revision 'v9' not found"
mkdir -p "$ROOT/acme/notok"
cp "$ROOT/acme/tiny/config.json" "$ROOT/acme/notok/"
pull acme/notok --dir "$T/nf3"
check "missing file exits 2" [ "$(rc)" = 2 ]
check "missing file is named" err_has "has no file tokenizer.json"
pull evil/repo --dir "$T/evil"
check "unsafe shard name exits 2" [ "$(rc)" = 2 ]
check "unsafe shard name message" err_has "unsafe shard name"
check "nothing escaped" [ ! -e "$T/escape.safetensors" ] && [ ! -e "$T/escape.safetensors.part" ]

# A config fs cannot run fails before the weights are fetched.
mkdir -p "$ROOT/acme/bert"
cp "$ROOT/acme/tiny/"* "$ROOT/acme/bert/"
echo '{"model_type": "bert", "hidden_size": 64}' > "$ROOT/acme/bert/config.json"
pull acme/bert --dir "$T/bert"
check "unsupported config exits 2" [ "$(rc)" = 2 ]
check "unsupported config message" err_has "acme/bert is not a model fs can run"
check "unsupported config: no weights fetched" [ ! -e "$T/bert/model.safetensors" ]
check "unsupported config: stdout empty" [ ! -s "$T/out" ]

# ---- gated repo --------------------------------------------------------------------------
echo '{"token": "s3cret"}' > "$CTL"
pull gated/tiny --dir "$T/gated"
check "gated without token exits 2" [ "$(rc)" = 2 ]
check "gated without token mentions HF_TOKEN" err_has "HF_TOKEN"
(export HF_TOKEN=wrong; pull gated/tiny --dir "$T/gated")
check "gated with a wrong token exits 2" [ "$(rc)" = 2 ]
check "wrong token is reported" err_has "although HF_TOKEN is set"
# A curl wrapper records the argv fs passes: the token must not be in it
# (anyone can read a process's arguments with ps).
mkdir -p "$T/spybin"
REAL_CURL=$(command -v curl)
printf '#!/bin/sh\necho "$*" >> "%s/curl_args"\nexec "%s" "$@"\n' "$T" "$REAL_CURL" > "$T/spybin/curl"
chmod +x "$T/spybin/curl"
(export HF_TOKEN=s3cret PATH="$T/spybin:$PATH"; pull gated/tiny --dir "$T/gated")
check "gated with token exits 0 ($(cat "$T/err"))" [ "$(rc)" = 0 ]
check "gated files identical" same_files "$ROOT/gated/tiny" "$T/gated"
check "curl was called through the spy" [ -s "$T/curl_args" ]
check "the token is not in curl's argv" sh -c "! grep -q s3cret '$T/curl_args'"
check "the token goes through stdin" grep -q -- "--header @-" "$T/curl_args"
check "the hub saw the Authorization header" grep -q "auth=yes status=200" "$LOG"
echo '{}' > "$CTL"

# A trailing '/' on HF_ENDPOINT is fine.
(export HF_ENDPOINT="$HF_ENDPOINT/"; pull acme/tiny --dir "$T/slash")
check "HF_ENDPOINT with a trailing / works" [ "$(rc)" = 0 ]

# ---- no network --------------------------------------------------------------------------
# A port that was just free: bind one, close it, point HF_ENDPOINT at it.
DEAD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
(export HF_ENDPOINT="http://127.0.0.1:$DEAD"; pull acme/tiny --dir "$T/nonet")
check "no network exits 2" [ "$(rc)" = 2 ]
check "no network message" err_has "cannot reach http://127.0.0.1:$DEAD"
(export HF_ENDPOINT="ftp://127.0.0.1:$DEAD"; pull acme/tiny --dir "$T/nonet")
check "non-http endpoint rejected" err_has "must start with http"

# ---- curl missing ---------------------------------------------------------------------------
mkdir -p "$T/emptybin"
(PATH="$T/emptybin"; pull acme/tiny --dir "$T/nocurl")
check "no curl exits 2" [ "$(rc)" = 2 ]
check "no curl message" err_has "needs the curl program"

# ---- bad repo ids ------------------------------------------------------------------------------
for id in "" noslash "a/b/c" "/abs" "../etc" "acme/.." "acme/x..y" "a b/c" "acme/-rf" ".hidden/x" 'acme/x;ls' "acme/"; do
    pull "$id"
    check "bad id '$id' exits 1" [ "$(rc)" = 1 ]
    check "bad id '$id' has a message" err_has "fs pull:"
done
pull acme/tiny --revision "../x"
check "bad revision exits 1" [ "$(rc)" = 1 ]
pull
check "no repo id exits 1" [ "$(rc)" = 1 ]
check "no request for bad ids reached the hub" sh -c "! grep -q -e 'a/b/c' -e '\.\./' '$LOG'"

echo "e2e_pull: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
