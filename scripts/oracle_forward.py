#!/usr/bin/env python3
"""oracle_forward.py - golden vectors for the forward pass, from HF transformers.

For every case directory tests/golden/forward/<case>/ (config.json + case.json):

  1. `FS mkmodel --config config.json --seed S --dtype D --out TMP` writes the
     random checkpoint (the C engine regenerates the same bytes in its tests;
     case.json records the sha256 of model.safetensors to prove it);
  2. transformers loads TMP as the class config.json names (architectures[0]:
     Qwen3ForCausalLM, LlamaForCausalLM, Qwen2ForCausalLM) in float32 with
     eager attention on the CPU; the model's RoPE table (rotary_emb.inv_freq,
     Llama 3-scaled where rope_scaling says so) is recorded bit for bit in
     case.json's rope_inv_freq_hex, for the C test to compare with arch.c's;
  3. the prompt ids run through the model; forward hooks record
     checkpoints.f32 = float32 LE [(L+2), T, H]: the embedding output, each
     decoder layer's output, the final norm output (hooks, because HF's
     output_hidden_states puts the *normed* state in the last slot);
     logits.f32 = float32 LE [T, V];
  4. greedy decoding: 32 new tokens from greedy_prompt with model.generate
     (do_sample=False, no eos stop), cross-checked against a plain
     argmax loop that recomputes the whole sequence each step; the top1-top2
     margin of each step is recorded so tests know which steps are robust.

case.json is updated with T, H, V, L, checkpoint_names, greedy, versions,
max_abs_logit and more. A case that fails is reported and skipped; the
others still get their files. Exit status 1 if any case failed.

Runs where torch + transformers are installed (not in CI):
  python3 scripts/oracle_forward.py --fs ./fs [--cases tests/golden/forward] [CASE ...]

Docs: docs/testing.md
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

import struct

import numpy as np
import torch
import transformers
from safetensors.torch import load_file
from transformers import GenerationConfig

N_GREEDY = 32


def log(*a):
    print(*a, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_atomic(path, data: bytes):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def model_class(cfg):
    """The class config.json names: one of the architectures fs runs."""
    name = cfg["architectures"][0]
    if name not in ("Qwen3ForCausalLM", "LlamaForCausalLM", "Qwen2ForCausalLM"):
        raise RuntimeError(f"unexpected architecture {name}")
    return getattr(transformers, name)


def load_model(ckpt, cfg):
    """float32, eager attention. transformers >= 4.56 calls the dtype argument
    `dtype`; older versions `torch_dtype` (an unknown kwarg would be silently
    stored in the config, so pick by version instead of try/except)."""
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    kw = {dtype_kw: torch.float32, "attn_implementation": "eager", "output_loading_info": True}
    model, info = model_class(cfg).from_pretrained(ckpt, **kw)
    if type(model).__name__ != cfg["architectures"][0]:
        raise RuntimeError(f"loaded {type(model).__name__}, wanted {cfg['architectures'][0]}")
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        raise RuntimeError(f"model loaded with parameter dtypes {dtypes}, wanted float32")
    return model, info


def check_loading(model, info, cfg):
    """Every tensor of the file must land in the model and vice versa: a
    silently re-initialised weight would make the goldens meaningless."""
    tied = bool(cfg.get("tie_word_embeddings", False))

    def field(k):  # a dict in transformers 4, maybe an object in later versions
        v = info.get(k) if isinstance(info, dict) else getattr(info, k, None)
        return list(v or [])

    missing = [k for k in field("missing_keys") if not (tied and k == "lm_head.weight")]
    problems = []
    if missing:
        problems.append(f"missing keys {sorted(missing)[:5]}")
    if field("unexpected_keys"):
        problems.append(f"unexpected keys {sorted(field('unexpected_keys'))[:5]}")
    if field("mismatched_keys"):
        problems.append(f"mismatched keys {field('mismatched_keys')[:5]}")
    if problems:
        raise RuntimeError("checkpoint did not load cleanly: " + "; ".join(problems))
    emb = model.model.embed_tokens.weight
    head = model.lm_head.weight
    same = emb.data_ptr() == head.data_ptr() or torch.equal(emb, head)
    if tied != same:
        raise RuntimeError(f"tie_word_embeddings={tied} but lm_head {'equals' if same else 'differs from'} embed_tokens")
    want_d = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    if getattr(model.model.layers[0].self_attn, "head_dim", want_d) != want_d:
        raise RuntimeError("head_dim in the loaded model differs from config.json")
    if model.model.layers[0].self_attn.q_proj.weight.shape[0] != cfg["num_attention_heads"] * want_d:
        raise RuntimeError("q_proj's shape does not match num_attention_heads * head_dim")


def rope_table(model):
    """The model's RoPE inverse frequencies as float32 bit patterns (hex),
    and its attention scaling (1.0 for plain and llama3 RoPE)."""
    rot = model.model.rotary_emb
    inv = rot.inv_freq.detach().to(torch.float32).cpu().tolist()
    hexes = [struct.pack("<f", x)[::-1].hex() for x in inv]
    return hexes, float(getattr(rot, "attention_scaling", 1.0)), getattr(rot, "rope_type", "default")


def layer_output(out):
    # Decoder layers return a tensor in recent transformers, a tuple in older.
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def run_checkpoints(model, ids):
    inner = model.model
    L = len(inner.layers)
    rec = {}
    hooks = [inner.embed_tokens.register_forward_hook(lambda m, i, o: rec.__setitem__("embed", o.detach().clone()))]
    for li, layer in enumerate(inner.layers):
        hooks.append(layer.register_forward_hook(
            lambda m, i, o, li=li: rec.__setitem__(f"layer{li}", layer_output(o).detach().clone())))
    hooks.append(inner.norm.register_forward_hook(lambda m, i, o: rec.__setitem__("final_norm", o.detach().clone())))
    try:
        out = model(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    names = ["embed"] + [f"layer{i}" for i in range(L)] + ["final_norm"]
    for n in names:
        if n not in rec:
            raise RuntimeError(f"hook for {n} never fired")
    ckpt = torch.stack([rec[n][0].float() for n in names])  # [(L+2), T, H]
    logits = out.logits[0].float()                          # [T, V]
    # The final norm hook and the logits must agree: logits = final_norm @ lm_head^T
    check = ckpt[-1] @ model.lm_head.weight.float().T
    if not torch.allclose(check, logits, rtol=1e-4, atol=1e-4):
        raise RuntimeError("final_norm checkpoint does not reproduce the logits")
    return names, ckpt.numpy(), logits.numpy()


def top2_margin(row):
    top = torch.topk(row, 2).values
    return float(top[0] - top[1])


@torch.no_grad()
def greedy_manual(model, prompt, n):
    """Reference greedy loop: full recompute every step, no KV cache."""
    seq = list(prompt)
    toks, margins = [], []
    for _ in range(n):
        logits = model(input_ids=torch.tensor([seq], dtype=torch.long), use_cache=False).logits[0, -1].float()
        t = int(torch.argmax(logits))
        toks.append(t)
        margins.append(top2_margin(logits))
        seq.append(t)
    return toks, margins


@torch.no_grad()
def greedy_generate(model, prompt, n):
    """model.generate with greedy decoding and no eos (the random model's
    vocab does not even contain Qwen3's eos ids, but be explicit)."""
    gc = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=n, min_new_tokens=n,
                          eos_token_id=None, bos_token_id=None, pad_token_id=0,
                          return_dict_in_generate=True, output_logits=True)
    # Since 4.50, generate() fills "unset" fields (those equal to the global
    # defaults, like do_sample=False and eos_token_id=None) from the model's
    # own generation_config - which mkmodel wrote with Qwen3's sampling
    # defaults. Replacing the model's config with ours removes that trap.
    model.generation_config = gc
    ids = torch.tensor([prompt], dtype=torch.long)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gc)
    toks = out.sequences[0, len(prompt):].tolist()
    margins = [top2_margin(l[0].float()) for l in out.logits] if getattr(out, "logits", None) else None
    return toks, margins


def run_case(fs_bin, case_dir, keep):
    cfg_path = os.path.join(case_dir, "config.json")
    case_path = os.path.join(case_dir, "case.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    with open(case_path) as f:
        case = json.load(f)
    seed, dtype = int(case["seed"]), case.get("dtype", "bf16")
    ids, gprompt = [int(x) for x in case["ids"]], [int(x) for x in case["greedy_prompt"]]
    V, H, L = cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"]
    bad = [t for t in ids + gprompt if not 0 <= t < V]
    if bad:
        raise RuntimeError(f"token ids {bad[:5]} out of range for vocab {V}")

    tmp = tempfile.mkdtemp(prefix="fs-oracle-")
    try:
        margs = ["--seed", str(seed), "--dtype", dtype]
        if "scale" in case:
            margs += ["--scale", str(case["scale"])]
        cmd = [fs_bin, "mkmodel", "--config", cfg_path] + margs + ["--out", tmp]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
        weights_sha = sha256_file(os.path.join(tmp, "model.safetensors"))
        model, info = load_model(tmp, cfg)
        model.eval()
        check_loading(model, info, cfg)
        # And every weight in the model is exactly the file's value (bf16/f16
        # -> f32 is exact), so nothing was re-initialised or transformed.
        msd = model.state_dict()
        for k, v in load_file(os.path.join(tmp, "model.safetensors")).items():
            if k not in msd or not torch.equal(msd[k], v.float()):
                raise RuntimeError(f"loaded model's {k} differs from the checkpoint file")

        inv_hex, attn_scaling, rope_type = rope_table(model)
        if attn_scaling != 1.0:
            raise RuntimeError(f"RoPE attention scaling {attn_scaling} (fs implements 1.0)")
        names, ckpt, logits = run_checkpoints(model, ids)
        T = len(ids)
        assert ckpt.shape == (L + 2, T, H), ckpt.shape
        assert logits.shape == (T, V), logits.shape
        ckpt_bytes = ckpt.astype("<f4").tobytes()
        logit_bytes = logits.astype("<f4").tobytes()

        g_toks, g_margins = greedy_manual(model, gprompt, N_GREEDY)
        greedy = {"prompt": gprompt, "tokens": g_toks, "margins": [round(m, 6) for m in g_margins],
                  "source": "model.generate; identical to a no-cache argmax loop"}
        try:
            gen_toks, _ = greedy_generate(model, gprompt, N_GREEDY)
            if gen_toks != g_toks:
                # A near-tie resolved differently by the cached path: keep the
                # uncached loop as the reference and say so.
                greedy["generate_tokens"] = gen_toks
                greedy["source"] = "no-cache argmax loop (model.generate differed, see generate_tokens)"
        except Exception as ex:  # generate API drift must not lose the case
            greedy["source"] = f"no-cache argmax loop (model.generate failed: {type(ex).__name__}: {ex})"

        prompt_margins = [top2_margin(torch.from_numpy(logits[t])) for t in range(T)]
        write_atomic(os.path.join(case_dir, "checkpoints.f32"), ckpt_bytes)
        write_atomic(os.path.join(case_dir, "logits.f32"), logit_bytes)
        case.update({
            "T": T, "H": H, "V": V, "L": L,
            "checkpoint_names": names,
            "checkpoints_layout": "float32 little-endian [(L+2), T, H]",
            "logits_layout": "float32 little-endian [T, V]",
            "greedy": greedy,
            "prompt_margins": [round(m, 6) for m in prompt_margins],
            "max_abs_logit": round(float(np.abs(logits).max()), 6),
            "logit_std": round(float(logits.std()), 6),
            "prompt_argmax": [int(x) for x in logits.argmax(axis=1)],
            "mkmodel_args": margs,
            "architecture": cfg["architectures"][0],
            "rope_type": rope_type,
            "rope_inv_freq_hex": inv_hex,
            "weights_sha256": weights_sha,
            "checkpoints_sha256": hashlib.sha256(ckpt_bytes).hexdigest(),
            "logits_sha256": hashlib.sha256(logit_bytes).hexdigest(),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "numpy": np.__version__, "python": sys.version.split()[0]},
            "oracle": f"scripts/oracle_forward.py (HF {cfg['architectures'][0]}, float32, eager attention, CPU)",
        })
        write_atomic(case_path, (json.dumps(case, indent=1) + "\n").encode())
        return case
    finally:
        if keep:
            log(f"  checkpoint kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fs", required=True, help="path to the fs binary (runs `fs mkmodel`)")
    ap.add_argument("--cases", default="tests/golden/forward", help="directory of case directories")
    ap.add_argument("--keep", action="store_true", help="keep the generated checkpoints")
    ap.add_argument("only", nargs="*", help="case names to run (default: all)")
    args = ap.parse_args()

    fs_bin = os.path.abspath(args.fs)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(1)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, fs {fs_bin}")

    names = sorted(d for d in os.listdir(args.cases)
                   if os.path.isfile(os.path.join(args.cases, d, "config.json")))
    if args.only:
        unknown = set(args.only) - set(names)
        if unknown:
            sys.exit(f"unknown cases: {sorted(unknown)}")
        names = [n for n in names if n in args.only]
    rows, failed = [], []
    for name in names:
        log(f"== {name}")
        try:
            c = run_case(fs_bin, os.path.join(args.cases, name), args.keep)
            g = c["greedy"]
            rows.append((name, c["L"], c["H"], c["V"], c["T"], c["max_abs_logit"], c["logit_std"],
                         min(c["prompt_margins"]), min(g["margins"]), "ok" if "generate_tokens" not in g else "gen!=loop"))
            log(f"  ok: greedy {g['tokens'][:8]}...")
        except Exception:
            traceback.print_exc()
            sys.stdout.flush()
            failed.append(name)
            rows.append((name, "-", "-", "-", "-", "-", "-", "-", "-", "FAILED"))

    log("")
    hdr = ("case", "L", "H", "V", "T", "max|logit|", "logit std", "min margin(prompt)", "min margin(greedy)", "status")
    fmt = "{:<24} {:>2} {:>4} {:>5} {:>3} {:>10} {:>9} {:>18} {:>18} {}"
    log(fmt.format(*hdr))
    for r in rows:
        log(fmt.format(*[f"{x:.4f}" if isinstance(x, float) else str(x) for x in r]))
    if failed:
        log(f"FAILED: {' '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
