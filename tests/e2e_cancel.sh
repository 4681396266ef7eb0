#!/bin/sh
# e2e_cancel.sh - Ctrl-C (SIGINT) during a long prefill stops it within a
# fraction of a second, and a cancelled run exits 130.
#
# A random checkpoint (fs mkmodel: H 512, L 4, the tiny model's tokenizer)
# and a prompt of ~2000 tokens. First the whole prefill is timed (-n 0);
# then fs generate and fs run (one-shot) get a SIGINT a third of the way
# into the same prefill: each must exit 130 within 1 s of the signal,
# having generated nothing (the signal came during the prefill), with the
# statistics still printed (generate). The CPU backend is named: a GPU
# would finish before there is anything to stop.
#
# Docs: docs/generate.md
FS_BIN=${FS_BIN:-build/fs}
case $FS_BIN in /*) ;; *) FS_BIN=$PWD/$FS_BIN ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
TINY=$HERE/../models/tiny
T=$(mktemp -d "${TMPDIR:-/tmp}/fs_e2e_cancel.XXXXXX") || exit 1
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
unset FS_MODEL

pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { d=$1; shift; if "$@"; then ok; else bad "$d"; fi; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

cat > "$T/config.json" <<'EOF'
{"hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 4,
 "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 64,
 "vocab_size": 4096, "max_position_embeddings": 4096, "rope_theta": 10000.0,
 "rms_norm_eps": 1e-6, "tie_word_embeddings": true, "bos_token_id": 4070,
 "eos_token_id": 4072}
EOF
M=$T/m
"$FS_BIN" mkmodel --config "$T/config.json" --out "$M" --tokenizer "$TINY" --seed 1 > /dev/null ||
    { echo "FAIL: fs mkmodel"; exit 1; }
s='It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. '
i=0; : > "$T/long.txt"
while [ $i -lt 65 ]; do printf '%s' "$s" >> "$T/long.txt"; i=$((i + 1)); done

# the whole prefill, timed
t0=$(now)
"$FS_BIN" generate -m "$M" -f "$T/long.txt" -n 0 -c 4096 --backend cpu > /dev/null 2> "$T/full.err" ||
    { echo "FAIL: the full prefill: $(cat "$T/full.err")"; exit 1; }
full=$(secs "$t0" "$(now)")
delay=$(awk -v f="$full" 'BEGIN { printf "%.3f", f / 3 }')

# interrupt NAME ARGS...: run fs ARGS, SIGINT after $delay s; sets $rc and
# $late (seconds from the signal to the exit)
interrupt() {
    n=$1; shift
    "$FS_BIN" "$@" > "$T/$n.out" 2> "$T/$n.err" &
    PID=$!
    sleep "$delay"
    kill -INT "$PID"
    t1=$(now)
    wait "$PID"
    rc=$?
    late=$(secs "$t1" "$(now)")
    PID=
}
in_time() { awk -v l="$late" 'BEGIN { exit !(l < 1.0) }'; }

interrupt gen generate -m "$M" -f "$T/long.txt" -n 8 -c 4096 --backend cpu
check "generate: Ctrl-C in the prefill exits 130 (got $rc; $(tail -n 1 "$T/gen.err"))" [ "$rc" = 130 ]
check "generate: stopped ${late} s after the signal (full prefill ${full} s)" in_time
check "generate: nothing generated, stop: cancelled" sh -c "grep -q '^generated: 0 tokens' '$T/gen.err' && grep -q '^stop: cancelled' '$T/gen.err'"

interrupt run run "$M" "$(cat "$T/long.txt")" -n 8 -c 4096 --backend cpu
check "run PROMPT: Ctrl-C in the prefill exits 130 (got $rc; $(tail -n 1 "$T/run.err"))" [ "$rc" = 130 ]
check "run PROMPT: stopped ${late} s after the signal (full prefill ${full} s)" in_time
check "run PROMPT: no reply was printed" [ ! -s "$T/run.out" ]

echo "e2e_cancel: $pass passed, $fail failed (full prefill ${full} s)"
[ "$fail" -eq 0 ]
