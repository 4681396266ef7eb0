/* jinja_lex.c - template text -> tokens (jinja_impl.h), with the
 * whitespace rules applied.
 *
 * The lexer splits the source into literal text and tags:
 *     text  {{ expression }}  {% statement %}  {# comment #}
 * and applies the whitespace rules here, once, so the renderer only
 * copies text (the rules of jinja2's lexer with transformers' settings):
 *   - the source's line ends become "\n", and one final "\n" is dropped
 *     (keep_trailing_newline=False);
 *   - "{%-" / "{{-" / "{#-" strip all whitespace before the tag, "-%}" /
 *     "-}}" / "-#}" all whitespace after it;
 *   - trim_blocks: a block or comment tag eats the one "\n" right after it;
 *   - lstrip_blocks: spaces and tabs from the start of a line up to a block
 *     or comment tag are dropped ("{%+" keeps them, "+%}" keeps the "\n").
 * Inside a tag, "}}" or "%}" ends it only outside brackets, so
 * {{ {'a': {'b': 1}} }} reads as one expression. {% raw %} ... {% endraw %}
 * is text. String literals are decoded here.
 *
 * Docs: docs/chat.md
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

/* ---- errors ---- */

int jinja_perr(jparser *p, int line, int col, const char *fmt, ...) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fs_errf(p->e, "template line %d, column %d: %s", line, col, msg);
}

/* How a token reads in a message: printable, bounded. */
const char *jinja_tok_desc(const jtok *k, char *buf, size_t cap) {
    switch (k->type) {
    case T_EOF: return "end of template";
    case T_TEXT: return "template text";
    case T_VAR_BEGIN: return "'{{'";
    case T_VAR_END: return "'}}'";
    case T_BLOCK_BEGIN: return "'{%'";
    case T_BLOCK_END: return "'%}'";
    case T_STRING: return "a string";
    case T_INT: case T_FLOAT: return "a number";
    default: break;
    }
    size_t n = k->n < 40 ? k->n : 40, j = 0;
    buf[j++] = '\'';
    for (size_t i = 0; i < n && j + 2 < cap; i++) buf[j++] = (unsigned char)k->s[i] < 0x20 ? '?' : k->s[i];
    buf[j++] = '\'';
    buf[j] = 0;
    return buf;
}

/* ---- lexer ---- */

static void push_tok(jparser *p, jtok k) {
    if (p->ntoks == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 256;
        p->toks = fs_xrealloc(p->toks, p->cap * sizeof *p->toks);
    }
    p->toks[p->ntoks++] = k;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
static int is_name0(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

typedef struct {
    jparser *p;
    size_t i;
    int line, col;
} lexpos;

static void adv(lexpos *L, size_t n) {
    for (size_t k = 0; k < n && L->i < L->p->len; k++) {
        if (L->p->src[L->i] == '\n') L->line++, L->col = 1;
        else L->col++;
        L->i++;
    }
}

static int starts(const lexpos *L, const char *s) {
    size_t n = strlen(s);
    return L->i + n <= L->p->len && !memcmp(L->p->src + L->i, s, n);
}

static void emit_text(jparser *p, const char *s, size_t n, int line, int col) {
    if (!n) return;
    jtok k = {T_TEXT, line, col, s, n, {0}};
    push_tok(p, k);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A string literal, decoded as Python's "unicode-escape" does (jinja2
 * decodes literals so): \n \t \r \\ \' \" \a \b \f \v, octal \ooo, \xhh,
 * \uhhhh, \Uhhhhhhhh; a backslash before a line end drops both; any other
 * backslash stays as it is (\N{name} included: not implemented). */
static int lex_string(lexpos *L, jtok *k) {
    jparser *p = L->p;
    char q = p->src[L->i];
    int line = L->line, col = L->col;
    size_t start = L->i + 1, end = start;
    while (end < p->len && p->src[end] != q) end += p->src[end] == '\\' ? 2 : 1;
    if (end >= p->len) return jinja_perr(p, line, col, "unterminated string literal");
    char *out = ja_alloc(&p->t->arena, end - start + 1);
    if (!out) return jinja_perr(p, line, col, "template too large");
    size_t n = 0;
    for (size_t i = start; i < end;) {
        char c = p->src[i];
        if (c != '\\') {
            out[n++] = c, i++;
            continue;
        }
        char d = p->src[i + 1];
        if (d == '\n') { /* a backslash before a line end joins the lines */
            i += 2;
            continue;
        }
        const char *simple = strchr("ntr\\'\"abfv", d);
        if (simple && d) {
            static const char map[] = "\n\t\r\\'\"\a\b\f\v";
            out[n++] = map[simple - "ntr\\'\"abfv"];
            i += 2;
        } else if (d >= '0' && d <= '7') {
            unsigned v = 0;
            size_t j = i + 1;
            for (int m = 0; m < 3 && j < end && p->src[j] >= '0' && p->src[j] <= '7'; m++, j++) v = v * 8 + (unsigned)(p->src[j] - '0');
            char u[4];
            int w = fs_utf8_encode(v, u);
            memcpy(out + n, u, (size_t)w), n += (size_t)w;
            i = j;
        } else if (d == 'x' || d == 'u' || d == 'U') {
            int digits = d == 'x' ? 2 : d == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (int m = 0; m < digits; m++) {
                int h = i + 2 + (size_t)m < end ? hexval(p->src[i + 2 + m]) : -1;
                if (h < 0) return jinja_perr(p, line, col, "string literal: truncated \\%c escape", d);
                v = v * 16 + (uint32_t)h;
            }
            if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
                return jinja_perr(p, line, col, "string literal: \\%c escape is not a Unicode scalar value", d);
            char u[4];
            int w = fs_utf8_encode(v, u);
            memcpy(out + n, u, (size_t)w), n += (size_t)w;
            i += 2 + (size_t)digits;
        } else { /* unknown escape: kept */
            out[n++] = '\\';
            i++;
        }
    }
    out[n] = 0;
    k->type = T_STRING, k->line = line, k->col = col, k->s = out, k->n = n;
    adv(L, end + 1 - L->i);
    return 0;
}

static const char *const OPS2[] = {"//", "**", "==", "!=", "<=", ">=", NULL};

/* Lex the inside of a {{ }} or {% %} tag, up to and including its end.
 * *strip_after: the end was "-}}" / "-%}"; *keep_nl: "+%}". */
static int lex_tag(lexpos *L, int block, int *strip_after, int *keep_nl) {
    jparser *p = L->p;
    int balance = 0;
    *strip_after = *keep_nl = 0;
    for (;;) {
        while (L->i < p->len && is_ws(p->src[L->i])) adv(L, 1);
        if (L->i >= p->len) return jinja_perr(p, L->line, L->col, "unclosed '%s' tag", block ? "{%" : "{{");
        const char *end = block ? "%}" : "}}";
        if (balance == 0) {
            int m = p->src[L->i] == '-' ? 1 : p->src[L->i] == '+' && block ? 2 : 0;
            lexpos M = *L;
            if (m) adv(&M, 1);
            if (starts(&M, end)) {
                jtok k = {block ? T_BLOCK_END : T_VAR_END, L->line, L->col, end, 2, {0}};
                push_tok(p, k);
                *strip_after = m == 1;
                *keep_nl = m == 2;
                adv(L, (size_t)(m ? 3 : 2));
                return 0;
            }
        }
        char c = p->src[L->i];
        jtok k = {T_OP, L->line, L->col, p->src + L->i, 1, {0}};
        if (is_name0(c)) {
            size_t j = L->i;
            while (j < p->len && (is_name0(p->src[j]) || is_digit(p->src[j]))) j++;
            k.type = T_NAME, k.n = j - L->i;
            adv(L, k.n);
        } else if (is_digit(c)) {
            size_t j = L->i;
            int fl = 0;
            while (j < p->len && (is_digit(p->src[j]) || p->src[j] == '_')) j++;
            if (j + 1 < p->len && p->src[j] == '.' && is_digit(p->src[j + 1])) {
                fl = 1, j++;
                while (j < p->len && (is_digit(p->src[j]) || p->src[j] == '_')) j++;
            }
            if (j < p->len && (p->src[j] == 'e' || p->src[j] == 'E')) {
                size_t m = j + 1;
                if (m < p->len && (p->src[m] == '+' || p->src[m] == '-')) m++;
                if (m < p->len && is_digit(p->src[m])) {
                    fl = 1, j = m;
                    while (j < p->len && is_digit(p->src[j])) j++;
                }
            }
            char num[64];
            size_t nn = 0;
            for (size_t q = L->i; q < j && nn + 1 < sizeof num; q++)
                if (p->src[q] != '_') num[nn++] = p->src[q];
            num[nn] = 0;
            if (fl) {
                k.type = T_FLOAT;
                k.value = jv_float(strtod(num, NULL));
            } else {
                errno = 0;
                long long v = strtoll(num, NULL, 10);
                if (errno || nn + 1 >= sizeof num) return jinja_perr(p, L->line, L->col, "integer literal too large");
                k.type = T_INT;
                k.value = jv_int(v);
            }
            k.n = j - L->i;
            adv(L, k.n);
        } else if (c == '\'' || c == '"') {
            if (lex_string(L, &k)) return -1;
        } else {
            int two = 0;
            for (int o = 0; OPS2[o]; o++)
                if (starts(L, OPS2[o])) two = 1;
            if (!two && !strchr("+-*/%~<>()[]{},.:|=", c))
                return jinja_perr(p, L->line, L->col, "unexpected character '%c' in a tag", (unsigned char)c < 0x20 ? '?' : c);
            k.n = two ? 2 : 1;
            if (c == '(' || c == '[' || c == '{') balance++;
            if ((c == ')' || c == ']' || c == '}') && balance > 0) balance--;
            adv(L, k.n);
        }
        push_tok(p, k);
    }
}

/* Is text[a..b) only spaces and tabs (what lstrip_blocks removes)? */
static int blank(const char *s, size_t a, size_t b) {
    for (size_t i = a; i < b; i++)
        if (!is_ws(s[i]) || s[i] == '\n') return 0;
    return 1;
}

static int lex(jparser *p) {
    lexpos L = {p, 0, 1, 1};
    int line_starting = 1, strip_next = 0;
    while (L.i < p->len) {
        if (strip_next) {
            size_t before = L.i;
            while (L.i < p->len && is_ws(p->src[L.i])) adv(&L, 1);
            if (L.i > before) line_starting = p->src[L.i - 1] == '\n';
            strip_next = 0;
        }
        /* the next tag */
        size_t t = L.i;
        while (t + 1 < p->len && !(p->src[t] == '{' && strchr("{%#", p->src[t + 1]))) t++;
        if (t + 1 >= p->len) t = p->len;
        size_t a = L.i, b = t;
        int tline = L.line, tcol = L.col;
        if (t < p->len) {
            char kind = p->src[t + 1], m = t + 2 < p->len ? p->src[t + 2] : 0;
            if (m == '-') {
                while (b > a && is_ws(p->src[b - 1])) b--;
            } else if (kind != '{' && m != '+') {
                size_t l = b;
                while (l > a && p->src[l - 1] != '\n') l--;
                if ((l > a || line_starting) && blank(p->src, l, b)) b = l;
            }
        }
        emit_text(p, p->src + a, b - a, tline, tcol);
        if (t >= p->len) {
            adv(&L, p->len - L.i);
            break;
        }
        adv(&L, t - L.i);
        char kind = p->src[t + 1], m = t + 2 < p->len ? p->src[t + 2] : 0;
        int line = L.line, col = L.col;
        adv(&L, (size_t)(m == '-' || m == '+' ? 3 : 2));
        int strip_after = 0, keep_nl = 0;
        if (kind == '#') {
            size_t c = L.i;
            while (c + 1 < p->len && !(p->src[c] == '#' && p->src[c + 1] == '}')) c++;
            if (c + 1 >= p->len) return jinja_perr(p, line, col, "unclosed comment");
            strip_after = c > L.i && p->src[c - 1] == '-';
            keep_nl = c > L.i && p->src[c - 1] == '+';
            adv(&L, c + 2 - L.i);
        } else {
            jtok k = {kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, line, col, p->src + t, 2, {0}};
            size_t first = p->ntoks;
            push_tok(p, k);
            if (lex_tag(&L, kind == '%', &strip_after, &keep_nl)) return -1;
            /* {% raw %}: everything up to {% endraw %} is text */
            if (kind == '%' && p->ntoks == first + 3 && p->toks[first + 1].type == T_NAME &&
                p->toks[first + 1].n == 3 && !memcmp(p->toks[first + 1].s, "raw", 3)) {
                p->ntoks = first;
                if (strip_after)
                    while (L.i < p->len && is_ws(p->src[L.i])) adv(&L, 1);
                else if (!keep_nl && L.i < p->len && p->src[L.i] == '\n')
                    adv(&L, 1);
                size_t s0 = L.i, r = L.i;
                int found = 0;
                int rline = L.line, rcol = L.col;
                for (; r + 1 < p->len; r++) {
                    if (p->src[r] != '{' || p->src[r + 1] != '%') continue;
                    size_t q = r + 2;
                    int mm = q < p->len && (p->src[q] == '-' || p->src[q] == '+') ? p->src[q++] : 0;
                    while (q < p->len && is_ws(p->src[q])) q++;
                    if (q + 6 <= p->len && !memcmp(p->src + q, "endraw", 6)) {
                        q += 6;
                        while (q < p->len && is_ws(p->src[q])) q++;
                        int m2 = q < p->len && (p->src[q] == '-' || p->src[q] == '+') ? p->src[q++] : 0;
                        if (q + 2 <= p->len && p->src[q] == '%' && p->src[q + 1] == '}') {
                            size_t e = r;
                            if (mm == '-')
                                while (e > s0 && is_ws(p->src[e - 1])) e--;
                            emit_text(p, p->src + s0, e - s0, rline, rcol);
                            adv(&L, q + 2 - L.i);
                            strip_after = m2 == '-';
                            keep_nl = m2 == '+';
                            found = 1;
                            break;
                        }
                    }
                }
                if (!found) return jinja_perr(p, line, col, "'raw' without 'endraw'");
                kind = '%';
            }
        }
        line_starting = 0;
        if (strip_after) {
            strip_next = 1;
        } else if (kind != '{' && !keep_nl && L.i < p->len && p->src[L.i] == '\n') {
            adv(&L, 1); /* trim_blocks */
            line_starting = 1;
        }
    }
    jtok k = {T_EOF, L.line, L.col, "", 0, {0}};
    push_tok(p, k);
    return 0;
}

/* The source as the lexer reads it (UTF-8 checked, line ends "\n", one
 * final "\n" dropped: jinja2's keep_trailing_newline=False), then its
 * tokens into p->toks. */
int jinja_lex(jparser *p, const char *src, size_t len) {
    fs_jinja *t = p->t;
    fs_err *e = p->e;
    /* the source must be UTF-8; line ends become "\n"; one final "\n" goes */
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = fs_utf8_decode((const unsigned char *)src + i, len - i, &cp);
        if (k == 0) return fs_errf(e, "template: not valid UTF-8 (byte %zu)", i);
        if (cp == 0) return fs_errf(e, "template: NUL byte at %zu", i);
        i += (size_t)k;
    }
    char *s = ja_alloc(&t->arena, len + 1);
    if (!s) return fs_errf(e, "template too large (%zu bytes)", len);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;
    p->src = s, p->len = n;
    return lex(p);
}
