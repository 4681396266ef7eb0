#!/usr/bin/env python3
"""make_regex_cases.py - write tests/golden/regex/cases.jsonl, the inputs of
the regex engine's golden test: one {"pattern": P, "texts": [...]} per line.

Usage:  python3 scripts/make_regex_cases.py > tests/golden/regex/cases.jsonl

The patterns are the pre-tokenizer regexes of real tokenizer.json files
(Qwen2/3, Llama 3, GPT-2, GPT-4o/Llama-4 style) and small patterns aimed at
one construct each (classes, negation, \\p{..} categories, (?i), lookahead,
lazy and counted quantifiers, alternation order). The expected splits come
from Oniguruma itself, through HF tokenizers' Split pre-tokenizer
(scripts/oracle_tokenizer.py --regex, run on the GPU machine), never from
this engine. Standard library only, deterministic (a fixed seed).

Docs: docs/tokenizer.md
"""
import json
import random
import sys

R = random.Random(20261204)

QWEN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
GPT4O = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")

SMALL = [
    r"a|ab", r"ab|a", r"a+?b", r"a*?b", r"a{2,3}", r"a{2,3}?", r"a{2}", r"a{2,}", r"(?:ab)+", r"(ab|a)(?=c)",
    r"(?:a|b)(?!c)", r"[a-c]+", r"[^a-c]+", r"[^\W\d]+", r"\w+", r"\W+", r"\d+", r"\D+", r"\s+", r"\S+",
    r"\p{Lu}+", r"\p{Ll}+", r"\p{Lt}", r"\p{Lm}+", r"\p{Lo}+", r"\p{M}+", r"\p{Mn}", r"\p{Nd}+", r"\p{Nl}+",
    r"\p{No}+", r"\p{P}+", r"\p{Pc}|\p{Pd}|\p{Ps}|\p{Pe}", r"\p{Pi}|\p{Pf}", r"\p{Po}+", r"\p{S}+", r"\p{Sm}+",
    r"\p{Sc}", r"\p{Sk}", r"\p{So}+", r"\p{Z}+", r"\p{Zs}", r"\p{C}+", r"\p{Cc}+", r"\p{Cf}", r"\P{L}+",
    r"\p{^L}+", r"\pL+", r"\pN", r"[\p{L}\p{M}]+", r"[^\p{L}\p{N}\s]+", r"(?i:abc)", r"(?i:[a-c]+)",
    r"(?i:k)", r"(?i:s)", r"(?i:ss)", r"(?i)x+", r"a(?i:b)c", r"(?i:a(?-i:b))", r".", r".+", r"[.]+",
    r"\.", r"[\-+]+", r"[]a]+", r"[a\]]+", r"\x41+", r"\x{4e2d}", r"\u00e9", r"\t|\n|\r", r"[\r\n]+",
    r" ?\p{L}+", r"\s+(?!\S)", r"\s*[\r\n]+", r"'s|'t", r"(?=a)\w+", r"x(?!y)", r"(?:a|ab)(?:c|bcd)",
    r"[a-z&&]+", r"ba{,2}", r"a{x", r"[^\r\n\p{L}\p{N}]?\p{L}+", r"\p{N}{1,3}", r"[\p{Lu}\p{Lt}]+[\p{Ll}]*",
    r"[^[:x]]", r"(a)|b", r"(?:(?:a))+", r"[[a-c]x]+", r"[^[^a]]+",
]

pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") +
        list(" \t\n\r.,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`") +
        ["é", "É", "ß", "ſ", "K", "Σ", "σ", "ς", "ǅ", "ʰ", "中", "日", "한", "ا", "١", "²", "½", "Ⅻ", "\u0301",
         "\u0308", "\u0903", "\u20dd", "\u00a0", "\u3000", "\u2028", "\u0085", "\u200b", "\u200d", "\ufeff",
         "😀", "👍🏽", "\u00ad", "\u2019", "«", "»", "—", "€", "©", "∑", "^", "\x00", "\x07", "\x1b", "\ue000",
         "'s", "'T", "'re", "'LL", "\r\n", "  ", "   ", "k", "S", "s"])

FIXED = ["", "a", "ab", "abc", "aab", "aaab", "abab", "abcd", "abbcd", "xy", "xz", "x", "Hello World",
         "I'm don't WE'LL it'S", "12345 678", "a  b   c", "a \n b", "x\n\n  ", "\r\n\r\nx", "  \tfoo",
         "café CAFÉ Straße ſ K", "ǅemal ʰi", "中文English混合", "٣٤ ١٢٣٤", "x² ½ Ⅻ", "e\u0301 a\u0308",
         "“quote” «x» —", "$5 €6 ©", "a_b-c", "\x00\x07\x1b", "\u200bz\u200d", "😀👍🏽!", "a.b.c...",
         "[x]y]z", "-+-+", "AbCdEf", "aA", "\tq\nr\rs", "ab\u00a0cd\u3000ef"]


def texts():
    out = list(FIXED)
    for _ in range(60):
        out.append("".join(R.choice(pool) for _ in range(R.randint(1, 24))))
    return out


if __name__ == "__main__":
    lines = []
    for p in [QWEN, LLAMA3, GPT2, GPT4O] + SMALL:
        lines.append(json.dumps({"pattern": p, "texts": texts()}, ensure_ascii=True))
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stderr.write("%d patterns\n" % len(lines))
