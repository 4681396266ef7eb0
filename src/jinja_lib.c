/* jinja_lib.c - the filters, tests, methods and global functions a chat
 * template can call (jinja_impl.h), each as jinja2 and Python define it:
 *
 *   filters  tojson trim length/count string upper lower title capitalize
 *            items first last join default/d selectattr rejectattr select
 *            reject map list reverse sort unique dictsort replace int float
 *            abs round sum min max indent safe
 *   tests    defined undefined none boolean true false string number
 *            integer float mapping iterable sequence callable eq/equalto/==
 *            ne/!= lt/< le/<= gt/> ge/>= in odd even divisibleby sameas
 *            lower upper
 *   methods  str: startswith endswith strip lstrip rstrip split rsplit
 *                 replace upper lower title capitalize find rfind count
 *                 join splitlines isdigit isalpha isspace format
 *            dict: items keys values get          (these in jinja_str.c)
 *   globals  range namespace dict raise_exception strftime_now
 *
 * tojson is transformers' override: json.dumps(x, ensure_ascii=False,
 * indent=None, separators=None, sort_keys=False), not jinja2's HTML-safe
 * one. What jinja2 returns as a generator (select, map, unique, items...)
 * is a list marked JV_GENERATOR: always true, no len(), no index, as
 * there; it is computed at once, so a filter given the wrong type fails
 * where it is written rather than where jinja2 would first iterate it.
 *
 * Docs: docs/chat.md
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

int jl_oom(jctx *c, const jnode *at) { return jerr(c, at, "the template ran out of memory"); }

int jl_mkstr(jctx *c, const jnode *at, const char *s, size_t n, jv *out) {
    char *d = ja_strdup(&c->arena, s, n);
    if (!d) return jl_oom(c, at);
    *out = jv_str(d, n);
    return 0;
}

int jl_mklist(jctx *c, const jnode *at, size_t n, jv *out) {
    memset(out, 0, sizeof *out);
    jv *items = n ? ja_alloc(&c->arena, n * sizeof *items) : NULL;
    if (n && !items) return jl_oom(c, at);
    out->t = JV_LIST, out->tuple = 0, out->n = n, out->items = items;
    return 0;
}

int jl_str(jctx *c, const jv *v, jv *out) {
    if (v->t == JV_STR) return *out = *v, 0;
    jbuf b = {0};
    jv_str_out(&b, v);
    int rc = jl_mkstr(c, NULL, b.p ? b.p : "", b.n, out);
    jb_free(&b);
    return rc;
}

/* what `for x in v` visits: list items, dict keys, string characters */
int jl_iterate(jctx *c, const jnode *at, const jv *v, jv **items, size_t *n) {
    switch (v->t) {
    case JV_LIST: *items = v->items, *n = v->n; return 0;
    case JV_UNDEF: *items = NULL, *n = 0; return 0;
    case JV_DICT: {
        jv l;
        if (jl_mklist(c, at, v->n, &l)) return -1;
        for (size_t i = 0; i < v->n; i++) l.items[i] = v->pairs[i].k;
        *items = l.items, *n = v->n;
        return 0;
    }
    case JV_STR: {
        size_t cnt = jv_utf8_len(v->s, v->n), k = 0;
        jv l;
        if (jl_mklist(c, at, cnt, &l)) return -1;
        for (size_t i = 0; i < v->n;) {
            size_t j = i + 1;
            while (j < v->n && ((unsigned char)v->s[j] & 0xC0) == 0x80) j++;
            l.items[k++] = jv_str(v->s + i, j - i);
            i = j;
        }
        *items = l.items, *n = cnt;
        return 0;
    }
    default: return jerr(c, at, "'%s' object is not iterable", jv_type_name(v));
    }
}

int jl_compare(jctx *c, const jnode *at, const jv *a, const jv *b, int *cmp) {
    int an = a->t == JV_INT || a->t == JV_FLOAT || a->t == JV_BOOL, bn = b->t == JV_INT || b->t == JV_FLOAT || b->t == JV_BOOL;
    if (an && bn) {
        if (a->t != JV_FLOAT && b->t != JV_FLOAT) *cmp = (a->i > b->i) - (a->i < b->i);
        else {
            double x = a->t == JV_FLOAT ? a->f : (double)a->i, y = b->t == JV_FLOAT ? b->f : (double)b->i;
            *cmp = (x > y) - (x < y);
        }
        return 0;
    }
    if (a->t == JV_STR && b->t == JV_STR) { /* UTF-8 byte order is code point order */
        size_t n = a->n < b->n ? a->n : b->n;
        int r = memcmp(a->s, b->s, n);
        *cmp = r ? (r > 0) - (r < 0) : (a->n > b->n) - (a->n < b->n);
        return 0;
    }
    if (a->t == JV_LIST && b->t == JV_LIST) {
        for (size_t i = 0; i < a->n && i < b->n; i++) {
            if (jv_eq(&a->items[i], &b->items[i])) continue;
            return jl_compare(c, at, &a->items[i], &b->items[i], cmp);
        }
        *cmp = (a->n > b->n) - (a->n < b->n);
        return 0;
    }
    if (a->t == JV_UNDEF) return jerr_undef(c, at, a);
    if (b->t == JV_UNDEF) return jerr_undef(c, at, b);
    return jerr(c, at, "'<' not supported between instances of '%s' and '%s'", jv_type_name(a), jv_type_name(b));
}

/* ---- filters ---- */

static const char *const FILTERS[] = {
    "tojson", "safe", "string", "length", "count", "default", "d", "first", "last", "list", "items", "dictsort",
    "join", "selectattr", "rejectattr", "select", "reject", "map", "reverse", "sort", "unique", "sum", "min", "max",
    "upper", "lower", "title", "capitalize", "trim", "replace", "int", "float", "abs", "round", "indent", NULL};
static const char *const TESTS[] = {
    "defined", "undefined", "none", "boolean", "true", "false", "string", "number", "integer", "float", "mapping",
    "iterable", "sequence", "callable", "odd", "even", "divisibleby", "lower", "upper", "eq", "equalto", "==", "ne",
    "!=", "sameas", "in", "lt", "<", "le", "<=", "gt", ">", "ge", ">=", NULL};

static int known(const char *const *list, const char *name, size_t n) {
    for (int i = 0; list[i]; i++)
        if (jl_eqn(name, n, list[i])) return 1;
    return 0;
}

int jl_filter_known(const char *name, size_t n) { return known(FILTERS, name, n); }
int jl_test_known(const char *name, size_t n) { return known(TESTS, name, n); }

/* x.attr or x[attr] for selectattr/map(attribute=...): "a.b" walks */
static jv attr_path(const jv *x, const jv *path) {
    jv cur = *x;
    size_t st = 0;
    for (size_t i = 0; i <= path->n; i++) {
        if (i < path->n && path->s[i] != '.') continue;
        const jv *v = cur.t == JV_DICT || cur.t == JV_NS ? jv_get(&cur, path->s + st, i - st) : NULL;
        if (!v) return jv_undef(NULL);
        cur = *v;
        st = i + 1;
    }
    return cur;
}

static int select_filter(jctx *c, const jnode *at, const jv *in, const jargs *a, int by_attr, int keep, jv *out) {
    jv *items;
    size_t n;
    if (jl_iterate(c, at, in, &items, &n)) return -1;
    const jv *attr = by_attr ? jl_arg(a, 0, "attribute") : NULL;
    if (by_attr && jl_need_str(c, at, attr, "selectattr")) return -1;
    size_t first_test = by_attr ? 1 : 0;
    const jv *test = a->npos > first_test ? &a->pos[first_test] : NULL;
    if (test && jl_need_str(c, at, test, "select test name")) return -1;
    jargs targs = {a->npos > first_test + 1 ? a->pos + first_test + 1 : NULL,
                   a->npos > first_test + 1 ? a->npos - first_test - 1 : 0, NULL, NULL, NULL, 0};
    jv l;
    if (jl_mklist(c, at, n, &l)) return -1;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        jv v = by_attr ? attr_path(&items[i], attr) : items[i];
        int r;
        if (test) {
            if (jl_test(c, at, test->s, test->n, &v, &targs, &r)) return -1;
        } else {
            r = jv_truthy(&v);
        }
        if (r == keep) l.items[m++] = items[i];
    }
    l.n = m;
    return *out = l, 0;
}

/* what a sort compares with; err: a comparison failed (e.g. 1 < 'a') */
typedef struct {
    jctx *c;
    const jnode *at;
    int err;
} sorter;

static int sort_cmp(sorter *so, const jv *x, const jv *y) {
    int r = 0;
    if (!so->err && jl_compare(so->c, so->at, x, y, &r)) so->err = 1;
    return r;
}

static void msort(sorter *so, jv *v, jv *tmp, size_t n, int rev) {
    if (n < 2) return;
    size_t h = n / 2;
    msort(so, v, tmp, h, rev);
    msort(so, v + h, tmp, n - h, rev);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int r = sort_cmp(so, &v[j], &v[i]);
        if (rev ? r > 0 : r < 0) tmp[k++] = v[j++];
        else tmp[k++] = v[i++];
    }
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static int tojson(jctx *c, const jnode *at, const jv *in, const jargs *a, jv *out) {
    const jv *ea = jl_arg(a, 0, "ensure_ascii"), *ind = jl_arg(a, 1, "indent"), *seps = jl_arg(a, 2, "separators"),
             *sk = jl_arg(a, 3, "sort_keys");
    int64_t indent = -1;
    if (ind && ind->t != JV_NONE) {
        if (ind->t != JV_INT) return jerr(c, at, "tojson: indent must be an integer");
        indent = ind->i < 0 ? 0 : ind->i > 64 ? 64 : ind->i;
    }
    char isep[16] = {0}, ksep[16] = {0};
    const char *ip = NULL, *kp = NULL;
    if (seps && seps->t != JV_NONE) {
        if (seps->t != JV_LIST || seps->n != 2 || seps->items[0].t != JV_STR || seps->items[1].t != JV_STR ||
            seps->items[0].n >= sizeof isep || seps->items[1].n >= sizeof ksep)
            return jerr(c, at, "tojson: separators must be a pair of short strings");
        memcpy(isep, seps->items[0].s, seps->items[0].n);
        memcpy(ksep, seps->items[1].s, seps->items[1].n);
        ip = isep, kp = ksep;
    }
    jbuf b = {0};
    const char *why = NULL;
    int rc = jv_json_out(&b, in, ea && jv_truthy(ea), (int)indent, ip, kp, sk && jv_truthy(sk), &why);
    if (rc) {
        jb_free(&b);
        return jerr(c, at, "tojson: %s", why);
    }
    rc = jl_mkstr(c, at, b.p ? b.p : "", b.n, out);
    jb_free(&b);
    return rc;
}

static int length_of(jctx *c, const jnode *at, const jv *in, int64_t *n) {
    switch (in->t) {
    case JV_STR: *n = (int64_t)jv_utf8_len(in->s, in->n); return 0;
    case JV_LIST:
        if (in->tuple == JV_GENERATOR) return jerr(c, at, "object of type 'generator' has no len() (add |list)");
        *n = (int64_t)in->n;
        return 0;
    case JV_DICT: *n = (int64_t)in->n; return 0;
    case JV_NS: *n = (int64_t)in->ns->n; return 0;
    case JV_UNDEF: *n = 0; return 0;
    default: return jerr(c, at, "object of type '%s' has no len()", jv_type_name(in));
    }
}

static int filter(jctx *c, const jnode *at, const char *name, size_t n, const jv *in, const jargs *a, jv *out);

/* The filters jinja2 implements as generators give a generator here too
 * (reverse only for what is not a string). */
int jl_filter(jctx *c, const jnode *at, const char *name, size_t n, const jv *in, const jargs *a, jv *out) {
    static const char *const GENS[] = {"select", "reject", "selectattr", "rejectattr", "map", "unique", "items", NULL};
    if (filter(c, at, name, n, in, a, out)) return -1;
    int gen = jl_eqn(name, n, "reverse") && in->t != JV_STR;
    for (int i = 0; GENS[i]; i++) gen |= jl_eqn(name, n, GENS[i]);
    if (gen && out->t == JV_LIST) out->tuple = JV_GENERATOR;
    return 0;
}

static int filter(jctx *c, const jnode *at, const char *name, size_t n, const jv *in, const jargs *a, jv *out) {
    const jv *a0 = jl_arg(a, 0, "\x01");
    int64_t k = 0;
    jv *items;
    size_t cnt;
#define IS(lit) jl_eqn(name, n, lit)
    if (IS("tojson")) return tojson(c, at, in, a, out);
    if (IS("safe")) return *out = *in, 0;
    if (IS("string")) return jl_str(c, in, out);
    if (IS("length") || IS("count")) {
        if (length_of(c, at, in, &k)) return -1;
        return *out = jv_int(k), 0;
    }
    if (IS("default") || IS("d")) {
        const jv *dflt = jl_arg(a, 0, "default_value"), *boolean = jl_arg(a, 1, "boolean");
        int use = in->t == JV_UNDEF || (boolean && jv_truthy(boolean) && !jv_truthy(in));
        *out = use ? (dflt ? *dflt : jv_str("", 0)) : *in;
        return 0;
    }
    if (IS("first") || IS("last")) {
        if (IS("last") && in->t == JV_LIST && in->tuple == JV_GENERATOR)
            return jerr(c, at, "'generator' object is not reversible (add |list before |last)");
        if (jl_iterate(c, at, in, &items, &cnt)) return -1;
        *out = cnt ? items[IS("first") ? 0 : cnt - 1] : jv_undef(NULL);
        return 0;
    }
    if (IS("list")) {
        if (jl_iterate(c, at, in, &items, &cnt)) return -1;
        out->t = JV_LIST, out->tuple = 0, out->n = cnt, out->items = items;
        return 0;
    }
    if (IS("items")) {
        if (in->t == JV_UNDEF) return jl_mklist(c, at, 0, out);
        if (in->t != JV_DICT) return jerr(c, at, "items: expected a mapping, got '%s'", jv_type_name(in));
        int found;
        return jl_method(c, at, in, "items", 5, &(jargs){0}, out, &found);
    }
    if (IS("dictsort")) {
        if (in->t != JV_DICT) return jerr(c, at, "dictsort: expected a mapping, got '%s'", jv_type_name(in));
        int found;
        if (jl_method(c, at, in, "items", 5, &(jargs){0}, out, &found)) return -1;
        jv *tmp = fs_xmalloc((out->n ? out->n : 1) * sizeof *tmp);
        sorter so = {c, at, 0};
        msort(&so, out->items, tmp, out->n, 0);
        free(tmp);
        return so.err ? -1 : 0;
    }
    if (IS("join")) {
        const jv *sep = jl_arg(a, 0, "d"), *attr = jl_arg(a, 1, "attribute");
        if (sep && jl_need_str(c, at, sep, "join")) return -1;
        if (jl_iterate(c, at, in, &items, &cnt)) return -1;
        jbuf b = {0};
        for (size_t i = 0; i < cnt; i++) {
            if (i && sep) jb_add(&b, sep->s, sep->n);
            jv v = attr ? attr_path(&items[i], attr) : items[i];
            jv_str_out(&b, &v);
        }
        int rc = jl_mkstr(c, at, b.p ? b.p : "", b.n, out);
        jb_free(&b);
        return rc;
    }
    if (IS("selectattr") || IS("rejectattr")) return select_filter(c, at, in, a, 1, name[0] == 's', out);
    if (IS("select") || IS("reject")) return select_filter(c, at, in, a, 0, name[0] == 's', out);
    if (IS("map")) {
        const jv *attr = jl_arg(a, 99, "attribute"), *dflt = jl_arg(a, 99, "default");
        if (jl_iterate(c, at, in, &items, &cnt) || jl_mklist(c, at, cnt, out)) return -1;
        if (!attr && (!a0 || a0->t != JV_STR)) return jerr(c, at, "map: give a filter name or attribute=");
        jargs rest = {a->npos > 1 ? a->pos + 1 : NULL, a->npos > 1 ? a->npos - 1 : 0, NULL, NULL, NULL, 0};
        for (size_t i = 0; i < cnt; i++) {
            if (attr) {
                if (jl_need_str(c, at, attr, "map attribute")) return -1;
                out->items[i] = attr_path(&items[i], attr);
                if (out->items[i].t == JV_UNDEF && dflt) out->items[i] = *dflt;
            } else if (jl_filter(c, at, a0->s, a0->n, &items[i], &rest, &out->items[i])) {
                return -1;
            }
        }
        return 0;
    }
    if (IS("reverse")) {
        if (in->t == JV_STR) {
            jv l;
            if (jl_iterate(c, at, in, &items, &cnt)) return -1;
            char *d = ja_alloc(&c->arena, in->n + 1);
            if (!d) return jl_oom(c, at);
            size_t m = 0;
            for (size_t i = cnt; i-- > 0;) memcpy(d + m, items[i].s, items[i].n), m += items[i].n;
            (void)l;
            return *out = jv_str(d, m), 0;
        }
        if (jl_iterate(c, at, in, &items, &cnt) || jl_mklist(c, at, cnt, out)) return -1;
        for (size_t i = 0; i < cnt; i++) out->items[i] = items[cnt - 1 - i];
        return 0;
    }
    if (IS("sort")) {
        const jv *rev = jl_arg(a, 0, "reverse"), *attr = jl_arg(a, 2, "attribute");
        if (attr) return jerr(c, at, "sort: attribute= is not supported");
        if (jl_iterate(c, at, in, &items, &cnt) || jl_mklist(c, at, cnt, out)) return -1;
        if (cnt) memcpy(out->items, items, cnt * sizeof *items);
        jv *tmp = fs_xmalloc((cnt ? cnt : 1) * sizeof *tmp);
        sorter so = {c, at, 0};
        msort(&so, out->items, tmp, cnt, rev && jv_truthy(rev));
        free(tmp);
        return so.err ? -1 : 0;
    }
    if (IS("unique")) {
        if (jl_iterate(c, at, in, &items, &cnt) || jl_mklist(c, at, cnt, out)) return -1;
        size_t m = 0;
        for (size_t i = 0; i < cnt; i++) {
            size_t j = 0;
            while (j < m && !jv_eq(&out->items[j], &items[i])) j++;
            if (j == m) out->items[m++] = items[i];
        }
        out->n = m;
        return 0;
    }
    if (IS("sum") || IS("min") || IS("max")) {
        if (jl_iterate(c, at, in, &items, &cnt)) return -1;
        if (IS("sum")) {
            jv acc = jv_int(0);
            for (size_t i = 0; i < cnt; i++) {
                if (items[i].t == JV_FLOAT || acc.t == JV_FLOAT) {
                    if (items[i].t != JV_FLOAT && items[i].t != JV_INT && items[i].t != JV_BOOL)
                        return jerr(c, at, "sum: '%s' is not a number", jv_type_name(&items[i]));
                    acc = jv_float((acc.t == JV_FLOAT ? acc.f : (double)acc.i) +
                                   (items[i].t == JV_FLOAT ? items[i].f : (double)items[i].i));
                } else if (items[i].t == JV_INT || items[i].t == JV_BOOL) {
                    if (__builtin_add_overflow(acc.i, items[i].i, &acc.i)) return jerr(c, at, "sum: integer overflow");
                } else {
                    return jerr(c, at, "sum: '%s' is not a number", jv_type_name(&items[i]));
                }
            }
            return *out = acc, 0;
        }
        if (!cnt) return *out = jv_undef(NULL), 0;
        *out = items[0];
        for (size_t i = 1; i < cnt; i++) {
            int r;
            if (jl_compare(c, at, &items[i], out, &r)) return -1;
            if (IS("min") ? r < 0 : r > 0) *out = items[i];
        }
        return 0;
    }
    if (IS("upper") || IS("lower") || IS("title") || IS("capitalize") || IS("trim")) {
        jv s;
        if (jl_str(c, in, &s)) return -1;
        if (IS("trim")) {
            const jv *chars = jl_arg(a, 0, "chars");
            if (chars && chars->t != JV_NONE && jl_need_str(c, at, chars, "trim")) return -1;
            *out = jl_strip(&s, chars && chars->t == JV_STR ? chars : NULL, 1, 1);
            return 0;
        }
        if (IS("capitalize")) return jl_case(c, at, &s, 3, out);
        if (IS("title")) return jl_case(c, at, &s, 4, out);
        return jl_case(c, at, &s, IS("upper"), out);
    }
    if (IS("replace")) {
        jv s;
        const jv *cntv = jl_arg(a, 2, "count");
        if (jl_str(c, in, &s) || jl_opt_int(c, at, cntv, -1, &k, "replace")) return -1;
        if (!a0 || !jl_arg(a, 1, "new")) return jerr(c, at, "replace takes two arguments");
        return jl_replace(c, at, &s, a0, jl_arg(a, 1, "new"), k, out);
    }
    if (IS("int")) {
        const jv *dflt = jl_arg(a, 0, "default");
        *out = dflt ? *dflt : jv_int(0);
        if (in->t == JV_INT || in->t == JV_BOOL) *out = jv_int(in->i);
        else if (in->t == JV_FLOAT && isfinite(in->f) && fabs(in->f) < 9.2e18) *out = jv_int((int64_t)in->f);
        else if (in->t == JV_STR) {
            char tmp[64];
            jv t = jl_strip(in, NULL, 1, 1);
            if (t.n && t.n < sizeof tmp) {
                memcpy(tmp, t.s, t.n), tmp[t.n] = 0;
                char *end;
                long long v = strtoll(tmp, &end, 10);
                if (*end == 0) *out = jv_int(v);
                else {
                    double d = strtod(tmp, &end);
                    if (*end == 0 && isfinite(d) && fabs(d) < 9.2e18) *out = jv_int((int64_t)d);
                }
            }
        }
        return 0;
    }
    if (IS("float")) {
        const jv *dflt = jl_arg(a, 0, "default");
        *out = dflt ? *dflt : jv_float(0);
        if (in->t == JV_INT || in->t == JV_BOOL) *out = jv_float((double)in->i);
        else if (in->t == JV_FLOAT) *out = *in;
        else if (in->t == JV_STR) {
            char tmp[64];
            jv t = jl_strip(in, NULL, 1, 1);
            if (t.n && t.n < sizeof tmp) {
                memcpy(tmp, t.s, t.n), tmp[t.n] = 0;
                char *end;
                double d = strtod(tmp, &end);
                if (*end == 0) *out = jv_float(d);
            }
        }
        return 0;
    }
    if (IS("abs")) {
        if (in->t == JV_INT || in->t == JV_BOOL) {
            if (in->i == INT64_MIN) return jerr(c, at, "abs: integer overflow");
            return *out = jv_int(in->i < 0 ? -in->i : in->i), 0;
        }
        if (in->t == JV_FLOAT) return *out = jv_float(fabs(in->f)), 0;
        return jerr(c, at, "bad operand type for abs(): '%s'", jv_type_name(in));
    }
    if (IS("round")) {
        const jv *method = jl_arg(a, 1, "method");
        if (jl_opt_int(c, at, jl_arg(a, 0, "precision"), 0, &k, "round")) return -1;
        if (in->t != JV_INT && in->t != JV_FLOAT && in->t != JV_BOOL)
            return jerr(c, at, "round: expected a number, got '%s'", jv_type_name(in));
        double x = in->t == JV_FLOAT ? in->f : (double)in->i, m = pow(10, (double)k);
        const char *how = method && method->t == JV_STR ? method->s : "common";
        double y = x * m;
        if (!strncmp(how, "ceil", 4)) y = ceil(y);
        else if (!strncmp(how, "floor", 5)) y = floor(y);
        else y = nearbyint(y); /* Python's round(): half to even */
        return *out = jv_float(y / m), 0;
    }
    if (IS("indent")) {
        const jv *w = jl_arg(a, 0, "width"), *first = jl_arg(a, 1, "first"), *blank = jl_arg(a, 2, "blank");
        jv s, pad;
        if (jl_str(c, in, &s)) return -1;
        if (w && w->t == JV_STR) pad = *w;
        else {
            if (jl_opt_int(c, at, w, 4, &k, "indent")) return -1;
            if (k < 0) k = 0;
            if (k > 1024) return jerr(c, at, "indent: width too large");
            char *p = ja_alloc(&c->arena, (size_t)k + 1);
            if (!p) return jl_oom(c, at);
            memset(p, ' ', (size_t)k);
            pad = jv_str(p, (size_t)k);
        }
        jbuf b = {0};
        size_t st = 0;
        for (size_t i = 0; i <= s.n; i++) {
            if (i < s.n && s.s[i] != '\n') continue;
            int empty = i == st;
            if ((st > 0 || (first && jv_truthy(first))) && (!empty || (blank && jv_truthy(blank)))) jb_add(&b, pad.s, pad.n);
            jb_add(&b, s.s + st, i - st);
            if (i < s.n) jb_add(&b, "\n", 1);
            st = i + 1;
        }
        int rc = jl_mkstr(c, at, b.p ? b.p : "", b.n, out);
        jb_free(&b);
        return rc;
    }
#undef IS
    char buf[48];
    size_t m = n < 40 ? n : 40;
    memcpy(buf, name, m), buf[m] = 0;
    return jerr(c, at, "unknown filter '%s' (not supported by fs's Jinja)", buf);
}

/* ---- tests ---- */

int jl_test(jctx *c, const jnode *at, const char *name, size_t n, const jv *in, const jargs *a, int *r) {
    const jv *a0 = jl_arg(a, 0, "\x01");
    int t = in->t;
#define IS(lit) jl_eqn(name, n, lit)
    if (IS("defined")) return *r = t != JV_UNDEF, 0;
    if (IS("undefined")) return *r = t == JV_UNDEF, 0;
    if (IS("none")) return *r = t == JV_NONE, 0;
    if (IS("boolean")) return *r = t == JV_BOOL, 0;
    if (IS("true")) return *r = t == JV_BOOL && in->i, 0;
    if (IS("false")) return *r = t == JV_BOOL && !in->i, 0;
    if (IS("string")) return *r = t == JV_STR, 0;
    if (IS("number")) return *r = t == JV_INT || t == JV_FLOAT || t == JV_BOOL, 0;
    if (IS("integer")) return *r = t == JV_INT, 0;
    if (IS("float")) return *r = t == JV_FLOAT, 0;
    if (IS("mapping")) return *r = t == JV_DICT, 0;
    if (IS("iterable")) return *r = t == JV_STR || t == JV_LIST || t == JV_DICT || t == JV_UNDEF, 0;
    if (IS("sequence")) return *r = t == JV_STR || t == JV_LIST || t == JV_DICT || t == JV_UNDEF, 0;
    if (IS("callable")) return *r = t == JV_MACRO || t == JV_FUNC || t == JV_UNDEF, 0; /* jinja2's Undefined has __call__ */
    if ((IS("odd") || IS("even")) && t == JV_FLOAT) { /* value % 2 == 1 (odd), == 0 (even), Python's modulo */
        double m = fmod(in->f, 2.0);
        if (m < 0) m += 2.0;
        return *r = IS("odd") ? m == 1.0 : m == 0.0, 0;
    }
    if (IS("odd") || IS("even") || IS("divisibleby")) {
        if (t != JV_INT && t != JV_BOOL) return jerr(c, at, "test '%s': expected an integer", IS("odd") ? "odd" : IS("even") ? "even" : "divisibleby");
        if (IS("divisibleby")) {
            if (!a0 || (a0->t != JV_INT && a0->t != JV_BOOL) || a0->i == 0) return jerr(c, at, "divisibleby needs a non-zero integer");
            if (a0->i == -1) return *r = 1, 0;
            return *r = in->i % a0->i == 0, 0;
        }
        return *r = (int)((in->i % 2 != 0) == IS("odd")), 0;
    }
    if (IS("lower") || IS("upper")) {
        if (t != JV_STR) return *r = 0, 0;
        int any = 0, ok = 1;
        for (size_t i = 0; i < in->n;) {
            uint32_t cp;
            int k = fs_utf8_decode((const unsigned char *)in->s + i, in->n - i, &cp);
            if (k == 0) k = 1, cp = 0xFFFD;
            if (jl_cased(cp)) any = 1, ok &= IS("lower") ? jl_lower_cp(cp) == cp : jl_upper_cp(cp) == cp;
            i += (size_t)k;
        }
        return *r = any && ok, 0;
    }
    if (!a0 && (IS("eq") || IS("equalto") || IS("==") || IS("ne") || IS("!=") || IS("lt") || IS("le") || IS("gt") ||
                IS("ge") || IS("in") || IS("sameas") || IS("<") || IS("<=") || IS(">") || IS(">=")))
        return jerr(c, at, "this test needs an argument");
    if (IS("eq") || IS("equalto") || IS("==")) return *r = jv_eq(in, a0), 0;
    if (IS("ne") || IS("!=")) return *r = !jv_eq(in, a0), 0;
    if (IS("sameas")) { /* identity: the singletons, or the same container */
        if (in->t != a0->t) return *r = 0, 0;
        if (t == JV_NONE || t == JV_UNDEF) return *r = 1, 0;
        if (t == JV_BOOL) return *r = in->i == a0->i, 0;
        if (t == JV_LIST) return *r = in->items == a0->items && in->n == a0->n, 0;
        if (t == JV_DICT) return *r = in->pairs == a0->pairs && in->n == a0->n, 0;
        return *r = jv_eq(in, a0), 0;
    }
    if (IS("in")) {
        jv *items;
        size_t cnt;
        if (a0->t == JV_STR) {
            if (t != JV_STR) return jerr(c, at, "'in <string>' requires string as left operand");
            *r = 0;
            for (size_t i = 0; !*r && i + in->n <= a0->n; i++) *r = !memcmp(a0->s + i, in->s, in->n);
            return 0;
        }
        if (jl_iterate(c, at, a0, &items, &cnt)) return -1;
        *r = 0;
        for (size_t i = 0; i < cnt && !*r; i++) *r = jv_eq(in, &items[i]);
        return 0;
    }
    int cmp;
    if (IS("lt") || IS("<") || IS("le") || IS("<=") || IS("gt") || IS(">") || IS("ge") || IS(">=")) {
        if (jl_compare(c, at, in, a0, &cmp)) return -1;
        if (IS("lt") || IS("<")) *r = cmp < 0;
        else if (IS("le") || IS("<=")) *r = cmp <= 0;
        else if (IS("gt") || IS(">")) *r = cmp > 0;
        else *r = cmp >= 0;
        return 0;
    }
#undef IS
    char buf[48];
    size_t m = n < 40 ? n : 40;
    memcpy(buf, name, m), buf[m] = 0;
    return jerr(c, at, "unknown test '%s' (not supported by fs's Jinja)", buf);
}

/* ---- global functions ---- */

enum { G_RANGE, G_NAMESPACE, G_DICT, G_RAISE, G_STRFTIME, G_COUNT };
static const char *const GLOBALS[G_COUNT] = {"range", "namespace", "dict", "raise_exception", "strftime_now"};

int jl_global_id(const char *name, size_t n) {
    for (int i = 0; i < G_COUNT; i++)
        if (jl_eqn(name, n, GLOBALS[i])) return i;
    return -1;
}

#define MAX_RANGE 1000000

int jl_global(jctx *c, const jnode *at, int func, const jargs *a, jv *out) {
    switch (func) {
    case G_RANGE: {
        int64_t v[3] = {0, 0, 1};
        if (a->npos < 1 || a->npos > 3 || a->nkw) return jerr(c, at, "range() takes 1 to 3 integer arguments");
        for (size_t i = 0; i < a->npos; i++)
            if (a->pos[i].t != JV_INT && a->pos[i].t != JV_BOOL) return jerr(c, at, "range(): arguments must be integers");
        if (a->npos == 1) v[1] = a->pos[0].i;
        else
            for (size_t i = 0; i < a->npos; i++) v[i] = a->pos[i].i;
        if (v[2] == 0) return jerr(c, at, "range() step must not be zero");
        size_t n = 0;
        for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2])
            if (++n > MAX_RANGE) return jerr(c, at, "range() longer than %d", MAX_RANGE);
        if (jl_mklist(c, at, n, out)) return -1;
        n = 0;
        for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2]) out->items[n++] = jv_int(i);
        return 0;
    }
    case G_NAMESPACE: case G_DICT: {
        if (a->npos > (func == G_DICT ? 1u : 0u)) return jerr(c, at, "%s() takes keyword arguments", GLOBALS[func]);
        size_t base = 0;
        const jv *init = a->npos ? &a->pos[0] : NULL;
        if (init && init->t != JV_DICT) return jerr(c, at, "dict(): expected a mapping");
        base = init ? init->n : 0;
        jpair *pairs = ja_alloc(&c->arena, (base + a->nkw + 1) * sizeof *pairs);
        if (!pairs) return jl_oom(c, at);
        size_t n = 0;
        for (size_t i = 0; i < base; i++) pairs[n++] = init->pairs[i];
        for (size_t i = 0; i < a->nkw; i++) {
            jv k = jv_str(a->kn[i], a->kl[i]);
            size_t j = 0;
            while (j < n && !jv_eq(&pairs[j].k, &k)) j++;
            if (j == n) pairs[n++].k = k;
            pairs[j].v = a->kv[i];
        }
        if (func == G_DICT) {
            out->t = JV_DICT, out->tuple = 0, out->n = n, out->pairs = pairs;
            return 0;
        }
        jns *ns = ja_alloc(&c->arena, sizeof *ns);
        if (!ns) return jl_oom(c, at);
        ns->pairs = pairs, ns->n = n, ns->cap = base + a->nkw + 1;
        out->t = JV_NS, out->tuple = 0, out->n = 0, out->ns = ns;
        return 0;
    }
    case G_RAISE: {
        jv s = jv_str("", 0);
        if (a->npos && jl_str(c, &a->pos[0], &s)) return -1;
        char msg[200];
        size_t m = s.n < sizeof msg - 1 ? s.n : sizeof msg - 1;
        memcpy(msg, s.s, m), msg[m] = 0;
        return jerr(c, at, "raise_exception: %s", msg);
    }
    case G_STRFTIME: {
        if (a->npos != 1 || a->pos[0].t != JV_STR) return jerr(c, at, "strftime_now() takes a format string");
        time_t now = c->now ? c->now : time(NULL);
        struct tm tm;
        if (c->now) gmtime_r(&now, &tm);
        else localtime_r(&now, &tm);
        char fmt[128], buf[256];
        if (a->pos[0].n >= sizeof fmt) return jerr(c, at, "strftime_now(): format too long");
        memcpy(fmt, a->pos[0].s, a->pos[0].n), fmt[a->pos[0].n] = 0;
        size_t n = strftime(buf, sizeof buf, fmt, &tm);
        if (n == 0 && fmt[0]) return jerr(c, at, "strftime_now(): the result is empty or too long");
        return jl_mkstr(c, at, buf, n, out);
    }
    default: return jerr(c, at, "internal error: unknown global");
    }
}
