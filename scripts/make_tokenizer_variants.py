#!/usr/bin/env python3
"""make_tokenizer_variants.py - hand-made tokenizer.json files that exercise
the parts of the pipeline no fetched tokenizer uses, all built on GPT-2's
real vocabulary and merges (models/tok-gpt2, `make tokenizers`).

Usage:  python3 scripts/make_tokenizer_variants.py models/tok-gpt2 OUT_DIR
        (writes OUT_DIR/tok-smol, tok-flags, tok-splits, each a tokenizer.json)

  smol    SmolLM2's pipeline (HuggingFaceTB/SmolLM2-*: no normalizer,
          Digits with individual_digits, then ByteLevel with GPT-2's regex;
          its added tokens <|im_start|> <|im_end|>). SmolLM2's own
          tokenizer.json is in no npm package we could find, so its
          vocabulary is GPT-2's here: the pipeline is what is tested.
  flags   every added-token flag: lstrip ("<mask>"), rstrip ("[R]"), both
          ("<both>"), single_word ("wordz"), normalized with a decomposed
          content ("e" + U+0301 + "!", found in NFC text); an NFC normalizer
          inside a Sequence; ByteLevel with add_prefix_space; a post-processor
          Sequence whose TemplateProcessing wraps the text in <s> ... </s>.
  splits  every Split behaviour (MergedWithPrevious with a String pattern,
          MergedWithNext, Contiguous, Removed, invert with
          MergedWithPrevious), Digits without individual_digits
          (Contiguous), BPE with ignore_merges, and a template that adds a
          suffix token only.

An added token's text must not be in the vocabulary already (HF would give
it the vocabulary's id instead of the file's, and fs refuses such a file).
HF `tokenizers` is the oracle for these exactly as for the real files
(scripts/oracle_tokenizer.py on the GPU machine). Standard library only;
the output depends only on the input file.

Docs: docs/tokenizer.md
"""
import json
import os
import sys


def added(i, content, special=True, lstrip=False, rstrip=False, single_word=False, normalized=False):
    return {"id": i, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": normalized, "special": special}


def byte_level(prefix=False, regex=True):
    return {"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": True, "use_regex": regex}


def template(before, after, ids):
    single = [{"SpecialToken": {"id": t, "type_id": 0}} for t in before]
    single.append({"Sequence": {"id": "A", "type_id": 0}})
    single += [{"SpecialToken": {"id": t, "type_id": 0}} for t in after]
    return {"type": "TemplateProcessing", "single": single, "pair": single,
            "special_tokens": {t: {"id": t, "ids": [ids[t]], "tokens": [t]} for t in before + after}}


def split(pattern, behavior, invert=False, literal=False):
    return {"type": "Split", "pattern": {"String" if literal else "Regex": pattern}, "behavior": behavior,
            "invert": invert}


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: make_tokenizer_variants.py GPT2_DIR OUT_DIR\n")
        return 1
    base = json.load(open(os.path.join(sys.argv[1], "tokenizer.json"), encoding="utf-8"))
    eot = base["added_tokens"][0]
    assert eot["content"] == "<|endoftext|>" and eot["id"] == 50256, eot

    def make(name, normalizer, pre, post, added_tokens, ignore_merges=False):
        d = dict(base)
        d["model"] = dict(base["model"])
        d["model"]["ignore_merges"] = ignore_merges
        d["normalizer"], d["pre_tokenizer"], d["post_processor"] = normalizer, pre, post
        d["decoder"] = byte_level(True)
        d["added_tokens"] = [eot] + added_tokens
        out = os.path.join(sys.argv[2], "tok-" + name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(d, f, ensure_ascii=False)

    make("smol", None,
         {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level()]},
         byte_level(), [added(50257, "<|im_start|>"), added(50258, "<|im_end|>")])
    make("flags", {"type": "Sequence", "normalizers": [{"type": "NFC"}]},
         byte_level(prefix=True),
         {"type": "Sequence", "processors": [byte_level(), template(["<s>"], ["</s>"], {"<s>": 50257, "</s>": 50258})]},
         [added(50257, "<s>"), added(50258, "</s>"), added(50259, "<mask>", lstrip=True),
          added(50260, "[R]", rstrip=True), added(50261, "wordz", special=False, single_word=True),
          added(50262, "e\u0301!", special=False, normalized=True),
          added(50263, "<both>", lstrip=True, rstrip=True)])
    make("splits", None,
         {"type": "Sequence", "pretokenizers": [
             split("--", "MergedWithPrevious", literal=True),
             split("\\d+", "MergedWithNext"),
             split("[aeiou]", "Contiguous"),
             split("x", "Removed"),
             split("\\s+", "MergedWithPrevious", invert=True),
             {"type": "Digits", "individual_digits": False},
             byte_level(regex=False)]},
         template([], ["<|endoftext|>"], {"<|endoftext|>": 50256}), [], ignore_merges=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
