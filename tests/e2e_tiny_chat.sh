#!/bin/sh
# e2e_tiny_chat.sh - the shipped tiny model is chat-shaped: `fs run` with
# "Hello!" typed in gets a short reply that ends by itself.
#
# models/tiny was fine-tuned on conversations in Qwen3's chat format with
# thinking off (scripts/make_chat_data.py, scripts/train_tiny.py --init;
# models/tiny/README.md), and its tokenizer_config.json makes thinking off
# its default. Here `fs run` (the chat loop, stdin a pipe) answers "Hello!"
# with the model's own sampling defaults for seeds 1..10, at most 100
# tokens each; `-v` reports how each reply stopped. At least 8 of the 10
# must stop at eos (<|im_end|>) rather than at the 100-token limit, and
# none may open a <think> block. A couple of seconds.
#
# Docs: models/tiny/README.md, docs/chat.md
FS_BIN=${FS_BIN:-build/fs}
case $FS_BIN in /*) ;; *) FS_BIN=$PWD/$FS_BIN ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
M=$HERE/../models/tiny
[ -f "$M/config.json" ] || { echo "FAIL: $M missing"; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/fs_e2e_tiny_chat.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
export FS_HOME="$T/home"
unset FS_MODEL

SEEDS="1 2 3 4 5 6 7 8 9 10"
NEED=8
LIMIT=100
ended=0; fail=0; counts=""
for s in $SEEDS; do
    printf 'Hello!\n' | timeout 60 "$FS_BIN" run -m "$M" --seed "$s" -n "$LIMIT" -v >"$T/$s.out" 2>"$T/$s.err"
    rc=$?
    if [ "$rc" != 0 ]; then
        echo "FAIL: seed $s: fs run exited $rc: $(tail -n 1 "$T/$s.err")"
        fail=$((fail + 1))
        continue
    fi
    line=$(grep 'generated [0-9]*, stop: ' "$T/$s.err" | tail -n 1)
    n=$(echo "$line" | sed -n 's/.*generated \([0-9]*\), stop: .*/\1/p')
    why=$(echo "$line" | sed -n 's/.*stop: \([a-z_]*\).*/\1/p')
    if [ -z "$n" ] || [ -z "$why" ]; then
        echo "FAIL: seed $s: no 'generated N, stop: ...' line on stderr"
        fail=$((fail + 1))
        continue
    fi
    if grep -q '<think>' "$T/$s.out"; then
        echo "FAIL: seed $s: the reply opens a think block (thinking should be off by default)"
        fail=$((fail + 1))
    fi
    [ "$why" = eos ] && [ "$n" -le "$LIMIT" ] && ended=$((ended + 1))
    if [ "$why" = eos ]; then counts="$counts $n"; else counts="$counts $n($why)"; fi
    printf 'seed %2d: %3d tokens, stop %-10s %s\n' "$s" "$n" "$why" "$(head -c 120 "$T/$s.out" | tr '\n' ' ')"
done
if [ "$ended" -lt "$NEED" ]; then
    echo "FAIL: only $ended of 10 replies to \"Hello!\" ended by themselves within $LIMIT tokens (need $NEED)"
    fail=$((fail + 1))
fi
echo "e2e_tiny_chat: $ended/10 replies ended by themselves (tokens:$counts); $fail failed"
[ "$fail" -eq 0 ]
