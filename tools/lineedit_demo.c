/* lineedit_demo.c - try the line editor, and the driver of tests/e2e_lineedit.sh.
 *
 *   lineedit_demo [--log FILE] [--history FILE]
 *
 * Reads lines with fs_lineedit_read (prompt "> ") until end of input.
 * Each result is reported as one line, on stdout and (with --log) in FILE:
 *   line:TEXT    an accepted line (added to the history); a newline in
 *                it (a paste of several lines) is written as \n
 *   cancel       Ctrl-C
 *   eof          end of input
 * With --history FILE the history is loaded from and saved to FILE.
 * The test drives it inside tmux and reads the log, which stays free of
 * the escape codes that the editor writes to the terminal.
 *
 * Docs: docs/chat.md
 */
#include <stdlib.h>
#include <string.h>

#include "lineedit.h"

static void put(FILE *f, const char *what, const char *text) {
    fputs(what, f);
    for (; *text; text++) {
        if (*text == '\n') fputs("\\n", f);
        else fputc(*text, f);
    }
    fputc('\n', f);
    fflush(f);
}

static void report(FILE *log, const char *what, const char *text) {
    put(stdout, what, text);
    if (log) put(log, what, text);
}

int main(int argc, char **argv) {
    const char *log_path = NULL, *hist_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--log") && i + 1 < argc) log_path = argv[++i];
        else if (!strcmp(argv[i], "--history") && i + 1 < argc) hist_path = argv[++i];
        else {
            fprintf(stderr, "usage: lineedit_demo [--log FILE] [--history FILE]\n");
            return 1;
        }
    }
    FILE *log = NULL;
    if (log_path && !(log = fopen(log_path, "w"))) {
        perror(log_path);
        return 2;
    }
    fs_err e = {{0}};
    fs_lineedit *le = fs_lineedit_new(0, 1, 100);
    if (hist_path && fs_lineedit_history_load(le, hist_path, &e)) {
        fprintf(stderr, "lineedit_demo: %s\n", e.msg);
        return 2;
    }
    int rc = 0;
    for (;;) {
        char *line;
        int r = fs_lineedit_read(le, "> ", &line, &e);
        if (r == FS_LE_OK) {
            report(log, "line:", line);
            fs_lineedit_history_add(le, line);
            free(line);
        } else if (r == FS_LE_CANCEL) {
            report(log, "cancel", "");
        } else if (r == FS_LE_EOF) {
            report(log, "eof", "");
            break;
        } else {
            fprintf(stderr, "lineedit_demo: %s\n", e.msg);
            rc = 2;
            break;
        }
    }
    if (hist_path && fs_lineedit_history_save(le, hist_path, &e)) {
        fprintf(stderr, "lineedit_demo: %s\n", e.msg);
        rc = 2;
    }
    fs_lineedit_free(le);
    if (log) fclose(log);
    return rc;
}
