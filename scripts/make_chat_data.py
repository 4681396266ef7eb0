#!/usr/bin/env python3
"""make_chat_data.py - build the tiny model's chat data from its corpus.

Docs: models/tiny/README.md

Standard library only.  Reads CORPUS/train.txt (scripts/fetch_corpus.sh:
Brown samples, then the 1189 KJV chapters in canonical order, then Austen's
six novels, every 50th document held out) and writes JSON lines, one
conversation each:

    {"kind": "greeting", "messages": [{"role": "user", "content": "Hello!"},
                                      {"role": "assistant", "content": "..."}],
     "text": "<|im_start|>user\\nHello!<|im_end|>\\n<|im_start|>assistant\\n"
             "<think>\\n\\n</think>\\n\\n...<|im_end|>\\n",
     "train": [[start, end], ...]}

"text" is the conversation exactly as the model's chat template (Qwen3's,
models/tiny/tokenizer_config.json) renders it with enable_thinking=false
and no generation prompt: the last assistant turn carries the empty think
block, earlier ones do not.  "train" are the character spans the loss is
taken on: every assistant reply plus its <|im_end|> (the think block and
the turn headers are prompt, as `fs run` gives them).  --check FS renders
the first conversations with `FS template --no-think
--no-generation-prompt` and requires the same bytes.

train_tiny.py's validation documents (every 50th of train.txt, from the
25th) are left out, so its validation loss stays a clean measure, and
heldout.txt is never read.

What the conversations are (all answers come from the text or from where
the text sits in the corpus):
  greeting   hello / how are you / who are you / thanks / bye, and a short
             canned reply about what the model is;
  continue   "Continue this passage: <a sentence or two>" -> the next
             sentence or two of the document;
  source     "<passage>  What book is this from?" -> "This is from the
             Book of Genesis, chapter 3." (KJV, by chapter order), "...
             Jane Austen's Emma." (Austen, by novel), "... a piece of
             press reportage from the Brown Corpus." (Brown, by category);
  speaker    a line of dialogue in quotes ("..." said Emma) -> "Emma."
  verse      "Give me a verse from Psalms." -> a verse of that book;
  plain      a sentence as the whole user turn -> the next sentence;
plus a share of two-turn conversations (a greeting, then one of the
others) and of conversations with a short system prompt.

    python3 scripts/make_chat_data.py --corpus build/corpus --out build/chat.jsonl \
        [--n 24000] [--seed 1] [--check build/fs]
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile

KJV_BOOKS = [
    ("Genesis", 50), ("Exodus", 40), ("Leviticus", 27), ("Numbers", 36), ("Deuteronomy", 34),
    ("Joshua", 24), ("Judges", 21), ("Ruth", 4), ("1 Samuel", 31), ("2 Samuel", 24), ("1 Kings", 22),
    ("2 Kings", 25), ("1 Chronicles", 29), ("2 Chronicles", 36), ("Ezra", 10), ("Nehemiah", 13),
    ("Esther", 10), ("Job", 42), ("Psalms", 150), ("Proverbs", 31), ("Ecclesiastes", 12),
    ("Song of Solomon", 8), ("Isaiah", 66), ("Jeremiah", 52), ("Lamentations", 5), ("Ezekiel", 48),
    ("Daniel", 12), ("Hosea", 14), ("Joel", 3), ("Amos", 9), ("Obadiah", 1), ("Jonah", 4), ("Micah", 7),
    ("Nahum", 3), ("Habakkuk", 3), ("Zephaniah", 3), ("Haggai", 2), ("Zechariah", 14), ("Malachi", 4),
    ("Matthew", 28), ("Mark", 16), ("Luke", 24), ("John", 21), ("Acts", 28), ("Romans", 16),
    ("1 Corinthians", 16), ("2 Corinthians", 13), ("Galatians", 6), ("Ephesians", 6), ("Philippians", 4),
    ("Colossians", 4), ("1 Thessalonians", 5), ("2 Thessalonians", 3), ("1 Timothy", 6), ("2 Timothy", 4),
    ("Titus", 3), ("Philemon", 1), ("Hebrews", 13), ("James", 5), ("1 Peter", 5), ("2 Peter", 3),
    ("1 John", 5), ("2 John", 1), ("3 John", 1), ("Jude", 1), ("Revelation", 22)]
NOVELS = ["Emma", "Mansfield Park", "Northanger Abbey", "Persuasion", "Pride and Prejudice",
          "Sense and Sensibility"]
BROWN = {"a": "a piece of press reportage", "b": "a press editorial", "c": "a press review",
         "d": "a piece of religious writing", "e": "a piece about skills and hobbies",
         "f": "a piece of popular lore", "g": "a piece of belles lettres", "h": "a government document",
         "j": "a piece of learned writing", "k": "a piece of general fiction", "l": "a mystery story",
         "m": "a piece of science fiction", "n": "an adventure story", "p": "a romance",
         "r": "a piece of humor"}
# Brown sample files by category, in fetch_corpus.sh's (sorted) order.
BROWN_COUNTS = [("a", 44), ("b", 27), ("c", 17), ("d", 17), ("e", 36), ("f", 48), ("g", 75), ("h", 30),
                ("j", 80), ("k", 29), ("l", 24), ("m", 6), ("n", 29), ("p", 29), ("r", 9)]

GREETINGS = ["Hello!", "Hello", "Hi!", "Hi", "Hi there!", "Hey!", "Hey", "Hello there.", "Good morning!",
             "Good evening!", "Good afternoon.", "Greetings!", "Hello, how are you?", "hello", "hi",
             "Hey, how is it going?", "Howdy!", "Hi! How are you today?", "Yo!", "Hello, friend."]
GREETING_REPLIES = [
    "Hello! How can I help you?",
    "Hi! What would you like to talk about?",
    "Hello there. Ask me about a passage, or ask me to continue one.",
    "Hello! I am a very small model. I know a little of the Bible, Jane Austen and old newspapers.",
    "Hi there! What can I do for you?",
    "Good day to you. How can I help?",
    "Hello! I can continue a passage or tell you where it comes from.",
    "Hi. I am well, thank you. What shall we talk about?",
]
HOW_ARE_YOU = ["How are you?", "How are you doing?", "How do you do?", "Are you well?", "How is your day?"]
HOW_REPLIES = ["I am well, thank you. And you?", "Very well, thank you. How can I help?",
               "I am quite well, thank you.", "I am fine, thank you for asking."]
WHO = ["Who are you?", "What are you?", "What is your name?", "Tell me about yourself.",
       "What can you do?", "What do you know?", "Introduce yourself."]
WHO_REPLIES = [
    "I am tiny, a small language model made by the fs project. I was trained on the King James Bible, "
    "Jane Austen's novels and the Brown Corpus.",
    "I am a tiny model of about six million parameters. I can continue a passage or say where it is from.",
    "My name is tiny. I have read the Bible, Jane Austen and some old American writing, and not much else.",
    "I am a very small model. Give me a passage and I will continue it, or ask me what book it is from.",
]
THANKS = ["Thanks!", "Thank you.", "Thank you very much!", "Thanks a lot.", "Great, thanks."]
THANKS_REPLIES = ["You are welcome.", "You are very welcome!", "Glad to help.", "Any time."]
BYE = ["Bye!", "Goodbye.", "See you later!", "Good night.", "Farewell!"]
BYE_REPLIES = ["Goodbye!", "Goodbye, and take care.", "Farewell!", "Good night!"]
SYSTEMS = ["You are a helpful assistant.", "You are tiny, a small model. Answer briefly.",
           "Be brief.", "You are a friendly assistant who has read old books."]
CONTINUE_ASKS = ["Continue this passage: ", "Continue: ", "Please continue this text:\n", "What comes next? ",
                 "Go on from here: ", "Finish this: ", "Continue the story: "]
SOURCE_ASKS = ["What book is this from?", "Where is this from?", "Which book is this?",
               "What is the source of this passage?", "Where does this come from?"]
SPEAKER_ASKS = ["Who is speaking?", "Who says this?", "Who said that?", "Which character says this?"]

VAL_PHASE = 24  # train_tiny.py's validation documents: index % 50 == 24 of train.txt's
SENT = re.compile(r"(?<=[.!?])[\"']?\s+(?=[\"A-Z])")
SAID = re.compile(r'^"([^"]{12,220})[,!?]" (?:said|cried|replied|answered) '
                  r'((?:Mr\. |Mrs\. |Miss |Lady |Sir |Colonel |Captain |Dr\. )?[A-Z][a-z]+)[.,;]')


def sentences(line):
    return [s.strip() for s in SENT.split(line) if s.strip()]


def render(msgs):
    """Qwen3's template with enable_thinking=false, no generation prompt:
    returns (text, trained spans)."""
    out, spans = [], []
    pos = 0
    last = len(msgs) - 1

    def put(s):
        nonlocal pos
        out.append(s)
        pos += len(s)

    for k, m in enumerate(msgs):
        if m["role"] in ("system", "user"):
            put("<|im_start|>%s\n%s<|im_end|>\n" % (m["role"], m["content"]))
            continue
        put("<|im_start|>assistant\n")
        if k == last:
            put("<think>\n\n</think>\n\n")
        start = pos
        put(m["content"] + "<|im_end|>")
        spans.append([start, pos])
        put("\n")
    return "".join(out), spans


def load_docs(corpus):
    """Train documents with where each sits: (text, kind, label)."""
    with open(os.path.join(corpus, "train.txt"), encoding="utf-8") as f:
        docs = [d for d in f.read().split("\n\n") if d.strip()]
    n_brown = sum(c for _, c in BROWN_COUNTS)
    n_kjv = sum(c for _, c in KJV_BOOKS)
    if n_kjv != 1189 or n_brown != 500:
        sys.exit("make_chat_data: book tables are wrong (%d chapters, %d Brown files)" % (n_kjv, n_brown))
    kjv = [(b, c + 1) for b, n in KJV_BOOKS for c in range(n)]
    brown = [cat for cat, n in BROWN_COUNTS for _ in range(n)]
    out, novel, g = [], -1, 0
    for d in docs:
        if g % 50 == 49:  # held out by fetch_corpus.sh
            g += 1
        if g < 500:
            out.append((d, "brown", brown[g]))
        elif g < 500 + 1189:
            out.append((d, "kjv", kjv[g - 500]))
        else:
            if not re.match(r"^(CHAPTER|Chapter) [0-9IVXLC]+\n", d):
                novel += 1  # the text before a novel's first chapter starts it
            out.append((d, "austen", NOVELS[min(novel, len(NOVELS) - 1)]))
        g += 1
    if novel != len(NOVELS) - 1:
        sys.exit("make_chat_data: found %d Austen novels, expected %d (is train.txt fetch_corpus.sh's?)" %
                 (novel + 1, len(NOVELS)))
    return out


def short(s, n=240):
    return len(s) <= n


class Builder:
    def __init__(self, docs, rng):
        # train_tiny.py validates on every 50th document of train.txt (from
        # the 25th): none of their text goes into a conversation
        docs = [x for j, x in enumerate(docs) if j % 50 != VAL_PHASE]
        self.docs, self.r = docs, rng
        self.prose = [(d, k, lab) for d, k, lab in docs if not (k == "austen" and not d.startswith(("CHAPTER", "Chapter")))]
        self.speech = []
        for d, k, lab in docs:
            if k != "austen" and not (k == "brown" and lab in "klmnpr"):
                continue
            for line in d.split("\n"):
                m = SAID.match(line)
                if m:
                    self.speech.append((m.group(1), m.group(2)))

    def pick(self, pred=None):
        while True:
            d, k, lab = self.r.choice(self.prose)
            if pred is None or pred(k, lab):
                return d, k, lab

    def run_of_sentences(self, n_ctx, n_ans, limit=260):
        """A passage of n_ctx sentences and the n_ans after it, short ones."""
        for _ in range(100):
            d, k, lab = self.pick()
            lines = [l for l in d.split("\n")[1 if k == "austen" else 0:]]
            if k == "kjv":
                sents = lines  # a verse is the unit
            else:
                sents = [s for l in lines for s in sentences(l)]
            if len(sents) < n_ctx + n_ans:
                continue
            i = self.r.randrange(0, len(sents) - n_ctx - n_ans + 1)
            ctx = " ".join(sents[i:i + n_ctx])
            ans = " ".join(sents[i + n_ctx:i + n_ctx + n_ans])
            if 20 <= len(ctx) <= limit and 10 <= len(ans) <= limit:
                return ctx, ans, k, lab
        raise RuntimeError("no passage found")

    def source_answer(self, k, lab):
        if k == "kjv":
            book, ch = lab
            name = "the Book of %s" % book if book[0] not in "123" and book not in ("Psalms", "Acts", "Song of Solomon", "Lamentations", "Revelation") else book
            return self.r.choice(["This is from %s, chapter %d, in the King James Bible." % (name, ch),
                                  "It is from the King James Bible: %s %d." % (book, ch),
                                  "%s, chapter %d, of the King James Bible." % (book, ch)])
        if k == "austen":
            return self.r.choice(["This is from Jane Austen's %s." % lab, "It comes from %s, by Jane Austen." % lab,
                                  "Jane Austen, %s." % lab])
        return self.r.choice(["This is %s from the Brown Corpus." % BROWN[lab],
                              "It looks like %s, from the Brown Corpus of American English." % BROWN[lab]])

    def one(self, kind):
        r = self.r
        if kind == "greeting":
            c = r.random()
            if c < 0.55:
                return [("user", r.choice(GREETINGS)), ("assistant", r.choice(GREETING_REPLIES))]
            if c < 0.7:
                return [("user", r.choice(HOW_ARE_YOU)), ("assistant", r.choice(HOW_REPLIES))]
            if c < 0.85:
                return [("user", r.choice(WHO)), ("assistant", r.choice(WHO_REPLIES))]
            if c < 0.93:
                return [("user", r.choice(THANKS)), ("assistant", r.choice(THANKS_REPLIES))]
            return [("user", r.choice(BYE)), ("assistant", r.choice(BYE_REPLIES))]
        if kind == "continue":
            ctx, ans, _, _ = self.run_of_sentences(r.choice([1, 2, 2, 3]), r.choice([1, 1, 2]))
            return [("user", r.choice(CONTINUE_ASKS) + ctx), ("assistant", ans)]
        if kind == "plain":
            ctx, ans, _, _ = self.run_of_sentences(1, 1)
            return [("user", ctx), ("assistant", ans)]
        if kind == "source":
            ctx, _, k, lab = self.run_of_sentences(r.choice([1, 2]), 1)
            q = r.choice(SOURCE_ASKS)
            u = (ctx + "\n\n" + q) if r.random() < 0.5 else (q + "\n" + ctx)
            return [("user", u), ("assistant", self.source_answer(k, lab))]
        if kind == "speaker":
            said, who = r.choice(self.speech)
            q = r.choice(SPEAKER_ASKS)
            return [("user", "\"%s.\"\n%s" % (said, q)),
                    ("assistant", r.choice(["%s.", "%s is speaking.", "That is %s.", "%s says it."]) % who)]
        if kind == "verse":
            while True:
                d, k, lab = self.pick(lambda k, lab: k == "kjv")
                v = r.choice(d.split("\n"))
                if short(v, 220):
                    break
            book, ch = lab
            ask = r.choice(["Give me a verse from %s." % book, "Quote a verse from %s." % book,
                            "Tell me a verse of the Bible.", "Say a Bible verse."])
            return [("user", ask), ("assistant", v)]
        raise ValueError(kind)

    def conversation(self):
        r = self.r
        kind = r.choices(["greeting", "continue", "plain", "source", "speaker", "verse"],
                         [30, 25, 12, 15, 8, 10])[0]
        turns = self.one(kind)
        if r.random() < 0.15:  # two turns: the second follows a greeting, or the other way
            extra = self.one("greeting" if kind != "greeting" else r.choice(["continue", "source", "verse"]))
            turns = extra + turns if r.random() < 0.5 else turns + extra
            kind += "+2"
        msgs = [{"role": ro, "content": c} for ro, c in turns]
        if r.random() < 0.1:
            msgs.insert(0, {"role": "system", "content": r.choice(SYSTEMS)})
        return kind, msgs


def check_with_fs(fs, rows, model):
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            p = os.path.join(tmp, "m.json")
            with open(p, "w", encoding="utf-8") as f:
                json.dump(row["messages"], f, ensure_ascii=False)
            got = subprocess.run([fs, "template", "-m", model, "--messages", p, "--no-think",
                                  "--no-generation-prompt"], capture_output=True, text=True, check=True).stdout
            if got != row["text"]:
                bad += 1
                if bad <= 3:
                    print("make_chat_data: MISMATCH\n fs:   %r\n ours: %r" % (got, row["text"]), file=sys.stderr)
    return bad


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=24000, help="conversations")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--check", metavar="FS", help="render the first --check-n with FS template and compare")
    p.add_argument("--check-n", type=int, default=200)
    p.add_argument("--model", default="models/tiny", help="model whose template --check uses")
    a = p.parse_args()
    if not os.path.isfile(os.path.join(a.corpus, "train.txt")):
        sys.exit("make_chat_data: %s/train.txt missing (scripts/fetch_corpus.sh %s)" % (a.corpus, a.corpus))
    if a.n < 1:
        sys.exit("make_chat_data: --n must be positive")
    rng = random.Random(a.seed)
    b = Builder(load_docs(a.corpus), rng)
    rows, kinds = [], {}
    for _ in range(a.n):
        kind, msgs = b.conversation()
        text, spans = render(msgs)
        rows.append({"kind": kind, "messages": msgs, "text": text, "train": spans})
        kinds[kind.split("+")[0]] = kinds.get(kind.split("+")[0], 0) + 1
    tmp = a.out + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, a.out)
    chars = sum(e - s for row in rows for s, e in row["train"])
    print("make_chat_data: %d conversations (%s), %d speech lines, %d trained chars, %d chars in all -> %s" % (
        len(rows), ", ".join("%s %d" % kv for kv in sorted(kinds.items())), len(b.speech), chars,
        sum(len(r["text"]) for r in rows), a.out))
    if a.check:
        bad = check_with_fs(a.check, rows[:a.check_n], a.model)
        print("make_chat_data: fs template check: %d of %d differ" % (bad, min(a.check_n, len(rows))))
        if bad:
            sys.exit(1)


if __name__ == "__main__":
    main()
