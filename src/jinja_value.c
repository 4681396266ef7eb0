/* jinja_value.c - the values a chat template computes with, written out
 * as Python writes them (jinja_impl.h).
 *
 * A template's output is Python's str() of each {{ value }}, so these
 * follow CPython exactly where templates show them:
 *   str(None) "None", str(True) "True", str(1.0) "1.0", str(1e16) "1e+16"
 *   str([1, 'a', None]) "[1, 'a', None]"   (repr of the items: quotes)
 *   json.dumps(x, ensure_ascii=False) for |tojson: ", " and ": " separators,
 *   non-ASCII kept, indent=N puts each item on its own line.
 * Truthiness is Python's: "", 0, 0.0, None, [], {} and undefined are false.
 *
 * Docs: docs/chat.md
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

/* ---- arena ---- */

struct jchunk {
    struct jchunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *ja_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!n) n = 16;
    if (a->limit && (n > a->limit || a->used_total > a->limit - n)) {
        a->over = 1;
        return NULL;
    }
    struct jchunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = fs_xmalloc(sizeof *c + cap);
        c->used = 0, c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used_total += n;
    memset(p, 0, n);
    return p;
}

char *ja_strdup(jarena *a, const char *s, size_t n) {
    char *d = ja_alloc(a, n + 1);
    if (d && n) memcpy(d, s, n);
    return d;
}

void ja_free(jarena *a) {
    for (struct jchunk *c = a->head, *nx; c; c = nx) {
        nx = c->next;
        free(c);
    }
    a->head = NULL;
    a->used_total = 0;
}

/* ---- output buffer ---- */

void jb_add(jbuf *b, const char *s, size_t n) {
    if (b->over) return;
    if (b->max && (n > b->max || b->n > b->max - n)) {
        b->over = 1;
        return;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + n + 1 > cap) cap *= 2;
        b->p = fs_xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void jb_puts(jbuf *b, const char *s) { jb_add(b, s, strlen(s)); }

void jb_free(jbuf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ---- UTF-8 ---- */

size_t jv_utf8_len(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

size_t jv_utf8_offset(const char *s, size_t n, size_t k) {
    size_t i = 0;
    for (; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80 && k-- == 0) return i;
    return n;
}

int jv_py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* ---- basic questions ---- */

const char *jv_type_name(const jv *v) {
    switch (v->t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return v->tuple == JV_GENERATOR ? "generator" : v->tuple ? "tuple" : "list";
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_MACRO: return "Macro";
    default: return "function";
    }
}

int jv_truthy(const jv *v) {
    switch (v->t) {
    case JV_UNDEF: case JV_NONE: return 0;
    case JV_BOOL: case JV_INT: return v->i != 0;
    case JV_FLOAT: return v->f != 0;
    case JV_LIST: return v->tuple == JV_GENERATOR || v->n != 0;
    case JV_STR: case JV_DICT: return v->n != 0;
    default: return 1;
    }
}

const jv *jv_get(const jv *d, const char *key, size_t n) {
    const jpair *p = d->t == JV_DICT ? d->pairs : d->t == JV_NS ? d->ns->pairs : NULL;
    size_t cnt = d->t == JV_DICT ? d->n : d->t == JV_NS ? d->ns->n : 0;
    /* the last of duplicated keys wins, as in a Python dict built from JSON */
    for (size_t i = cnt; i-- > 0;)
        if (p[i].k.t == JV_STR && p[i].k.n == n && !memcmp(p[i].k.s, key, n)) return &p[i].v;
    return NULL;
}

static int is_num(const jv *v) { return v->t == JV_BOOL || v->t == JV_INT || v->t == JV_FLOAT; }

int jv_eq(const jv *a, const jv *b) {
    if (is_num(a) && is_num(b)) {
        if (a->t != JV_FLOAT && b->t != JV_FLOAT) return a->i == b->i;
        double x = a->t == JV_FLOAT ? a->f : (double)a->i, y = b->t == JV_FLOAT ? b->f : (double)b->i;
        return x == y;
    }
    if (a->t != b->t) return 0;
    switch (a->t) {
    case JV_UNDEF: case JV_NONE: return 1;
    case JV_STR: return a->n == b->n && !memcmp(a->s, b->s, a->n);
    case JV_LIST:
        if (a->tuple == JV_GENERATOR || b->tuple == JV_GENERATOR) return a->items == b->items && a->tuple == b->tuple;
        if (a->n != b->n || a->tuple != b->tuple) return 0;
        for (size_t i = 0; i < a->n; i++)
            if (!jv_eq(&a->items[i], &b->items[i])) return 0;
        return 1;
    case JV_DICT:
        if (a->n != b->n) return 0;
        for (size_t i = 0; i < a->n; i++) {
            const jv *o = NULL;
            for (size_t j = 0; j < b->n && !o; j++)
                if (jv_eq(&a->pairs[i].k, &b->pairs[j].k)) o = &b->pairs[j].v;
            if (!o || !jv_eq(&a->pairs[i].v, o)) return 0;
        }
        return 1;
    case JV_NS: return a->ns == b->ns;
    case JV_MACRO: return a->macro == b->macro;
    default: return a->func == b->func;
    }
}

/* ---- Python's float repr ----
 * The shortest digit string that reads back to the same double; fixed
 * notation when the decimal exponent is in [-4, 16), else d.ddde+XX. */
void jv_float_out(jbuf *b, double x) {
    char digits[40], tmp[64];
    if (isnan(x)) return jb_puts(b, "nan");
    if (isinf(x)) return jb_puts(b, x < 0 ? "-inf" : "inf");
    if (x == 0) return jb_puts(b, signbit(x) ? "-0.0" : "0.0");
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
        if (strtod(tmp, NULL) == x) break;
    }
    const char *p = tmp;
    int neg = 0;
    if (*p == '-') neg = 1, p++;
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    digits[nd] = 0;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = 0;
    if (neg) jb_add(b, "-", 1);
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            jb_add(b, "0.", 2);
            for (int i = 0; i < -exp10 - 1; i++) jb_add(b, "0", 1);
            jb_add(b, digits, nd);
        } else if ((size_t)exp10 + 1 >= nd) {
            jb_add(b, digits, nd);
            for (size_t i = nd; i < (size_t)exp10 + 1; i++) jb_add(b, "0", 1);
            jb_add(b, ".0", 2);
        } else {
            jb_add(b, digits, (size_t)exp10 + 1);
            jb_add(b, ".", 1);
            jb_add(b, digits + exp10 + 1, nd - (size_t)exp10 - 1);
        }
    } else {
        jb_add(b, digits, 1);
        if (nd > 1) {
            jb_add(b, ".", 1);
            jb_add(b, digits + 1, nd - 1);
        }
        snprintf(tmp, sizeof tmp, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
        jb_puts(b, tmp);
    }
}

static void int_out(jbuf *b, int64_t i) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", (long long)i);
    jb_puts(b, tmp);
}

/* Python's str.isprintable() for one code point, closely enough: control
 * characters, separators other than ' ', format characters, surrogates and
 * private use are not printable (unassigned code points are treated as
 * printable). */
static int py_printable(uint32_t c) {
    if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return 0;
    if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x2064) ||
        (c >= 0x2066 && c <= 0x206F) || c == 0x3000 || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB))
        return 0;
    if (c == 0x061C || c == 0x180E || (c >= 0x0600 && c <= 0x0605) || c == 0x06DD || c == 0x070F)
        return 0;
    if ((c >= 0xD800 && c <= 0xF8FF) || (c >= 0xF0000)) return 0;
    if (c == 0x110BD || c == 0x110CD || (c >= 0x1BCA0 && c <= 0x1BCA3) || (c >= 0x1D173 && c <= 0x1D17A) ||
        c == 0xE0001 || (c >= 0xE0020 && c <= 0xE007F))
        return 0;
    return 1;
}

/* repr(str): single quotes unless the text has ' and no ". */
static void str_repr(jbuf *b, const char *s, size_t n) {
    int sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    jb_add(b, &q, 1);
    for (size_t i = 0; i < n;) {
        uint32_t c;
        int k = fs_utf8_decode((const unsigned char *)s + i, n - i, &c);
        if (k == 0) c = (unsigned char)s[i], k = 1;
        char tmp[16];
        if (c == (uint32_t)q || c == '\\') {
            tmp[0] = '\\', tmp[1] = (char)c;
            jb_add(b, tmp, 2);
        } else if (c == '\n') jb_add(b, "\\n", 2);
        else if (c == '\r') jb_add(b, "\\r", 2);
        else if (c == '\t') jb_add(b, "\\t", 2);
        else if (!py_printable(c)) {
            snprintf(tmp, sizeof tmp, c < 0x100 ? "\\x%02x" : c < 0x10000 ? "\\u%04x" : "\\U%08x", c);
            jb_puts(b, tmp);
        } else {
            jb_add(b, s + i, (size_t)k);
        }
        i += (size_t)k;
    }
    jb_add(b, &q, 1);
}

void jv_repr_out(jbuf *b, const jv *v) {
    switch (v->t) {
    case JV_UNDEF: jb_puts(b, "Undefined"); break; /* inside a container; alone it prints nothing */
    case JV_STR: str_repr(b, v->s, v->n); break;
    case JV_LIST:
        if (v->tuple == JV_GENERATOR) {
            jb_puts(b, "<generator object>");
            break;
        }
        jb_add(b, v->tuple ? "(" : "[", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i) jb_add(b, ", ", 2);
            jv_repr_out(b, &v->items[i]);
        }
        if (v->tuple && v->n == 1) jb_add(b, ",", 1);
        jb_add(b, v->tuple ? ")" : "]", 1);
        break;
    case JV_DICT:
        jb_add(b, "{", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i) jb_add(b, ", ", 2);
            jv_repr_out(b, &v->pairs[i].k);
            jb_add(b, ": ", 2);
            jv_repr_out(b, &v->pairs[i].v);
        }
        jb_add(b, "}", 1);
        break;
    default: jv_str_out(b, v);
    }
}

void jv_str_out(jbuf *b, const jv *v) {
    switch (v->t) {
    case JV_UNDEF: break;
    case JV_NONE: jb_puts(b, "None"); break;
    case JV_BOOL: jb_puts(b, v->i ? "True" : "False"); break;
    case JV_INT: int_out(b, v->i); break;
    case JV_FLOAT: jv_float_out(b, v->f); break;
    case JV_STR: jb_add(b, v->s, v->n); break;
    case JV_LIST: case JV_DICT: jv_repr_out(b, v); break;
    case JV_NS: jb_puts(b, "<Namespace>"); break;
    case JV_MACRO: jb_puts(b, "<Macro>"); break;
    default: jb_puts(b, "<function>"); break;
    }
}

/* ---- json.dumps ---- */

static void json_str(jbuf *b, const char *s, size_t n, int ascii) {
    jb_add(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char tmp[16];
        switch (c) {
        case '"': jb_add(b, "\\\"", 2); break;
        case '\\': jb_add(b, "\\\\", 2); break;
        case '\n': jb_add(b, "\\n", 2); break;
        case '\r': jb_add(b, "\\r", 2); break;
        case '\t': jb_add(b, "\\t", 2); break;
        case '\b': jb_add(b, "\\b", 2); break;
        case '\f': jb_add(b, "\\f", 2); break;
        default:
            if (c < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                jb_puts(b, tmp);
            } else if (c >= 0x80 && ascii) {
                uint32_t cp;
                int k = fs_utf8_decode((const unsigned char *)s + i, n - i, &cp);
                if (k == 0) cp = 0xFFFD, k = 1;
                if (cp >= 0x10000) {
                    cp -= 0x10000;
                    snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
                } else {
                    snprintf(tmp, sizeof tmp, "\\u%04x", cp);
                }
                jb_puts(b, tmp);
                i += (size_t)k;
                continue;
            } else {
                jb_add(b, s + i, 1);
            }
        }
        i++;
    }
    jb_add(b, "\"", 1);
}

static void newline_indent(jbuf *b, int indent, int level) {
    jb_add(b, "\n", 1);
    for (int i = 0; i < indent * level; i++) jb_add(b, " ", 1);
}

/* a dict key as json.dumps writes it: keys that are not strings become
 * strings (1 -> "1", True -> "true", None -> "null") */
static int json_key(jbuf *b, const jv *k, int ascii, const char **why) {
    jbuf t = {0};
    switch (k->t) {
    case JV_STR: json_str(b, k->s, k->n, ascii); return 0;
    case JV_NONE: jb_puts(&t, "null"); break;
    case JV_BOOL: jb_puts(&t, k->i ? "true" : "false"); break;
    case JV_INT: int_out(&t, k->i); break;
    case JV_FLOAT: jv_float_out(&t, k->f); break;
    default: *why = "keys must be str, int, float, bool or None"; return -1;
    }
    json_str(b, t.p, t.n, ascii);
    jb_free(&t);
    return 0;
}

static int cmp_keys(const void *x, const void *y) {
    const jpair *a = *(const jpair *const *)x, *b = *(const jpair *const *)y;
    size_t n = a->k.n < b->k.n ? a->k.n : b->k.n;
    int c = memcmp(a->k.s, b->k.s, n);
    return c ? c : (a->k.n > b->k.n) - (a->k.n < b->k.n);
}

static int json_out(jbuf *b, const jv *v, int ascii, int indent, const char *isep, const char *ksep, int sort,
                    int level, const char **why) {
    if (level > 200) {
        *why = "nested too deeply";
        return -1;
    }
    switch (v->t) {
    case JV_NONE: jb_puts(b, "null"); return 0;
    case JV_BOOL: jb_puts(b, v->i ? "true" : "false"); return 0;
    case JV_INT: int_out(b, v->i); return 0;
    case JV_FLOAT:
        if (isnan(v->f)) jb_puts(b, "NaN");
        else if (isinf(v->f)) jb_puts(b, v->f < 0 ? "-Infinity" : "Infinity");
        else jv_float_out(b, v->f);
        return 0;
    case JV_STR: json_str(b, v->s, v->n, ascii); return 0;
    case JV_LIST:
        if (v->tuple == JV_GENERATOR) {
            *why = "Object of type generator is not JSON serializable";
            return -1;
        }
        if (!v->n) return jb_puts(b, "[]"), 0;
        jb_add(b, "[", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i) jb_puts(b, isep);
            if (indent >= 0) newline_indent(b, indent, level + 1);
            if (json_out(b, &v->items[i], ascii, indent, isep, ksep, sort, level + 1, why)) return -1;
        }
        if (indent >= 0) newline_indent(b, indent, level);
        jb_add(b, "]", 1);
        return 0;
    case JV_DICT: case JV_NS: {
        const jpair *pairs = v->t == JV_DICT ? v->pairs : v->ns->pairs;
        size_t n = v->t == JV_DICT ? v->n : v->ns->n;
        if (v->t == JV_NS) {
            *why = "Object of type Namespace is not JSON serializable";
            return -1;
        }
        if (!n) return jb_puts(b, "{}"), 0;
        const jpair **order = fs_xmalloc(n * sizeof *order);
        for (size_t i = 0; i < n; i++) order[i] = &pairs[i];
        if (sort) {
            for (size_t i = 0; i < n; i++)
                if (order[i]->k.t != JV_STR) {
                    free(order);
                    *why = "sort_keys needs string keys";
                    return -1;
                }
            qsort(order, n, sizeof *order, cmp_keys);
        }
        jb_add(b, "{", 1);
        int rc = 0;
        for (size_t i = 0; i < n && !rc; i++) {
            if (i) jb_puts(b, isep);
            if (indent >= 0) newline_indent(b, indent, level + 1);
            rc = json_key(b, &order[i]->k, ascii, why);
            if (!rc) {
                jb_puts(b, ksep);
                rc = json_out(b, &order[i]->v, ascii, indent, isep, ksep, sort, level + 1, why);
            }
        }
        free(order);
        if (rc) return -1;
        if (indent >= 0) newline_indent(b, indent, level);
        jb_add(b, "}", 1);
        return 0;
    }
    default:
        *why = v->t == JV_UNDEF ? "Object of type Undefined is not JSON serializable"
                                : "a macro or function is not JSON serializable";
        return -1;
    }
}

int jv_json_out(jbuf *b, const jv *v, int ensure_ascii, int indent, const char *item_sep, const char *key_sep,
                int sort_keys, const char **why) {
    if (!item_sep) item_sep = indent >= 0 ? "," : ", ";
    if (!key_sep) key_sep = ": ";
    return json_out(b, v, ensure_ascii, indent, item_sep, key_sep, sort_keys, 0, why);
}

/* ---- from JSON ---- */

int jv_from_json(jarena *a, const fs_json *j, jv *out) {
    switch (j->type) {
    case FS_JSON_NULL: *out = jv_none(); return 0;
    case FS_JSON_BOOL: *out = jv_bool(j->boolean); return 0;
    case FS_JSON_NUMBER:
        if (j->number == floor(j->number) && fabs(j->number) < 9007199254740992.0)
            *out = jv_int((int64_t)j->number);
        else
            *out = jv_float(j->number);
        return 0;
    case FS_JSON_STRING: *out = jv_str(j->str, j->len); return 0;
    case FS_JSON_ARRAY: {
        jv *items = j->len ? ja_alloc(a, j->len * sizeof *items) : NULL;
        if (j->len && !items) return -1;
        size_t i = 0;
        for (const fs_json *c = j->child; c; c = c->next, i++)
            if (jv_from_json(a, c, &items[i])) return -1;
        out->t = JV_LIST, out->tuple = 0, out->n = i, out->items = items;
        return 0;
    }
    case FS_JSON_OBJECT: {
        /* a Python dict from JSON keeps one entry per key: the last value,
         * at the place of the first occurrence */
        jpair *pairs = j->len ? ja_alloc(a, j->len * sizeof *pairs) : NULL;
        if (j->len && !pairs) return -1;
        size_t n = 0;
        for (const fs_json *c = j->child; c; c = c->next) {
            jv val;
            if (jv_from_json(a, c, &val)) return -1;
            size_t k = 0;
            while (k < n && !(pairs[k].k.n == c->key_len && !memcmp(pairs[k].k.s, c->key, c->key_len))) k++;
            if (k == n) pairs[n++].k = jv_str(c->key, c->key_len);
            pairs[k].v = val;
        }
        out->t = JV_DICT, out->tuple = 0, out->n = n, out->pairs = pairs;
        return 0;
    }
    }
    return -1;
}
