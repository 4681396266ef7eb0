#!/usr/bin/env python3
"""serve_plot.py - draw fs serve's throughput curve (aggregate decode
tokens/s against concurrent streams) as an SVG, standard library only.

Input: a JSON file with the measurements of scripts/serve_load.py's
throughput mode, one series per weight format:

  {"machine": "...", "commit": "...", "date": "...", "command": "...",
   "series": {"q4_0": [{"clients": 1, "aggregate_tok_s": 88.1}, ...], ...}}

Each series is drawn with its "linear" line (one stream's rate times the
streams: what perfect batching would give) dashed beside it.

  python3 scripts/serve_plot.py docs/data/serve-throughput.json docs/img/serve-throughput.svg

Docs: docs/serve.md
"""
import json
import math
import sys
from xml.sax.saxutils import escape

W, H = 640, 360
L, R, T, B = 64, 150, 40, 66
COLORS = ["#2457c5", "#c2541b", "#2f8a3b", "#8a2f7a"]


def main():
    src, dst = sys.argv[1:3]
    with open(src) as f:
        d = json.load(f)
    series = d["series"]
    xs = sorted({p["clients"] for pts in series.values() for p in pts})
    ymax = max(max(p["aggregate_tok_s"] for p in pts) for pts in series.values()) * 1.1
    step = 10 ** math.floor(math.log10(ymax / 5))   # a round grid step: 1, 2 or 5 times a power of ten
    step = next(m * step for m in (1, 2, 5, 10) if ymax / (m * step) <= 6)
    ymax = math.ceil(ymax / step) * step

    def px(x):
        return L + (W - L - R) * (xs.index(x) / (len(xs) - 1) if len(xs) > 1 else 0.5)

    def py(y):
        return H - B - (H - T - B) * y / ymax

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
           'font-family="system-ui, sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="#fff"/>',
           f'<text x="{L}" y="22" font-size="14" font-weight="600">fs serve: aggregate decode tokens/s '
           'against concurrent streams</text>']
    for i in range(int(round(ymax / step)) + 1):
        y = i * step
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#e4e4dc"/>')
        out.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end" fill="#555">{y:g}</text>')
    out.append(f'<text x="16" y="{(T + H - B) / 2:.1f}" transform="rotate(-90 16 {(T + H - B) / 2:.1f})" '
               'text-anchor="middle">tokens/s, all streams together</text>')
    for x in xs:
        out.append(f'<text x="{px(x):.1f}" y="{H - B + 18}" text-anchor="middle" fill="#555">{x}</text>')
    out.append(f'<text x="{(L + W - R) / 2:.1f}" y="{H - B + 34}" text-anchor="middle">concurrent streams</text>')
    for k, (name, pts) in enumerate(series.items()):
        c = COLORS[k % len(COLORS)]
        pts = sorted(pts, key=lambda p: p["clients"])
        one = pts[0]["aggregate_tok_s"] / pts[0]["clients"]
        lin = [(px(p["clients"]), py(min(one * p["clients"], ymax))) for p in pts]
        out.append('<polyline fill="none" stroke="%s" stroke-dasharray="4 4" stroke-opacity="0.6" points="%s"/>'
                   % (c, " ".join(f"{x:.1f},{y:.1f}" for x, y in lin)))
        line = [(px(p["clients"]), py(p["aggregate_tok_s"])) for p in pts]
        out.append('<polyline fill="none" stroke="%s" stroke-width="2.5" points="%s"/>'
                   % (c, " ".join(f"{x:.1f},{y:.1f}" for x, y in line)))
        for (x, y), p in zip(line, pts):
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{c}"/>')
        last = pts[-1]
        out.append(f'<text x="{W - R + 8}" y="{py(last["aggregate_tok_s"]) + 4:.1f}" fill="{c}">{escape(name)}: '
                   f'{last["aggregate_tok_s"]:.0f} tok/s</text>')
        out.append(f'<text x="{W - R + 8}" y="{py(last["aggregate_tok_s"]) + 18:.1f}" fill="{c}" font-size="11">'
                   f'x{last["aggregate_tok_s"] / pts[0]["aggregate_tok_s"]:.1f} one stream\'s</text>')
    out.append(f'<text x="{W - R + 8}" y="{H - B - 4}" fill="#777" font-size="10">dashed: one stream x N</text>')
    out.append(f'<text x="{W - R + 8}" y="{H - B + 8}" fill="#777" font-size="10">(perfect batching)</text>')
    out.append(f'<text x="{L}" y="{H - 16}" fill="#777" font-size="10">{escape(d.get("machine", ""))}</text>')
    out.append(f'<text x="{L}" y="{H - 4}" fill="#777" font-size="10">{escape(d.get("date", ""))}, '
               f'{escape(d.get("commit", ""))}; data: docs/data/serve-throughput.json (median of the rounds)</text>')
    out.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
