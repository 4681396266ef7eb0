#!/bin/sh
# e2e_chat.sh - `fs chat` driven through a pipe, on the shipped models/tiny:
# KV cache reuse across turns (the prefilled count checked against
# `fs template` + `fs tokenize` of the whole conversation), /reset,
# /system, /no_think and /think (thinking off is the tiny model's default),
# /stats, greedy determinism, exit 0 at end of input,
# the context-full message, no escape codes when piped, """ blocks of
# several lines as one turn, and exit 2 when stdout cannot be written.
# A few seconds.
#
# Piped format (cli/cmd_chat.c): each reply exactly as the model wrote it,
# then one newline; command output on stdout; notices on stderr.
#
# Docs: docs/chat.md
FS_BIN=${FS_BIN:-build/fs}
case $FS_BIN in /*) ;; *) FS_BIN=$PWD/$FS_BIN ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
M=$HERE/../models/tiny
[ -f "$M/config.json" ] || { echo "FAIL: $M missing"; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "e2e_chat: SKIP (no python3)"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/fs_e2e_chat.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
export FS_HOME="$T/home"
unset FS_MODEL

pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { d=$1; shift; if "$@"; then ok; else bad "$d"; fi; }

# chat NAME ARGS... < input: stdout in $T/NAME.out, stderr in $T/NAME.err, status in $T/NAME.rc
chat() {
    n=$1; shift
    timeout 60 "$FS_BIN" chat -m "$M" --temp 0 "$@" > "$T/$n.out" 2> "$T/$n.err"
    echo $? > "$T/$n.rc"
}
rc() { cat "$T/$1.rc"; }
# the first reply of a run: everything before the last newline of the output
# (one-turn runs only)
first_reply() { python3 -c 'import sys; s=open(sys.argv[1],encoding="utf-8").read(); sys.stdout.write(s[:-1])' "$T/$1.out"; }
# ntok MESSAGES.json [template flags]: token count of the rendered conversation
ntok() {
    f=$1; shift
    "$FS_BIN" template -m "$M" --messages "$f" "$@" > "$T/prompt.txt" &&
    "$FS_BIN" tokenize -m "$M" -f "$T/prompt.txt" | wc -w | tr -d ' '
}
# msgs OUT.json ROLE FILE_OR_TEXT ...: a messages array; "@path" reads a file
msgs() {
    python3 - "$@" <<'EOF'
import json, sys
out, a = sys.argv[1], sys.argv[2:]
m = []
for i in range(0, len(a), 2):
    c = a[i + 1]
    if c.startswith("@"):
        c = open(c[1:], encoding="utf-8").read()
    m.append({"role": a[i], "content": c})
json.dump(m, open(out, "w"))
EOF
}
# stat_field NAME: "N M" from the last "prefilled N new tokens (M reused)" line
prefill_of() { sed -n 's/.*prefilled \([0-9]*\) new tokens (\([0-9]*\) reused).*/\1 \2/p' "$T/$1.out" | tail -n 1; }
cache_of() { sed -n 's/^cache: \([0-9]*\) of.*/\1/p' "$T/$1.out" | sed -n "${2}p"; }

# ---- two turns: the second prefills only what is new ------------------------------
# These turns run with thinking on: Qwen3's template then renders an earlier
# reply exactly as it was generated, so turn 2 reuses all of turn 1's cache.
# (With thinking off it drops the earlier reply's empty think block, and
# reuse stops where that block was.)
printf 'Hello there\n' | chat one -n 12 --think
check "one turn exits 0 ($(cat "$T/one.err"))" [ "$(rc one)" = 0 ]
first_reply one > "$T/r1.txt"
check "a reply was written" [ -s "$T/r1.txt" ]

printf 'Hello there\n/stats\nWhat is your name?\n/stats\n' | chat two -n 12 -v --think
check "two turns exit 0" [ "$(rc two)" = 0 ]
msgs "$T/m1.json" user "Hello there"
msgs "$T/m2.json" user "Hello there" assistant "@$T/r1.txt" user "What is your name?"
N1=$(ntok "$T/m1.json")
N2=$(ntok "$T/m2.json")
C1=$(cache_of two 1)
set -- $(prefill_of two)
NEW=$1; REUSED=$2
check "turn 1: cache is prompt + reply - 1 ($C1 vs $N1 + 12 - 1)" [ "$C1" = $((N1 + 12 - 1)) ]
check "turn 2: new + reused = the whole conversation ($NEW + $REUSED vs $N2)" [ $((NEW + REUSED)) = "$N2" ]
check "turn 2 reused the whole cache of turn 1 ($REUSED vs $C1)" [ "$REUSED" = "$C1" ]
check "turn 2 prefilled only the new tokens ($NEW < $N2 - $N1)" [ "$NEW" -lt $((N2 - N1)) ]
check "--verbose reports each turn's prefill" [ "$(grep -c 'prefilled [0-9]* new tokens ([0-9]* reused)' "$T/two.err")" = 2 ]
check "the first turn's reply is the same in both runs" grep -qF -- "$(head -n 1 "$T/r1.txt")" "$T/two.out"
check "/stats shows turns and the context" grep -q '^turns: 2, thinking: on' "$T/two.out"
check "/stats shows KV memory" grep -q 'of 2048 tokens, KV cache [0-9.]* MiB' "$T/two.out"
check "/stats shows tok/s" grep -q 'prefill [0-9.]* tok/s; generated 12 tokens, decode [0-9.]* tok/s' "$T/two.out"
check "piped output has no escape codes" sh -c "! grep -q \"$(printf '\033')\" '$T/two.out'"

# ---- greedy is deterministic; so is a seeded sampled session -----------------------------
printf 'Hello there\n/stats\nWhat is your name?\n/stats\n' | chat two_b -n 12 -v --think
# /stats speeds differ from run to run; everything else must be identical
sed '/tok\/s/d' "$T/two.out" > "$T/two.cmp"; sed '/tok\/s/d' "$T/two_b.out" > "$T/two_b.cmp"
check "greedy: same output twice" cmp -s "$T/two.cmp" "$T/two_b.cmp"
printf 'Tell me a story\nGo on\n' | chat s1 -n 16 --temp 0.9 --seed 7
printf 'Tell me a story\nGo on\n' | chat s2 -n 16 --temp 0.9 --seed 7
printf 'Tell me a story\nGo on\n' | chat s3 -n 16 --temp 0.9 --seed 8
check "seeded sampling: same seed, same session" cmp -s "$T/s1.out" "$T/s2.out"
check "seeded sampling: another seed differs" sh -c "! cmp -s '$T/s1.out' '$T/s3.out'"

# ---- /reset: back to an empty cache, same reply as a fresh session ------------------------
printf 'Good morning\n/reset\n/stats\nHello there\n/stats\n' | chat reset -n 12 --think
check "/reset exits 0" [ "$(rc reset)" = 0 ]
check "/reset says so" grep -q '^conversation cleared' "$T/reset.out"
check "/stats after /reset: no turns" grep -q '^turns: 0,' "$T/reset.out"
check "/stats after /reset: empty cache" [ "$(cache_of reset 1)" = 0 ]
set -- $(prefill_of reset)
check "after /reset the prompt is prefilled from scratch ($1 new, $2 reused vs $N1)" [ "$1" = "$N1" -a "$2" = 0 ]
check "after /reset the reply equals a fresh session's" grep -qF -- "$(head -n 1 "$T/r1.txt")" "$T/reset.out"

# ---- /system ------------------------------------------------------------------------------
printf '/system You are a poet.\nHello there\n/stats\n' | chat sys -n 8
msgs "$T/ms.json" system "You are a poet." user "Hello there"
NS=$(ntok "$T/ms.json" --no-think) # models/tiny's default: thinking off
set -- $(prefill_of sys)
check "/system: the prompt is the template with the system message ($1 + $2 vs $NS)" [ $(($1 + $2)) = "$NS" ]
check "/system says so" grep -q '^system prompt set' "$T/sys.out"
check "/stats shows the system prompt" grep -q 'system prompt: set' "$T/sys.out"
printf 'Hello there\n/stats\n' | chat sysflag -n 8 --system "You are a poet."
check "--system equals /system" [ "$(prefill_of sysflag)" = "$(prefill_of sys)" ]

# ---- /no_think ---------------------------------------------------------------------------------
printf '/no_think\nHello there\n/stats\n' | chat nothink -n 16
NN=$(ntok "$T/m1.json" --no-think)
set -- $(prefill_of nothink)
check "/no_think: the prompt ends with the empty think block ($1 vs $NN)" [ "$1" = "$NN" ]
check "/no_think says so" grep -q '^thinking off' "$T/nothink.out"
check "/no_think: no <think> in the reply" sh -c "! grep -q '<think>' '$T/nothink.out'"
printf 'Hello there\n/stats\n' | chat nothink2 -n 16 --no-think
check "--no-think equals /no_think" [ "$(prefill_of nothink2)" = "$(prefill_of nothink)" ]
printf 'Hello there\n/stats\n' | chat nothink3 -n 16
check "thinking off is the tiny model's default" [ "$(prefill_of nothink3)" = "$(prefill_of nothink)" ]

# ---- /think: the template's own default (enable_thinking true: no think block) --------------
printf '/think\nHello there\n/stats\n' | chat think -n 16
NT=$(ntok "$T/m1.json" --think)
set -- $(prefill_of think)
check "/think: the prompt has no think block ($1 vs $NT)" [ "$1" = "$NT" -a "$NT" -lt "$NN" ]
check "/think says so" grep -q '^thinking on' "$T/think.out"
check "/stats after /think" grep -q '^turns: 1, thinking: on' "$T/think.out"
printf 'Hello there\n/stats\n' | chat think2 -n 16 --think
check "--think equals /think" [ "$(prefill_of think2)" = "$(prefill_of think)" ]

# ---- end of input, empty input, commands ----------------------------------------------------------
printf '' | chat empty
check "empty input exits 0 with no output" [ "$(rc empty)" = 0 -a ! -s "$T/empty.out" ]
printf '\n\n/help\n/bogus\n/quit\nnot reached\n' | chat cmds -n 4
check "/quit exits 0" [ "$(rc cmds)" = 0 ]
check "/help lists the commands" grep -q '/reset' "$T/cmds.out"
check "unknown command is reported" grep -q "unknown command '/bogus'" "$T/cmds.out"
check "nothing after /quit" sh -c "[ \$(grep -c '^turns' '$T/cmds.out') = 0 ] && [ \$(wc -l < '$T/cmds.out') -lt 20 ]"
printf '//stats\n/stats\n' | chat slash -n 4
check "//text is sent as a message" grep -q '^turns: 1,' "$T/slash.out"

# ---- context full -----------------------------------------------------------------------------------
LONG="It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife."
printf '%s\n/stats\n/reset\nHi\n/stats\n' "$LONG" | chat full -n 8 --ctx 32
check "context full: exits 0" [ "$(rc full)" = 0 ]
check "context full: clear message" grep -q '^context full (32 tokens): /reset to start over' "$T/full.err"
check "context full: the turn was not kept" grep -q '^turns: 0,' "$T/full.out"
check "context full: usable after /reset" grep -q '^turns: 1,' "$T/full.out"
printf 'Hi\nHi again\nAnd again\nOnce more\n/stats\n' | chat full2 -n 30 --ctx 48
check "context fills during a reply: clear message, exit 0" sh -c "grep -q '^context full (48 tokens)' '$T/full2.err' && [ \$(cat '$T/full2.rc') = 0 ]"

# ---- a """ block is one turn of several lines ---------------------------------------
printf '"""\nfirst line\n\nsecond line\n"""\n/stats\n"""one line"""\n/stats\n' | chat block -n 4 -v
msgs "$T/mb.json" user "$(printf 'first line\n\nsecond line')"
NB=$(ntok "$T/mb.json" --no-think)
check "a \"\"\" block is one turn ($(cat "$T/block.err"))" grep -q '^turns: 1,' "$T/block.out"
set -- $(sed -n 's/.*prefilled \([0-9]*\) new tokens (\([0-9]*\) reused).*/\1 \2/p' "$T/block.err" | head -n 1)
check "the block's lines are one message ($1 + $2 vs $NB)" [ $(($1 + $2)) = "$NB" ]
check "\"\"\"text\"\"\" on one line is one turn" grep -q '^turns: 2,' "$T/block.out"
check "no speed line when stderr is not a terminal" sh -c "! grep -q 'tok/s; reply' '$T/block.err'"

# ---- stdout that cannot be written: exit 2, said once ----------------------------------
if [ -w /dev/full ]; then
    printf 'Hello there\n' | timeout 60 "$FS_BIN" chat -m "$M" --temp 0 -n 8 > /dev/full 2> "$T/full_dev.err"
    rcf=$?
    check "chat > /dev/full exits 2 ($rcf)" [ $rcf = 2 ]
    check "... saying it cannot write" grep -q '^fs chat: cannot write: ' "$T/full_dev.err"
fi

# ---- usage ----------------------------------------------------------------------------------------------
"$FS_BIN" chat --bogus > /dev/null 2>&1; check "unknown flag exits 1" [ $? = 1 ]
"$FS_BIN" chat -m "$T/nonexistent" < /dev/null > /dev/null 2>&1; check "missing model exits 2" [ $? = 2 ]
"$FS_BIN" chat --help | grep -q -- '--no-think'; check "--help" [ $? = 0 ]

echo "e2e_chat: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
