/* jinja_parse.c - template text -> tokens -> syntax tree (jinja_impl.h).
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
 * {{ {'a': {'b': 1}} }} reads as one expression.
 *
 * The parser is recursive descent with Jinja's precedence, loosest first:
 *     x if c else y  |  or  |  and  |  not  |  == != < <= > >= in, not in
 *     + -  |  ~  |  * / // %  |  **  |  unary - +  |  filters x|f, tests x is t
 *     |  postfix x.a x[i] x[a:b:c] x(...)  |  literals, names, ( ), [ ], { }
 *
 * Docs: docs/chat.md
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

#define MAX_DEPTH 200 /* nesting of expressions and blocks */

enum { T_EOF, T_TEXT, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END, T_NAME, T_STRING, T_INT, T_FLOAT, T_OP };

typedef struct {
    int type;
    int line, col;
    const char *s; /* name / op / text / decoded string */
    size_t n;
    jv value; /* T_INT, T_FLOAT */
} tok;

typedef struct {
    fs_jinja *t;
    fs_err *e;
    const char *src; /* normalised source */
    size_t len;
    tok *toks;
    size_t ntoks, cap, pos;
    int depth;
} parser;

/* ---- errors ---- */

static int perr(parser *p, int line, int col, const char *fmt, ...) FS_PRINTF(4, 5);
static int perr(parser *p, int line, int col, const char *fmt, ...) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fs_errf(p->e, "template line %d, column %d: %s", line, col, msg);
}

/* How a token reads in a message: printable, bounded. */
static const char *tok_desc(const tok *k, char *buf, size_t cap) {
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

static void push_tok(parser *p, tok k) {
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
    parser *p;
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

static void emit_text(parser *p, const char *s, size_t n, int line, int col) {
    if (!n) return;
    tok k = {T_TEXT, line, col, s, n, {0}};
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
 * \uhhhh, \Uhhhhhhhh; any other backslash stays as it is. */
static int lex_string(lexpos *L, tok *k) {
    parser *p = L->p;
    char q = p->src[L->i];
    int line = L->line, col = L->col;
    size_t start = L->i + 1, end = start;
    while (end < p->len && p->src[end] != q) end += p->src[end] == '\\' ? 2 : 1;
    if (end >= p->len) return perr(p, line, col, "unterminated string literal");
    char *out = ja_alloc(&p->t->arena, end - start + 1);
    if (!out) return perr(p, line, col, "template too large");
    size_t n = 0;
    for (size_t i = start; i < end;) {
        char c = p->src[i];
        if (c != '\\') {
            out[n++] = c, i++;
            continue;
        }
        char d = p->src[i + 1];
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
                if (h < 0) return perr(p, line, col, "string literal: truncated \\%c escape", d);
                v = v * 16 + (uint32_t)h;
            }
            if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
                return perr(p, line, col, "string literal: \\%c escape is not a Unicode scalar value", d);
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
    parser *p = L->p;
    int balance = 0;
    *strip_after = *keep_nl = 0;
    for (;;) {
        while (L->i < p->len && is_ws(p->src[L->i])) adv(L, 1);
        if (L->i >= p->len) return perr(p, L->line, L->col, "unclosed '%s' tag", block ? "{%" : "{{");
        const char *end = block ? "%}" : "}}";
        if (balance == 0) {
            int m = p->src[L->i] == '-' ? 1 : p->src[L->i] == '+' && block ? 2 : 0;
            lexpos M = *L;
            if (m) adv(&M, 1);
            if (starts(&M, end)) {
                tok k = {block ? T_BLOCK_END : T_VAR_END, L->line, L->col, end, 2, {0}};
                push_tok(p, k);
                *strip_after = m == 1;
                *keep_nl = m == 2;
                adv(L, (size_t)(m ? 3 : 2));
                return 0;
            }
        }
        char c = p->src[L->i];
        tok k = {T_OP, L->line, L->col, p->src + L->i, 1, {0}};
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
                if (errno || nn + 1 >= sizeof num) return perr(p, L->line, L->col, "integer literal too large");
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
                return perr(p, L->line, L->col, "unexpected character '%c' in a tag", (unsigned char)c < 0x20 ? '?' : c);
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

static int lex(parser *p) {
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
            if (c + 1 >= p->len) return perr(p, line, col, "unclosed comment");
            strip_after = c > L.i && p->src[c - 1] == '-';
            keep_nl = c > L.i && p->src[c - 1] == '+';
            adv(&L, c + 2 - L.i);
        } else {
            tok k = {kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, line, col, p->src + t, 2, {0}};
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
                if (!found) return perr(p, line, col, "'raw' without 'endraw'");
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
    tok k = {T_EOF, L.line, L.col, "", 0, {0}};
    push_tok(p, k);
    return 0;
}

/* ---- parser ---- */

static tok *cur(parser *p) { return &p->toks[p->pos]; }
static int is_op(const tok *k, const char *op) { return k->type == T_OP && k->n == strlen(op) && !memcmp(k->s, op, k->n); }
static int is_name(const tok *k, const char *nm) { return k->type == T_NAME && k->n == strlen(nm) && !memcmp(k->s, nm, k->n); }

static jnode *node(parser *p, int kind, const tok *at) {
    jnode *n = ja_alloc(&p->t->arena, sizeof *n);
    if (!n) {
        perr(p, at->line, at->col, "template too large");
        return NULL;
    }
    n->kind = (uint8_t)kind;
    n->line = at->line, n->col = at->col;
    return n;
}

static int expect_op(parser *p, const char *op) {
    char b[64];
    if (!is_op(cur(p), op)) return perr(p, cur(p)->line, cur(p)->col, "expected '%s', found %s", op, tok_desc(cur(p), b, sizeof b));
    p->pos++;
    return 0;
}

static int expect_end(parser *p, const char *what) {
    char b[64];
    if (cur(p)->type != T_BLOCK_END)
        return perr(p, cur(p)->line, cur(p)->col, "expected '%%}' after '%s', found %s", what, tok_desc(cur(p), b, sizeof b));
    p->pos++;
    return 0;
}

/* A growable array of node pointers, copied into the arena when done. */
typedef struct {
    jnode **v;
    size_t n, cap;
} nvec;

static void nv_push(nvec *v, jnode *x) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 8;
        v->v = fs_xrealloc(v->v, v->cap * sizeof *v->v);
    }
    v->v[v->n++] = x;
}

static jnode **nv_done(parser *p, nvec *v) {
    jnode **a = v->n ? ja_alloc(&p->t->arena, v->n * sizeof *a) : NULL;
    if (a) memcpy(a, v->v, v->n * sizeof *a);
    free(v->v);
    v->v = NULL;
    return a;
}

typedef struct {
    const char **s;
    size_t *n;
    size_t len, cap;
} namevec;

static void names_push(namevec *v, const char *s, size_t n) {
    if (v->len == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 4;
        v->s = fs_xrealloc(v->s, v->cap * sizeof *v->s);
        v->n = fs_xrealloc(v->n, v->cap * sizeof *v->n);
    }
    v->s[v->len] = s, v->n[v->len++] = n;
}

static int names_done(parser *p, namevec *v, jnode *x) {
    x->nnames = v->len;
    if (v->len) {
        x->names = ja_alloc(&p->t->arena, v->len * sizeof *x->names);
        x->name_lens = ja_alloc(&p->t->arena, v->len * sizeof *x->name_lens);
        if (x->names && x->name_lens) {
            memcpy(x->names, v->s, v->len * sizeof *v->s);
            memcpy(x->name_lens, v->n, v->len * sizeof *v->n);
        }
    }
    free(v->s);
    free(v->n);
    if (v->len && (!x->names || !x->name_lens)) return perr(p, x->line, x->col, "template too large");
    return 0;
}

static jnode *parse_expr(parser *p);
static jnode *parse_or(parser *p);
static jnode *parse_unary(parser *p, int with_filter);

static int enter(parser *p) {
    if (++p->depth > MAX_DEPTH) return perr(p, cur(p)->line, cur(p)->col, "expressions nested deeper than %d", MAX_DEPTH);
    return 0;
}

/* ( args ) after a callee, filter or test: positional then name=value. */
static int parse_args(parser *p, jnode *x) {
    nvec pos = {0}, kw = {0};
    namevec names = {0};
    if (expect_op(p, "(")) return -1;
    while (!is_op(cur(p), ")")) {
        if (pos.n + kw.n && expect_op(p, ",")) goto fail;
        if (is_op(cur(p), ")")) break; /* a trailing comma */
        if (cur(p)->type == T_NAME && is_op(&p->toks[p->pos + 1], "=")) {
            names_push(&names, cur(p)->s, cur(p)->n);
            p->pos += 2;
            jnode *v = parse_expr(p);
            if (!v) goto fail;
            nv_push(&kw, v);
        } else {
            if (kw.n) {
                perr(p, cur(p)->line, cur(p)->col, "a positional argument after a keyword argument");
                goto fail;
            }
            jnode *v = parse_expr(p);
            if (!v) goto fail;
            nv_push(&pos, v);
        }
    }
    p->pos++;
    x->nkids = pos.n;
    x->kids = nv_done(p, &pos);
    x->kwvals = nv_done(p, &kw);
    return names_done(p, &names, x);
fail:
    free(pos.v);
    free(kw.v);
    free(names.s);
    free(names.n);
    return -1;
}

static jnode *parse_primary(parser *p) {
    tok *k = cur(p);
    char b[64];
    jnode *x;
    if (k->type == T_NAME) {
        p->pos++;
        static const struct { const char *s; int t, v; } consts[] = {
            {"true", JV_BOOL, 1}, {"True", JV_BOOL, 1}, {"false", JV_BOOL, 0}, {"False", JV_BOOL, 0},
            {"none", JV_NONE, 0}, {"None", JV_NONE, 0}};
        for (size_t i = 0; i < sizeof consts / sizeof *consts; i++)
            if (is_name(k, consts[i].s)) {
                if (!(x = node(p, E_CONST, k))) return NULL;
                x->value = consts[i].t == JV_BOOL ? jv_bool(consts[i].v) : jv_none();
                return x;
            }
        if (!(x = node(p, E_NAME, k))) return NULL;
        x->s = k->s, x->sn = k->n;
        return x;
    }
    if (k->type == T_STRING) { /* adjacent literals join: 'a' 'b' */
        size_t n = 0, i = p->pos;
        for (; p->toks[i].type == T_STRING; i++) n += p->toks[i].n;
        char *s = ja_alloc(&p->t->arena, n + 1);
        if (!s || !(x = node(p, E_CONST, k))) return perr(p, k->line, k->col, "template too large"), NULL;
        n = 0;
        for (; cur(p)->type == T_STRING; p->pos++) memcpy(s + n, cur(p)->s, cur(p)->n), n += cur(p)->n;
        x->value = jv_str(s, n);
        return x;
    }
    if (k->type == T_INT || k->type == T_FLOAT) {
        p->pos++;
        if (!(x = node(p, E_CONST, k))) return NULL;
        x->value = k->value;
        return x;
    }
    if (is_op(k, "(") || is_op(k, "[")) {
        int paren = is_op(k, "(");
        const char *close = paren ? ")" : "]";
        p->pos++;
        nvec items = {0};
        int comma = 0;
        while (!is_op(cur(p), close)) {
            if (items.n) {
                if (expect_op(p, ",")) goto fail_items;
                comma = 1;
                if (is_op(cur(p), close)) break;
            }
            jnode *v = parse_expr(p);
            if (!v) goto fail_items;
            nv_push(&items, v);
        }
        p->pos++;
        if (paren && items.n == 1 && !comma) { /* (x): grouping */
            jnode *v = items.v[0];
            free(items.v);
            return v;
        }
        if (!(x = node(p, E_LIST, k))) goto fail_items;
        x->tuple = (uint8_t)paren;
        x->nkids = items.n;
        x->kids = nv_done(p, &items);
        return x;
    fail_items:
        free(items.v);
        return NULL;
    }
    if (is_op(k, "{")) {
        p->pos++;
        nvec kv = {0};
        while (!is_op(cur(p), "}")) {
            if (kv.n && expect_op(p, ",")) goto fail_kv;
            if (is_op(cur(p), "}")) break;
            jnode *key = parse_expr(p);
            if (!key || expect_op(p, ":")) goto fail_kv;
            jnode *v = parse_expr(p);
            if (!v) goto fail_kv;
            nv_push(&kv, key);
            nv_push(&kv, v);
        }
        p->pos++;
        if (!(x = node(p, E_DICT, k))) goto fail_kv;
        x->nkids = kv.n;
        x->kids = nv_done(p, &kv);
        return x;
    fail_kv:
        free(kv.v);
        return NULL;
    }
    perr(p, k->line, k->col, "expected an expression, found %s", tok_desc(k, b, sizeof b));
    return NULL;
}

/* x.name  x[i]  x[a:b:c]  x(...) */
static jnode *parse_postfix(parser *p, jnode *x) {
    for (;;) {
        tok *k = cur(p);
        if (is_op(k, ".")) {
            p->pos++;
            tok *nm = cur(p);
            jnode *y = node(p, E_ATTR, k);
            if (!y) return NULL;
            if (nm->type == T_NAME) {
                y->s = nm->s, y->sn = nm->n;
                y->a = x;
            } else if (nm->type == T_INT) { /* x.0 is x[0] */
                jnode *c = node(p, E_CONST, nm);
                if (!c) return NULL;
                c->value = nm->value;
                y->kind = E_ITEM, y->a = x, y->b = c;
            } else {
                char b[64];
                perr(p, nm->line, nm->col, "expected an attribute name after '.', found %s", tok_desc(nm, b, sizeof b));
                return NULL;
            }
            p->pos++;
            x = y;
        } else if (is_op(k, "[")) {
            p->pos++;
            jnode *parts[3] = {NULL, NULL, NULL};
            int colons = 0;
            for (;;) {
                if (is_op(cur(p), "]")) break;
                if (is_op(cur(p), ":")) {
                    if (++colons > 2) {
                        perr(p, cur(p)->line, cur(p)->col, "too many ':' in a slice");
                        return NULL;
                    }
                    p->pos++;
                    continue;
                }
                if (parts[colons]) {
                    expect_op(p, "]");
                    return NULL;
                }
                if (!(parts[colons] = parse_expr(p))) return NULL;
            }
            p->pos++;
            jnode *y = node(p, colons ? E_SLICE : E_ITEM, k);
            if (!y) return NULL;
            if (!colons && !parts[0]) {
                perr(p, k->line, k->col, "empty subscript []");
                return NULL;
            }
            y->a = x, y->b = parts[0], y->c = parts[1], y->d = parts[2];
            x = y;
        } else if (is_op(k, "(")) {
            jnode *y = node(p, E_CALL, k);
            if (!y) return NULL;
            y->a = x;
            y->line = x->line, y->col = x->col; /* errors point at the callee */
            if (parse_args(p, y)) return NULL;
            x = y;
        } else {
            return x;
        }
    }
}

static int starts_arg(const tok *k) {
    if (k->type == T_NAME)
        return !is_name(k, "else") && !is_name(k, "or") && !is_name(k, "and") && !is_name(k, "if") &&
               !is_name(k, "in") && !is_name(k, "is") && !is_name(k, "not");
    return k->type == T_STRING || k->type == T_INT || k->type == T_FLOAT || is_op(k, "(") || is_op(k, "[") ||
           is_op(k, "{");
}

/* x | f(args)   x is [not] t [arg | (args)] */
static jnode *parse_filters(parser *p, jnode *x) {
    for (;;) {
        tok *k = cur(p);
        if (is_op(k, "|")) {
            p->pos++;
            tok *nm = cur(p);
            if (nm->type != T_NAME) {
                char b[64];
                perr(p, nm->line, nm->col, "expected a filter name after '|', found %s", tok_desc(nm, b, sizeof b));
                return NULL;
            }
            p->pos++;
            jnode *y = node(p, E_FILTER, nm);
            if (!y) return NULL;
            if (!jl_filter_known(nm->s, nm->n)) {
                char b[64];
                perr(p, nm->line, nm->col, "unknown filter %s (not supported by fs's Jinja)", tok_desc(nm, b, sizeof b));
                return NULL;
            }
            y->s = nm->s, y->sn = nm->n, y->a = x;
            if (is_op(cur(p), "(") && parse_args(p, y)) return NULL;
            x = y;
        } else if (is_name(k, "is")) {
            p->pos++;
            int neg = 0;
            if (is_name(cur(p), "not")) neg = 1, p->pos++;
            tok *nm = cur(p);
            if (nm->type != T_NAME) {
                char b[64];
                perr(p, nm->line, nm->col, "expected a test name after 'is', found %s", tok_desc(nm, b, sizeof b));
                return NULL;
            }
            p->pos++;
            jnode *y = node(p, E_TEST, nm);
            if (!y) return NULL;
            if (!jl_test_known(nm->s, nm->n)) {
                char b[64];
                perr(p, nm->line, nm->col, "unknown test %s (not supported by fs's Jinja)", tok_desc(nm, b, sizeof b));
                return NULL;
            }
            y->s = nm->s, y->sn = nm->n, y->a = x, y->op = (uint8_t)neg;
            if (is_op(cur(p), "(")) {
                if (parse_args(p, y)) return NULL;
            } else if (starts_arg(cur(p))) { /* x is divisibleby 3 */
                jnode *arg = parse_unary(p, 0);
                if (!arg) return NULL;
                y->kids = ja_alloc(&p->t->arena, sizeof *y->kids);
                if (!y->kids) return NULL;
                y->kids[0] = arg, y->nkids = 1;
            }
            x = y;
        } else if (is_op(k, "(")) {
            jnode *y = node(p, E_CALL, k);
            if (!y) return NULL;
            y->a = x;
            if (parse_args(p, y)) return NULL;
            x = y;
        } else {
            return x;
        }
    }
}

static jnode *parse_unary(parser *p, int with_filter) {
    tok *k = cur(p);
    jnode *x;
    if (enter(p)) return NULL;
    if (is_op(k, "-") || is_op(k, "+")) {
        p->pos++;
        jnode *a = parse_unary(p, 0);
        if (!a || !(x = node(p, is_op(k, "-") ? E_NEG : E_POS, k))) return NULL;
        x->a = a;
    } else {
        x = parse_primary(p);
        if (x) x = parse_postfix(p, x);
    }
    if (x && with_filter) x = parse_filters(p, x);
    p->depth--;
    return x;
}

static jnode *binop(parser *p, int kind, int op, const tok *at, jnode *a, jnode *b) {
    if (!a || !b) return NULL;
    jnode *x = node(p, kind, at);
    if (!x) return NULL;
    x->op = (uint8_t)op, x->a = a, x->b = b;
    return x;
}

static jnode *parse_pow(parser *p) {
    jnode *x = parse_unary(p, 1);
    while (x && is_op(cur(p), "**")) {
        tok *k = cur(p);
        p->pos++;
        x = binop(p, E_BINOP, OP_POW, k, x, parse_unary(p, 1));
    }
    return x;
}

static jnode *parse_mul(parser *p) {
    jnode *x = parse_pow(p);
    for (;;) {
        tok *k = cur(p);
        int op = is_op(k, "*") ? OP_MUL : is_op(k, "/") ? OP_DIV : is_op(k, "//") ? OP_FLOORDIV : is_op(k, "%") ? OP_MOD : 0;
        if (!x || !op) return x;
        p->pos++;
        x = binop(p, E_BINOP, op, k, x, parse_pow(p));
    }
}

static jnode *parse_concat(parser *p) {
    jnode *x = parse_mul(p);
    while (x && is_op(cur(p), "~")) {
        tok *k = cur(p);
        p->pos++;
        x = binop(p, E_BINOP, OP_CONCAT, k, x, parse_mul(p));
    }
    return x;
}

static jnode *parse_add(parser *p) {
    jnode *x = parse_concat(p);
    for (;;) {
        tok *k = cur(p);
        int op = is_op(k, "+") ? OP_ADD : is_op(k, "-") ? OP_SUB : 0;
        if (!x || !op) return x;
        p->pos++;
        x = binop(p, E_BINOP, op, k, x, parse_concat(p));
    }
}

/* a < b < c is (a < b) and (b < c), with b evaluated twice (it has no side
 * effects here). */
static jnode *parse_compare(parser *p) {
    jnode *x = parse_add(p), *prev = x, *chain = NULL;
    for (;;) {
        tok *k = cur(p);
        int op = is_op(k, "==") ? OP_EQ : is_op(k, "!=") ? OP_NE : is_op(k, "<") ? OP_LT : is_op(k, "<=") ? OP_LE
               : is_op(k, ">") ? OP_GT : is_op(k, ">=") ? OP_GE : is_name(k, "in") ? OP_IN : 0;
        if (!op && is_name(k, "not") && is_name(&p->toks[p->pos + 1], "in")) op = OP_NOTIN, p->pos++;
        if (!prev || !op) return chain ? chain : x;
        p->pos++;
        jnode *rhs = parse_add(p);
        jnode *c = binop(p, E_CMP, op, k, prev, rhs);
        if (!c) return NULL;
        chain = chain ? binop(p, E_AND, 0, k, chain, c) : c;
        prev = rhs;
    }
}

static jnode *parse_not(parser *p) {
    if (is_name(cur(p), "not")) {
        tok *k = cur(p);
        p->pos++;
        if (enter(p)) return NULL;
        jnode *a = parse_not(p), *x;
        p->depth--;
        if (!a || !(x = node(p, E_NOT, k))) return NULL;
        x->a = a;
        return x;
    }
    return parse_compare(p);
}

static jnode *parse_and(parser *p) {
    jnode *x = parse_not(p);
    while (x && is_name(cur(p), "and")) {
        tok *k = cur(p);
        p->pos++;
        x = binop(p, E_AND, 0, k, x, parse_not(p));
    }
    return x;
}

static jnode *parse_or(parser *p) {
    jnode *x = parse_and(p);
    while (x && is_name(cur(p), "or")) {
        tok *k = cur(p);
        p->pos++;
        x = binop(p, E_OR, 0, k, x, parse_and(p));
    }
    return x;
}

/* x if c else y  (no else: undefined when c is false) */
static jnode *parse_expr(parser *p) {
    if (enter(p)) return NULL;
    jnode *x = parse_or(p);
    while (x && is_name(cur(p), "if")) {
        tok *k = cur(p);
        p->pos++;
        jnode *c = node(p, E_COND, k);
        if (!c || !(c->a = parse_or(p))) return NULL;
        c->b = x;
        if (is_name(cur(p), "else")) {
            p->pos++;
            if (!(c->c = parse_expr(p))) return NULL;
        }
        x = c;
    }
    p->depth--;
    return x;
}

/* An expression that may be an unparenthesised tuple: a, b */
static jnode *parse_tuple(parser *p) {
    tok *k = cur(p);
    jnode *x = parse_expr(p);
    if (!x || !is_op(cur(p), ",")) return x;
    nvec items = {0};
    nv_push(&items, x);
    while (is_op(cur(p), ",")) {
        p->pos++;
        if (cur(p)->type == T_BLOCK_END || cur(p)->type == T_VAR_END) break;
        jnode *y = parse_expr(p);
        if (!y) {
            free(items.v);
            return NULL;
        }
        nv_push(&items, y);
    }
    jnode *t = node(p, E_LIST, k);
    if (!t) return free(items.v), NULL;
    t->tuple = 1;
    t->nkids = items.n;
    t->kids = nv_done(p, &items);
    return t;
}

/* ---- statements ---- */

static jnode *parse_body(parser *p, const char *const *ends, const tok **end_at);

/* name, or name, name, ... (for targets, set targets) */
static int parse_targets(parser *p, jnode *x) {
    namevec v = {0};
    for (;;) {
        tok *k = cur(p);
        if (k->type != T_NAME) {
            char b[64];
            free(v.s), free(v.n);
            return perr(p, k->line, k->col, "expected a variable name, found %s", tok_desc(k, b, sizeof b));
        }
        names_push(&v, k->s, k->n);
        p->pos++;
        if (!is_op(cur(p), ",")) break;
        p->pos++;
    }
    return names_done(p, &v, x);
}

static jnode *parse_if(parser *p, const tok *at) {
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    jnode *x = node(p, N_IF, at);
    if (!x || !(x->a = parse_tuple(p)) || expect_end(p, "if")) return NULL;
    const tok *end;
    if (!(x->b = parse_body(p, ends, &end))) return NULL;
    if (is_name(end, "elif")) {
        if (!(x->c = parse_if(p, end))) return NULL;
        return x;
    }
    if (is_name(end, "else")) {
        static const char *const endif[] = {"endif", NULL};
        if (expect_end(p, "else") || !(x->c = parse_body(p, endif, &end))) return NULL;
    }
    return expect_end(p, "endif") ? NULL : x;
}

static jnode *parse_for(parser *p, const tok *at) {
    static const char *const ends[] = {"else", "endfor", NULL};
    jnode *x = node(p, N_FOR, at);
    if (!x || parse_targets(p, x)) return NULL;
    if (!is_name(cur(p), "in")) {
        char b[64];
        perr(p, cur(p)->line, cur(p)->col, "expected 'in' in a for loop, found %s", tok_desc(cur(p), b, sizeof b));
        return NULL;
    }
    p->pos++;
    /* the iterable stops before a filter "if" */
    if (enter(p)) return NULL;
    x->a = parse_or(p);
    p->depth--;
    if (!x->a) return NULL;
    if (is_name(cur(p), "if")) {
        p->pos++;
        if (!(x->b = parse_expr(p))) return NULL;
    }
    if (is_name(cur(p), "recursive")) {
        perr(p, cur(p)->line, cur(p)->col, "recursive loops are not supported");
        return NULL;
    }
    if (expect_end(p, "for")) return NULL;
    const tok *end;
    if (!(x->c = parse_body(p, ends, &end))) return NULL;
    if (is_name(end, "else")) {
        static const char *const endfor[] = {"endfor", NULL};
        if (expect_end(p, "else") || !(x->d = parse_body(p, endfor, &end))) return NULL;
    }
    return expect_end(p, "endfor") ? NULL : x;
}

static jnode *parse_set(parser *p, const tok *at) {
    jnode *x = node(p, N_SET, at);
    if (!x) return NULL;
    tok *k = cur(p);
    if (k->type == T_NAME && is_op(&p->toks[p->pos + 1], ".")) { /* set ns.attr = v */
        tok *attr = &p->toks[p->pos + 2];
        if (attr->type != T_NAME) {
            perr(p, attr->line, attr->col, "expected an attribute name after '.'");
            return NULL;
        }
        namevec v = {0};
        names_push(&v, k->s, k->n);
        if (names_done(p, &v, x)) return NULL;
        x->s = attr->s, x->sn = attr->n;
        p->pos += 3;
    } else if (parse_targets(p, x)) {
        return NULL;
    }
    if (cur(p)->type == T_BLOCK_END) { /* {% set x %}...{% endset %} */
        static const char *const ends[] = {"endset", NULL};
        const tok *end;
        if (x->s || x->nnames != 1) {
            perr(p, at->line, at->col, "a block set assigns one plain variable");
            return NULL;
        }
        p->pos++;
        x->kind = N_SETBLOCK;
        if (!(x->c = parse_body(p, ends, &end)) || expect_end(p, "endset")) return NULL;
        return x;
    }
    if (expect_op(p, "=") || !(x->a = parse_tuple(p)) || expect_end(p, "set")) return NULL;
    return x;
}

static jnode *parse_macro(parser *p, const tok *at) {
    static const char *const ends[] = {"endmacro", NULL};
    jnode *x = node(p, N_MACRO, at);
    tok *nm = cur(p);
    if (!x) return NULL;
    if (nm->type != T_NAME) {
        perr(p, nm->line, nm->col, "expected a macro name");
        return NULL;
    }
    x->s = nm->s, x->sn = nm->n;
    p->pos++;
    if (expect_op(p, "(")) return NULL;
    namevec v = {0};
    nvec defs = {0};
    while (!is_op(cur(p), ")")) {
        if (v.len && expect_op(p, ",")) goto fail;
        tok *k = cur(p);
        if (k->type != T_NAME) {
            perr(p, k->line, k->col, "expected a parameter name");
            goto fail;
        }
        names_push(&v, k->s, k->n);
        p->pos++;
        jnode *d = NULL;
        if (is_op(cur(p), "=")) {
            p->pos++;
            if (!(d = parse_expr(p))) goto fail;
        }
        nv_push(&defs, d);
    }
    p->pos++;
    x->nkids = defs.n;
    x->kids = nv_done(p, &defs);
    if (names_done(p, &v, x) || expect_end(p, "macro")) return NULL;
    const tok *end;
    if (!(x->c = parse_body(p, ends, &end)) || expect_end(p, "endmacro")) return NULL;
    return x;
fail:
    free(v.s), free(v.n), free(defs.v);
    return NULL;
}

/* Statements until a block tag named in ends (NULL: the end of the
 * template). The end tag's name is consumed, its "%}" is not. */
static jnode *parse_body(parser *p, const char *const *ends, const tok **end_at) {
    jnode *blk = node(p, N_BLOCK, cur(p));
    nvec kids = {0};
    if (!blk) return NULL;
    if (++p->depth > MAX_DEPTH) {
        perr(p, cur(p)->line, cur(p)->col, "blocks nested deeper than %d", MAX_DEPTH);
        return NULL;
    }
    for (;;) {
        tok *k = cur(p);
        jnode *x = NULL;
        char b[64];
        if (k->type == T_EOF) {
            if (!ends) break;
            const char *close = ends[0];
            for (int i = 0; ends[i]; i++) close = ends[i];
            perr(p, k->line, k->col, "expected '%s', found the end of the template (a block is not closed)", close);
            goto fail;
        }
        if (k->type == T_TEXT) {
            if (!(x = node(p, N_TEXT, k))) goto fail;
            x->s = k->s, x->sn = k->n;
            p->pos++;
        } else if (k->type == T_VAR_BEGIN) {
            p->pos++;
            if (!(x = node(p, N_OUTPUT, k)) || !(x->a = parse_tuple(p))) goto fail;
            if (cur(p)->type != T_VAR_END) {
                perr(p, cur(p)->line, cur(p)->col, "expected '}}', found %s", tok_desc(cur(p), b, sizeof b));
                goto fail;
            }
            p->pos++;
        } else if (k->type == T_BLOCK_BEGIN) {
            tok *nm = &p->toks[p->pos + 1];
            if (nm->type != T_NAME) {
                perr(p, nm->line, nm->col, "expected a statement name after '{%%', found %s", tok_desc(nm, b, sizeof b));
                goto fail;
            }
            if (ends)
                for (int i = 0; ends[i]; i++)
                    if (is_name(nm, ends[i])) {
                        p->pos += 2;
                        *end_at = nm;
                        goto done;
                    }
            p->pos += 2;
            if (is_name(nm, "if")) x = parse_if(p, nm);
            else if (is_name(nm, "for")) x = parse_for(p, nm);
            else if (is_name(nm, "set")) x = parse_set(p, nm);
            else if (is_name(nm, "macro")) x = parse_macro(p, nm);
            else if (is_name(nm, "break") || is_name(nm, "continue")) {
                if ((x = node(p, is_name(nm, "break") ? N_BREAK : N_CONTINUE, nm)) && expect_end(p, "break"))
                    x = NULL;
            } else if (is_name(nm, "generation")) { /* transformers' assistant-mask tag: renders its body */
                static const char *const gend[] = {"endgeneration", NULL};
                const tok *end;
                if (!expect_end(p, "generation") && (x = parse_body(p, gend, &end)) && expect_end(p, "endgeneration"))
                    x = NULL;
            } else {
                static const char *const known[] = {"extends", "block", "include", "import", "from", "call",
                                                    "filter", "with", "autoescape", "do", NULL};
                int k2 = 0;
                for (int i = 0; known[i]; i++) k2 |= is_name(nm, known[i]);
                if (k2)
                    perr(p, nm->line, nm->col, "the %s statement is not supported", tok_desc(nm, b, sizeof b));
                else
                    perr(p, nm->line, nm->col, "unknown statement %s%s", tok_desc(nm, b, sizeof b),
                         ends ? " (or a misplaced end tag)" : "");
                goto fail;
            }
            if (!x) goto fail;
        } else {
            perr(p, k->line, k->col, "unexpected %s", tok_desc(k, b, sizeof b));
            goto fail;
        }
        nv_push(&kids, x);
    }
done:
    p->depth--;
    blk->nkids = kids.n;
    blk->kids = nv_done(p, &kids);
    if (kids.n && !blk->kids) return perr(p, blk->line, blk->col, "template too large"), NULL;
    return blk;
fail:
    free(kids.v);
    return NULL;
}

int jinja_parse(fs_jinja *t, const char *src, size_t len, fs_err *e) {
    parser p = {0};
    p.t = t, p.e = e;
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
    p.src = s, p.len = n;
    int rc = lex(&p);
    const tok *end;
    if (!rc) {
        t->root = parse_body(&p, NULL, &end);
        rc = t->root ? 0 : -1;
    }
    free(p.toks);
    return rc;
}
