#!/usr/bin/env python3
r"""docs_build.py - turn docs/**/*.md into the static site docs/**/*.html.

Standard library only. `make docs` runs it; the HTML is committed so the
site opens from disk (file://) with no build step, and it can be hosted on
its own: no link leaves docs/.

    python3 tools/docs_build.py [--out DIR]

--out writes the site somewhere else (tools/docs_check.py builds into a
temporary directory and compares, so stale output is caught).

What it writes:
  NAME.html            one per docs/NAME.md listed in PAGES (the navigation)
  learnings/NAME.html  one per docs/learnings/NAME.md: the illustrated notes,
                       each listed by a milestone in docs/data/milestones.json
  code/PATH.html       a source view of every repository file a page links
                       to, one anchor per line (code/src/sampler.c.html#L120)
                       and one per quoted range (#L120-L140)
  img/*.svg, js/fsdata-*.js
                       pictures and widget data drawn from docs/data/ by
                       tools/docs_figures.py

Every page gets the milestone strip at the top (docs/data/milestones.json),
and every page of a milestone a box of cross-references at the end.

The Markdown is a small subset, converted by this file:
  # headings (## and ### get anchor ids), paragraphs, - / 1. lists (one
  level), ``` fenced code ```, `inline code`, **bold**, *italic*,
  [links](x.md), ![images](x.svg), backslash escapes (\* \_ \[ \] \| \\ \`),
  | tables |, > blockquotes, and raw HTML: a block whose first line starts
  with '<' passes through unchanged up to the next blank line.

Links. A link to a page (NAME.md) becomes NAME.html. A link to a file of
the repository outside docs/ (../src/forward.c) becomes its source view
(code/src/forward.c.html), in Markdown and in raw HTML alike; a fragment
#L120 or #L120-L140 names lines, and #L:REGEX the first line matching
REGEX (write a space as \s), so a link can follow the code as it moves.

Generated parts (so quoted code cannot drift from the source):
  <!-- include: PATH | START | END -->
      the lines of PATH from the first line matching the regex START to the
      first line at or after it matching the regex END, as a code block
      linked to those lines in the source view. A regex that matches
      nothing is an error.
  <!-- params: configs/NAME.json -->
      the parameter count of that config, tensor by tensor.
  <!-- milestones -->       every milestone, from docs/data/milestones.json
  <!-- xref-index -->       the book / ds4 / Raschka references of every milestone
  <!-- learnings-index -->  the learning notes, grouped by milestone

Docs: docs/index.md (the site itself)
"""
import argparse
import html
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
LEARN = "learnings"
MILESTONES = os.path.join(DOCS, "data", "milestones.json")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import docs_figures  # noqa: E402

# The navigation order; every docs/*.md must be listed here.
PAGES = [
    ("index", "Start"),
    ("prerequisites", "Prerequisites"),
    ("milestones", "Milestones"),
    ("map", "Map"),
    ("tokenizer", "Tokenizer"),
    ("weights", "Weights"),
    ("models", "Models"),
    ("forward", "Forward pass"),
    ("kv-cache", "KV cache"),
    ("quantization", "Quantization"),
    ("sampling", "Sampling"),
    ("generate", "Generate"),
    ("chat", "Chat"),
    ("serve", "Serve"),
    ("pull", "Pull"),
    ("bench", "Bench"),
    ("gpu", "GPU"),
    ("cpu", "CPUs"),
    ("testing", "Testing"),
    ("learnings", "Learnings"),
    ("resources", "Resources"),
]

STATE_WORDS = {"done": "done", "progress": "in progress", "planned": "planned"}


class BuildError(Exception):
    pass


def rel(path):
    return os.path.relpath(path, ROOT)


def txt(s):
    """plain text from docs/data/milestones.json as HTML: * and ` stay literal"""
    return html.escape(s).replace("*", "&#42;").replace("`", "&#96;")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---- the milestones ------------------------------------------------------

def load_milestones():
    try:
        data = json.loads(read(MILESTONES))
    except (OSError, ValueError) as ex:
        raise BuildError(f"docs/data/milestones.json: {ex}")
    for m in data["milestones"]:
        for k in ("id", "title", "state", "builds", "proof", "pages", "learnings", "book", "ds4", "raschka"):
            if k not in m:
                raise BuildError(f"docs/data/milestones.json: milestone {m.get('id', '?')} has no \"{k}\"")
        if m["state"] not in STATE_WORDS:
            raise BuildError(f"docs/data/milestones.json: {m['id']}: state must be one of {', '.join(STATE_WORDS)}")
        m["anchor"] = "m" + re.sub(r"[^0-9]", "", m["id"])
    return data


def milestone_of_page(ms, name):
    return [m for m in ms["milestones"] if name in m["pages"]]


def milestone_of_note(ms, note):
    return [m for m in ms["milestones"] if note in m["learnings"]]


# ---- the build context ---------------------------------------------------

class Page:
    def __init__(self, name, title, md_path):
        self.name = name                      # "forward" or "learnings/bpe"
        self.nav_title = title
        self.md_path = md_path
        self.out_rel = name + ".html"
        self.dir = os.path.dirname(md_path)   # links in the Markdown are relative to it
        self.is_note = name.startswith(LEARN + "/")
        self.title = None                     # from its '# ' line
        self.summary = ""                     # first paragraph (notes)

    @property
    def root(self):
        """relative path from this page to docs/"""
        return "../" * self.name.count("/")


class Ctx:
    def __init__(self, ms, pages):
        self.ms = ms
        self.pages = pages                    # name -> Page
        self.code = {}                        # repo path -> {"ranges": set, "linked_from": set}
        self.dirs = {}                        # repo dir -> set of pages

    def want_code(self, path, page):
        e = self.code.setdefault(path, {"ranges": set(), "linked_from": set()})
        e["linked_from"].add(page.name)
        return e


# ---- generated parts ----------------------------------------------------

def find_lines(path, start, end, where):
    full = os.path.join(ROOT, path)
    if not os.path.isfile(full):
        raise BuildError(f"{where}: include: {path} does not exist")
    lines = read(full).split("\n")
    s = next((i for i, l in enumerate(lines) if re.search(start, l)), None)
    if s is None:
        raise BuildError(f"{where}: include: no line of {path} matches START /{start}/")
    e = next((i for i in range(s, len(lines)) if re.search(end, lines[i])), None)
    if e is None:
        raise BuildError(f"{where}: include: no line of {path} after line {s + 1} matches END /{end}/")
    return lines, s, e


def include(spec, page, ctx):
    parts = [p.strip() for p in spec.split("|")]
    if len(parts) != 3:
        raise BuildError(f"{page.md_path}: include needs 'PATH | START | END', got '{spec}'")
    path, start, end = parts
    lines, s, e = find_lines(path, start, end, rel(page.md_path))
    body = "\n".join(lines[s:e + 1])
    lang = "c" if path.endswith((".c", ".h")) else ""
    ctx.want_code(path, page)["ranges"].add((s + 1, e + 1))
    return (f'<figure class="include" data-src="{html.escape(path)}" data-lines="{s + 1}-{e + 1}"><figcaption>'
            f'<a href="repo:{path}#L{s + 1}-L{e + 1}">{html.escape(path)}</a>, '
            f'lines {s + 1}&ndash;{e + 1} (included from the source when the site is built)</figcaption>'
            f'<pre><code class="lang-{lang}">{html.escape(body)}</code></pre></figure>')


def params_table(path, page):
    full = os.path.join(ROOT, path)
    if not os.path.isfile(full):
        raise BuildError(f"{page.md_path}: params: {path} does not exist")
    c = json.loads(read(full))
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
    return (f'<figure class="params"><figcaption>Parameters of <a href="repo:{path}">{html.escape(path)}</a> '
            f'({legend}); computed from the config when the site is built.</figcaption>'
            f'<div class="scroll"><table><thead><tr><th>tensor</th><th>shape</th><th></th><th>parameters</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>'
            f'<p>In bf16 (2 bytes each): {total * 2:,} bytes = {total * 2 / 2**20:,.1f} MiB. '
            f'Untied, lm_head would add {emb:,} more.</p></figure>')


def page_link(ctx, name, cur):
    """an <a> to page NAME from page CUR, or plain text (with 'coming') when it is not written yet"""
    p = ctx.pages.get(name)
    if not p:
        return f'<span class="coming">{html.escape(name)}.md (coming)</span>'
    return f'<a href="{cur.root}{p.out_rel}">{p.title or html.escape(p.nav_title)}</a>'


def book_refs(ms, m):
    b = ms["book"]
    secs = "; ".join(f'{html.escape(x["sec"])} (p.&nbsp;{html.escape(x["page"])}, {txt(x["topic"])})'
                     for x in m["book"])
    return f'{html.escape(b["author"])}, <a href="{b["url"]}"><em>{html.escape(b["title"])}</em></a> ({b["year"]}): {secs}'


def ds4_refs(ms, m):
    if not m["ds4"]:
        return "&mdash;"
    d = ms["ds4"]
    return "; ".join(f'<a href="{d["file_url"]}{html.escape(x["file"])}"><code>{html.escape(x["file"])}</code></a> '
                     f'({txt(x["what"])})' for x in m["ds4"])


def raschka_refs(m):
    if not m["raschka"]:
        return "&mdash; (no article of his on this step; see the book)"
    return "; ".join(f'<a href="{x["url"]}">{txt(x["title"])}</a>' for x in m["raschka"])


def note_links(ctx, m, cur):
    out = []
    for n in m["learnings"]:
        p = ctx.pages[LEARN + "/" + n]
        out.append(f'<a href="{cur.root}{p.out_rel}">{p.title}</a>')
    return ", ".join(out) if out else "&mdash;"


def test_links(tests, cur):
    return ", ".join(f'<a href="repo:{t}">{html.escape(os.path.basename(t))}</a>' for t in tests)


def state_badge(state):
    return f'<span class="state {state}">{STATE_WORDS[state]}</span>'


def milestones_section(ctx, page):
    ms = ctx.ms
    out, toc = [], []
    for m in ms["milestones"]:
        hid = m["anchor"]
        head = f'{html.escape(m["id"])} &middot; {txt(m["title"])}'
        toc.append((hid, head))
        proofs = []
        for pr in m["proof"]:
            t = test_links(pr["tests"], page)
            proofs.append(f'<li>{txt(pr["claim"])}{" (" + t + ")" if t else ""} '
                          f'<span class="src">[{txt(pr["source"])}; {txt(pr["when"])}]</span></li>')
        parts = ""
        if m.get("parts"):
            parts = ("<dt>Parts</dt><dd><ul>" + "".join(
                f'<li>{txt(x["title"])} {state_badge(x["state"])}'
                f'{" (issue " + str(x["issue"]) + ")" if x.get("issue") else ""}</li>' for x in m["parts"]) + "</ul></dd>")
        pages = ", ".join(page_link(ctx, n, page) for n in m["pages"]) or "&mdash;"
        out.append(
            f'<section class="milestone {m["state"]}" id="{hid}">'
            f'<h2><a class="anchor" href="#{hid}">#</a>{head} {state_badge(m["state"])}</h2>'
            f'<p>{txt(m["builds"])}</p><dl>{parts}'
            f'<dt>Proved by</dt><dd>{"<ul>" + "".join(proofs) + "</ul>" if proofs else "&mdash; (not started)"}</dd>'
            f'<dt>Pages</dt><dd>{pages}</dd>'
            f'<dt>Learnings</dt><dd>{note_links(ctx, m, page)}</dd>'
            f'<dt>Book</dt><dd>{book_refs(ms, m)}</dd>'
            f'<dt>ds4</dt><dd>{ds4_refs(ms, m)}</dd>'
            f'<dt>Raschka</dt><dd>{raschka_refs(m)}</dd></dl></section>')
    return "\n".join(out), toc


def xref_index(ctx, page):
    ms = ctx.ms
    rows = []
    for m in ms["milestones"]:
        book = "<br>".join(f'{html.escape(x["sec"])}, p.&nbsp;{html.escape(x["page"])}: {txt(x["topic"])}'
                           for x in m["book"])
        ds4 = "<br>".join(f'<a href="{ms["ds4"]["file_url"]}{html.escape(x["file"])}"><code>{html.escape(x["file"])}</code></a>'
                          for x in m["ds4"]) or "&mdash;"
        ras = "<br>".join(f'<a href="{x["url"]}">{txt(x["title"])}</a>' for x in m["raschka"]) or "&mdash;"
        rows.append(f'<tr><td><a href="{page.root}milestones.html#{m["anchor"]}">{html.escape(m["id"])} '
                    f'{txt(m["title"])}</a></td><td>{book}</td><td>{ds4}</td><td>{ras}</td></tr>')
    b = ms["book"]
    return (f'<div class="scroll"><table class="xref-index"><thead><tr><th>milestone</th>'
            f'<th>{html.escape(b["author"])}, <a href="{b["url"]}"><em>{html.escape(b["title"])}</em></a></th>'
            f'<th><a href="{ms["ds4"]["url"]}">{html.escape(ms["ds4"]["name"])}</a></th><th>Raschka</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def learnings_index(ctx, page):
    out = []
    for m in ctx.ms["milestones"]:
        if not m["learnings"]:
            continue
        items = []
        for n in m["learnings"]:
            p = ctx.pages[LEARN + "/" + n]
            items.append(f'<li><a href="{page.root}{p.out_rel}"><strong>{p.title}</strong></a>: {p.summary}</li>')
        out.append(f'<h3 id="notes-{m["anchor"]}"><a class="anchor" href="#notes-{m["anchor"]}">#</a>'
                   f'{html.escape(m["id"])} &middot; {txt(m["title"])}</h3><ul class="notes">{"".join(items)}</ul>')
    return "\n".join(out)


GEN_RE = re.compile(r"^<!--\s*(include|params|milestones|xref-index|learnings-index)\s*:?\s*(.*?)\s*-->\s*$")


# ---- inline markup ------------------------------------------------------

def slug(text):
    t = re.sub(r"<[^>]+>", "", text).lower()
    t = re.sub(r"[^a-z0-9 -]", "", t).strip()
    return re.sub(r"[ ]+", "-", t)


def inline(text):
    """One paragraph's inline Markdown. Code spans, raw tags, escapes and the
    tags this function makes are set aside as placeholders first, so bold and
    italic may span them and nothing inside them is touched."""
    kept, raw = [], {}

    def keep(s, orig=None):
        kept.append(s)
        if orig is not None:
            raw[len(kept) - 1] = orig
        return "\x01%d\x01" % (len(kept) - 1)

    def url(u):
        """a link target as written: escapes inside it (a #L: regex) stay as typed"""
        u = re.sub("\x01(\\d+)\x01", lambda m: raw.get(int(m.group(1)), kept[int(m.group(1))]), u)
        return html.escape(html.unescape(u))

    t = text.replace("\x01", "")
    t = re.sub(r"\\`", lambda m: keep("&#96;"), t)
    t = re.sub(r"(`+)(.+?)\1", lambda m: keep(
        "<code>" + html.escape(m.group(2).strip() if m.group(1) == "``" else m.group(2)) + "</code>"), t)
    t = re.sub(r"<[a-zA-Z/][^>]*>|&[a-z]+;|&#\d+;", lambda m: keep(m.group(0)), t)
    t = re.sub(r"\\([*_\[\]|\\])", lambda m: keep("&#%d;" % ord(m.group(1)), m.group(0)), t)
    t = html.escape(t, quote=False)
    t = re.sub(r"!\[([^\[\]]*)\]\(([^)\s]+)\)",
               lambda m: keep(f'<img src="{url(m.group(2))}" alt="{m.group(1)}">'), t)
    t = re.sub(r"\[([^\[\]]+)\]\(([^)\s]+)\)",
               lambda m: keep(f'<a href="{url(m.group(2))}">') + m.group(1) + keep("</a>"), t)
    t = re.sub(r"\*\*(.+?)\*\*", lambda m: keep("<strong>") + m.group(1) + keep("</strong>"), t)
    t = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", lambda m: keep("<em>") + m.group(1) + keep("</em>"), t)
    for _ in range(3):   # placeholders inside kept pieces (a code span in a link's text)
        t = re.sub("\x01(\\d+)\x01", lambda m: kept[int(m.group(1))], t)
    return t


# ---- blocks -------------------------------------------------------------

def convert(md, page, ctx):
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
            kind, arg = g.group(1), g.group(2)
            if kind == "include":
                out.append(include(arg, page, ctx))
            elif kind == "params":
                out.append(params_table(arg, page))
            elif kind == "milestones":
                h, t = milestones_section(ctx, page)
                out.append(h)
                toc.extend(t)
            elif kind == "xref-index":
                out.append(xref_index(ctx, page))
            else:
                out.append(learnings_index(ctx, page))
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
                raise BuildError(f"{rel(page.md_path)}: unclosed ``` starting at line {i + 1}")
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
            out.append("<blockquote>" + convert("\n".join(block), page, ctx)[0] + "</blockquote>")
            continue
        if line.startswith("|"):
            rows = []
            while i < n and lines[i].startswith("|"):
                cells = re.split(r"(?<!\\)\|", lines[i].strip()[1:-1] if lines[i].strip().endswith("|") else lines[i].strip()[1:])
                rows.append([c.strip().replace("\\|", "|") for c in cells])
                i += 1
            if len(rows) < 2 or not all(re.match(r"^:?-+:?$", c) for c in rows[1]):
                raise BuildError(f"{rel(page.md_path)}: table before line {i + 1} needs a | --- | separator row")
            head = "".join(f"<th>{inline(c)}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows[2:])
            out.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')
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


# ---- links: pages, and the source view of every repository file ----------

def code_view_rel(path, is_dir):
    return "code/" + path + ("/index.html" if is_dir else ".html")


def resolve_fragment(path, frag, where):
    """#L:REGEX -> #L<n> (the first matching line); #L<n>[-L<m>] is checked."""
    if frag.startswith("L:"):
        rx = frag[2:]
        lines = read(os.path.join(ROOT, path)).split("\n")
        k = next((i for i, l in enumerate(lines) if re.search(rx, l)), None)
        if k is None:
            raise BuildError(f"{where}: link {path}#{frag}: no line matches /{rx}/")
        return f"L{k + 1}", None
    m = re.fullmatch(r"L(\d+)(?:-L(\d+))?", frag)
    if m:
        n_lines = read(os.path.join(ROOT, path)).count("\n") + 1
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if not 1 <= a <= b <= n_lines:
            raise BuildError(f"{where}: link {path}#{frag}: {path} has {n_lines} lines")
        return frag, (a, b) if m.group(2) else None
    raise BuildError(f"{where}: link {path}#{frag}: a link into a source file needs #L<n>, #L<n>-L<m> or #L:REGEX")


def rewrite_links(body, page, ctx):
    where = rel(page.md_path)

    def fix(m):
        attr, url = m.group(1), html.unescape(m.group(2))
        if url.startswith("repo:"):
            target, _, frag = url[5:].partition("#")
            full = os.path.join(ROOT, target)
        elif re.match(r"^[a-z][a-z0-9+.-]*:", url) or url.startswith(("#", "//")):
            return m.group(0)
        else:
            target, _, frag = url.partition("#")
            if not target:
                return m.group(0)
            full = os.path.normpath(os.path.join(page.dir, target))
        if not (full == ROOT or full.startswith(ROOT + os.sep)):
            raise BuildError(f"{where}: link {url} leaves the repository")
        if full.startswith(DOCS + os.sep):
            r = os.path.relpath(full, DOCS)
            if r.endswith(".md") and r[:-3] in ctx.pages:
                new = page.root + r[:-3] + ".html"
            elif r.endswith(".md") and not os.path.exists(full):
                raise BuildError(f"{where}: link {url}: {rel(full)} does not exist")
            else:
                new = page.root + r
            return f'{attr}="{html.escape(new + ("#" + frag if frag else ""))}"'
        path = rel(full)
        if not os.path.exists(full):
            raise BuildError(f"{where}: link {url}: {path} does not exist")
        if os.path.isdir(full):
            ctx.dirs.setdefault(path.rstrip("/"), set()).add(page.name)
            return f'{attr}="{page.root}{code_view_rel(path.rstrip("/"), True)}"'
        e = ctx.want_code(path, page)
        if frag:
            frag, rng = resolve_fragment(path, frag, where)
            if rng:
                e["ranges"].add(rng)
        return f'{attr}="{html.escape(page.root + code_view_rel(path, False) + ("#" + frag if frag else ""))}"'

    return re.sub(r'(?<![\w-])(href|src)="([^"]*)"', fix, body)


# ---- the page -------------------------------------------------------------

def strip_html(ctx, page, here):
    """The milestones, one chip each, the page's own marked."""
    out = []
    for m in ctx.ms["milestones"]:
        cur = ' aria-current="step"' if m in here else ""
        out.append(f'<a class="ms {m["state"]}" href="{page.root}milestones.html#{m["anchor"]}"{cur} '
                   f'title="{html.escape(m["id"])} {txt(m["title"])}: {STATE_WORDS[m["state"]]}">'
                   f'<b>{html.escape(m["id"])}</b> {txt(m["title"])}</a>')
    return f'<nav class="strip" aria-label="Milestones">{"<i>&rarr;</i>".join(out)}</nav>'


def xref_box(ctx, page, here):
    if not here:
        return ""
    out = []
    for m in here:
        verb = "needs this note" if page.is_note else "is built on this page"
        t = test_links([t for pr in m["proof"] for t in pr["tests"]], page)
        pages = ", ".join(page_link(ctx, n, page) for n in m["pages"] if n != page.name) or "&mdash;"
        out.append(
            f'<aside class="xref" id="cross-references-{m["anchor"]}"><p class="xref-head">'
            f'<a href="{page.root}milestones.html#{m["anchor"]}">Milestone {html.escape(m["id"])} &middot; '
            f'{txt(m["title"])}</a> {state_badge(m["state"])} {verb}.</p><dl>'
            f'<dt>Proved by</dt><dd>{t or "see the milestone"}</dd>'
            f'<dt>{"Its pages" if page.is_note else "Its other pages"}</dt><dd>{pages}</dd>'
            f'<dt>Learnings</dt><dd>{note_links(ctx, m, page)}</dd>'
            f'<dt>Book</dt><dd>{book_refs(ctx.ms, m)}</dd>'
            f'<dt>ds4</dt><dd>{ds4_refs(ctx.ms, m)}</dd>'
            f'<dt>Raschka</dt><dd>{raschka_refs(m)}</dd></dl></aside>')
    return "\n".join(out)


def page_html(ctx, page, body, toc, scripts, prev_next, here, box):
    r = page.root
    nav = []
    cur_nav = LEARN if page.is_note else page.name
    for pname, ptitle in PAGES:
        cur = ' aria-current="page"' if pname == cur_nav else ""
        nav.append(f'<a href="{r}{pname}.html"{cur}>{ptitle}</a>')
    prev, nxt = prev_next
    prev_link = f'<a href="{r}{prev.out_rel}">&larr; {prev.title}</a>' if prev else "<span></span>"
    next_link = f'<a href="{r}{nxt.out_rel}">{nxt.title} &rarr;</a>' if nxt else "<span></span>"
    toc_html = ""
    if len(toc) > 2:
        toc_html = ('<nav class="toc"><strong>On this page</strong><ul>' +
                    "".join(f'<li><a href="#{h}">{t}</a></li>' for h, t in toc) + "</ul></nav>")
    body_with_toc = body.replace("</h1>", "</h1>\n" + toc_html, 1)
    script_tags = "".join(f'\n<script src="{r}{s}"></script>' for s in scripts)
    md_name = os.path.basename(page.md_path)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(re.sub(r"<[^>]+>", "", html.unescape(page.title)))} - Failed Star</title>
<link rel="stylesheet" href="{r}style.css">
<script src="{r}js/site.js"></script>
</head>
<body>
<header class="site"><a class="brand" href="{r}index.html">&#9733; Failed Star</a>
<nav class="pages">{"".join(nav)}</nav></header>
<main>
{strip_html(ctx, page, here)}
<article>
{body_with_toc}
</article>
{box}
<nav class="prevnext">{prev_link}{next_link}</nav>
</main>
<footer>Generated from <a href="{md_name}">docs/{page.name}.md</a> by <a href="{r}code/tools/docs_build.py.html">tools/docs_build.py</a>. Do not edit the HTML.</footer>{script_tags}
</body>
</html>
"""


# ---- source views ---------------------------------------------------------

C_LIKE = (".c", ".h", ".cu", ".js", ".css", ".m")
HASH_COMMENT = (".py", ".sh", "Makefile", ".toml", ".yml", ".yaml")


def highlight(lines, path):
    """Comments in their own colour, line by line (a block comment is
    closed at the end of each line and reopened on the next)."""
    out = []
    if path.endswith(C_LIKE):
        in_block = False
        for l in lines:
            res, i, n = [], 0, len(l)
            if in_block:
                res.append('<i class="c">')
            str_q = None
            while i < n:
                if in_block:
                    j = l.find("*/", i)
                    if j < 0:
                        res.append(html.escape(l[i:]))
                        i = n
                    else:
                        res.append(html.escape(l[i:j + 2]) + "</i>")
                        in_block = False
                        i = j + 2
                    continue
                ch = l[i]
                if str_q:
                    if ch == "\\":
                        res.append(html.escape(l[i:i + 2]))
                        i += 2
                        continue
                    if ch == str_q:
                        str_q = None
                    res.append(html.escape(ch))
                    i += 1
                    continue
                if ch in "\"'":
                    str_q = ch
                    res.append(html.escape(ch))
                    i += 1
                elif l.startswith("/*", i):
                    res.append('<i class="c">/*')
                    in_block = True
                    i += 2
                elif l.startswith("//", i):
                    res.append('<i class="c">' + html.escape(l[i:]) + "</i>")
                    i = n
                else:
                    res.append(html.escape(ch))
                    i += 1
            if in_block:
                res.append("</i>")
            out.append("".join(res))
        return out
    if path.endswith(HASH_COMMENT):
        for l in lines:
            m = re.match(r"^(\s*)(#.*)$", l)
            if m and not l.startswith("#!"):
                out.append(html.escape(m.group(1)) + '<i class="c">' + html.escape(m.group(2)) + "</i>")
            else:
                out.append(html.escape(l))
        return out
    return [html.escape(l) for l in lines]


def code_header(ctx, root, title):
    nav = "".join(f'<a href="{root}{p}.html">{t}</a>' for p, t in PAGES)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - Failed Star source</title>
<link rel="stylesheet" href="{root}style.css">
<script src="{root}js/site.js"></script>
</head>
<body class="codeview">
<header class="site"><a class="brand" href="{root}index.html">&#9733; Failed Star</a>
<nav class="pages">{nav}</nav></header>
<main class="code">
"""


def linked_from_html(ctx, names, root):
    pages = [ctx.pages[n] for n in sorted(names, key=lambda n: (ctx.pages[n].is_note, n))]
    return ", ".join(f'<a href="{root}{p.out_rel}">{p.title}</a>' for p in pages)


def code_view(ctx, path, entry):
    full = os.path.join(ROOT, path)
    with open(full, "rb") as f:
        data = f.read()
    root = "../" * (path.count("/") + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    parts = [code_header(ctx, root, path), f'<h1 class="codetitle"><code>{html.escape(path)}</code></h1>']
    docs = re.search(r"\bDocs:\s*(.*)$", text[:8000], re.M) if text else None
    meta = []
    if docs:
        taught = []
        for ref in re.findall(r"docs/([\w/-]+)\.md", docs.group(1)):
            if ref in ctx.pages:
                taught.append(f'<a href="{root}{ctx.pages[ref].out_rel}">{ctx.pages[ref].title}</a>')
        if taught:
            meta.append("taught on " + ", ".join(taught))
    meta.append("linked from " + linked_from_html(ctx, entry["linked_from"], root))
    if text is None or b"\0" in data:
        parts.append(f'<p class="codemeta">{"; ".join(meta)}.</p><p>A binary file of {len(data):,} bytes: no source view.</p>')
    else:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        meta.insert(0, f"{len(lines):,} lines")
        starts = {}
        for a, b in sorted(entry["ranges"]):
            starts.setdefault(a, []).append(b)
        body = []
        for k, l in enumerate(highlight(lines, path), 1):
            ranges = "".join(f'<span class="range" id="L{k}-L{b}"></span>' for b in starts.get(k, []))
            body.append(f'{ranges}<span id="L{k}"><a href="#L{k}">{k}</a>{l}\n</span>')
        parts.append(f'<p class="codemeta">{"; ".join(meta)}.</p>'
                     f'<pre class="code"><code>{"".join(body)}</code></pre>')
    parts.append('</main>\n<footer>A view of the repository file, generated by '
                 f'<a href="{root}code/tools/docs_build.py.html">tools/docs_build.py</a>; '
                 'line anchors: #L120, #L120-L140.</footer>\n</body>\n</html>\n')
    return "\n".join(parts)


def dir_entries(path):
    """the folder's entries as git tracks them (so the view is the same in
    every clone, whatever is built or downloaded there); all of them when
    git is not at hand"""
    full = os.path.join(ROOT, path)
    try:
        r = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--", path + "/"], capture_output=True, timeout=20)
        if r.returncode == 0:
            names = {f[len(path) + 1:].split("/")[0] for f in r.stdout.decode().split("\0") if f}
            return sorted(names)
    except (OSError, subprocess.SubprocessError):
        pass
    return sorted(os.listdir(full))


def dir_view(ctx, path, linked_from):
    root = "../" * (path.count("/") + 2)
    items = []
    for fn in dir_entries(path):
        p = os.path.join(path, fn)
        if p in ctx.code:
            items.append(f'<li><a href="{root}{code_view_rel(p, False)}"><code>{html.escape(fn)}</code></a></li>')
        else:
            items.append(f'<li><code>{html.escape(fn)}</code></li>')
    return (code_header(ctx, root, path + "/") + f'<h1 class="codetitle"><code>{html.escape(path)}/</code></h1>'
            f'<p class="codemeta">A folder of the repository; linked from {linked_from_html(ctx, linked_from, root)}.</p>'
            f'<ul class="dir">{"".join(items)}</ul></main>\n<footer>Generated by '
            f'<a href="{root}code/tools/docs_build.py.html">tools/docs_build.py</a>.</footer>\n</body>\n</html>\n')


# ---- the site -------------------------------------------------------------

def discover(ms):
    names = sorted(f[:-3] for f in os.listdir(DOCS) if f.endswith(".md"))
    listed = [p for p, _ in PAGES]
    for nm in names:
        if nm not in listed:
            raise BuildError(f"docs/{nm}.md is not in PAGES (tools/docs_build.py): add it to the navigation")
    for nm in listed:
        if nm not in names:
            raise BuildError(f"docs/{nm}.md is listed in PAGES but does not exist")
    pages = {nm: Page(nm, t, os.path.join(DOCS, nm + ".md")) for nm, t in PAGES}
    notes_dir = os.path.join(DOCS, LEARN)
    notes = sorted(f[:-3] for f in os.listdir(notes_dir) if f.endswith(".md")) if os.path.isdir(notes_dir) else []
    wanted = [n for m in ms["milestones"] for n in m["learnings"]]
    for n in notes:
        if n not in wanted:
            raise BuildError(f"docs/{LEARN}/{n}.md: no milestone lists it (docs/data/milestones.json \"learnings\")")
    for n in wanted:
        if n not in notes:
            raise BuildError(f"docs/data/milestones.json lists the learning \"{n}\", but docs/{LEARN}/{n}.md does not exist")
    order = []
    for n in wanted:
        if n not in order:
            order.append(n)
    for n in order:
        name = LEARN + "/" + n
        pages[name] = Page(name, None, os.path.join(notes_dir, n + ".md"))
    for p in pages.values():
        md = read(p.md_path)
        m = re.search(r"^#\s+(.*)$", md, re.M)
        if not m:
            raise BuildError(f"{rel(p.md_path)} has no '# title' line")
        p.title = inline(m.group(1))
        if p.is_note:
            rest = md[m.end():].strip().split("\n\n")[0]
            p.summary = inline(" ".join(l.strip() for l in rest.split("\n")))
    return pages, [nm for nm, _ in PAGES], [LEARN + "/" + n for n in order]


def write(out_dir, relpath, text, written):
    path = os.path.join(out_dir, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    written.append(relpath)


def build_page(ctx, pages, order, k, out_dir, written):
    """convert one page (order[k]) and write it"""
    ms = ctx.ms
    nm = order[k]
    page = pages[nm]
    md = read(page.md_path)
    scripts = re.findall(r"^<!--\s*script:\s*(\S+)\s*-->\s*$", md, re.M)
    md = re.sub(r"^<!--\s*script:.*-->\s*$", "", md, flags=re.M)
    body, toc = convert(md, page, ctx)
    body = rewrite_links(body, page, ctx)
    here = (milestone_of_note(ms, nm[len(LEARN) + 1:]) if page.is_note else milestone_of_page(ms, nm))
    box = rewrite_links(xref_box(ctx, page, here), page, ctx)
    prev = pages[order[k - 1]] if k > 0 else (pages[LEARN] if page.is_note else None)
    nxt = pages[order[k + 1]] if k + 1 < len(order) else (pages[LEARN] if page.is_note else None)
    write(out_dir, page.out_rel, page_html(ctx, page, body, toc, scripts, (prev, nxt), here, box), written)


def build(out_dir):
    """Write the whole site into out_dir; return the relative paths written."""
    ms = load_milestones()
    written = []
    for relpath, text in docs_figures.build(ms):
        write(out_dir, relpath, text, written)
    pages, main_order, note_order = discover(ms)
    ctx = Ctx(ms, pages)
    ctx.want_code("tools/docs_build.py", pages["index"])
    errors = []
    for order in (main_order, note_order):
        for k, nm in enumerate(order):
            try:
                build_page(ctx, pages, order, k, out_dir, written)
            except BuildError as ex:   # go on: one run lists every broken include and link
                errors.append(str(ex))
    if errors:
        raise BuildError(f"{len(errors)} page(s) could not be built:\n  " + "\n  ".join(errors))
    for path in sorted(ctx.code):
        write(out_dir, code_view_rel(path, False), code_view(ctx, path, ctx.code[path]), written)
    for path in sorted(ctx.dirs):
        write(out_dir, code_view_rel(path, True), dir_view(ctx, path, ctx.dirs[path]), written)
    return written


def main():
    ap = argparse.ArgumentParser(description="build the site docs/**/*.html from docs/**/*.md")
    ap.add_argument("--out", default=DOCS, help="output directory (default: docs/)")
    a = ap.parse_args()
    try:
        written = build(a.out)
    except BuildError as ex:
        print(f"docs_build: {ex}", file=sys.stderr)
        return 1
    n_pages = sum(1 for w in written if w.endswith(".html") and not w.startswith("code/"))
    n_code = sum(1 for w in written if w.startswith("code/"))
    where = os.path.relpath(a.out, ROOT) if os.path.abspath(a.out).startswith(ROOT) else a.out
    print(f"docs_build: {n_pages} pages, {n_code} source views, {len(written) - n_pages - n_code} "
          f"generated pictures and data files written to {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
