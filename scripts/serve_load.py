#!/usr/bin/env python3
"""serve_load.py - load an fs serve (or any OpenAI-compatible server) with
N concurrent clients and report time to first token and throughput.
Standard library only; localhost only; every run is bounded in requests
and in time, and stops by itself.

Modes (each prints one JSON object per measurement on stdout, a readable
summary on stderr):

  throughput  --clients 1,2,4,8 --requests R --max-tokens K
              each client sends R streamed completions back to back; per
              concurrency: aggregate tok/s (completion tokens / wall time),
              p50/p99 TTFT, and each request's own decode tok/s
  ttft        --busy 7 --probes P
              P short chat messages on an idle server, then P more while
              BUSY long streams decode: p50 TTFT of both and their ratio
  soak        --requests 10000 --clients C
              a mix: a third streamed, a third not, a third disconnecting
              after the first event; the server's RSS after the first 100
              requests and at the end (needs --pid or --spawn)

The server: --url URL of one already running (--pid PID for its RSS), or
--spawn "fs serve -m DIR ..." to start one on a free port and stop it at
the end (SIGTERM).

  python3 scripts/serve_load.py --spawn "./fs serve -m /tmp/q06-q4 -t 2 --parallel 8 -c 512" \\
      throughput --clients 1,2,4,8 --requests 2 --max-tokens 64

Docs: docs/serve.md
"""
import argparse
import http.client
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

PROMPTS = [
    "Once upon a time", "The history of the city begins", "In the morning the ship", "She opened the letter and",
    "The rules of the game are", "A list of things to remember:", "When the rain stopped, the", "Dear friend,",
]


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Server:
    def __init__(self, args):
        self.proc = None
        self.pid = args.pid
        self.url = args.url
        if args.spawn:
            cmd = shlex.split(args.spawn) + ["--port", "0"]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
            self.pid = self.proc.pid
            deadline = time.time() + 300
            while time.time() < deadline:
                line = self.proc.stdout.readline()
                if not line:
                    break
                m = re.search(r"listening on (http\S+)", line)
                if m:
                    self.url = m.group(1)
                    break
            if not self.url:
                raise SystemExit("serve_load: the server did not start")
        if not self.url:
            raise SystemExit("serve_load: give --url or --spawn")
        u = urllib.parse.urlparse(self.url)
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("serve_load: localhost only")
        self.host, self.port = u.hostname, u.port

    def rss_mib(self):
        if not self.pid:
            return None
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return None

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def one_request(srv, prompt, max_tokens, mode="stream", deadline=None):
    """One completion. Returns (ttft_s or None, completion tokens, seconds, decode tok/s from timings)."""
    c = http.client.HTTPConnection(srv.host, srv.port, timeout=300)
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": mode != "whole",
            "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    c.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        data = r.read()
        c.close()
        raise RuntimeError(f"HTTP {r.status}: {data[:200]!r}")
    ttft, tokens, tps = None, 0, None
    if mode == "whole":
        j = json.loads(r.read())
        ttft = time.perf_counter() - t0
        tokens = j["usage"]["completion_tokens"]
        tps = j.get("timings", {}).get("predicted_per_second")
    else:
        while True:
            line = r.fp.readline()
            if not line:
                break
            line = line.strip()
            if line == b"data: [DONE]":
                break
            if not line.startswith(b"data: "):
                continue
            ev = json.loads(line[6:])
            if ev.get("choices") and ev["choices"][0].get("text") and ttft is None:
                ttft = time.perf_counter() - t0
                if mode == "disconnect":
                    break
            if ev.get("usage"):
                tokens = ev["usage"]["completion_tokens"]
            if ev.get("timings"):
                tps = ev["timings"].get("predicted_per_second")
            if deadline and time.time() > deadline:
                break
    c.close()
    return ttft, tokens, time.perf_counter() - t0, tps


def run_clients(srv, n_clients, n_requests, max_tokens, mode_of=lambda i: "stream", deadline=None):
    results, errors = [], []
    lock = threading.Lock()
    counter = [0]

    def client(k):
        while True:
            with lock:
                i = counter[0]
                if i >= n_requests or (deadline and time.time() > deadline):
                    return
                counter[0] += 1
            try:
                res = one_request(srv, PROMPTS[i % len(PROMPTS)], max_tokens, mode_of(i))
                with lock:
                    results.append(res)
            except Exception as e:  # noqa: BLE001 - a load test reports, it does not stop
                with lock:
                    errors.append(str(e))

    t0 = time.perf_counter()
    ts = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results, errors, time.perf_counter() - t0


def mode_throughput(srv, args):
    for n in [int(x) for x in args.clients.split(",")]:
        res, errs, wall = run_clients(srv, n, n * args.requests, args.max_tokens,
                                      deadline=time.time() + args.max_seconds)
        toks = sum(r[1] for r in res)
        ttfts = [r[0] for r in res if r[0] is not None]
        per = [r[3] for r in res if r[3]]
        out = {"mode": "throughput", "clients": n, "requests": len(res), "errors": len(errs),
               "completion_tokens": toks, "wall_s": round(wall, 3), "aggregate_tok_s": round(toks / wall, 2),
               "ttft_p50_ms": round(1e3 * percentile(ttfts, 50), 1), "ttft_p99_ms": round(1e3 * percentile(ttfts, 99), 1),
               "request_decode_tok_s_p50": round(percentile(per, 50), 2)}
        print(json.dumps(out), flush=True)
        print(f"{n:3d} clients: {out['aggregate_tok_s']:8.1f} tok/s aggregate, TTFT p50 {out['ttft_p50_ms']} ms "
              f"p99 {out['ttft_p99_ms']} ms, {len(errs)} errors", file=sys.stderr)


PROBES = ["Hello, who are you?", "What is a prime number?", "Name three rivers.", "Why is the sky blue?",
          "How do birds fly?", "Tell me a short joke.", "What is rain made of?", "Who wrote Hamlet?"]


def chat_ttft(srv, k):
    """Time to the first generated token of a short chat message (its one token, max_tokens 1). The
    messages differ from probe to probe, so each is a new prompt, not one the prefix cache holds."""
    c = http.client.HTTPConnection(srv.host, srv.port, timeout=300)
    text = f"{PROBES[k % len(PROBES)]} ({k})"
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": 1, "stream": True}
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    ttft = None
    while ttft is None:
        line = r.fp.readline()
        if not line or line.strip() == b"data: [DONE]":
            break
        if line.startswith(b"data: ") and b'"role"' not in line:  # the first event after the role's
            ttft = time.perf_counter() - t0
    c.close()
    return ttft


def mode_ttft(srv, args):
    chat_ttft(srv, -1)  # the first request of a fresh server pays its page faults: not counted
    idle = [chat_ttft(srv, k) for k in range(args.probes)]
    stop = time.time() + args.max_seconds
    busy_threads = [threading.Thread(target=one_request, args=(srv, PROMPTS[k % len(PROMPTS)], args.busy_tokens, "stream", stop))
                    for k in range(args.busy)]
    for t in busy_threads:
        t.start()
    time.sleep(args.settle)  # let the long streams finish their prefill and decode
    busy = []
    for k in range(args.probes):
        busy.append(chat_ttft(srv, args.probes + k))
        time.sleep(0.05)
    for t in busy_threads:
        t.join()
    out = {"mode": "ttft", "busy_streams": args.busy, "probes": args.probes,
           "idle_ttft_p50_ms": round(1e3 * percentile(idle, 50), 1), "busy_ttft_p50_ms": round(1e3 * percentile(busy, 50), 1),
           "busy_ttft_p99_ms": round(1e3 * percentile(busy, 99), 1)}
    out["ratio_p50"] = round(out["busy_ttft_p50_ms"] / out["idle_ttft_p50_ms"], 2)
    print(json.dumps(out), flush=True)
    print(f"TTFT idle p50 {out['idle_ttft_p50_ms']} ms, with {args.busy} streams decoding p50 {out['busy_ttft_p50_ms']} ms "
          f"(x{out['ratio_p50']})", file=sys.stderr)


def mode_soak(srv, args):
    modes = ("stream", "whole", "disconnect")
    first, _, _ = run_clients(srv, args.clients, 100, args.max_tokens, lambda i: modes[i % 3])
    time.sleep(0.5)
    rss_100 = srv.rss_mib()
    t0 = time.time()
    res, errs, wall = run_clients(srv, args.clients, args.requests - 100, args.max_tokens, lambda i: modes[i % 3],
                                  deadline=time.time() + args.max_seconds)
    time.sleep(0.5)
    rss_end = srv.rss_mib()
    out = {"mode": "soak", "requests": 100 + len(res), "errors": len(errs), "wall_s": round(time.time() - t0, 1),
           "rss_after_100_mib": rss_100, "rss_at_end_mib": rss_end,
           "rss_growth_pct": round(100 * (rss_end - rss_100) / rss_100, 2) if rss_100 else None}
    print(json.dumps(out), flush=True)
    print(f"{out['requests']} requests ({len(errs)} errors): RSS {rss_100:.1f} MiB after 100, {rss_end:.1f} MiB at the end "
          f"({out['rss_growth_pct']:+.2f}%)", file=sys.stderr)
    if errs:
        print("first errors:", errs[:3], file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--spawn", help="a server command line to start (--port 0 is added)")
    ap.add_argument("--max-seconds", type=float, default=600, help="stop sending after this long (default 600)")
    sub = ap.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--clients", default="1,2,4,8")
    t.add_argument("--requests", type=int, default=2, help="requests per client (default 2)")
    t.add_argument("--max-tokens", type=int, default=64)
    f = sub.add_parser("ttft")
    f.add_argument("--busy", type=int, default=7)
    f.add_argument("--busy-tokens", type=int, default=400)
    f.add_argument("--probes", type=int, default=10)
    f.add_argument("--settle", type=float, default=3.0)
    s = sub.add_parser("soak")
    s.add_argument("--requests", type=int, default=10000)
    s.add_argument("--clients", type=int, default=4)
    s.add_argument("--max-tokens", type=int, default=8)
    args = ap.parse_args()
    srv = Server(args)
    try:
        {"throughput": mode_throughput, "ttft": mode_ttft, "soak": mode_soak}[args.mode](srv, args)
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
