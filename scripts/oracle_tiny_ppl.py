#!/usr/bin/env python3
"""oracle_tiny_ppl.py - golden held-out perplexity of models/tiny, from HF
transformers, on the first few windows (small enough for `make test`).

The evaluation is exactly scripts/train_tiny.py's (models/tiny/eval.json,
"heldout"."definition"):
  ids     = tokenizer.encode(heldout.txt as one string, no special tokens)
  windows = ids[k C : (k+1) C], each from a fresh context
  loss    = sum of -log p(ids[j] | window ids[<j]), j = 1 .. len-1, over the
            windows / number of predicted tokens;  ppl = exp(loss)
  model   = the saved bf16 weights computed in float32.
Here only the first --windows windows are run; log-softmax is taken in
float64 on the float32 logits (what fs does).

Writes tests/golden/tiny/ppl.json:
  ids [[C ints] x windows], window_loss [mean NLL per window],
  window_nll_sum, predicted_tokens, loss, ppl, and as a cross-check of the
  tokenizer on the whole file: heldout_tokens, heldout_ids_sum (must match
  eval.json), plus versions, device and the sha256 of the inputs.
tests/e2e_tiny_ppl.sh feeds those ids to `fs perplexity --ids-file` and
compares the loss of every window and the total within 0.1%.

Runs where torch + transformers + tokenizers are installed (not in CI):
  sh scripts/fetch_corpus.sh build/corpus      # if build/corpus/heldout.txt is absent
  python3 scripts/oracle_tiny_ppl.py [--model models/tiny] [--text build/corpus/heldout.txt]

Docs: docs/bench.md
"""
import argparse
import hashlib
import json
import math
import os
import sys


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="models/tiny")
    p.add_argument("--text", default="build/corpus/heldout.txt")
    p.add_argument("--ctx", type=int, default=256)
    p.add_argument("--windows", type=int, default=8)
    p.add_argument("--out", default="tests/golden/tiny/ppl.json")
    a = p.parse_args()

    import tokenizers
    import torch
    import transformers
    from tokenizers import Tokenizer
    from transformers import Qwen3ForCausalLM

    with open(a.text, encoding="utf-8") as f:
        text = f.read()
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    ids = tok.encode(text, add_special_tokens=False).ids

    eval_json = os.path.join(a.model, "eval.json")
    if os.path.exists(eval_json):
        ho = json.load(open(eval_json, encoding="utf-8")).get("heldout", {})
        if ho.get("tokens") not in (None, len(ids)) or ho.get("ids_sum") not in (None, sum(ids)):
            sys.exit("tokenization differs from eval.json: %d tokens, id sum %d vs %r, %r"
                     % (len(ids), sum(ids), ho.get("tokens"), ho.get("ids_sum")))

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = Qwen3ForCausalLM.from_pretrained(a.model, dtype=torch.float32).to(device).eval()
    C = a.ctx
    starts = list(range(0, len(ids) - 1, C))[:a.windows]
    wins, sums, counts = [], [], []
    with torch.no_grad():
        for s in starts:
            w = ids[s:s + C]
            x = torch.tensor([w], dtype=torch.long, device=device)
            logits = model(input_ids=x, use_cache=False).logits[0].float().double()
            logp = torch.log_softmax(logits[:-1], dim=-1)
            nll = -logp.gather(1, x[0, 1:, None]).sum().item()
            wins.append(w)
            sums.append(nll)
            counts.append(len(w) - 1)
    total, n_pred = math.fsum(sums), sum(counts)
    out = {
        "definition": "first %d windows of scripts/train_tiny.py's held-out evaluation (context %d); "
                      "-log softmax in float64 on float32 logits of the bf16 weights" % (len(starts), C),
        "context": C,
        "windows": len(starts),
        "predicted_tokens": n_pred,
        "loss": total / n_pred,
        "ppl": math.exp(total / n_pred),
        "window_nll_sum": sums,
        "window_loss": [s / c for s, c in zip(sums, counts)],
        "heldout_tokens": len(ids),
        "heldout_ids_sum": sum(ids),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "sha256": {"model.safetensors": sha256(os.path.join(a.model, "model.safetensors")),
                   "heldout.txt": sha256(a.text)},
        "ids": wins,
    }
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("%s: %d windows, %d predicted tokens, loss %.6f, ppl %.4f (heldout: %d tokens, id sum %d)"
          % (a.out, len(starts), n_pred, out["loss"], out["ppl"], len(ids), sum(ids)))


if __name__ == "__main__":
    main()
