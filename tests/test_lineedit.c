/* test_lineedit.c - the line editor's parts that need no terminal: the
 * plain-line fallback (input from a pipe), history, the history file and
 * character widths. Key handling in a real terminal is tests/e2e_lineedit.sh.
 *
 * Docs: docs/chat.md
 */
#include <stdlib.h>
#include <unistd.h>

#include "lineedit.h"
#include "test.h"

/* Feed text through a pipe and read lines back in plain mode. */
static void test_plain(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    const char *text = "first\nsecond\r\n\nlast without newline";
    CHECK(write(fds[1], text, strlen(text)) == (ssize_t)strlen(text));
    close(fds[1]);
    fs_lineedit *le = fs_lineedit_new(fds[0], fds[0], 10);
    CHECK(!fs_lineedit_interactive(le));
    fs_err e = {{0}};
    char *line = NULL;
    const char *want[] = {"first", "second", "", "last without newline"};
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ_INT(fs_lineedit_read(le, "> ", &line, &e), FS_LE_OK);
        CHECK_STR(line, want[i]);
        free(line);
    }
    CHECK_EQ_INT(fs_lineedit_read(le, "> ", &line, &e), FS_LE_EOF);
    CHECK(line == NULL);
    CHECK_EQ_INT(fs_lineedit_read(le, "> ", &line, &e), FS_LE_EOF);
    fs_lineedit_free(le);
    close(fds[0]);
}

static void test_history(void) {
    fs_lineedit *le = fs_lineedit_new(0, 1, 3);
    fs_lineedit_history_add(le, "a");
    fs_lineedit_history_add(le, "a"); /* repeat of the newest: skipped */
    fs_lineedit_history_add(le, "");  /* empty: skipped */
    fs_lineedit_history_add(le, "b");
    fs_lineedit_history_add(le, "c");
    fs_lineedit_history_add(le, "d"); /* "a" drops out */
    CHECK_EQ_INT(fs_lineedit_history_len(le), 3);
    CHECK_STR(fs_lineedit_history_get(le, 0), "b");
    CHECK_STR(fs_lineedit_history_get(le, 2), "d");
    CHECK(fs_lineedit_history_get(le, 3) == NULL);

    char path[] = "/tmp/fs_test_lineedit_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    fs_err e = {{0}};
    CHECK(fs_lineedit_history_save(le, path, &e) == 0);
    fs_lineedit *le2 = fs_lineedit_new(0, 1, 2);
    CHECK(fs_lineedit_history_load(le2, path, &e) == 0);
    CHECK_EQ_INT(fs_lineedit_history_len(le2), 2); /* keeps the newest 2 */
    CHECK_STR(fs_lineedit_history_get(le2, 0), "c");
    CHECK_STR(fs_lineedit_history_get(le2, 1), "d");
    unlink(path);
    /* A missing history file is a first run, not an error. */
    CHECK(fs_lineedit_history_load(le2, path, &e) == 0);
    CHECK(fs_lineedit_history_save(le2, "/nonexistent-dir/h", &e) == -1);
    CHECK(strstr(e.msg, "/nonexistent-dir/h") != NULL);
    fs_lineedit_free(le2);

    fs_lineedit *none = fs_lineedit_new(0, 1, 0); /* history off */
    fs_lineedit_history_add(none, "x");
    CHECK_EQ_INT(fs_lineedit_history_len(none), 0);
    fs_lineedit_free(none);
    fs_lineedit_free(le);
}

static void test_width(void) {
    CHECK_EQ_INT(fs_lineedit_cp_width('a'), 1);
    CHECK_EQ_INT(fs_lineedit_cp_width(0xE9), 1);    /* é */
    CHECK_EQ_INT(fs_lineedit_cp_width(0x0301), 0);  /* combining acute */
    CHECK_EQ_INT(fs_lineedit_cp_width(0x200D), 0);  /* zero-width joiner */
    CHECK_EQ_INT(fs_lineedit_cp_width(0x65E5), 2);  /* 日 */
    CHECK_EQ_INT(fs_lineedit_cp_width(0xAC00), 2);  /* 가 */
    CHECK_EQ_INT(fs_lineedit_cp_width(0xFF21), 2);  /* fullwidth A */
    CHECK_EQ_INT(fs_lineedit_cp_width(0x1F600), 2); /* 😀 */
    CHECK_EQ_INT(fs_lineedit_cp_width(0x0416), 1);  /* Ж */
}

int main(void) {
    test_plain();
    test_history();
    test_width();
    return TEST_SUMMARY();
}
