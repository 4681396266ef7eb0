#!/usr/bin/env python3
"""oracle_rope.py - RoPE frequency tables of the real configs, from transformers.

For each configs/*.json (a model's real config.json, see configs/), build
the model family's own rotary embedding module from the config (no weights:
LlamaRotaryEmbedding, Qwen2RotaryEmbedding, Qwen3RotaryEmbedding) and record
its inv_freq buffer - Llama 3's rescaled table where rope_scaling says
"llama3" - as float32 bit patterns (hex), with its attention scaling.
tests/test_forward_golden.c loads each config with fs and requires
arch.c's fs_rope_inv_freq to give the same bits.

Runs where torch + transformers are installed (not in CI):
  python3 scripts/oracle_rope.py [--configs configs] [--out tests/golden/rope/tables.json]

Docs: docs/models.md
"""
import argparse
import glob
import importlib
import json
import os
import struct

import torch
import transformers

PREFIX = {"LlamaForCausalLM": ("llama", "Llama"), "Qwen2ForCausalLM": ("qwen2", "Qwen2"),
          "Qwen3ForCausalLM": ("qwen3", "Qwen3")}


def table(cfg_path):
    with open(cfg_path) as f:
        raw = json.load(f)
    arch = raw["architectures"][0]
    mod_name, prefix = PREFIX[arch]
    config = getattr(transformers, prefix + "Config")(**{k: v for k, v in raw.items() if k != "architectures"})
    mod = importlib.import_module(f"transformers.models.{mod_name}.modeling_{mod_name}")
    rot = getattr(mod, prefix + "RotaryEmbedding")(config=config)
    inv = rot.inv_freq.detach().to(torch.float32).cpu().tolist()
    return {"config": cfg_path, "architecture": arch, "head_dim_x2": 2 * len(inv),
            "rope_type": getattr(rot, "rope_type", "default"),
            "attention_scaling": float(getattr(rot, "attention_scaling", 1.0)),
            "inv_freq_hex": [struct.pack("<f", x)[::-1].hex() for x in inv]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="configs")
    ap.add_argument("--out", default="tests/golden/rope/tables.json")
    args = ap.parse_args()
    paths = sorted(p for p in glob.glob(os.path.join(args.configs, "*.json")) if "generation_config" not in p)
    out = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__},
           "oracle": "scripts/oracle_rope.py (each family's RotaryEmbedding built from the config, float32, CPU)",
           "tables": []}
    for p in paths:
        t = table(p)
        t["config"] = "configs/" + os.path.basename(p)
        out["tables"].append(t)
        print(f"{t['config']}: {t['architecture']} {t['rope_type']} D {t['head_dim_x2']} "
              f"scaling {t['attention_scaling']} inv_freq[-1] {t['inv_freq_hex'][-1]}", flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        f.write(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
