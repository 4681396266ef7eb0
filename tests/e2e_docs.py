#!/usr/bin/env python3
"""e2e_docs.py - render every page of the learning site in headless Chromium.

Standard library only. Run by tests/e2e_docs.sh (which skips when chromium
is not installed):

    python3 tests/e2e_docs.py CHROMIUM [--shots DIR]

One browser is started and driven through the DevTools protocol (a minimal
websocket client below). For every page of the site - the pages of
tools/docs_build.py's PAGES, the learning notes (docs/learnings/) and the
source views (docs/code/) - opened from disk:

  1. docs/NAME.html?test=1: docs/js/site.js runs the page's self-tests (the
     tokenizer playground, the attention and sampling toys type into their
     inputs and check what they show), checks that every image decoded,
     and writes "FS-DOCS-TEST ok" or "FS-DOCS-TEST FAIL: ..." into the
     title, which must say ok;
  2. no exception, console error or failed resource load may be reported
     (Runtime.exceptionThrown, Runtime.consoleAPICalled type error,
     Log.entryAdded level error);
  3. no broken image: every <img> complete with a natural size;
  4. no horizontal overflow of the page: the document is no wider than the
     window, at 1100 px and at a phone's 390 px (wide tables, code and
     pictures must scroll or shrink inside the page);
  5. a screenshot, decoded: the page must not be blank (more than one
     colour, and some dark text pixels). --shots DIR keeps them (and a
     full-length one of each narrative page).

With --split-check FS_BIN TOKENIZER_DIR (needs node) it instead checks the
playground's teaching copy of the pre-tokenizer (docs/js/tokplay.js)
against fs itself on every golden tokenizer case: its pieces, run through
a plain Python BPE over tokenizer.json's merges, must give exactly the ids
`fs tokenize` gives.

Exit status 0 when every page passes, 1 otherwise (one line per problem).

Docs: docs/testing.md
"""
import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import docs_build  # noqa: E402

WIDTHS = (1100, 390)
OVERFLOW_JS = """(function () {
  var d = document.documentElement, w = d.clientWidth, out = [];
  if (d.scrollWidth <= w + 1) return "";
  Array.prototype.forEach.call(document.body.querySelectorAll("*"), function (el) {
    var r = el.getBoundingClientRect();
    if (r.right > w + 1 && out.length < 3 && getComputedStyle(el).position !== "fixed") {
      var p = el.parentElement, inside = false;
      while (p) { var o = getComputedStyle(p).overflowX; if (o === "auto" || o === "scroll" || o === "hidden") { inside = true; break; } p = p.parentElement; }
      if (!inside) out.push(el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ")[0] : "") + " to " + Math.round(r.right) + " px");
    }
  });
  return "page is " + d.scrollWidth + " px wide in a " + w + " px window (" + (out.join(", ") || "?") + ")";
})()"""
BROKEN_IMG_JS = """Array.prototype.filter.call(document.images, function (i) {
  return !i.complete || i.naturalWidth === 0; }).map(function (i) { return i.getAttribute("src"); }).join(", ")"""


def site_pages():
    """(name, path relative to docs/, narrative?) for every page of the site"""
    out = [(n, n + ".html", True) for n, _ in docs_build.PAGES]
    ldir = os.path.join(ROOT, "docs", "learnings")
    if os.path.isdir(ldir):
        out += [("learnings/" + f[:-5], "learnings/" + f, True) for f in sorted(os.listdir(ldir)) if f.endswith(".html")]
    cdir = os.path.join(ROOT, "docs", "code")
    for dirpath, _, files in os.walk(cdir):
        for f in sorted(files):
            if f.endswith(".html"):
                r = os.path.relpath(os.path.join(dirpath, f), os.path.join(ROOT, "docs"))
                out.append((r[:-5], r, False))
    return sorted(out, key=lambda x: (not x[2], x[1]))

DEADLINE = time.monotonic() + 170


# ---- a minimal websocket client (RFC 6455), enough for DevTools ----------

class WebSocket:
    def __init__(self, url):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        resp = b""
        while b"\r\n\r\n" not in resp:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("websocket handshake: connection closed")
            resp += chunk
        head, _, self.buf = resp.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise OSError("websocket handshake failed: " + head.split(b"\r\n")[0].decode(errors="replace"))

    def send(self, text):
        data = text.encode()
        hdr = bytearray([0x81])
        n = len(data)
        if n < 126:
            hdr.append(0x80 | n)
        elif n < 65536:
            hdr.append(0x80 | 126)
            hdr += struct.pack(">H", n)
        else:
            hdr.append(0x80 | 127)
            hdr += struct.pack(">Q", n)
        mask = os.urandom(4)
        hdr += mask
        self.sock.sendall(bytes(hdr) + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise OSError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            if b1 & 0x80:
                mask = self._read(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(n)))
            else:
                payload = self._read(n)
            op = b0 & 0x0F
            if op == 8:
                raise OSError("websocket closed by the browser")
            if op in (9, 10):  # ping / pong: ignore
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()


class DevTools:
    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, name, timeout):
        end = time.monotonic() + timeout
        self.ws.sock.settimeout(timeout)
        while time.monotonic() < end:
            for i, ev in enumerate(self.events):
                if ev["method"] == name:
                    del self.events[i]
                    return ev
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(name)


# ---- PNG decode (enough to tell a blank page from a rendered one) --------

def png_pixels(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            if depth != 8 or ctype not in (2, 6):
                raise ValueError(f"unsupported PNG (depth {depth}, colour type {ctype})")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def blank_reason(png):
    w, h, bpp, rows = png_pixels(png)
    colours, dark, total = set(), 0, 0
    for y in range(0, h, 2):
        r = rows[y]
        for x in range(0, w * bpp, bpp * 2):
            px = r[x:x + 3]
            colours.add(px)
            total += 1
            if sum(px) < 200:
                dark += 1
    if len(colours) < 2:
        return f"screenshot is one colour ({w}x{h})"
    if dark < total * 0.002:
        return f"screenshot has almost no dark (text) pixels ({dark} of {total} sampled)"
    return None


# ---- the playground's split against fs ------------------------------------

NODE_SPLIT = """
const {pretokenize} = require(process.argv[1]);
const lines = require("fs").readFileSync(0, "utf8").split("\\n").filter(l => l.trim());
for (const l of lines) console.log(JSON.stringify(pretokenize(JSON.parse(l)).map(p => p.text)));
"""


def split_check(fs_bin, tok_dir):
    cases = os.path.join(ROOT, "tests", "golden", "tokenizer", "cases.jsonl")
    with open(cases, "rb") as f:
        data = f.read()
    js = subprocess.run(["node", "-e", NODE_SPLIT, os.path.join(ROOT, "docs", "js", "tokplay.js")],
                        input=data, capture_output=True, timeout=60)
    if js.returncode:
        print("FAIL split-check: node: " + js.stderr.decode(errors="replace")[-500:])
        return 1
    ids = subprocess.run([fs_bin, "tokenize", "-m", tok_dir, "--jsonl"], input=data, capture_output=True, timeout=60)
    if ids.returncode:
        print("FAIL split-check: fs tokenize: " + ids.stderr.decode(errors="replace")[-500:])
        return 1
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    alphabet, nxt = {}, 256
    for b in range(256):
        printable = 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or b >= 0xAE
        alphabet[chr(b if printable else nxt)] = b
        nxt += 0 if printable else 1
    vocab = tj["model"]["vocab"]
    added = {a["content"]: a["id"] for a in tj["added_tokens"]}
    ranks = {}
    for r, m in enumerate(tj["model"]["merges"]):
        pair = tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1))
        ranks.setdefault(pair, r)
    to_char = {b: c for c, b in alphabet.items()}

    def bpe(piece):
        """ids of one piece: merge the lowest-ranked adjacent pair, leftmost first"""
        if piece in added:
            return [added[piece]]
        syms = [to_char[b] for b in piece.encode("utf-8", "surrogatepass")]
        while len(syms) > 1:
            best = min(range(len(syms) - 1), key=lambda j: (ranks.get((syms[j], syms[j + 1]), 1 << 62), j))
            if (syms[best], syms[best + 1]) not in ranks:
                break
            syms[best:best + 2] = [syms[best] + syms[best + 1]]
        return [vocab[x] for x in syms]

    pieces = js.stdout.decode().rstrip("\n").split("\n")
    idl = ids.stdout.decode().rstrip("\n").split("\n")
    if len(pieces) != len(idl):
        print(f"FAIL split-check: {len(pieces)} lines from the playground, {len(idl)} from fs")
        return 1
    bad = 0
    for k, (pl, il) in enumerate(zip(pieces, idl)):
        mine = [i for p in json.loads(pl) for i in bpe(p)]
        if mine != json.loads(il):
            bad += 1
            if bad <= 5:
                print(f"FAIL split-check: case {k + 1}: playground pieces {json.loads(pl)[:8]} + BPE give "
                      f"{mine[:12]}, fs gives {json.loads(il)[:12]}")
    if bad:
        print(f"FAIL split-check: {bad} of {len(idl)} cases disagree")
        return 1
    print(f"ok   split-check: the playground's split agrees with fs on {len(idl)} golden cases")
    return 0


# ---- the test -------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("chromium")
    ap.add_argument("--shots", help="keep the screenshots in this directory")
    ap.add_argument("--split-check", nargs=2, metavar=("FS_BIN", "TOKENIZER_DIR"))
    a = ap.parse_args()
    if a.split_check:
        return split_check(*a.split_check)

    profile = tempfile.mkdtemp(prefix="fs-docs-chromium.")
    cmd = [a.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1100,1400",
           "--hide-scrollbars", "about:blank"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    problems = []
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if proc.poll() is not None:
                print("e2e_docs: chromium exited at start: " + proc.stderr.read().decode(errors="replace")[-2000:])
                return 1
            if time.monotonic() > DEADLINE - 60:
                print("e2e_docs: chromium did not open its DevTools port")
                return 1
            time.sleep(0.1)
        time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = [t for t in json.load(r) if t.get("type") == "page"]
        if not targets:
            print("e2e_docs: chromium has no page target")
            return 1
        dt = DevTools(targets[0]["webSocketDebuggerUrl"])
        for m in ("Page.enable", "Runtime.enable", "Log.enable"):
            dt.call(m)

        def errors_since():
            out = []
            for ev in dt.events:
                p = ev.get("params", {})
                if ev["method"] == "Runtime.exceptionThrown":
                    d = p.get("exceptionDetails", {})
                    out.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
                elif ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    out.append("console.error: " + " ".join(str(x.get("value", x.get("description", "")))
                                                            for x in p.get("args", [])))
                elif ev["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    e = p["entry"]
                    out.append(f"log error: {e.get('text')} {e.get('url', '')}")
            dt.events.clear()
            return out

        def load(url):
            dt.events.clear()
            dt.call("Page.navigate", url=url)
            dt.wait_event("Page.loadEventFired", 20)

        def evaluate(expr):
            return dt.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value", "")

        n_ok = n_code = 0
        for name, relpath, narrative in site_pages():
            if time.monotonic() > DEADLINE:
                problems.append("time limit reached before every page was checked")
                break
            url = "file://" + os.path.join(ROOT, "docs", relpath)
            load(url + "?test=1")
            title = ""
            for _ in range(50):
                title = evaluate("document.title")
                if title.startswith("FS-DOCS-TEST"):
                    break
                time.sleep(0.1)
            page_problems = []
            if not title.startswith("FS-DOCS-TEST ok"):
                page_problems.append(f"?test=1: {title or 'no FS-DOCS-TEST result in the title'}")
            broken = evaluate(BROKEN_IMG_JS)
            if broken:
                page_problems.append(f"broken image: {broken}")
            for w in WIDTHS:
                dt.call("Emulation.setDeviceMetricsOverride", width=w, height=1400, deviceScaleFactor=1, mobile=w < 600)
                over = evaluate(OVERFLOW_JS)
                if over:
                    page_problems.append(f"horizontal overflow at {w} px: {over}")
            dt.call("Emulation.clearDeviceMetricsOverride")
            # the visible part at reduced scale: enough to tell blank from rendered,
            # and few pixels for the pure-Python PNG decoder
            scale = 0.5 if narrative else 0.25
            shot = base64.b64decode(dt.call("Page.captureScreenshot", format="png",
                                            clip={"x": 0, "y": 0, "width": 1100, "height": 1400, "scale": scale})["data"])
            for err in errors_since():
                page_problems.append(err)
            why = blank_reason(shot)
            if why:
                page_problems.append(why)
            if a.shots:
                out = os.path.join(a.shots, relpath.replace("/", "_")[:-5])
                os.makedirs(a.shots, exist_ok=True)
                with open(out + ".png", "wb") as f:
                    f.write(shot)
                if narrative:
                    size = dt.call("Page.getLayoutMetrics")["cssContentSize"]
                    full = dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                                   clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
                    with open(out + ".full.png", "wb") as f:
                        f.write(base64.b64decode(full["data"]))
            problems += [f"{relpath}: {p}" for p in page_problems]
            if not page_problems:
                if narrative:
                    n_ok += 1
                    print(f"ok   {relpath}  ({title[len('FS-DOCS-TEST ok '):].strip('()')})")
                else:
                    n_code += 1
        print(f"ok   {n_code} source views (docs/code/): no errors, no overflow, not blank")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)

    for p in problems:
        print("FAIL " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
