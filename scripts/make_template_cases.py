#!/usr/bin/env python3
"""make_template_cases.py - write tests/golden/template/cases.jsonl.

Each line is one conversation for the chat-template golden test:
    {"family": "qwen3" | "qwen2_5" | "llama3_2", "messages": [...],
     "tools": [...] (optional), "add_generation_prompt": true|false,
     "kwargs": {...more template variables...}, "now": "YYYY-MM-DD"}
The cases are written out by hand below (no randomness):
  - CONVERSATIONS reach every branch of Qwen3's template: system first /
    not first, multi-turn history with and without <think> blocks in
    earlier assistant turns (newlines around them, several </think>,
    <think> with no closing tag), reasoning_content, tool results (single,
    consecutive, wrapped in a user message), tool_calls, unicode, empty
    content; each in both thinking modes;
  - SHARED go to every family: system or not, multi-turn, tool
    definitions, tool calls and results, the generation prompt on and off,
    odd content (template syntax, quotes, unicode spaces);
  - *_EXTRA reach what one family's template alone does (Qwen2.5's default
    system prompt, Llama's date_string, tools_in_user_message,
    custom_tools, ipython results, and the conversations its template
    refuses with raise_exception).
"now" is the date strftime_now() gives (Llama's "Today Date" line).
scripts/oracle_template.py renders them with transformers into
expected.jsonl; tests/e2e_template.sh compares `fs template` with that.

Usage: python3 scripts/make_template_cases.py [OUT]   (stdlib only)

Docs: docs/chat.md
"""
import json
import os
import sys


def U(c):
    return {"role": "user", "content": c}


def A(c, **kw):
    m = {"role": "assistant", "content": c}
    m.update(kw)
    return m


def S(c):
    return {"role": "system", "content": c}


def T(c):
    return {"role": "tool", "content": c}


def call(name, args):
    return {"type": "function", "function": {"name": name, "arguments": args}}


CONVERSATIONS = [
    # single turn
    [U("Hello!")],
    [U("What is 2+2?")],
    [U("")],
    [U("line one\nline two\n")],
    [U("\n\nleading and trailing newlines\n\n")],
    [U("Ünïcödé: 你好, мир, 🌟 and \u00e9\u0301")],
    [U("tabs\tand \"quotes\" and \\backslashes\\")],
    # system + user
    [S("You are a helpful assistant."), U("Hi")],
    [S(""), U("Hi")],
    [S("Line 1\nLine 2"), U("Summarise.")],
    [S("only a system message")],
    # multi-turn, plain
    [U("Hi"), A("Hello! How can I help?"), U("Tell me a joke.")],
    [S("Be brief."), U("Hi"), A("Hello."), U("Bye"), A("Goodbye."), U("Wait")],
    # multi-turn with reasoning in earlier turns (stripped before the last query)
    [U("2+2?"), A("<think>\nsimple sum\n</think>\n\n4"), U("3+3?")],
    [U("2+2?"), A("<think>simple sum</think>4"), U("3+3?")],
    [U("2+2?"), A("<think>\n\nlots of newlines\n\n</think>\n\n\n4\n"), U("and 3+3?")],
    [U("q"), A("no think open tag</think>answer"), U("next")],
    [U("q"), A("<think>first</think>middle</think>end"), U("next")],
    [U("q"), A("<think>a<think>b</think>c"), U("next")],
    [U("q"), A("<think>never closed, so not split"), U("next")],
    [U("q"), A("</think>"), U("next")],
    [U("q"), A("prefix <think>thought</think> suffix"), U("next")],
    # .strip('\n') trims newlines only: spaces around the parts must survive
    [U("q"), A("<think> spaced </think>  answer \n")],
    [U("q"), A(" \n<think>\n spaced \n</think>\n  answer"), U("next")],
    [U("q"), A("answer ", reasoning_content="  spaced  ")],
    # the last message is an assistant turn (after the last query: think block shown)
    [U("2+2?"), A("<think>\nsimple sum\n</think>\n\n4")],
    [U("2+2?"), A("4")],
    [U("2+2?"), A("")],
    [U("q"), A("<think></think>")],
    [U("q"), A("\n\n<think>\n\nthought\n\n</think>\n\n\nanswer\n\n")],
    [U("q"), A("<think>first</think>middle</think>end")],
    [U("q"), A("<think>never closed")],
    [U("a"), A("<think>r1</think>x"), U("b"), A("<think>r2</think>y")],
    [U("a"), A("x"), U("b"), A("<think>r2</think>y"), A("<think>r3</think>z")],
    [U("a"), A("x"), U("b"), A("no reasoning here"), A("final")],
    # reasoning_content field
    [U("q"), A("answer", reasoning_content="because")],
    [U("q"), A("answer", reasoning_content="\nbecause\n\n")],
    [U("q"), A("answer", reasoning_content=""), U("again")],
    [U("q"), A("answer", reasoning_content=""),],
    [U("q"), A("<think>in content</think>answer", reasoning_content="field wins")],
    [U("q"), A("<think>in content</think>answer", reasoning_content="field wins"), U("next")],
    [U("q"), A("<think>in content</think>answer", reasoning_content=None)],
    [U("a"), A("x", reasoning_content="r1"), U("b"), A("y", reasoning_content="r2"), U("c")],
    [U("q"), A("\n\nanswer", reasoning_content="r")],
    # tools: results come back as "tool" messages
    [U("Weather in Paris?"),
     A("", tool_calls=[call("get_weather", {"city": "Paris"})]),
     T('{"temp": 18}')],
    [U("Weather in Paris and Rome?"),
     A("<think>\nneed two calls\n</think>\n\n", tool_calls=[call("get_weather", {"city": "Paris"}),
                                                             call("get_weather", {"city": "Rome"})]),
     T('{"temp": 18}'), T('{"temp": 24}')],
    [U("Weather?"),
     A("<think>call tool</think>Let me check.", tool_calls=[call("get_weather", '{"city": "Oslo"}')]),
     T("cold"),
     A("<think>tool said cold</think>It is cold.")],
    [U("Weather?"),
     A("<think>call tool</think>Checking.", tool_calls=[call("w", {})]),
     T("cold"),
     A("<think>tool said cold</think>It is cold."),
     U("Thanks")],
    [U("q"), A("calling"), T("r1"), T("r2"), T("r3"), A("<think>done</think>ok")],
    [U("q"), A("calling"), T("r1"), A("<think>mid</think>more"), T("r2"), A("<think>end</think>fin")],
    [T("tool result first")],
    [S("sys"), T("tool result after system")],
    [U("q"), A("a"), T("")],
    [U("q"), A("<think>x</think>a"), T("multi\nline\nresult")],
    # user messages that only wrap a tool response do not count as the last query
    [U("real question"), A("<think>t1</think>calling"), U("<tool_response>\n42\n</tool_response>"),
     A("<think>t2</think>answer is 42")],
    [U("real question"), A("<think>t1</think>calling"), U("<tool_response>42</tool_response>")],
    [U("<tool_response>only</tool_response>"), A("<think>t</think>a")],
    [U("<tool_response>only</tool_response>"), A("<think>t</think>a"), A("<think>t2</think>b")],
    [U("<tool_response> not closed"), A("<think>t</think>a")],
    [U("q"), A("<think>t</think>a"), U("not wrapped </tool_response>"), A("<think>t2</think>b")],
    # tool_calls details (tojson of arguments)
    [U("q"), A("", tool_calls=[call("f", {"s": "é \"q\" \n\t\\", "n": 3, "x": -1.5, "b": True,
                                          "z": None, "l": [1, 2, {"k": "v"}], "o": {}})])],
    [U("q"), A("text", tool_calls=[{"name": "no_function_wrapper", "arguments": {"a": 1}}]), U("next")],
    [U("q"), A("", tool_calls=[call("f", "raw string args")]), T("r"), U("next")],
    [U("q"), A("", tool_calls=[]), U("next")],
    [U("q"), A("", tool_calls=[call("f", {"small": 0.0001, "tiny": 1e-05, "big": 1e+16, "pi": 3.14159,
                                          "neg": -0.25, "third": 0.3333333333333333})])],
    # system not first
    [U("Hi"), S("Now be formal."), U("Hello again")],
    [S("first"), U("q"), S("second"), A("a")],
    [S("first"), S("second")],
    # longer conversation
    [S("You are a math tutor."), U("What is a prime?"),
     A("<think>\ndefine prime\n</think>\n\nA number with exactly two divisors."),
     U("Is 9 prime?"), A("<think>\n9 = 3*3\n</think>\n\nNo, 9 = 3 × 3."),
     U("Is 7 prime?")],
    [U("Write code"), A("```c\nint main(void) { return 0; }\n```"), U("Now in Python")],
    [U("a" * 300)],
    [U("emoji 👨‍👩‍👧 zwj and \u200b zero width"), A("<think>\n🤔\n</think>\n\n👍"), U("ok")],
]


# ---- tools, tool calls and the other families ----

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object",
                   "properties": {"city": {"type": "string", "description": "The city, e.g. \"Paris\""},
                                  "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city"]}}}
SEARCH = {"type": "function", "function": {
    "name": "search", "description": "Cherche sur le web — résultats en français 🔎",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer",
                   "minimum": 1, "maximum": 10}, "tags": {"type": "array", "items": {"type": "string"}}},
                   "required": []}}}
EMPTY_TOOL = {"type": "function", "function": {"name": "noop", "description": "", "parameters": {}}}
TOOLS = [WEATHER, SEARCH]

# (messages, tools or None, add_generation_prompt, kwargs) for every family
SHARED = [
    ([U("Hi")], None, True, {}),
    ([U("Hi")], None, False, {}),
    ([S("You are terse."), U("Hi")], None, True, {}),
    ([S("  padded system  \n"), U("  padded user \t\n")], None, True, {}),
    ([U("a"), A("b"), U("c")], None, True, {}),
    ([S("sys"), U("a"), A("b"), U("c"), A("d")], None, False, {}),
    ([U("")], None, True, {}),
    ([U("{{ not a template }} {% if x %} {# nor a comment #}")], None, True, {}),
    ([U("quotes ' \" and \\ backslash, tab\t, CR\r")], None, True, {}),
    ([U("Ünïcödé 你好 мир 🌟 e\u0301 \u200b")], None, True, {}),
    ([U("\u00a0\u3000 unicode spaces \u2003\u00a0")], None, True, {}),
    ([U("a"), A(""), U("b")], None, True, {}),
    ([U("Weather in Paris?")], TOOLS, True, {}),
    ([S("Use tools wisely."), U("Weather in Paris?")], [WEATHER], True, {}),
    ([U("Weather in Paris?"), A("", tool_calls=[call("get_weather", {"city": "Paris"})]),
      T('{"temperature": 18, "unit": "celsius"}')], [WEATHER], True, {}),
    ([U("Weather in Paris?"), A("", tool_calls=[call("get_weather", {"city": "Paris", "unit": "celsius"})]),
      T("18 degrees"), A("It is 18 °C in Paris.")], [WEATHER], False, {}),
    ([U("Search for café"), A("", tool_calls=[call("search", {"q": "café \"best\"", "n": 3,
                                                              "tags": ["food", "été"], "x": None, "ok": True,
                                                              "f": 0.5})]),
      T("[\"result 1\", \"result 2\"]")], TOOLS, True, {}),
    ([U("noop please")], [EMPTY_TOOL], True, {}),
    ([S("sys"), U("q")], [], True, {}),
    ([U("a"), A("b"), U("c"), A("d"), U("e"), A("f"), U("g")], None, True, {}),
]

QWEN3_EXTRA = [
    ([U("Weather in Paris and Rome?"),
      A("<think>two calls</think>", tool_calls=[call("get_weather", {"city": "Paris"}),
                                                call("get_weather", {"city": "Rome"})]),
      T("18"), T("24")], [WEATHER], True, {"enable_thinking": False}),
    ([U("q")], TOOLS, True, {"enable_thinking": False}),
    ([U("q"), A("", tool_calls=[call("search", '{"q": "raw"}')])], TOOLS, False, {}),
]

QWEN2_5_EXTRA = [
    ([U("Weather in Paris and Rome?"),
      A("Let me check.", tool_calls=[call("get_weather", {"city": "Paris"}), call("get_weather", {"city": "Rome"})]),
      T("18"), T("24")], [WEATHER], True, {}),
    ([U("q"), A(None, tool_calls=[call("get_weather", {"city": "Oslo"})]), T("cold")], [WEATHER], True, {}),
    ([U("q"), A("", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])], [WEATHER], True, {}),
    ([S("first"), U("q"), S("second"), A("a")], None, True, {}),
    ([U("q"), A("", tool_calls=[call("search", '{"q": "raw string"}')]), T("r1"), T("r2")], TOOLS, True, {}),
]

LLAMA_EXTRA = [
    ([U("Hi")], None, True, {"date_string": "26 Jul 2024"}),
    ([S("sys"), U("Hi")], None, True, {"date_string": "01 Jan 2025"}),
    ([U("Weather?")], [WEATHER], True, {"tools_in_user_message": False}),
    ([S("sys"), U("Weather?")], [WEATHER], True, {"tools_in_user_message": False, "date_string": "x"}),
    ([U("Weather?")], None, True, {"custom_tools": [WEATHER]}),
    # the tool result's content is a string, which Jinja counts as iterable: tojson quotes it
    ([U("Weather?"), A("", tool_calls=[call("get_weather", {"city": "Oslo"})]),
      {"role": "ipython", "content": "cold \"and\" wet"}], [WEATHER], True, {}),
    ([U("Weather?"), A("", tool_calls=[call("get_weather", '{"city": "Oslo"}')]), T("4")], [WEATHER], False, {}),
    ([U("x"), A("", tool_calls=[call("search", {"q": "a"})]), T("r"), A("done"), U("more")], TOOLS, True,
     {"date_string": "31 Dec 1999"}),
    # refused by the template itself (raise_exception): fs must refuse too
    ([S("only a system message")], [WEATHER], True, {}),
    ([U("Weather?"), A("", tool_calls=[call("get_weather", {"city": "A"}), call("get_weather", {"city": "B"})])],
     [WEATHER], True, {}),
]

QWEN3_CASES = [(conv, None, True, {"enable_thinking": think}) for conv in CONVERSATIONS for think in (True, False)]
QWEN3_CASES += [(m, t, g, dict(kw, enable_thinking=think)) for (m, t, g, kw) in SHARED for think in (True, False)]
QWEN3_CASES += QWEN3_EXTRA

FAMILIES = [
    ("qwen3", QWEN3_CASES),
    ("qwen2_5", SHARED + QWEN2_5_EXTRA),
    ("llama3_2", SHARED + LLAMA_EXTRA),
]

# strftime_now's clock for every case (Llama's "Today Date" line); the
# oracle freezes transformers' clock there, fs template gets --date.
NOW = "2026-12-04"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "golden", "template",
                                                             "cases.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        for family, cases in FAMILIES:
            for messages, tools, gen, kwargs in cases:
                case = {"family": family, "messages": messages, "add_generation_prompt": gen, "kwargs": kwargs,
                        "now": NOW}
                if tools is not None:
                    case["tools"] = tools
                f.write(json.dumps(case, ensure_ascii=False) + "\n")
                n += 1
    print(f"wrote {n} cases to {out}")


if __name__ == "__main__":
    main()
