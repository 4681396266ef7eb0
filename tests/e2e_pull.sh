#!/bin/sh
# e2e_pull.sh - `fs pull` against tests/mock_hub.py on 127.0.0.1: success,
# up to date, resume after a cut, server ignoring Range, 404s, corrupt
# download, cut or garbage files sent with no length and no hash (never
# promoted; a cut safetensors resumes), no network, gated repo with/without
# HF_TOKEN, bad repo ids, sharded checkpoint, curl missing; the other
# architectures by their short names (a gated Llama 3.2 with 401 / 403 /
# the right token, a Qwen2.5). Loopback only; a few seconds.
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
    # pull checks each safetensors header against the file's length, so the
    # bytes are random but the header is real: two F32 tensors per file.
    def st(path, names, nbytes):
        hdr, off = {}, 0
        for nm in names:
            hdr[nm] = {"dtype": "F32", "shape": [nbytes // 4], "data_offsets": [off, off + nbytes // 4 * 4]}
            off += nbytes // 4 * 4
        h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
        open(path, "wb").write(len(h).to_bytes(8, "little") + h + rnd.randbytes(off))
    if shards == 1:
        st(os.path.join(d, "model.safetensors"), ["t.weight", "u.weight"], 75000)
    else:
        wm = {}
        for i in range(shards):
            f = "model-%05d-of-%05d.safetensors" % (i + 1, shards)
            st(os.path.join(d, f), ["t%d.weight" % i, "u%d.weight" % i], 20000 + 4 * i)
            wm["t%d.weight" % i] = f; wm["u%d.weight" % i] = f
        json.dump({"metadata": {}, "weight_map": wm}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
EOF
fi
cp -r "$ROOT/acme/tiny" "$ROOT/gated/tiny"
# Small random checkpoints of the other architectures, under the repo ids
# `fs pull llama3.2-1b` and `fs pull qwen2.5-0.5b` stand for.
mkdir -p "$ROOT/meta-llama" "$ROOT/Qwen"
"$FS_BIN" mkmodel --config "$HERE/golden/forward/llama3_rope_tied/config.json" --tokenizer "$T/tok" \
    --out "$ROOT/meta-llama/Llama-3.2-1B-Instruct" >/dev/null &&
"$FS_BIN" mkmodel --config "$HERE/golden/forward/qwen2_bias_tied/config.json" --tokenizer "$T/tok" \
    --out "$ROOT/Qwen/Qwen2.5-0.5B-Instruct" >/dev/null || { echo "FAIL: fs mkmodel (llama, qwen2)"; exit 1; }
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

# ---- no length, no hash: a cut or garbage file is never promoted ---------------------
# tokenizer.json never has a hash on the hub, and a server may send no
# Content-Length either; model.safetensors outside LFS may have neither. A
# body cut short then looks complete to curl: only the content can tell.
# plain_pull FILE CONTROL DIR: pull with FILE served plain under CONTROL
plain_pull() {
    echo "$2" > "$CTL"
    pull acme/tiny --dir "$3"
    echo '{}' > "$CTL"
}
for f in tokenizer.json config.json tokenizer_config.json generation_config.json; do
    [ -f "$ROOT/acme/tiny/$f" ] || continue
    plain_pull $f "{\"plain\": [\"$f\"], \"drop\": {\"$f\": 20}}" "$T/cut_$f"
    check "cut $f (no length): exits 2" [ "$(rc)" = 2 ]
    check "cut $f (no length): says why ($(cat "$T/err"))" err_has "corrupt download: $f is not valid JSON"
    check "cut $f (no length): not promoted" [ ! -e "$T/cut_$f/$f" ]
    check "cut $f (no length): .part deleted" no_parts "$T/cut_$f"
    plain_pull $f "{\"plain\": [\"$f\"], \"garbage\": {\"$f\": \"<html>Bad gateway</html>\"}}" "$T/junk_$f"
    check "garbage $f: exits 2" [ "$(rc)" = 2 ]
    check "garbage $f: says why ($(cat "$T/err"))" err_has "corrupt download: $f is not valid JSON"
    check "garbage $f: not promoted" [ ! -e "$T/junk_$f/$f" ]
    pull acme/tiny --dir "$T/cut_$f"
    check "cut $f: the next pull fetches it ($(cat "$T/err"))" [ "$(rc)" = 0 ]
    check "cut $f: then identical" same_files "$ROOT/acme/tiny" "$T/cut_$f"
done
plain_pull tokenizer.json '{"plain": ["tokenizer.json"], "garbage": {"tokenizer.json": "[1, 2]"}}' "$T/arr"
check "tokenizer.json that is JSON but not an object: refused" err_has "tokenizer.json is JSON but not an object"

# A cut safetensors with a whole header: kept as .part, resumed next time.
plain_pull model.safetensors '{"plain": ["model.safetensors"], "drop": {"model.safetensors": 50000}}' "$T/stcut"
check "cut model.safetensors (no length): exits 2" [ "$(rc)" = 2 ]
check "cut model.safetensors: says incomplete ($(cat "$T/err"))" err_has "incomplete download: model.safetensors is cut short: 50000 bytes, its header says"
check "cut model.safetensors: not promoted" [ ! -e "$T/stcut/model.safetensors" ]
check "cut model.safetensors: the .part is kept" [ "$(wc -c < "$T/stcut/model.safetensors.part")" -eq 50000 ]
: > "$LOG"
plain_pull model.safetensors '{"plain": ["model.safetensors"]}' "$T/stcut"
check "cut model.safetensors: resumed ($(cat "$T/err"))" [ "$(rc)" = 0 ]
check "cut model.safetensors: from byte 50000" grep -q 'range=bytes=50000-.*status=206' "$LOG"
check "cut model.safetensors: then identical" same_files "$ROOT/acme/tiny" "$T/stcut"
# Cut inside its header, or not a safetensors file at all: deleted.
plain_pull model.safetensors '{"plain": ["model.safetensors"], "drop": {"model.safetensors": 100}}' "$T/sthead"
check "model.safetensors cut in its header: corrupt" err_has "corrupt download: model.safetensors is 100 bytes, and its first 8 bytes announce a header of"
check "model.safetensors cut in its header: .part deleted" no_parts "$T/sthead"
plain_pull model.safetensors '{"plain": ["model.safetensors"], "garbage": {"model.safetensors": "<html>Service unavailable</html>"}}' "$T/stjunk"
check "garbage model.safetensors: exits 2" [ "$(rc)" = 2 ]
check "garbage model.safetensors: says why ($(cat "$T/err"))" err_has "corrupt download: model.safetensors"
check "garbage model.safetensors: not promoted" [ ! -e "$T/stjunk/model.safetensors" ]
check "garbage model.safetensors: .part deleted" no_parts "$T/stjunk"
# A sharded checkpoint's index, cut: refused before any shard is fetched.
echo '{"plain": ["model.safetensors.index.json"], "drop": {"model.safetensors.index.json": 40}}' > "$CTL"
pull acme/sharded --dir "$T/idxcut"
echo '{}' > "$CTL"
check "cut index: exits 2" [ "$(rc)" = 2 ]
check "cut index: says why ($(cat "$T/err"))" err_has "corrupt download: model.safetensors.index.json is not valid JSON"
check "cut index: not promoted, no shard fetched" sh -c "! ls '$T/idxcut' | grep -q -e 'index.json\$' -e '^model-'"

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

# ---- the other architectures, by short name; a gated repo as the hub gates Llama ----------
echo '{"gated": {"meta-llama/Llama-3.2-1B-Instruct": "llama-ok"}}' > "$CTL"
(unset HF_TOKEN; pull llama3.2-1b --dir "$T/llama")
check "gated llama without token exits 2" [ "$(rc)" = 2 ]
check "gated llama: says gated, licence, HF_TOKEN ($(cat "$T/err"))" \
    err_has "meta-llama/Llama-3.2-1B-Instruct: this repo is gated (HTTP 401): accept its licence on huggingface.co/meta-llama/Llama-3.2-1B-Instruct and set HF_TOKEN"
check "gated llama without token: no file kept" [ ! -e "$T/llama/config.json" ]
(export HF_TOKEN=not-accepted; pull llama3.2-1b --dir "$T/llama")
check "gated llama, token without access: exits 2" [ "$(rc)" = 2 ]
check "gated llama, token without access: 403 explained ($(cat "$T/err"))" \
    err_has "access denied (HTTP 403) although HF_TOKEN is set: this repo is gated: accept its licence"
(export HF_TOKEN=llama-ok; pull llama3.2-1b --dir "$T/llama")
check "gated llama with its token exits 0 ($(cat "$T/err"))" [ "$(rc)" = 0 ]
check "gated llama files identical" same_files "$ROOT/meta-llama/Llama-3.2-1B-Instruct" "$T/llama"
check "llama loads as LlamaForCausalLM" sh -c "'$FS_BIN' inspect '$T/llama' | grep -q 'architecture LlamaForCausalLM'"
echo '{}' > "$CTL"
pull qwen2.5-0.5b --dir "$T/qwen2"
check "qwen2.5-0.5b by short name exits 0 ($(cat "$T/err"))" [ "$(rc)" = 0 ]
check "qwen2 loads with its biases" sh -c "'$FS_BIN' inspect '$T/qwen2' | grep -q 'q/k/v biases'"
check "short name pulled the real repo id" grep -q "GET /Qwen/Qwen2.5-0.5B-Instruct/resolve/main/config.json" "$LOG"
"$FS_BIN" pull --list > "$T/list"
check "pull --list names the gated llama" grep -q "llama3.2-1b.*meta-llama/Llama-3.2-1B-Instruct.*LlamaForCausalLM.*gated" "$T/list"

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
