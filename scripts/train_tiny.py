#!/usr/bin/env python3
"""train_tiny.py - train fs's offline default model (models/tiny/): from scratch, or (--init) fine-tune it for chat.

Docs: models/tiny/README.md

Runs on a GPU machine with torch, transformers (5.x), tokenizers, safetensors;
no network.  In one run it
  1. trains a byte-level BPE tokenizer on CORPUS/train.txt with Qwen3's exact
     normalizer (NFC), pre-tokenizer (Qwen regex Split + ByteLevel), decoder
     and post-processor, and Qwen3's added tokens (same contents, flags and
     order) placed right after the BPE vocab;
  2. trains a small Qwen3ForCausalLM (tied embeddings) in bf16 autocast with
     AdamW + warmup + cosine, on random windows of the train split with
     <|endoftext|> between documents;
  3. saves the Hugging Face layout (config.json, generation_config.json,
     model.safetensors in bf16, tokenizer.json, tokenizer_config.json);
  4. evaluates: held-out perplexity, greedy continuations, samples.

Why a sweep of runs: the corpus is small (~14 MB, a few million tokens) and
the model is fast, so the time budget is not what limits quality; repeating
the data too often is.  The script trains runs of 4, 8, 16, ... epochs (each
a full warmup + cosine schedule from the same seeded init) while they fit the
time budget, keeps the weights with the lowest validation loss (val = every
50th training document, never trained on; checked 20 times per run), and
stops the sweep once a longer run no longer improves on the shorter one.

    python3 scripts/train_tiny.py --corpus build/corpus --out OUT \
        --ref-tokenizer models/qwen3-tokenizer --minutes 6 --seed 1234

Chat fine-tuning (--init DIR --chat-data FILE): instead of steps 1 and 2,
keep DIR's tokenizer (copied byte for byte) and go on from DIR's weights
with one warmup + cosine schedule of --ft-steps steps whose batches are
part prose windows (loss on every token, as above) and part conversations
from scripts/make_chat_data.py (rendered in the chat template with thinking
off, packed whole into rows, loss on the assistant replies and their
<|im_end|> only).  Validation: the prose set above, plus every 50th
conversation.  Evaluation adds sampled replies to chat prompts and whether
they end by themselves within 100 tokens (eval.json "chat").

    python3 scripts/train_tiny.py --corpus build/corpus --init models/tiny \
        --chat-data build/chat.jsonl --out OUT --minutes 1.7 --ft-steps 800 --ft-lr 1.5e-4

Outputs in OUT (8 files): config.json, generation_config.json,
model.safetensors, tokenizer.json, tokenizer_config.json, loss.tsv,
eval.json (perplexity, samples, run summary), greedy.json.
"""
import argparse
import copy
import json
import math
import os
import random
import sys
import time
import traceback

T0 = time.time()


def log(msg):
    print("[%7.1fs] %s" % (time.time() - T0, msg), flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", required=True, help="dir with train.txt and heldout.txt (scripts/fetch_corpus.sh)")
    p.add_argument("--out", required=True, help="output dir (created)")
    p.add_argument("--ref-tokenizer", default="models/qwen3-tokenizer",
                   help="dir with the real Qwen3 tokenizer.json + tokenizer_config.json")
    p.add_argument("--minutes", type=float, default=6.0, help="wall-clock budget for everything before evaluation")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--vocab", type=int, default=4096, help="total vocab incl. added tokens")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--ffn", type=int, default=768)
    p.add_argument("--seq", type=int, default=512, help="training sequence length")
    p.add_argument("--batch", type=int, default=32, help="sequences per step")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr-frac", type=float, default=0.1, help="cosine floor as a fraction of --lr")
    p.add_argument("--warmup", type=int, default=100, help="warmup steps (capped at 10%% of a run)")
    p.add_argument("--wd", type=float, default=0.1)
    p.add_argument("--epochs", default="4,8,16,32,64", help="sweep: epochs per run, increasing")
    p.add_argument("--eval-ctx", type=int, default=256, help="window of the held-out perplexity (the context fs uses)")
    g = p.add_argument_group("fine-tuning for chat (instead of training from scratch)")
    g.add_argument("--init", metavar="DIR", help="start from this model (models/tiny): its weights and its tokenizer, "
                   "which is kept as it is; needs --chat-data")
    g.add_argument("--chat-data", metavar="FILE", help="conversations from scripts/make_chat_data.py (JSON lines)")
    g.add_argument("--chat-frac", type=float, default=0.5, help="share of each batch that is conversations")
    g.add_argument("--ft-steps", type=int, default=1200, help="fine-tuning steps (one warmup + cosine schedule)")
    g.add_argument("--ft-lr", type=float, default=5e-4, help="fine-tuning peak learning rate")
    a = p.parse_args()
    if (a.init is None) != (a.chat_data is None):
        p.error("--init and --chat-data go together")
    if not 0 < a.chat_frac < 1:
        p.error("--chat-frac must be in (0, 1)")
    if a.ft_steps < 10:
        p.error("--ft-steps must be at least 10")
    return a


# ---------------------------------------------------------------- corpus

def read_docs(path):
    """fetch_corpus.sh format: documents separated by one empty line."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return [d for d in text.split("\n\n") if d.strip()]


# ------------------------------------------------------------- tokenizer

def train_tokenizer(train_docs, ref_dir, vocab_total):
    """Byte-level BPE with Qwen3's pipeline. Returns (Tokenizer, json str,
    info). The pipeline blocks and the added tokens are copied verbatim
    from the real tokenizer.json so fs reads the same structure."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    with open(os.path.join(ref_dir, "tokenizer.json"), encoding="utf-8") as f:
        ref = json.load(f)
    ref_added = sorted(ref["added_tokens"], key=lambda t: t["id"])
    split = ref["pre_tokenizer"]["pretokenizers"][0]
    assert split["type"] == "Split" and split["behavior"] == "Isolated", split
    n_bpe = vocab_total - len(ref_added)

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split["pattern"]["Regex"]), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(
        vocab_size=n_bpe, min_frequency=2, show_progress=False, special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(train_docs, trainer=trainer, length=len(train_docs))

    d = json.loads(tok.to_str())
    vocab = d["model"]["vocab"]
    if len(vocab) != n_bpe:  # only if the corpus ran out of pairs to merge
        log("warning: BPE trainer made %d tokens, asked for %d" % (len(vocab), n_bpe))
        n_bpe = len(vocab)
    missing = [c for c in pre_tokenizers.ByteLevel.alphabet() if c not in vocab]
    if missing:
        raise RuntimeError("byte alphabet incomplete: %r" % missing[:10])
    if sorted(vocab.values()) != list(range(n_bpe)):
        raise RuntimeError("BPE ids are not 0..%d" % (n_bpe - 1))
    # Same serialization as the real file: merges as [left, right] pairs.
    d["model"]["merges"] = [m.split(" ", 1) if isinstance(m, str) else list(m) for m in d["model"]["merges"]]
    for k, v in ref["model"].items():
        if k not in ("vocab", "merges"):
            d["model"][k] = v
    for k in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
        d[k] = copy.deepcopy(ref[k])
    added = []
    for i, t in enumerate(ref_added):
        t = dict(t)
        t["id"] = n_bpe + i
        if t["content"] in vocab:
            raise RuntimeError("added token %r is also a BPE token" % t["content"])
        added.append(t)
    d["added_tokens"] = added
    out = dict((k, d[k]) for k in ref.keys())  # the real file's key order
    js = json.dumps(out, ensure_ascii=False, indent=2)
    final = Tokenizer.from_str(js)
    for t in added:
        if final.token_to_id(t["content"]) != t["id"]:
            raise RuntimeError("added token %r did not get id %d" % (t["content"], t["id"]))
    probe = "<|im_start|>user\nHello, world! It's 2026.<|im_end|>\n<think>\n\n</think>\n\n"
    ids = final.encode(probe, add_special_tokens=False).ids
    if final.decode(ids, skip_special_tokens=False) != probe:
        raise RuntimeError("tokenizer round trip failed on %r" % probe)
    info = {"bpe_vocab": n_bpe, "added_tokens": len(added), "vocab_total": n_bpe + len(added),
            "merges": len(d["model"]["merges"]), "probe": probe, "probe_ids": ids}
    return final, js, info


def write_tokenizer_config(ref_dir, out_dir, added, max_len):
    """The real tokenizer_config.json (chat template, eos <|im_end|>, pad
    <|endoftext|>, ...) with added_tokens_decoder keyed by the new ids."""
    with open(os.path.join(ref_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    by_content = {t["content"]: t for t in added}
    dec = {}
    for _, v in cfg["added_tokens_decoder"].items():
        t = by_content[v["content"]]
        dec[str(t["id"])] = v
    cfg["added_tokens_decoder"] = dec
    cfg["model_max_length"] = max_len
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)
        f.write("\n")


def encode_docs(tok, docs):
    enc = tok.encode_batch_fast if hasattr(tok, "encode_batch_fast") else tok.encode_batch
    return [e.ids for e in enc(docs, add_special_tokens=False)]


# ------------------------------------------------------------------ model

def make_config(a, vocab, ids):
    from transformers import Qwen3Config
    kw = dict(vocab_size=vocab, hidden_size=a.hidden, intermediate_size=a.ffn,
              num_hidden_layers=a.layers, num_attention_heads=a.heads,
              num_key_value_heads=a.kv_heads, head_dim=a.head_dim, hidden_act="silu",
              max_position_embeddings=2048, initializer_range=0.02, rms_norm_eps=1e-6,
              use_cache=True, tie_word_embeddings=True, attention_bias=False,
              attention_dropout=0.0, use_sliding_window=False, max_window_layers=a.layers,
              bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
              pad_token_id=ids["<|endoftext|>"])
    try:  # transformers 5: RoPE settings live in rope_parameters
        cfg = Qwen3Config(rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, **kw)
    except TypeError:  # transformers 4.x
        cfg = Qwen3Config(rope_theta=10000.0, **kw)
    rp = getattr(cfg, "rope_parameters", None) or {}
    theta = rp.get("rope_theta", getattr(cfg, "rope_theta", None))
    if theta != 10000.0:
        raise RuntimeError("rope_theta did not stick: %r" % theta)
    return cfg


def new_model(cfg, seed, device):
    import torch
    from transformers import Qwen3ForCausalLM
    torch.manual_seed(seed)
    m = Qwen3ForCausalLM(cfg).to(device)
    if m.lm_head.weight.data_ptr() != m.model.embed_tokens.weight.data_ptr():
        m.lm_head.weight = m.model.embed_tokens.weight  # tie by hand if this version did not
    return m


def lr_at(step, total, warmup, peak, floor_frac):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (floor_frac + (1 - floor_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def window_loss(model, stream, ctx, batch):
    """Sum of next-token CE and count over non-overlapping windows of ctx
    tokens (the last, shorter window included if it predicts anything)."""
    import torch
    import torch.nn.functional as F
    n = stream.numel()
    starts = list(range(0, n - 1, ctx))
    tot, cnt = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(starts), batch):
            chunk = [stream[s:s + ctx] for s in starts[i:i + batch]]
            full = [c for c in chunk if c.numel() == ctx]
            rest = [c for c in chunk if c.numel() != ctx]
            for group in ([torch.stack(full)] if full else []) + [c[None] for c in rest]:
                logits = model(input_ids=group, use_cache=False).logits.float()
                ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                     group[:, 1:].reshape(-1), reduction="sum")
                tot += ce.item()
                cnt += group[:, 1:].numel()
    return tot, cnt, len(starts)


def train_run(a, cfg, run, epochs, train_ids, val_ids, deadline, tsv, device):
    """One full cosine schedule over `epochs` passes of the train tokens.
    Returns (best val loss, best state, summary)."""
    import torch
    import torch.nn.functional as F
    model = new_model(cfg, a.seed, device)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    n = train_ids.numel()
    tok_per_step = a.batch * a.seq
    total = max(1, math.ceil(epochs * n / tok_per_step))
    warmup = min(a.warmup, max(1, total // 10))
    evals = set([total - 1] + [int(total * k / 20) for k in range(1, 20)])  # 20 validation checks
    gen = torch.Generator(device=device)
    gen.manual_seed(a.seed * 1000 + epochs)  # a run depends on (seed, epochs) only: --epochs N redoes it
    offs = torch.arange(a.seq + 1, device=device)
    best, best_state, best_step = float("inf"), None, -1
    t_start = time.time()
    step = 0
    stopped = "done"
    last_loss = float("nan")
    for step in range(total):
        if time.time() >= deadline:
            stopped = "time"
            break
        lr = lr_at(step, total, warmup, a.lr, a.min_lr_frac)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, n - a.seq - 1, (a.batch,), device=device, generator=gen)
        xy = train_ids[starts[:, None] + offs]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=xy[:, :-1], use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), xy[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        do_eval = step in evals
        if step % 25 == 0 or do_eval:
            last_loss = loss.item()
            val = ""
            if do_eval:
                model.eval()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    s, c, _ = window_loss(model, val_ids, a.seq, 64)
                model.train()
                v = s / c
                val = "%.5f" % v
                if v < best:
                    best, best_step = v, step
                    best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            el = time.time() - T0
            tsv.write("%d\t%d\t%d\t%d\t%.5f\t%.3e\t%.1f\t%s\n" % (
                run, epochs, step, (step + 1) * tok_per_step, last_loss, lr, el, val))
            tsv.flush()
            if do_eval or step % 200 == 0:
                log("run %d (%d ep) step %d/%d loss %.4f lr %.2e val %s" % (
                    run, epochs, step, total, last_loss, lr, val or "-"))
    steps_done = step + (1 if stopped == "done" else 0)
    dt = time.time() - t_start
    summary = {"run": run, "epochs": epochs, "steps_planned": total, "steps_done": steps_done,
               "warmup": warmup, "stopped": stopped,
               "best_val_loss": best if best_state is not None else None, "best_step": best_step,
               "seconds": round(dt, 1), "tokens_per_s": round(steps_done * tok_per_step / max(dt, 1e-9))}
    del model, opt
    torch.cuda.empty_cache()
    return best, best_state, summary


# --------------------------------------------------------------- evaluate

PROMPTS = [
    "In the beginning God created",
    "The jury said that",
    "And it came to pass, when",
    "It is a truth universally acknowledged",
    "The President of the United States",
    "Once upon a time",
]
SAMPLE_PROMPT = "The morning was"
SAMPLE_SEEDS = [1, 2, 3]


def greedy(model, tok, device, n_new=32):
    import torch
    out = []
    for p in PROMPTS:
        ids = tok.encode(p, add_special_tokens=False).ids
        cur = list(ids)
        gen, margins = [], []
        with torch.no_grad():
            for _ in range(n_new):
                logits = model(input_ids=torch.tensor([cur], device=device), use_cache=False).logits[0, -1].float()
                top = torch.topk(logits, 2)
                nxt = int(top.indices[0])
                gen.append(nxt)
                margins.append(round(float(top.values[0] - top.values[1]), 5))
                cur.append(nxt)
        out.append({"prompt": p, "prompt_ids": ids, "ids": gen, "top2_margins": margins,
                    "min_margin": min(margins), "text": tok.decode(gen, skip_special_tokens=False)})
    return out


def sample(model, tok, device, gen_cfg, n_new=64):
    import torch
    out = []
    prompt = SAMPLE_PROMPT
    for seed in SAMPLE_SEEDS:
        g = torch.Generator(device=device)
        g.manual_seed(seed)
        cur = tok.encode(prompt, add_special_tokens=False).ids
        gen = []
        with torch.no_grad():
            for _ in range(n_new):
                logits = model(input_ids=torch.tensor([cur], device=device), use_cache=False).logits[0, -1].float()
                logits = logits / gen_cfg["temperature"]
                v, i = torch.topk(logits, gen_cfg["top_k"])
                probs = torch.softmax(v, -1)
                keep = torch.cumsum(probs, -1) - probs < gen_cfg["top_p"]
                probs = torch.where(keep, probs, torch.zeros_like(probs))
                nxt = int(i[torch.multinomial(probs / probs.sum(), 1, generator=g)])
                gen.append(nxt)
                cur.append(nxt)
        out.append({"seed": seed, "prompt": prompt, "ids": gen, "text": prompt + tok.decode(gen, skip_special_tokens=False)})
    return out


# ------------------------------------------------------------- the sweep

def sweep(a, tinfo, ids, train_ids, val_ids, deadline, report, device):
    """From scratch: runs of a.epochs epochs while they fit and improve.
    Returns (config, the best run's state)."""
    vocab = ((tinfo["vocab_total"] + 63) // 64) * 64
    cfg = make_config(a, vocab, ids)
    probe = new_model(cfg, a.seed, device)
    n_params = sum(p.numel() for p in probe.parameters())  # tied weights counted once
    report["model"] = {"params": n_params, "vocab_size": vocab,
                       "attn_implementation": getattr(cfg, "_attn_implementation", None)}
    log("model: %d parameters, vocab %d" % (n_params, vocab))
    del probe
    best, best_state, best_run = float("inf"), None, None
    runs = []
    tok_per_s = None
    with open(os.path.join(a.out, "loss.tsv"), "w") as tsv:
        tsv.write("run\tepochs\tstep\ttokens\tloss\tlr\telapsed_s\tval_loss\n")
        prev = float("inf")
        for r, ep in enumerate(int(x) for x in a.epochs.split(",")):
            left = deadline - time.time()
            if tok_per_s and ep * train_ids.numel() / tok_per_s > left:
                log("run %d (%d epochs) needs ~%.0fs, %.0fs left: sweep ends" % (
                    r, ep, ep * train_ids.numel() / tok_per_s, left))
                break
            if left <= 5:
                break
            v, state, s = train_run(a, cfg, r, ep, train_ids, val_ids, deadline, tsv, device)
            runs.append(s)
            tok_per_s = s["tokens_per_s"]
            log("run %d done: %s" % (r, json.dumps(s)))
            if state is not None and v < best:
                best, best_state, best_run = v, state, r
            if s["stopped"] != "done" or v >= prev:
                break
            prev = v
    report["runs"] = runs
    report["chosen_run"] = best_run
    report["chosen_val_loss"] = best if best_state is not None else None
    if best_state is None:
        raise RuntimeError("no run reached a validation step")
    return cfg, best_state


# ------------------------------------------------------ chat fine-tuning

def load_chat(path, tok, eot, seq):
    """make_chat_data.py's conversations -> rows of seq+1 token ids with a
    0/1 loss mask (1 on the tokens inside a conversation's "train" spans:
    the assistant replies and their <|im_end|>). Whole conversations are
    packed into rows, each after an <|endoftext|>; rows are padded with
    <|endoftext|> (mask 0). Every 50th conversation is validation."""
    rows = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
    if not rows:
        raise RuntimeError("%s: no conversations" % path)
    enc = tok.encode_batch([r["text"] for r in rows], add_special_tokens=False)
    parts = ([], [])
    dropped = 0
    for k, (r, e) in enumerate(zip(rows, enc)):
        spans = r["train"]
        m = [1 if any(s <= a and b <= t for s, t in spans) and b > a else 0 for a, b in e.offsets]
        if not any(m):
            raise RuntimeError("%s: conversation %d trains no token" % (path, k))
        if len(e.ids) + 1 > seq + 1:
            dropped += 1
            continue
        parts[1 if k % 50 == 49 else 0].append(([eot] + e.ids, [0] + m))
    out = []
    for convs in parts:
        packed, cur_i, cur_m = [], [], []
        for i, m in convs:
            if len(cur_i) + len(i) > seq + 1:
                packed.append((cur_i + [eot] * (seq + 1 - len(cur_i)), cur_m + [0] * (seq + 1 - len(cur_m))))
                cur_i, cur_m = [], []
            cur_i, cur_m = cur_i + i, cur_m + m
        if cur_i:
            packed.append((cur_i + [eot] * (seq + 1 - len(cur_i)), cur_m + [0] * (seq + 1 - len(cur_m))))
        out.append(packed)
    return out[0], out[1], {"conversations": len(rows), "dropped_too_long": dropped,
                            "train_rows": len(out[0]), "val_rows": len(out[1]),
                            "train_tokens": sum(len(i) for i, _ in parts[0]),
                            "trained_tokens": sum(sum(m) for _, m in parts[0])}


def masked_loss(model, ids, mask):
    import torch.nn.functional as F
    logits = model(input_ids=ids[:, :-1], use_cache=False).logits.float()
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
    m = mask[:, 1:].reshape(-1).float()
    return (ce * m).sum(), m.sum()


def finetune(a, tok, train_ids, val_ids, eot, ids, deadline, report, device):
    """--init: go on from a.init's weights with batches that are part prose
    windows (loss on every token, as in pre-training) and part packed
    conversations (loss on the assistant tokens only); one warmup + cosine
    schedule of a.ft_steps steps. Returns (config, the final state)."""
    import torch
    import torch.nn.functional as F
    from transformers import Qwen3ForCausalLM
    chat_tr, chat_va, cinfo = load_chat(a.chat_data, tok, eot, a.seq)
    report["chat_data"] = dict(cinfo, file=os.path.basename(a.chat_data))
    log("chat data: %s" % json.dumps(cinfo))
    ct_ids = torch.tensor([i for i, _ in chat_tr], dtype=torch.long, device=device)
    ct_m = torch.tensor([m for _, m in chat_tr], dtype=torch.long, device=device)
    cv_ids = torch.tensor([i for i, _ in chat_va], dtype=torch.long, device=device)
    cv_m = torch.tensor([m for _, m in chat_va], dtype=torch.long, device=device)
    model = Qwen3ForCausalLM.from_pretrained(a.init, dtype=torch.float32).to(device)
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        model.lm_head.weight = model.model.embed_tokens.weight
    cfg = model.config
    n_params = sum(p.numel() for p in model.parameters())
    report["model"] = {"params": n_params, "vocab_size": cfg.vocab_size, "init": a.init,
                       "attn_implementation": getattr(cfg, "_attn_implementation", None)}

    def evaluate():
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            s, c, _ = window_loss(model, val_ids, a.seq, 64)
            cs, cc = 0.0, 0.0
            for i in range(0, cv_ids.shape[0], 64):
                x, y = masked_loss(model, cv_ids[i:i + 64], cv_m[i:i + 64])
                cs, cc = cs + x.item(), cc + y.item()
        model.train()
        return s / c, cs / cc

    v0, c0 = evaluate()
    log("before: prose val %.4f, chat val (assistant tokens) %.4f" % (v0, c0))
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.ft_lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    total = a.ft_steps
    warmup = min(a.warmup, max(1, total // 10))
    evals = set([total - 1] + [int(total * k / 10) for k in range(1, 10)])
    gen = torch.Generator(device=device)
    gen.manual_seed(a.seed * 1000 + 1)
    n = train_ids.numel()
    nc = max(1, round(a.batch * a.chat_frac))
    npr = a.batch - nc
    offs = torch.arange(a.seq + 1, device=device)
    t_start = time.time()
    stopped = "done"
    curve = [{"step": -1, "val_loss": v0, "chat_val_loss": c0}]
    with open(os.path.join(a.out, "loss.tsv"), "w") as tsv:
        tsv.write("run\tepochs\tstep\ttokens\tloss\tlr\telapsed_s\tval_loss\tchat_loss\tchat_val_loss\n")
        tsv.write("ft\t0\t-1\t0\t\t\t%.1f\t%.5f\t\t%.5f\n" % (time.time() - T0, v0, c0))
        step = 0
        for step in range(total):
            if time.time() >= deadline:
                stopped = "time"
                break
            lr = lr_at(step, total, warmup, a.ft_lr, a.min_lr_frac)
            for g in opt.param_groups:
                g["lr"] = lr
            starts = torch.randint(0, n - a.seq - 1, (npr,), device=device, generator=gen)
            xy = train_ids[starts[:, None] + offs]
            pick = torch.randint(0, ct_ids.shape[0], (nc,), device=device, generator=gen)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(input_ids=xy[:, :-1], use_cache=False).logits
                ps = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), xy[:, 1:].reshape(-1))
                cs, cc = masked_loss(model, ct_ids[pick], ct_m[pick])
            closs = cs / cc.clamp(min=1)
            loss = (1 - a.chat_frac) * ps + a.chat_frac * closs
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step % 25 == 0 or step in evals:
                v = cv = ""
                if step in evals:
                    vv, cvv = evaluate()
                    v, cv = "%.5f" % vv, "%.5f" % cvv
                    curve.append({"step": step, "val_loss": vv, "chat_val_loss": cvv})
                tsv.write("ft\t0\t%d\t%d\t%.5f\t%.3e\t%.1f\t%s\t%.5f\t%s\n" % (
                    step, (step + 1) * a.batch * a.seq, ps.item(), lr, time.time() - T0, v, closs.item(), cv))
                tsv.flush()
                if v or step % 200 == 0:
                    log("ft step %d/%d prose loss %.4f chat loss %.4f lr %.2e val %s chat val %s" % (
                        step, total, ps.item(), closs.item(), lr, v or "-", cv or "-"))
    steps_done = step + (1 if stopped == "done" else 0)
    dt = time.time() - t_start
    if stopped != "done":
        curve.append(dict(zip(("val_loss", "chat_val_loss"), evaluate()), step=steps_done - 1))
    report["finetune"] = {"steps_planned": total, "steps_done": steps_done, "warmup": warmup, "stopped": stopped,
                          "lr": a.ft_lr, "chat_rows_per_step": nc, "prose_rows_per_step": npr,
                          "seconds": round(dt, 1),
                          "tokens_per_s": round(steps_done * a.batch * a.seq / max(dt, 1e-9)),
                          "curve": curve}
    log("fine-tune done: %s" % json.dumps(report["finetune"]))
    state = {k: t.detach().clone() for k, t in model.state_dict().items()}
    del model, opt
    torch.cuda.empty_cache()
    return cfg, state


CHAT_PROMPTS = ["Hello!", "Who are you?", "Continue this passage: It is a truth universally acknowledged",
                "In the beginning God created the heaven and the earth.\n\nWhat book is this from?",
                "Give me a verse from Psalms.", "Thanks!"]
CHAT_SEEDS = {"Hello!": list(range(1, 11))}  # the others: seeds 1..3


def chat_prompt(user):
    """Qwen3's template, enable_thinking=false, generation prompt (what fs
    run sends for one user turn with thinking off)."""
    return "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n" % user


def chat_eval(model, tok, device, gen_cfg, im_end, n_max=100):
    """Sampled replies (the model's sampling defaults) to each CHAT_PROMPT
    ("Hello!": seeds 1..10, the others 1..3): how many end with <|im_end|>
    within n_max tokens."""
    import torch
    out = []
    for p in CHAT_PROMPTS:
        pids = tok.encode(chat_prompt(p), add_special_tokens=False).ids
        cases = []
        for seed in CHAT_SEEDS.get(p, [1, 2, 3]):
            g = torch.Generator(device=device)
            g.manual_seed(seed)
            cur, gen = list(pids), []
            with torch.no_grad():
                for _ in range(n_max):
                    logits = model(input_ids=torch.tensor([cur], device=device), use_cache=False).logits[0, -1].float()
                    v, i = torch.topk(logits / gen_cfg["temperature"], gen_cfg["top_k"])
                    probs = torch.softmax(v, -1)
                    keep = torch.cumsum(probs, -1) - probs < gen_cfg["top_p"]
                    probs = torch.where(keep, probs, torch.zeros_like(probs))
                    nxt = int(i[torch.multinomial(probs / probs.sum(), 1, generator=g)])
                    gen.append(nxt)
                    cur.append(nxt)
                    if nxt == im_end:
                        break
            cases.append({"seed": seed, "tokens": len(gen), "ended": gen[-1] == im_end,
                          "text": tok.decode(gen, skip_special_tokens=False)})
        out.append({"prompt": p, "ended": sum(c["ended"] for c in cases), "of": len(cases), "cases": cases})
    return out


# ------------------------------------------------------------------- main

def main():
    a = parse_args()
    need = [os.path.join(a.corpus, "train.txt"), os.path.join(a.corpus, "heldout.txt")]
    if a.init:
        need += [os.path.join(a.init, f) for f in ("config.json", "model.safetensors", "tokenizer.json",
                                                    "tokenizer_config.json")] + [a.chat_data]
    else:
        need += [os.path.join(a.ref_tokenizer, "tokenizer.json"), os.path.join(a.ref_tokenizer, "tokenizer_config.json")]
    for path in need:
        if not os.path.isfile(path):
            sys.exit("train_tiny: missing %s (run scripts/fetch_corpus.sh / make tokenizer / "
                     "scripts/make_chat_data.py, and carry them)" % path)
    import numpy as np
    import torch
    import transformers
    os.makedirs(a.out, exist_ok=True)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    device = "cuda"
    deadline = T0 + a.minutes * 60
    report = {"args": vars(a), "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}
    try:
        import tokenizers
        report["versions"]["tokenizers"] = tokenizers.__version__
    except Exception:
        pass
    report["device"] = torch.cuda.get_device_name(0)

    def save_report():
        with open(os.path.join(a.out, "eval.json"), "w", encoding="utf-8") as f:
            json.dump(report, f, ensure_ascii=False, indent=1)
            f.write("\n")

    # 1. corpus + tokenizer
    docs = read_docs(os.path.join(a.corpus, "train.txt"))
    with open(os.path.join(a.corpus, "heldout.txt"), encoding="utf-8") as f:
        heldout_text = f.read()
    val_docs = [d for i, d in enumerate(docs) if i % 50 == 24]
    train_docs = [d for i, d in enumerate(docs) if i % 50 != 24]
    log("corpus: %d train docs, %d val docs (from train.txt), heldout %d chars" % (
        len(train_docs), len(val_docs), len(heldout_text)))
    if a.init:  # keep the model's tokenizer, byte for byte
        import shutil
        from tokenizers import Tokenizer
        for f in ("tokenizer.json", "tokenizer_config.json"):
            if os.path.abspath(os.path.join(a.init, f)) != os.path.abspath(os.path.join(a.out, f)):
                shutil.copyfile(os.path.join(a.init, f), os.path.join(a.out, f))
        tok = Tokenizer.from_file(os.path.join(a.init, "tokenizer.json"))
        added = json.load(open(os.path.join(a.init, "tokenizer.json"), encoding="utf-8"))["added_tokens"]
        tinfo = {"from": a.init, "vocab_total": tok.get_vocab_size(with_added_tokens=True),
                 "bpe_vocab": tok.get_vocab_size(with_added_tokens=True) - len(added), "added_tokens": len(added)}
    else:
        tok, tok_json, tinfo = train_tokenizer(train_docs, a.ref_tokenizer, a.vocab)
        with open(os.path.join(a.out, "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(tok_json)
            f.write("\n")
        added = json.loads(tok_json)["added_tokens"]
        write_tokenizer_config(a.ref_tokenizer, a.out, added, 2048)
    ids = {t["content"]: t["id"] for t in added}
    eot = ids["<|endoftext|>"]
    report["tokenizer"] = tinfo
    log("tokenizer: %d BPE + %d added tokens" % (tinfo["bpe_vocab"], tinfo["added_tokens"]))

    def stream(ds):
        flat = []
        for d in encode_docs(tok, ds):
            flat.append(eot)  # <|endoftext|> before every document, so between any two
            flat.extend(d)
        return torch.tensor(flat, dtype=torch.long, device=device)

    train_ids, val_ids = stream(train_docs), stream(val_docs)
    chars = sum(len(d) for d in train_docs)
    report["data"] = {"train_tokens": train_ids.numel(), "val_tokens": val_ids.numel(),
                      "train_chars": chars, "chars_per_token": round(chars / train_ids.numel(), 3)}
    log("tokens: train %d, val %d (%.2f chars/token)" % (
        train_ids.numel(), val_ids.numel(), chars / train_ids.numel()))
    save_report()

    # 2. train (sweep over epochs, keep the best validation loss), or fine-tune for chat
    if a.init:
        cfg, best_state = finetune(a, tok, train_ids, val_ids, eot, ids, deadline, report, device)
        save_report()
    else:
        cfg, best_state = sweep(a, tinfo, ids, train_ids, val_ids, deadline, report, device)
        save_report()

    # 3. save the HF layout in bf16
    import safetensors.torch
    from transformers import Qwen3ForCausalLM
    model = new_model(cfg, a.seed, device)
    model.load_state_dict(best_state)
    model = model.to(torch.bfloat16)
    model.config.use_cache = True
    try:
        model.save_pretrained(a.out)
    except Exception:
        report["save_pretrained_error"] = traceback.format_exc()
        log("save_pretrained failed; writing config.json + model.safetensors by hand")
        model.config.to_json_file(os.path.join(a.out, "config.json"))
        sd = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
        safetensors.torch.save_file(sd, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    gc_path = os.path.join(a.out, "generation_config.json")
    if os.path.exists(gc_path):
        os.remove(gc_path)  # written below, with our own sampling defaults
    gen_cfg = {"bos_token_id": eot, "do_sample": True,
               "eos_token_id": [ids["<|im_end|>"], eot], "pad_token_id": eot,
               "temperature": 0.8, "top_k": 40, "top_p": 0.95,
               "transformers_version": transformers.__version__}
    with open(gc_path, "w") as f:
        json.dump(gen_cfg, f, indent=2)
        f.write("\n")
    keys = {}
    with safetensors.safe_open(os.path.join(a.out, "model.safetensors"), "pt") as f:
        for k in f.keys():
            keys[k] = str(f.get_slice(k).get_dtype())
    report["safetensors"] = {"tensors": len(keys), "has_lm_head": "lm_head.weight" in keys,
                             "dtypes": sorted(set(keys.values())),
                             "bytes": os.path.getsize(os.path.join(a.out, "model.safetensors"))}
    extra = sorted(set(os.listdir(a.out)) - {"config.json", "generation_config.json", "model.safetensors",
                                              "tokenizer.json", "tokenizer_config.json", "loss.tsv", "eval.json"})
    report["unexpected_files"] = extra
    save_report()
    log("saved: %s" % json.dumps(report["safetensors"]))
    del model

    # 4. evaluate the saved files (reloaded, fp32 compute on the bf16 weights)
    model = None
    try:
        model = Qwen3ForCausalLM.from_pretrained(a.out, dtype=torch.float32).to(device).eval()
    except Exception:
        report["reload_error"] = traceback.format_exc()
        save_report()
    if model is not None:
        try:
            hid = tok.encode(heldout_text, add_special_tokens=False).ids
            hs = torch.tensor(hid, dtype=torch.long, device=device)
            s, c, nw = window_loss(model, hs, a.eval_ctx, 64)
            report["heldout"] = {
                "definition": ("ids = tokenizer.encode(heldout.txt as one string, no special tokens); "
                               "windows ids[k*C:(k+1)*C] for k = 0.. (last window shorter, kept if >= 2 tokens); "
                               "each window is a fresh context; loss = sum over windows and positions "
                               "j=1..len-1 of -log p(ids[j] | window ids[<j]) / number of predicted tokens; "
                               "ppl = exp(loss); model = the saved bf16 weights computed in float32"),
                "context": a.eval_ctx, "tokens": len(hid), "windows": nw, "predicted_tokens": c,
                "loss": s / c, "ppl": math.exp(s / c),
                "ids_head": hid[:16], "ids_sum": int(sum(hid))}
            log("held-out: %d tokens, %d windows, loss %.4f, ppl %.3f" % (len(hid), nw, s / c, math.exp(s / c)))
        except Exception:
            report["heldout_error"] = traceback.format_exc()
        save_report()
        try:
            g = greedy(model, tok, device)
            with open(os.path.join(a.out, "greedy.json"), "w", encoding="utf-8") as f:
                json.dump({"new_tokens": 32, "compute": "float32 on the bf16 weights, full recompute each step, "
                           "no eos stopping", "cases": g}, f, ensure_ascii=False, indent=1)
                f.write("\n")
            for x in g:
                log("greedy %r -> %r (min margin %.3f)" % (x["prompt"], x["text"], x["min_margin"]))
        except Exception:
            report["greedy_error"] = traceback.format_exc()
        try:
            report["samples"] = {"settings": "temperature 0.8, top_k 40, top_p 0.95, 64 new tokens, "
                                 "torch.Generator(cuda).manual_seed(seed), float32 compute",
                                 "cases": sample(model, tok, device, gen_cfg)}
            for x in report["samples"]["cases"]:
                log("sample seed %d: %r" % (x["seed"], x["text"]))
        except Exception:
            report["samples_error"] = traceback.format_exc()
        if a.init:
            try:
                report["chat"] = {"settings": "prompt = Qwen3 template, thinking off; temperature %g, top_k %d, "
                                  "top_p %g, at most 100 new tokens, torch.Generator(cuda).manual_seed(seed), "
                                  "float32 compute" % (gen_cfg["temperature"], gen_cfg["top_k"], gen_cfg["top_p"]),
                                  "prompts": chat_eval(model, tok, device, gen_cfg, ids["<|im_end|>"])}
                for x in report["chat"]["prompts"]:
                    log("chat %r: %d/%d end within 100 tokens; seed 1: %r" % (
                        x["prompt"], x["ended"], x["of"], x["cases"][0]["text"]))
            except Exception:
                report["chat_error"] = traceback.format_exc()
            save_report()
        try:  # the saved tokenizer loads in transformers and renders the chat template
            from transformers import AutoTokenizer
            at = AutoTokenizer.from_pretrained(a.out)
            msgs = [{"role": "user", "content": "Hello"}]
            text = at.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            report["autotokenizer"] = {"class": type(at).__name__, "chat_text": text,
                                       "chat_ids": at(text, add_special_tokens=False)["input_ids"],
                                       "eos_token_id": at.eos_token_id, "pad_token_id": at.pad_token_id}
            if a.init:  # the prompt the chat data was rendered for, from transformers' own template run
                nt = at.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, enable_thinking=False)
                report["autotokenizer"]["no_think_text"] = nt
                report["autotokenizer"]["no_think_matches_chat_data"] = nt == chat_prompt("Hello")
        except Exception:
            report["autotokenizer_error"] = traceback.format_exc()
    report["total_seconds"] = round(time.time() - T0, 1)
    save_report()
    log("done in %.1fs; outputs in %s: %s" % (time.time() - T0, a.out, " ".join(sorted(os.listdir(a.out)))))


if __name__ == "__main__":
    main()
