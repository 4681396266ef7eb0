#!/usr/bin/env python3
"""check_checkpoint.py - an independent check of a Qwen3 checkpoint's files.

Standard library only (it runs in the tests). Given a model directory it
checks, without using any fs code:

  * config.json: the fields that fix the tensor shapes;
  * model.safetensors, or the shards listed in model.safetensors.index.json:
    8-byte little-endian header length, header a multiple of 8 bytes padded
    with spaces, tensor names in sorted order with contiguous data_offsets
    from 0 that end exactly at the end of the file, the dtype named by
    config.json's torch_dtype;
  * the tensor set: exactly the HF Qwen3 names and shapes (lm_head.weight
    only when tie_word_embeddings is false), each in exactly one file, the
    index's weight_map and metadata.total_size agreeing with the files.

With --same-as DIR2 it also checks that DIR2 holds the same tensors with
the same bytes (e.g. a sharded and an unsharded copy of one model).

With --stats it also prints mean / std / min / max of every tensor (of the
first --sample elements) so a reader can see the weight distribution.

usage: python3 scripts/check_checkpoint.py DIR [--same-as DIR2] [--stats] [--sample N]
Exit status 0 when every check passes, 1 with one line per problem.

Docs: docs/testing.md
"""
import argparse
import json
import math
import os
import struct
import sys

DTYPES = {"bfloat16": ("BF16", 2), "float16": ("F16", 2), "float32": ("F32", 4)}


def expected_tensors(cfg):
    H, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    Hq, Hkv, D, I = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"], cfg["intermediate_size"]
    t = {"model.embed_tokens.weight": [V, H], "model.norm.weight": [H]}
    for l in range(L):
        p = f"model.layers.{l}."
        t.update({
            p + "input_layernorm.weight": [H],
            p + "self_attn.q_proj.weight": [Hq * D, H],
            p + "self_attn.k_proj.weight": [Hkv * D, H],
            p + "self_attn.v_proj.weight": [Hkv * D, H],
            p + "self_attn.o_proj.weight": [H, Hq * D],
            p + "self_attn.q_norm.weight": [D],
            p + "self_attn.k_norm.weight": [D],
            p + "post_attention_layernorm.weight": [H],
            p + "mlp.gate_proj.weight": [I, H],
            p + "mlp.up_proj.weight": [I, H],
            p + "mlp.down_proj.weight": [H, I],
        })
    if not cfg.get("tie_word_embeddings", False):
        t["lm_head.weight"] = [V, H]
    return t


def decode(raw, dtype):
    if dtype == "F32":
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    halves = struct.unpack(f"<{len(raw) // 2}H", raw)
    if dtype == "BF16":
        return list(struct.unpack(f"<{len(halves)}f", struct.pack(f"<{len(halves)}I", *[h << 16 for h in halves])))
    return list(struct.unpack(f"<{len(halves)}e", raw))


def read_file(path, problems):
    """Header entries of one safetensors file, in header order, after the
    format checks; (entries, data_start) or None."""
    name = os.path.basename(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            problems.append(f"{name}: shorter than 8 bytes")
            return None
        n = struct.unpack("<Q", head)[0]
        if n > size - 8:
            problems.append(f"{name}: header length {n} runs past the end of the file")
            return None
        text = f.read(n)
    if n % 8:
        problems.append(f"{name}: header length {n} is not a multiple of 8")
    stripped = text.rstrip(b" ")
    if not stripped.endswith(b"}"):
        problems.append(f"{name}: header is not a JSON object padded with spaces")
    try:
        header = json.loads(stripped)
    except ValueError as ex:
        problems.append(f"{name}: header is not JSON: {ex}")
        return None
    entries = [(k, v) for k, v in header.items() if k != "__metadata__"]
    names = [k for k, _ in entries]
    if names != sorted(names):
        problems.append(f"{name}: tensor names are not in sorted order")
    off = 0
    for k, v in entries:
        b, e = v["data_offsets"]
        if b != off:
            problems.append(f"{name}: {k}: data starts at {b}, expected {off} (gap or overlap)")
        off = e
    if off != size - 8 - n:
        problems.append(f"{name}: data section is {size - 8 - n} bytes, tensors cover {off}")
    return entries, 8 + n


def check_dir(d, problems):
    """All the checks of one model directory; returns (seen, files, total,
    esize) where seen maps tensor -> (file, header entry, data start)."""
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("torch_dtype") not in DTYPES:
        sys.exit(f"config.json: torch_dtype {cfg.get('torch_dtype')!r} is not one of {sorted(DTYPES)}")
    st_dtype, esize = DTYPES[cfg["torch_dtype"]]
    want = expected_tensors(cfg)

    index_path = os.path.join(d, "model.safetensors.index.json")
    index = None
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
        files = sorted(set(index["weight_map"].values()))
    else:
        files = ["model.safetensors"]

    seen = {}   # tensor -> (file, entry, data_start)
    total = 0
    for fn in files:
        r = read_file(os.path.join(d, fn), problems)
        if r is None:
            continue
        entries, start = r
        for k, v in entries:
            if k in seen:
                problems.append(f"{k}: in both {seen[k][0]} and {fn}")
            seen[k] = (fn, v, start)
            if v["dtype"] != st_dtype:
                problems.append(f"{fn}: {k}: dtype {v['dtype']}, config says {st_dtype}")
            if k not in want:
                problems.append(f"{fn}: unexpected tensor {k}")
            elif v["shape"] != want[k]:
                problems.append(f"{fn}: {k}: shape {v['shape']}, expected {want[k]}")
            b, e = v["data_offsets"]
            if e - b != math.prod(v["shape"]) * esize:
                problems.append(f"{fn}: {k}: {e - b} bytes for shape {v['shape']}")
            total += e - b
    for k in sorted(set(want) - set(seen)):
        problems.append(f"missing tensor {k}")
    if index is not None:
        if index.get("metadata", {}).get("total_size") != total:
            problems.append(f"index: total_size {index.get('metadata', {}).get('total_size')}, files hold {total}")
        for k, fn in index["weight_map"].items():
            if k in seen and seen[k][0] != fn:
                problems.append(f"index: {k} mapped to {fn}, found in {seen[k][0]}")
        if set(index["weight_map"]) != set(seen):
            problems.append("index: weight_map and the files list different tensors")
        if list(index["weight_map"]) != sorted(index["weight_map"]):
            problems.append("index: weight_map is not sorted")
    return seen, files, total, esize


def tensor_bytes(d, seen, k, limit=None):
    fn, v, start = seen[k]
    b, e = v["data_offsets"]
    with open(os.path.join(d, fn), "rb") as f:
        f.seek(start + b)
        return f.read(e - b if limit is None else min(e - b, limit))


def main():
    ap = argparse.ArgumentParser(description="check a Qwen3 checkpoint's files (stdlib only)")
    ap.add_argument("dir")
    ap.add_argument("--same-as", metavar="DIR2", help="also require DIR2 to hold identical tensors")
    ap.add_argument("--stats", action="store_true", help="print mean/std/min/max per tensor")
    ap.add_argument("--sample", type=int, default=200000, help="elements per tensor used by --stats")
    a = ap.parse_args()
    problems = []
    seen, files, total, esize = check_dir(a.dir, problems)
    if a.same_as and not problems:
        other = check_dir(a.same_as, problems)[0]
        if set(other) != set(seen):
            problems.append(f"{a.same_as} holds different tensor names")
        else:
            for k in sorted(seen):
                if seen[k][1]["dtype"] != other[k][1]["dtype"] or seen[k][1]["shape"] != other[k][1]["shape"] \
                        or tensor_bytes(a.dir, seen, k) != tensor_bytes(a.same_as, other, k):
                    problems.append(f"{k}: differs from {a.same_as}")

    if a.stats and not problems:
        print(f"{'tensor':<52} {'shape':<14} {'mean':>9} {'std':>9} {'min':>9} {'max':>9}")
        for k in sorted(seen):
            v = seen[k][1]
            raw = tensor_bytes(a.dir, seen, k, a.sample * esize)
            x = decode(raw, v["dtype"])
            m = sum(x) / len(x)
            sd = math.sqrt(sum((y - m) ** 2 for y in x) / len(x))
            print(f"{k:<52} {str(v['shape']):<14} {m:9.4f} {sd:9.4f} {min(x):9.4f} {max(x):9.4f}")

    for p in problems:
        print(f"check_checkpoint: {a.dir}: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check_checkpoint: {a.dir}: ok ({len(seen)} tensors, {len(files)} file(s), {total} bytes)")


if __name__ == "__main__":
    main()
