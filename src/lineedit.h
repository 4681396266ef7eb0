/* lineedit.h - a small terminal line editor for `fs chat`.
 *
 * Reads one line from a terminal with editing: the terminal is put in raw
 * mode (POSIX termios: no echo, no line buffering, no signals) for the
 * duration of one fs_lineedit_read call, and every key is interpreted here.
 *
 *   left/right, Ctrl-B/F        move one character (a UTF-8 character, with
 *                               any combining marks after it, is one step)
 *   Ctrl-left/right             move one word
 *   Home/End, Ctrl-A/E          start / end of line
 *   Backspace, Delete           delete before / under the cursor
 *   Ctrl-K / Ctrl-U             delete to end / to start of line
 *   Ctrl-W                      delete the word before the cursor
 *   up/down, Ctrl-P/N           walk the history
 *   Ctrl-L                      clear the screen
 *   Ctrl-C                      cancel the line      -> FS_LE_CANCEL
 *   Ctrl-D on an empty line     end of input         -> FS_LE_EOF
 *   Enter                       accept               -> FS_LE_OK
 *   a paste (bracketed)         inserted as text, its newlines included
 *
 * Wide (CJK, emoji) characters count two columns, combining marks zero.
 * A line longer than the terminal scrolls horizontally.
 *
 * When the input is not a terminal (a pipe, a file) or TERM is "dumb", it
 * reads plain lines with no escape codes at all, so scripts can drive
 * `fs chat` through stdin.
 *
 * Docs: docs/chat.md
 */
#ifndef FS_LINEEDIT_H
#define FS_LINEEDIT_H

#include <stddef.h>

#include "util.h"

enum {
    FS_LE_OK = 0,      /* *line holds the accepted line (no newline) */
    FS_LE_EOF = 1,     /* end of input (Ctrl-D on an empty line, closed pipe) */
    FS_LE_CANCEL = 2,  /* Ctrl-C: the line was abandoned */
    FS_LE_ERROR = -1,  /* read/write/termios failure, message in e */
};

typedef struct fs_lineedit fs_lineedit;

/* Editor reading keys from in_fd and drawing on out_fd (usually 0 and 1).
 * Keeps up to history_max lines of history (0: no history). */
fs_lineedit *fs_lineedit_new(int in_fd, int out_fd, size_t history_max);
void fs_lineedit_free(fs_lineedit *le);

/* Show prompt (plain text: its width is counted, so no escape codes) and
 * read one line into *line (malloc'd, NUL-terminated; set
 * only for FS_LE_OK). Returns one of the FS_LE_ codes. The line is not
 * added to the history: call fs_lineedit_history_add for the lines worth
 * remembering. */
int fs_lineedit_read(fs_lineedit *le, const char *prompt, char **line, fs_err *e);

/* 1 if this editor edits interactively (input is a terminal), 0 if it
 * falls back to plain lines. */
int fs_lineedit_interactive(const fs_lineedit *le);

/* Append to the history; empty lines and repeats of the newest entry are
 * skipped. The oldest entry drops out when history_max is reached. */
void fs_lineedit_history_add(fs_lineedit *le, const char *line);
size_t fs_lineedit_history_len(const fs_lineedit *le);
const char *fs_lineedit_history_get(const fs_lineedit *le, size_t i); /* 0 = oldest */

/* History file: one entry per line. Loading a missing file is not an error
 * (a first run has none). Saved with mode 0600: prompts can be private.
 * Entries of several lines (pastes) are not saved. */
int fs_lineedit_history_load(fs_lineedit *le, const char *path, fs_err *e);
int fs_lineedit_history_save(const fs_lineedit *le, const char *path, fs_err *e);

/* Display width of one code point: 0 for combining marks and zero-width
 * characters, 2 for East Asian wide and emoji, 1 otherwise (a small
 * wcwidth that does not depend on the C locale). */
int fs_lineedit_cp_width(uint32_t cp);

#endif
