#!/bin/sh
# e2e_mkmodel.sh - `fs mkmodel`: the random checkpoint generator.
#
# 1. Layout: tied, untied, f16/f32 and sharded checkpoints pass the
#    independent stdlib checker (scripts/check_checkpoint.py: header format,
#    sorted names, offsets, exact HF tensor set and shapes, index), and the
#    sharded copy holds byte-identical tensors to the single-file one.
# 2. Determinism: the same seed gives identical files (cmp), a different
#    seed different ones, and a pinned sha256 of one small checkpoint
#    proves the bytes do not depend on the machine or compiler.
# 3. config.json / generation_config.json / tokenizer copies.
# 4. `fs inspect` accepts the checkpoints (skipped while inspect is absent).
# 5. Bad input: exit 2 (bad config) or 1 (usage) with a one-line
#    "fs mkmodel: ..." message.
# Docs: docs/testing.md
FS_BIN=${FS_BIN:-build/fs}
CHECK="python3 scripts/check_checkpoint.py"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fs-e2e-mkmodel.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fail=0
die() { echo "FAIL: $*"; fail=1; }

# A small Qwen3: H=32, Hq=4, Hkv=2 (GQA 2), D=16, I=64, L=2, V=128.
cat >"$TMP/tied.json" <<'EOF'
{
  "architectures": ["Qwen3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "head_dim": 16,
  "hidden_act": "silu",
  "hidden_size": 32,
  "intermediate_size": 64,
  "max_position_embeddings": 256,
  "model_type": "qwen3",
  "num_attention_heads": 4,
  "num_hidden_layers": 2,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "vocab_size": 128
}
EOF
sed 's/"tie_word_embeddings": true/"tie_word_embeddings": false/' "$TMP/tied.json" >"$TMP/untied.json"

mk() { "$FS_BIN" mkmodel "$@" 2>"$TMP/err" || die "fs mkmodel $* -> $(cat "$TMP/err")"; }

# --- 1. layout ---------------------------------------------------------
mk --config "$TMP/tied.json" --out "$TMP/a" --seed 1
mk --config "$TMP/untied.json" --out "$TMP/u" --seed 1
mk --config "$TMP/tied.json" --out "$TMP/h" --seed 1 --dtype f16
mk --config "$TMP/untied.json" --out "$TMP/f" --seed 1 --dtype f32
mk --config "$TMP/tied.json" --out "$TMP/s" --seed 1 --shards 3
for d in a u h f s; do
    $CHECK "$TMP/$d" >/dev/null || die "check_checkpoint $d"
done
grep -q '"lm_head.weight"' "$TMP/u/model.safetensors" || die "untied checkpoint has no lm_head.weight"
grep -q '"lm_head.weight"' "$TMP/a/model.safetensors" && die "tied checkpoint has lm_head.weight"
for i in 1 2 3; do
    [ -f "$TMP/s/model-0000$i-of-00003.safetensors" ] || die "shard $i of 3 missing"
done
[ -f "$TMP/s/model.safetensors.index.json" ] || die "sharded checkpoint has no index"
[ -f "$TMP/s/model.safetensors" ] && die "sharded checkpoint also has model.safetensors"
$CHECK "$TMP/s" --same-as "$TMP/a" >/dev/null || die "sharded tensors differ from the single file"
# Re-using a directory: the old weights go, so the directory holds one model.
mk --config "$TMP/tied.json" --out "$TMP/s" --seed 1
[ -f "$TMP/s/model.safetensors.index.json" ] && die "stale index left behind"
[ -f "$TMP/s/model-00001-of-00003.safetensors" ] && die "stale shard left behind"
cmp -s "$TMP/s/model.safetensors" "$TMP/a/model.safetensors" || die "regenerated file differs"

# --- 2. determinism ----------------------------------------------------
mk --config "$TMP/tied.json" --out "$TMP/b" --seed 1
for f in model.safetensors config.json generation_config.json; do
    cmp -s "$TMP/a/$f" "$TMP/b/$f" || die "same seed, different $f"
done
mk --config "$TMP/tied.json" --out "$TMP/c" --seed 2
cmp -s "$TMP/a/model.safetensors" "$TMP/c/model.safetensors" && die "seeds 1 and 2 gave identical weights"
mk --config "$TMP/tied.json" --out "$TMP/d" --seed 1 --scale 1
cmp -s "$TMP/a/model.safetensors" "$TMP/d/model.safetensors" && die "--scale 1 and 2 gave identical weights"
# Pinned: the bytes of this checkpoint (format + PRNG + distribution). If
# this changes on purpose, every golden case must be regenerated with
# scripts/oracle_forward.py.
PIN=d05db22020e0c84edd52a416d413d5687b959e79bb10a238684897584f5fd530
if command -v sha256sum >/dev/null 2>&1; then
    got=$(sha256sum "$TMP/a/model.safetensors" | cut -d' ' -f1)
    [ "$got" = "$PIN" ] || die "model.safetensors sha256 $got, pinned $PIN"
else
    echo "e2e_mkmodel: no sha256sum, pinned-hash check skipped"
fi

# --- 3. the json files and the tokenizer ---------------------------------
python3 - "$TMP" <<'EOF' || die "config.json / generation_config.json content"
import json, sys
t = sys.argv[1]
src = json.load(open(t + "/tied.json"))
for d, dt in (("a", "bfloat16"), ("h", "float16")):
    c = json.load(open(f"{t}/{d}/config.json"))
    assert c["torch_dtype"] == dt, c["torch_dtype"]
    assert c["architectures"] == ["Qwen3ForCausalLM"] and c["model_type"] == "qwen3"
    for k, v in src.items():
        if k != "torch_dtype":
            assert c[k] == v and type(c[k]) is type(v), k   # 0.0 stays a float
g = json.load(open(t + "/a/generation_config.json"))
assert g["eos_token_id"] == [151645, 151643] and g["bos_token_id"] == 151643, g
assert g["do_sample"] is True and g["temperature"] == 0.6 and g["top_k"] == 20 and g["top_p"] == 0.95, g
EOF
# A generation_config.json beside the input config is copied instead.
mkdir "$TMP/cfgdir"
cp "$TMP/tied.json" "$TMP/cfgdir/config.json"
printf '{"temperature": 0.25}\n' >"$TMP/cfgdir/generation_config.json"
mk --config "$TMP/cfgdir/config.json" --out "$TMP/g" --seed 1
cmp -s "$TMP/cfgdir/generation_config.json" "$TMP/g/generation_config.json" || die "generation_config.json not copied"
mkdir "$TMP/tok"
printf '{"model": {"type": "BPE"}}\n' >"$TMP/tok/tokenizer.json"
printf '{"eos_token": "<|im_end|>"}\n' >"$TMP/tok/tokenizer_config.json"
mk --config "$TMP/tied.json" --out "$TMP/t" --seed 1 --tokenizer "$TMP/tok"
for f in tokenizer.json tokenizer_config.json; do
    cmp -s "$TMP/tok/$f" "$TMP/t/$f" || die "$f not copied"
done

# --- 4. fs inspect -----------------------------------------------------
if "$FS_BIN" inspect --help >/dev/null 2>&1; then
    for d in a u h f; do
        "$FS_BIN" inspect -m "$TMP/$d" >"$TMP/out" 2>&1 || die "fs inspect rejects $d: $(cat "$TMP/out")"
    done
    mk --config "$TMP/tied.json" --out "$TMP/s" --seed 1 --shards 2
    "$FS_BIN" inspect -m "$TMP/s" >"$TMP/out" 2>&1 || die "fs inspect rejects the sharded checkpoint: $(cat "$TMP/out")"
else
    echo "e2e_mkmodel: fs inspect not available, inspect checks skipped"
fi

# --- 5. bad input ------------------------------------------------------
# expect CODE PATTERN ARGS...: fs mkmodel must fail with CODE and a message.
expect() {
    code=$1; pat=$2; shift 2
    "$FS_BIN" mkmodel "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -ne "$code" ] || ! grep -q "^fs mkmodel: .*$pat" "$TMP/err"; then
        echo "FAIL: fs mkmodel $* -> exit $rc (want $code), stderr: $(cat "$TMP/err")"
        fail=1
    fi
}
bad() { # bad NAME SED-EXPR: a config with one change
    sed "$2" "$TMP/tied.json" >"$TMP/$1.json"
}
bad nohidden '/"hidden_size"/d'
expect 2 'missing "hidden_size"' --config "$TMP/nohidden.json" --out "$TMP/x"
bad nohead '/"head_dim"/d'
expect 2 'missing "head_dim"' --config "$TMP/nohead.json" --out "$TMP/x"
bad gqa 's/"num_key_value_heads": 2/"num_key_value_heads": 3/'
expect 2 'not a multiple of num_key_value_heads' --config "$TMP/gqa.json" --out "$TMP/x"
bad neg 's/"vocab_size": 128/"vocab_size": -5/'
expect 2 '"vocab_size" must be an integer' --config "$TMP/neg.json" --out "$TMP/x"
bad frac 's/"hidden_size": 32/"hidden_size": 32.5/'
expect 2 '"hidden_size" must be an integer' --config "$TMP/frac.json" --out "$TMP/x"
bad odd 's/"head_dim": 16/"head_dim": 15/'
expect 2 'must be even' --config "$TMP/odd.json" --out "$TMP/x"
bad gpt2 's/"Qwen3ForCausalLM"/"GPT2LMHeadModel"/; s/"model_type": "qwen3"/"model_type": "gpt2"/'
expect 2 'unsupported architecture GPT2LMHeadModel' --config "$TMP/gpt2.json" --out "$TMP/x"
bad lbias 's/"Qwen3ForCausalLM"/"LlamaForCausalLM"/; s/"model_type": "qwen3"/"model_type": "llama"/; s/"attention_bias": false/"attention_bias": true/'
expect 2 'attention_bias must be false' --config "$TMP/lbias.json" --out "$TMP/x"

# The other architectures (src/arch.c): Llama without QK-norm, head_dim
# defaulting to H/Hq; Qwen2 with q/k/v biases; each with its family's
# generation_config.json, or NAME.generation_config.json beside NAME.json.
sed 's/"Qwen3ForCausalLM"/"LlamaForCausalLM"/; s/"model_type": "qwen3"/"model_type": "llama"/; /"head_dim"/d' \
    "$TMP/tied.json" >"$TMP/llama.json"
sed 's/"Qwen3ForCausalLM"/"Qwen2ForCausalLM"/; s/"model_type": "qwen3"/"model_type": "qwen2"/; /"attention_bias"/d' \
    "$TMP/tied.json" >"$TMP/qwen2.json"
echo '{"eos_token_id": 2}' >"$TMP/qwen2.generation_config.json"
"$FS_BIN" mkmodel --config "$TMP/llama.json" --out "$TMP/llama" >/dev/null || die "mkmodel llama"
"$FS_BIN" mkmodel --config "$TMP/qwen2.json" --out "$TMP/qwen2" >/dev/null || die "mkmodel qwen2"
python3 - "$TMP" <<'PY' || fail=1
import json, struct, sys
t = sys.argv[1]
def names(d):
    with open(f"{t}/{d}/model.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return {k: v["shape"] for k, v in json.loads(f.read(n)).items() if k != "__metadata__"}
ll, q2 = names("llama"), names("qwen2")
bad = []
if any("q_norm" in k or "bias" in k for k in ll): bad.append("llama has q_norm or biases")
if ll["model.layers.0.self_attn.q_proj.weight"] != [32, 32]: bad.append("llama head_dim is not H/Hq = 8")
if any("q_norm" in k for k in q2): bad.append("qwen2 has q_norm")
if q2.get("model.layers.1.self_attn.k_proj.bias") != [32] or q2.get("model.layers.0.self_attn.q_proj.bias") != [64]:
    bad.append("qwen2 biases missing or misshapen: %s" % sorted(k for k in q2 if "bias" in k))
c = json.load(open(f"{t}/llama/config.json"))
if c["architectures"] != ["LlamaForCausalLM"] or c["model_type"] != "llama": bad.append("llama config.json names")
if json.load(open(f"{t}/llama/generation_config.json"))["eos_token_id"] != [128001, 128008, 128009]:
    bad.append("llama did not get Llama 3's generation_config")
if json.load(open(f"{t}/qwen2/generation_config.json")) != {"eos_token_id": 2}:
    bad.append("qwen2 did not get qwen2.generation_config.json")
for b in bad: print("FAIL: mkmodel architectures:", b)
sys.exit(1 if bad else 0)
PY
"$FS_BIN" inspect "$TMP/qwen2" | grep -q "Qwen2ForCausalLM.*q/k/v biases" || die "fs inspect qwen2"
bad tie 's/"tie_word_embeddings": true/"tie_word_embeddings": "yes"/'
expect 2 'tie_word_embeddings' --config "$TMP/tie.json" --out "$TMP/x"
bad eps 's/"rms_norm_eps": 1e-06/"rms_norm_eps": 0/'
expect 2 'rms_norm_eps' --config "$TMP/eps.json" --out "$TMP/x"
printf '{"hidden_size": 32,' >"$TMP/trunc.json"
expect 2 'JSON error' --config "$TMP/trunc.json" --out "$TMP/x"
printf '[1, 2]' >"$TMP/array.json"
expect 2 'JSON object' --config "$TMP/array.json" --out "$TMP/x"
expect 2 'nonexistent' --config "$TMP/nonexistent.json" --out "$TMP/x"
expect 2 'more than the' --config "$TMP/tied.json" --out "$TMP/x" --shards 1000
: >"$TMP/file"
expect 2 'not a directory' --config "$TMP/tied.json" --out "$TMP/file"
expect 2 'tokenizer.json' --config "$TMP/tied.json" --out "$TMP/x" --tokenizer "$TMP/nonexistent"
expect 1 'required' --config "$TMP/tied.json"
expect 1 '--dtype' --config "$TMP/tied.json" --out "$TMP/x" --dtype int8
expect 1 '--seed' --config "$TMP/tied.json" --out "$TMP/x" --seed -1
expect 1 '--shards' --config "$TMP/tied.json" --out "$TMP/x" --shards 0
expect 1 '--scale' --config "$TMP/tied.json" --out "$TMP/x" --scale nan
expect 1 'unknown option' --config "$TMP/tied.json" --out "$TMP/x" --frobnicate
"$FS_BIN" mkmodel --help >"$TMP/out" 2>&1 && grep -q 'usage: fs mkmodel' "$TMP/out" || die "fs mkmodel --help"

[ "$fail" -eq 0 ] && echo "e2e_mkmodel: ok"
exit "$fail"
