#!/usr/bin/env python3
"""docs_check.py - keep the learning site (docs/) true to the code.

Standard library only; `make docs-check` runs it. Checks:

  1. everything tools/docs_build.py writes (pages, learning notes, source
     views under docs/code/, generated pictures and widget data) is
     committed as the build makes it from today's Markdown, data and
     sources (it rebuilds into a temporary directory and compares), and no
     stale generated page is left behind;
  2. every relative link and image in the site resolves to a file inside
     docs/ - a link that leaves the site would break when it is hosted on
     its own - and a #fragment names an id on the target page (so every
     #L120 or #L120-L140 line anchor of a source view exists);
  3. every code excerpt (<!-- include -->) shows exactly the lines of the
     source view its caption links to;
  4. no Markdown is left unrendered in the HTML text (a literal **, ](, or
     a backtick outside code) and no link swallowed its neighbours (a link
     text with "](" or an unclosed "[", or longer than 100 characters);
  5. every repository path mentioned in docs/**/*.md (src/..., cli/...,
     tests/..., scripts/..., tools/..., fuzz/..., configs/..., docs/...)
     exists;
  6. every "Docs: PATH" reference in the code (src, cli, tools, scripts,
     tests, fuzz) names an existing page, and that page links the file
     back. A page not written yet is allowed when docs/data/milestones.json
     lists it under a milestone that is not done (it prints a note);
  7. the site stays small: docs/ under 16 MiB.

Prints one line per problem and exits 1 if there is any, else prints a
summary and exits 0.

    python3 tools/docs_check.py

Docs: docs/index.md
"""
import filecmp
import glob
import html
import html.parser
import os
import re
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import docs_build  # noqa: E402

CODE_DIRS = ["src", "cli", "tools", "scripts", "tests", "fuzz"]
PATH_RE = re.compile(r"(?<![\w./-])((?:src|cli|tests|scripts|tools|fuzz|configs|docs)/[A-Za-z0-9_.*/-]*[A-Za-z0-9_*/])")
SIZE_LIMIT = 16 << 20
LONG_LINK = 100
SKIP_TEXT = {"code", "pre", "script", "style", "title", "textarea"}


class Page(html.parser.HTMLParser):
    """Links, ids, include figures, and the text outside code, of one page."""

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.links, self.ids = [], set()
        self.stack = []
        self.text = []            # (data, line) outside code
        self.anchors = []         # (href, text, line)
        self.includes = []        # (src, lines, caption href, code text)
        self._a = None
        self._inc = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for k in ("href", "src"):
            if a.get(k) is not None:
                self.links.append((tag, a[k], self.getpos()[0]))
        if tag in ("br", "img", "meta", "link", "input", "hr"):
            return
        self.stack.append(tag)
        if tag == "a":
            self._a = [a.get("href", ""), [], self.getpos()[0]]
        if tag == "figure" and "include" in (a.get("class") or "").split():
            self._inc = {"src": a.get("data-src"), "lines": a.get("data-lines"), "href": None, "code": []}
        if self._inc is not None and tag == "a" and self._inc["href"] is None:
            self._inc["href"] = a.get("href")

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass
        if tag == "a" and self._a is not None:
            self.anchors.append((self._a[0], "".join(self._a[1]), self._a[2]))
            self._a = None
        if tag == "figure" and self._inc is not None:
            self.includes.append(self._inc)
            self._inc = None

    def _data(self, d):
        if self._a is not None:
            self._a[1].append(d)
        if self._inc is not None and "code" in self.stack:
            self._inc["code"].append(d)
        if not SKIP_TEXT.intersection(self.stack):
            self.text.append((d, self.getpos()[0]))

    def handle_data(self, d):
        self._data(d)

    def handle_entityref(self, name):
        self._data(html.unescape(f"&{name};") if self._inc is not None and "code" in self.stack else f"&{name};")

    def handle_charref(self, name):
        self._data(html.unescape(f"&#{name};") if self._inc is not None and "code" in self.stack else f"&#{name};")


def parse(path):
    p = Page()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p


def rel(p):
    return os.path.relpath(p, ROOT)


def leftovers(path, p):
    """Problems of check 4 in one parsed page: unrendered Markdown in its
    text, links that swallowed their neighbours."""
    out = []
    for d, line in p.text:
        for pat, what in (("**", "a literal **"), ("](", "a literal ]("), ("`", "a backtick")):
            if pat in d:
                out.append(f"{rel(path)}:{line}: unrendered Markdown, {what} in the text: {d.strip()[:80]!r}")
    for href, text, line in p.anchors:
        t = re.sub(r"\s+", " ", html.unescape(text)).strip()
        if "](" in t or re.search(r"\[[^\]]*$", t) or len(t) > LONG_LINK:
            out.append(f"{rel(path)}:{line}: a link swallowed text ({len(t)} characters): {t[:80]!r}...")
    return out


def code_view_lines(path):
    """{line number: text} of a source view, read back from its HTML"""
    with open(path, encoding="utf-8") as f:
        s = f.read()
    out = {}
    for m in re.finditer(r'<span id="L(\d+)"><a href="#L\d+">\d+</a>(.*?)\n</span>', s):
        out[int(m.group(1))] = html.unescape(re.sub(r"<[^>]+>", "", m.group(2)))
    return out


def files_under(d, ext=""):
    """every file under d, hidden folders (code/.notes) included, unlike glob"""
    out = []
    for dirpath, _, files in os.walk(d):
        out += [os.path.join(dirpath, f) for f in files if f.endswith(ext)]
    return sorted(out)


def main():
    problems, notes = [], []

    # 1. stale output
    with tempfile.TemporaryDirectory() as tmp:
        try:
            written = docs_build.build(tmp)
        except docs_build.BuildError as ex:
            problems.append(f"build: {ex}")
            written = None
        if written is not None:
            for r in written:
                committed = os.path.join(DOCS, r)
                if not os.path.exists(committed):
                    problems.append(f"docs/{r}: missing (run: make docs)")
                elif not filecmp.cmp(os.path.join(tmp, r), committed, shallow=False):
                    problems.append(f"docs/{r}: out of date with the Markdown, data or sources it is made from "
                                    f"(run: make docs)")
            made = set(written)
            generated = (glob.glob(os.path.join(DOCS, "*.html")) + glob.glob(os.path.join(DOCS, "learnings", "*.html"))
                         + files_under(os.path.join(DOCS, "code")))
            for g in sorted(generated):
                if os.path.relpath(g, DOCS) not in made:
                    problems.append(f"{rel(g)}: nothing in the build makes this file any more (stale? delete it)")

    html_pages = sorted(glob.glob(os.path.join(DOCS, "*.html")) + glob.glob(os.path.join(DOCS, "learnings", "*.html")))
    code_pages = files_under(os.path.join(DOCS, "code"), ".html")

    # 2. links, inside the site, fragments included
    parsed = {}

    def get(path):
        if path not in parsed:
            parsed[path] = parse(path)
        return parsed[path]

    n_links = n_frags = 0
    for path in html_pages + code_pages:
        p = get(path)
        for tag, url, line in p.links:
            if re.match(r"^[a-z][a-z0-9+.-]*:", url) or url.startswith("//"):
                continue  # external: not checked (no network)
            n_links += 1
            target, _, frag = url.partition("#")
            full = os.path.normpath(os.path.join(os.path.dirname(path), target)) if target else path
            if not full.startswith(DOCS + os.sep):
                problems.append(f"{rel(path)}:{line}: link {url} leaves the site (docs/); link the source view "
                                f"instead (docs/code/...)")
                continue
            if not os.path.exists(full):
                problems.append(f"{rel(path)}:{line}: <{tag}> {url}: {rel(full)} does not exist")
                continue
            if frag and full.endswith(".html"):
                n_frags += 1
                if frag not in get(full).ids:
                    problems.append(f"{rel(path)}:{line}: link {url}: no id \"{frag}\" in {rel(full)}")

    # 3. each excerpt shows the lines its caption points at
    n_inc = 0
    for path in html_pages:
        for inc in get(path).includes:
            n_inc += 1
            href = inc["href"] or ""
            target, _, frag = href.partition("#")
            m = re.fullmatch(r"L(\d+)-L(\d+)", frag)
            want = f"code/{inc['src']}.html"
            full = os.path.normpath(os.path.join(os.path.dirname(path), target))
            if not m or os.path.relpath(full, DOCS) != want or inc["lines"] != f"{m.group(1)}-{m.group(2)}":
                problems.append(f"{rel(path)}: the excerpt of {inc['src']} lines {inc['lines']} links {href}, "
                                f"not docs/{want}#L{inc['lines'].replace('-', '-L')}")
                continue
            if not os.path.exists(full):
                continue  # reported above
            lines = code_view_lines(full)
            a, b = int(m.group(1)), int(m.group(2))
            shown = "".join(inc["code"]).split("\n")
            view = [lines.get(k) for k in range(a, b + 1)]
            if shown != view:
                problems.append(f"{rel(path)}: the excerpt of {inc['src']} lines {a}-{b} differs from those lines in "
                                f"docs/{want} (run: make docs)")

    # 4. unrendered Markdown, swallowing links
    for path in html_pages:
        problems += leftovers(path, get(path))

    # 5. paths mentioned in the Markdown
    n_paths = 0
    linked_from = {}
    md_files = sorted(glob.glob(os.path.join(DOCS, "*.md")) + glob.glob(os.path.join(DOCS, "learnings", "*.md")))
    for md_path in md_files:
        name = os.path.relpath(md_path, DOCS)[:-3]
        with open(md_path, encoding="utf-8") as f:
            md = f.read()
        mentioned = set(PATH_RE.findall(md))
        for m in re.finditer(r"(?:href|src)=\"([^\"#]+)|\]\(([^)#\s]+)", md):
            u = m.group(1) or m.group(2)
            if not re.match(r"^[a-z]+:", u):
                mentioned.add(os.path.relpath(os.path.normpath(os.path.join(os.path.dirname(md_path), u)), ROOT))
        for inc in re.findall(r"<!--\s*(?:include|params):\s*([^|\s]+)", md):
            mentioned.add(inc)
        linked_from[name] = mentioned
        for pth in sorted(set(PATH_RE.findall(md))):
            n_paths += 1
            if "*" in pth:
                if not glob.glob(os.path.join(ROOT, pth)):
                    problems.append(f"docs/{name}.md: {pth} matches no file")
            elif not os.path.exists(os.path.join(ROOT, pth.rstrip("/"))):
                problems.append(f"docs/{name}.md: mentions {pth}, which does not exist")

    # 6. Docs: references in the code, and the link back
    try:
        ms = docs_build.load_milestones()
        pending = {p: m for m in ms["milestones"] if m["state"] != "done" for p in m["pages"]}
    except docs_build.BuildError:
        pending = {}
    n_refs = 0
    for d in CODE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
            for fn in sorted(files):
                src = os.path.join(dirpath, fn)
                if not fn.endswith((".c", ".h", ".py", ".sh", ".js", ".cu")):
                    continue
                try:
                    with open(src, encoding="utf-8") as f:
                        head = f.read(8000)
                except (UnicodeDecodeError, OSError):
                    continue
                for line in head.split("\n"):
                    m = re.search(r"\bDocs:\s*(.*)$", line)
                    if not m:
                        continue
                    for ref in re.findall(r"[\w./-]+\.md", m.group(1)):
                        n_refs += 1
                        mm = re.match(r"^docs/([\w/-]+)\.md$", ref)
                        if not os.path.exists(os.path.join(ROOT, ref)):
                            if mm and mm.group(1) in pending:
                                mi = pending[mm.group(1)]
                                notes.append(f"{rel(src)}: \"Docs: {ref}\" is not written yet ({mi['id']} "
                                             f"{mi['title']} is {docs_build.STATE_WORDS[mi['state']]} in "
                                             f"docs/data/milestones.json)")
                            else:
                                problems.append(f"{rel(src)}: says \"Docs: {ref}\", which does not exist")
                            continue
                        if mm and mm.group(1) in linked_from and rel(src) not in linked_from[mm.group(1)]:
                            problems.append(f"{rel(src)}: names {ref}, but that page does not link "
                                            f"{rel(src)} (add a link, e.g. in its 'Source files' box)")
                    break  # only the first Docs: line of a file

    # 7. size
    size = 0
    for dirpath, _, files in os.walk(DOCS):
        for fn in files:
            size += os.path.getsize(os.path.join(dirpath, fn))
    if size > SIZE_LIMIT:
        problems.append(f"docs/ is {size / 2**20:.1f} MiB, over the {SIZE_LIMIT >> 20} MiB the site may take")

    for n in notes:
        print(f"docs-check: note: {n}")
    for p in problems:
        print(f"docs-check: {p}")
    if problems:
        print(f"docs-check: {len(problems)} problem(s)")
        return 1
    print(f"docs-check: ok: {len(html_pages)} pages and {len(code_pages)} source views up to date, {n_links} internal "
          f"links ({n_frags} with a fragment), {n_inc} excerpts against their source lines, {n_paths} source paths, "
          f"{n_refs} Docs: references, docs/ {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
