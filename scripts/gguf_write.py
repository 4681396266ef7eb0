#!/usr/bin/env python3
"""gguf_write.py - a measuring tool, not part of the engine: convert a Qwen3
safetensors checkpoint (bf16 or f32, e.g. one `fs mkmodel` made) and its
tokenizer.json into a bf16 GGUF file that llama.cpp loads, so that llama.cpp
and fs can be run side by side on the same random weights.

    python3 scripts/gguf_write.py MODEL_DIR OUT.gguf

Standard library only (the dev VM has no numpy or torch for llama.cpp's own
convert_hf_to_gguf.py). Quantize the result with llama.cpp's
`llama-quantize --pure OUT.gguf OUT-q8_0.gguf q8_0` (--pure: every matrix,
the tied embedding included, in the one format, as `fs quantize` does).

What it writes (GGUF v3, little endian): the Qwen3 hyperparameters under
"qwen3.*", the tokenizer as llama.cpp's "gpt2" (byte-level BPE) model with
the "qwen2" pre-tokenizer, every matrix as BF16 with its Hugging Face
tensor renamed to llama.cpp's name, the norms as F32. Only the Qwen3 dense
layout is handled; anything else is refused by name.

Docs: docs/cpu.md
"""
import json
import struct
import sys

GGUF_MAGIC = b"GGUF"
ALIGN = 32
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9
GGML_F32, GGML_BF16 = 0, 30
FTYPE_MOSTLY_BF16 = 32
TOK_NORMAL, TOK_CONTROL, TOK_USER, TOK_UNUSED = 1, 3, 4, 5

LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def die(msg):
    sys.stderr.write("gguf_write: %s\n" % msg)
    sys.exit(2)


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    p = hf.split(".")
    if len(p) > 3 and p[0] == "model" and p[1] == "layers":
        rest = ".".join(p[3:])
        if rest in LAYER_NAMES:
            return "blk.%d.%s" % (int(p[2]), LAYER_NAMES[rest])
    die("tensor %s is not part of the Qwen3 layout this tool converts" % hf)


def read_safetensors(path):
    f = open(path, "rb")
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return f, 8 + n, header


def bf16_to_f32_bytes(raw):
    out = bytearray(len(raw) * 2)
    for i in range(len(raw) // 2):
        out[4 * i + 2:4 * i + 4] = raw[2 * i:2 * i + 2]
    return bytes(out)


def f32_to_bf16_bytes(raw):
    """Round to nearest even, as torch's .to(bfloat16) does (no NaN expected
    in a random checkpoint; one is refused)."""
    n = len(raw) // 4
    words = struct.unpack("<%dI" % n, raw)
    out = []
    for w in words:
        if (w & 0x7F800000) == 0x7F800000 and (w & 0x7FFFFF):
            die("NaN in an f32 tensor")
        out.append(((w + 0x7FFF + ((w >> 16) & 1)) >> 16) & 0xFFFF)
    return struct.pack("<%dH" % n, *out)


class Writer:
    def __init__(self):
        self.kv = bytearray()
        self.n_kv = 0

    @staticmethod
    def s(x):
        b = x.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def add(self, key, typ, val):
        self.kv += self.s(key) + struct.pack("<I", typ)
        if typ == T_STR:
            self.kv += self.s(val)
        elif typ == T_U32:
            self.kv += struct.pack("<I", val)
        elif typ == T_I32:
            self.kv += struct.pack("<i", val)
        elif typ == T_F32:
            self.kv += struct.pack("<f", val)
        elif typ == T_BOOL:
            self.kv += struct.pack("<B", 1 if val else 0)
        else:
            raise ValueError(typ)
        self.n_kv += 1

    def add_arr(self, key, elem, vals):
        self.kv += self.s(key) + struct.pack("<II", T_ARR, elem) + struct.pack("<Q", len(vals))
        if elem == T_STR:
            self.kv += b"".join(self.s(v) for v in vals)
        elif elem == T_I32:
            self.kv += struct.pack("<%di" % len(vals), *vals)
        else:
            raise ValueError(elem)
        self.n_kv += 1


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: gguf_write.py MODEL_DIR OUT.gguf\n")
        sys.exit(1)
    mdir, out = sys.argv[1], sys.argv[2]
    cfg = json.load(open(mdir + "/config.json"))
    if cfg.get("model_type") != "qwen3":
        die("model_type %r: only qwen3 is handled" % cfg.get("model_type"))
    tok = json.load(open(mdir + "/tokenizer.json"))
    f, data0, header = read_safetensors(mdir + "/model.safetensors")

    w = Writer()
    w.add("general.architecture", T_STR, "qwen3")
    w.add("general.name", T_STR, "fs random qwen3")
    w.add("general.file_type", T_U32, FTYPE_MOSTLY_BF16)
    w.add("general.alignment", T_U32, ALIGN)
    a = "qwen3."
    w.add(a + "block_count", T_U32, cfg["num_hidden_layers"])
    w.add(a + "context_length", T_U32, cfg["max_position_embeddings"])
    w.add(a + "embedding_length", T_U32, cfg["hidden_size"])
    w.add(a + "feed_forward_length", T_U32, cfg["intermediate_size"])
    w.add(a + "attention.head_count", T_U32, cfg["num_attention_heads"])
    w.add(a + "attention.head_count_kv", T_U32, cfg["num_key_value_heads"])
    w.add(a + "attention.key_length", T_U32, cfg["head_dim"])
    w.add(a + "attention.value_length", T_U32, cfg["head_dim"])
    w.add(a + "rope.freq_base", T_F32, float(cfg["rope_theta"]))
    w.add(a + "attention.layer_norm_rms_epsilon", T_F32, float(cfg["rms_norm_eps"]))

    # The vocabulary: ids 0 .. V-1, the BPE vocab, then the added tokens,
    # then padding up to the embedding's rows (as llama.cpp's converter does).
    V = cfg["vocab_size"]
    tokens = [None] * V
    types = [TOK_UNUSED] * V
    for t, i in tok["model"]["vocab"].items():
        if i < V:
            tokens[i], types[i] = t, TOK_NORMAL
    for at in tok.get("added_tokens", []):
        if at["id"] < V:
            tokens[at["id"]] = at["content"]
            types[at["id"]] = TOK_CONTROL if at.get("special") else TOK_USER
    for i in range(V):
        if tokens[i] is None:
            tokens[i] = "[PAD%d]" % i
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w.add("tokenizer.ggml.model", T_STR, "gpt2")
    w.add("tokenizer.ggml.pre", T_STR, "qwen2")
    w.add_arr("tokenizer.ggml.tokens", T_STR, tokens)
    w.add_arr("tokenizer.ggml.token_type", T_I32, types)
    w.add_arr("tokenizer.ggml.merges", T_STR, merges)
    w.add("tokenizer.ggml.eos_token_id", T_U32, cfg["eos_token_id"])
    w.add("tokenizer.ggml.bos_token_id", T_U32, cfg["bos_token_id"])
    w.add("tokenizer.ggml.padding_token_id", T_U32, cfg["bos_token_id"])
    w.add("tokenizer.ggml.add_bos_token", T_BOOL, False)

    # Tensor infos, then the data, each tensor aligned to ALIGN bytes.
    tied = cfg.get("tie_word_embeddings", False)
    infos, plan, off = bytearray(), [], 0
    for hf in sorted(header):
        if tied and hf == "lm_head.weight":
            continue
        h = header[hf]
        if h["dtype"] not in ("BF16", "F32"):
            die("%s is %s: convert bf16 or f32 checkpoints" % (hf, h["dtype"]))
        shape = h["shape"]
        n = 1
        for d in shape:
            n *= d
        gt = GGML_F32 if len(shape) == 1 else GGML_BF16
        nbytes = n * (4 if gt == GGML_F32 else 2)
        infos += w.s(gguf_name(hf)) + struct.pack("<I", len(shape))
        infos += b"".join(struct.pack("<Q", d) for d in reversed(shape))
        infos += struct.pack("<IQ", gt, off)
        plan.append((hf, h, gt, off, nbytes))
        off += (nbytes + ALIGN - 1) // ALIGN * ALIGN

    with open(out, "wb") as o:
        o.write(GGUF_MAGIC + struct.pack("<IQQ", 3, len(plan), w.n_kv))
        o.write(w.kv)
        o.write(infos)
        pad = (-o.tell()) % ALIGN
        o.write(b"\0" * pad)
        base = o.tell()
        for hf, h, gt, toff, nbytes in plan:
            o.write(b"\0" * (base + toff - o.tell()))
            b0, b1 = h["data_offsets"]
            left, pos = b1 - b0, data0 + b0
            written = 0
            while left:
                f.seek(pos)
                chunk = f.read(min(left, 1 << 26))
                pos += len(chunk)
                left -= len(chunk)
                if h["dtype"] == "BF16" and gt == GGML_F32:
                    chunk = bf16_to_f32_bytes(chunk)
                elif h["dtype"] == "F32" and gt == GGML_BF16:
                    chunk = f32_to_bf16_bytes(chunk)
                o.write(chunk)
                written += len(chunk)
            if written != nbytes:
                die("%s: wrote %d bytes, expected %d" % (hf, written, nbytes))
    print("gguf_write: %s (%d tensors, %d keys)" % (out, len(plan), w.n_kv))


if __name__ == "__main__":
    main()
