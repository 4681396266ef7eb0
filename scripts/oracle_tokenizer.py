#!/usr/bin/env python3
"""oracle_tokenizer.py - the tokenizer golden file, from HF `tokenizers`.

Usage (on a machine with the `tokenizers` package; no network needed):
    python3 scripts/oracle_tokenizer.py models/qwen3-tokenizer/tokenizer.json \\
        tests/golden/tokenizer/cases.jsonl > tests/golden/tokenizer/expected.jsonl

Reads one JSON string per line of cases.jsonl and writes, per line,
    {"ids": [...], "decoded": "...", "nfc": "..."}
  ids      tokenizer.encode(text, add_special_tokens=False).ids
  decoded  tokenizer.decode(ids, skip_special_tokens=False)
  nfc      the text as the tokenizer normalizes it, for the round-trip
           check decode(encode(x)) == nfc: NFC applied to each span between
           added tokens (HF finds added tokens in the raw text first, so
           "<|im_end|>" + U+0338 keeps its token although NFC of the whole
           string would compose '>' + U+0338 into U+226F).
The first line is a header object {"oracle": ...} naming the versions
(tokenizers, Python's unicodedata.unidata_version), since a Unicode version
difference is the one expected source of disagreement with the engine's UCD.

Docs: docs/tokenizer.md
"""
import json
import re
import sys
import unicodedata


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: oracle_tokenizer.py TOKENIZER_JSON CASES_JSONL > EXPECTED_JSONL\n")
        return 1
    import tokenizers
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(sys.argv[1])
    out = sys.stdout
    out.write(json.dumps({"oracle": "tokenizers " + tokenizers.__version__,
                          "unicodedata": unicodedata.unidata_version,
                          "python": sys.version.split()[0]}) + "\n")
    added = sorted((a["content"] for a in json.load(open(sys.argv[1], encoding="utf-8"))["added_tokens"]),
                   key=len, reverse=True)
    split = re.compile("(" + "|".join(re.escape(a) for a in added) + ")")

    def nfc(text):
        return "".join(p if i % 2 else unicodedata.normalize("NFC", p) for i, p in enumerate(split.split(text)))

    n = 0
    with open(sys.argv[2], encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)
            ids = tok.encode(text, add_special_tokens=False).ids
            decoded = tok.decode(ids, skip_special_tokens=False)
            out.write(json.dumps({"ids": ids, "decoded": decoded,
                                  "nfc": nfc(text)},
                                 ensure_ascii=True) + "\n")
            n += 1
    sys.stderr.write("%d cases (tokenizers %s, unicodedata %s)\n"
                     % (n, tokenizers.__version__, unicodedata.unidata_version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
