#!/usr/bin/env python3
"""mock_hub.py - a tiny stand-in for the Hugging Face hub, for tests/e2e_pull.sh.

Serves ROOT/OWNER/NAME/FILE as  /OWNER/NAME/resolve/main/FILE  the way the
hub does (standard library only, loopback only):

  * plain files: 200 with Content-Length and a git-style ETag;
  * *.safetensors (LFS files on the hub): 302 to /lfs/OWNER/NAME/FILE with
    X-Linked-Etag (the sha256 of the bytes) and X-Linked-Size; /lfs/ serves
    the bytes with ETag = the sha256, like the hub's CDN;
  * Range: bytes=N- gives 206 with Content-Range;
  * 404 with X-Error-Code RepoNotFound / EntryNotFound / RevisionNotFound.

Misbehaviour, read from the JSON control file (--control) on every request so
a test can change it between runs without restarting the server:

  {"drop": {"FILE": N}}     send only N bytes of FILE, then close (a cut
                            download; only for requests that start at byte 0)
  {"corrupt": ["FILE"]}     flip one byte of FILE (its sha256 header stays
                            that of the real bytes)
  {"token": "SECRET"}       /resolve/ answers 401 unless
                            "Authorization: Bearer SECRET"
  {"gated": {"OWNER/NAME": "SECRET"}}  that repo only is gated, as the hub
                            does it for a repo behind a licence (Meta's
                            Llama): no token 401, a token of an account
                            that has not accepted it (any other) 403, both
                            with X-Error-Code GatedRepo
  {"ignore_range": true}    answer Range requests with 200 and the whole file
  {"plain": ["FILE"]}       send FILE with no Content-Length (the end of the
                            body is the connection closing) and no ETag, and
                            a .safetensors without the LFS redirect: a server
                            that says neither size nor hash, so a cut body
                            looks complete to the client
  {"garbage": {"FILE": "TEXT"}}  send TEXT instead of FILE's bytes

Every request is logged to --log as "METHOD PATH range=... status=...".
Binds 127.0.0.1 on an ephemeral port, prints the port on stdout, and exits by
itself after --timeout seconds.

Docs: docs/pull.md
"""
import argparse
import hashlib
import http.server
import json
import os
import re
import sys
import threading
import urllib.parse

ARGS = None
LOG_LOCK = threading.Lock()


def control():
    if not ARGS.control:
        return {}
    try:
        with open(ARGS.control) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Hub(http.server.BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms stalls

    def log_message(self, fmt, *args):  # quiet: we keep our own log
        pass

    def log(self, status):
        if not ARGS.log:
            return
        with LOG_LOCK, open(ARGS.log, "a") as f:
            f.write("%s %s range=%s auth=%s status=%d\n" % (
                self.command, self.path, self.headers.get("Range", "-"),
                "yes" if self.headers.get("Authorization") else "no", status))

    def fail(self, status, code, message):
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.log(status)

    def do_HEAD(self):
        self.handle_any()

    def do_GET(self):
        self.handle_any()

    def handle_any(self):
        ctl = control()
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        m = re.fullmatch(r"/([^/]+)/([^/]+)/resolve/([^/]+)/([^/]+)", path)
        if m:
            owner, name, rev, fname = m.groups()
            token = ctl.get("token")
            if token and self.headers.get("Authorization") != "Bearer " + token:
                return self.fail(401, "GatedRepo", "Access to this model is restricted")
            gate = ctl.get("gated", {}).get(owner + "/" + name)
            auth = self.headers.get("Authorization")
            if gate and auth is None:
                return self.fail(401, "GatedRepo", "Access to model %s/%s is restricted. You must have access to it "
                                 "and be authenticated to access it. Please log in." % (owner, name))
            if gate and auth != "Bearer " + gate:
                return self.fail(403, "GatedRepo", "Access to model %s/%s is restricted and you are not in the "
                                 "authorized list." % (owner, name))
            repo = os.path.join(ARGS.root, owner, name)
            if not os.path.isdir(repo) or ".." in (owner, name, fname):
                return self.fail(404, "RepoNotFound", "Repository not found")
            if rev != "main":
                return self.fail(404, "RevisionNotFound", "Invalid rev id: " + rev)
            fpath = os.path.join(repo, fname)
            if not os.path.isfile(fpath):
                return self.fail(404, "EntryNotFound", "Entry not found")
            if fname.endswith(".safetensors") and fname not in ctl.get("plain", []):
                sha = sha256_of(fpath)
                self.send_response(302)
                self.send_header("Location", "/lfs/%s/%s/%s" % (owner, name, fname))
                self.send_header("X-Linked-Etag", '"%s"' % sha)
                self.send_header("X-Linked-Size", str(os.path.getsize(fpath)))
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.log(302)
                return
            etag = hashlib.sha1(open(fpath, "rb").read()).hexdigest()
            return self.send_file(fpath, fname, '"%s"' % etag, ctl)
        m = re.fullmatch(r"/lfs/([^/]+)/([^/]+)/([^/]+)", path)
        if m and ".." not in m.groups():
            fpath = os.path.join(ARGS.root, *m.groups())
            if os.path.isfile(fpath):
                return self.send_file(fpath, m.group(3), '"%s"' % sha256_of(fpath), ctl)
        return self.fail(404, "EntryNotFound", "Not found")

    def send_file(self, fpath, fname, etag, ctl):
        with open(fpath, "rb") as f:
            data = f.read()
        if fname in ctl.get("corrupt", []) and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        if fname in ctl.get("garbage", {}):
            data = ctl["garbage"][fname].encode()
        plain = fname in ctl.get("plain", [])
        total = len(data)
        start = 0
        rng = self.headers.get("Range")
        if rng and not ctl.get("ignore_range"):
            m = re.fullmatch(r"bytes=(\d+)-", rng.strip())
            if not m or (total and int(m.group(1)) >= total):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % total)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.log(416)
                return
            start = int(m.group(1))
        status = 206 if start or (rng and not ctl.get("ignore_range")) else 200
        self.send_response(status)
        if not plain:
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(total - start))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%s" % (start, total - 1, "*" if plain else total))
        self.end_headers()
        self.log(status)
        if self.command == "HEAD":
            return
        body = data[start:]
        drop = ctl.get("drop", {}).get(fname)
        if drop is not None and start == 0:
            body = body[:drop]
            self.close_connection = True
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a test of a failing download): fine


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True, help="directory holding OWNER/NAME/FILE")
    p.add_argument("--control", help="JSON control file (re-read on every request)")
    p.add_argument("--log", help="append one line per request here")
    p.add_argument("--timeout", type=float, default=60, help="exit after this many seconds")
    ARGS = p.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    timer = threading.Timer(ARGS.timeout, server.shutdown)
    timer.daemon = True
    timer.start()
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
