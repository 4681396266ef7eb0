#!/usr/bin/env python3
"""docs_check.py - keep the learning site (docs/) true to the code.

Standard library only; `make docs-check` runs it. Checks:

  1. the committed docs/*.html are what tools/docs_build.py makes from the
     current docs/*.md and sources (it rebuilds into a temporary directory
     and compares), so included code excerpts and computed tables cannot be
     stale;
  2. every relative link and image in the generated pages resolves to a
     file in the repository, and a #fragment on a page link names an id on
     that page;
  3. every repository path mentioned in docs/*.md (src/..., cli/..., tests/...,
     scripts/..., tools/..., fuzz/..., configs/..., docs/...) exists;
  4. every "Docs: PATH" reference in the code (src, cli, tools, scripts,
     tests, fuzz) names an existing file;
  5. links both ways: a file whose opening comment says "Docs: docs/X.md"
     is linked from docs/X.md.

Prints one line per problem and exits 1 if there is any, else prints a
summary and exits 0.

    python3 tools/docs_check.py

Docs: docs/index.md
"""
import filecmp
import glob
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


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for k in ("href", "src"):
            if k in a and a[k] is not None:
                self.links.append((tag, a[k]))


def parse_html(path):
    p = Links()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p


def rel(p):
    return os.path.relpath(p, ROOT)


def main():
    problems = []
    pages = [name for name, _ in docs_build.PAGES]

    # 1. stale HTML
    with tempfile.TemporaryDirectory() as tmp:
        try:
            docs_build.build(tmp)
        except docs_build.BuildError as ex:
            problems.append(f"build: {ex}")
        else:
            for name in pages:
                fresh = os.path.join(tmp, name + ".html")
                committed = os.path.join(DOCS, name + ".html")
                if not os.path.exists(committed):
                    problems.append(f"docs/{name}.html: missing (run: python3 tools/docs_build.py)")
                elif not filecmp.cmp(fresh, committed, shallow=False):
                    problems.append(f"docs/{name}.html: out of date with docs/{name}.md or the sources it "
                                    f"includes (run: python3 tools/docs_build.py)")
            for h in glob.glob(os.path.join(DOCS, "*.html")):
                if os.path.basename(h)[:-5] not in pages:
                    problems.append(f"{rel(h)}: no docs/*.md makes this page (stale file?)")

    # 2. links in the generated pages
    parsed = {}
    n_links = 0
    for name in pages:
        path = os.path.join(DOCS, name + ".html")
        if os.path.exists(path):
            parsed[path] = parse_html(path)
    for path, p in parsed.items():
        for tag, url in p.links:
            if re.match(r"^[a-z][a-z0-9+.-]*:", url) or url.startswith("//"):
                continue  # external: not checked (no network)
            n_links += 1
            target, _, frag = url.partition("#")
            full = os.path.normpath(os.path.join(os.path.dirname(path), target)) if target else path
            if not full.startswith(ROOT + os.sep):
                problems.append(f"{rel(path)}: link {url} leaves the repository")
                continue
            if not os.path.exists(full):
                problems.append(f"{rel(path)}: <{tag}> {url}: {rel(full)} does not exist")
                continue
            if frag and full.endswith(".html"):
                tp = parsed.get(full) or parse_html(full)
                if frag not in tp.ids:
                    problems.append(f"{rel(path)}: link {url}: no id \"{frag}\" in {rel(full)}")

    # 3. paths mentioned in the Markdown
    n_paths = 0
    linked_from = {}
    for name in pages:
        md_path = os.path.join(DOCS, name + ".md")
        with open(md_path, encoding="utf-8") as f:
            md = f.read()
        mentioned = set(PATH_RE.findall(md))
        for m in re.finditer(r"(?:href|src)=\"([^\"#]+)|\]\(([^)#\s]+)", md):
            u = m.group(1) or m.group(2)
            if not re.match(r"^[a-z]+:", u):
                mentioned.add(os.path.relpath(os.path.normpath(os.path.join(DOCS, u)), ROOT))
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

    # 4 and 5. Docs: references in the code, and the link back
    n_refs = 0
    for d in CODE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
            for fn in sorted(files):
                src = os.path.join(dirpath, fn)
                if not fn.endswith((".c", ".h", ".py", ".sh", ".js")):
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
                        if not os.path.exists(os.path.join(ROOT, ref)):
                            problems.append(f"{rel(src)}: says \"Docs: {ref}\", which does not exist")
                            continue
                        mm = re.match(r"^docs/([\w-]+)\.md$", ref)
                        if mm and mm.group(1) in linked_from and rel(src) not in linked_from[mm.group(1)]:
                            problems.append(f"{rel(src)}: names {ref}, but that page does not link "
                                            f"{rel(src)} (add a link, e.g. in its 'Source files' box)")
                    break  # only the first Docs: line of a file

    for p in problems:
        print(f"docs-check: {p}")
    if problems:
        print(f"docs-check: {len(problems)} problem(s)")
        return 1
    print(f"docs-check: ok: {len(pages)} pages up to date, {n_links} internal links, "
          f"{n_paths} source paths, {n_refs} Docs: references")
    return 0


if __name__ == "__main__":
    sys.exit(main())
