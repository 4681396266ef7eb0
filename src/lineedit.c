/* lineedit.c - raw-mode terminal line editing (see lineedit.h).
 *
 * How a terminal line editor works: normally the terminal driver ("canonical
 * mode") collects a whole line, echoes keys and handles Backspace itself,
 * and the program only sees finished lines. To edit in the middle of a line
 * we switch that off (termios: ICANON, ECHO, ISIG off), read key by key,
 * keep the line in a buffer, and after every key redraw it:
 *
 *     \r  prompt  visible part of the line  ESC[0K (erase to end)  \r ESC[nC
 *
 * i.e. go to column 0, print, erase leftovers, and move the cursor right to
 * where it belongs. Redrawing the whole line each time is simpler than
 * patching it and fast enough for a human typing.
 *
 * Special keys arrive as escape sequences: ESC [ A is "up", ESC [ 3 ~ is
 * Delete, ESC [ 1 ; 5 C is Ctrl-right. Both the ESC [ (normal) and ESC O
 * (application cursor mode) spellings are accepted.
 *
 * Pasting. A terminal that knows bracketed paste (xterm and its heirs; we
 * ask with ESC [ ? 2004 h while a line is read) wraps pasted text in
 * ESC [ 200 ~ ... ESC [ 201 ~, so the newlines inside a paste are text,
 * not Enter: a paste of several lines is one line with '\n' in it, shown
 * as U+23CE (the return symbol) until it is accepted. Without that, each
 * pasted line would be accepted on its own.
 *
 * The buffer holds UTF-8 bytes; the cursor is a byte offset that always sits
 * on a character boundary. Movement steps over one code point plus any
 * zero-width code points after it (combining accents), so "e" + U+0301
 * moves as one character.
 *
 * Docs: docs/chat.md
 */
#define _DARWIN_C_SOURCE /* macOS hides TIOCGWINSZ under strict POSIX */
#include "lineedit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

struct fs_lineedit {
    int in_fd, out_fd;
    int interactive;
    /* history: hist[0] oldest .. hist[hist_len-1] newest */
    char **hist;
    size_t hist_len, hist_max;
    /* plain (non-terminal) input: bytes read but not yet returned */
    char rbuf[4096];
    size_t rpos, rlen;
    int reof;
};

/* The line being edited. */
typedef struct {
    char *buf;
    size_t len, cap, pos; /* pos: cursor, a byte offset */
    const char *prompt;
} line_state;

/* ---- widths ---- */

int fs_lineedit_cp_width(uint32_t cp) {
    /* Zero width: combining diacritics, zero-width space/joiners, variation
     * selectors. */
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) || (cp >= 0x1DC0 && cp <= 0x1DFF) ||
        (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x20D0 && cp <= 0x20FF) || (cp >= 0xFE00 && cp <= 0xFE0F) ||
        (cp >= 0xFE20 && cp <= 0xFE2F) || (cp >= 0xE0100 && cp <= 0xE01EF))
        return 0;
    /* Two columns: East Asian wide/fullwidth blocks and emoji. */
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) || (cp >= 0x3041 && cp <= 0x33FF) ||
        (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
        (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
        (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD))
        return 2;
    return 1;
}

/* Decode the code point at s[i] (n bytes in all); an invalid byte counts as
 * one character of width 1, so a broken line still moves sensibly. */
static size_t cp_at(const char *s, size_t n, size_t i, uint32_t *cp) {
    int k = fs_utf8_decode((const unsigned char *)s + i, n - i, cp);
    if (k == 0) {
        *cp = (unsigned char)s[i];
        return 1;
    }
    return (size_t)k;
}

static int width_at(const char *s, size_t n, size_t i) {
    uint32_t cp;
    cp_at(s, n, i, &cp);
    return cp < 0x80 ? 1 : fs_lineedit_cp_width(cp);
}

/* Offset of the next character boundary after i (skipping trailing
 * zero-width code points), and of the previous one before i. */
static size_t next_pos(const char *s, size_t n, size_t i) {
    uint32_t cp;
    if (i >= n) return n;
    i += cp_at(s, n, i, &cp);
    while (i < n && width_at(s, n, i) == 0) i += cp_at(s, n, i, &cp);
    return i;
}

static size_t prev_pos(const char *s, size_t n, size_t i) {
    for (;;) {
        if (i == 0) return 0;
        i--;
        while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
        /* A zero-width code point (a combining accent) belongs to the
         * character before it: keep stepping back. */
        if (i > 0 && width_at(s, n, i) == 0) continue;
        return i;
    }
}

static int str_width(const char *s, size_t a, size_t b) {
    int w = 0;
    uint32_t cp;
    while (a < b) {
        w += width_at(s, b, a);
        a += cp_at(s, b, a, &cp);
    }
    return w;
}

/* ---- terminal ---- */

static int term_cols(int fd) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

static int write_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t k = write(fd, s, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Raw mode: keys one at a time, no echo, Ctrl-C/Ctrl-Z as plain bytes (ISIG
 * off), no CR->NL translation on input. Output processing stays on so "\n"
 * still moves to the start of the next line. TCSADRAIN (not TCSAFLUSH) so
 * keys typed ahead are not thrown away. */
static int raw_on(int fd, struct termios *saved) {
    struct termios t;
    if (tcgetattr(fd, saved) < 0) return -1;
    t = *saved;
    t.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
    t.c_cflag |= CS8;
    t.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN | ISIG);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    return tcsetattr(fd, TCSADRAIN, &t);
}

#define PASTE_ON "\x1b[?2004h"  /* bracketed paste: ESC [ 200 ~ text ESC [ 201 ~ */
#define PASTE_OFF "\x1b[?2004l"
#define RETURN_SYMBOL "\xe2\x8f\x8e" /* U+23CE, how a pasted newline is drawn */

/* One byte; 0 at end of input, -1 on error. */
static int read_byte(int fd, unsigned char *c) {
    for (;;) {
        ssize_t k = read(fd, c, 1);
        if (k == 1) return 1;
        if (k == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

/* ---- the editor ---- */

fs_lineedit *fs_lineedit_new(int in_fd, int out_fd, size_t history_max) {
    fs_lineedit *le = fs_xcalloc(1, sizeof *le);
    le->in_fd = in_fd;
    le->out_fd = out_fd;
    le->hist_max = history_max;
    const char *term = getenv("TERM");
    le->interactive = isatty(in_fd) && isatty(out_fd) && !(term && !strcmp(term, "dumb"));
    return le;
}

void fs_lineedit_free(fs_lineedit *le) {
    if (!le) return;
    for (size_t i = 0; i < le->hist_len; i++) free(le->hist[i]);
    free(le->hist);
    free(le);
}

int fs_lineedit_interactive(const fs_lineedit *le) { return le->interactive; }

void fs_lineedit_history_add(fs_lineedit *le, const char *line) {
    if (le->hist_max == 0 || !line[0]) return;
    if (le->hist_len && !strcmp(le->hist[le->hist_len - 1], line)) return;
    if (!le->hist) le->hist = fs_xcalloc(le->hist_max, sizeof *le->hist);
    if (le->hist_len == le->hist_max) {
        free(le->hist[0]);
        memmove(le->hist, le->hist + 1, (le->hist_max - 1) * sizeof *le->hist);
        le->hist_len--;
    }
    le->hist[le->hist_len++] = fs_xstrdup(line);
}

size_t fs_lineedit_history_len(const fs_lineedit *le) { return le->hist_len; }

const char *fs_lineedit_history_get(const fs_lineedit *le, size_t i) {
    return i < le->hist_len ? le->hist[i] : NULL;
}

int fs_lineedit_history_load(fs_lineedit *le, const char *path, fs_err *e) {
    if (!fs_file_exists(path)) return 0;
    char *text;
    size_t len;
    if (fs_read_file(path, &text, &len, e)) return -1;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        *nl = 0;
        fs_lineedit_history_add(le, p);
        p = nl + 1;
    }
    free(text);
    return 0;
}

int fs_lineedit_history_save(const fs_lineedit *le, const char *path, fs_err *e) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return fs_errf(e, "%s: %s", path, strerror(errno));
    for (size_t i = 0; i < le->hist_len; i++) {
        if (strchr(le->hist[i], '\n')) continue; /* a pasted block: kept for this session only */
        if (write_all(fd, le->hist[i], strlen(le->hist[i])) || write_all(fd, "\n", 1)) {
            int err = errno;
            close(fd);
            return fs_errf(e, "%s: %s", path, strerror(err));
        }
    }
    if (close(fd)) return fs_errf(e, "%s: %s", path, strerror(errno));
    return 0;
}

/* Plain mode: a line up to '\n' (a trailing '\r' is dropped too), with no
 * output except the prompt when the output is a terminal. */
static int read_plain(fs_lineedit *le, const char *prompt, char **line, fs_err *e) {
    if (isatty(le->out_fd) && write_all(le->out_fd, prompt, strlen(prompt)))
        return fs_errf(e, "cannot write the prompt: %s", strerror(errno)), FS_LE_ERROR;
    size_t cap = 128, len = 0;
    char *buf = NULL;
    for (;;) {
        if (le->rpos == le->rlen) {
            if (le->reof) break;
            ssize_t k = read(le->in_fd, le->rbuf, sizeof le->rbuf);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) {
                free(buf);
                return fs_errf(e, "read: %s", strerror(errno)), FS_LE_ERROR;
            }
            if (k == 0) {
                le->reof = 1;
                break;
            }
            le->rpos = 0;
            le->rlen = (size_t)k;
        }
        char c = le->rbuf[le->rpos++];
        if (!buf) buf = fs_xmalloc(cap);
        if (c == '\n') {
            buf[len] = 0;
            if (len && buf[len - 1] == '\r') buf[--len] = 0;
            *line = buf;
            return FS_LE_OK;
        }
        if (len + 2 > cap) buf = fs_xrealloc(buf, cap *= 2);
        buf[len++] = c;
    }
    /* End of input: a last line without '\n' still counts. */
    if (!buf) return FS_LE_EOF;
    buf[len] = 0;
    if (len && buf[len - 1] == '\r') buf[--len] = 0;
    *line = buf;
    return FS_LE_OK;
}

/* Redraw: show the part of the line that fits, keeping the cursor visible. */
static int refresh(fs_lineedit *le, const line_state *ls) {
    int cols = term_cols(le->out_fd);
    int pw = str_width(ls->prompt, 0, strlen(ls->prompt));
    int avail = cols - pw - 1;
    if (avail < 1) avail = 1;
    size_t start = 0, end = ls->len;
    while (start < ls->pos && str_width(ls->buf, start, ls->pos) > avail)
        start = next_pos(ls->buf, ls->len, start);
    while (str_width(ls->buf, start, end) > avail) end = prev_pos(ls->buf, ls->len, end);
    if (end < ls->pos) end = ls->pos;
    int cursor_col = pw + str_width(ls->buf, start, ls->pos);

    line_state out = {0};
    char num[32];
    /* Build the whole redraw in one buffer: one write() avoids flicker.
     * A pasted newline or tab takes one column, drawn as a symbol / a space. */
    size_t need = strlen(ls->prompt) + 3 * (end - start) + 64;
    out.buf = fs_xmalloc(need);
    out.len = (size_t)snprintf(out.buf, need, "\r%s", ls->prompt);
    for (size_t i = start; i < end; i++) {
        if (ls->buf[i] == '\n') {
            memcpy(out.buf + out.len, RETURN_SYMBOL, 3);
            out.len += 3;
        } else {
            out.buf[out.len++] = ls->buf[i] == '\t' ? ' ' : ls->buf[i];
        }
    }
    memcpy(out.buf + out.len, "\x1b[0K\r", 5);
    out.len += 5;
    if (cursor_col > 0) {
        int k = snprintf(num, sizeof num, "\x1b[%dC", cursor_col);
        memcpy(out.buf + out.len, num, (size_t)k);
        out.len += (size_t)k;
    }
    int rc = write_all(le->out_fd, out.buf, out.len);
    free(out.buf);
    return rc;
}

static void ls_insert(line_state *ls, const char *s, size_t n) {
    if (ls->len + n + 1 > ls->cap) {
        while (ls->len + n + 1 > ls->cap) ls->cap = ls->cap ? ls->cap * 2 : 128;
        ls->buf = fs_xrealloc(ls->buf, ls->cap);
    }
    memmove(ls->buf + ls->pos + n, ls->buf + ls->pos, ls->len - ls->pos);
    memcpy(ls->buf + ls->pos, s, n);
    ls->len += n;
    ls->pos += n;
    ls->buf[ls->len] = 0;
}

/* Delete bytes [a, b) and put the cursor at a. */
static void ls_delete(line_state *ls, size_t a, size_t b) {
    memmove(ls->buf + a, ls->buf + b, ls->len - b);
    ls->len -= b - a;
    ls->pos = a;
    ls->buf[ls->len] = 0;
}

static void ls_set(line_state *ls, const char *s) {
    ls->len = ls->pos = 0;
    ls_insert(ls, s, strlen(s));
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

static size_t word_left(const line_state *ls) {
    size_t i = ls->pos;
    while (i > 0 && is_space(ls->buf[i - 1])) i--;
    while (i > 0 && !is_space(ls->buf[i - 1])) i--;
    return i;
}

static size_t word_right(const line_state *ls) {
    size_t i = ls->pos;
    while (i < ls->len && is_space(ls->buf[i])) i++;
    while (i < ls->len && !is_space(ls->buf[i])) i++;
    return i;
}

enum { KEY_NONE, KEY_UP, KEY_DOWN, KEY_LEFT, KEY_RIGHT, KEY_HOME, KEY_END, KEY_DEL, KEY_WLEFT, KEY_WRIGHT, KEY_PASTE };

/* After ESC: read the rest of a CSI (ESC [ params final) or SS3 (ESC O x)
 * sequence and name the key; unknown sequences are consumed and ignored. */
static int read_escape(int fd) {
    unsigned char c, kind;
    if (read_byte(fd, &kind) != 1) return KEY_NONE;
    if (kind == 'O') {
        if (read_byte(fd, &c) != 1) return KEY_NONE;
        switch (c) {
        case 'A': return KEY_UP;
        case 'B': return KEY_DOWN;
        case 'C': return KEY_RIGHT;
        case 'D': return KEY_LEFT;
        case 'H': return KEY_HOME;
        case 'F': return KEY_END;
        }
        return KEY_NONE;
    }
    if (kind != '[') return KEY_NONE;
    int params[4] = {0}, np = 0;
    for (int guard = 0; guard < 32; guard++) {
        if (read_byte(fd, &c) != 1) return KEY_NONE;
        if (c >= '0' && c <= '9') {
            if (np == 0) np = 1;
            if (params[np - 1] < 10000) params[np - 1] = params[np - 1] * 10 + (c - '0');
        } else if (c == ';') {
            if (np == 0) np = 1;
            if (np < 4) np++;
        } else if (c >= 0x40 && c <= 0x7E) {
            /* A modifier parameter of 5 (Ctrl) or 3 (Alt) on left/right moves by word. */
            int word = np >= 2 && (params[1] == 5 || params[1] == 3);
            switch (c) {
            case 'A': return KEY_UP;
            case 'B': return KEY_DOWN;
            case 'C': return word ? KEY_WRIGHT : KEY_RIGHT;
            case 'D': return word ? KEY_WLEFT : KEY_LEFT;
            case 'H': return KEY_HOME;
            case 'F': return KEY_END;
            case '~':
                switch (params[0]) {
                case 1: case 7: return KEY_HOME;
                case 4: case 8: return KEY_END;
                case 3: return KEY_DEL;
                case 200: return KEY_PASTE;
                }
            }
            return KEY_NONE;
        }
    }
    return KEY_NONE;
}

/* After ESC [ 200 ~: insert everything up to ESC [ 201 ~ as text. Line
 * ends (CR, LF, CR LF) become '\n', tabs stay, other control bytes are
 * dropped. Returns 0, or -1 when the input ended or failed first. */
static int read_paste(fs_lineedit *le, line_state *ls) {
    static const char end[] = "\x1b[201~";
    size_t matched = 0;
    int last_cr = 0;
    for (;;) {
        unsigned char c;
        if (read_byte(le->in_fd, &c) != 1) return -1;
        if ((char)c == end[matched]) {
            if (!end[++matched]) return 0;
            continue;
        }
        if (matched) { /* an ESC that did not end the paste: drop it with what followed */
            matched = (char)c == end[0];
            if (matched) continue;
        }
        if (c == '\n' && last_cr) {
            last_cr = 0;
            continue;
        }
        last_cr = c == '\r';
        if (c == '\r') c = '\n';
        if (c < 0x20 && c != '\n' && c != '\t') continue;
        char b = (char)c;
        ls_insert(ls, &b, 1);
    }
}

/* The line is done: bracketed paste off, then the last text (so what the
 * program prints next starts its line). */
static void end_line(fs_lineedit *le, const char *text) {
    write_all(le->out_fd, PASTE_OFF, strlen(PASTE_OFF));
    write_all(le->out_fd, text, strlen(text));
}

static int edit(fs_lineedit *le, const char *prompt, char **line, fs_err *e) {
    line_state ls = {0};
    ls.prompt = prompt;
    ls_set(&ls, "");
    /* History browsing: hist_pos == hist_len is the line being typed, saved
     * in `scratch` while older entries are shown. */
    size_t hist_pos = le->hist_len;
    char *scratch = NULL;
    int result = FS_LE_ERROR;

    if (refresh(le, &ls)) {
        fs_errf(e, "cannot write to the terminal: %s", strerror(errno));
        goto done;
    }
    for (;;) {
        unsigned char c;
        int r = read_byte(le->in_fd, &c);
        if (r < 0) {
            fs_errf(e, "read: %s", strerror(errno));
            goto done;
        }
        if (r == 0) { /* input closed: a partial line still counts */
            if (ls.len) {
                result = FS_LE_OK;
                goto accept;
            }
            end_line(le, "\n");
            result = FS_LE_EOF;
            goto done;
        }
        int key = KEY_NONE;
        switch (c) {
        case '\r': case '\n':
            result = FS_LE_OK;
            goto accept;
        case 3: /* Ctrl-C */
            end_line(le, "^C\n");
            result = FS_LE_CANCEL;
            goto done;
        case 4: /* Ctrl-D */
            if (ls.len == 0) {
                end_line(le, "\n");
                result = FS_LE_EOF;
                goto done;
            }
            key = KEY_DEL;
            break;
        case 127: case 8: /* Backspace, Ctrl-H */
            if (ls.pos > 0) ls_delete(&ls, prev_pos(ls.buf, ls.len, ls.pos), ls.pos);
            break;
        case 1: key = KEY_HOME; break;
        case 5: key = KEY_END; break;
        case 2: key = KEY_LEFT; break;
        case 6: key = KEY_RIGHT; break;
        case 16: key = KEY_UP; break;
        case 14: key = KEY_DOWN; break;
        case 11: ls_delete(&ls, ls.pos, ls.len); break;                 /* Ctrl-K */
        case 21: ls_delete(&ls, 0, ls.pos); break;                      /* Ctrl-U */
        case 23: ls_delete(&ls, word_left(&ls), ls.pos); break;         /* Ctrl-W */
        case 12: write_all(le->out_fd, "\x1b[H\x1b[2J", 7); break;      /* Ctrl-L */
        case 27: key = read_escape(le->in_fd); break;
        default:
            if (c >= 0x20) {
                /* A printable character: gather the whole UTF-8 sequence. */
                char u[4] = {(char)c};
                size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
                for (size_t k = 1; k < n; k++) {
                    unsigned char d;
                    if (read_byte(le->in_fd, &d) != 1) break;
                    u[k] = (char)d;
                }
                ls_insert(&ls, u, n);
            }
            /* other control characters (Tab, ...) are ignored */
        }
        switch (key) {
        case KEY_LEFT: ls.pos = prev_pos(ls.buf, ls.len, ls.pos); break;
        case KEY_RIGHT: ls.pos = next_pos(ls.buf, ls.len, ls.pos); break;
        case KEY_WLEFT: ls.pos = word_left(&ls); break;
        case KEY_WRIGHT: ls.pos = word_right(&ls); break;
        case KEY_HOME: ls.pos = 0; break;
        case KEY_END: ls.pos = ls.len; break;
        case KEY_PASTE:
            if (read_paste(le, &ls)) {
                result = ls.len ? FS_LE_OK : FS_LE_EOF;
                if (ls.len) goto accept;
                goto done;
            }
            break;
        case KEY_DEL:
            if (ls.pos < ls.len) ls_delete(&ls, ls.pos, next_pos(ls.buf, ls.len, ls.pos));
            break;
        case KEY_UP:
            if (hist_pos > 0) {
                if (hist_pos == le->hist_len) {
                    free(scratch);
                    scratch = fs_xstrdup(ls.buf);
                }
                ls_set(&ls, le->hist[--hist_pos]);
            }
            break;
        case KEY_DOWN:
            if (hist_pos < le->hist_len) {
                hist_pos++;
                ls_set(&ls, hist_pos == le->hist_len ? (scratch ? scratch : "") : le->hist[hist_pos]);
            }
            break;
        }
        if (refresh(le, &ls)) {
            fs_errf(e, "cannot write to the terminal: %s", strerror(errno));
            goto done;
        }
    }
accept:
    /* Leave the finished line fully visible, then move to the next row. */
    ls.pos = ls.len;
    refresh(le, &ls);
    end_line(le, "\n");
    *line = ls.buf;
    ls.buf = NULL;
done:
    free(ls.buf);
    free(scratch);
    return result;
}

int fs_lineedit_read(fs_lineedit *le, const char *prompt, char **line, fs_err *e) {
    *line = NULL;
    if (!prompt) prompt = "";
    if (!le->interactive) return read_plain(le, prompt, line, e);
    struct termios saved;
    if (raw_on(le->in_fd, &saved)) {
        fs_errf(e, "cannot set the terminal to raw mode: %s", strerror(errno));
        return FS_LE_ERROR;
    }
    write_all(le->out_fd, PASTE_ON, strlen(PASTE_ON));
    int rc = edit(le, prompt, line, e);
    if (rc == FS_LE_ERROR) write_all(le->out_fd, PASTE_OFF, strlen(PASTE_OFF));
    tcsetattr(le->in_fd, TCSADRAIN, &saved);
    return rc;
}
