#!/usr/bin/env python3
"""oracle_tokenizer.py - the tokenizer and regex golden files, from HF
`tokenizers` (run on the GPU machine; no network needed).

Usage:
    python3 scripts/oracle_tokenizer.py [--pretok] TOKENIZER_JSON CASES_JSONL > EXPECTED_JSONL
    python3 scripts/oracle_tokenizer.py --regex REGEX_CASES_JSONL > EXPECTED_JSONL

Tokenizer mode reads one JSON string per line of CASES_JSONL and writes, per line,
    {"ids": [...], "decoded": "...", "nfc": "...", "pre": [...], "post": [...]}
  ids      tokenizer.encode(text, add_special_tokens=False).ids
  pre/post the ids that add_special_tokens=True adds before and after
           (absent when it adds none; the script checks that encode with
           add_special_tokens=True is exactly pre + ids + post, and writes
           the whole list as "ids_special" if it ever is not)
  decoded  tokenizer.decode(ids, skip_special_tokens=False)
  nfc      the text as the tokenizer normalizes it, for the round-trip
           check decode(encode(x)) == nfc: the normalizer applied to each
           span between added tokens (HF finds non-normalized added tokens
           in the raw text first, so "<|im_end|>" + U+0338 keeps its token
           although NFC of the whole string would compose '>' + U+0338 into
           U+226F); the text itself when there is no normalizer
  pretok   (--pretok) the pre-tokenizer's pieces of the whole normalized
           text, for debugging a disagreement
The first line is a header object {"oracle": ...} naming the versions
(tokenizers, Python's unicodedata.unidata_version), since a Unicode version
difference is the one expected source of disagreement with the engine's UCD.

Regex mode reads {"pattern": P, "texts": [...]} lines (scripts/make_regex_cases.py)
and runs Oniguruma through a Split pre-tokenizer on each text:
    {"pattern": P, "texts": [...], "matches": [[piece, ...], ...], "isolated": [[piece, ...], ...]}
  matches   the regex's matches, in order (Split, behavior Removed, invert:
            removing the non-matches)
  isolated  matches and the text between them (Split, behavior Isolated)
or {"pattern": P, "error": "..."} when Oniguruma refuses the pattern.

Docs: docs/tokenizer.md
"""
import json
import re
import sys
import unicodedata


def tokenizer_mode(path, cases_path, pretok):
    import tokenizers
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(path)
    out = sys.stdout
    out.write(json.dumps({"oracle": "tokenizers " + tokenizers.__version__,
                          "unicodedata": unicodedata.unidata_version,
                          "python": sys.version.split()[0]}) + "\n")
    spec = json.load(open(path, encoding="utf-8"))
    raw_added = sorted((a["content"] for a in spec["added_tokens"] if not a.get("normalized", False)),
                       key=len, reverse=True)
    split = re.compile("(" + "|".join(re.escape(a) for a in raw_added) + ")") if raw_added else None

    def normalize(text):
        if tok.normalizer is None:
            return text
        if split is None:
            return tok.normalizer.normalize_str(text)
        return "".join(p if i % 2 else tok.normalizer.normalize_str(p) for i, p in enumerate(split.split(text)))

    n = 0
    with open(cases_path, encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)
            ids = tok.encode(text, add_special_tokens=False).ids
            full = tok.encode(text, add_special_tokens=True).ids
            rec = {"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False), "nfc": normalize(text)}
            if full != ids:
                k = 0
                while k < len(full) and (k + len(ids) > len(full) or full[k:k + len(ids)] != ids):
                    k += 1
                if k < len(full):
                    rec["pre"], rec["post"] = full[:k], full[k + len(ids):]
                else:
                    rec["ids_special"] = full
            if pretok and tok.pre_tokenizer is not None:
                rec["pretok"] = [p for p, _ in tok.pre_tokenizer.pre_tokenize_str(normalize(text))]
            out.write(json.dumps(rec, ensure_ascii=True) + "\n")
            n += 1
    sys.stderr.write("%s: %d cases (tokenizers %s, unicodedata %s)\n"
                     % (path, n, tokenizers.__version__, unicodedata.unidata_version))


def regex_mode(cases_path):
    import tokenizers
    from tokenizers import Regex
    from tokenizers.pre_tokenizers import Split

    out = sys.stdout
    out.write(json.dumps({"oracle": "tokenizers " + tokenizers.__version__ + " (Oniguruma)",
                          "unicodedata": unicodedata.unidata_version}) + "\n")
    with open(cases_path, encoding="utf-8") as f:
        for line in f:
            case = json.loads(line)
            p = case["pattern"]
            try:
                rx = Regex(p)
                iso = Split(rx, behavior="isolated")
                only = Split(rx, behavior="removed", invert=True)
            except Exception as ex:  # Oniguruma refused the pattern
                out.write(json.dumps({"pattern": p, "error": str(ex)}, ensure_ascii=True) + "\n")
                continue
            rec = {"pattern": p, "texts": case["texts"], "matches": [], "isolated": []}
            for t in case["texts"]:
                rec["matches"].append([s for s, _ in only.pre_tokenize_str(t)])
                rec["isolated"].append([s for s, _ in iso.pre_tokenize_str(t)])
            out.write(json.dumps(rec, ensure_ascii=True) + "\n")


def main():
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--regex":
        regex_mode(args[1])
        return 0
    pretok = bool(args) and args[0] == "--pretok"
    if pretok:
        args = args[1:]
    if len(args) != 2:
        sys.stderr.write("usage: oracle_tokenizer.py [--pretok] TOKENIZER_JSON CASES_JSONL > EXPECTED_JSONL\n"
                         "       oracle_tokenizer.py --regex REGEX_CASES_JSONL > EXPECTED_JSONL\n")
        return 1
    tokenizer_mode(args[0], args[1], pretok)
    return 0


if __name__ == "__main__":
    sys.exit(main())
