#!/usr/bin/env python3
"""docs_figures.py - the learning site's pictures, drawn from data as SVG.

Standard library only, no plotting package: a few primitives (boxes, lines,
text, log axes) are enough. tools/docs_build.py calls build() on every
`make docs`, so a picture is regenerated whenever its data changes, and
tools/docs_check.py's rebuild catches a stale one. Inputs:

  docs/data/bench-decode.csv      decode measurements (machine, commit, date,
                                  weights, tok/s, bytes per token, probe GB/s)
                                  -> img/roofline.svg. A new machine (the GPU)
                                  is new rows: the axes follow the data.
  docs/data/prefetch-hint.csv     T0 vs NTA prefetch   -> img/nta-prefetch.svg
  (no data)                       AMX tiles            -> img/amx-tiles.svg
  docs/data/amx-threshold.csv     tiles vs 512-bit by step size -> img/amx-threshold.svg
  docs/data/measurements.json     small measured sets with their sources
                                  (huge pages, KV padding, the GPU's persistent
                                  step and attention waves)
  docs/data/next-token-*.json     real next-token logits of models/tiny (made
                                  by tools/docs_data_logits.py)
                                  -> img/sampling.svg, js/fsdata-next-token.js
  configs/qwen3-0.6b.json         the shapes in img/block.svg, img/kv-growth.svg
  configs/{qwen3-0.6b,llama3.2-1b,smollm2-360m,qwen2.5-0.5b}.json
                                  -> img/archs.svg, img/llama3-rope.svg
  models/tiny/tokenizer.json      the merges in img/bpe-merges.svg

    python3 tools/docs_figures.py --list     # what it draws

Docs: docs/learnings.md
"""
import csv
import html
import json
import math
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "docs", "data")

FG, MUTED, LINE, PANEL, BG = "#1d2330", "#5b6475", "#ddd8ca", "#f3f1ea", "#fdfcf8"
ACCENT, BLUE, GREEN, PURPLE, GOLD, RED, GREY = "#b4521e", "#1f5f8b", "#3c7d3a", "#6b4c9a", "#d29a00", "#b3261e", "#9aa0aa"
SERIES = [BLUE, ACCENT, GREEN, PURPLE, GOLD, RED]
ROWS8 = ["#1f5f8b", "#b4521e", "#3c7d3a", "#6b4c9a", "#d29a00", "#b3261e", "#2b8a8a", "#8a5a2b"]
SANS = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
MONO = "'DejaVu Sans Mono', Menlo, Consolas, monospace"


def num(v):
    """a coordinate, short and the same on every machine"""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


class SVG:
    def __init__(self, w, h, title, desc=""):
        self.w, self.h, self.title, self.desc = w, h, title, desc
        self.items = []

    def add(self, s):
        self.items.append(s)

    def rect(self, x, y, w, h, fill="none", stroke=None, sw=1, rx=0, opacity=None, dash=None):
        a = f'<rect x="{num(x)}" y="{num(y)}" width="{num(w)}" height="{num(h)}" fill="{fill}"'
        if stroke:
            a += f' stroke="{stroke}" stroke-width="{num(sw)}"'
        if rx:
            a += f' rx="{num(rx)}"'
        if opacity is not None:
            a += f' opacity="{opacity}"'
        if dash:
            a += f' stroke-dasharray="{dash}"'
        self.add(a + "/>")

    def line(self, x1, y1, x2, y2, stroke=FG, sw=1, dash=None, arrow=False, opacity=None):
        a = (f'<line x1="{num(x1)}" y1="{num(y1)}" x2="{num(x2)}" y2="{num(y2)}" stroke="{stroke}" '
             f'stroke-width="{num(sw)}"')
        if dash:
            a += f' stroke-dasharray="{dash}"'
        if opacity is not None:
            a += f' opacity="{opacity}"'
        if arrow:
            a += ' marker-end="url(#arrow)"'
        self.add(a + "/>")

    def path(self, d, stroke=FG, fill="none", sw=1, dash=None, opacity=None, arrow=False):
        a = f'<path d="{d}" stroke="{stroke}" fill="{fill}" stroke-width="{num(sw)}"'
        if dash:
            a += f' stroke-dasharray="{dash}"'
        if opacity is not None:
            a += f' opacity="{opacity}"'
        if arrow:
            a += ' marker-end="url(#arrow)"'
        self.add(a + "/>")

    def poly(self, pts, fill, opacity=None, stroke=None):
        p = " ".join(f"{num(x)},{num(y)}" for x, y in pts)
        a = f'<polygon points="{p}" fill="{fill}"'
        if opacity is not None:
            a += f' opacity="{opacity}"'
        if stroke:
            a += f' stroke="{stroke}"'
        self.add(a + "/>")

    def circle(self, x, y, r, fill, stroke=None):
        a = f'<circle cx="{num(x)}" cy="{num(y)}" r="{num(r)}" fill="{fill}"'
        if stroke:
            a += f' stroke="{stroke}"'
        self.add(a + "/>")

    def text(self, x, y, s, size=12, anchor="start", fill=FG, weight=None, mono=False, italic=False, rotate=None):
        a = (f'<text x="{num(x)}" y="{num(y)}" font-size="{num(size)}" fill="{fill}" '
             f'font-family="{MONO if mono else SANS}"')
        if anchor != "start":
            a += f' text-anchor="{anchor}"'
        if weight:
            a += f' font-weight="{weight}"'
        if italic:
            a += ' font-style="italic"'
        if rotate is not None:
            a += f' transform="rotate({rotate} {num(x)} {num(y)})"'
        s = re.sub(r" {2,}", lambda m: "\u00a0" * len(m.group(0)), str(s))   # runs of spaces stay (SVG collapses them)
        self.add(a + f">{html.escape(s, quote=False)}</text>")

    def spans(self, x, y, parts, size=12, mono=True):
        """one line of text in several colours: parts = [(text, colour, bold)]"""
        inner = ""
        for t, c, b in parts:
            t = re.sub(r" {2,}", lambda m: chr(160) * len(m.group(0)), t)
            bold = ' font-weight="bold"' if b else ""
            inner += f'<tspan fill="{c}"{bold}>{html.escape(t, quote=False)}</tspan>'
        self.add(f'<text x="{num(x)}" y="{num(y)}" font-size="{num(size)}" font-family="{MONO if mono else SANS}">'
                 f'{inner}</text>')

    def box(self, x, y, w, h, label, fill=PANEL, stroke=FG, size=12, mono=False, color=FG, weight=None, rx=4):
        self.rect(x, y, w, h, fill=fill, stroke=stroke, rx=rx)
        lines = label.split("\n")
        for k, l in enumerate(lines):
            self.text(x + w / 2, y + h / 2 + (k - (len(lines) - 1) / 2) * size * 1.25 + size * 0.35, l, size=size,
                      anchor="middle", mono=mono, fill=color, weight=weight)

    def render(self):
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.w} {self.h}" width="{self.w}" '
                f'height="{self.h}" role="img">\n<title>{html.escape(self.title)}</title>\n'
                + (f"<desc>{html.escape(self.desc)}</desc>\n" if self.desc else "")
                + '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
                f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{FG}"/></marker></defs>\n'
                f'<rect width="{self.w}" height="{self.h}" fill="{BG}"/>\n'
                + "\n".join(self.items) + "\n</svg>\n")


def read_csv(name):
    with open(os.path.join(DATA, name), encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def config():
    c = read_json(os.path.join(ROOT, "configs", "qwen3-0.6b.json"))
    return {"V": c["vocab_size"], "H": c["hidden_size"], "L": c["num_hidden_layers"], "Hq": c["num_attention_heads"],
            "Hkv": c["num_key_value_heads"], "D": c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"],
            "I": c["intermediate_size"], "ctx": c["max_position_embeddings"]}


def weight_bytes(c):
    """Bytes of weights one decode step reads, per stored format: every
    matrix once (the tied embedding as lm_head) and the norms (kept in
    bf16 when the matrices are quantized), as fs bench counts them."""
    H, I, L, V, Hq, Hkv, D = c["H"], c["I"], c["L"], c["V"], c["Hq"], c["Hkv"], c["D"]
    mat = V * H + L * (Hq * D * H + 2 * Hkv * D * H + H * Hq * D + 3 * I * H)
    norms = L * (2 * H + 2 * D) + H
    return {"bf16": 2 * (mat + norms), "q8_0": mat * 34 // 32 + 2 * norms, "q4_0": mat * 18 // 32 + 2 * norms}


def kv_bytes_per_token(c):
    return 2 * c["L"] * c["Hkv"] * c["D"] * 4


# ---- axes -------------------------------------------------------------------

def nice_ticks_log(lo, hi):
    out = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo * 0.9999 <= v <= hi * 1.0001:
                out.append(v)
        e += 1
    return out


def fmt_tick(v):
    if v >= 1000:
        return f"{v / 1000:g}k" if v < 1e6 else f"{v / 1e6:g}M"
    return f"{v:g}"


class LogLog:
    def __init__(self, svg, x0, y0, x1, y1, xlo, xhi, ylo, yhi):
        self.s, self.x0, self.y0, self.x1, self.y1 = svg, x0, y0, x1, y1
        self.xlo, self.xhi, self.ylo, self.yhi = xlo, xhi, ylo, yhi

    def X(self, v):
        return self.x0 + (math.log10(v) - math.log10(self.xlo)) / (math.log10(self.xhi) - math.log10(self.xlo)) * (self.x1 - self.x0)

    def Y(self, v):
        return self.y1 - (math.log10(v) - math.log10(self.ylo)) / (math.log10(self.yhi) - math.log10(self.ylo)) * (self.y1 - self.y0)

    def frame(self, xlabel, ylabel):
        s = self.s
        # 1-2-5 labels where a decade is wide enough for three; else only
        # the decades are labelled (every tick keeps its grid line)
        x_decade = (self.x1 - self.x0) / (math.log10(self.xhi) - math.log10(self.xlo))
        y_decade = (self.y1 - self.y0) / (math.log10(self.yhi) - math.log10(self.ylo))
        def labelled(v, decade_px):
            return decade_px >= 100 or abs(math.log10(v) - round(math.log10(v))) < 1e-9
        for v in nice_ticks_log(self.xlo, self.xhi):
            x = self.X(v)
            s.line(x, self.y0, x, self.y1, stroke=LINE)
            if labelled(v, x_decade):
                s.text(x, self.y1 + 15, fmt_tick(v), size=11, anchor="middle", fill=MUTED)
        widest = 0
        for v in nice_ticks_log(self.ylo, self.yhi):
            y = self.Y(v)
            s.line(self.x0, y, self.x1, y, stroke=LINE)
            if labelled(v, y_decade):
                s.text(self.x0 - 6, y + 4, fmt_tick(v), size=11, anchor="end", fill=MUTED)
                widest = max(widest, len(fmt_tick(v)))
        s.rect(self.x0, self.y0, self.x1 - self.x0, self.y1 - self.y0, stroke=MUTED)
        s.text((self.x0 + self.x1) / 2, self.y1 + 33, xlabel, size=12, anchor="middle")
        # the axis title clear of the widest label (~6.5 px a character at size 11)
        s.text(self.x0 - max(42, 16 + 6.5 * widest), (self.y0 + self.y1) / 2, ylabel, size=12, anchor="middle", rotate=-90)


def decade_bounds(lo, hi):
    steps = []
    for e in range(-3, 15):
        for m in (1, 2, 5):
            steps.append(m * 10 ** e)
    a = max(v for v in steps if v <= lo)
    b = min(v for v in steps if v >= hi)
    return a, b


# ---- the roofline -------------------------------------------------------------

def fig_roofline():
    rows = read_csv("bench-decode.csv")
    series = []
    for r in rows:
        if r["series"] not in [s["id"] for s in series]:
            series.append({"id": r["series"], "machine": r["machine"], "date": r["date"], "commit": r["commit"],
                           "bw": (float(r["bw_gb_s_min"]), float(r["bw_gb_s_max"])), "rows": []})
        next(s for s in series if s["id"] == r["series"])["rows"].append(r)
    bytes_all = [float(r["bytes_per_token"]) / 1e6 for r in rows]
    toks = [float(r["tok_s_median"]) for r in rows] + [float(r["tok_s_max"]) for r in rows if r["tok_s_max"]]
    toks += [s["bw"][1] * 1e3 / b for s in series for b in bytes_all]
    xlo, xhi = decade_bounds(min(bytes_all) / 1.6, max(bytes_all) * 1.6)
    ylo, yhi = decade_bounds(min(toks) / 1.5, max(toks) * 1.3)
    W, H = 760, 470
    s = SVG(W, H, "Decode roofline: tokens per second against bytes read per token",
            "Each point is a measured decode speed; each band is tokens/s = bandwidth / bytes for the bandwidth "
            "range the bench measured on that machine.")
    ax = LogLog(s, 70, 42, 500, 400, xlo, xhi, ylo, yhi)
    s.text(20, 24, "Decode is bandwidth-bound: tok/s ≤ bandwidth / bytes per token (Qwen3-0.6B shape)",
           size=14, weight="bold")
    ax.frame("bytes read per decoded token (MB, log scale)", "decode tokens/s (log scale)")
    marks = {"bf16": "circle", "q8_0": "square", "q4_0": "triangle"}
    n_gpu = 0   # GPU series sit close together: every other one labels to the left
    for k, se in enumerate(series):
        col = SERIES[k % len(SERIES)]
        flip = any(r["backend"] == "cuda" for r in se["rows"]) and n_gpu % 2 == 1
        n_gpu += any(r["backend"] == "cuda" for r in se["rows"])
        lo, hi = se["bw"]
        pts = [(ax.X(xlo), ax.Y(min(yhi, lo * 1e3 / xlo))), (ax.X(xhi), ax.Y(max(ylo, lo * 1e3 / xhi))),
               (ax.X(xhi), ax.Y(max(ylo, hi * 1e3 / xhi))), (ax.X(xlo), ax.Y(min(yhi, hi * 1e3 / xlo)))]
        # clip the band to the plot: walk the two lines only where they are inside
        def seg(bw):
            out = []
            for i in range(41):
                b = xlo * (xhi / xlo) ** (i / 40)
                t = bw * 1e3 / b
                if ylo <= t <= yhi:
                    out.append((ax.X(b), ax.Y(t)))
            return out
        a, b2 = seg(lo), seg(hi)
        if a and b2:
            s.poly(a + b2[::-1], fill=col, opacity="0.10")
            s.path("M" + " L".join(f"{num(x)},{num(y)}" for x, y in a), stroke=col, dash="5 4", opacity="0.8")
            s.path("M" + " L".join(f"{num(x)},{num(y)}" for x, y in b2), stroke=col, dash="5 4", opacity="0.8")
        n_at = 0
        for r in se["rows"]:
            x = ax.X(float(r["bytes_per_token"]) / 1e6)
            y = ax.Y(float(r["tok_s_median"]))
            if r["tok_s_min"] and r["tok_s_max"]:
                s.line(x, ax.Y(float(r["tok_s_min"])), x, ax.Y(float(r["tok_s_max"])), stroke=col, sw=1.5)
            m = marks.get(r["weights"], "circle")
            if m == "circle":
                s.circle(x, y, 5, col, stroke=BG)
            elif m == "square":
                s.rect(x - 4.5, y - 4.5, 9, 9, fill=col, stroke=BG)
            else:
                s.poly([(x, y - 6), (x + 6, y + 4.5), (x - 6, y + 4.5)], fill=col, stroke=BG)
            at = r["test"].partition("@")[2].strip()   # "tg128 @ d4096": a filled cache, its depth
            label = f'{r["weights"]}{" @" + at if at else ""} {float(r["tok_s_median"]):.4g}'
            if at:   # points of one series at depth sit close together: labels go below, stacked
                if flip:
                    s.text(x - 8, y + 16 + 13 * n_at, label, size=10.5, fill=col, anchor="end")
                else:
                    s.text(x - 4, y + 16 + 13 * n_at, label, size=10.5, fill=col)
                n_at += 1
            elif flip:
                s.text(x - 8, y - 8, label, size=10.5, fill=col, anchor="end")
            else:
                s.text(x + 8, y + 4, label, size=10.5, fill=col)
    # legend
    lx, ly = 515, 52
    s.text(lx, ly, "machines (band: the bench's", size=11, weight="bold")
    s.text(lx, ly + 14, "measured read bandwidth)", size=11, weight="bold")
    ly += 34
    for k, se in enumerate(series):
        col = SERIES[k % len(SERIES)]
        s.rect(lx, ly - 9, 12, 12, fill=col, opacity="0.8")
        words = se["machine"].split(" ")
        line, lines = "", []
        for w in words:
            if len(line) + len(w) > 30:
                lines.append(line)
                line = w
            else:
                line = (line + " " + w).strip()
        lines.append(line)
        for j, l in enumerate(lines):
            s.text(lx + 18, ly + j * 13, l, size=10.5)
        ly += 13 * len(lines)
        s.text(lx + 18, ly, f'{se["date"]}{", " + se["commit"] if se["commit"] else ""}, '
                            f'{se["bw"][0]:g}-{se["bw"][1]:g} GB/s', size=10.5, fill=MUTED)
        ly += 22
    ly += 4
    for w, m in marks.items():
        if m == "circle":
            s.circle(lx + 6, ly - 4, 5, FG)
        elif m == "square":
            s.rect(lx + 1.5, ly - 8.5, 9, 9, fill=FG)
        else:
            s.poly([(lx + 6, ly - 10), (lx + 12, ly + 0.5), (lx, ly + 0.5)], fill=FG)
        s.text(lx + 18, ly, w, size=10.5)
        ly += 16
    s.text(lx, ly + 4, "bars: smallest..largest of the runs", size=10, fill=MUTED)
    s.text(20, H - 12, "Data: docs/data/bench-decode.csv (fs bench, sources and dates in each row); "
                       "drawn by tools/docs_figures.py", size=10.5, fill=MUTED)
    return s.render()


# ---- the KV cache growing ---------------------------------------------------------

def fig_kv_growth():
    c = config()
    wb = weight_bytes(c)
    per = kv_bytes_per_token(c)
    W, H = 760, 420
    s = SVG(W, H, "Bytes one decode step reads as the context grows, Qwen3-0.6B",
            "The weights are read once per token; the KV cache of every earlier position is read too, "
            "so its share grows linearly with the context.")
    x0, y0, x1, y1 = 70, 44, 560, 360
    nmax = 8192
    ymax = (wb["bf16"] + per * nmax) / 1e6
    ymax = math.ceil(ymax / 500) * 500

    def X(n):
        return x0 + n / nmax * (x1 - x0)

    def Y(mb):
        return y1 - mb / ymax * (y1 - y0)
    s.text(20, 24, f"What a decode step reads: weights once + {per // 1024} KiB of f32 KV cache per earlier position",
           size=14, weight="bold")
    for n in range(0, nmax + 1, 1024):
        s.line(X(n), y0, X(n), y1, stroke=LINE)
        s.text(X(n), y1 + 15, f"{n:,}", size=11, anchor="middle", fill=MUTED)
    for mb in range(0, int(ymax) + 1, 500):
        s.line(x0, Y(mb), x1, Y(mb), stroke=LINE)
        s.text(x0 - 6, Y(mb) + 4, f"{mb:,}", size=11, anchor="end", fill=MUTED)
    s.rect(x0, y0, x1 - x0, y1 - y0, stroke=MUTED)
    s.text((x0 + x1) / 2, y1 + 33, "tokens already in the cache (context)", size=12, anchor="middle")
    s.text(x0 - 50, (y0 + y1) / 2, "MB read per decoded token", size=12, anchor="middle", rotate=-90)
    s.line(X(0), Y(0), X(nmax), Y(per * nmax / 1e6), stroke=PURPLE, sw=2, dash="6 4")
    s.text(X(nmax) - 4, Y(per * nmax / 1e6) + 16, "KV cache alone", size=11, anchor="end", fill=PURPLE)
    ly = 60
    for k, (fmt, col) in enumerate((("bf16", BLUE), ("q8_0", ACCENT), ("q4_0", GREEN))):
        w = wb[fmt] / 1e6
        s.line(X(0), Y(w), X(nmax), Y(w + per * nmax / 1e6), stroke=col, sw=2.2)
        s.line(X(0), Y(w), X(nmax), Y(w), stroke=col, sw=1, dash="2 3", opacity="0.7")
        cross = wb[fmt] / per
        if cross < nmax:
            s.circle(X(cross), Y(w), 4, col)
            s.text(X(cross) - 8, Y(w) - 7, f"KV = weights at {cross:,.0f} tokens", size=10.5, fill=col, anchor="end")
        s.text(575, ly, f"{fmt}: weights {w:,.0f} MB", size=11.5, fill=col, weight="bold")
        s.text(575, ly + 14, f"+ KV: {(wb[fmt] + per * 4096) / 1e6:,.0f} MB at 4,096", size=11, fill=col)
        ly += 40
    s.text(575, ly + 6, "dotted: the weights alone", size=10.5, fill=MUTED)
    s.text(575, ly + 22, f"L={c['L']}, Hkv={c['Hkv']}, D={c['D']}:", size=10.5, fill=MUTED)
    s.text(575, ly + 36, f"2·L·Hkv·D·4 = {per:,} B/token", size=10.5, fill=MUTED)
    s.text(20, H - 12, "Computed from configs/qwen3-0.6b.json (weights as fs bench counts them: every matrix "
                       "once, norms in bf16) by tools/docs_figures.py", size=10.5, fill=MUTED)
    return s.render()


# ---- quantized blocks -------------------------------------------------------------

def fig_q8_0():
    cw = 19
    W, H = 34 * cw + 60, 190
    s = SVG(W, H, "Q8_0 block: 34 bytes for 32 weights", "An f16 scale d, then 32 signed bytes q; w_i = d * q_i.")
    x0, y0 = 30, 50
    s.text(20, 24, "Q8_0: one block = 32 weights in 34 bytes (8.5 bits a weight)", size=14, weight="bold")
    s.rect(x0, y0, 2 * cw, 36, fill=ACCENT, stroke=FG)
    s.text(x0 + cw, y0 + 23, "d", size=13, anchor="middle", fill="#fff", weight="bold", mono=True)
    for i in range(32):
        x = x0 + (2 + i) * cw
        s.rect(x, y0, cw, 36, fill="#dce8f3", stroke=FG, sw=0.8)
        s.text(x + cw / 2, y0 + 23, str(i), size=9, anchor="middle", mono=True)
    for b in (0, 2, 18, 34):
        s.line(x0 + b * cw, y0 + 36, x0 + b * cw, y0 + 46, stroke=MUTED)
        s.text(x0 + b * cw, y0 + 58, f"byte {b}", size=10, anchor="middle", fill=MUTED)
    s.text(x0 + cw, y0 - 8, "f16 scale", size=10.5, anchor="middle", fill=ACCENT)
    s.text(x0 + 18 * cw, y0 - 8, "qs[0..31]: int8, one byte per weight (-127..127)", size=10.5, anchor="middle",
           fill=BLUE)
    s.text(x0, y0 + 86, "w_i = d · qs[i]     d = max|x| / 127 (stored as f16),  qs[i] = round(x_i / d)",
           size=12, mono=True)
    s.text(x0, y0 + 110, "A matrix [N, K] stores each row as K/32 blocks one after the other (GGUF's layout).",
           size=11.5, fill=MUTED)
    return s.render()


def fig_q4_0():
    cw = 34
    W, H = 18 * cw + 130, 250
    s = SVG(W, H, "Q4_0 block: 18 bytes for 32 weights",
            "An f16 scale d, then 16 bytes; byte i holds weight i in its low nibble and weight 16+i in its high nibble.")
    x0, y0 = 30, 56
    s.text(20, 24, "Q4_0: one block = 32 weights in 18 bytes (4.5 bits a weight)", size=14, weight="bold")
    s.rect(x0, y0, 2 * cw, 44, fill=ACCENT, stroke=FG)
    s.text(x0 + cw, y0 + 27, "d", size=13, anchor="middle", fill="#fff", weight="bold", mono=True)
    for i in range(16):
        x = x0 + (2 + i) * cw
        s.rect(x, y0, cw, 22, fill="#e9dcf3", stroke=FG, sw=0.8)
        s.rect(x, y0 + 22, cw, 22, fill="#dce8f3", stroke=FG, sw=0.8)
        s.text(x + cw / 2, y0 + 15, str(16 + i), size=9.5, anchor="middle", mono=True)
        s.text(x + cw / 2, y0 + 37, str(i), size=9.5, anchor="middle", mono=True)
    s.text(x0 + 18 * cw + 4, y0 + 15, "", size=9)
    s.text(x0 + cw, y0 - 8, "f16 scale", size=10.5, anchor="middle", fill=ACCENT)
    s.text(x0 + 10 * cw, y0 - 8, "qs[0..15]: each byte holds two 4-bit weights", size=10.5, anchor="middle", fill=FG)
    s.text(x0 + 18 * cw + 6, y0 + 15, "high nibbles", size=10, fill=PURPLE)
    s.text(x0 + 18 * cw + 6, y0 + 37, "low nibbles", size=10, fill=BLUE)
    for b in (0, 2, 10, 18):
        s.line(x0 + b * cw, y0 + 44, x0 + b * cw, y0 + 54, stroke=MUTED)
        s.text(x0 + b * cw, y0 + 66, f"byte {b}", size=10, anchor="middle", fill=MUTED)
    s.text(x0, y0 + 96, "low nibble of byte i  = q of weight i       (weights 0..15:  qs[i] & 15)", size=11.5,
           mono=True, fill=BLUE)
    s.text(x0, y0 + 116, "high nibble of byte i = q of weight 16 + i  (weights 16..31: qs[i] >> 4)", size=11.5,
           mono=True, fill=PURPLE)
    s.text(x0, y0 + 144, "w = d · (q − 8),  q in 0..15        d = m / −8, m the block's value of largest |x|",
           size=12, mono=True)
    s.text(x0, y0 + 166, "One & 15 and one >> 4 unpack 32 weights from 16 bytes: the two halves of a block, not "
                         "neighbours.", size=11.5, fill=MUTED)
    return s.render()


def fig_x8():
    W, H = 800, 520
    s = SVG(W, H, "The x8 layout: 8 rows of Q4_0 blocks interleaved into one 144-byte superblock",
            "In the file each row is a run of blocks; the fast CPU backend stores the b-th block of 8 rows together: "
            "the 8 scales, then for each quad j the 4 bytes of every row.")
    s.text(20, 24, "x8: the b-th block of 8 rows, stored together (Q4_0 shown: 8 × 18 = 144 bytes)", size=14,
           weight="bold")
    # left: 8 rows of the file, block b highlighted
    x0, y0 = 30, 60
    s.text(x0, y0 - 12, "in the file: each row a run of blocks", size=11.5, weight="bold")
    bw = 44
    for r in range(8):
        y = y0 + r * 26
        s.text(x0, y + 15, f"row {r}", size=10.5, fill=ROWS8[r], weight="bold")
        for b in range(4):
            x = x0 + 44 + b * (bw + 4)
            hl = b == 1
            s.rect(x, y, bw, 20, fill=ROWS8[r] if hl else PANEL, stroke=ROWS8[r], opacity=None)
            s.text(x + bw / 2, y + 14, f"b{b}", size=10, anchor="middle", fill="#fff" if hl else MUTED, mono=True)
    s.text(x0, y0 + 8 * 26 + 14, "block b = 1 of each row: d (2 B) + 16 B of nibbles", size=10.5, fill=MUTED)
    # right: the superblock
    sx, sy = 270, 60
    cw = 10
    s.text(sx, sy - 12, "superblock (g, b = 1) in memory: 32 bytes a line", size=11.5, weight="bold")
    for r in range(8):
        s.rect(sx + r * 2 * cw, sy, 2 * cw, 22, fill=ROWS8[r], stroke=BG)
        s.text(sx + r * 2 * cw + cw, sy + 15, f"d{r}", size=9.5, anchor="middle", fill="#fff", mono=True)
    s.text(sx + 32 * cw + 8, sy + 15, "d[8]: 8 scales, 16 B", size=10.5)
    for j in range(4):
        y = sy + 30 + j * 30
        for r in range(8):
            s.rect(sx + r * 4 * cw, y, 4 * cw, 22, fill=ROWS8[r], stroke=BG, opacity="0.85")
            s.text(sx + r * 4 * cw + 2 * cw, y + 15, f"r{r}", size=9.5, anchor="middle", fill="#fff", mono=True)
        s.text(sx + 32 * cw + 8, y + 15, f"quad {j}: qs[{4 * j}..{4 * j + 3}] × 8 rows", size=10.5)
    s.text(sx, sy + 30 + 4 * 30 + 14, "qs byte 32·j + 4·r + i  =  row r's qs[4·j + i]", size=11, mono=True)
    s.text(sx, sy + 30 + 4 * 30 + 32, "one 32-byte load = a 4-byte quad of all 8 rows; the 8 int32 lanes", size=10.5,
           fill=MUTED)
    s.text(sx, sy + 30 + 4 * 30 + 46, "of the product are the 8 rows' sums: no horizontal sum per row", size=10.5,
           fill=MUTED)
    # bottom: pairs
    py = 360
    s.text(20, py - 14, "Groups of 8 rows are stored in pairs, their superblocks of each block column side by side "
                        "(one sequential stream):", size=11.5, weight="bold")
    px = 30
    labels = [("b0", "g0"), ("b0", "g1"), ("b1", "g0"), ("b1", "g1"), ("b2", "g0"), ("b2", "g1")]
    for k, (b, g) in enumerate(labels):
        col = BLUE if g == "g0" else ACCENT
        s.rect(px + k * 92, py, 88, 30, fill=col, opacity="0.85", rx=3)
        s.text(px + k * 92 + 44, py + 19, f"{b}: {g}", size=11, anchor="middle", fill="#fff", mono=True)
    s.text(px + 6 * 92 + 8, py + 19, "… then pair g2, g3", size=11, fill=MUTED)
    s.text(px, py + 52, "pair p = groups 2p, 2p+1:  [b 0: g 2p, g 2p+1] [b 1: g 2p, g 2p+1] …   (fs_x8_index)",
           size=11, mono=True)
    s.text(px, py + 74, "The decode kernel computes both groups with x's broadcast quads loaded once. Q8_0 is the "
                        "same with 8 quads (272-byte superblocks).", size=11, fill=MUTED)
    s.text(px, py + 92, "Same bytes as the file, only moved: the layout costs no memory. From src/cpu/repack.c.",
           size=11, fill=MUTED)
    s.text(20, H - 12, "Drawn by tools/docs_figures.py", size=10.5, fill=MUTED)
    return s.render()


# ---- one transformer block, as the seam issues it ---------------------------------------

def fig_block():
    c = config()
    H, Hq, Hkv, D, I, V, L = c["H"], c["Hq"], c["Hkv"], c["D"], c["I"], c["V"], c["L"]
    W, Hh = 800, 740
    s = SVG(W, Hh, "One Qwen3 layer as the backend seam issues it: six calls",
            "The residual stream x [T, H] runs down the left; each numbered box is one backend call with what it "
            "fuses, its weights and the shapes it reads and writes.")
    s.text(20, 26, f"One Qwen3-0.6B layer = six backend calls (×{L} layers)", size=15, weight="bold")
    s.text(20, 44, f"T tokens, H={H}, Hq={Hq}, Hkv={Hkv}, D={D}, I={I}, V={V:,}; shapes are [rows, columns] "
                   "of f32 activations; W is [out, in]", size=11, fill=MUTED)
    rx = 70         # the residual stream
    bx, bw = 150, 430
    s.box(20, 62, 240, 40, f"embed: x[t] = embed_tokens[id_t]\nembed_tokens [V, H] = [{V:,}, {H}]", size=10.5,
          fill="#fff")
    s.text(rx - 8, 130, f"x [T, {H}]", size=11, anchor="end", fill=ACCENT, weight="bold", rotate=-90)
    s.text(rx + 10, 124, "residual stream", size=10.5, fill=ACCENT)

    steps = [
        (1, "matmul  (in: rmsnorm(x, input_layernorm))",
         [f"q = x̂ W_q^T    W_q [{Hq * D}, {H}]   → q [T, {Hq * D}]",
          f"k = x̂ W_k^T    W_k [{Hkv * D}, {H}]   → k [T, {Hkv * D}]",
          f"v = x̂ W_v^T    W_v [{Hkv * D}, {H}]   → v [T, {Hkv * D}]"], BLUE, False),
        (2, "rope_kv  (QK-norm, RoPE, store K and V)",
         [f"q, k per head: rmsnorm(·, q_norm / k_norm [{D}]), then rotate",
          f"cache[pos0 + t] = k[t], v[t]    cache: [n_ctx, {Hkv}, {D}] × 2"], PURPLE, False),
        (3, "attention  (causal, grouped-query)",
         [f"query head h reads kv head h / {Hq // Hkv};  softmax(q·k / √{D}) v",
          f"q [T, {Hq}, {D}] + cache  →  attn_out [T, {Hq * D}]"], GREEN, False),
        (4, "matmul + add  (the residual connection)",
         [f"x += attn_out W_o^T     W_o [{H}, {Hq * D}]"], BLUE, True),
        (5, "matmul  (in: rmsnorm(x, post_attention_layernorm))",
         [f"gate = x̂ W_gate^T   W_gate [{I}, {H}]  →  [T, {I}]",
          f"up   = x̂ W_up^T     W_up   [{I}, {H}]  →  [T, {I}]"], BLUE, False),
        (6, "matmul + add  (in: SwiGLU(gate, up))",
         [f"x += (silu(gate) ⊙ up) W_down^T     W_down [{H}, {I}]"], BLUE, True),
    ]
    y = 122
    for k, title, lines_, col, adds in steps:
        h = 34 + 17 * len(lines_)
        s.rect(bx, y, bw, h, fill="#fff", stroke=col, sw=1.6, rx=5)
        s.circle(bx, y + 16, 12, col)
        s.text(bx, y + 20.5, str(k), size=12, anchor="middle", fill="#fff", weight="bold")
        s.text(bx + 20, y + 21, title, size=12.5, weight="bold", fill=col)
        for j, l in enumerate(lines_):
            s.text(bx + 20, y + 40 + 17 * j, l, size=11, mono=True)
        mid = y + h / 2
        if k in (1, 5):
            s.line(rx, mid, bx - 2, mid, stroke=col, sw=1.4, arrow=True)
            s.text(rx + 8, mid - 5, "read", size=9.5, fill=MUTED)
        if adds:
            s.line(bx - 2, mid, rx + 9, mid, stroke=col, sw=1.4, arrow=True)
            s.circle(rx, mid, 9, "#fff", stroke=ACCENT)
            s.text(rx, mid + 4.5, "+", size=13, anchor="middle", fill=ACCENT, weight="bold")
        y += h + 20
        if k < 6:
            s.line(bx + bw / 2, y - 20, bx + bw / 2, y - 2, stroke=MUTED, sw=1.2, arrow=True)
    # the cache box beside rope_kv / attention
    cy = 122 + 34 + 17 * 3 + 20 - 6
    s.rect(bx + bw + 20, cy, 170, 120, fill=PANEL, stroke=PURPLE, rx=5, dash="5 3")
    s.text(bx + bw + 105, cy + 20, "KV cache, this layer", size=11.5, anchor="middle", weight="bold", fill=PURPLE)
    s.text(bx + bw + 105, cy + 40, f"K, V: [n_ctx, {Hkv}, {D}]", size=10.5, anchor="middle", mono=True)
    s.text(bx + bw + 105, cy + 58, "rope_kv writes rows", size=10.5, anchor="middle")
    s.text(bx + bw + 105, cy + 74, "pos0 .. pos0+T−1;", size=10.5, anchor="middle")
    s.text(bx + bw + 105, cy + 90, "attention reads", size=10.5, anchor="middle")
    s.text(bx + bw + 105, cy + 106, "rows 0 .. pos0+t", size=10.5, anchor="middle")
    s.line(bx + bw + 2, cy + 30, bx + bw + 18, cy + 30, stroke=PURPLE, sw=1.4, arrow=True)
    s.text(bx + bw + 10, cy - 4, "write", size=9.5, anchor="middle", fill=PURPLE)
    s.line(bx + bw + 18, cy + 100, bx + bw + 2, cy + 112, stroke=GREEN, sw=1.4, arrow=True)
    s.text(bx + bw + 8, cy + 128, "read", size=9.5, anchor="middle", fill=GREEN)
    s.text(bx + bw + 20, 560, "x̂: the row, rmsnorm'd as the", size=10.5, fill=MUTED)
    s.text(bx + bw + 20, 574, "matmul reads it (never stored)", size=10.5, fill=MUTED)
    y += 4
    s.box(bx, y, bw, 48, f"after the last layer: matmul (in: rmsnorm(x, norm)) on the last row\n"
                         f"logits [{V:,}] = x̂ lm_head^T   (lm_head = embed_tokens, tied)", size=10.5, fill="#fff",
          stroke=ACCENT)
    s.line(rx, y + 24, bx - 2, y + 24, stroke=ACCENT, sw=1.4, arrow=True)
    s.items.insert(0, f'<line x1="{rx}" y1="102" x2="{rx}" y2="{num(y + 24)}" stroke="{ACCENT}" stroke-width="5" '
                      'opacity="0.55"/>')
    s.text(20, Hh - 14, "The calls are the fields of fs_backend in src/backend.h; forward_ops in src/forward.c "
                        "issues them. Shapes from configs/qwen3-0.6b.json.", size=10.5, fill=MUTED)
    return s.render()


# ---- the architectures (docs/models.md) -------------------------------------------------

def arch_configs():
    """The real configs the models page compares, from configs/."""
    names = [("Qwen3-0.6B", "qwen3-0.6b"), ("Llama 3.2 1B", "llama3.2-1b"), ("SmolLM2-360M", "smollm2-360m"),
             ("Qwen2.5-0.5B", "qwen2.5-0.5b")]
    return [(n, read_json(os.path.join(ROOT, "configs", f + ".json"))) for n, f in names]


def fig_archs():
    """One decoder layer with the steps where the families differ marked, and
    which family takes which branch (the rows of src/arch.c)."""
    W, Hh = 820, 560
    s = SVG(W, Hh, "One decoder layer, and where Qwen3, Llama 3, SmolLM2 and Qwen2.5 differ",
            "The layer's steps top to bottom; three of them are switches: q/k/v biases (Qwen2.5 only), QK-norm "
            "(Qwen3 only) and the RoPE frequency table (Llama 3 rescales it). A table on the right marks each family.")
    s.text(20, 26, "One layer, four families: three switches", size=15, weight="bold")
    s.text(20, 44, "grey: the same in every family; coloured: a switch (a row of src/arch.c, or config.json)",
           size=11, fill=MUTED)
    bx, bw, y = 40, 380, 64
    steps = [
        ("x̂ = rmsnorm(x, input_layernorm)", None),
        ("q, k, v = x̂ W_q^T, x̂ W_k^T, x̂ W_v^T", None),
        ("q, k, v += b_q, b_k, b_v", ("bias", PURPLE)),
        ("q, k = rmsnorm per head (q_norm, k_norm)", ("qknorm", GREEN)),
        ("q, k = rope(·, pos · inv_freq)", ("rope", ACCENT)),
        ("cache[pos] = k, v;  attention (GQA)", None),
        ("x += attn_out W_o^T", None),
        ("x += (silu(x̂ W_gate^T) ⊙ x̂ W_up^T) W_down^T", None),
    ]
    ys = {}
    for text, sw in steps:
        col = sw[1] if sw else GREY
        s.rect(bx, y, bw, 38, fill="#fff" if sw else PANEL, stroke=col, sw=2 if sw else 1, rx=5,
               dash="6 3" if sw else None)
        s.text(bx + 14, y + 24, text, size=12, mono=True)
        if sw:
            ys[sw[0]] = y + 19
        y += 38
        s.line(bx + bw / 2, y, bx + bw / 2, y + 12, stroke=MUTED, sw=1.2, arrow=True)
        y += 14
    s.text(bx, y + 14, "rope_kv (src/backend.h) does the three coloured steps in one pass, on every backend;",
           size=10.5, fill=MUTED)
    s.text(bx, y + 29, "a weight the family lacks is NULL there: the forward pass has no per-family branch.",
           size=10.5, fill=MUTED)
    # the table of switches
    tx, cw = 520, 74
    fams = [("Qwen3", "no", "yes", "plain"), ("Llama 3", "no", "no", "llama3"), ("SmolLM2", "no", "no", "plain"),
            ("Qwen2.5", "yes", "no", "plain")]
    for j, (f, *_r) in enumerate(fams):
        s.text(tx + cw * j + cw / 2, 82, f, size=12, anchor="middle", weight="bold")
    for key, col in (("bias", PURPLE), ("qknorm", GREEN), ("rope", ACCENT)):
        yy = ys[key]
        s.line(bx + bw + 4, yy, tx - 6, yy, stroke=col, sw=1.2, dash="3 3")
        for j, fam in enumerate(fams):
            v = fam[1 + ("bias", "qknorm", "rope").index(key)]
            on = v not in ("no", "plain")
            s.rect(tx + cw * j + 8, yy - 13, cw - 16, 26, fill=col if on else "#fff", stroke=col, rx=13,
                   opacity=None)
            s.text(tx + cw * j + cw / 2, yy + 4.5, v, size=11.5, anchor="middle", fill="#fff" if on else col,
                   weight="bold" if on else None)
    rows = [("head_dim", ["128 ≠ H/Hq", "H/Hq = 64", "H/Hq = 64", "H/Hq = 64"]),
            ("lm_head", ["tied*", "tied*", "tied", "tied*"]),
            ("GQA Hq:Hkv", [None] * 4)]
    cfgs = arch_configs()
    rows[2] = ("GQA Hq:Hkv", [f"{c['num_attention_heads']}:{c['num_key_value_heads']}" for _, c in cfgs])
    yy = ys["rope"] + 70
    for label, vals in rows:
        s.text(tx - 8, yy + 4, label, size=11, anchor="end", fill=MUTED)
        for j, v in enumerate(vals):
            s.text(tx + cw * j + cw / 2, yy + 4, v, size=11, anchor="middle", mono=True)
        yy += 24
    s.text(tx, yy + 8, "* small sizes; the 7B/8B+ models are untied", size=10, fill=MUTED)
    s.text(20, Hh - 14, "Values from configs/*.json (the real config.json of each model); the switches are the rows "
                        "of the table in src/arch.c.", size=10.5, fill=MUTED)
    return s.render()


def llama3_inv_freq(theta, D, factor, low, high, orig):
    """arch.c's table, in double (close enough for a picture)."""
    out = []
    for i in range(D // 2):
        f = 1.0 / theta ** (2 * i / D)
        wl = 2 * math.pi / f
        if wl < orig / high:
            g = f
        elif wl > orig / low:
            g = f / factor
        else:
            sm = (orig / wl - low) / (high - low)
            g = (1 - sm) * f / factor + sm * f
        out.append((f, g, wl))
    return out


def fig_llama3_rope():
    c = read_json(os.path.join(ROOT, "configs", "llama3.2-1b.json"))
    r = c["rope_scaling"]
    D = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    tab = llama3_inv_freq(c["rope_theta"], D, r["factor"], r["low_freq_factor"], r["high_freq_factor"],
                          r["original_max_position_embeddings"])
    W, Hh = 760, 440
    s = SVG(W, Hh, "Llama 3's RoPE frequency table against plain RoPE",
            "Each of the D/2 rotation frequencies of Llama 3.2 1B, plain and rescaled, against its wavelength: "
            "short wavelengths are kept, long ones divided by the factor, the middle band blended.")
    s.text(20, 26, f"Llama 3.2 1B: the {D // 2} RoPE frequencies, plain and \"llama3\"-scaled", size=15,
           weight="bold")
    s.text(20, 44, f"θ = {c['rope_theta']:g}, D = {D}, factor {r['factor']:g}, low/high_freq_factor "
                   f"{r['low_freq_factor']:g}/{r['high_freq_factor']:g}, original context "
                   f"{r['original_max_position_embeddings']}", size=11, fill=MUTED)
    wl = [t[2] for t in tab]
    def decades(lo, hi):
        return 10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi))
    xlo, xhi = decades(min(wl), max(wl))
    ylo, yhi = decades(min(t[1] for t in tab), max(t[0] for t in tab))
    ax = LogLog(s, 90, 70, 720, 350, xlo, xhi, ylo, yhi)
    orig = r["original_max_position_embeddings"]
    hw, lw = orig / r["high_freq_factor"], orig / r["low_freq_factor"]
    s.rect(ax.X(hw), 70, ax.X(lw) - ax.X(hw), 280, fill=GOLD, opacity=0.15)
    s.rect(ax.X(lw), 70, 720 - ax.X(lw), 280, fill=ACCENT, opacity=0.08)
    ax.frame("wavelength 2π / inv_freq (positions per turn)", "inv_freq (radians per position)")
    s.text((90 + ax.X(hw)) / 2, 88, "kept", size=11.5, anchor="middle", fill=MUTED)
    s.text((ax.X(hw) + ax.X(lw)) / 2, 88, "blended", size=11.5, anchor="middle", fill=GOLD, weight="bold")
    s.text((ax.X(lw) + 720) / 2, 88, f"÷ {r['factor']:g}", size=11.5, anchor="middle", fill=ACCENT, weight="bold")
    for f, g, w in tab:
        s.circle(ax.X(w), ax.Y(f), 3.2, "#fff", stroke=BLUE)
        s.circle(ax.X(w), ax.Y(g), 2.6, ACCENT)
    s.circle(110, 398, 3.2, "#fff", stroke=BLUE)
    s.text(120, 402, "plain: 1 / θ^(2i/D)", size=11)
    s.circle(290, 398, 2.6, ACCENT)
    s.text(300, 402, "llama3 (what fs computes, arch.c; the x position stays the plain wavelength)", size=11)
    s.text(20, Hh - 14, "Drawn from configs/llama3.2-1b.json; the C table equals transformers' bit for bit "
                        "(tests/golden/rope/tables.json).", size=10.5, fill=MUTED)
    return s.render()


# ---- sampling on a real distribution ------------------------------------------------------

def next_token_sets():
    out = []
    for fn in sorted(os.listdir(DATA)):
        if fn.startswith("next-token-") and fn.endswith(".json"):
            d = read_json(os.path.join(DATA, fn))
            d["name"] = fn[len("next-token-"):-len(".json")]
            out.append(d)
    return out


def sample_filter(logits, T, top_k=0, top_p=1.0, min_p=0.0):
    """src/sampler.c's warpers, in double: returns [(id, prob after
    renormalisation)] of the survivors, most likely first."""
    V = len(logits)
    order = sorted(range(V), key=lambda i: (-logits[i], i))
    if 0 < top_k < V:
        thr = logits[order[top_k - 1]]
        order = [i for i in order if logits[i] >= thr]
    mx = logits[order[0]]
    prob = [math.exp((logits[i] - mx) / T) for i in order]
    z = sum(prob)
    n = len(order)
    if top_p < 1.0:
        before, keep = 0.0, 0
        while keep < n and before < top_p * z:
            before += prob[keep]
            keep += 1
        n = keep
    cand = list(zip(order[:n], prob[:n]))
    if min_p > 0:
        cand = [(i, p) for i, p in cand if p >= min_p]
    z = sum(p for _, p in cand)
    return [(i, p / z) for i, p in cand]


def softmax_all(logits, T=1.0):
    mx = max(logits)
    e = [math.exp((l - mx) / T) for l in logits]
    z = sum(e)
    return [x / z for x in e]


def shown(tok):
    return tok.replace(" ", "␣").replace("\n", "\\n")


def fig_sampling():
    d = next(x for x in next_token_sets() if x["name"] == "king")
    logits, toks = d["logits"], d["tokens"]
    N = 10
    order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))[:N]
    base = softmax_all(logits)
    panels = [
        ("temperature: T = 0.6 (Qwen3's default) and T = 1.5", "temp"),
        ("top-k = 2 (T = 1): keep the 2 largest logits", {"T": 1.0, "top_k": 2}),
        ("top-p = 0.7 (T = 1): keep while the mass before < 0.7", {"T": 1.0, "top_p": 0.7}),
        ("min-p = 0.05 (T = 1): keep p ≥ 0.05 · p_max", {"T": 1.0, "min_p": 0.05}),
    ]
    results = []
    for _, spec in panels:
        if spec == "temp":
            results.append([(softmax_all(logits, 0.6), BLUE), (softmax_all(logits, 1.5), ACCENT)])
        else:
            surv = dict(sample_filter(logits, spec["T"], spec.get("top_k", 0), spec.get("top_p", 1.0),
                                      spec.get("min_p", 0.0)))
            results.append([([surv.get(i, 0.0) for i in range(len(logits))], GREEN)])
    pmax = max(max(probs[i] for i in order) for res in results for probs, _ in res)
    W, pw, ph = 800, 370, 282
    H = 60 + 2 * (ph + 20) + 40
    s = SVG(W, H, "Temperature, top-k, top-p and min-p on the tiny model's next-token distribution",
            f"Prompt '{d['prompt']}': the ten most likely next tokens, before and after each step of the sampler.")
    s.text(20, 24, f"What the sampler does to a real distribution: models/tiny after “{d['prompt']}”", size=14,
           weight="bold")
    s.text(20, 42, "grey: the model's probability (T = 1, nothing cut); colour: after the step, renormalised "
                   "over the survivors; × = cut", size=11, fill=MUTED)
    for k, ((title, spec), res) in enumerate(zip(panels, results)):
        px = 20 + (k % 2) * (pw + 20)
        py = 56 + (k // 2) * (ph + 20)
        s.rect(px, py, pw, ph, fill="#fff", stroke=LINE, rx=5)
        s.text(px + 10, py + 18, title, size=11.5, weight="bold")
        bx0, by0, bh = px + 78, py + 30, 18
        scale = (pw - 78 - 52) / pmax
        for j, i in enumerate(order):
            y = by0 + j * (bh + 3)
            s.text(bx0 - 6, y + 13, shown(toks[i]), size=10.5, anchor="end", mono=True)
            s.rect(bx0, y + 1, base[i] * scale, 6, fill=GREY)
            if len(res) > 1:
                for m, (probs, col) in enumerate(res):
                    s.rect(bx0, y + 7 + m * 5.5, probs[i] * scale, 5.5, fill=col)
            else:
                p = res[0][0][i]
                if p > 0:
                    s.rect(bx0, y + 8, p * scale, 9, fill=GREEN)
                    s.text(bx0 + p * scale + 4, y + 16, f"{p:.3f}", size=9.5, fill=GREEN)
                else:
                    s.text(bx0 + base[i] * scale + 4, y + 10, "×", size=11, fill=RED, weight="bold")
        ly = py + ph - 30
        if spec == "temp":
            s.rect(px + 12, ly - 8, 10, 6, fill=BLUE)
            s.text(px + 26, ly - 2, "T = 0.6: sharper", size=10, fill=BLUE)
            s.rect(px + 140, ly - 8, 10, 6, fill=ACCENT)
            s.text(px + 154, ly - 2, "T = 1.5: flatter", size=10, fill=ACCENT)
            p1, p2 = res[0][0][order[0]], res[1][0][order[0]]
            s.text(px + 12, ly + 16, f"top token: {base[order[0]]:.3f} at T = 1, {p1:.3f} at T = 0.6, "
                                     f"{p2:.3f} at T = 1.5", size=10, fill=MUTED)
        else:
            n = sum(1 for x in res[0][0] if x > 0)
            s.text(px + 12, ly + 16, f"{n} of {len(logits):,} tokens survive", size=10.5, fill=MUTED)
    q = sample_filter(logits, 0.6, 20, 0.95, 0.0)
    commit = re.search(r"[0-9a-f]{7,}", d["binary"])
    s.text(20, H - 28, f"Qwen3's defaults (T = 0.6, top-k 20, top-p 0.95) keep {len(q)} tokens here; the most likely "
                       f"gets {q[0][1]:.3f}.", size=11)
    s.text(20, H - 10, f"Data: docs/data/next-token-king.json (fs logits --dump-logits, fs at "
                       f"{commit.group(0) if commit else '?'}, {d['date']}); the steps as in src/sampler.c",
           size=10, fill=MUTED)
    return s.render()


def js_next_token():
    """The sampling widget's data, with expected results computed here (in
    Python, the way src/sampler.c does it) for its self-test."""
    sets = []
    for d in next_token_sets():
        logits = d["logits"]
        order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))[:40]
        checks = []
        for T, k, p, mp in ((1.0, 0, 1.0, 0.0), (0.6, 20, 0.95, 0.0), (1.0, 0, 0.6, 0.0), (1.5, 0, 1.0, 0.1),
                            (0.8, 5, 1.0, 0.0)):
            surv = sample_filter(logits, T, k, p, mp)
            checks.append({"T": T, "top_k": k, "top_p": p, "min_p": mp, "n": len(surv),
                           "top": surv[0][0], "p_top": round(surv[0][1], 6)})
        sets.append({"name": d["name"], "prompt": d["prompt"], "command": d["command"], "binary": d["binary"],
                     "date": d["date"], "logits": logits, "top": [[i, d["tokens"][i]] for i in order],
                     "checks": checks})
    return ("/* fsdata-next-token.js - generated by tools/docs_figures.py from docs/data/next-token-*.json:\n"
            " * the tiny model's next-token logits for docs/js/sampling.js. Do not edit. */\n"
            "window.FS_NEXT_TOKEN = " + json.dumps(sets, ensure_ascii=False, separators=(",", ":")) + ";\n")


# ---- the learning notes' pictures ----------------------------------------------------------

def bpe_steps(word):
    """BPE on one pre-token with models/tiny's merges: lowest rank first,
    leftmost on a tie (as src/tokenizer.c and HF tokenizers do)."""
    t = read_json(os.path.join(ROOT, "models", "tiny", "tokenizer.json"))
    ranks = {}
    for r, m in enumerate(t["model"]["merges"]):
        ranks.setdefault(tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)), r)
    syms = list(word.replace(" ", "Ġ"))
    steps = [(list(syms), None, None)]
    while len(syms) > 1:
        j = min(range(len(syms) - 1), key=lambda k: (ranks.get((syms[k], syms[k + 1]), 1 << 62), k))
        pair = (syms[j], syms[j + 1])
        if pair not in ranks:
            break
        syms[j:j + 2] = [pair[0] + pair[1]]
        steps.append((list(syms), j, ranks[pair]))
    ids = [t["model"]["vocab"][x] for x in syms]
    return steps, ids


def fig_bpe():
    words = [" morning", " tokenizer"]
    all_steps = [bpe_steps(w) for w in words]
    rows = sum(len(st) for st, _ in all_steps) + 2 * len(words)
    W, H = 760, 60 + rows * 27 + 30
    s = SVG(W, H, "BPE merges, step by step, with the tiny model's merge table",
            "Each row is the word after one more merge: the adjacent pair with the lowest rank in the merge list "
            "is joined.")
    s.text(20, 24, "Byte-level BPE on two words, with models/tiny's 3,814 merges (␣ is the space byte, Ġ in the file)",
           size=13.5, weight="bold")
    y = 50
    for w, (steps, ids) in zip(words, all_steps):
        s.text(20, y + 14, f"“{w}”", size=12.5, weight="bold", mono=True)
        y += 24
        for k, (syms, j, rank) in enumerate(steps):
            x = 130
            s.text(20, y + 15, "bytes" if k == 0 else f"merge {k}", size=10.5, fill=MUTED)
            for m, sym in enumerate(syms):
                label = sym.replace("Ġ", "␣")
                wdt = 12 + 8.2 * len(label)
                hl = j is not None and m == j
                s.rect(x, y, wdt, 21, fill=ACCENT if hl else "#fff", stroke=ACCENT if hl else MUTED, rx=3)
                s.text(x + wdt / 2, y + 15, label, size=12, anchor="middle", mono=True, fill="#fff" if hl else FG)
                x += wdt + 4
            if rank is not None:
                s.text(x + 10, y + 15, f"rank {rank}", size=10.5, fill=ACCENT)
            y += 27
        s.text(130, y + 12, f"→ {len(ids)} token{'s' if len(ids) > 1 else ''}: ids {', '.join(map(str, ids))}",
               size=11.5, fill=BLUE, weight="bold")
        y += 30
    s.text(20, H - 10, "Computed from models/tiny/tokenizer.json by tools/docs_figures.py", size=10.5, fill=MUTED)
    return s.render()


def fig_formats():
    W, H = 800, 440
    s = SVG(W, H, "A safetensors file and a GGUF file, byte by byte",
            "safetensors: 8-byte length, JSON header, raw tensors. GGUF: magic, version, counts, typed metadata "
            "(tokenizer included), tensor infos, aligned data.")
    s.text(20, 24, "Two ways to put a model in a file", size=14, weight="bold")

    def stack(x, title, parts, col):
        s.text(x, 52, title, size=12.5, weight="bold", fill=col)
        y = 62
        for label, notes, h in parts:
            s.rect(x, y, 170, h, fill="#fff", stroke=col, rx=3)
            s.text(x + 85, y + h / 2 + 4, label, size=11, anchor="middle", mono=True)
            for k, note in enumerate(notes):
                s.text(x + 180, y + h / 2 + 4 + (k - (len(notes) - 1) / 2) * 14, note, size=10.5, fill=MUTED)
            y += h + 3
    stack(20, "safetensors (Hugging Face)", [
        ("u64 N", ["little-endian header length"], 26),
        ("JSON, N bytes", ["{name: {dtype, shape,", "  data_offsets: [a, b]}, ...}"], 70),
        ("tensor bytes", ["raw, row-major, no padding"], 150),
    ], BLUE)
    stack(420, "GGUF (llama.cpp)", [
        ("'GGUF'  u32", ["magic"], 22),
        ("version  u32", ["3"], 22),
        ("tensor_count u64", [], 22),
        ("kv_count  u64", [], 22),
        ("metadata k/v", ["typed: general.architecture,", "tokenizer.ggml.tokens, merges, ..."], 50),
        ("tensor infos", ["name, dims, type, offset"], 36),
        ("padding", ["to general.alignment (32)"], 14),
        ("tensor data", ["quantized blocks allowed"], 60),
    ], ACCENT)
    s.text(20, 372, "safetensors: the config and tokenizer are separate files (config.json, tokenizer.json); "
                    "dtypes are plain (BF16, F16, F32, ...).", size=11)
    s.text(20, 390, "GGUF: one file carries hyperparameters, tokenizer and quantized weights (Q8_0, Q4_0, K-quants) "
                    "under llama.cpp's own names.", size=11)
    s.text(20, 408, "fs reads safetensors (the format Qwen3 ships in) and uses GGUF's Q8_0/Q4_0 block layouts inside it.",
           size=11, fill=MUTED)
    s.text(20, H - 8, "Drawn by tools/docs_figures.py after src/safetensors.h and the GGUF specification "
                      "(ggml's docs/gguf.md)", size=10, fill=MUTED)
    return s.render()


def fig_config_shapes():
    c = config()
    cols = {"H": BLUE, "Hq": ACCENT, "Hkv": GREEN, "D": PURPLE, "I": GOLD, "V": RED, "L": FG}
    fields = [("hidden_size", "H", c["H"]), ("num_attention_heads", "Hq", c["Hq"]),
              ("num_key_value_heads", "Hkv", c["Hkv"]), ("head_dim", "D", c["D"]),
              ("intermediate_size", "I", c["I"]), ("vocab_size", "V", c["V"]), ("num_hidden_layers", "L", c["L"])]
    tensors = [("embed_tokens", ["V", "H"]), ("q_proj", ["Hq·D", "H"]), ("k_proj", ["Hkv·D", "H"]),
               ("v_proj", ["Hkv·D", "H"]), ("q_norm, k_norm", ["D"]), ("o_proj", ["H", "Hq·D"]),
               ("gate_proj, up_proj", ["I", "H"]), ("down_proj", ["H", "I"]), ("input_layernorm", ["H"])]
    W, H = 800, 360
    s = SVG(W, H, "config.json decides every tensor's shape",
            "Seven numbers of Qwen3-0.6B's config.json and the shapes of the tensors they determine.")
    s.text(20, 24, "Seven numbers in config.json fix every shape (Qwen3-0.6B)", size=14, weight="bold")
    y = 56
    for name, letter, v in fields:
        s.text(20, y, f'"{name}": {v}', size=11.5, mono=True)
        s.rect(250, y - 13, 40, 18, fill=cols[letter], rx=3)
        s.text(270, y + 1, letter, size=11, anchor="middle", fill="#fff", weight="bold")
        y += 26
    y = 56
    vals = {"H": c["H"], "Hq·D": c["Hq"] * c["D"], "Hkv·D": c["Hkv"] * c["D"], "D": c["D"], "I": c["I"], "V": c["V"]}
    for name, dims in tensors:
        s.text(330, y, name, size=11.5, mono=True)
        parts = [("[", FG, False)]
        for k, dname in enumerate(dims):
            col = cols["Hq" if dname.startswith("Hq") else "Hkv" if dname.startswith("Hkv") else dname]
            parts.append((dname, col, True))
            parts.append((", " if k + 1 < len(dims) else "]", FG, False))
        parts.append(("  = [" + ", ".join(f"{vals[d]:,}" for d in dims) + "]", MUTED, False))
        s.spans(500, y, parts, size=12)
        y += 26
    s.text(20, 300, f"Note head_dim: Hq·D = {c['Hq'] * c['D']} ≠ H = {c['H']}, so q_proj is not square. "
                    f"L = {c['L']} repeats every per-layer tensor.", size=11.5)
    s.text(20, 320, "A missing field takes transformers' Qwen3Config default, so the file means the same to fs as to "
                    "the reference.", size=11, fill=MUTED)
    s.text(20, H - 10, "From configs/qwen3-0.6b.json, drawn by tools/docs_figures.py", size=10, fill=MUTED)
    return s.render()


def fig_mmap():
    W, H = 800, 330
    s = SVG(W, H, "mmap: the file's pages appear in the process's memory as they are touched",
            "The checkpoint is mapped, not read; a tensor pointer points into the mapping; a page is read from disk "
            "on first touch and shared through the page cache.")
    s.text(20, 24, "mmap: map the checkpoint, let the kernel bring pages in on first touch", size=14, weight="bold")
    # disk
    s.text(20, 56, "model.safetensors on disk", size=11.5, weight="bold")
    for k in range(10):
        s.rect(20 + k * 34, 64, 32, 26, fill=PANEL, stroke=MUTED)
    s.text(20 + 17, 81, "hdr", size=9, anchor="middle")
    # page cache
    s.text(20, 136, "page cache (kernel memory, shared)", size=11.5, weight="bold")
    for k in range(10):
        present = k in (0, 3, 4, 5)
        s.rect(20 + k * 34, 144, 32, 26, fill=GREEN if present else "#fff", stroke=MUTED, opacity="0.85" if present else None)
    # process
    s.text(20, 216, "fs's address space (the file mmap'd, read-only)", size=11.5,
           weight="bold")
    for k in range(10):
        present = k in (0, 3, 4, 5)
        s.rect(20 + k * 34, 224, 32, 26, fill=BLUE if present else "#fff", stroke=BLUE, opacity="0.8" if present else None)
    for k in (0, 3, 4, 5):
        s.line(36 + k * 34, 92, 36 + k * 34, 142, stroke=GREEN, arrow=True)
        s.line(36 + k * 34, 172, 36 + k * 34, 222, stroke=BLUE, arrow=True)
    s.line(36 + 4 * 34, 290, 36 + 4 * 34, 252, stroke=ACCENT, sw=1.5, arrow=True)
    s.text(36 + 4 * 34 + 6, 300, "q_proj->data points here: no copy", size=10.5, fill=ACCENT)
    tx = 430
    notes = ["Loading = parsing the JSON header; no tensor is read.",
             "First touch of a page: a page fault; the kernel reads",
             "it from disk into the page cache and maps it.",
             "Untouched pages (white) cost nothing.",
             "Two processes on one model share the cached pages.",
             "",
             "The fast CPU backend then copies weights into its own",
             "huge-page arenas and unmaps the file: peak RSS of a",
             "q8_0 run 918 -> 760 MiB (PROGRESS.md, session 4,",
             "2026-12-01), because the page cache had held the file",
             "in 2 MiB folios and each small norm read mapped one."]
    for k, l in enumerate(notes):
        s.text(tx, 60 + k * 19, l, size=11.5)
    s.text(20, H - 10, "Drawn by tools/docs_figures.py; see src/safetensors.c", size=10, fill=MUTED)
    return s.render()


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def bf16_round(x):
    """f32 -> bf16 with round-to-nearest-even, as PyTorch converts"""
    u = f32_bits(x)
    u += 0x7FFF + ((u >> 16) & 1)
    return (u >> 16) & 0xFFFF


def bf16_value(h):
    return struct.unpack("<f", struct.pack("<I", h << 16))[0]


def f16_bits(x):
    try:
        return struct.unpack("<H", struct.pack("<e", x))[0]
    except OverflowError:
        return 0x7C00 if x > 0 else 0xFC00


def f16_value(h):
    return struct.unpack("<e", struct.pack("<H", h))[0]


def fig_bf16():
    W, H = 800, 330
    s = SVG(W, H, "One number in f32, bf16 and f16", "The bits of 3.14159265 and of 70000 in three formats.")
    s.text(20, 24, "The same numbers in three dtypes: bf16 keeps f32's range, f16 keeps more digits", size=14,
           weight="bold")
    cw = 16
    y = 50
    for x in (3.14159265, 70000.0):
        s.text(20, y + 6, f"x = {x:g}", size=12.5, weight="bold")
        y += 16
        rows = [("f32", f32_bits(x), 32, 8, struct.unpack("<f", struct.pack("<f", x))[0]),
                ("bf16", bf16_round(x), 16, 8, bf16_value(bf16_round(x))),
                ("f16", f16_bits(x), 16, 5, f16_value(f16_bits(x)))]
        for name, bits, n, ebits, val in rows:
            s.text(20, y + 15, name, size=11.5, mono=True, weight="bold")
            for i in range(n):
                b = (bits >> (n - 1 - i)) & 1
                col = RED if i == 0 else (BLUE if i <= ebits else GREEN)
                s.rect(70 + i * cw, y, cw - 1, 20, fill=col, opacity="0.22")
                s.text(70 + i * cw + cw / 2 - 0.5, y + 14.5, str(b), size=11, anchor="middle", mono=True)
            vs = "= inf (f16 max: 65504)" if math.isinf(val) else f"= {val:.9g}"
            s.text(70 + 32 * cw + 12, y + 15, f"0x{bits:0{n // 4}X}  {vs}", size=11, mono=True)
            y += 24
        y += 14
    s.rect(70, y, 12, 10, fill=RED, opacity="0.4")
    s.text(86, y + 9, "sign", size=10.5)
    s.rect(140, y, 12, 10, fill=BLUE, opacity="0.4")
    s.text(156, y + 9, "exponent (8 bits in f32 and bf16, 5 in f16)", size=10.5)
    s.rect(440, y, 12, 10, fill=GREEN, opacity="0.4")
    s.text(456, y + 9, "mantissa (23 / 7 / 10 bits)", size=10.5)
    s.text(20, H - 28, "bf16 is f32's top half (rounded to nearest even): widening it back is a 16-bit shift, exact.",
           size=11)
    s.text(20, H - 10, "Bits computed by tools/docs_figures.py (Python's struct, IEEE 754)", size=10, fill=MUTED)
    return s.render()


def fig_matmul_shapes():
    c = config()
    W, H = 800, 300
    s = SVG(W, H, "Reading the shapes of y = x W^T", "q = x W_q^T with x [T, H], W_q [Hq·D, H], q [T, Hq·D].")
    s.text(20, 24, "Reading shapes: q = x · W_qᵀ, one linear layer of Qwen3-0.6B", size=14, weight="bold")
    T = 5
    sc = 0.085
    # x [T, H]
    x0, y0 = 60, 70
    xw, xh = c["H"] * sc, T * 14
    s.rect(x0, y0, xw, xh, fill="#dce8f3", stroke=BLUE)
    for t in range(1, T):
        s.line(x0, y0 + t * 14, x0 + xw, y0 + t * 14, stroke=BLUE, opacity="0.4")
    s.text(x0 + xw / 2, y0 - 8, f"x [T, H] = [{T}, {c['H']}]", size=11.5, anchor="middle", mono=True, fill=BLUE)
    s.text(x0 + xw / 2, y0 + xh + 16, "one row per token", size=10.5, anchor="middle", fill=MUTED)
    s.text(x0 + xw + 12, y0 + xh / 2 + 5, "·", size=22, weight="bold")
    # W^T [H, Hq*D]
    wx, wy = x0 + xw + 30, 50
    ww, wh = c["Hq"] * c["D"] * sc, c["H"] * sc * 1.0
    s.rect(wx, wy, ww, wh, fill="#f6e3d8", stroke=ACCENT)
    s.text(wx + ww / 2, wy - 8, f"W_qᵀ [H, Hq·D] = [{c['H']}, {c['Hq'] * c['D']}]", size=11.5, anchor="middle",
           mono=True, fill=ACCENT)
    s.text(wx, wy + wh + 32, f"W_q is stored [{c['Hq'] * c['D']}, {c['H']}] ([out, in]): row n holds output n's weights",
           size=10.5, fill=MUTED)
    s.text(wx + ww + 10, y0 + xh / 2 + 5, "=", size=18, weight="bold")
    qx = wx + ww + 30
    s.rect(qx, y0, ww, xh, fill="#e4f0e2", stroke=GREEN)
    s.text(qx + ww / 2, y0 - 8, f"q [T, Hq·D] = [{T}, {c['Hq'] * c['D']}]", size=11.5, anchor="middle", mono=True,
           fill=GREEN)
    for h in range(1, c["Hq"]):
        s.line(qx + h * c["D"] * sc, y0, qx + h * c["D"] * sc, y0 + xh, stroke=GREEN, opacity="0.35")
    s.text(qx + ww / 2, y0 + xh + 16, f"= [T, Hq, D]: {c['Hq']} heads of {c['D']}", size=10.5, anchor="middle",
           fill=MUTED)
    rules = ["The inner sizes meet (H with H); the outer ones are the result: [T, H] · [H, N] = [T, N].",
             "A weight [N, K] is read row by row: y[t, n] = Σ_k x[t, k] · W[n, k] - a dot product of two rows.",
             f"Reshaping [T, {c['Hq'] * c['D']}] as [T, {c['Hq']}, {c['D']}] moves no data: the same floats, read "
             "with another stride."]
    for k, r in enumerate(rules):
        s.text(20, 222 + k * 20, r, size=11.5)
    s.text(20, H - 8, "Shapes from configs/qwen3-0.6b.json; drawn to scale by tools/docs_figures.py", size=10,
           fill=MUTED)
    return s.render()


def fig_row_major():
    T, Hh, D = 2, 2, 4
    W, H = 800, 300
    s = SVG(W, H, "Row-major layout of a [T, H, D] tensor",
            "Element (t, h, d) sits at offset (t·H + h)·D + d: the last index moves fastest.")
    s.text(20, 24, "Row-major: a [T=2, Hkv=2, D=4] tensor is one run of 16 floats", size=14, weight="bold")
    cw = 40
    x0, y0 = 30, 70
    target = (1, 0, 2)
    cols = [BLUE, ACCENT]
    for t in range(T):
        for h in range(Hh):
            for d in range(D):
                off = (t * Hh + h) * D + d
                x = x0 + off * cw
                hl = (t, h, d) == target
                s.rect(x, y0, cw - 2, 34, fill=GOLD if hl else cols[h], opacity="0.9" if hl else "0.25", rx=2)
                s.text(x + cw / 2 - 1, y0 + 14, f"{t},{h},{d}", size=10, anchor="middle", mono=True)
                s.text(x + cw / 2 - 1, y0 + 28, str(off), size=10, anchor="middle", mono=True, fill=MUTED)
    for t in range(T):
        s.line(x0 + t * Hh * D * cw, y0 + 42, x0 + (t + 1) * Hh * D * cw - 4, y0 + 42, stroke=FG, sw=1.5)
        s.text(x0 + (t + 0.5) * Hh * D * cw, y0 + 58, f"token t = {t}: stride H·D = {Hh * D}", size=11,
               anchor="middle")
        for h in range(Hh):
            xa = x0 + (t * Hh + h) * D * cw
            s.line(xa, y0 - 6, xa + D * cw - 4, y0 - 6, stroke=cols[h], sw=2)
            s.text(xa + D * cw / 2, y0 - 12, f"head {h}: stride D = {D}", size=10, anchor="middle", fill=cols[h])
    t, h, d = target
    s.text(20, 172, f"offset(t, h, d) = (t·Hkv + h)·D + d      e.g. (1, 0, 2) → (1·2 + 0)·4 + 2 = {(t * Hh + h) * D + d}",
           size=12, mono=True)
    s.text(20, 196, "In C, one named pointer per axis instead of the algebra in every loop:", size=11.5)
    s.text(40, 216, "const float *row = k + (size_t)t * Hkv * D;   /* token t   */", size=11.5, mono=True)
    s.text(40, 234, "const float *kh  = row + (size_t)h * D;        /* its head h */", size=11.5, mono=True)
    s.text(40, 252, "float v = kh[d];", size=11.5, mono=True)
    s.text(20, H - 10, "Drawn by tools/docs_figures.py; the (size_t) casts widen before multiplying (STYLE.md)",
           size=10, fill=MUTED)
    return s.render()


def attention_example():
    """3 tokens, one head of D = 2: inputs chosen to be readable, outputs computed."""
    q = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    k = [[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]
    v = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    D = 2
    scores, probs, out = [], [], []
    for t in range(3):
        row = [(q[t][0] * k[j][0] + q[t][1] * k[j][1]) / math.sqrt(D) if j <= t else None for j in range(3)]
        mx = max(x for x in row if x is not None)
        e = [math.exp(x - mx) if x is not None else 0.0 for x in row]
        z = sum(e)
        p = [x / z for x in e]
        scores.append(row)
        probs.append(p)
        out.append([sum(p[j] * v[j][i] for j in range(3)) for i in range(2)])
    return q, k, v, scores, probs, out


def fig_attention():
    q, k, v, scores, probs, out = attention_example()
    W, H = 800, 340
    s = SVG(W, H, "Attention worked through: 3 tokens, one head, D = 2",
            "Scores q·k/√D with the causal mask, softmax per row, and the weighted sums of v.")
    s.text(20, 24, "Attention by hand: 3 tokens, one head of D = 2 (causal: token t sees 0..t)", size=14,
           weight="bold")

    def mat(x, y, title, m, fmt, col, wcell=58):
        s.text(x, y - 8, title, size=11.5, weight="bold", fill=col)
        for i, row in enumerate(m):
            for j, val in enumerate(row):
                s.rect(x + j * wcell, y + i * 24, wcell - 2, 22, fill="#fff" if val is not None else PANEL,
                       stroke=col if val is not None else LINE)
                s.text(x + j * wcell + wcell / 2 - 1, y + i * 24 + 15, fmt(val) if val is not None else "masked",
                       size=10.5 if val is not None else 9, anchor="middle", mono=True,
                       fill=FG if val is not None else MUTED)
    f2 = lambda x: f"{x:.3f}".rstrip("0").rstrip(".") if x is not None else ""  # noqa: E731
    mat(20, 60, "q (a row per token)", q, f2, BLUE, 50)
    mat(140, 60, "k", k, f2, ACCENT, 46)
    mat(240, 60, "v", v, f2, GREEN, 46)
    mat(360, 60, "scores = q·k / √2", scores, lambda x: f"{x:.3f}", PURPLE, 64)
    mat(570, 60, "softmax per row", probs, lambda x: f"{x:.3f}", PURPLE, 64)
    mat(570, 190, "out = probs · v", out, lambda x: f"{x:.3f}", GREEN, 64)
    t = 2
    s.text(20, 175, f"token 2: scores {', '.join(f'{x:.3f}' for x in scores[t])}", size=11.5, mono=True)
    s.text(20, 195, f"softmax: e^s / Σ e^s = {', '.join(f'{x:.3f}' for x in probs[t])}", size=11.5, mono=True)
    s.text(20, 215, f"out = {probs[t][0]:.3f}·v0 + {probs[t][1]:.3f}·v1 + {probs[t][2]:.3f}·v2", size=11.5, mono=True)
    s.text(20, 235, f"    = ({out[t][0]:.3f}, {out[t][1]:.3f})", size=11.5, mono=True)
    s.text(20, 262, "Token 0 attends only to itself (probability 1). The mask is", size=11)
    s.text(20, 279, "what makes decoding one token at a time give the numbers", size=11)
    s.text(20, 296, "of the whole prompt at once.", size=11)
    s.text(20, H - 10, "Inputs chosen for readability; every other number computed by tools/docs_figures.py",
           size=10, fill=MUTED)
    return s.render()


def bar_pairs(s, x0, y0, rows, scale, unit, left, right, cols=(GREY, GREEN), lab_w=150, ranged=False):
    """rows: (label, a, b) with a, b numbers or (lo, hi) ranges; two bars per row"""
    y = y0
    for label, a, b in rows:
        s.text(x0 + lab_w - 8, y + 14, label, size=11, anchor="end")
        for k, (val, col, name) in enumerate(((a, cols[0], left), (b, cols[1], right))):
            yy = y + k * 15
            if ranged:
                lo, hi = val
                s.rect(x0 + lab_w, yy, lo * scale, 12, fill=col, opacity="0.45")
                s.rect(x0 + lab_w + lo * scale, yy, (hi - lo) * scale, 12, fill=col)
                s.text(x0 + lab_w + hi * scale + 5, yy + 10, f"{name}: {lo:g}-{hi:g} {unit}", size=10, fill=col)
            else:
                s.rect(x0 + lab_w, yy, val * scale, 12, fill=col)
                s.text(x0 + lab_w + val * scale + 5, yy + 10, f"{name}: {val:g} {unit}", size=10, fill=col)
        y += 40
    return y


def fig_huge_pages():
    m = read_json(os.path.join(DATA, "measurements.json"))
    W, H = 800, 320
    s = SVG(W, H, "4 KiB pages against 2 MiB huge pages, measured",
            "Decode speed ranges with weights on 4 KiB pages and on huge pages; KV row copies and attention per "
            "step before and after the KV cache moved to huge pages.")
    s.text(20, 24, "Huge pages: the same bytes, far fewer TLB misses", size=14, weight="bold")
    s.text(20, 48, "1. decode tokens/s, weights on 4 KiB pages vs 2 MiB huge pages (dev VM, host busy)", size=11.5,
           weight="bold")
    rows = [(f'{r["weights"]} tg64', tuple(r["pages_4k"]), tuple(r["huge"])) for r in m["huge_pages_decode"]["rows"]]
    y = bar_pairs(s, 20, 60, rows, 3.6, "tok/s", "4 KiB pages", "huge pages", cols=(GREY, BLUE), lab_w=90, ranged=True)
    s.text(20, y + 4, "2. one Q4_0 decode step, KV cache on 4 KiB pages vs in the huge-page arena (µs)", size=11.5,
           weight="bold")
    rows = [(r["what"], r["before_us"], r["after_us"]) for r in m["huge_pages_kv"]["rows"]]
    y = bar_pairs(s, 20, y + 16, rows, 0.75, "µs", "4 KiB pages", "huge pages", cols=(GREY, GREEN), lab_w=130)
    s.text(20, y + 6, "A 4 KiB page needs one TLB entry per 4 KiB; a token of decode streams ~0.35-1.2 GB, so it "
                      "missed the TLB ~155k times,", size=11)
    s.text(20, y + 22, "each miss a page-table walk (two levels of them in a VM). One 2 MiB entry covers 512 of them.",
           size=11)
    s.text(20, H - 10, "Sources: commits c4c4f80 and b840233 (2026-12-01) on the 2 vCPU dev VM; the conditions are "
                       "in docs/data/measurements.json", size=10, fill=MUTED)
    return s.render()


def fig_nta():
    rows = read_csv("prefetch-hint.csv")
    W, H = 800, 300
    s = SVG(W, H, "One prefetch hint, two chips: NTA against T0",
            "Decode speed with the non-temporal prefetch hint relative to the T0 hint, on the AMD dev VM and on an "
            "Intel Xeon.")
    s.text(20, 24, "The same line of code, two CPUs: decode speed with prefetchnta relative to prefetcht0", size=14,
           weight="bold")
    xm, y0 = 590, 50
    scale = 140      # pixels per doubling
    y = y0 + 10
    machine = None
    bars = []
    for r in rows:
        if r["machine"] != machine:
            machine = r["machine"]
            s.text(20, y + 12, machine, size=11.5, weight="bold")
            y += 22
        t0 = (float(r["t0_lo"]) + float(r["t0_hi"])) / 2
        nta = (float(r["nta_lo"]) + float(r["nta_hi"])) / 2
        ratio = nta / t0
        x = xm + math.log2(ratio) * scale
        col = GREEN if ratio >= 1 else RED
        bars.append((x, y, ratio, col))
        t0s = r["t0_lo"] if r["t0_lo"] == r["t0_hi"] else f'{r["t0_lo"]}-{r["t0_hi"]}'
        s.text(30, y + 12, f'{r["weights"]} {r["test"]}: T0 {t0s} → NTA {r["nta_lo"]} tok/s', size=10.5, mono=True)
        y += 24
    for f, lab in ((0.25, "¼×"), (0.5, "½×"), (1, "same"), (2, "2×")):
        x = xm + math.log2(f) * scale
        s.line(x, y0, x, y + 4, stroke=FG if f == 1 else LINE, sw=1.2 if f == 1 else 1, dash=None if f == 1 else "3 3")
        s.text(x, y + 18, lab, size=10.5, anchor="middle", fill=MUTED)
    for x, yy, ratio, col in bars:
        s.rect(min(x, xm), yy, abs(x - xm), 16, fill=col, opacity="0.8")
        s.text(x + (6 if ratio >= 1 else -6), yy + 12, f"×{ratio:.2f}", size=10.5,
               anchor="start" if ratio >= 1 else "end", fill=col, weight="bold")
    s.text(20, H - 24, "Sources: commit cd642ae (dev VM, 2026-11-22; q8_0 was '~71-79', its midpoint shown) and "
                       "issue 16 (Xeon, after session 4).", size=10, fill=MUTED)
    s.text(20, H - 10, "Data: docs/data/prefetch-hint.csv, drawn by tools/docs_figures.py", size=10, fill=MUTED)
    return s.render()


def fig_amx_threshold():
    rows = read_csv("amx-threshold.csv")
    fmts = []
    for r in rows:
        if r["weights"] not in fmts:
            fmts.append(r["weights"])
    W, H = 800, 345
    s = SVG(W, H, "The matrix unit against the 512-bit kernels, by step size",
            "Batched decode throughput of N streams on AMX tiles and on the 512-bit kernels, per weight format, on one "
            "Xeon; the tiles lose for small steps and win for large ones.")
    s.text(20, 24, "AMX tiles (blue) against the 512-bit kernels (orange): tokens/s of N streams in one step",
           size=14, weight="bold")
    pw, gap, x0, y0, y1 = 210, 50, 55, 60, 250
    Ns = sorted({int(r["N"]) for r in rows})
    for k, f in enumerate(fmts):
        fr = [r for r in rows if r["weights"] == f]
        top = max(max(float(r["tiles"]), float(r["avx512"])) for r in fr) * 1.1
        left = x0 + k * (pw + gap)
        right = left + pw
        X = lambda n: left + (math.log2(n) - math.log2(Ns[0])) / (math.log2(Ns[-1]) - math.log2(Ns[0])) * (right - left)
        Y = lambda v: y1 - v / top * (y1 - y0)
        s.rect(left, y0, right - left, y1 - y0, stroke=MUTED)
        for n in Ns:
            s.line(X(n), y0, X(n), y1, stroke=LINE)
            s.text(X(n), y1 + 15, str(n), size=11, anchor="middle", fill=MUTED)
        for v in (top / 2, top):
            s.text(left - 4, Y(v) + 4, f"{v:.0f}", size=10, anchor="end", fill=MUTED)
        s.text((left + right) / 2, y0 - 8, f, size=12.5, anchor="middle", weight="bold")
        # the first N from which the tiles win at every N measured: stage 4's answer
        win = None
        for r in reversed(fr):
            if float(r["tiles"]) > float(r["avx512"]):
                win = int(r["N"])
            else:
                break
        if win is not None:
            s.rect(X(win), y0, right - X(win), y1 - y0, fill=BLUE, opacity="0.07")
            s.text(right - 4, y1 - 8, f"tiles from {win}", size=10.5, anchor="end", fill=BLUE, weight="bold")
        for key, col in (("tiles", BLUE), ("avx512", ACCENT)):
            pts = [(X(int(r["N"])), Y(float(r[key]))) for r in fr]
            s.path("M" + " L".join(f"{num(x)} {num(y)}" for x, y in pts), stroke=col, sw=2)
            for x, y in pts:
                s.circle(x, y, 3, fill=col)
    s.text(W / 2, y1 + 33, "N: tokens in the step (streams decoding together), 2 threads", size=12, anchor="middle")
    s.text(20, H - 38, f"{rows[0]['machine']}, {rows[0]['date']}.", size=10, fill=MUTED)
    s.text(20, H - 24, "build/tools/bench_batch: the tiles from 4-5 tokens (the old default) against FS_ISA=avx512 "
                       "(no tiles); shaded: the calibration's choice.", size=10, fill=MUTED)
    s.text(20, H - 10, "Data: docs/data/amx-threshold.csv, drawn by tools/docs_figures.py", size=10, fill=MUTED)
    return s.render()


def fig_kv_aliasing():
    m = read_json(os.path.join(DATA, "measurements.json"))["kv_padding"]
    W, H = 800, 380
    s = SVG(W, H, "Why a 4 KiB KV row is slow: L1 set aliasing",
            "With 64 sets of 64-byte lines, addresses 4096 bytes apart land in the same set; padding each row by 64 "
            "bytes spreads them over consecutive sets.")
    s.text(20, 24, "A KV row of exactly 4 KiB: every row's head lands in the same L1 set", size=14, weight="bold")
    s.text(20, 44, "L1 data cache: set = (address / 64) mod 64 (Zen 5: 48 KiB, 12 ways, 64 sets); one set holds only "
                   "12 lines", size=11, fill=MUTED)
    for k, (title, stride, col) in enumerate((("rows 4096 B apart (Hkv·D·4 = 8·128·4)", 4096, RED),
                                              ("rows padded to 4160 B (FS_KV_PAD: +64 B)", 4160, GREEN))):
        y0 = 70 + k * 100
        s.text(20, y0, title, size=11.5, weight="bold", fill=col)
        cw = 11
        for st in range(64):
            s.rect(20 + st * cw, y0 + 10, cw - 1, 18, fill=PANEL, stroke=LINE, sw=0.5)
        counts = {}
        for row in range(16):
            st = (row * stride // 64) % 64
            counts[st] = counts.get(st, 0) + 1
        for st, n in counts.items():
            s.rect(20 + st * cw, y0 + 10, cw - 1, 18, fill=col, opacity=str(min(1.0, 0.3 + 0.05 * n)))
            s.text(20 + st * cw + cw / 2, y0 + 44, str(n), size=9.5, anchor="middle", fill=col)
        s.text(20, y0 + 62, ("16 keys of one head → all 16 in set 0: more than its 12 ways, so they evict each other"
                             if stride == 4096 else "16 keys of one head → 16 different sets: they all stay"),
               size=11)
        s.text(20 + 64 * cw + 10, y0 + 24, "sets 0..63", size=10, fill=MUTED)
    y = 290
    s.text(20, y, "Measured (decode attention of one layer, 2 threads, warm):", size=11.5, weight="bold")
    for k, r in enumerate(m["rows"]):
        s.text(40, y + 20 + 18 * k, f'{r["keys"]:>5} keys: {r["before_us"]:g} µs → {r["after_us"]:g} µs '
                                    f'({r["before_us"] / r["after_us"]:.2f}× faster)', size=11.5, mono=True)
    s.text(420, y + 20, f'row kernels: {m["fma_per_ns"]["rows_4k_apart"]:g} FMA/ns on 4 KiB-apart rows,', size=11.5)
    s.text(420, y + 38, f'{m["fma_per_ns"]["padded"]:g} FMA/ns on padded rows', size=11.5)
    s.text(20, H - 24, "Sources: " + m["source"], size=9.5, fill=MUTED)
    s.text(20, H - 10, m["fma_per_ns_source"] + "; sets drawn by tools/docs_figures.py", size=9.5, fill=MUTED)
    return s.render()


def fig_attn_order():
    m = read_json(os.path.join(DATA, "measurements.json"))["attn_order"]
    W, H = 800, 420
    s = SVG(W, H, "Decode attention reading the KV cache: one kv head at a time, or in address order",
            "The cache is position-major: a position's 8 kv heads of 512 bytes sit side by side in a 4 KiB row. "
            "Reading one kv head down the positions jumps 4 KiB at every key; reading each row whole, then the "
            "next, walks memory in order.")
    s.text(20, 24, "A layer's K cache, position-major: a row per position, its 8 kv heads side by side", size=14,
           weight="bold")
    cw, ch, rows = 36, 16, 6
    for k, (title, col) in enumerate((("before: one kv head at a time - 512 B, jump 4 KiB, 512 B ...", RED),
                                      ("now: every kv head of a position, then the next position", GREEN))):
        x0, y0 = 20 + k * 390, 56
        s.text(x0, y0, title, size=11, weight="bold", fill=col)
        for r in range(rows):
            s.text(x0, y0 + 24 + r * ch + 11, f"p{r}", size=9.5, fill=MUTED, mono=True)
            for g in range(8):
                s.rect(x0 + 24 + g * cw, y0 + 24 + r * ch, cw - 2, ch - 2, fill=PANEL, stroke=LINE, sw=0.5)
        if k == 0:   # one kv head's column, top to bottom
            for r in range(rows):
                s.rect(x0 + 24, y0 + 24 + r * ch, cw - 2, ch - 2, fill=col, opacity="0.55")
                if r < rows - 1:
                    s.line(x0 + 24 + cw / 2, y0 + 24 + r * ch + ch - 4, x0 + 24 + cw / 2, y0 + 24 + (r + 1) * ch + 2,
                           stroke=col, arrow=True)
            s.text(x0, y0 + 24 + rows * ch + 18, "then kv head 1's column, and so on", size=10.5, fill=MUTED)
        else:        # row by row
            for r in range(2):
                for g in range(8):
                    s.rect(x0 + 24 + g * cw, y0 + 24 + r * ch, cw - 2, ch - 2, fill=col, opacity="0.55")
                s.line(x0 + 24, y0 + 24 + r * ch + ch / 2 - 1, x0 + 24 + 8 * cw - 6, y0 + 24 + r * ch + ch / 2 - 1,
                       stroke=col, arrow=True)
            s.text(x0, y0 + 24 + rows * ch + 18, "then p2's row, p3's ... (f16 widened in registers)", size=10.5,
                   fill=MUTED)
    y = 250
    s.text(20, y, "Measured (one token's attention, a layer, 2 threads; before -> now):", size=11.5, weight="bold")
    for k, r in enumerate(m["rows"]):
        b, a = r["before_us"], r["after_us"]
        s.text(40, y + 20 + 18 * k, f'depth {r["depth"]:>4}, {r["kv"]} cache: {b[0]:g}-{b[1]:g} us -> '
                                    f'{a[0]:g}-{a[1]:g} us ({sum(b) / sum(a):.2f}x)', size=11.5, mono=True)
    g = m["stream_gb_s"]
    s.text(20, y + 110, f'One core streaming memory: {g["plain"]:g} GB/s plain, {g["prefetch_256b_1k"]:g} with a '
                        f'software prefetch 256 B-1 KiB ahead, {g["prefetch_4k_plus"]:g} with one 4 KiB+ ahead', size=11)
    s.text(20, H - 24, "Sources: build/tools/bench_attention -t 2 on a 2-vCPU Xeon (family 6 model 167), 2026-12-05, "
                       "builds alternating (docs/cpu.md);", size=9.5, fill=MUTED)
    s.text(20, H - 10, m["stream_source"] + "; drawn by tools/docs_figures.py", size=9.5, fill=MUTED)
    return s.render()


def fig_ubsan():
    W, H = 800, 300
    s = SVG(W, H, "What a NaN weight became in Q4_0, and why UBSan objects",
            "A NaN in a block is skipped by the max; x*id + 8.5 is NaN; converting NaN to int is undefined "
            "behaviour; x86 returns INT_MIN, which the clamp turns into 0, weight -8d.")
    s.text(20, 24, "One NaN weight through fs_quantize_row_q4_0 (src/quant.c at commit e795cf0)", size=14, weight="bold")
    steps = [("x[i] = NaN", "in a block of\nfinite weights", BLUE),
             ("amax skips it", "fabsf(NaN) > amax\nis false", BLUE),
             ("x·id + 8.5 = NaN", "d and id from\nthe finite ones", BLUE),
             ("(int)NaN", "undefined behaviour\n(C11 6.3.1.4)", RED),
             ("x86: INT_MIN", "cvttss2si's\n'integer indefinite'", ACCENT),
             ("clamp → 0", "w = d·(0 − 8)\n= −8d", ACCENT)]
    x = 20
    for k, (a, b, col) in enumerate(steps):
        s.box(x, 50, 116, 40, a, fill="#fff", stroke=col, size=10.5, mono=True, color=col)
        lines = b.split("\n")
        for j, l in enumerate(lines):
            s.text(x + 58, 108 + 14 * j, l, size=10, anchor="middle", fill=MUTED)
        if k < len(steps) - 1:
            s.line(x + 117, 70, x + 127, 70, stroke=FG, arrow=True)
        x += 128
    notes = ["The model then runs and prints normal-looking text, exit status 0: a silent wrong result.",
             "gcc's -fsanitize=undefined leaves float-cast-overflow out (it must be named); clang's includes",
             "it and reports the cast at run time. The test suite's sanitizer run used gcc.",
             "A block of only NaNs went another way: amax = 0, so d = 0 and every weight became 0.",
             "The lesson: run the sanitizers with more than one compiler, and check inputs for NaN at load."]
    for k, l in enumerate(notes):
        s.text(20, 160 + k * 20, l, size=11.5)
    s.text(20, H - 10, "Source: issue 18 (found by clang's UBSan, December 2026); the line in src/quant.c: "
                       "(int)(xb[i] * id + 8.5f). Drawn by tools/docs_figures.py", size=10, fill=MUTED)
    return s.render()


# ---- the GPU (docs/gpu.md) ---------------------------------------------------------

def fig_gpu_memory():
    g = read_json(os.path.join(DATA, "measurements.json"))["gpu_h200"]
    W, H = 800, 580
    s = SVG(W, H, "The GPU's memory hierarchy, as fs's kernels use it",
            f"{g['name']}: {g['sm_count']} streaming multiprocessors, each with registers and shared memory; "
            "an L2 cache shared by all of them; HBM below. Sizes as the driver reports them, bandwidth and "
            "launch cost as measured.")
    s.text(20, 26, f"{g['name']}: where the bytes live, and what fs keeps at each level", size=15, weight="bold")
    s.text(20, 44, "sizes as the driver reports them (cuDeviceGetAttribute); speeds as measured on it, 2026-12-04",
           size=11, fill=MUTED)
    # the SMs: one small square each; the last of the first row is opened up on the right
    n, cols = g["sm_count"], 12
    x0, y0, cw, ch = 20, 84, 17, 13
    s.text(x0, y0 - 12, f"{n} SMs at {g['sm_clock_mhz'] / 1000:g} GHz", size=12.5,
           weight="bold")
    for i in range(n):
        x, y = x0 + (i % cols) * (cw + 3), y0 + (i // cols) * (ch + 3)
        s.rect(x, y, cw, ch, fill=ACCENT if i == cols - 1 else PANEL, stroke=ACCENT if i == cols - 1 else MUTED,
               sw=0.8, rx=2)
    rows = (n + cols - 1) // cols
    grid_r, grid_bottom = x0 + cols * (cw + 3) - 3, y0 + rows * (ch + 3) - 3
    s.text(x0, grid_bottom + 18, "a block of threads runs on one SM;", size=11, fill=MUTED)
    s.text(x0, grid_bottom + 32, "a kernel's grid of blocks covers them all", size=11, fill=MUTED)
    # one SM, opened
    sx, sy, sw_, sh = 300, 60, 480, 262
    s.rect(sx, sy, sw_, sh, fill=BG, stroke=ACCENT, sw=1.5, rx=6)
    s.path(f"M{num(grid_r)},{num(y0)} L{sx},{sy + 4}", stroke=ACCENT, dash="4 3")
    s.path(f"M{num(grid_r)},{num(y0 + ch)} L{sx},{sy + sh - 4}", stroke=ACCENT, dash="4 3")
    s.text(sx + 12, sy + 20, "one SM", size=13, weight="bold", fill=ACCENT)
    warps = g["threads_per_sm"] // g["warp_size"]
    s.text(sx + 80, sy + 20, f"up to {g['threads_per_sm']:,} threads = {warps} warps of {g['warp_size']}, "
                             f"in up to {g['blocks_per_sm']} blocks", size=11)
    regs_kib = g["registers_per_sm"] * 4 // 1024
    s.rect(sx + 12, sy + 32, sw_ - 24, 62, fill="#e8eef5", stroke=BLUE, rx=4)
    s.text(sx + 22, sy + 50, f"registers: {g['registers_per_sm']:,} × 32 bits = {regs_kib} KiB", size=12,
           weight="bold", fill=BLUE)
    s.text(sx + 22, sy + 67, "each thread's own values. fs: a GEMV lane's 16-byte weight vectors in", size=10.5)
    s.text(sx + 22, sy + 82, "flight and its partial sums; a tensor-core tile's f32 accumulators", size=10.5)
    smem = g["shared_per_sm_bytes"] // 1024
    s.rect(sx + 12, sy + 102, sw_ - 24, 62, fill="#eaf2e8", stroke=GREEN, rx=4)
    s.text(sx + 22, sy + 120, f"shared memory (with L1): {smem} KiB; one block may take "
                              f"{g['shared_per_block_optin_bytes'] // 1024} KiB", size=12, weight="bold", fill=GREEN)
    s.text(sx + 22, sy + 137, "shared by the threads of one block. fs: the matmul's input row,", size=10.5)
    s.text(sx + 22, sy + 152, "normalised once per block; GEMM tiles; a range of attention scores", size=10.5)
    s.rect(sx + 12, sy + 172, sw_ - 24, 44, fill="#f1ecf6", stroke=PURPLE, rx=4)
    s.text(sx + 22, sy + 190, "tensor cores: mma.sync.m16n8k16", size=12, weight="bold", fill=PURPLE)
    s.text(sx + 22, sy + 206, "a warp multiplies 16×16 by 16×8 bf16 into f32 in one instruction (prefill)", size=10.5)
    s.text(sx + 22, sy + 236, "a warp is 32 threads issuing one instruction together: 32 lanes × 16 bytes", size=10.5)
    s.text(sx + 22, sy + 251, "is one load of 512 contiguous bytes when neighbouring lanes read neighbours", size=10.5)
    # L2 and HBM, under everything
    ly = 346
    l2 = g["l2_bytes"] / 2**20
    s.rect(20, ly, 760, 58, fill="#f7efe6", stroke=GOLD, sw=1.2, rx=5)
    s.text(32, ly + 21, f"L2 cache: {l2:g} MiB, shared by all {n} SMs", size=12.5, weight="bold", fill="#8a6500")
    s.text(32, ly + 39, "fs: a decode step's activations (x, q, k, v, gate, up: ~50 KB a token) stay here between "
                        "kernels;", size=10.5)
    s.text(32, ly + 53, f"the weights (1.19 GB in bf16) are ~{1192.1e6 / g['l2_bytes']:.0f} times its size: they "
                        "stream through once a token", size=10.5)
    hy = ly + 78
    mem_gib = g["memory_mib"] / 1024
    peak = g["memory_bus_bits"] / 8 * g["memory_clock_mhz"] * 1e6 * 2 / 1e12
    lo, hi = g["copy_gb_s"]
    s.rect(20, hy, 760, 74, fill="#efeae6", stroke=FG, sw=1.2, rx=5)
    s.text(32, hy + 21, f"HBM3e: {mem_gib:.1f} GiB; {g['memory_bus_bits']:,}-bit bus × {g['memory_clock_mhz']:,} MHz "
                        f"× 2 = {peak:.1f} TB/s; a device copy measures {lo / 1000:.2f} TB/s", size=12.5,
           weight="bold")
    s.text(32, hy + 39, "fs: the weights (bf16 1,137 MiB, q4_0 ~320 MiB), the KV cache (f32: 1,008 MiB at 4,608 "
                        "positions), scratch (40 MiB)", size=10.5)
    s.text(32, hy + 55, "a load that misses the caches takes hundreds of nanoseconds: to read at 4.2 TB/s, "
                        "megabytes of loads must be in flight", size=10.5)
    for x in (120, 400, 680):
        s.line(x, ly - 16, x, ly, stroke=MUTED, arrow=True)
        s.line(x, hy - 16, x, hy, stroke=MUTED, arrow=True)
    f0, f1 = g["kernel_floor_us"]
    s.text(20, H - 46, f"Launching is not free either: a kernel that does nothing costs {f0:g}-{f1:g} µs inside a "
                       "CUDA graph (measured),", size=11)
    s.text(20, H - 30, "and a decode step of Qwen3-0.6B is ~170 kernels.", size=11)
    s.text(20, H - 10, "Data: docs/data/measurements.json (gpu_h200; sources there); drawn by tools/docs_figures.py",
           size=10, fill=MUTED)
    return s.render()


def fig_gpu_decode():
    d = read_json(os.path.join(DATA, "measurements.json"))["gpu_decode_bf16"]
    W, H = 780, 400
    s = SVG(W, H, "Where a decode token's time goes on the H200 (bf16)",
            "Three bars on one time axis: the weights read at the measured copy bandwidth; one decode step on the "
            "GPU at position 0, split by op; one token of a 128-token decode, with what the context adds.")
    bytes_us = d["weights_mb"] * 1e6 / (d["copy_gb_s"] * 1e9) * 1e6
    s.text(20, 26, f"A decode token on the H200 (Qwen3-0.6B, bf16): the bytes need {bytes_us:.0f} µs, the kernels "
                   f"take {d['step_us']:.0f}", size=14, weight="bold")
    x0, x1, tmax = 200, 720, 1100.0
    X = lambda us: x0 + us / tmax * (x1 - x0)
    for t in range(0, 1101, 100):
        s.line(X(t), 50, X(t), 262, stroke=LINE)
        s.text(X(t), 276, f"{t}", size=10.5, anchor="middle", fill=MUTED)
    s.text((x0 + x1) / 2, 292, "µs per token", size=11.5, anchor="middle")
    y = 62
    s.text(x0 - 10, y + 15, "weights at copy speed", size=11.5, anchor="end", weight="bold")
    s.text(x0 - 10, y + 29, f'{d["weights_mb"]:,.1f} MB ÷ {d["copy_gb_s"]:,} GB/s', size=10, anchor="end",
           fill=MUTED)
    s.rect(X(0), y, X(bytes_us) - X(0), 22, fill=GREY)
    s.text(X(bytes_us) + 6, y + 15, f"{bytes_us:.0f} µs", size=11)
    y = 122
    s.text(x0 - 10, y + 15, "one step on the GPU", size=11.5, anchor="end", weight="bold")
    s.text(x0 - 10, y + 29, "graph replays back to back", size=10, anchor="end", fill=MUTED)
    t = 0.0
    cols = [BLUE, PURPLE, GREEN, ACCENT, "#2b8a8a", GOLD, RED]
    legend = []
    for k, op in enumerate(d["ops"]):
        us = op["us"] * (d["layers"] if op["per_layer"] else 1)
        s.rect(X(t), y, X(t + us) - X(t), 22, fill=cols[k % len(cols)], stroke=BG, sw=0.6)
        legend.append((op, us, cols[k % len(cols)]))
        t += us
    rest = d["step_us"] - t
    s.rect(X(t), y, X(d["step_us"]) - X(t), 22, fill=LINE, stroke=BG, sw=0.6)
    s.text(X(d["step_us"]) + 6, y + 15, f'{d["step_us"]:g} µs', size=11)
    y = 182
    s.text(x0 - 10, y + 15, "one token of tg128", size=11.5, anchor="end", weight="bold")
    s.text(x0 - 10, y + 29, "positions 0-127, queued", size=10, anchor="end", fill=MUTED)
    s.rect(X(0), y, X(d["step_us"]) - X(0), 22, fill=BLUE, opacity="0.35")
    s.rect(X(d["step_us"]), y, X(d["token_us"]) - X(d["step_us"]), 22, fill=RED, opacity="0.55")
    s.text(X(d["token_us"]), y + 38, f'+{d["token_us"] - d["step_us"]:.0f} µs: attention over the context, its ranges '
                                     f'combined (position 100: {d["pos100_us"]:,.0f} µs)', size=10.5, fill=RED,
           anchor="end")
    s.text(X(d["token_us"]) + 6, y + 15, f'{d["token_us"]:g} µs', size=11)
    # legend: per op, time per token and what bandwidth its bytes got
    ly = 312
    for k, (op, us, col) in enumerate(legend):
        cx, cy = 20 + (k % 4) * 190, ly + (k // 4) * 34
        s.rect(cx, cy - 10, 12, 12, fill=col)
        per = f'{op["us"]:g} µs × {d["layers"]}' if op["per_layer"] else f'{op["us"]:g} µs'
        s.text(cx + 18, cy, f'{op["name"]}', size=11, weight="bold")
        bw = f', {op["mb"] / op["us"]:.2f} TB/s' if op["mb"] else ""
        s.text(cx + 18, cy + 14, f"{per}{bw}", size=10, fill=MUTED)
    k = len(legend)
    cx, cy = 20 + (k % 4) * 190, ly + (k // 4) * 34
    s.rect(cx, cy - 10, 12, 12, fill=LINE)
    s.text(cx + 18, cy, "embed, argmax, gaps", size=11, weight="bold")
    s.text(cx + 18, cy + 14, f"{rest:.0f} µs", size=10, fill=MUTED)
    s.text(20, H - 10, "Data: docs/data/measurements.json (gpu_decode_bf16: src/cuda/NOTES.md, session 4); drawn by "
                       "tools/docs_figures.py", size=10, fill=MUTED)
    return s.render()


# ---- the spine (docs/map.md) ------------------------------------------------------

def fig_spine():
    W, H = 780, 560
    s = SVG(W, H, "The spine of fs: cli, engine, generate, forward, backend, and the backends",
            "Six layers from the command line to the hardware, each talking only to the one below through a "
            "small interface; the backend seam splits into the reference, CPU and CUDA backends.")
    s.text(20, 26, "The spine: each layer calls only the one below, through a small interface", size=15,
           weight="bold")
    layers = [
        ("cli/", "parse flags, print; exit 0 / 1 / 2 / 130", "main.c  opts.c  cmd_*.c", "fs_engine_open, fs_seq_*, "
         "fs_conversation_turn", ACCENT),
        ("src/engine.c", "a model opened once; sequences; chat turns", "engine.h", "fs_generate, "
         "fs_session_truncate (to the common prefix), fs_session_new", BLUE),
        ("src/generate.c", "prefill in 512-token chunks, sample, stop", "generate.h  sampler.h  tokenizer.h",
         "fs_session_eval, fs_session_argmax / _logits", GREEN),
        ("src/forward.c", "the model, written once: 6 calls a layer", "forward.h",
         "struct fs_backend (backend.h): set_step, matmul, rope_kv, ...", PURPLE),
        ("src/backend.h", "the seam: memory, the step, ops, records", "backend.c: fs_backend_open", "", GOLD),
    ]
    x, w, h, gap = 20, 500, 56, 22
    y = 46
    for k, (name, what, files, down, col) in enumerate(layers):
        s.rect(x, y, w, h, fill=PANEL, stroke=col, sw=1.5, rx=6)
        s.text(x + 12, y + 22, name, size=13, weight="bold", fill=col, mono=True)
        s.text(x + 150, y + 22, what, size=12)
        s.text(x + 12, y + 42, files, size=10.5, fill=MUTED, mono=True)
        if down:
            s.line(x + 40, y + h, x + 40, y + h + gap, stroke=FG, arrow=True)
            s.text(x + 52, y + h + 15, down, size=10, fill=MUTED, mono=True)
        y += h + gap
    # the three backends under the seam
    by = y + 20
    names = [("src/cpu/backend_ref.c", "cpu-ref", "scalar C, double sums:", "the oracle"),
             ("src/cpu/backend_cpu.c", "cpu", "AVX2 / NEON, threads,", "huge-page arenas"),
             ("src/cuda/backend_cuda.c", "cuda", "driver API, one .cu per op,", "CUDA graphs")]
    bw = 160
    for k, (f, n, a, b) in enumerate(names):
        bx = x + k * (bw + 10)
        s.line(x + w / 2, y - gap, bx + bw / 2, by, stroke=FG, arrow=True)
        s.rect(bx, by, bw, 70, fill=BG, stroke=GOLD, sw=1.5, rx=6)
        s.text(bx + 10, by + 19, f'"{n}"', size=12.5, weight="bold", mono=True)
        s.text(bx + 10, by + 36, a, size=10.5)
        s.text(bx + 10, by + 50, b, size=10.5)
        s.text(bx + 10, by + 64, f.split("/")[-1], size=9.5, fill=MUTED, mono=True)
    # the side notes: what each layer owns
    nx = 540
    notes = [
        (46, "one option parser (opts.c) for every", "command: -m, --backend, -t, -c, ..."),
        (124, "fs_engine: weights, tokenizer, forward", "fs_seq: session + sampler + cached ids"),
        (202, "greedy with no penalties: the argmax", "on the backend (4 bytes, not V floats)"),
        (280, "fs_forward: weights, activations (shared)", "fs_session: KV cache, position, logits"),
        (358, "all memory before the first op (reserve);", "a decode step recorded once, replayed"),
    ]
    for yy, a, b in notes:
        s.text(nx, yy + 22, a, size=10.5, fill=MUTED)
        s.text(nx, yy + 37, b, size=10.5, fill=MUTED)
    s.text(nx, by + 19, "a Metal backend would be one", size=10.5, fill=MUTED)
    s.text(nx, by + 34, "more box here: src/metal/", size=10.5, fill=MUTED)
    s.text(nx, by + 49, "(nothing above it changes)", size=10.5, fill=MUTED)
    s.text(20, H - 12, "Drawn by tools/docs_figures.py; the files are in the repository as named", size=10,
           fill=MUTED)
    return s.render()


# ---- AMX: tiles and one tile multiply ------------------------------------------------------

def fig_amx():
    W, H = 800, 480
    s = SVG(W, H, "AMX tiles: eight 1 KiB matrix registers and one instruction that multiplies them",
            "A 16 x 32 bf16 tile of tokens times a 16 x 16 pair-interleaved tile of weight rows accumulates "
            "into a 16 x 16 f32 tile; the 64-byte tile configuration sets each tile's rows and bytes per row.")
    s.text(20, 24, "AMX: eight tile registers, one multiply of 16 × 16 × 32", size=14, weight="bold")
    # the register file
    s.text(20, 52, "tile registers (ldtilecfg sets their shapes)", size=11.5, weight="bold")
    for i in range(8):
        x = 20 + i * 62
        s.rect(x, 60, 56, 44, fill=PANEL, stroke=FG, rx=3)
        s.text(x + 28, 80, f"tmm{i}", size=11, anchor="middle", mono=True, weight="bold")
        s.text(x + 28, 96, "16 × 64 B", size=9.5, anchor="middle", fill=MUTED)
    cfg = [("palette", 1), ("start_row", 1), ("reserved", 14), ("colsb[16]: bytes per row", 32), ("rows", 8),
           ("reserved", 8)]
    x, y = 530, 60
    s.text(x, 52, "tile configuration: 64 bytes", size=11.5, weight="bold")
    scale = 4.0
    for name, nb in cfg:
        w = nb * scale if nb > 2 else 10
        s.rect(x, y, w, 22, fill=BLUE if "colsb" in name or "rows" in name else PANEL, stroke=FG, opacity="0.85")
        if "colsb" in name or "rows" in name:
            s.text(x + w / 2, y + 15, name.split(":")[0], size=9.5, anchor="middle", fill="#fff", mono=True)
        x += w
    s.text(530, y + 36, "byte 0: palette 1; colsb[i], rows[i]: tile i's shape.", size=10, fill=MUTED)
    s.text(530, y + 49, "fs keeps each configuration as a constant table", size=10, fill=MUTED)
    s.text(530, y + 62, "(nothing stored before ldtilecfg reads it)", size=10, fill=MUTED)
    # A, B, C
    ay = 160
    def grid(x0, y0, rows, cols, cw, ch, col, label, sub):
        name, detail = label.split(": ")
        s.text(x0, y0 - 22, name, size=11.5, weight="bold")
        s.text(x0, y0 - 8, detail, size=10.5, fill=MUTED)
        for r in range(rows):
            for c in range(cols):
                s.rect(x0 + c * cw, y0 + r * ch, cw, ch, fill=col, stroke=BG, opacity="0.25" if (r + c) % 2 else "0.4")
        s.rect(x0, y0, cols * cw, rows * ch, stroke=col, sw=1.5)
        s.text(x0, y0 + rows * ch + 16, sub, size=10, fill=MUTED)
    grid(20, ay + 20, 16, 32, 6, 11, BLUE, "A = tmm4: 16 tokens × 32 k, bf16", "row t: x[t, k0 .. k0+31]")
    s.text(238, ay + 20 + 88 + 4, "·", size=28, anchor="middle", weight="bold")
    grid(262, ay + 20, 16, 32, 6, 11, ACCENT, "B = tmm6: 16 k-pairs × 16 weight rows, bf16", "row r: (W[n][2r], W[n][2r+1]), n = 0..15")
    for c in range(16):
        s.line(262 + (2 * c + 2) * 6, ay + 20, 262 + (2 * c + 2) * 6, ay + 20 + 176, stroke=ACCENT, sw=0.6, opacity="0.6")
    s.text(487, ay + 20 + 88 + 4, "→", size=20, anchor="middle", weight="bold")
    grid(512, ay + 20, 16, 16, 11, 11, GREEN, "C = tmm0: 16 tokens × 16 weight rows, f32", "C[t, n] += Σ_k A[t, k] · W[n, k]")
    s.text(20, ay + 236, "tdpbf16ps tmm0, tmm4, tmm6   — 16 × 16 × 32 = 8,192 bf16 multiply-adds in one instruction "
                         "(an AVX-512 FMA: 16)", size=11.5, mono=False, weight="bold")
    s.text(20, ay + 256, "int8: tdpbssd, A 16 × 64 int8, B 16 quads × 16 rows, C int32 — one Q8_0 / Q4_0 block (32 k) "
                         "per call, then scaled by d_x · d_w.", size=10.5, fill=MUTED)
    s.text(20, ay + 274, "bf16 weights in fs: x is split into three bf16 parts (x = hi + mid + lo exactly), each meets "
                         "the same B: an f32 dot product.", size=10.5, fill=MUTED)
    s.text(20, ay + 292, "Linux hands a process the tile state only after arch_prctl(ARCH_REQ_XCOMP_PERM); "
                         "without it the kernels are not used.", size=10.5, fill=MUTED)
    s.text(20, H - 12, "From src/cpu/matmul_amx.c; drawn by tools/docs_figures.py", size=10.5, fill=MUTED)
    return s.render()


# ---- the few-token matmul: one lane's 16 bytes as two mma steps -----------------------

def fig_skinny_mma():
    W, H = 820, 470
    s = SVG(W, H, "gemm_skinny: how a lane's 16-byte load of a bf16 weight row becomes two mma.sync steps",
            "k is renamed: lane q loads weights 8q..8q+7 of a 32-wide window; step s takes 8q+4s..8q+4s+3, the first "
            "pair as mma columns 2q, 2q+1 and the second as 2q+8, 2q+9. The input is read with the same renaming.")
    s.text(20, 24, "One warp, 16 weight rows × a window of 32 k (bf16): loads go straight into mma's A registers",
           size=14, weight="bold")
    lanes = [BLUE, ACCENT, GREEN, PURPLE]
    cw = 22
    # the row in memory
    x0, y0 = 30, 62
    s.text(x0, y0 - 10, "weight row g in memory: 64 contiguous bytes; lane (g, q) loads 16 of them (8 weights)",
           size=11.5, weight="bold")
    for k in range(32):
        q, e = k // 8, k % 8
        step = e // 4
        s.rect(x0 + k * cw, y0, cw, 24, fill=lanes[q], stroke=BG, opacity="1" if step == 0 else "0.55")
        s.text(x0 + k * cw + cw / 2, y0 + 16, str(k), size=9.5, anchor="middle", fill="#fff", mono=True)
    for q in range(4):
        s.text(x0 + q * 8 * cw + 4 * cw, y0 + 40, f"lane q={q}: one 16-byte load", size=10.5, anchor="middle",
               fill=lanes[q], weight="bold")
    s.text(x0, y0 + 58, "solid: used by step 0    faded: used by step 1", size=10.5, fill=MUTED)
    # the A fragment row for each step
    for st in range(2):
        y = 160 + st * 92
        s.text(x0, y - 10, f"mma step {st}: A's row g, columns 0..15 (the k the instruction sums over) hold weights",
               size=11.5, weight="bold")
        for c in range(16):
            hi, pos = c // 8, c % 8
            q, j = pos // 2, pos % 2
            k = 8 * q + 4 * st + 2 * hi + j
            s.rect(x0 + c * 2 * cw, y, 2 * cw, 24, fill=lanes[q], stroke=BG, opacity="1" if st == 0 else "0.55")
            s.text(x0 + c * 2 * cw + cw, y + 16, f"k{k}", size=10, anchor="middle", fill="#fff", mono=True)
            s.text(x0 + c * 2 * cw + cw, y + 36, str(c), size=9, anchor="middle", fill=MUTED, mono=True)
        s.text(x0 + 32 * 2 * cw / 2 + 370, y + 16, "", size=10)
    s.text(x0, 160 + 2 * 92 - 6, "column c of lane q: 2q, 2q+1 (register 0) and 2q+8, 2q+9 (register 2); "
                                 "row g+8 likewise in registers 1, 3", size=10.5, fill=MUTED)
    # B
    by = 370
    s.text(x0, by - 10, "B (the tokens): lane (g, q) needs token g's input at the same k - for step s, k = 8q+4s .. "
                        "8q+4s+3:", size=11.5, weight="bold")
    s.text(x0, by + 12, "8 contiguous bytes of the bf16 input row in shared memory (16 bytes: both steps)", size=11,
           mono=True)
    s.text(x0, by + 36, "A dot product does not care in which order its k are summed: renaming k the same way in A "
                        "and B", size=10.5, fill=MUTED)
    s.text(x0, by + 52, "costs nothing, and the weights need no shuffle and no trip through shared memory.",
           size=10.5, fill=MUTED)
    s.text(x0, by + 68, "q8_0 (16 weights a load) and q4_0 (32) decode to bf16 pairs in registers and feed 4 and 8 "
                        "steps.", size=10.5, fill=MUTED)
    s.text(20, H - 12, "From src/cuda/gemm_skinny.cu; drawn by tools/docs_figures.py", size=10.5, fill=MUTED)
    return s.render()


def fig_gpu_persist():
    d = read_json(os.path.join(DATA, "measurements.json"))["gpu_persist_bf16"]
    W, H = 780, 300
    s = SVG(W, H, "One layer of the persistent decode step on the H200 (bf16)",
            "A bar of one layer's time in the persistent step: for each instruction its input, its work and the "
            "grid barrier after it; beside it, one layer of the op-by-op step of the same session.")
    layer = sum(i["work"] + i["wait"] for i in d["instructions"])
    op_layer = (1e6 / d["op_by_op_tok_s"] - d["lm_head_us"]) / d["layers"]
    s.text(20, 26, f"A layer in one launch: {layer:.0f} µs, where separate kernels take ~{op_layer:.0f}", size=14,
           weight="bold")
    x0, x1, tmax = 150, 740, 45.0
    X = lambda us: x0 + us / tmax * (x1 - x0)
    for t in range(0, 46, 5):
        s.line(X(t), 46, X(t), 196, stroke=LINE)
        s.text(X(t), 210, f"{t}", size=10.5, anchor="middle", fill=MUTED)
    s.text((x0 + x1) / 2, 226, "µs per layer (mean of 28, tg128)", size=11.5, anchor="middle")
    y = 70
    s.text(x0 - 10, y + 15, "persistent step", size=11.5, anchor="end", weight="bold")
    s.text(x0 - 10, y + 29, f'{d["tok_s"]:,.0f} tok/s', size=10, anchor="end", fill=MUTED)
    cols = [BLUE, PURPLE, GREEN, ACCENT, "#2b8a8a", GOLD]
    t = 0.0
    for k, ins in enumerate(d["instructions"]):
        col = cols[k % len(cols)]
        if ins["input"]:
            s.rect(X(t), y, X(t + ins["input"]) - X(t), 22, fill=col, opacity="0.45", stroke=BG, sw=0.6)
        s.rect(X(t + ins["input"]), y, X(t + ins["work"]) - X(t + ins["input"]), 22, fill=col, stroke=BG, sw=0.6)
        mid = X(t + ins["work"] / 2)
        s.text(mid, y - 6, ins["name"], size=10, anchor="middle", fill=col, weight="bold")
        t += ins["work"]
        s.rect(X(t), y, X(t + ins["wait"]) - X(t), 22, fill=RED, opacity="0.55", stroke=BG, sw=0.6)
        t += ins["wait"]
    s.text(X(t) + 6, y + 15, f"{t:.1f} µs", size=11)
    y = 140
    s.text(x0 - 10, y + 15, "separate kernels", size=11.5, anchor="end", weight="bold")
    s.text(x0 - 10, y + 29, f'{d["op_by_op_tok_s"]:,.0f} tok/s, same run', size=10, anchor="end", fill=MUTED)
    s.rect(X(0), y, X(op_layer) - X(0), 22, fill=GREY)
    s.text(X(op_layer) + 6, y + 15, f"~{op_layer:.0f} µs (graph + programmatic launches)", size=11)
    ly = 250
    s.rect(20, ly - 10, 12, 12, fill=BLUE, opacity="0.45")
    s.text(38, ly, "input row ready (x through L2, normalized)", size=10.5)
    s.rect(300, ly - 10, 12, 12, fill=BLUE)
    s.text(318, ly, "the op (matmul rows from shared memory, ...)", size=10.5)
    s.rect(590, ly - 10, 12, 12, fill=RED, opacity="0.55")
    s.text(608, ly, "grid barrier", size=10.5)
    s.text(20, H - 12, "Data: docs/data/measurements.json (gpu_persist_bf16: src/cuda/NOTES.md, session 12); drawn by "
                       "tools/docs_figures.py", size=10, fill=MUTED)
    return s.render()


def fig_gpu_waves():
    """decode attention's blocks on the SMs at 80 and at 64 registers a thread"""
    d = read_json(os.path.join(DATA, "measurements.json"))["gpu_attention_waves"]
    n_sm, blocks = d["sms"], d["kv_heads"] * d["ranges"]
    W, H = 780, 330
    s = SVG(W, H, "Decode attention's blocks on the GPU's SMs at 80 and at 64 registers a thread",
            "Two grids of the SMs' block slots: at 80 registers a thread only three blocks fit an SM, so the last "
            "blocks of a token at depth 4096 wait for a second wave; at 64 registers four fit and every block runs "
            "in the first wave.")
    s.text(20, 26, f"A token at depth 4,096: {blocks} blocks of {d['threads_per_block']} threads on {n_sm} SMs",
           size=14, weight="bold")
    cw, ch, x0 = 3.8, 13, 120
    y = 52
    for regs, tok in ((d["registers_before"], d["tok_s_before"]), (d["registers_after"], d["tok_s_after"])):
        per_sm = d["registers_per_sm"] // (regs * d["threads_per_block"])
        slots = per_sm * n_sm
        first = min(blocks, slots)
        s.text(x0 - 10, y + 14, f"{regs} registers", size=12, anchor="end", weight="bold")
        s.text(x0 - 10, y + 29, f"{per_sm} blocks an SM", size=10.5, anchor="end", fill=MUTED)
        s.text(x0 - 10, y + 43, f"{tok:,.0f} tok/s", size=10.5, anchor="end", fill=MUTED)
        for r in range(4):   # slot rows; block i goes to SM i mod n_sm, row i // n_sm
            for c in range(n_sm):
                i = r * n_sm + c
                yy = y + (3 - r) * ch
                if r < per_sm and i < first:
                    s.rect(x0 + c * cw, yy, cw - 0.8, ch - 2, fill=BLUE)
                elif r < per_sm:
                    s.rect(x0 + c * cw, yy, cw - 0.8, ch - 2, fill="none", stroke=GREY, sw=0.5)
        if per_sm < 4:
            need = (per_sm + 1) * d["threads_per_block"] * regs
            s.text(x0 + n_sm * cw + 8, y + 9, f"{per_sm + 1} x {d['threads_per_block']} x {regs} = {need:,}",
                   size=10, fill=RED)
            s.text(x0 + n_sm * cw + 8, y + 22, f"> {d['registers_per_sm']:,}: no 4th block", size=10, fill=RED)
        s.text(x0 + n_sm * cw + 8, y + 4 * ch - 8, f"wave 1: {first} blocks", size=10.5, fill=BLUE)
        left = blocks - first
        if left:
            yy = y + 4 * ch + 10
            for c in range(left):
                s.rect(x0 + c * cw, yy, cw - 0.8, ch - 2, fill=ACCENT)
            s.text(x0 + left * cw + 8, yy + 10, f"wave 2: {left} more blocks", size=10.5,
                   fill=ACCENT)
        y += 4 * ch + (30 if left else 0) + 36
    s.text(x0, y - 8, f"one column = one SM ({n_sm}); one cell = one block ({d['kv_heads']} kv heads x {d['ranges']} ranges)",
           size=10.5, fill=MUTED)
    s.text(20, H - 12, "Data: docs/data/measurements.json (gpu_attention_waves: src/cuda/NOTES.md, session 14, "
                       "H100, bf16, --kv f16); drawn by tools/docs_figures.py", size=10, fill=MUTED)
    return s.render()


def fig_gpu_timeline():
    """one decode layer on the GPU, kernel by kernel, from the in-kernel timeline"""
    d = read_json(os.path.join(DATA, "measurements.json"))["gpu_layer_timeline"]
    calls = d["calls"]
    W, H = 780, 315
    s = SVG(W, H, "One bf16 decode layer on an H100, kernel by kernel, measured inside the kernels",
            "A horizontal bar of six kernels in chain order, each split into its input, its own work and the hand-over "
            "to the next kernel, against a short bar for the layer's weights at the memory's copy speed.")
    s.text(20, 26, "One decode layer (bf16, H100): what each kernel adds to the chain", size=14, weight="bold")
    # segments: each call's work after its wait (input, the rest; attention: q, ranges, combine),
    # then the hand-over to the next call (the next call's "wait")
    segs = []
    for i, c in enumerate(calls):
        nxt = calls[(i + 1) % len(calls)]
        if "mid" in c:
            segs += [(c["name"], "input", c["input"]), (c["name"], "work", c["mid"] - c["input"]),
                     (c["name"], "combine", c["work"] - c["mid"])]
        elif "input" in c:
            segs += [(c["name"], "input", c["input"]), (c["name"], "work", c["work"] - c["input"])]
        else:
            segs += [(c["name"], "work", c["work"])]
        segs.append((c["name"], "handover", nxt["wait"]))
    total = sum(v for _, _, v in segs)
    x0, x1 = 40, W - 40
    sc = (x1 - x0) / total
    colors = {"input": GOLD, "work": BLUE, "combine": PURPLE, "handover": GREY}
    y = 70
    s.text(x0, y - 10, f"the chain: {total:.1f} us a layer (timeline build)", size=11.5, fill=MUTED)
    x = x0
    span = {}   # call: [its first x, its microseconds]
    for name, kind, v in segs:
        s.rect(x, y, v * sc - 0.8, 34, fill=colors[kind])
        span.setdefault(name, [x, 0.0])[1] += v
        x += v * sc
    for n, (a, us) in span.items():
        s.text(a + us * sc / 2, y + 52, n, size=11.5, anchor="middle", weight="bold")
        s.text(a + us * sc / 2, y + 67, f"{us:.1f} us", size=10.5, anchor="middle", fill=MUTED)
    y2 = y + 100
    wb = d["weights_us_at_copy_speed"]
    s.rect(x0, y2, wb * sc, 22, fill=GREEN)
    s.text(x0 + wb * sc + 8, y2 + 15, f"the layer's 31.5 MB of weights at the memory's copy speed: {wb} us",
           size=11, fill=FG)
    ly = y2 + 52
    lx = x0
    for kind, label in (("input", "input ready (x read from L2 and normalized; attention: q)"),
                        ("work", "the kernel's own work (its weights already arrived)"),
                        ("combine", "attention's combine of its ranges"),
                        ("handover", "to the next kernel's wait: ~1.1 us, more after a GEMV's tail")):
        s.rect(lx, ly - 10, 14, 12, fill=colors[kind])
        s.text(lx + 20, ly, label, size=10.5)
        ly += 18
    s.text(20, H - 12, f"Data: measurements.json gpu_layer_timeline (src/cuda/NOTES.md session 15; the marks slow a "
                       f"step ~20%: {d['tok_s_timeline_build']:.0f} against {d['tok_s_plain_build']:.0f} tok/s); "
                       "drawn by tools/docs_figures.py", size=9.5, fill=MUTED)
    return s.render()


FIGURES = {
    "img/roofline.svg": fig_roofline,
    "img/gpu-timeline.svg": fig_gpu_timeline,
    "img/kv-growth.svg": fig_kv_growth,
    "img/q8_0.svg": fig_q8_0,
    "img/q4_0.svg": fig_q4_0,
    "img/x8.svg": fig_x8,
    "img/block.svg": fig_block,
    "img/archs.svg": fig_archs,
    "img/llama3-rope.svg": fig_llama3_rope,
    "img/sampling.svg": fig_sampling,
    "img/bpe-merges.svg": fig_bpe,
    "img/formats.svg": fig_formats,
    "img/config-shapes.svg": fig_config_shapes,
    "img/mmap.svg": fig_mmap,
    "img/bf16.svg": fig_bf16,
    "img/matmul-shapes.svg": fig_matmul_shapes,
    "img/row-major.svg": fig_row_major,
    "img/attention-worked.svg": fig_attention,
    "img/huge-pages.svg": fig_huge_pages,
    "img/nta-prefetch.svg": fig_nta,
    "img/amx-tiles.svg": fig_amx,
    "img/amx-threshold.svg": fig_amx_threshold,
    "img/kv-aliasing.svg": fig_kv_aliasing,
    "img/attn-order.svg": fig_attn_order,
    "img/ubsan.svg": fig_ubsan,
    "img/gpu-memory.svg": fig_gpu_memory,
    "img/gpu-decode.svg": fig_gpu_decode,
    "img/spine.svg": fig_spine,
    "img/skinny-mma.svg": fig_skinny_mma,
    "img/gpu-persist.svg": fig_gpu_persist,
    "img/gpu-waves.svg": fig_gpu_waves,
    "js/fsdata-next-token.js": js_next_token,
}


def build(ms=None):
    """[(path relative to docs/, text)] for every generated picture and data file"""
    return [(p, f()) for p, f in FIGURES.items()]


if __name__ == "__main__":
    if "--list" in sys.argv:
        print("\n".join(FIGURES))
    else:
        print("docs_figures: run through tools/docs_build.py (make docs); --list shows what it draws")
