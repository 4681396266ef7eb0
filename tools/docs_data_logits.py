#!/usr/bin/env python3
"""docs_data_logits.py - turn an `fs logits --dump-logits` file into a data
file for the learning site (docs/data/next-token-NAME.json).

Standard library only. Run once, by hand, when the data should change (the
site never runs fs); the JSON is committed and tools/docs_figures.py draws
the sampling pictures and the sampling widget's data from it.

    ./fs logits -m models/tiny -p "The king said unto" --top 0 --dump-logits /tmp/king.f32
    python3 tools/docs_data_logits.py --dump /tmp/king.f32 --model models/tiny \\
        --prompt "The king said unto" --command "..." --binary "fs at 60a70b2" \\
        --date 2026-12-04 --out docs/data/next-token-king.json

The dump is V little-endian f32 logits of the last position. Token texts
come from the model's tokenizer.json (byte-level BPE: every vocabulary
string is mapped back to its bytes, then decoded as UTF-8 with
replacement), so the JSON can label bars without running fs.

Docs: docs/sampling.md
"""
import argparse
import hashlib
import json
import struct
import sys


def byte_decoder():
    """GPT-2's byte-level alphabet, inverted: printable bytes stand for
    themselves, the others were shifted to 256 and up."""
    out, nxt = {}, 256
    for b in range(256):
        printable = 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or b >= 0xAE
        out[chr(b if printable else nxt)] = b
        if not printable:
            nxt += 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", required=True)
    ap.add_argument("--model", required=True, help="model directory (tokenizer.json, model.safetensors)")
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--command", required=True, help="the fs command that made the dump")
    ap.add_argument("--binary", required=True, help="which fs made it (commit)")
    ap.add_argument("--date", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    with open(a.dump, "rb") as f:
        raw = f.read()
    if len(raw) % 4:
        sys.exit("dump: size is not a multiple of 4")
    logits = list(struct.unpack("<%df" % (len(raw) // 4), raw))
    with open(a.model + "/tokenizer.json", encoding="utf-8") as f:
        tj = json.load(f)
    dec = byte_decoder()
    text = {}
    for s, i in tj["model"]["vocab"].items():
        text[i] = bytes(dec[c] for c in s).decode("utf-8", "replace")
    for t in tj.get("added_tokens", []):
        text[t["id"]] = t["content"]
    with open(a.model + "/model.safetensors", "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    data = {
        "prompt": a.prompt,
        "command": a.command,
        "binary": a.binary,
        "date": a.date,
        "model": a.model,
        "model_sha256": sha,
        "V": len(logits),
        # 4 decimals: the pictures and the widget need no more, and the file stays small
        "logits": [round(x, 4) for x in logits],
        "tokens": [text.get(i, "") for i in range(len(logits))],
    }
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"{a.out}: V = {len(logits)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
