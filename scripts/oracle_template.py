#!/usr/bin/env python3
"""oracle_template.py - render the chat-template golden cases with transformers.

Reads tests/golden/template/cases.jsonl (from make_template_cases.py; one
case a line: family, messages, optional tools, add_generation_prompt,
kwargs, now) and writes expected.jsonl: one JSON string per line, the text
of
    tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                  add_generation_prompt=..., **kwargs)
or null when transformers refuses the conversation (the template raised:
fs must refuse it too). tests/e2e_template.sh compares `fs template` with
it byte for byte.

strftime_now (Llama 3's "Today Date" line) reads the clock; the case's
"now" date is frozen into transformers' clock and also passed as a
strftime_now template variable (a render variable shadows the global), so
both ways give the same date. A probe checks it and says so in the log.

Runs where transformers is installed (no network needed):
    python3 scripts/oracle_template.py CASES.jsonl EXPECTED.jsonl FAMILY=DIR...
e.g. qwen3=models/qwen3-tokenizer qwen2_5=models/tok-qwen2_5
llama3_2=models/tok-llama3_2. DIR needs tokenizer.json and
tokenizer_config.json.

Docs: docs/chat.md
"""
import datetime as _dt
import json
import sys

import transformers
from transformers import AutoTokenizer


def freeze_clock(day):
    """Make transformers' strftime_now global return `day` (YYYY-MM-DD)."""
    fixed = _dt.datetime.strptime(day, "%Y-%m-%d")

    class Frozen(_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed

    try:
        import transformers.utils.chat_template_utils as ctu
    except ImportError:
        return
    d = getattr(ctu, "datetime", None)
    if d is _dt.datetime or isinstance(d, type):
        ctu.datetime = Frozen
    elif d is _dt:
        class Mod:
            datetime = Frozen
        ctu.datetime = Mod


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: oracle_template.py CASES.jsonl EXPECTED.jsonl FAMILY=TOKENIZER_DIR...")
    cases_path, out_path = sys.argv[1:3]
    dirs = dict(a.split("=", 1) for a in sys.argv[3:])
    print(f"transformers {transformers.__version__}")
    toks = {fam: AutoTokenizer.from_pretrained(d) for fam, d in dirs.items()}
    cases = [json.loads(line) for line in open(cases_path, encoding="utf-8") if line.strip()]
    frozen = None
    n = refused = 0
    with open(out_path, "w", encoding="utf-8") as out:
        for i, case in enumerate(cases):
            tok = toks[case["family"]]
            day = case.get("now")
            if day and day != frozen:
                freeze_clock(day)
                frozen = day
                try:
                    probe = tok.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                                    chat_template="{{ strftime_now('%Y-%m-%d') }}")
                except Exception as exc:
                    probe = f"probe failed: {exc}"
                print(f"clock frozen at {day}: transformers' own strftime_now says {probe!r}")
            kwargs = dict(case.get("kwargs", {}))
            if day:
                fixed = _dt.datetime.strptime(day, "%Y-%m-%d")
                kwargs["strftime_now"] = lambda fmt, fixed=fixed: fixed.strftime(fmt)
            try:
                text = tok.apply_chat_template(case["messages"], tools=case.get("tools"), tokenize=False,
                                               add_generation_prompt=case["add_generation_prompt"], **kwargs)
            except Exception as exc:  # the template itself raised: fs must fail too
                print(f"case {i} ({case['family']}): transformers refused: {type(exc).__name__}: {exc}")
                text = None
                refused += 1
            out.write(json.dumps(text, ensure_ascii=False) + "\n")
            n += 1
    print(f"wrote {n} expected renderings ({refused} refused) to {out_path}")


if __name__ == "__main__":
    main()
