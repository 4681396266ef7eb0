#!/usr/bin/env python3
"""make_tokenizer_cases.py - write tests/golden/tokenizer/cases.jsonl, the
tokenizer golden inputs (one JSON string per line).

Usage:  python3 scripts/make_tokenizer_cases.py > tests/golden/tokenizer/cases.jsonl
        python3 scripts/make_tokenizer_cases.py --all > tests/golden/tokenizers/cases.jsonl

The first form is Qwen3's set (kept as it was, so its committed expected
file stays valid). --all adds the cases the other families need: their
special tokens in text (Llama 3's headers, GPT-2's <|endoftext|>), the
added-token flags of the hand-made variants (lstrip, rstrip, single_word,
normalized), digit runs for \\p{N}{1,3} and Digits, the Split behaviours'
delimiters, prefix-space edge cases; scripts/make_tokenizer_variants.py
describes the variants.

Standard library only, and deterministic (a fixed seed), so the file can be
regenerated and reviewed as a diff. The expected ids come from HF
`tokenizers` through scripts/oracle_tokenizer.py (run by the lead on the GPU
machine), never from this engine.

The cases aim at every branch of the pipeline: added-token splitting, NFC,
each alternative of the pre-tokenizer regex (and the \\s+(?!\\S) backtrack),
BPE on rare and long words, and byte-level handling of every script.

Docs: docs/tokenizer.md
"""
import json
import random
import sys

R = random.Random(20261122)

cases = []


def add(*xs):
    for x in xs:
        cases.append(x)


# --- white space: runs, kinds, positions --------------------------------
for ws in [" ", "  ", "   ", "\t", "\t\t", " \t", "\t ", "\u00a0", "\u3000", "\u2003", " \u00a0 "]:
    add(ws, "a" + ws + "b", ws + "a", "a" + ws, ws + "1", "x" + ws + "!", ws + ws + "word")
add("", " ", "hello world", "hello  world", "hello   world", "  leading", "trailing  ",
    " a b  c   d    e     f", "\t\tindented\twith\ttabs", "only\u2009thin\u200aspaces")

# --- line breaks -----------------------------------------------------------
add("\n", "\n\n", "\r\n", "\r", "\r\r\n\n", "a\nb", "a\r\nb", "a\rb", "a\n\nb", "a \n b",
    "a  \n  b", "a\t\n\tb", "line1\nline2\r\nline3\rline4", "end\n", "end \n", "end\n ",
    "\n start", " \n", "\n \n \n", "x\u0085y", "x\u2028y", "x\u2029y", "x\u000by\u000cz",
    "!!\n\n", "?\r\n", ".\n\n\nnext", "a\n\n\n\n\n\n\n\nb", "\r\n\r\n\r\n", "a \r\n\t b")

# --- contractions, any case ---------------------------------------------------
for c in ["s", "t", "re", "ve", "m", "ll", "d"]:
    for v in dict.fromkeys([c, c.upper(), c.capitalize()]):
        add("it'" + v, "'" + v, "x '" + v + " y", "'" + v + "abc")
add("I'm", "don't", "You're", "we've", "she'll", "he'd", "it's", "IT'S", "I'LL", "We'Ve",
    "rock'n'roll", "'quoted'", "''", "'", "' s", "''s", "'x", "O'Neil", "l'été", "dell'arte",
    "can\u2019t", "it\u2019s", "'\u017f", "'\u017fx", "x'S'T'RE")

# --- numbers -------------------------------------------------------------------
add("0", "7", "12", "123", "2024", "3.14159", "-42", "+1", "1,000,000", "1e10", "0x1F", "0b1010",
    "100%", "$9.99", "v1.2.3", "10:30", "2026-11-22", "192.168.0.1", "12345678901234567890",
    "9" * 200, "1 2 3", "a1b2c3", "abc123def", "²", "x²+y³", "H₂O", "１２３", "٠١٢٣٤٥٦٧٨٩",
    "०१२३", "Ⅻ", "ⅻ and Ⅳ", "½ cup", "¾", "⅓⅔", "①②③", "𝟘𝟙𝟚", "๑๒๓", "፩፪", "〇", "三百")

# --- code ------------------------------------------------------------------------
add('int main(void) {\n    return 0;\n}\n',
    '#include <stdio.h>\nint main(){printf("hi\\n");}',
    'for (int i = 0; i < n; i++) { a[i] += b[i] * c; }',
    'def f(x):\n    """Doc."""\n    return x ** 2  # square\n',
    'class Foo(Bar):\n\tdef __init__(self, *args, **kwargs):\n\t\tsuper().__init__()\n',
    'x = [i for i in range(10) if i % 2 == 0]',
    '{"key": "value", "n": 1, "arr": [1, 2, 3], "nested": {"a": null}}',
    '<!DOCTYPE html>\n<html><head><title>T</title></head><body><p class="x">Hi &amp; bye</p></body></html>',
    '#!/bin/sh\nset -eu\nfor f in *.txt; do echo "$f"; done | sort -u > out.log 2>&1',
    'SELECT id, name FROM users WHERE age >= 18 ORDER BY name;',
    'fn main() { let v: Vec<u8> = vec![1, 2]; println!("{:?}", v); }',
    'const f = async (a, b) => { await g(a ?? b); };',
    '    indented four\n        indented eight\n',
    'a==b&&c!=d||e<=f>>=g', 'x+=1;y-=2;z*=3;w/=4;', '/* comment */ // line', '```python\nprint(1)\n```',
    '    ', '\t\tfoo();\n\t}\n}', 'if(a){b();}else{c();}', '$ ls -la ~/.config', 'C:\\Windows\\System32',
    '@decorator\ndef g(): pass', 'λx.x', 'a->b', 'std::vector<int>', '#define MAX(a,b) ((a)>(b)?(a):(b))')

# --- URLs, emails, paths ------------------------------------------------------------
add("https://example.com/path?q=1&r=two#frag", "http://localhost:8080/", "www.google.com",
    "mailto:user@example.org", "first.last+tag@sub.domain.co.uk", "ftp://files.example.net/a/b.tar.gz",
    "/usr/local/bin/fs", "./scripts/run.sh --flag=value", "git@github.com:owner/repo.git",
    "https://zh.wikipedia.org/wiki/中文", "user@例子.测试")

# --- emoji --------------------------------------------------------------------------
add("😀", "👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸", "🇯🇵🇫🇷", "❤️", "☺", "I ❤️ NY", "🔥🔥🔥", "hi😀there",
    "👩🏻‍💻 coding", "🧑‍🚀", "✅ done", "⚠️ warning", "#️⃣", "1️⃣2️⃣", "🤷‍♂️", "😀 😃 😄 😁")

# --- NFC: decomposed input that composes, and things that must not ------------------
add("e\u0301", "cafe\u0301", "A\u030a", "n\u0303o", "a\u0323\u0302", "a\u0302\u0323",
    "\u1100\u1161", "\u1100\u1161\u11a8", "\u1112\u1161\u11ab\u1100\u1173\u11af", "\u0041\u030a\u0301",
    "\u212b", "\u2126", "\u00c5", "\u1e9b\u0323", "\u0071\u0307\u0323", "\u0f73", "\u0344",
    "e\u0301\u0301", "\u0301", "\u0301abc", "x\u0300\u0316", "\u0915\u093c", "\u09c7\u09be",
    "\u3046\u3099", "\u304b\u3099", "\uff76\uff9e", "Å", "ñ", "Ǆ", "ﬁ", "①", "\u0340", "\u0958",
    "\u2000", "\u2001", "\uf900", "\U0002f800", "\u1e0a\u0323", "\u0044\u0307\u0323")

# --- scripts ------------------------------------------------------------------------
add("你好，世界！", "我爱北京天安门。", "这是一个测试句子，包含标点符号：逗号、句号。", "中文English混合text",
    "日本語のテキストです。", "ひらがな カタカナ 漢字", "ｶﾀｶﾅ", "한국어 문장입니다.", "안녕하세요 세계",
    "مرحبا بالعالم", "العربية: ١٢٣", "שלום עולם", "עברית עם ניקוד: שָׁלוֹם", "नमस्ते दुनिया",
    "हिन्दी में लिखा गया पाठ।", "สวัสดีชาวโลก", "ภาษาไทยไม่มีช่องว่าง", "Привет, мир!", "Ёлки-палки",
    "Γειά σου Κόσμε", "ΑΒΓ αβγ ς", "Ἀθῆναι", "Tiếng Việt có dấu", "Türkçe İı", "Ελληνικά",
    "ქართული", "Հայերեն", "አማርኛ", "ᚠᚢᚦ", "ꦗꦮ", "𐍈", "𓀀𓀁", "ᏣᎳᎩ", "ᠮᠣᠩᠭᠣᠯ", "བོད་ཡིག",
    "தமிழ்", "తెలుగు", "ಕನ್ನಡ", "മലയാളം", "සිංහල", "ગુજરાતી", "ਪੰਜਾਬੀ", "বাংলা", "ଓଡ଼ିଆ",
    "Ṣọ̀rọ̀ Yorùbá", "Straße", "ß ẞ", "Æsir øre", "Łódź", "Čeština", "Ğ", "ǅ ǈ ǋ", "ꙮ")

# --- control characters ----------------------------------------------------------------
add("\u0000", "a\u0000b", "\u0001", "x\u0001y", "\u007f", "del\u007f", "\u0085", "\u0080\u0081",
    "\u001b[31mred\u001b[0m", "\u0007bell", "\u200b", "zero\u200bwidth", "\u200d", "\ufeffBOM",
    "\u00ad", "soft\u00adhyphen", "\ufffd", "\U0010ffff", "\ue000", "\u202e rtl override",
    "\u0008\u0009\u000a\u000b\u000c\u000d\u000e\u001f")

# --- added tokens inside text, and near misses -------------------------------------
add("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
    "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n",
    "<think>\nreasoning here\n</think>\n\nanswer",
    "text<|endoftext|>more", "<|endoftext|><|endoftext|>", "a <|im_end|> b", " <|im_start|>",
    "<|im_start>", "<|im_start|", "<im_start|>", "<|im_start |>", "<|IM_START|>", "<<|im_start|>>",
    "<|im_start|><|im_start|>", "<thinking>", "<think", "think>", "</think", "<|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>",
    "<tool_response>{}</tool_response>", "<|vision_start|><|image_pad|><|vision_end|>", "<|>", "<||>",
    "<|box_start|>(1,2)<|box_end|>", "<|object_ref_start|>cat<|object_ref_end|>", "<|repo_name|>a<|file_sep|>b",
    "e\u0301<|im_end|>\u0301", "<|endoftext|>\u0301",
    # '>' + U+0338 composes to U+226F under NFC; HF splits added tokens before
    # normalizing, so the token must survive (and the mark stays apart).
    "<|im_end|>\u0338", "<think>\u0338x", "a<\u0338b", "\u226e\u226f", "<\u0338|im_start|>")

# --- punctuation and markdown -------------------------------------------------------
add("!!!", "???", "...", "!?!?", "---", "===", "***", "~~~", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    "Hello!!! How are you???", "Wait... what?!", "a--b", "(a)[b]{c}<d>", "\"quoted\"", "“smart quotes”",
    "‘single’", "«guillemets»", "— em dash – en dash", "…", "§1.2", "© ® ™", "• bullet", "→ ← ↑ ↓",
    "# Heading\n\n## Sub\n\n- item 1\n- item 2\n\n**bold** _italic_ `code`",
    "| a | b |\n|---|---|\n| 1 | 2 |", "> quote\n>> nested", "[link](http://x.y) ![img](a.png)",
    "1. first\n2. second\n   - nested", "$$E=mc^2$$", "\\frac{a}{b} + \\sqrt{x}", "***bold italic***",
    " .", " ..", " !x", "x !", " \u00a0!", "?\n", "a.\r\n", "end.\n\n\n", "x.\n \n")

# --- long words and repeats -----------------------------------------------------------
add("a" * 1000, "ab" * 600, "Supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "ThisIsAVeryLongCamelCaseIdentifierThatKeepsGoingAndGoing" * 5, "x" * 3000, " " * 500, "\n" * 300,
    "ha" * 300, "中" * 500, "😀" * 200, "é" * 400, "e\u0301" * 100, "-" * 1000, "0123456789" * 100,
    "the " * 250, "\t" * 100 + "x", "a " * 400 + " ", "aaaa bbbb cccc " * 60)

# --- assorted sentences ------------------------------------------------------------------
add("The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "tHe QuIcK bRoWn",
    "Hello, world!", "It was the best of times, it was the worst of times.",
    "To be, or not to be: that is the question.", "Mr. Smith's 3rd car isn't red.",
    "The price is $1,234.56 (approx.)", "E = mc² and a² + b² = c²", "C'est la vie, n'est-ce pas?",
    "Über naïve café résumé coöperate", "São Paulo é uma cidade", "¿Dónde está? ¡Aquí!",
    "Qwen3 is a large language model.", "GPT-4o vs. Llama-3.1-8B-Instruct", "iPhone 15 Pro Max",
    "New York, NY 10001", "RFC 8259 §7", "tokenizer.json (11 MB)", "U.S.A.", "e.g. i.e. etc.")

# --- generated mixes: random strings over a character pool, reproducible ------------
pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") +
        list(" \t\n\r.,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`") +
        list("éüßñçøåœ中文日本語한국어العربيةשלוםनमस्ते") +
        ["\u0301", "\u0308", "\u00a0", "\u3000", "😀", "👍🏽", "\u200d", "½", "²", "Ⅻ", "١", "'s", "'LL",
         "<|im_end|>", "<think>", "\r\n", "  ", "\u0085", "\u1100", "\u1161", "\u11a8", "\u017f"])
for i in range(110):
    n = R.randint(1, 40)
    add("".join(R.choice(pool) for _ in range(n)))

# Longer documents: mixed English, code and CJK (also a good speed sample).
words = ["the", "of", "and", "model", "token", "Qwen", "inference", "数据", "模型", "学习", "テスト",
         "def", "return", "{", "}", "(x)", "123", "4.5", "—", "naïve", "😀", "\n", "\n\n", "  ", "'s", "don't"]
for i in range(12):
    add(" ".join(R.choice(words) for _ in range(R.randint(50, 300))))

# --- the other families (--all) -------------------------------------------------------
EXTRA = [
    # Llama 3's added tokens, real and near misses
    "<|begin_of_text|>Hello", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>",
    "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", "<|python_tag|>print(1)",
    "<|reserved_special_token_0|>", "<|reserved_special_token_247|>", "<|finetune_right_pad_id|>",
    "<|start_header_id|>", "<|start_header_id|", "<|eot_id>", "x<|eot_id|>y<|eot_id|>",
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
    "Today Date: 26 Jul 2024\n\n<|eot_id|>",
    # GPT-2 and the variants' added tokens
    "<|endoftext|>Hello", "a<|endoftext|>b", "<mask>", " <mask>", "a  <mask> b", "a\t\n<mask>b", "<mask><mask>",
    "x[R]   y", "[R]\n\nz", "[R]", "  [R]  ", "word", "a word b", "words", "sword", "_word", "word_", "1word",
    "word1", "\u00e9word", "word.", "(word)", "word word", "wordword", "e\u0301!", "\u00e9!", "cafe\u0301!",
    "<both>", "  <both>  x", "x<both>y", "<s>", "</s>", "<s>hi</s>", "<s", "s>",
    # digit runs: \p{N}{1,3} (Llama 3), Digits (SmolLM2), GPT-2's ` ?\p{N}+`
    "1", "12", "123", "1234", "12345", "123456", "1234567", "12 345 6789", "3.14159265", "1,234,567.89",
    "\uff11\uff12\uff13\uff14", "\u0660\u0661\u0662\u0663\u0664", "x1y22z333w4444", "2024-12-04T17:45:00Z",
    "\u00b2\u00b3\u00b9", "\u2160\u2161\u2162\u2163", " 42", "  42", "a42b",
    # Split behaviours' delimiters (the "splits" variant)
    "a--b--c", "x--", "--x", "----", "abc123def456", "xxaxx", "queueing", "aeiou", "AEIOU", "x1x2x",
    "tax-exempt--maybe", "  multiple   spaces  ", "exxxtra", "xox", "oxo",
    # prefix space (the "flags" variant adds one to every piece not starting with ' ')
    " leading", "no leading", "\tTab", "\nNL", "  two", "\u00a0nbsp", "<s> x",
    # case: GPT-2's contractions are case-sensitive, Llama 3's and Qwen's are not
    "IT'S", "I'M", "YOU'RE", "it's", "We'Ve", "'S", "'s'S",
    # single_word ("wordz" in the "flags" variant)
    "wordz", "a wordz b", "wordzz", "xwordz", "wordz.", "(wordz)", "wordz wordz", "  wordz", "_wordz", "wordz_",
    "\u00e9wordz", "1wordz", "wordz1", "\u00a0wordz", "wordz\u00a0", "\u00b2wordz", "wordz\u0301", "wordz\u200d",
]


if __name__ == "__main__":
    if "--all" in sys.argv[1:]:
        for x in EXTRA:
            cases.append(x)
    seen = set()
    out = []
    for c in cases:
        if c in seen:
            continue
        seen.add(c)
        out.append(json.dumps(c, ensure_ascii=True))
    sys.stdout.write("\n".join(out) + "\n")
    sys.stderr.write("%d cases\n" % len(out))
