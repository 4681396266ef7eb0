#!/bin/sh
# e2e_bench.sh - `fs bench` and `fs perplexity` on small random checkpoints
# (tests/data/gen_tiny.json: V 151936, H 64, L 2, with the real tokenizer).
#
# 1. fs bench: the table has one row per test with positive tok/s and
#    min <= median <= max, a roofline line per tg test; --csv has the header
#    and one well-formed row per test; bytes per token equals the sum of
#    the checkpoint's matrices (read from the safetensors header) plus one
#    embedding row plus the KV cache at the run's mean context.
# 2. fs perplexity on text: ppl >= 1 and exp(loss) = ppl; a model against
#    itself has KL 0 and 100% top-1 agreement; against another seed KL > 0
#    and the base ppl equals that model's own ppl; --weights q8_0 against
#    --kl-base-weights bf16 gives a small non-zero KL. fs bench --weights
#    q8_0 counts the Q8_0 bytes (34 per 32 weights) in bytes per token.
# 3. The ppl is computed right: for short id sequences and several window
#    lengths, python (standard library) rebuilds the windows from the
#    definition, gets each position's logits from `fs logits --dump-logits`
#    on the prefix (fs_session_eval, not the debug path perplexity uses),
#    computes -log softmax in double and compares the loss and every
#    window's loss.
#    --profile: a table per test, every op with its calls per token, the
#    shares adding up to 100%, the q/k/v bytes per decoded token as the
#    safetensors header counts them; build/tools/bench_batch --profile's
#    table for 2 sessions a step (L / 2 layer calls a token, the weights
#    read once for both).
# 4. Bad flags -> exit 1; bad input -> exit 2; one "fs CMD:" line; a bad
#    FS_ATTN_AHEAD -> exit 2 naming it, FS_ATTN_AHEAD=0 shown in the
#    backend line.
# Docs: docs/bench.md
FS_BIN=${FS_BIN:-build/fs}
FS_TOKENIZER_DIR=${FS_TOKENIZER_DIR:-models/qwen3-tokenizer}
if [ ! -f "$FS_TOKENIZER_DIR/tokenizer.json" ]; then
    echo "SKIP e2e_bench: $FS_TOKENIZER_DIR/tokenizer.json not found (make tokenizer fetches it with npm)"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fs-e2e-bench.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fail=0
die() { echo "FAIL: $*"; fail=1; }
M="$TMP/m"; M2="$TMP/m2"

"$FS_BIN" mkmodel --config tests/data/gen_tiny.json --tokenizer "$FS_TOKENIZER_DIR" --out "$M" --seed 5 \
    >/dev/null 2>"$TMP/err" || { echo "FAIL: mkmodel: $(cat "$TMP/err")"; exit 1; }
"$FS_BIN" mkmodel --config tests/data/gen_tiny.json --tokenizer "$FS_TOKENIZER_DIR" --out "$M2" --seed 6 \
    >/dev/null 2>"$TMP/err" || { echo "FAIL: mkmodel 2: $(cat "$TMP/err")"; exit 1; }

# --- 1. fs bench ------------------------------------------------------------
"$FS_BIN" bench -m "$M" --pp 8,16 --tg 4 --depth 0,8 -r 3 -t 1 --bw-mib 64 >"$TMP/table" 2>"$TMP/err" \
    || die "bench table: $(cat "$TMP/err")"
"$FS_BIN" bench -m "$M" --pp 8 --tg 4,6 --depth 0,8 -r 2 --warmup 0 --bw-mib 64 --csv >"$TMP/csv" 2>"$TMP/err" \
    || die "bench csv: $(cat "$TMP/err")"
"$FS_BIN" bench -m "$M" --pp 0 --tg 3 -r 1 --bw-mib 0 >"$TMP/nobw" 2>"$TMP/err" \
    || die "bench without bandwidth: $(cat "$TMP/err")"
"$FS_BIN" bench -m "$M" --pp 0 --tg 3 -r 1 --bw-mib 0 --weights q8_0 --csv >"$TMP/q8" 2>"$TMP/err" \
    || die "bench --weights q8_0: $(cat "$TMP/err")"
"$FS_BIN" bench -m "$M" --pp 0 --tg 3 -r 1 --bw-mib 0 --kv f32 --csv >"$TMP/kvf32" 2>"$TMP/err" \
    || die "bench --kv f32: $(cat "$TMP/err")"
"$FS_BIN" bench -m "$M" --pp 8 --tg 4 -r 1 --bw-mib 0 --profile >"$TMP/prof" 2>"$TMP/err" \
    || die "bench --profile: $(cat "$TMP/err")"
BATCH="$(dirname "$FS_BIN")/tools/bench_batch"
"$BATCH" -m "$M" -n 2 --steps 3 --depth 4 -r 1 --profile >"$TMP/bprof" 2>"$TMP/err" \
    || die "bench_batch --profile: $(cat "$TMP/err")"
# --profile: a table per test; every op of the pass with its calls per
# token (L for the layer ops), shares that add up to 100% with "the rest",
# and the q/k/v weights read per decoded token as the header counts them
python3 - "$TMP" "$M" <<'EOF' || fail=1
import json, re, struct, sys
tmp, mdir = sys.argv[1], sys.argv[2]
text = open(tmp + "/prof").read()
cfg = json.load(open(mdir + "/config.json"))
L = cfg["num_hidden_layers"]
with open(mdir + "/model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
qkv = sum(v["data_offsets"][1] - v["data_offsets"][0] for k, v in hdr.items()
          if re.search(r"\.(q|k|v)_proj\.weight$", k))
ok = True
if "\nprofile: one more run of each test" not in text:
    print("FAIL: no profile section:\n" + text); sys.exit(1)
blocks = re.split(r"^  ((?:pp|tg)\d+) +[\d.]+ ms a token \([\d.]+ tok/s, ops timed alone\)$",
                  text.split("\nprofile:")[1], flags=re.M)
names = blocks[1::2]
if names != ["pp8", "tg4"]:
    print("FAIL: profile tests %r\n%s" % (names, text)); sys.exit(1)
for name, body in zip(names, blocks[2::2]):
    rows = dict((m.group(1), m.groups()[1:]) for m in re.finditer(
        r"^    (\S+) +([\d.]+) +([\d.]+) +([\d.]+)%(?: +([\d.]+) +([\d.]+))?", body, re.M))
    want = ["embed", "qkv", "rope_kv", "attention", "o", "gate/up", "down", "lm_head"]
    if list(rows) != want:
        ok = False; print("FAIL: %s: ops %r\n%s" % (name, list(rows), body)); continue
    rest = re.search(r"^    the rest +([\d.]+) +([\d.]+)%", body, re.M)
    share = sum(float(r[2]) for r in rows.values()) + (float(rest.group(2)) if rest else 1e9)
    if abs(share - 100) > 0.05 * 9 + 0.01:   # nine shares, each rounded to 0.1
        ok = False; print("FAIL: %s: shares add up to %.2f%%\n%s" % (name, share, body))
    tokens = 8 if name == "pp8" else 4
    per_call = 1.0 / tokens if name == "pp8" else 1.0   # one call of 8 tokens, or one call a token
    for op in want:
        expect = per_call * (L if op not in ("embed", "lm_head") else 1)
        if abs(float(rows[op][0]) - expect) > 0.051:
            ok = False; print("FAIL: %s: %s %s calls a token, expected %.2f" % (name, op, rows[op][0], expect))
    if name == "tg4" and (rows["qkv"][3] is None or abs(float(rows["qkv"][3]) - qkv / 1e6) > 0.0051):
        ok = False; print("FAIL: tg4: qkv reads %s MB a token, the header says %.4f" % (rows["qkv"][3], qkv / 1e6))
# bench_batch --profile: 2 sessions a step, so a layer op is L / 2 calls a
# token, lm_head (one call a step for both rows) 1 / 2, and q/k/v's
# weights are read once for the two tokens
btext = open(tmp + "/bprof").read()
m = re.search(r"^  N 2 batched +[\d.]+ ms a token.*\n((?:    .*\n?)+)", btext, re.M)
if not m:
    print("FAIL: bench_batch --profile: no table\n" + btext); sys.exit(1)
rows = dict((r.group(1), r.groups()[1:]) for r in re.finditer(
    r"^    (\S+) +([\d.]+) +([\d.]+) +([\d.]+)%(?: +([\d.]+) +([\d.]+))?", m.group(1), re.M))
for op, want in (("qkv", L / 2), ("attention", L / 2), ("down", L / 2), ("lm_head", 0.5), ("embed", 0.5)):
    if op not in rows or abs(float(rows[op][0]) - want) > 0.051:
        ok = False; print("FAIL: bench_batch: %s calls a token %s, expected %.2f" % (op, rows.get(op, ["?"])[0], want))
if "qkv" in rows and (rows["qkv"][3] is None or abs(float(rows["qkv"][3]) - qkv / 2e6) > 0.0051):
    ok = False; print("FAIL: bench_batch: qkv %s MB a token, expected %.4f (read once for 2)" % (rows["qkv"][3], qkv / 2e6))
sys.exit(0 if ok else 1)
EOF
python3 - "$TMP" "$M" <<'EOF' || fail=1
import json, re, struct, sys
tmp, mdir = sys.argv[1], sys.argv[2]
ok = True
def bad(msg):
    global ok
    ok = False
    print("FAIL:", msg)

# what one decoded token reads, from the safetensors header (independent of fs)
with open(mdir + "/model.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
cfg = json.load(open(mdir + "/config.json"))
nbytes = {k: v["data_offsets"][1] - v["data_offsets"][0] for k, v in hdr.items() if k != "__metadata__"}
emb = nbytes["model.embed_tokens.weight"]
weights = sum(v for k, v in nbytes.items() if k != "model.embed_tokens.weight")
if cfg["tie_word_embeddings"] and "lm_head.weight" not in nbytes:
    weights += emb  # lm_head reads the whole (tied) table
# the KV cache's element, as the backend line names it (--kv auto: f16 on
# the cpu backend, f32 on cpu-ref and cuda)
kvm = re.search(r"^backend: (\S+) \(.*; KV cache (f16|f32)\)$", open(tmp + "/table").read(), re.M)
if not kvm:
    bad("backend line without the KV cache's type")
kv_elem = 2 if kvm and kvm.group(2) == "f16" else 4
if kvm and kvm.group(1) == "cpu" and kv_elem != 2:
    bad("--kv auto on the cpu backend: expected an f16 cache, got %s" % kvm.group(2))
def expect_bytes(n_gen, depth, q8=False, elem=None):
    kv = 2 * cfg["num_hidden_layers"] * (depth + (n_gen + 1) / 2) * cfg["num_key_value_heads"] * cfg["head_dim"] * (elem or kv_elem)
    if not q8:
        return weights + emb // cfg["vocab_size"] + int(kv)
    # Q8_0: every matrix [N, K] becomes N * K/32 blocks of 34 bytes; norms stay bf16
    def q8(shape):
        return shape[0] * shape[1] // 32 * 34
    mats = {k: v["shape"] for k, v in hdr.items() if k != "__metadata__"}
    w = sum(q8(s) if len(s) == 2 else nbytes[k] for k, s in mats.items() if k != "model.embed_tokens.weight")
    if cfg["tie_word_embeddings"] and "lm_head.weight" not in mats:
        w += q8(mats["model.embed_tokens.weight"])
    return w + cfg["hidden_size"] // 32 * 34 + int(kv)

table = open(tmp + "/table").read()
rows = re.findall(r"^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+((?:pp|tg)\d+(?: @ d\d+)?)\s+([\d.]+) \[([\d.]+) \.\. ([\d.]+)\]$",
                  table, re.M)
names = [r[4] for r in rows]
if names != ["pp8", "pp16", "tg4", "pp8 @ d8", "pp16 @ d8", "tg4 @ d8"]:
    bad("table rows: %r\n%s" % (names, table))
for r in rows:
    if r[1] != "bf16" or r[3] != "1" or r[0] != "m":
        bad("table columns (model m, weights bf16, threads 1): %r" % (r,))
    med, lo, hi = float(r[5]), float(r[6]), float(r[7])
    if not (0 < lo <= med <= hi):
        bad("tok/s not positive or not min <= median <= max: %r" % (r,))
if not re.search(r"^memory bandwidth \(\S+ backend\): [\d.]+ GB/s \(1 threads, 64 MiB", table, re.M):
    bad("no bandwidth line:\n" + table)
if not re.search(r"^backend: \S+ \(.+\)$", table, re.M):
    bad("no backend line (name and description):\n" + table)
roof = re.findall(r"^  (tg4(?: @ d8)?)\s+([\d.]+) MB/token .* = ([\d.]+) GB/s = ([\d.]+)% of ([\d.]+) GB/s$", table, re.M)
if [x[0] for x in roof] != ["tg4", "tg4 @ d8"]:
    bad("roofline lines: %r\n%s" % (roof, table))
for name, mb, gbs, pct, bw in roof:
    depth = 8 if "@" in name else 0
    if abs(float(mb) * 1e6 - expect_bytes(4, depth)) > 0.051e6:
        bad("roofline %s: %s MB/token, expected %.1f" % (name, mb, expect_bytes(4, depth) / 1e6))
    # the printed numbers are rounded (GB/s to 0.01, % to 0.1): allow exactly that
    g, w, f = float(gbs), float(bw), float(pct)
    slack = 0.05 + 100 * (0.005 / w + g * 0.005 / (w * (w - 0.005))) if w > 0.005 else 0
    if g <= 0 or w <= 0 or abs(g / w * 100 - f) > slack + 1e-9:
        bad("roofline %s: inconsistent GB/s and fraction: %s GB/s, %s%% of %s GB/s" % (name, gbs, pct, bw))
# the paired roofline: one line after each tg roofline line, fractions ordered
paired = re.findall(r"^\s+paired, bandwidth measured before each of (\d+) more runs: ([\d.]+)% \[([\d.]+) \.\. ([\d.]+)\]$",
                    table, re.M)
if len(paired) != 2:
    bad("paired roofline lines: %r\n%s" % (paired, table))
for runs, med, lo, hi in paired:
    if runs != "3" or not (0 < float(lo) <= float(med) <= float(hi)):
        bad("paired roofline: %r" % ((runs, med, lo, hi),))
mem = re.search(r"^memory: weights ([\d.]+) MiB, KV cache ([\d.]+) MiB, scratch ([\d.]+) MiB \(on the \S+ backend\); "
                r"peak RSS [\d.]+ MiB$", table, re.M)
if not mem or float(mem.group(1)) <= 0 or not re.search(r"load [\d.]+ s", table):
    bad("no memory line (weights, KV cache, scratch, peak RSS) / load time:\n" + table)

lines = open(tmp + "/csv").read().splitlines()
head = lines[0].split(",")
if head[:5] != ["model", "weights", "backend", "threads", "test"] or "tok_s_median" not in head:
    bad("csv header: %r" % lines[0])
body = [dict(zip(head, l.split(","))) for l in lines[1:]]
if [b["test"] for b in body] != ["pp8", "tg4", "tg6", "pp8 @ d8", "tg4 @ d8", "tg6 @ d8"]:
    bad("csv rows: %r" % lines)
for b in body:
    if len(b) != len(head) or not (0 < float(b["tok_s_min"]) <= float(b["tok_s_median"]) <= float(b["tok_s_max"])):
        bad("csv row: %r" % b)
    if int(b["peak_rss_bytes"]) < 1 << 20 or float(b["load_s"]) < 0 or float(b["bw_gb_s"]) <= 0:
        bad("csv rss / load / bandwidth: %r" % b)
    if int(b["weight_bytes"]) <= 0 or int(b["kv_bytes"]) <= 0 or int(b["scratch_bytes"]) < 0:
        bad("csv memory columns: %r" % b)
    if b["test"].startswith("tg"):
        want = expect_bytes(int(b["n_gen"]), int(b["depth"]))
        if int(b["bytes_per_token"]) != want:
            bad("csv bytes_per_token %s, expected %d" % (b["bytes_per_token"], want))
        if abs(float(b["eff_gb_s"]) - want * float(b["tok_s_median"]) / 1e9) > 1e-3 * float(b["eff_gb_s"]) + 1e-4:
            bad("csv eff_gb_s: %r" % b)
        if not (0 < float(b["bw_frac_paired_min"]) <= float(b["bw_frac_paired"]) <= float(b["bw_frac_paired_max"])):
            bad("csv paired fractions: %r" % b)
    elif b["bytes_per_token"] != "" or int(b["n_prompt"]) != 8:
        bad("csv pp row: %r" % b)
f32 = [dict(zip(head, l.split(","))) for l in open(tmp + "/kvf32").read().splitlines()[1:]]
if len(f32) != 1 or int(f32[0]["bytes_per_token"]) != expect_bytes(3, 0, elem=4):
    bad("--kv f32: %r, expected %d bytes/token (4-byte K and V)" % (f32, expect_bytes(3, 0, elem=4)))
q8 = [dict(zip(head, l.split(","))) for l in open(tmp + "/q8").read().splitlines()[1:]]
if len(q8) != 1 or q8[0]["weights"] != "q8_0" or int(q8[0]["bytes_per_token"]) != expect_bytes(3, 0, True):
    bad("--weights q8_0: %r, expected q8_0 and %d bytes/token" % (q8, expect_bytes(3, 0, True)))
nobw = open(tmp + "/nobw").read()
if "memory bandwidth" in nobw or "paired" in nobw or not re.search(r"^\s+tg3\s+[\d.]+ MB/token .* GB/s$", nobw, re.M):
    bad("--bw-mib 0 should skip the bandwidth, keep the roofline:\n" + nobw)
sys.exit(0 if ok else 1)
EOF

# --- 2. fs perplexity on text -----------------------------------------------
printf 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.\n' >"$TMP/text.txt"
"$FS_BIN" perplexity -m "$M" -f "$TMP/text.txt" --ctx 8 --json --kl-base "$M" >"$TMP/self.json" 2>"$TMP/err" \
    || die "perplexity self: $(cat "$TMP/err")"
"$FS_BIN" perplexity -m "$M" -f "$TMP/text.txt" --ctx 8 --json --kl-base "$M2" >"$TMP/other.json" 2>"$TMP/err" \
    || die "perplexity other: $(cat "$TMP/err")"
"$FS_BIN" perplexity -m "$M2" -f "$TMP/text.txt" --ctx 8 --json >"$TMP/m2.json" 2>"$TMP/err" \
    || die "perplexity m2: $(cat "$TMP/err")"
"$FS_BIN" perplexity -m "$M" -f "$TMP/text.txt" --ctx 8 --json --weights q8_0 --kl-base-weights bf16 \
    >"$TMP/q8.json" 2>"$TMP/err" || die "perplexity q8_0 vs bf16: $(cat "$TMP/err")"
"$FS_BIN" perplexity -m "$M" -f "$TMP/text.txt" --ctx 8 >"$TMP/plain" 2>"$TMP/err" \
    || die "perplexity text output: $(cat "$TMP/err")"
grep -q '^mean NLL [0-9.]* nats, ppl [0-9.]*$' "$TMP/plain" || die "text output: $(cat "$TMP/plain")"
python3 - "$TMP" <<'EOF' || fail=1
import json, math, sys
tmp = sys.argv[1]
ok = True
def bad(msg):
    global ok
    ok = False
    print("FAIL:", msg)
s = json.load(open(tmp + "/self.json"))
o = json.load(open(tmp + "/other.json"))
m2 = json.load(open(tmp + "/m2.json"))
q = json.load(open(tmp + "/q8.json"))
if not (s["ppl"] >= 1 and abs(math.exp(s["loss"]) - s["ppl"]) <= 1e-9 * s["ppl"]):
    bad("ppl %r loss %r" % (s["ppl"], s["loss"]))
if s["tokens"] < 16 or s["windows"] != (s["tokens"] - 2) // 8 + 1 or s["predicted_tokens"] != s["tokens"] - s["windows"]:
    bad("tokens / windows / predicted: %r" % s)
if s["kl"]["mean"] != 0 or s["kl"]["max"] != 0 or s["kl"]["top1_agreement"] != 1 or s["kl"]["base_loss"] != s["loss"]:
    bad("KL of a model against itself: %r" % s["kl"])
k = o["kl"]
if not (k["mean"] > 0 and k["max"] >= k["mean"] and k["top1_agreement"] < 1):
    bad("KL against another model: %r" % k)
if abs(k["base_loss"] - m2["loss"]) > 1e-12 * m2["loss"] or o["loss"] != s["loss"]:
    bad("base loss %r vs the base's own %r" % (k["base_loss"], m2["loss"]))
# q8_0 against its own bf16 original: a small, non-zero KL; the base is the plain model
k = q["kl"]
if not (q["weights"] == "q8_0" and k["base_weights"] == "bf16" and 0 < k["mean"] < 0.05 and k["base_loss"] == s["loss"]
        and q["loss"] != s["loss"] and abs(q["loss"] - s["loss"]) < 0.05 * s["loss"]):
    bad("q8_0 vs bf16: %r" % q)
sys.exit(0 if ok else 1)
EOF

# --- 3. the loss from first principles -----------------------------------------
python3 - "$TMP" "$FS_BIN" "$M" <<'EOF' || fail=1
import json, math, struct, subprocess, sys
tmp, fs, mdir = sys.argv[1:4]
ok = True
def bad(msg):
    global ok
    ok = False
    print("FAIL:", msg)
cache = {}
def logits(prefix):
    key = tuple(prefix)
    if key not in cache:
        path = tmp + "/l.f32"
        subprocess.run([fs, "logits", "-m", mdir, "--ids", " ".join(map(str, prefix)), "--top", "0",
                        "--dump-logits", path], check=True, stdout=subprocess.DEVNULL)
        raw = open(path, "rb").read()
        cache[key] = struct.unpack("<%df" % (len(raw) // 4), raw)
    return cache[key]
def nll(row, target):
    m = max(row)
    return m + math.log(math.fsum(math.exp(x - m) for x in row)) - row[target]
ids = [9707, 11, 1879, 0, 151643, 42, 7, 100000]
for n, C in ((8, 3), (7, 3), (8, 8), (5, 2), (2, 4)):
    seq = ids[:n]
    wins = [seq[s:s + C] for s in range(0, n - 1, C)]
    per = [[nll(logits(w[:j]), w[j]) for j in range(1, len(w))] for w in wins]
    want = sum(map(sum, per)) / sum(map(len, per))
    open(tmp + "/ids.txt", "w").write(",".join(map(str, seq)))
    out = subprocess.run([fs, "perplexity", "-m", mdir, "--ids-file", tmp + "/ids.txt", "--ctx", str(C), "--json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        bad("perplexity n=%d C=%d: %s" % (n, C, out.stderr))
        continue
    got = json.loads(out.stdout)
    if got["windows"] != len(wins) or got["predicted_tokens"] != sum(map(len, per)):
        bad("n=%d C=%d: windows %d predicted %d, expected %d, %d" % (n, C, got["windows"], got["predicted_tokens"],
                                                                   len(wins), sum(map(len, per))))
    if abs(got["loss"] - want) > 1e-5 * abs(want):
        bad("n=%d C=%d: loss %.9g, python from the logits %.9g" % (n, C, got["loss"], want))
    for w, p in enumerate(per):
        if abs(got["window_loss"][w] - sum(p) / len(p)) > 1e-5 * sum(p) / len(p):
            bad("n=%d C=%d window %d: %.9g vs %.9g" % (n, C, w, got["window_loss"][w], sum(p) / len(p)))
sys.exit(0 if ok else 1)
EOF

# --- 4. errors ----------------------------------------------------------------
expect() { # expect CODE ARGS...: exit status CODE and one "fs CMD:" line on stderr
    code=$1; shift
    "$FS_BIN" "$@" >/dev/null 2>"$TMP/err"; got=$?
    [ "$got" -eq "$code" ] || die "'$*' exited $got, expected $code ($(cat "$TMP/err"))"
    [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q '^fs[ :]' "$TMP/err" || die "'$*': stderr is not one fs line: $(cat "$TMP/err")"
}
expect 1 bench -m "$M" --pp abc
# a bad FS_ATTN_AHEAD (decode attention's prefetch distance) is refused, with its name
for v in abc -1 2000000 8k; do
    FS_ATTN_AHEAD=$v "$FS_BIN" bench -m "$M" --backend cpu --pp 0 --tg 4 -r 1 --bw-mib 0 >/dev/null 2>"$TMP/err"; got=$?
    [ "$got" -eq 2 ] && grep -q "^fs bench: FS_ATTN_AHEAD=$v: want a byte count" "$TMP/err" ||
        die "FS_ATTN_AHEAD=$v: exit $got, $(cat "$TMP/err")"
done
FS_ATTN_AHEAD=0 "$FS_BIN" bench -m "$M" --backend cpu --pp 0 --tg 4 -r 1 --bw-mib 0 >"$TMP/out" 2>"$TMP/err" &&
    grep -q "attention: no prefetch (FS_ATTN_AHEAD)" "$TMP/out" || die "FS_ATTN_AHEAD=0: $(cat "$TMP/err" "$TMP/out")"
expect 1 bench -m "$M" --pp 8,
expect 1 bench -m "$M" --tg -4
expect 1 bench -m "$M" -r 0
expect 1 bench -m "$M" --pp 0 --tg 0
expect 1 bench -m "$M" --pp 64 --ctx 32
expect 1 bench -m "$M" --backend no-such-backend
expect 1 bench -m "$M" --frobnicate
expect 1 bench -m "$M" --pp
expect 2 bench -m "$TMP/no-such-model" --pp 8 --tg 0 --bw-mib 0
expect 2 bench -m "$M" --pp 600 --tg 0 --bw-mib 0
expect 1 perplexity -m "$M"
expect 1 perplexity -m "$M" -f "$TMP/text.txt" --ids-file "$TMP/ids.txt"
expect 1 perplexity -m "$M" -f "$TMP/text.txt" --ctx 1
expect 1 perplexity -m "$M" -f "$TMP/text.txt" --max-windows 0
expect 1 perplexity -m "$M" -f "$TMP/text.txt" --kl-base-weights q3
expect 1 bench -m "$M" --weights int8
expect 1 bench -m "$M" --bw-mib 32
expect 1 bench -m "$M" --seed " 5"
expect 1 bench -m "$M" --profile --csv
expect 2 perplexity -m "$M" -f "$TMP/no-such-file.txt"
: >"$TMP/empty.txt"
expect 2 perplexity -m "$M" -f "$TMP/empty.txt"
printf '1 2 151936\n' >"$TMP/big.txt"
expect 2 perplexity -m "$M" --ids-file "$TMP/big.txt"
printf '1 2 x\n' >"$TMP/junk.txt"
expect 2 perplexity -m "$M" --ids-file "$TMP/junk.txt"
sed 's/"vocab_size": 151936/"vocab_size": 1000/' tests/data/gen_tiny.json >"$TMP/small.json"
"$FS_BIN" mkmodel --config "$TMP/small.json" --out "$TMP/small" >/dev/null 2>&1 || die "mkmodel small vocab"
printf '1 2 3 4\n' >"$TMP/ids4.txt"
expect 2 perplexity -m "$M" --ids-file "$TMP/ids4.txt" --kl-base "$TMP/small"
expect 2 perplexity -m "$M" -f "$TMP/text.txt" --ctx 1000

[ $fail -eq 0 ] && echo "e2e_bench: ok"
exit $fail
