#!/bin/sh
# e2e_serve.sh - `fs serve` end to end on the shipped tiny model (no
# network), driven with curl and python3's standard library.
#
# 1. Greedy output through the server equals `fs generate` (ids and text):
#    alone, and while three other streams run, on cpu-ref (the batched
#    step is bit for bit the separate evals there) and on cpu.
# 2. The API's shapes: /health, /v1/models, chat and completions, streamed
#    (raw SSE through curl -N: the role first, [DONE] last, the usage
#    chunk) and not, logprobs, token_ids, the prefix cache's cached_tokens.
# 3. Errors: 400 naming the field (n, temperature, bad JSON, not UTF-8,
#    a prompt over the context with its token count), 401 without the
#    key, 404, 405, 413 over --max-body, 503 with Retry-After when the
#    queue is full.
# 4. Robustness: a request whose head or body never finishes does not
#    hold up another client; a client that disconnects mid-stream frees
#    its slot; SIGTERM ends a running stream with its final event and
#    [DONE], and the server exits 0.
FS_BIN=${FS_BIN:-build/fs}
command -v curl >/dev/null || { echo "SKIP e2e_serve: curl not found"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP e2e_serve: python3 not found"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fs-e2e-serve.XXXXXX") || exit 1
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
M=models/tiny
KEY=sekrit

# start NAME ARGS...: fs serve on a free port; sets URL and PID
start() {
    name=$1; shift
    "$FS_BIN" serve -m "$M" --port 0 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PID=$!
    PIDS="$PIDS $PID"
    i=0
    while ! grep -q "listening on" "$TMP/$name.out" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 300 ] || ! kill -0 $PID 2>/dev/null; then
            echo "FAIL: fs serve $* did not start: $(cat "$TMP/$name.err")"; exit 1
        fi
        sleep 0.1
    done
    URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$TMP/$name.out")
}

fail=0
P1="The old house at the end of the lane"
P2="Once upon a time"
for backend in cpu-ref cpu; do
    "$FS_BIN" generate -m "$M" --backend $backend -p "$P1" -n 24 --temp 0 --json >"$TMP/gen1.$backend" 2>"$TMP/err" ||
        { echo "FAIL: fs generate: $(cat "$TMP/err")"; exit 1; }
    "$FS_BIN" generate -m "$M" --backend $backend -p "$P2" -n 24 --temp 0 --json >"$TMP/gen2.$backend" 2>"$TMP/err" ||
        { echo "FAIL: fs generate: $(cat "$TMP/err")"; exit 1; }
done

start ref --backend cpu-ref --parallel 4 -c 256 --api-key $KEY
REF_URL=$URL
start main --backend cpu --parallel 4 -c 256 --api-key $KEY --max-body 65536
MAIN_URL=$URL; MAIN_PID=$PID
start small --parallel 1 --queue 1 -c 2048
SMALL_URL=$URL; SMALL_PID=$PID

# --- raw SSE through curl ---------------------------------------------------
curl -sN -H "Authorization: Bearer $KEY" "$MAIN_URL/v1/chat/completions" \
    -d '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6, "stream": true,
         "stream_options": {"include_usage": true}}' >"$TMP/sse" || { echo "FAIL: curl stream"; fail=1; }
head -c 6 "$TMP/sse" | grep -q '^data: ' || { echo "FAIL: the stream does not start with 'data: '"; fail=1; }
[ "$(grep -c '^data: ' "$TMP/sse")" -ge 4 ] || { echo "FAIL: fewer than 4 events: $(cat "$TMP/sse")"; fail=1; }
[ "$(grep '^data: ' "$TMP/sse" | tail -n 1)" = "data: [DONE]" ] || { echo "FAIL: the stream does not end with [DONE]"; fail=1; }
head -n 1 "$TMP/sse" | grep -q '"delta": {"role": "assistant"' || { echo "FAIL: the first event has no role"; fail=1; }
grep '^data: {' "$TMP/sse" | tail -n 1 | grep -q '"choices": \[\], "usage": {"prompt_tokens"' ||
    { echo "FAIL: no usage chunk before [DONE]"; fail=1; }
curl -s -D "$TMP/h" -o /dev/null -H "Authorization: Bearer $KEY" "$MAIN_URL/v1/completions" \
    -d '{"prompt": "x", "max_tokens": 2, "stream": true}'
grep -qi '^content-type: text/event-stream' "$TMP/h" || { echo "FAIL: stream content type: $(cat "$TMP/h")"; fail=1; }
grep -qi '^transfer-encoding: chunked' "$TMP/h" || { echo "FAIL: stream is not chunked: $(cat "$TMP/h")"; fail=1; }
timeout 60 curl -s --http1.0 -H "Authorization: Bearer $KEY" "$MAIN_URL/v1/completions" \
    -d '{"prompt": "x", "max_tokens": 3, "stream": true}' >"$TMP/h10" ||
    { echo "FAIL: an HTTP/1.0 stream did not end"; fail=1; }
[ "$(grep '^data: ' "$TMP/h10" | tail -n 1)" = "data: [DONE]" ] || { echo "FAIL: HTTP/1.0 stream: $(cat "$TMP/h10")"; fail=1; }
curl -s -I "$MAIN_URL/health" >"$TMP/head" && grep -q '^HTTP/1.1 200' "$TMP/head" && grep -qi '^content-length: [1-9]' "$TMP/head" ||
    { echo "FAIL: HEAD /health: $(cat "$TMP/head")"; fail=1; }
code=$(curl -s -o "$TMP/body" -w '%{http_code}' "$MAIN_URL/v1/models")
[ "$code" = 401 ] && grep -q '"invalid_api_key"' "$TMP/body" || { echo "FAIL: no key: $code $(cat "$TMP/body")"; fail=1; }
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer wrong" "$MAIN_URL/v1/models")
[ "$code" = 401 ] || { echo "FAIL: wrong key: $code"; fail=1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "$MAIN_URL/health")
[ "$code" = 200 ] || { echo "FAIL: /health needs no key, got $code"; fail=1; }
head -c 70000 /dev/zero | tr '\0' 'a' >"$TMP/big"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $KEY" --data-binary @"$TMP/big" \
    "$MAIN_URL/v1/completions")
[ "$code" = 413 ] || { echo "FAIL: a body over --max-body: $code $(cat "$TMP/body")"; fail=1; }

# --- the rest in python ------------------------------------------------------
python3 - "$TMP" "$REF_URL" "$MAIN_URL" "$SMALL_URL" "$KEY" "$P1" "$P2" <<'EOF' || fail=1
import http.client, json, os, socket, sys, threading, time, urllib.parse
tmp, ref_url, main_url, small_url, key, p1, p2 = sys.argv[1:8]
bad = 0
def check(ok, msg):
    global bad
    if not ok:
        print("FAIL:", msg)
        bad = 1

def request(url, method, path, body=None, auth=True, timeout=60):
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    if auth:
        h["Authorization"] = "Bearer " + key
    c.request(method, path, body=json.dumps(body) if isinstance(body, dict) else body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        return r.status, json.loads(data), r
    except ValueError:
        return r.status, data, r

def stream(url, body, auth=True, on_event=None):
    """POST a streamed request; the parsed events (without [DONE]) and whether [DONE] came."""
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    h = {"Content-Type": "application/json", "Authorization": "Bearer " + key}
    c.request("POST", body.pop("_path"), body=json.dumps(dict(body, stream=True)), headers=h)
    r = c.getresponse()
    events, done, buf = [], False, b""
    while True:
        line = r.fp.readline()
        if not line:
            break
        line = line.strip()
        if line == b"data: [DONE]":
            done = True
            break
        elif line.startswith(b"data: "):
            events.append(json.loads(line[6:]))
            if on_event and on_event(events[-1], c):
                return events, done
    c.close()
    return events, done

def hang_up(ev, conn):
    conn.sock.shutdown(socket.SHUT_RDWR); conn.close()
    return True

# 1. greedy equals fs generate, alone and with three other streams running
def gen(backend, n):
    with open(os.path.join(tmp, f"gen{n}.{backend}")) as f:
        return json.load(f)
for backend, url in (("cpu-ref", ref_url), ("cpu", main_url)):
    want1, want2 = gen(backend, 1), gen(backend, 2)
    st, j, _ = request(url, "POST", "/v1/completions",
                       {"prompt": p1, "max_tokens": 24, "temperature": 0, "return_token_ids": True})
    check(st == 200, f"{backend}: completion status {st}: {j}")
    if st == 200:
        ch = j["choices"][0]
        check(ch["token_ids"] == want1["ids"], f"{backend} alone: ids {ch['token_ids']} != fs generate's {want1['ids']}")
        check(ch["text"] == want1["text"], f"{backend} alone: text {ch['text']!r} != {want1['text']!r}")
    results = {}
    def run(k, prompt):
        ev, done = stream(url, {"_path": "/v1/completions", "prompt": prompt, "max_tokens": 24, "temperature": 0,
                                "return_token_ids": True})
        results[k] = ([i for e in ev for c in e["choices"] for i in c.get("token_ids", [])],
                      "".join(c.get("text", "") for e in ev for c in e["choices"]), done)
    ts = [threading.Thread(target=run, args=(k, p)) for k, p in ((0, p1), (1, p2), (2, p1), (3, p2))]
    for t in ts: t.start()
    for t in ts: t.join()
    for k, want in ((0, want1), (1, want2), (2, want1), (3, want2)):
        ids, text, done = results.get(k, ([], "", False))
        check(done, f"{backend} batched stream {k}: no [DONE]")
        check(ids == want["ids"], f"{backend} batched stream {k}: ids {ids} != fs generate's {want['ids']}")
        check(text == want["text"], f"{backend} batched stream {k}: text {text!r} != {want['text']!r}")

# 2. shapes
st, j, _ = request(main_url, "GET", "/health", auth=False)
check(st == 200 and j.get("status") == "ok", f"/health: {st} {j}")
st, j, _ = request(main_url, "GET", "/v1/models")
check(st == 200 and j["object"] == "list" and j["data"][0]["id"] == "tiny", f"/v1/models: {j}")
msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me about the sea."}]
# thinking on (the tiny model's default is off): Qwen3's template then renders
# this reply in the next turn exactly as it was generated, so the whole
# earlier prompt is a cached prefix (off, it drops the reply's empty think block)
THINK = {"enable_thinking": True}
st, j, _ = request(main_url, "POST", "/v1/chat/completions",
                   {"messages": msgs, "max_tokens": 8, "temperature": 0, "logprobs": True, "top_logprobs": 3,
                    "chat_template_kwargs": THINK})
check(st == 200, f"chat: {st} {j}")
if st == 200:
    ch = j["choices"][0]
    check(j["object"] == "chat.completion" and ch["message"]["role"] == "assistant", f"chat shape: {j}")
    check(ch["finish_reason"] in ("stop", "length"), f"finish_reason {ch['finish_reason']}")
    lp = ch["logprobs"]["content"]
    check(len(lp) == j["usage"]["completion_tokens"], "one logprobs entry per token")
    check(all(len(e["top_logprobs"]) == 3 and e["logprob"] <= 0 for e in lp), f"top_logprobs: {lp[:1]}")
    check(all(e["top_logprobs"][0]["logprob"] >= e["logprob"] for e in lp), "the picked token beats the top one")
    u = j["usage"]
    check(u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], f"usage: {u}")
    # the same conversation, one turn further: the prefix is in a slot's cache
    msgs2 = msgs + [{"role": "assistant", "content": ch["message"]["content"]}, {"role": "user", "content": "More."}]
    st, j2, _ = request(main_url, "POST", "/v1/chat/completions",
                        {"messages": msgs2, "max_tokens": 4, "chat_template_kwargs": THINK})
    cached = j2["usage"]["prompt_tokens_details"]["cached_tokens"] if st == 200 else -1
    check(cached >= u["prompt_tokens"] - 1, f"prefix cache: {cached} cached of the earlier {u['prompt_tokens']}")
    # no chat_template_kwargs: the model's default thinking mode (models/tiny: off, the empty think block)
    pt = {}
    for name, extra in (("default", {}), ("off", {"chat_template_kwargs": {"enable_thinking": False}})):
        st, jd, _ = request(main_url, "POST", "/v1/chat/completions", dict(messages=msgs, max_tokens=1, **extra))
        pt[name] = jd["usage"]["prompt_tokens"] if st == 200 else -1
    check(pt["default"] == pt["off"] and pt["off"] > u["prompt_tokens"],
          f"default thinking mode: prompt {pt['default']} tokens, off {pt['off']}, on {u['prompt_tokens']}")
st, j, _ = request(main_url, "POST", "/v1/completions", {"prompt": p2, "max_tokens": 5, "logprobs": 2, "temperature": 0})
check(st == 200 and len(j["choices"][0]["logprobs"]["tokens"]) == 5, f"completion logprobs: {j}")
st, j, _ = request(main_url, "POST", "/v1/completions", {"prompt": p2, "max_tokens": 40, "stop": [" the"], "temperature": 0})
check(st == 200 and " the" not in j["choices"][0]["text"], f"stop string: {j}")

# 3. errors
def err(body, status, path="/v1/chat/completions", param=None, contains=""):
    st, j, r = request(main_url, "POST", path, body)
    ok = st == status and isinstance(j, dict) and "error" in j and contains in j["error"]["message"]
    if param: ok = ok and j["error"]["param"] == param
    check(ok, f"{str(body)[:60]}: expected {status} ({param}), got {st} {j}")
    return r
one = [{"role": "user", "content": "hi"}]
err({"messages": one, "n": 2}, 400, param="n")
err({"messages": one, "temperature": 3}, 400, param="temperature")
err({"messages": one, "top_logprobs": 2}, 400, param="top_logprobs")
err({"messages": one, "tools": [{"type": "function"}]}, 400, param="tools")
err({"messages": []}, 400, param="messages")
err({"messages": [{"role": "wizard", "content": "x"}]}, 400, param="messages")
err(b'{"messages": [', 400, contains="JSON")
err(b'{"prompt": "\xff\xfe"}', 400, path="/v1/completions", contains="UTF-8")
err({"prompt": "word " * 400}, 400, path="/v1/completions", param="prompt", contains="context is 256 tokens")
err({"prompt": ""}, 400, path="/v1/completions", param="prompt")
st, j, _ = request(main_url, "GET", "/v1/nothing")
check(st == 404 and "error" in j, f"404: {st} {j}")
st, j, _ = request(main_url, "GET", "/v1/chat/completions")
check(st == 405, f"405: {st}")
st, j, _ = request(main_url, "POST", "/v1/chat/completions", {"messages": one, "unknown_field": {"x": 1}, "max_tokens": 1})
check(st == 200, f"an unknown field is ignored: {st} {j}")

# queue full: one slot busy (until we hang up), one request waiting, the next one 503.
# The tiny model can finish the holder's stream (EOS, or 2000 tokens) before
# the waiter is queued: the 503 is checked only in a try where the holder and
# the waiter were both still running when the answer came; a lost race tries
# again, and five lost races are a failure.
def queue_full_try():
    release = threading.Event()
    def hold(ev, conn):
        if release.is_set():
            return hang_up(ev, conn)
    holder = threading.Thread(target=stream, args=(small_url, {"_path": "/v1/completions", "prompt": p1, "max_tokens": 2000},),
                              kwargs={"on_event": hold})
    holder.start()
    busy = queued = False
    for _ in range(400):
        st, j, _ = request(small_url, "GET", "/health", auth=False)
        if j["slots_processing"] == 1: busy = True; break
        time.sleep(0.05)
    waiter = threading.Thread(target=request, args=(small_url, "POST", "/v1/completions", {"prompt": p2, "max_tokens": 2}))
    waiter.start()
    for _ in range(400):
        st, j, _ = request(small_url, "GET", "/health", auth=False)
        if j["queued"] == 1: queued = True; break
        time.sleep(0.05)
    st, j, r = request(small_url, "POST", "/v1/completions", {"prompt": p2, "max_tokens": 1})
    held = busy and queued and holder.is_alive() and waiter.is_alive()
    release.set()
    holder.join(); waiter.join()
    return held, st, j, r
for attempt in range(5):
    held, st, j, r = queue_full_try()
    if held:
        check(st == 503 and r.getheader("Retry-After") == "1", f"queue full: {st} {j}")
        break
    print(f"e2e_serve: queue-full try {attempt + 1}: the holder or the waiter finished first; again")
else:
    check(False, "queue full: five tries never held one slot busy with one request queued")

# 4. robustness: half a head and half a body never finish; another client is served meanwhile
u = urllib.parse.urlparse(main_url)
slow1 = socket.create_connection((u.hostname, u.port)); slow1.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
slow2 = socket.create_connection((u.hostname, u.port))
slow2.sendall(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\nAuthorization: Bearer " + key.encode() + b"\r\n\r\n{\"pro")
t0 = time.time()
st, j, _ = request(main_url, "POST", "/v1/completions", {"prompt": p2, "max_tokens": 3}, timeout=20)
check(st == 200, f"a request next to two unfinished ones: {st} {j}")
slow1.close(); slow2.close()
# garbage is a 400, not a crash
g = socket.create_connection((u.hostname, u.port)); g.sendall(b"\x00\x01GARBAGE\r\n\r\n")
check(g.recv(100).startswith(b"HTTP/1.1 400"), "garbage gets a 400"); g.close()

# a client that disconnects mid-stream frees its slot
stream(main_url, {"_path": "/v1/completions", "prompt": p1, "max_tokens": 250}, on_event=hang_up)
for _ in range(200):
    st, j, _ = request(main_url, "GET", "/health", auth=False)
    if j["slots_processing"] == 0: break
    time.sleep(0.05)
check(j["slots_processing"] == 0, f"the disconnected stream still holds a slot: {j}")
sys.exit(bad)
EOF

# SIGTERM during a stream: the stream ends cleanly, the server exits 0
curl -sN "$SMALL_URL/v1/completions" -d '{"prompt": "Once", "max_tokens": 250, "temperature": 0, "stream": true}' \
    >"$TMP/term" &
CURL=$!
events() { cat "$TMP/term" 2>/dev/null | grep -c '^data: '; }
i=0; while [ "$(events)" -lt 2 ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
kill -TERM $SMALL_PID
wait $SMALL_PID; rc=$?
wait $CURL
[ $rc -eq 0 ] || { echo "FAIL: fs serve exited $rc after SIGTERM: $(cat "$TMP/small.err")"; fail=1; }
[ "$(tail -n 2 "$TMP/term" | head -n 1)" = "data: [DONE]" ] || { echo "FAIL: no [DONE] after SIGTERM: $(tail -c 300 "$TMP/term")"; fail=1; }
grep -q '"finish_reason": "cancelled"' "$TMP/term" || { echo "FAIL: no final event after SIGTERM"; fail=1; }

[ $fail -eq 0 ] && echo "e2e_serve: ok"
exit $fail
