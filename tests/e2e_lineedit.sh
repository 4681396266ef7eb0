#!/bin/sh
# e2e_lineedit.sh - drive the line editor through a real terminal (tmux).
#
# tools/lineedit_demo runs inside a detached tmux session on a private socket
# (-L, so no user session is touched); keys are sent with send-keys and each
# accepted line is read back from the demo's log. Before typing, the script
# waits until the editor has drawn a fresh prompt, which happens only after
# it has switched the terminal to raw mode (keys sent earlier would be seen
# by the terminal driver instead: Ctrl-C would kill the demo). A paste of
# several lines (tmux paste-buffer -p: bracketed paste) must come back as
# one line with its newlines, and stay out of the history file.
# Docs: docs/chat.md
FS_BUILD=${FS_BUILD:-build}
DEMO="$FS_BUILD/tools/lineedit_demo"
if [ ! -x "$DEMO" ]; then
    echo "e2e_lineedit: FAIL ($DEMO not built; make $DEMO)"
    exit 1
fi
# Not a terminal: plain lines, and no escape codes in the output.
out=$(printf 'one\ntwo \033[A\nthree' | "$DEMO")
want=$(printf 'line:one\nline:two \033[A\nline:three\neof')
if [ "$out" != "$want" ]; then
    echo "e2e_lineedit: FAIL (piped input gave [$out])"
    exit 1
fi
if ! command -v tmux >/dev/null 2>&1; then
    echo "e2e_lineedit: SKIP terminal tests (tmux not installed)"
    exit 0
fi
case "$DEMO" in /*) ;; *) DEMO="$PWD/$DEMO" ;; esac
TMP=$(mktemp -d) || exit 1
LOG="$TMP/log"
run=0
T=true
SOCKETS=""
cleanup() {
    $T kill-server >/dev/null 2>&1
    for s in $SOCKETS; do rm -f "$s"; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
fail=0
COLS=40

# Each run gets its own tmux server (socket fs-lineedit-PID-RUN).
start_demo() {
    $T kill-server >/dev/null 2>&1
    for s in $SOCKETS; do rm -f "$s"; done
    run=$((run + 1))
    T="tmux -L fs-lineedit-$$-$run -f /dev/null"
    : >"$LOG"
    $T new-session -d -x $COLS -y 12 "'$DEMO' --log '$LOG' --history '$TMP/hist'; sleep 60" || {
        echo "e2e_lineedit: FAIL (cannot start tmux)"; exit 1; }
    SOCKETS="$SOCKETS $($T display -p '#{socket_path}')"
}

# The row the cursor is on, trailing spaces trimmed (capture-pane does that).
cursor_row() {
    y=$($T display -p '#{cursor_y}' 2>/dev/null) || return 1
    $T capture-pane -p 2>/dev/null | sed -n "$((y + 1))p"
}

# wait_until CMD...: poll for up to 10 s (a loaded machine, a sanitizer build).
wait_until() {
    i=0
    while [ $i -lt 200 ]; do
        "$@" && return 0
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}
prompt_ready() { [ "$(cursor_row)" = ">" ] && [ "$($T display -p '#{cursor_x}')" = 2 ]; }
log_has() { [ "$(wc -l <"$LOG")" -ge "$1" ]; }

n=0
# line EXPECTED KEYS...: type KEYS (tmux key names; "-l TEXT" for literal text
# is written as L:TEXT) and check the next log entry.
line() {
    if ! wait_until prompt_ready; then
        echo "e2e_lineedit: FAIL (no fresh prompt before [$1]; screen row: [$(cursor_row)])"
        exit 1
    fi
    finish "$@"
}
# finish EXPECTED KEYS...: the same, on a line already being edited.
finish() {
    want=$1; shift
    for k in "$@"; do
        case "$k" in
        L:*) $T send-keys -l -- "${k#L:}" ;;
        *) $T send-keys "$k" ;;
        esac
    done
    n=$((n + 1))
    if ! wait_until log_has $n; then
        echo "e2e_lineedit: FAIL (no result for [$want]; screen row: [$(cursor_row)])"
        exit 1
    fi
    got=$(sed -n "${n}p" "$LOG")
    if [ "$got" != "$want" ]; then
        echo "FAIL: want [$want] got [$got]"
        fail=1
    fi
}

# screen ROW X KEYS...: type KEYS (not Enter), then wait until the cursor's
# row reads ROW and the cursor is in column X: checks what is drawn.
screen() {
    want=$1; wx=$2; shift 2
    for k in "$@"; do
        case "$k" in
        L:*) $T send-keys -l -- "${k#L:}" ;;
        *) $T send-keys "$k" ;;
        esac
    done
    screen_ok() { [ "$(cursor_row)" = "$want" ] && [ "$($T display -p '#{cursor_x}')" = "$wx" ]; }
    if ! wait_until screen_ok; then
        echo "FAIL: screen row [$(cursor_row)] cursor_x $($T display -p '#{cursor_x}'), want [$want] $wx"
        fail=1
    fi
}

start_demo
line "line:hello world"     L:"hello world" Enter
line "line:<aXbcZ"          L:abc Left Left L:X End L:Z Home L:"<" Enter
line "line:one end"         L:"one two three" C-w L:X C-a Right Right Right Right C-k C-e L:end Enter
line "line:clean"           L:garbage C-u L:clean Enter
line "line:abZ"             L:abcd BSpace BSpace L:Z Enter
line "line:bcd"             L:abcd Home DC Enter
line "line:x"               L:xy Left C-d Enter
line "line:aa Xbb cc!"      L:"aa bb cc" C-Left C-Left L:X C-Right C-Right L:"!" Enter
line "line:a-b!"            L:ab C-b C-b C-f L:"-" C-e L:"!" Enter
line "line:hëllo"           L:héllo Left Left Left BSpace L:ë Enter
line "line:日語"            L:日本語 Left BSpace Enter
# "e" + U+0301 (combining acute) is one character: Backspace removes both.
line "line:bx"              L:"ae"$(printf '\314\201')"b" Left BSpace Home DC End L:x Enter
line "line:日語"            Up Up Enter
line "line:draft!"          L:draft Up Up Down Down L:"!" Enter
line "cancel"               L:abandon C-c
line "line:after cancel"    L:"after cancel" Enter
# A line longer than the terminal scrolls instead of wrapping.
long="0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"
# 40 columns: prompt (2) + 37 characters + 1 spare column for the cursor.
wait_until prompt_ready
screen "> $(printf %s "$long" | cut -c 20-)" 39 L:"$long"
screen "> $(printf %s "$long" | cut -c 1-37)" 2 Home
finish "line:S${long}E"     L:S End L:E Enter
wait_until prompt_ready
screen "> 日本語x" 8 L:"日本語x" Left
finish "line:日本語x"       Enter
# A paste of several lines is one line: the editor asks for bracketed
# paste, tmux wraps the buffer (paste-buffer -p) and the newlines stay text.
$T set-buffer -- "$(printf 'first line\nsecond line')"
wait_until prompt_ready
$T paste-buffer -p
screen "> first line⏎second line" 24
finish 'line:first line\nsecond line' L:"!" BSpace Enter
line "eof"                  C-d
if grep -q "second line" "$TMP/hist"; then echo "FAIL: a multi-line entry was saved in the history file"; fail=1; fi
if ! grep -qx "after cancel" "$TMP/hist" 2>/dev/null || [ "$(tail -n 1 "$TMP/hist")" != "日本語x" ]; then
    echo "FAIL: history file does not hold the accepted lines"; fail=1
fi

# A second run loads the history file: Up recalls the newest entry.
start_demo
n=0
line "line:日本語x"         Up Enter
line "line:after cancel"    Up Up Up Enter
line "eof"                  C-d

[ "$fail" -eq 0 ] && echo "e2e_lineedit: ok"
exit "$fail"
