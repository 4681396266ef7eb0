#!/usr/bin/env python3
r"""docs_build.py - turn docs/*.md into the static site docs/*.html.

Standard library only. `make docs` runs it; the HTML is committed so the
site opens from disk (file://) with no build step.

    python3 tools/docs_build.py [--out DIR]

--out writes the HTML somewhere else (tools/docs_check.py builds into a
temporary directory and compares, so stale HTML is caught).

The Markdown is a small subset, converted by this file:
  # headings (## and ### get anchor ids), paragraphs, - / 1. lists (one
  level), ``` fenced code ```, `inline code`, **bold**, *italic*,
  [links](x.md) (a link to a page NAME.md becomes NAME.html), ![images](x.svg),
  backslash escapes (\* \_ \[ \] \| \\),
  | tables |, > blockquotes, and raw HTML: a block whose first line starts
  with '<' passes through unchanged up to the next blank line.

Generated parts (so quoted code cannot drift from the source):
  <!-- include: PATH | START | END -->
      the lines of PATH from the first line matching the regex START to the
      first line at or after it matching the regex END, as a code block with
      a link to PATH and the line numbers. A regex that matches nothing is
      an error.
  <!-- params: configs/NAME.json -->
      the parameter count of that config, tensor by tensor.

Docs: docs/index.md (the site itself)
"""
import argparse
import html
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")

# The navigation order; every docs/*.md must be listed here.
PAGES = [
    ("index", "Start"),
    ("prerequisites", "Prerequisites"),
    ("map", "Map"),
    ("tokenizer", "Tokenizer"),
    ("weights", "Weights"),
    ("forward", "Forward pass"),
    ("kv-cache", "KV cache"),
    ("quantization", "Quantization"),
    ("sampling", "Sampling"),
    ("generate", "Generate"),
    ("chat", "Chat"),
    ("pull", "Pull"),
    ("bench", "Bench"),
    ("testing", "Testing"),
    ("learnings", "Learnings"),
    ("resources", "Resources"),
]


class BuildError(Exception):
    pass


# ---- generated parts ----------------------------------------------------

def include(spec, page):
    parts = [p.strip() for p in spec.split("|")]
    if len(parts) != 3:
        raise BuildError(f"{page}: include needs 'PATH | START | END', got '{spec}'")
    path, start, end = parts
    full = os.path.join(ROOT, path)
    if not os.path.isfile(full):
        raise BuildError(f"{page}: include: {path} does not exist")
    with open(full, encoding="utf-8") as f:
        lines = f.read().split("\n")
    s = next((i for i, l in enumerate(lines) if re.search(start, l)), None)
    if s is None:
        raise BuildError(f"{page}: include: no line of {path} matches START /{start}/")
    e = next((i for i in range(s, len(lines)) if re.search(end, lines[i])), None)
    if e is None:
        raise BuildError(f"{page}: include: no line of {path} after line {s + 1} matches END /{end}/")
    body = "\n".join(lines[s:e + 1])
    lang = "c" if path.endswith((".c", ".h")) else ""
    href = "../" + path
    return (f'<figure class="include"><figcaption><a href="{href}">{html.escape(path)}</a>, '
            f'lines {s + 1}&ndash;{e + 1} (included from the source when the site is built)</figcaption>'
            f'<pre><code class="lang-{lang}">{html.escape(body)}</code></pre></figure>')


def params_table(path, page):
    full = os.path.join(ROOT, path)
    if not os.path.isfile(full):
        raise BuildError(f"{page}: params: {path} does not exist")
    with open(full, encoding="utf-8") as f:
        c = json.load(f)
    V, H, L = c["vocab_size"], c["hidden_size"], c["num_hidden_layers"]
    Hq, Hkv, I = c["num_attention_heads"], c["num_key_value_heads"], c["intermediate_size"]
    D = c.get("head_dim") or H // Hq
    tied = c.get("tie_word_embeddings", False)
    per_layer = [
        ("input_layernorm", "[H]", H),
        ("self_attn.q_proj", "[Hq·D, H]", Hq * D * H),
        ("self_attn.k_proj", "[Hkv·D, H]", Hkv * D * H),
        ("self_attn.v_proj", "[Hkv·D, H]", Hkv * D * H),
        ("self_attn.q_norm", "[D]", D),
        ("self_attn.k_norm", "[D]", D),
        ("self_attn.o_proj", "[H, Hq·D]", H * Hq * D),
        ("post_attention_layernorm", "[H]", H),
        ("mlp.gate_proj", "[I, H]", I * H),
        ("mlp.up_proj", "[I, H]", I * H),
        ("mlp.down_proj", "[H, I]", H * I),
    ]
    layer = sum(n for _, _, n in per_layer)
    emb = V * H
    total = emb + L * layer + H + (0 if tied else emb)
    rows = [f"<tr><td><code>model.embed_tokens.weight</code></td><td>[V, H]</td><td>{V:,} × {H:,}</td><td>{emb:,}</td></tr>"]
    for name, shape, n in per_layer:
        rows.append(f"<tr><td><code>model.layers.N.{name}.weight</code></td><td>{shape}</td><td></td><td>{n:,}</td></tr>")
    rows.append(f"<tr class=\"sum\"><td>one layer</td><td></td><td></td><td>{layer:,}</td></tr>")
    rows.append(f"<tr class=\"sum\"><td>all {L} layers</td><td>L × layer</td><td>{L} × {layer:,}</td><td>{L * layer:,}</td></tr>")
    rows.append(f"<tr><td><code>model.norm.weight</code></td><td>[H]</td><td></td><td>{H:,}</td></tr>")
    if tied:
        rows.append("<tr><td><code>lm_head.weight</code></td><td>[V, H]</td><td>tied: reuses embed_tokens</td><td>0</td></tr>")
    else:
        rows.append(f"<tr><td><code>lm_head.weight</code></td><td>[V, H]</td><td></td><td>{emb:,}</td></tr>")
    rows.append(f"<tr class=\"sum\"><td><strong>total</strong></td><td></td><td></td><td><strong>{total:,}</strong></td></tr>")
    legend = (f"V = {V:,}, H = {H:,}, L = {L}, Hq = {Hq}, Hkv = {Hkv}, D = {D}, I = {I:,}, "
              f"tie_word_embeddings = {str(tied).lower()}")
    return (f'<figure class="params"><figcaption>Parameters of <a href="../{path}">{html.escape(path)}</a> '
            f'({legend}); computed from the config when the site is built.</figcaption>'
            f'<table><thead><tr><th>tensor</th><th>shape</th><th></th><th>parameters</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>'
            f'<p>In bf16 (2 bytes each): {total * 2:,} bytes = {total * 2 / 2**20:,.1f} MiB. '
            f'Untied, lm_head would add {emb:,} more.</p></figure>')


GEN_RE = re.compile(r"^<!--\s*(include|params):\s*(.*?)\s*-->\s*$")


# ---- inline markup ------------------------------------------------------

def link_target(url):
    if re.match(r"^[a-z]+:", url) or url.startswith("#"):
        return url
    m = re.match(r"^([\w-]+)\.md(#.*)?$", url)
    if m:
        return m.group(1) + ".html" + (m.group(2) or "")
    return url


def slug(text):
    t = re.sub(r"<[^>]+>", "", text).lower()
    t = re.sub(r"[^a-z0-9 -]", "", t).strip()
    return re.sub(r"[ ]+", "-", t)


def inline(text):
    out = []
    pos = 0
    # code spans first: their content is literal
    for m in re.finditer(r"(`+)(.+?)\1", text):
        out.append(inline_plain(text[pos:m.start()]))
        out.append("<code>" + html.escape(m.group(2).strip() if m.group(1) == "``" else m.group(2)) + "</code>")
        pos = m.end()
    out.append(inline_plain(text[pos:]))
    return "".join(out)


def inline_plain(t):
    # raw inline HTML tags are kept; everything else is escaped
    pieces = re.split(r"(<[a-zA-Z/][^>]*>|&[a-z]+;|&#\d+;)", t)
    res = []
    for i, p in enumerate(pieces):
        if i % 2:
            res.append(p)
            continue
        p = html.escape(p, quote=False)
        # backslash escapes: \* \_ \[ \] \| \\ stand for the character itself
        p = re.sub(r"\\([*_\[\]|\\])", lambda m: "\x00%d\x00" % ord(m.group(1)), p)
        p = re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)",
                   lambda m: f'<img src="{link_target(m.group(2))}" alt="{m.group(1)}">', p)
        p = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)",
                   lambda m: f'<a href="{link_target(m.group(2))}">{m.group(1)}</a>', p)
        p = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", p)
        p = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", p)
        p = re.sub("\x00(\\d+)\x00", lambda m: "&#%s;" % m.group(1), p)
        res.append(p)
    return "".join(res)


# ---- blocks -------------------------------------------------------------

def convert(md, page):
    lines = md.split("\n")
    out = []
    toc = []
    i = 0
    n = len(lines)

    def para_end(j):
        l = lines[j]
        return (not l.strip() or l.startswith(("#", "```", "> ", "|")) or re.match(r"^\s*([-*]|\d+\.)\s", l)
                or GEN_RE.match(l) or l.startswith("<"))

    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        g = GEN_RE.match(line)
        if g:
            out.append(include(g.group(2), page) if g.group(1) == "include" else params_table(g.group(2), page))
            i += 1
            continue
        if line.startswith("```"):
            lang = line[3:].strip()
            j = i + 1
            body = []
            while j < n and not lines[j].startswith("```"):
                body.append(lines[j])
                j += 1
            if j == n:
                raise BuildError(f"{page}: unclosed ``` starting at line {i + 1}")
            cls = f' class="lang-{lang}"' if lang else ""
            out.append(f"<pre><code{cls}>{html.escape(chr(10).join(body))}</code></pre>")
            i = j + 1
            continue
        m = re.match(r"^(#{1,4})\s+(.*)$", line)
        if m:
            level = len(m.group(1))
            text = inline(m.group(2))
            if level == 1:
                out.append(f"<h1>{text}</h1>")
            else:
                hid = slug(m.group(2))
                out.append(f'<h{level} id="{hid}"><a class="anchor" href="#{hid}">#</a>{text}</h{level}>')
                if level == 2:
                    toc.append((hid, text))
            i += 1
            continue
        if line.startswith("<"):
            j = i
            block = []
            while j < n and lines[j].strip():
                block.append(lines[j])
                j += 1
            out.append("\n".join(block))
            i = j
            continue
        if line.startswith(">"):
            block = []
            while i < n and lines[i].startswith(">"):
                block.append(lines[i][1:].lstrip())
                i += 1
            out.append("<blockquote>" + convert("\n".join(block), page)[0] + "</blockquote>")
            continue
        if line.startswith("|"):
            rows = []
            while i < n and lines[i].startswith("|"):
                cells = re.split(r"(?<!\\)\|", lines[i].strip()[1:-1] if lines[i].strip().endswith("|") else lines[i].strip()[1:])
                rows.append([c.strip().replace("\\|", "|") for c in cells])
                i += 1
            if len(rows) < 2 or not all(re.match(r"^:?-+:?$", c) for c in rows[1]):
                raise BuildError(f"{page}: table before line {i + 1} needs a | --- | separator row")
            head = "".join(f"<th>{inline(c)}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows[2:])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            continue
        m = re.match(r"^([-*]|\d+\.)\s+", line)
        if m:
            ordered = m.group(1)[0].isdigit()
            items = []
            while i < n:
                mm = re.match(r"^([-*]|\d+\.)\s+(.*)$", lines[i])
                if mm:
                    items.append(mm.group(2))
                elif lines[i].startswith("  ") and lines[i].strip() and items:
                    items[-1] += " " + lines[i].strip()
                else:
                    break
                i += 1
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{inline(t)}</li>" for t in items) + f"</{tag}>")
            continue
        block = [line]
        i += 1
        while i < n and not para_end(i):
            block.append(lines[i])
            i += 1
        out.append("<p>" + inline(" ".join(l.strip() for l in block)) + "</p>")
    return "\n".join(out), toc


# ---- the page -------------------------------------------------------------

def page_html(name, title, body, toc, scripts):
    nav = []
    for pname, ptitle in PAGES:
        cur = ' aria-current="page"' if pname == name else ""
        nav.append(f'<a href="{pname}.html"{cur}>{ptitle}</a>')
    idx = [p for p, _ in PAGES].index(name)
    prev_link = f'<a href="{PAGES[idx - 1][0]}.html">&larr; {PAGES[idx - 1][1]}</a>' if idx > 0 else "<span></span>"
    next_link = f'<a href="{PAGES[idx + 1][0]}.html">{PAGES[idx + 1][1]} &rarr;</a>' if idx + 1 < len(PAGES) else "<span></span>"
    toc_html = ""
    if len(toc) > 2:
        toc_html = ('<nav class="toc"><strong>On this page</strong><ul>' +
                    "".join(f'<li><a href="#{h}">{t}</a></li>' for h, t in toc) + "</ul></nav>")
    body_with_toc = body.replace("</h1>", "</h1>\n" + toc_html, 1)
    script_tags = "".join(f'\n<script src="{s}"></script>' for s in scripts)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(re.sub(r"<[^>]+>", "", title))} - Failed Star</title>
<link rel="stylesheet" href="style.css">
<script src="js/site.js"></script>
</head>
<body>
<header class="site"><a class="brand" href="index.html">&#9733; Failed Star</a>
<nav class="pages">{"".join(nav)}</nav></header>
<main>
<article>
{body_with_toc}
</article>
<nav class="prevnext">{prev_link}{next_link}</nav>
</main>
<footer>Generated from <a href="{name}.md">docs/{name}.md</a> by <a href="../tools/docs_build.py">tools/docs_build.py</a>. Do not edit the HTML.</footer>{script_tags}
</body>
</html>
"""


def build(out_dir):
    names = sorted(f[:-3] for f in os.listdir(DOCS) if f.endswith(".md"))
    listed = [p for p, _ in PAGES]
    for nm in names:
        if nm not in listed:
            raise BuildError(f"docs/{nm}.md is not in PAGES (tools/docs_build.py): add it to the navigation")
    for nm in listed:
        if nm not in names:
            raise BuildError(f"docs/{nm}.md is listed in PAGES but does not exist")
    os.makedirs(out_dir, exist_ok=True)
    for nm, _ in PAGES:
        with open(os.path.join(DOCS, nm + ".md"), encoding="utf-8") as f:
            md = f.read()
        scripts = re.findall(r"^<!--\s*script:\s*(\S+)\s*-->\s*$", md, re.M)
        md = re.sub(r"^<!--\s*script:.*-->\s*$", "", md, flags=re.M)
        m = re.search(r"^#\s+(.*)$", md, re.M)
        if not m:
            raise BuildError(f"docs/{nm}.md has no '# title' line")
        body, toc = convert(md, f"docs/{nm}.md")
        with open(os.path.join(out_dir, nm + ".html"), "w", encoding="utf-8") as f:
            f.write(page_html(nm, inline(m.group(1)), body, toc, scripts))
    return [nm for nm, _ in PAGES]


def main():
    ap = argparse.ArgumentParser(description="build docs/*.html from docs/*.md")
    ap.add_argument("--out", default=DOCS, help="output directory (default: docs/)")
    a = ap.parse_args()
    try:
        pages = build(a.out)
    except BuildError as ex:
        print(f"docs_build: {ex}", file=sys.stderr)
        return 1
    print(f"docs_build: {len(pages)} pages written to {os.path.relpath(a.out, ROOT) if a.out.startswith(ROOT) else a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
