#!/usr/bin/env python3
"""oracle_template.py - render the chat-template golden cases with transformers.

Reads tests/golden/template/cases.jsonl (from make_template_cases.py) and
writes tests/golden/template/expected.jsonl: one JSON string per line, the
text of
    tokenizer.apply_chat_template(messages, tokenize=False,
                                  add_generation_prompt=True,
                                  enable_thinking=case["enable_thinking"])
or null when transformers refuses the conversation (then fs must refuse it
too). tests/e2e_template.sh compares `fs template` with it byte for byte.

Runs where transformers is installed (no network needed):
    python3 scripts/oracle_template.py models/qwen3-tokenizer \
        tests/golden/template/cases.jsonl tests/golden/template/expected.jsonl
TOKENIZER_DIR needs tokenizer.json and tokenizer_config.json.

Docs: docs/testing.md
"""
import json
import sys

from transformers import AutoTokenizer


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: oracle_template.py TOKENIZER_DIR CASES.jsonl EXPECTED.jsonl")
    tok_dir, cases_path, out_path = sys.argv[1:]
    tok = AutoTokenizer.from_pretrained(tok_dir)
    n = refused = 0
    with open(cases_path, encoding="utf-8") as f, open(out_path, "w", encoding="utf-8") as out:
        for line in f:
            if not line.strip():
                continue
            case = json.loads(line)
            try:
                text = tok.apply_chat_template(case["messages"], tokenize=False, add_generation_prompt=True,
                                               enable_thinking=case["enable_thinking"])
            except Exception as exc:  # the template itself raised: fs must fail too
                print(f"case {n}: transformers refused: {exc}", file=sys.stderr)
                text = None
                refused += 1
            out.write(json.dumps(text, ensure_ascii=False) + "\n")
            n += 1
    print(f"wrote {n} expected renderings ({refused} refused) to {out_path}")


if __name__ == "__main__":
    main()
