/* jinja_eval.c - render a parsed template: walk the statements, evaluate
 * the expressions (jinja_impl.h; the filters, tests, methods and global
 * functions are in jinja_lib.c).
 *
 * Scopes are Jinja's: the template's variables live in the root frame; a
 * for loop gives each iteration a fresh frame on top of the enclosing one,
 * so `{% set %}` inside a loop is gone at the next iteration and after the
 * loop (that is why templates use namespace() to carry a value out); an
 * if block has no frame of its own; a macro call gets a frame on top of
 * the root frame, with its parameters.
 *
 * Python's semantics where they show: `and`/`or` give one of their
 * operands, / is float division, // and % round toward minus infinity,
 * ints do not silently wrap (an overflow is an error), indexing and
 * slicing take negative positions and count code points in strings.
 *
 * Docs: docs/chat.md
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

#define MAX_CALL_DEPTH 100          /* macro calls and nested evaluation */
#define MAX_STEPS 10000000ULL       /* loop iterations + macro calls per render */
#define ARENA_LIMIT (512u << 20)    /* values made while rendering */
#define DEFAULT_MAX_OUTPUT (16u << 20)

struct jframe {
    jframe *parent;
    jpair *vars;
    size_t n, cap;
};

/* ---- errors ---- */

int jerr(jctx *c, const jnode *at, const char *fmt, ...) {
    char msg[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *q = msg; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f) *q = ' ';
    if (at) return fs_errf(c->e, "template line %d, column %d: %s", at->line, at->col, msg);
    return fs_errf(c->e, "template: %s", msg);
}

/* a name from the template or the data, printable and bounded */
static const char *shown(const char *s, size_t n, char *buf, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap; i++) buf[k++] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
    if (n && k < n && k + 4 >= cap) memcpy(buf + k, "...", 3), k += 3;
    buf[k] = 0;
    return buf;
}

int jerr_undef(jctx *c, const jnode *at, const jv *v) {
    char b[64];
    if (v->s) return jerr(c, at, "'%s' is undefined", shown(v->s, v->n, b, sizeof b));
    return jerr(c, at, "undefined value");
}

static int oom(jctx *c, const jnode *at) {
    return jerr(c, at, "the template used more than %u MiB of memory", ARENA_LIMIT >> 20);
}

/* ---- frames ---- */

static int frame_set(jctx *c, const jnode *at, jframe *f, const char *name, size_t n, jv v) {
    for (size_t i = 0; i < f->n; i++)
        if (f->vars[i].k.n == n && !memcmp(f->vars[i].k.s, name, n)) {
            f->vars[i].v = v;
            return 0;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 8;
        jpair *nv = ja_alloc(&c->arena, cap * sizeof *nv);
        if (!nv) return oom(c, at);
        if (f->n) memcpy(nv, f->vars, f->n * sizeof *nv);
        f->vars = nv, f->cap = cap;
    }
    f->vars[f->n].k = jv_str(name, n);
    f->vars[f->n++].v = v;
    return 0;
}

static const jv *lookup(jctx *c, const char *name, size_t n) {
    for (jframe *f = c->frame; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (f->vars[i].k.n == n && !memcmp(f->vars[i].k.s, name, n)) return &f->vars[i].v;
    return NULL;
}

/* ---- expressions ---- */

static int eval(jctx *c, const jnode *x, jv *out);
static int exec_block(jctx *c, const jnode *x);

static int eval_args(jctx *c, const jnode *x, jargs *a) {
    jv *pos = x->nkids ? ja_alloc(&c->arena, x->nkids * sizeof *pos) : NULL;
    jv *kv = x->nnames ? ja_alloc(&c->arena, x->nnames * sizeof *kv) : NULL;
    if ((x->nkids && !pos) || (x->nnames && !kv)) return oom(c, x);
    for (size_t i = 0; i < x->nkids; i++)
        if (eval(c, x->kids[i], &pos[i])) return -1;
    for (size_t i = 0; i < x->nnames; i++)
        if (eval(c, x->kwvals[i], &kv[i])) return -1;
    a->pos = pos, a->npos = x->nkids;
    a->kn = x->names, a->kl = x->name_lens, a->kv = kv, a->nkw = x->nnames;
    return 0;
}

static int call_macro(jctx *c, const jnode *at, const jnode *m, const jargs *a, jv *out) {
    char b[64];
    if (a->npos > m->nnames)
        return jerr(c, at, "macro '%s' takes at most %zu arguments, got %zu", shown(m->s, m->sn, b, sizeof b),
                    m->nnames, a->npos);
    if (++c->depth > MAX_CALL_DEPTH) return jerr(c, at, "macro calls nested deeper than %d", MAX_CALL_DEPTH);
    if (++c->steps > MAX_STEPS) return jerr(c, at, "the template ran more than %llu steps", MAX_STEPS);
    jframe f = {c->root, NULL, 0, 0};
    jframe *saved = c->frame;
    c->frame = &f;
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i = 0;
        while (i < m->nnames && !(m->name_lens[i] == a->kl[k] && !memcmp(m->names[i], a->kn[k], a->kl[k]))) i++;
        if (i == m->nnames || i < a->npos) {
            c->frame = saved;
            char b2[64];
            return jerr(c, at, "macro '%s' got an unexpected keyword argument '%s'", shown(m->s, m->sn, b, sizeof b),
                        shown(a->kn[k], a->kl[k], b2, sizeof b2));
        }
    }
    int rc = 0;
    for (size_t i = 0; i < m->nnames && !rc; i++) {
        jv v = jv_undef(m->names[i]);
        v.n = m->name_lens[i];
        int given = 0;
        if (i < a->npos) v = a->pos[i], given = 1;
        for (size_t k = 0; k < a->nkw && !given; k++)
            if (m->name_lens[i] == a->kl[k] && !memcmp(m->names[i], a->kn[k], a->kl[k])) v = a->kv[k], given = 1;
        if (!given && m->kids[i]) rc = eval(c, m->kids[i], &v);
        if (!rc) rc = frame_set(c, at, &f, m->names[i], m->name_lens[i], v);
    }
    jbuf body = {0}, *saved_out = c->out;
    body.max = saved_out->max;
    c->out = &body;
    if (!rc) rc = exec_block(c, m->c);
    c->out = saved_out;
    c->frame = saved;
    c->depth--;
    if (rc < 0) return jb_free(&body), -1;
    if (body.over) return jb_free(&body), jerr(c, at, "a macro's output is larger than %zu bytes", body.max);
    char *s = ja_strdup(&c->arena, body.p ? body.p : "", body.n);
    size_t n = body.n;
    jb_free(&body);
    if (!s) return oom(c, at);
    *out = jv_str(s, n);
    return 0;
}

static int eval_call(jctx *c, const jnode *x, jv *out) {
    jargs a;
    const jnode *callee = x->a;
    if (callee->kind == E_ATTR) { /* obj.method(...) */
        jv obj;
        if (eval(c, callee->a, &obj)) return -1;
        if (obj.t == JV_UNDEF) return jerr_undef(c, callee, &obj);
        int found = 0;
        if (eval_args(c, x, &a)) return -1;
        int rc = jl_method(c, x, &obj, callee->s, callee->sn, &a, out, &found);
        if (found || rc == 0) return rc;
        const jv *member = obj.t == JV_DICT || obj.t == JV_NS ? jv_get(&obj, callee->s, callee->sn) : NULL;
        char b[64];
        if (!member)
            return jerr(c, x, "'%s' object has no method '%s'", jv_type_name(&obj), shown(callee->s, callee->sn, b, sizeof b));
        if (member->t == JV_MACRO) return call_macro(c, x, member->macro, &a, out);
        return jerr(c, x, "'%s' is not callable", shown(callee->s, callee->sn, b, sizeof b));
    }
    jv f;
    if (eval(c, callee, &f) || eval_args(c, x, &a)) return -1;
    if (f.t == JV_MACRO) return call_macro(c, x, f.macro, &a, out);
    if (f.t == JV_FUNC) return jl_global(c, x, f.func, &a, out);
    if (f.t == JV_UNDEF) return jerr_undef(c, callee, &f);
    return jerr(c, x, "'%s' object is not callable", jv_type_name(&f));
}

/* Python's index rules: negative counts from the end; out of range: -1 */
static int64_t norm_index(int64_t i, size_t n) {
    if (i < 0) i += (int64_t)n;
    return i < 0 || i >= (int64_t)n ? -1 : i;
}

static int eval_item(jctx *c, const jnode *at, const jv *obj, const jv *key, jv *out) {
    if (obj->t == JV_UNDEF) return jerr_undef(c, at, obj);
    *out = jv_undef(NULL);
    if (obj->t == JV_DICT) {
        for (size_t i = obj->n; i-- > 0;)
            if (jv_eq(&obj->pairs[i].k, key)) {
                *out = obj->pairs[i].v;
                return 0;
            }
        if (key->t == JV_STR) *out = jv_undef(key->s), out->n = key->n;
        return 0;
    }
    if (obj->t == JV_NS && key->t == JV_STR) {
        const jv *v = jv_get(obj, key->s, key->n);
        if (v) *out = *v;
        return 0;
    }
    if (((obj->t == JV_LIST && obj->tuple != JV_GENERATOR) || obj->t == JV_STR) && (key->t == JV_INT || key->t == JV_BOOL)) {
        if (obj->t == JV_LIST) {
            int64_t i = norm_index(key->i, obj->n);
            if (i >= 0) *out = obj->items[i];
        } else {
            size_t len = jv_utf8_len(obj->s, obj->n);
            int64_t i = norm_index(key->i, len);
            if (i >= 0) {
                size_t a = jv_utf8_offset(obj->s, obj->n, (size_t)i), b = jv_utf8_offset(obj->s, obj->n, (size_t)i + 1);
                *out = jv_str(obj->s + a, b - a);
            }
        }
    }
    return 0;
}

/* obj[start:stop:step] with Python's clamping */
static int eval_slice(jctx *c, const jnode *x, jv *out) {
    jv obj, parts[3];
    const jnode *pn[3] = {x->b, x->c, x->d};
    if (eval(c, x->a, &obj)) return -1;
    if (obj.t == JV_UNDEF) return jerr_undef(c, x->a, &obj);
    for (int i = 0; i < 3; i++) {
        parts[i] = jv_none();
        if (pn[i] && eval(c, pn[i], &parts[i])) return -1;
        if (parts[i].t != JV_NONE && parts[i].t != JV_INT && parts[i].t != JV_BOOL)
            return jerr(c, x, "slice indices must be integers or None, not '%s'", jv_type_name(&parts[i]));
    }
    if ((obj.t != JV_LIST && obj.t != JV_STR) || obj.tuple == JV_GENERATOR) { /* jinja2: a failed subscript is undefined */
        *out = jv_undef(NULL);
        return 0;
    }
    int64_t n = obj.t == JV_LIST ? (int64_t)obj.n : (int64_t)jv_utf8_len(obj.s, obj.n);
    int64_t step = parts[2].t == JV_NONE ? 1 : parts[2].i;
    if (step == 0) return jerr(c, x, "slice step cannot be zero");
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? n : n - 1, bound[2];
    for (int i = 0; i < 2; i++) {
        if (parts[i].t == JV_NONE) {
            bound[i] = step > 0 ? (i ? hi : lo) : (i ? lo : hi);
            continue;
        }
        int64_t v = parts[i].i;
        if (v < 0) v = v < -n ? lo : v + n;
        bound[i] = v < lo ? lo : v > hi ? hi : v;
    }
    size_t cnt = 0;
    for (int64_t i = bound[0]; step > 0 ? i < bound[1] : i > bound[1]; i += step) cnt++;
    if (obj.t == JV_LIST) {
        jv *items = cnt ? ja_alloc(&c->arena, cnt * sizeof *items) : NULL;
        if (cnt && !items) return oom(c, x);
        size_t k = 0;
        for (int64_t i = bound[0]; step > 0 ? i < bound[1] : i > bound[1]; i += step) items[k++] = obj.items[i];
        *out = obj;
        out->items = items, out->n = cnt;
        return 0;
    }
    /* a string: code point offsets, then copy */
    size_t *off = fs_xmalloc(((size_t)n + 1) * sizeof *off);
    for (int64_t i = 0; i <= n; i++) off[i] = 0;
    size_t k = 0;
    for (size_t i = 0; i < obj.n; i++)
        if (((unsigned char)obj.s[i] & 0xC0) != 0x80) off[k++] = i;
    off[n] = obj.n;
    size_t bytes = 0;
    for (int64_t i = bound[0]; step > 0 ? i < bound[1] : i > bound[1]; i += step) bytes += off[i + 1] - off[i];
    char *s = ja_alloc(&c->arena, bytes + 1);
    if (!s) return free(off), oom(c, x);
    size_t m = 0;
    for (int64_t i = bound[0]; step > 0 ? i < bound[1] : i > bound[1]; i += step) {
        memcpy(s + m, obj.s + off[i], off[i + 1] - off[i]);
        m += off[i + 1] - off[i];
    }
    free(off);
    *out = jv_str(s, m);
    return 0;
}

static int is_num(const jv *v) { return v->t == JV_INT || v->t == JV_FLOAT || v->t == JV_BOOL; }
static double as_f(const jv *v) { return v->t == JV_FLOAT ? v->f : (double)v->i; }

static const char *op_name(int op) {
    static const char *const names[] = {"", "+", "-", "*", "/", "//", "%", "**", "~",
                                        "==", "!=", "<", "<=", ">", ">=", "in", "not in"};
    return names[op];
}

static int concat(jctx *c, const jnode *at, const jv *a, const jv *b, jv *out) {
    jbuf t = {0};
    jv_str_out(&t, a);
    jv_str_out(&t, b);
    char *s = ja_strdup(&c->arena, t.p ? t.p : "", t.n);
    size_t n = t.n;
    jb_free(&t);
    if (!s) return oom(c, at);
    *out = jv_str(s, n);
    return 0;
}

static int repeat(jctx *c, const jnode *at, const jv *seq, int64_t times, jv *out) {
    if (times <= 0) {
        *out = *seq;
        out->n = 0;
        return 0;
    }
    size_t unit = seq->t == JV_STR ? seq->n : seq->n * sizeof(jv), total;
    if (!fs_mul_size(unit, (size_t)times, &total) || total > ARENA_LIMIT) return oom(c, at);
    char *p = ja_alloc(&c->arena, total + 1);
    if (!p) return oom(c, at);
    if (unit)
        for (int64_t i = 0; i < times; i++)
            memcpy(p + (size_t)i * unit, seq->t == JV_STR ? (const void *)seq->s : (const void *)seq->items, unit);
    *out = *seq;
    if (seq->t == JV_STR) out->s = p, out->n = total;
    else out->items = (jv *)p, out->n = seq->n * (size_t)times;
    return 0;
}

static int arith(jctx *c, const jnode *x, int op, const jv *a, const jv *b, jv *out) {
    if (op == OP_CONCAT) return concat(c, x, a, b, out);
    if (a->t == JV_UNDEF) return jerr_undef(c, x->a, a);
    if (b->t == JV_UNDEF) return jerr_undef(c, x->b, b);
    if (is_num(a) && is_num(b)) {
        int ints = a->t != JV_FLOAT && b->t != JV_FLOAT;
        int64_t r = 0;
        if (ints) {
            int64_t p = a->i, q = b->i;
            switch (op) {
            case OP_ADD: if (__builtin_add_overflow(p, q, &r)) goto overflow; *out = jv_int(r); return 0;
            case OP_SUB: if (__builtin_sub_overflow(p, q, &r)) goto overflow; *out = jv_int(r); return 0;
            case OP_MUL: if (__builtin_mul_overflow(p, q, &r)) goto overflow; *out = jv_int(r); return 0;
            case OP_FLOORDIV: case OP_MOD:
                if (q == 0) return jerr(c, x, "integer division or modulo by zero");
                if (p == INT64_MIN && q == -1) goto overflow;
                r = p / q;
                if ((p % q != 0) && ((p < 0) != (q < 0))) r--;
                *out = jv_int(op == OP_FLOORDIV ? r : p - r * q);
                return 0;
            case OP_POW:
                if (q >= 0) {
                    int64_t acc = 1;
                    for (int64_t i = 0; i < q; i++) {
                        if (__builtin_mul_overflow(acc, p, &acc)) goto overflow;
                        if (acc == 0 || acc == 1) break;
                    }
                    if (acc == 1 && p == -1 && (q & 1)) acc = -1;
                    *out = jv_int(acc);
                    return 0;
                }
                break; /* negative power: a float */
            default: break;
            }
        }
        double p = as_f(a), q = as_f(b);
        switch (op) {
        case OP_ADD: *out = jv_float(p + q); return 0;
        case OP_SUB: *out = jv_float(p - q); return 0;
        case OP_MUL: *out = jv_float(p * q); return 0;
        case OP_DIV:
            if (q == 0) return jerr(c, x, "division by zero");
            *out = jv_float(p / q);
            return 0;
        case OP_FLOORDIV: case OP_MOD: {
            if (q == 0) return jerr(c, x, "float division or modulo by zero");
            double m = fmod(p, q);
            if (m != 0 && ((m < 0) != (q < 0))) m += q;
            *out = jv_float(op == OP_MOD ? m : floor(p / q));
            return 0;
        }
        case OP_POW:
            if (p == 0 && q < 0) return jerr(c, x, "0.0 cannot be raised to a negative power");
            *out = jv_float(pow(p, q));
            return 0;
        default: break;
        }
    }
    if (op == OP_ADD && a->t == b->t && (a->t == JV_STR || a->t == JV_LIST)) {
        size_t unit = a->t == JV_STR ? 1 : sizeof(jv);
        char *p = ja_alloc(&c->arena, (a->n + b->n) * unit + 1);
        if (!p) return oom(c, x);
        if (a->n) memcpy(p, a->t == JV_STR ? (const void *)a->s : (const void *)a->items, a->n * unit);
        if (b->n) memcpy(p + a->n * unit, a->t == JV_STR ? (const void *)b->s : (const void *)b->items, b->n * unit);
        *out = *a;
        if (a->t == JV_STR) out->s = p;
        else out->items = (jv *)p;
        out->n = a->n + b->n;
        return 0;
    }
    if (op == OP_MUL && (a->t == JV_STR || a->t == JV_LIST) && (b->t == JV_INT || b->t == JV_BOOL))
        return repeat(c, x, a, b->i, out);
    if (op == OP_MUL && (b->t == JV_STR || b->t == JV_LIST) && (a->t == JV_INT || a->t == JV_BOOL))
        return repeat(c, x, b, a->i, out);
    if (op == OP_ADD && a->t == JV_STR)
        return jerr(c, x, "can only concatenate str (not \"%s\") to str", jv_type_name(b));
    if (op == OP_MOD && a->t == JV_STR) return jerr(c, x, "'%%' string formatting is not supported");
    return jerr(c, x, "unsupported operand type(s) for %s: '%s' and '%s'", op_name(op), jv_type_name(a),
                jv_type_name(b));
overflow:
    return jerr(c, x, "integer overflow in '%s' (fs's integers are 64-bit)", op_name(op));
}

static int contains(jctx *c, const jnode *x, const jv *item, const jv *seq, int *res) {
    *res = 0;
    switch (seq->t) {
    case JV_STR:
        if (item->t != JV_STR)
            return jerr(c, x, "'in <string>' requires string as left operand, not %s", jv_type_name(item));
        if (item->n == 0) return *res = 1, 0;
        for (size_t i = 0; i + item->n <= seq->n; i++)
            if (!memcmp(seq->s + i, item->s, item->n)) return *res = 1, 0;
        return 0;
    case JV_LIST:
        for (size_t i = 0; i < seq->n; i++)
            if (jv_eq(item, &seq->items[i])) return *res = 1, 0;
        return 0;
    case JV_DICT:
        for (size_t i = 0; i < seq->n; i++)
            if (jv_eq(item, &seq->pairs[i].k)) return *res = 1, 0;
        return 0;
    case JV_UNDEF: return 0; /* iterating an undefined gives nothing */
    default: return jerr(c, x, "argument of type '%s' is not iterable", jv_type_name(seq));
    }
}

static int eval(jctx *c, const jnode *x, jv *out) {
    jv a, b;
    int r;
    switch (x->kind) {
    case E_CONST: *out = x->value; return 0;
    case E_NAME: {
        const jv *v = lookup(c, x->s, x->sn);
        if (v) return *out = *v, 0;
        int g = jl_global_id(x->s, x->sn);
        if (g >= 0) {
            out->t = JV_FUNC, out->tuple = 0, out->n = 0, out->func = g;
            return 0;
        }
        *out = jv_undef(x->s);
        out->n = x->sn;
        return 0;
    }
    case E_ATTR: {
        if (eval(c, x->a, &a)) return -1;
        if (a.t == JV_UNDEF) return jerr_undef(c, x->a, &a);
        const jv *v = jv_get(&a, x->s, x->sn);
        if (v) *out = *v;
        else *out = jv_undef(x->s), out->n = x->sn;
        return 0;
    }
    case E_ITEM:
        if (eval(c, x->a, &a) || eval(c, x->b, &b)) return -1;
        return eval_item(c, x->a, &a, &b, out);
    case E_SLICE: return eval_slice(c, x, out);
    case E_CALL:
        if (++c->depth > MAX_CALL_DEPTH) return jerr(c, x, "calls nested deeper than %d", MAX_CALL_DEPTH);
        r = eval_call(c, x, out);
        c->depth--;
        return r;
    case E_FILTER: {
        jargs args;
        if (eval(c, x->a, &a) || eval_args(c, x, &args)) return -1;
        return jl_filter(c, x, x->s, x->sn, &a, &args, out);
    }
    case E_TEST: {
        jargs args;
        int res;
        if (eval(c, x->a, &a) || eval_args(c, x, &args) || jl_test(c, x, x->s, x->sn, &a, &args, &res)) return -1;
        *out = jv_bool(x->op ? !res : res);
        return 0;
    }
    case E_NOT:
        if (eval(c, x->a, &a)) return -1;
        *out = jv_bool(!jv_truthy(&a));
        return 0;
    case E_NEG: case E_POS:
        if (eval(c, x->a, &a)) return -1;
        if (a.t == JV_UNDEF) return jerr_undef(c, x->a, &a);
        if (a.t == JV_FLOAT) *out = jv_float(x->kind == E_NEG ? -a.f : a.f);
        else if (a.t == JV_INT || a.t == JV_BOOL) {
            if (x->kind == E_NEG && a.i == INT64_MIN) return jerr(c, x, "integer overflow in unary '-'");
            *out = jv_int(x->kind == E_NEG ? -a.i : a.i);
        } else return jerr(c, x, "bad operand type for unary %s: '%s'", x->kind == E_NEG ? "-" : "+", jv_type_name(&a));
        return 0;
    case E_BINOP:
        if (eval(c, x->a, &a) || eval(c, x->b, &b)) return -1;
        return arith(c, x, x->op, &a, &b, out);
    case E_CMP: {
        if (eval(c, x->a, &a) || eval(c, x->b, &b)) return -1;
        int res = 0, cmp;
        switch (x->op) {
        case OP_EQ: res = jv_eq(&a, &b); break;
        case OP_NE: res = !jv_eq(&a, &b); break;
        case OP_IN: case OP_NOTIN:
            if (contains(c, x, &a, &b, &res)) return -1;
            if (x->op == OP_NOTIN) res = !res;
            break;
        default:
            if (jl_compare(c, x, &a, &b, &cmp)) return -1;
            res = x->op == OP_LT ? cmp < 0 : x->op == OP_LE ? cmp <= 0 : x->op == OP_GT ? cmp > 0 : cmp >= 0;
        }
        *out = jv_bool(res);
        return 0;
    }
    case E_AND: case E_OR:
        if (eval(c, x->a, &a)) return -1;
        if (jv_truthy(&a) == (x->kind == E_OR)) return *out = a, 0;
        return eval(c, x->b, out);
    case E_COND:
        if (eval(c, x->a, &a)) return -1;
        if (jv_truthy(&a)) return eval(c, x->b, out);
        if (x->c) return eval(c, x->c, out);
        *out = jv_undef(NULL);
        return 0;
    case E_LIST: {
        jv *items = x->nkids ? ja_alloc(&c->arena, x->nkids * sizeof *items) : NULL;
        if (x->nkids && !items) return oom(c, x);
        for (size_t i = 0; i < x->nkids; i++)
            if (eval(c, x->kids[i], &items[i])) return -1;
        out->t = JV_LIST, out->tuple = x->tuple, out->n = x->nkids, out->items = items;
        return 0;
    }
    case E_DICT: {
        size_t cnt = x->nkids / 2, n = 0;
        jpair *pairs = cnt ? ja_alloc(&c->arena, cnt * sizeof *pairs) : NULL;
        if (cnt && !pairs) return oom(c, x);
        for (size_t i = 0; i < cnt; i++) {
            jv k, v;
            if (eval(c, x->kids[2 * i], &k) || eval(c, x->kids[2 * i + 1], &v)) return -1;
            if (k.t == JV_LIST && !k.tuple) return jerr(c, x->kids[2 * i], "unhashable type: 'list'");
            if (k.t == JV_DICT || k.t == JV_UNDEF) return jerr(c, x->kids[2 * i], "unhashable type: '%s'", jv_type_name(&k));
            size_t j = 0;
            while (j < n && !jv_eq(&pairs[j].k, &k)) j++;
            if (j == n) pairs[n++].k = k;
            pairs[j].v = v;
        }
        out->t = JV_DICT, out->tuple = 0, out->n = n, out->pairs = pairs;
        return 0;
    }
    default: return jerr(c, x, "internal error: not an expression");
    }
}

/* ---- statements ---- */

enum { EXEC_OK = 0, EXEC_BREAK = 1, EXEC_CONTINUE = 2 };

static int output(jctx *c, const jnode *at, const char *s, size_t n) {
    jb_add(c->out, s, n);
    if (c->out->over) return jerr(c, at, "the output is larger than %zu bytes", c->out->max);
    return 0;
}

/* bind targets (one name, or several from a sequence of that length) */
static int assign(jctx *c, const jnode *x, jframe *f, const jv *v) {
    if (x->nnames == 1) return frame_set(c, x, f, x->names[0], x->name_lens[0], *v);
    jv *items;
    size_t n;
    if (jl_iterate(c, x, v, &items, &n)) return -1;
    if (n != x->nnames)
        return jerr(c, x, "cannot unpack %zu values into %zu names", n, x->nnames);
    for (size_t i = 0; i < n; i++)
        if (frame_set(c, x, f, x->names[i], x->name_lens[i], items[i])) return -1;
    return 0;
}

/* The loop variable: one dict per loop, its values rewritten at each
 * iteration (so a long loop allocates nothing per step; a template that
 * stores `loop` itself somewhere sees its last state). */
static const char *const LOOP_KEYS[] = {"index", "index0", "revindex", "revindex0", "first", "last", "length",
                                        "depth", "depth0", "previtem", "nextitem"};
#define N_LOOP_KEYS 11

static void loop_update(jpair *p, const jv *items, size_t n, size_t i) {
    jv vals[N_LOOP_KEYS] = {jv_int((int64_t)i + 1), jv_int((int64_t)i), jv_int((int64_t)(n - i)),
                            jv_int((int64_t)(n - i - 1)), jv_bool(i == 0), jv_bool(i + 1 == n), jv_int((int64_t)n),
                            jv_int(1), jv_int(0), jv_undef("previtem"), jv_undef("nextitem")};
    vals[9].n = 8, vals[10].n = 8;
    if (i > 0) vals[9] = items[i - 1];
    if (i + 1 < n) vals[10] = items[i + 1];
    for (size_t j = 0; j < N_LOOP_KEYS; j++) p[j].k = jv_str(LOOP_KEYS[j], strlen(LOOP_KEYS[j])), p[j].v = vals[j];
}

static int exec_for(jctx *c, const jnode *x) {
    jv seq, *items;
    size_t n;
    if (eval(c, x->a, &seq)) return -1;
    if (seq.t == JV_UNDEF) n = 0, items = NULL;
    else if (jl_iterate(c, x->a, &seq, &items, &n)) return -1;
    /* one frame for the whole loop, emptied at each iteration: a fresh scope each time */
    jframe f = {c->frame, NULL, 0, 0};
    jframe *saved = c->frame;
    if (x->b) { /* for x in xs if cond: the loop sees only what passes */
        jv *kept = n ? ja_alloc(&c->arena, n * sizeof *kept) : NULL;
        if (n && !kept) return oom(c, x);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (++c->steps > MAX_STEPS) return jerr(c, x, "the template ran more than %llu steps", MAX_STEPS);
            f.n = 0;
            c->frame = &f;
            jv ok;
            int rc = assign(c, x, &f, &items[i]) || eval(c, x->b, &ok);
            c->frame = saved;
            if (rc) return -1;
            if (jv_truthy(&ok)) kept[m++] = items[i];
        }
        items = kept, n = m;
    }
    if (n == 0) return x->d ? exec_block(c, x->d) : 0;
    jpair *lp = ja_alloc(&c->arena, N_LOOP_KEYS * sizeof *lp);
    if (!lp) return oom(c, x);
    jv loop = {JV_DICT, 0, N_LOOP_KEYS, {.pairs = lp}};
    for (size_t i = 0; i < n; i++) {
        if (++c->steps > MAX_STEPS) return jerr(c, x, "the template ran more than %llu steps", MAX_STEPS);
        f.n = 0;
        c->frame = &f;
        loop_update(lp, items, n, i);
        int rc = assign(c, x, &f, &items[i]);
        if (!rc) rc = frame_set(c, x, &f, "loop", 4, loop);
        if (!rc) rc = exec_block(c, x->c);
        c->frame = saved;
        if (rc < 0) return -1;
        if (rc == EXEC_BREAK) break;
    }
    return 0;
}

static int exec_stmt(jctx *c, const jnode *x) {
    jv v;
    switch (x->kind) {
    case N_TEXT: return output(c, x, x->s, x->sn);
    case N_OUTPUT: {
        if (eval(c, x->a, &v)) return -1;
        jv_str_out(c->out, &v);
        if (c->out->over) return jerr(c, x, "the output is larger than %zu bytes", c->out->max);
        return 0;
    }
    case N_IF:
        if (eval(c, x->a, &v)) return -1;
        if (jv_truthy(&v)) return exec_block(c, x->b);
        if (!x->c) return 0;
        return x->c->kind == N_IF ? exec_stmt(c, x->c) : exec_block(c, x->c);
    case N_FOR: return exec_for(c, x);
    case N_SET:
        if (eval(c, x->a, &v)) return -1;
        if (x->s) { /* ns.attr = v */
            const jv *ns = lookup(c, x->names[0], x->name_lens[0]);
            char b[64];
            if (!ns || ns->t != JV_NS)
                return jerr(c, x, "cannot assign attribute on '%s': it is not a namespace()",
                            shown(x->names[0], x->name_lens[0], b, sizeof b));
            jns *s = ns->ns;
            for (size_t i = 0; i < s->n; i++)
                if (s->pairs[i].k.n == x->sn && !memcmp(s->pairs[i].k.s, x->s, x->sn)) return s->pairs[i].v = v, 0;
            if (s->n == s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 8;
                jpair *np = ja_alloc(&c->arena, cap * sizeof *np);
                if (!np) return oom(c, x);
                if (s->n) memcpy(np, s->pairs, s->n * sizeof *np);
                s->pairs = np, s->cap = cap;
            }
            s->pairs[s->n].k = jv_str(x->s, x->sn);
            s->pairs[s->n++].v = v;
            return 0;
        }
        return assign(c, x, c->frame, &v);
    case N_SETBLOCK: {
        jbuf body = {0}, *saved = c->out;
        body.max = saved->max;
        c->out = &body;
        int rc = exec_block(c, x->c);
        c->out = saved;
        if (rc < 0) return jb_free(&body), -1;
        char *s = ja_strdup(&c->arena, body.p ? body.p : "", body.n);
        v = jv_str(s, body.n);
        jb_free(&body);
        if (!s) return oom(c, x);
        return frame_set(c, x, c->frame, x->names[0], x->name_lens[0], v);
    }
    case N_MACRO:
        v.t = JV_MACRO, v.tuple = 0, v.n = 0, v.macro = x;
        return frame_set(c, x, c->frame, x->s, x->sn, v);
    case N_BREAK: return EXEC_BREAK;
    case N_CONTINUE: return EXEC_CONTINUE;
    case N_BLOCK: return exec_block(c, x);
    default: return jerr(c, x, "internal error: not a statement");
    }
}

static int exec_block(jctx *c, const jnode *x) {
    for (size_t i = 0; i < x->nkids; i++) {
        int rc = exec_stmt(c, x->kids[i]);
        if (rc) return rc;
    }
    return 0;
}

/* ---- the public API ---- */

int fs_jinja_compile(fs_jinja **out, const char *src, size_t len, fs_err *e) {
    *out = NULL;
    fs_jinja *t = fs_xcalloc(1, sizeof *t);
    t->arena.limit = ARENA_LIMIT;
    if (jinja_parse(t, src, len, e)) {
        fs_jinja_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void fs_jinja_free(fs_jinja *t) {
    if (!t) return;
    ja_free(&t->arena);
    free(t);
}

int fs_jinja_render(const fs_jinja *t, const fs_jinja_var *vars, size_t n, const fs_jinja_opts *o, char **out,
                    size_t *out_len, fs_err *e) {
    static const fs_jinja_opts defaults = {0};
    if (!o) o = &defaults;
    *out = NULL;
    if (out_len) *out_len = 0;
    jctx c = {0};
    jbuf buf = {0};
    buf.max = o->max_output ? o->max_output : DEFAULT_MAX_OUTPUT;
    jframe root = {NULL, NULL, 0, 0};
    c.arena.limit = ARENA_LIMIT;
    c.out = &buf, c.e = e, c.root = &root, c.frame = &root, c.now = o->now;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        jv v;
        if (jv_from_json(&c.arena, vars[i].value, &v)) rc = oom(&c, NULL);
        else rc = frame_set(&c, NULL, &root, vars[i].name, strlen(vars[i].name), v);
    }
    if (!rc) rc = exec_block(&c, t->root) < 0 ? -1 : 0;
    ja_free(&c.arena);
    if (rc) {
        jb_free(&buf);
        return -1;
    }
    if (!buf.p) jb_add(&buf, "", 0);
    *out = buf.p;
    if (out_len) *out_len = buf.n;
    return 0;
}
