/* jinja_parse.c - tokens -> syntax tree (jinja_impl.h; the tokens come
 * from jinja_lex.c).
 *
 * Recursive descent with Jinja's precedence, loosest first:
 *     x if c else y  |  or  |  and  |  not  |  == != < <= > >= in, not in
 *     + -  |  ~  |  * / // %  |  **  |  unary - +  |  filters x|f, tests x is t
 *     |  postfix x.a x[i] x[a:b:c] x(...)  |  literals, names, ( ), [ ], { }
 * Statements: if/elif/else, for/else (with a filter and unpacking), set
 * (plain, unpacking, ns.attr, block), macro, break/continue, generation.
 * Unknown filters and tests, and statements fs does not implement, are
 * refused here, with their line and column, before anything renders.
 *
 * Docs: docs/chat.md
 */
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

#define MAX_DEPTH 200 /* nesting of expressions and blocks */

/* ---- parser ---- */

static jtok *cur(jparser *p) { return &p->toks[p->pos]; }
static int is_op(const jtok *k, const char *op) { return k->type == T_OP && k->n == strlen(op) && !memcmp(k->s, op, k->n); }
static int is_name(const jtok *k, const char *nm) { return k->type == T_NAME && k->n == strlen(nm) && !memcmp(k->s, nm, k->n); }

static jnode *node(jparser *p, int kind, const jtok *at) {
    jnode *n = ja_alloc(&p->t->arena, sizeof *n);
    if (!n) {
        jinja_perr(p, at->line, at->col, "template too large");
        return NULL;
    }
    n->kind = (uint8_t)kind;
    n->line = at->line, n->col = at->col;
    return n;
}

static int expect_op(jparser *p, const char *op) {
    char b[64];
    if (!is_op(cur(p), op)) return jinja_perr(p, cur(p)->line, cur(p)->col, "expected '%s', found %s", op, jinja_tok_desc(cur(p), b, sizeof b));
    p->pos++;
    return 0;
}

static int expect_end(jparser *p, const char *what) {
    char b[64];
    if (cur(p)->type != T_BLOCK_END)
        return jinja_perr(p, cur(p)->line, cur(p)->col, "expected '%%}' after '%s', found %s", what, jinja_tok_desc(cur(p), b, sizeof b));
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

static jnode **nv_done(jparser *p, nvec *v) {
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

static int names_done(jparser *p, namevec *v, jnode *x) {
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
    if (v->len && (!x->names || !x->name_lens)) return jinja_perr(p, x->line, x->col, "template too large");
    return 0;
}

static jnode *parse_expr(jparser *p);
static jnode *parse_or(jparser *p);
static jnode *parse_unary(jparser *p, int with_filter);

static int enter(jparser *p) {
    if (++p->depth > MAX_DEPTH) return jinja_perr(p, cur(p)->line, cur(p)->col, "expressions nested deeper than %d", MAX_DEPTH);
    return 0;
}

/* ( args ) after a callee, filter or test: positional then name=value. */
static int parse_args(jparser *p, jnode *x) {
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
                jinja_perr(p, cur(p)->line, cur(p)->col, "a positional argument after a keyword argument");
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

static jnode *parse_primary(jparser *p) {
    jtok *k = cur(p);
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
        if (!s || !(x = node(p, E_CONST, k))) return jinja_perr(p, k->line, k->col, "template too large"), NULL;
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
    jinja_perr(p, k->line, k->col, "expected an expression, found %s", jinja_tok_desc(k, b, sizeof b));
    return NULL;
}

/* x.name  x[i]  x[a:b:c]  x(...) */
static jnode *parse_postfix(jparser *p, jnode *x) {
    for (;;) {
        jtok *k = cur(p);
        if (is_op(k, ".")) {
            p->pos++;
            jtok *nm = cur(p);
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
                jinja_perr(p, nm->line, nm->col, "expected an attribute name after '.', found %s", jinja_tok_desc(nm, b, sizeof b));
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
                        jinja_perr(p, cur(p)->line, cur(p)->col, "too many ':' in a slice");
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
                jinja_perr(p, k->line, k->col, "empty subscript []");
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

static int starts_arg(const jtok *k) {
    if (k->type == T_NAME)
        return !is_name(k, "else") && !is_name(k, "or") && !is_name(k, "and") && !is_name(k, "if") &&
               !is_name(k, "in") && !is_name(k, "is") && !is_name(k, "not");
    return k->type == T_STRING || k->type == T_INT || k->type == T_FLOAT || is_op(k, "(") || is_op(k, "[") ||
           is_op(k, "{");
}

/* x | f(args)   x is [not] t [arg | (args)] */
static jnode *parse_filters(jparser *p, jnode *x) {
    for (;;) {
        jtok *k = cur(p);
        if (is_op(k, "|")) {
            p->pos++;
            jtok *nm = cur(p);
            if (nm->type != T_NAME) {
                char b[64];
                jinja_perr(p, nm->line, nm->col, "expected a filter name after '|', found %s", jinja_tok_desc(nm, b, sizeof b));
                return NULL;
            }
            p->pos++;
            jnode *y = node(p, E_FILTER, nm);
            if (!y) return NULL;
            if (!jl_filter_known(nm->s, nm->n)) {
                char b[64];
                jinja_perr(p, nm->line, nm->col, "unknown filter %s (not supported by fs's Jinja)", jinja_tok_desc(nm, b, sizeof b));
                return NULL;
            }
            y->s = nm->s, y->sn = nm->n, y->a = x;
            if (is_op(cur(p), "(") && parse_args(p, y)) return NULL;
            x = y;
        } else if (is_name(k, "is")) {
            p->pos++;
            int neg = 0;
            if (is_name(cur(p), "not")) neg = 1, p->pos++;
            jtok *nm = cur(p);
            if (nm->type != T_NAME) {
                char b[64];
                jinja_perr(p, nm->line, nm->col, "expected a test name after 'is', found %s", jinja_tok_desc(nm, b, sizeof b));
                return NULL;
            }
            p->pos++;
            jnode *y = node(p, E_TEST, nm);
            if (!y) return NULL;
            if (!jl_test_known(nm->s, nm->n)) {
                char b[64];
                jinja_perr(p, nm->line, nm->col, "unknown test %s (not supported by fs's Jinja)", jinja_tok_desc(nm, b, sizeof b));
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

static jnode *parse_unary(jparser *p, int with_filter) {
    jtok *k = cur(p);
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

static jnode *binop(jparser *p, int kind, int op, const jtok *at, jnode *a, jnode *b) {
    if (!a || !b) return NULL;
    jnode *x = node(p, kind, at);
    if (!x) return NULL;
    x->op = (uint8_t)op, x->a = a, x->b = b;
    return x;
}

static jnode *parse_pow(jparser *p) {
    jnode *x = parse_unary(p, 1);
    while (x && is_op(cur(p), "**")) {
        jtok *k = cur(p);
        p->pos++;
        x = binop(p, E_BINOP, OP_POW, k, x, parse_unary(p, 1));
    }
    return x;
}

static jnode *parse_mul(jparser *p) {
    jnode *x = parse_pow(p);
    for (;;) {
        jtok *k = cur(p);
        int op = is_op(k, "*") ? OP_MUL : is_op(k, "/") ? OP_DIV : is_op(k, "//") ? OP_FLOORDIV : is_op(k, "%") ? OP_MOD : 0;
        if (!x || !op) return x;
        p->pos++;
        x = binop(p, E_BINOP, op, k, x, parse_pow(p));
    }
}

static jnode *parse_concat(jparser *p) {
    jnode *x = parse_mul(p);
    while (x && is_op(cur(p), "~")) {
        jtok *k = cur(p);
        p->pos++;
        x = binop(p, E_BINOP, OP_CONCAT, k, x, parse_mul(p));
    }
    return x;
}

static jnode *parse_add(jparser *p) {
    jnode *x = parse_concat(p);
    for (;;) {
        jtok *k = cur(p);
        int op = is_op(k, "+") ? OP_ADD : is_op(k, "-") ? OP_SUB : 0;
        if (!x || !op) return x;
        p->pos++;
        x = binop(p, E_BINOP, op, k, x, parse_concat(p));
    }
}

/* a < b < c is (a < b) and (b < c), with b evaluated twice (it has no side
 * effects here). */
static jnode *parse_compare(jparser *p) {
    jnode *x = parse_add(p), *prev = x, *chain = NULL;
    for (;;) {
        jtok *k = cur(p);
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

static jnode *parse_not(jparser *p) {
    if (is_name(cur(p), "not")) {
        jtok *k = cur(p);
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

static jnode *parse_and(jparser *p) {
    jnode *x = parse_not(p);
    while (x && is_name(cur(p), "and")) {
        jtok *k = cur(p);
        p->pos++;
        x = binop(p, E_AND, 0, k, x, parse_not(p));
    }
    return x;
}

static jnode *parse_or(jparser *p) {
    jnode *x = parse_and(p);
    while (x && is_name(cur(p), "or")) {
        jtok *k = cur(p);
        p->pos++;
        x = binop(p, E_OR, 0, k, x, parse_and(p));
    }
    return x;
}

/* x if c else y  (no else: undefined when c is false) */
static jnode *parse_expr(jparser *p) {
    if (enter(p)) return NULL;
    jnode *x = parse_or(p);
    while (x && is_name(cur(p), "if")) {
        jtok *k = cur(p);
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
static jnode *parse_tuple(jparser *p) {
    jtok *k = cur(p);
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

static jnode *parse_body(jparser *p, const char *const *ends, const jtok **end_at);

/* name, or name, name, ... (for targets, set targets) */
static int parse_targets(jparser *p, jnode *x) {
    namevec v = {0};
    for (;;) {
        jtok *k = cur(p);
        if (k->type != T_NAME) {
            char b[64];
            free(v.s), free(v.n);
            return jinja_perr(p, k->line, k->col, "expected a variable name, found %s", jinja_tok_desc(k, b, sizeof b));
        }
        names_push(&v, k->s, k->n);
        p->pos++;
        if (!is_op(cur(p), ",")) break;
        p->pos++;
    }
    return names_done(p, &v, x);
}

static jnode *parse_if(jparser *p, const jtok *at) {
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    jnode *x = node(p, N_IF, at);
    if (!x || !(x->a = parse_tuple(p)) || expect_end(p, "if")) return NULL;
    const jtok *end;
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

static jnode *parse_for(jparser *p, const jtok *at) {
    static const char *const ends[] = {"else", "endfor", NULL};
    jnode *x = node(p, N_FOR, at);
    if (!x || parse_targets(p, x)) return NULL;
    if (!is_name(cur(p), "in")) {
        char b[64];
        jinja_perr(p, cur(p)->line, cur(p)->col, "expected 'in' in a for loop, found %s", jinja_tok_desc(cur(p), b, sizeof b));
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
        jinja_perr(p, cur(p)->line, cur(p)->col, "recursive loops are not supported");
        return NULL;
    }
    if (expect_end(p, "for")) return NULL;
    const jtok *end;
    if (!(x->c = parse_body(p, ends, &end))) return NULL;
    if (is_name(end, "else")) {
        static const char *const endfor[] = {"endfor", NULL};
        if (expect_end(p, "else") || !(x->d = parse_body(p, endfor, &end))) return NULL;
    }
    return expect_end(p, "endfor") ? NULL : x;
}

static jnode *parse_set(jparser *p, const jtok *at) {
    jnode *x = node(p, N_SET, at);
    if (!x) return NULL;
    jtok *k = cur(p);
    if (k->type == T_NAME && is_op(&p->toks[p->pos + 1], ".")) { /* set ns.attr = v */
        jtok *attr = &p->toks[p->pos + 2];
        if (attr->type != T_NAME) {
            jinja_perr(p, attr->line, attr->col, "expected an attribute name after '.'");
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
        const jtok *end;
        if (x->s || x->nnames != 1) {
            jinja_perr(p, at->line, at->col, "a block set assigns one plain variable");
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

static jnode *parse_macro(jparser *p, const jtok *at) {
    static const char *const ends[] = {"endmacro", NULL};
    jnode *x = node(p, N_MACRO, at);
    jtok *nm = cur(p);
    if (!x) return NULL;
    if (nm->type != T_NAME) {
        jinja_perr(p, nm->line, nm->col, "expected a macro name");
        return NULL;
    }
    x->s = nm->s, x->sn = nm->n;
    p->pos++;
    if (expect_op(p, "(")) return NULL;
    namevec v = {0};
    nvec defs = {0};
    while (!is_op(cur(p), ")")) {
        if (v.len && expect_op(p, ",")) goto fail;
        jtok *k = cur(p);
        if (k->type != T_NAME) {
            jinja_perr(p, k->line, k->col, "expected a parameter name");
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
    const jtok *end;
    if (!(x->c = parse_body(p, ends, &end)) || expect_end(p, "endmacro")) return NULL;
    return x;
fail:
    free(v.s), free(v.n), free(defs.v);
    return NULL;
}

/* Statements until a block tag named in ends (NULL: the end of the
 * template). The end tag's name is consumed, its "%}" is not. */
static jnode *parse_body(jparser *p, const char *const *ends, const jtok **end_at) {
    jnode *blk = node(p, N_BLOCK, cur(p));
    nvec kids = {0};
    if (!blk) return NULL;
    if (++p->depth > MAX_DEPTH) {
        jinja_perr(p, cur(p)->line, cur(p)->col, "blocks nested deeper than %d", MAX_DEPTH);
        return NULL;
    }
    for (;;) {
        jtok *k = cur(p);
        jnode *x = NULL;
        char b[64];
        if (k->type == T_EOF) {
            if (!ends) break;
            const char *close = ends[0];
            for (int i = 0; ends[i]; i++) close = ends[i];
            jinja_perr(p, k->line, k->col, "expected '%s', found the end of the template (a block is not closed)", close);
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
                jinja_perr(p, cur(p)->line, cur(p)->col, "expected '}}', found %s", jinja_tok_desc(cur(p), b, sizeof b));
                goto fail;
            }
            p->pos++;
        } else if (k->type == T_BLOCK_BEGIN) {
            jtok *nm = &p->toks[p->pos + 1];
            if (nm->type != T_NAME) {
                jinja_perr(p, nm->line, nm->col, "expected a statement name after '{%%', found %s", jinja_tok_desc(nm, b, sizeof b));
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
                const jtok *end;
                if (!expect_end(p, "generation") && (x = parse_body(p, gend, &end)) && expect_end(p, "endgeneration"))
                    x = NULL;
            } else {
                static const char *const known[] = {"extends", "block", "include", "import", "from", "call",
                                                    "filter", "with", "autoescape", "do", NULL};
                int k2 = 0;
                for (int i = 0; known[i]; i++) k2 |= is_name(nm, known[i]);
                if (k2)
                    jinja_perr(p, nm->line, nm->col, "the %s statement is not supported", jinja_tok_desc(nm, b, sizeof b));
                else
                    jinja_perr(p, nm->line, nm->col, "unknown statement %s%s", jinja_tok_desc(nm, b, sizeof b),
                         ends ? " (or a misplaced end tag)" : "");
                goto fail;
            }
            if (!x) goto fail;
        } else {
            jinja_perr(p, k->line, k->col, "unexpected %s", jinja_tok_desc(k, b, sizeof b));
            goto fail;
        }
        nv_push(&kids, x);
    }
done:
    p->depth--;
    blk->nkids = kids.n;
    blk->kids = nv_done(p, &kids);
    if (kids.n && !blk->kids) return jinja_perr(p, blk->line, blk->col, "template too large"), NULL;
    return blk;
fail:
    free(kids.v);
    return NULL;
}

int jinja_parse(fs_jinja *t, const char *src, size_t len, fs_err *e) {
    jparser p = {0};
    p.t = t, p.e = e;
    int rc = jinja_lex(&p, src, len);
    const jtok *end;
    if (!rc) {
        t->root = parse_body(&p, NULL, &end);
        rc = t->root ? 0 : -1;
    }
    free(p.toks);
    return rc;
}
