/* jinja_str.c - Python's string methods for templates, and the dict
 * methods (jinja_impl.h): s.strip('\n'), s.split('</think>')[-1],
 * s.startswith(('a', 'b')), d.items(), d.get(k, default)...
 *
 * Strings are UTF-8 byte ranges; where Python counts characters (find's
 * index, strip's character set, title-casing) these count code points.
 * strip() and split() without arguments use Python's whitespace, which
 * includes U+00A0, U+3000 and the other Unicode spaces (jv_py_space).
 * Methods that would change a value (list.append, dict.update...) are
 * refused, as transformers' immutable sandbox refuses them.
 *
 * Docs: docs/chat.md
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

/* ---- string helpers (Python str methods) ---- */

/* strip: chars NULL = Python whitespace; else the code points of chars */
static int in_chars(uint32_t cp, const jv *chars) {
    if (!chars) return jv_py_space(cp);
    for (size_t i = 0; i < chars->n;) {
        uint32_t d;
        int k = fs_utf8_decode((const unsigned char *)chars->s + i, chars->n - i, &d);
        if (k == 0) k = 1, d = 0xFFFD;
        if (d == cp) return 1;
        i += (size_t)k;
    }
    return 0;
}

jv jl_strip(const jv *s, const jv *chars, int left, int right) {
    size_t a = 0, b = s->n;
    while (left && a < b) {
        uint32_t cp;
        int k = fs_utf8_decode((const unsigned char *)s->s + a, b - a, &cp);
        if (k == 0 || !in_chars(cp, chars)) break;
        a += (size_t)k;
    }
    while (right && b > a) {
        size_t st = b - 1;
        while (st > a && ((unsigned char)s->s[st] & 0xC0) == 0x80) st--;
        uint32_t cp;
        int k = fs_utf8_decode((const unsigned char *)s->s + st, b - st, &cp);
        if (k == 0 || !in_chars(cp, chars)) break;
        b = st;
    }
    return jv_str(s->s + a, b - a);
}

/* Case mapping for the scripts a chat template is likely to meet: ASCII,
 * Latin-1, Latin Extended-A, Greek and Cyrillic (one code point to one;
 * Python's 'ß'.upper() == 'SS' and other special cases are not done). */
uint32_t jl_upper_cp(uint32_t c) {
    if (c < 0x80) return (uint32_t)toupper((int)c);
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 0x20;
    if (c == 0xFF) return 0x178;
    if (c == 0xB5) return 0x39C;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x131) return 'I';
        if (c == 0x17F) return 'S';
        if (c == 0x130 || c == 0x138 || c == 0x149) return c;
        int odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        return (c & 1) == (odd_upper ? 0u : 1u) ? c - 1 : c;
    }
    if ((c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2)) return c - 0x20;
    if (c == 0x3C2) return 0x3A3;
    if (c == 0x3AC) return 0x386;
    if (c >= 0x3AD && c <= 0x3AF) return c - 0x25;
    if (c == 0x3CC) return 0x38C;
    if (c == 0x3CD || c == 0x3CE) return c - 0x3F;
    if (c >= 0x430 && c <= 0x44F) return c - 0x20;
    if (c >= 0x450 && c <= 0x45F) return c - 0x50;
    return c;
}

uint32_t jl_lower_cp(uint32_t c) {
    if (c < 0x80) return (uint32_t)tolower((int)c);
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
    if (c == 0x178) return 0xFF;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x130) return 'i';
        if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c;
        int odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        return (c & 1) == (odd_upper ? 1u : 0u) ? c + 1 : c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 0x20;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 0x25;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 0x3F;
    if (c >= 0x410 && c <= 0x42F) return c + 0x20;
    if (c >= 0x400 && c <= 0x40F) return c + 0x50;
    return c;
}

int jl_cased(uint32_t c) { return jl_upper_cp(c) != c || jl_lower_cp(c) != c; }

int jl_case(jctx *c, const jnode *at, const jv *s, int mode, jv *out) {
    /* mode 0 lower, 1 upper, 2 title (str.title(): upper after an uncased
     * character), 3 capitalize (first only), 4 jinja2's |title (upper after
     * a space or one of "-({[<") */
    jbuf b = {0};
    int prev_cased = 0, first = 1, word_start = 1;
    for (size_t i = 0; i < s->n;) {
        uint32_t cp;
        int k = fs_utf8_decode((const unsigned char *)s->s + i, s->n - i, &cp);
        if (k == 0) k = 1, cp = (unsigned char)s->s[i];
        int up = mode == 1 || (mode == 2 && !prev_cased) || (mode == 3 && first) || (mode == 4 && word_start);
        uint32_t m = up ? jl_upper_cp(cp) : jl_lower_cp(cp);
        char u[4];
        if (k == 1 && cp >= 0x80) jb_add(&b, s->s + i, 1);
        else if (up && cp == 0xDF && mode == 1) jb_add(&b, "SS", 2);
        else jb_add(&b, u, (size_t)fs_utf8_encode(m, u));
        prev_cased = jl_cased(cp);
        word_start = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || jv_py_space(cp);
        first = 0;
        i += (size_t)k;
    }
    int rc = jl_mkstr(c, at, b.p ? b.p : "", b.n, out);
    jb_free(&b);
    return rc;
}

static const char *find_sub(const char *s, size_t n, const char *sub, size_t m) {
    if (m == 0) return s;
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(s + i, sub, m)) return s + i;
    return NULL;
}

static const char *rfind_sub(const char *s, size_t n, const char *sub, size_t m) {
    if (m > n) return NULL;
    for (size_t i = n - m + 1; i-- > 0;)
        if (!memcmp(s + i, sub, m)) return s + i;
    return NULL;
}

/* str.split(sep=None, maxsplit=-1), or rsplit when from_right */
static int split(jctx *c, const jnode *at, const jv *s, const jv *sep, int64_t maxsplit, int from_right, jv *out) {
    size_t cap = s->n + 2, n = 0;
    jv *parts = ja_alloc(&c->arena, cap * sizeof *parts);
    if (!parts) return jl_oom(c, at);
    if (sep && sep->t == JV_STR) {
        if (sep->n == 0) return jerr(c, at, "empty separator");
        if (!from_right) {
            size_t pos = 0;
            for (;;) {
                const char *f = maxsplit != 0 ? find_sub(s->s + pos, s->n - pos, sep->s, sep->n) : NULL;
                if (!f) break;
                parts[n++] = jv_str(s->s + pos, (size_t)(f - (s->s + pos)));
                pos = (size_t)(f - s->s) + sep->n;
                if (maxsplit > 0) maxsplit--;
            }
            parts[n++] = jv_str(s->s + pos, s->n - pos);
        } else {
            size_t end = s->n;
            for (;;) {
                const char *f = maxsplit != 0 ? rfind_sub(s->s, end, sep->s, sep->n) : NULL;
                if (!f) break;
                size_t after = (size_t)(f - s->s) + sep->n;
                parts[n++] = jv_str(s->s + after, end - after);
                end = (size_t)(f - s->s);
                if (maxsplit > 0) maxsplit--;
            }
            parts[n++] = jv_str(s->s, end);
            for (size_t i = 0; i < n / 2; i++) {
                jv t = parts[i];
                parts[i] = parts[n - 1 - i], parts[n - 1 - i] = t;
            }
        }
    } else { /* runs of whitespace; leading and trailing ones give nothing */
        if (from_right && maxsplit >= 0) return jerr(c, at, "rsplit() with a maxsplit and no separator is not supported");
        size_t i = 0;
        for (;;) {
            uint32_t cp;
            int k;
            while (i < s->n && (k = fs_utf8_decode((const unsigned char *)s->s + i, s->n - i, &cp)) && jv_py_space(cp)) i += (size_t)k;
            if (i >= s->n) break;
            if (maxsplit == 0) {
                jv rest = jl_strip(&(jv){JV_STR, 0, s->n - i, {.s = s->s + i}}, NULL, 0, 1);
                parts[n++] = rest;
                break;
            }
            size_t st = i;
            while (i < s->n && !((k = fs_utf8_decode((const unsigned char *)s->s + i, s->n - i, &cp)) && jv_py_space(cp)))
                i += k ? (size_t)k : 1;
            parts[n++] = jv_str(s->s + st, i - st);
            if (maxsplit > 0) maxsplit--;
        }
    }
    out->t = JV_LIST, out->tuple = 0, out->n = n, out->items = parts;
    return 0;
}

int jl_replace(jctx *c, const jnode *at, const jv *s, const jv *old, const jv *new, int64_t count, jv *out) {
    if (old->t != JV_STR || new->t != JV_STR) return jerr(c, at, "replace() arguments must be strings");
    jbuf b = {0};
    size_t pos = 0;
    if (old->n == 0) { /* Python inserts new between every character */
        size_t i = 0;
        for (; i <= s->n && count != 0; count--) {
            jb_add(&b, new->s, new->n);
            if (i == s->n) { i++; break; }
            size_t j = i + 1;
            while (j < s->n && ((unsigned char)s->s[j] & 0xC0) == 0x80) j++;
            jb_add(&b, s->s + i, j - i);
            i = j;
        }
        if (i < s->n) jb_add(&b, s->s + i, s->n - i);
    } else {
        for (;;) {
            const char *f = count != 0 ? find_sub(s->s + pos, s->n - pos, old->s, old->n) : NULL;
            if (!f) break;
            jb_add(&b, s->s + pos, (size_t)(f - (s->s + pos)));
            jb_add(&b, new->s, new->n);
            pos = (size_t)(f - s->s) + old->n;
            if (count > 0) count--;
        }
        jb_add(&b, s->s + pos, s->n - pos);
    }
    int rc = jl_mkstr(c, at, b.p ? b.p : "", b.n, out);
    jb_free(&b);
    return rc;
}

int jl_need_str(jctx *c, const jnode *at, const jv *v, const char *what) {
    if (v && v->t == JV_STR) return 0;
    return jerr(c, at, "%s: expected a string, got '%s'", what, v ? jv_type_name(v) : "nothing");
}

int jl_opt_int(jctx *c, const jnode *at, const jv *v, int64_t dflt, int64_t *out, const char *what) {
    if (!v || v->t == JV_NONE) return *out = dflt, 0;
    if (v->t != JV_INT && v->t != JV_BOOL) return jerr(c, at, "%s: expected an integer, got '%s'", what, jv_type_name(v));
    *out = v->i;
    return 0;
}

/* prefix test for startswith/endswith: a string or a tuple of strings */
static int affix(jctx *c, const jnode *at, const jv *s, const jv *p, int end, int *res) {
    if (!p) return jerr(c, at, "%s() takes one argument", end ? "endswith" : "startswith");
    if (p->t == JV_LIST) {
        *res = 0;
        for (size_t i = 0; i < p->n && !*res; i++)
            if (affix(c, at, s, &p->items[i], end, res)) return -1;
        return 0;
    }
    if (jl_need_str(c, at, p, end ? "endswith" : "startswith")) return -1;
    *res = p->n <= s->n && !memcmp(s->s + (end ? s->n - p->n : 0), p->s, p->n);
    return 0;
}

/* ---- methods ---- */

int jl_method(jctx *c, const jnode *at, const jv *obj, const char *name, size_t n, const jargs *a, jv *out,
              int *found) {
    *found = 1;
    const jv *a0 = jl_arg(a, 0, "\x01"), *a1 = jl_arg(a, 1, "\x01");
    if (obj->t == JV_STR) {
        int64_t k = 0;
        int res;
        if (jl_eqn(name, n, "startswith") || jl_eqn(name, n, "endswith")) {
            if (affix(c, at, obj, a0, name[0] == 'e', &res)) return -1;
            return *out = jv_bool(res), 0;
        }
        if (jl_eqn(name, n, "strip") || jl_eqn(name, n, "lstrip") || jl_eqn(name, n, "rstrip")) {
            if (a0 && a0->t != JV_NONE && jl_need_str(c, at, a0, "strip")) return -1;
            *out = jl_strip(obj, a0 && a0->t == JV_STR ? a0 : NULL, name[0] != 'r', name[0] != 'l');
            return 0;
        }
        if (jl_eqn(name, n, "split") || jl_eqn(name, n, "rsplit")) {
            const jv *sep = jl_arg(a, 0, "sep");
            if (sep && sep->t != JV_NONE && jl_need_str(c, at, sep, "split")) return -1;
            if (jl_opt_int(c, at, jl_arg(a, 1, "maxsplit"), -1, &k, "split")) return -1;
            return split(c, at, obj, sep && sep->t == JV_STR ? sep : NULL, k, name[0] == 'r', out);
        }
        if (jl_eqn(name, n, "replace")) {
            if (!a0 || !a1) return jerr(c, at, "jl_replace() takes two arguments");
            if (jl_opt_int(c, at, jl_arg(a, 2, "count"), -1, &k, "replace")) return -1;
            return jl_replace(c, at, obj, a0, a1, k, out);
        }
        if (jl_eqn(name, n, "lower")) return jl_case(c, at, obj, 0, out);
        if (jl_eqn(name, n, "upper")) return jl_case(c, at, obj, 1, out);
        if (jl_eqn(name, n, "title")) return jl_case(c, at, obj, 2, out);
        if (jl_eqn(name, n, "capitalize")) return jl_case(c, at, obj, 3, out);
        if (jl_eqn(name, n, "find") || jl_eqn(name, n, "rfind") || jl_eqn(name, n, "count")) {
            if (jl_need_str(c, at, a0, "find")) return -1;
            if (name[0] == 'c') {
                int64_t cnt = 0;
                if (a0->n == 0) cnt = (int64_t)jv_utf8_len(obj->s, obj->n) + 1;
                else
                    for (const char *p = obj->s, *f; (f = find_sub(p, obj->n - (size_t)(p - obj->s), a0->s, a0->n)); p = f + a0->n) cnt++;
                return *out = jv_int(cnt), 0;
            }
            const char *f = name[0] == 'r' ? rfind_sub(obj->s, obj->n, a0->s, a0->n) : find_sub(obj->s, obj->n, a0->s, a0->n);
            *out = jv_int(f ? (int64_t)jv_utf8_len(obj->s, (size_t)(f - obj->s)) : -1);
            return 0;
        }
        if (jl_eqn(name, n, "join")) {
            jv *items;
            size_t cnt;
            if (!a0 || jl_iterate(c, at, a0, &items, &cnt)) return a0 ? -1 : jerr(c, at, "join() takes one argument");
            jbuf b = {0};
            for (size_t i = 0; i < cnt; i++) {
                if (items[i].t != JV_STR) {
                    jb_free(&b);
                    return jerr(c, at, "sequence item %zu: expected str instance, %s found", i, jv_type_name(&items[i]));
                }
                if (i) jb_add(&b, obj->s, obj->n);
                jb_add(&b, items[i].s, items[i].n);
            }
            int rc = jl_mkstr(c, at, b.p ? b.p : "", b.n, out);
            jb_free(&b);
            return rc;
        }
        if (jl_eqn(name, n, "splitlines")) {
            jv l;
            if (jl_mklist(c, at, obj->n + 1, &l)) return -1;
            size_t cnt = 0, st = 0;
            for (size_t i = 0; i < obj->n; i++)
                if (obj->s[i] == '\n' || obj->s[i] == '\r') {
                    l.items[cnt++] = jv_str(obj->s + st, i - st);
                    if (obj->s[i] == '\r' && i + 1 < obj->n && obj->s[i + 1] == '\n') i++;
                    st = i + 1;
                }
            if (st < obj->n) l.items[cnt++] = jv_str(obj->s + st, obj->n - st);
            l.n = cnt;
            return *out = l, 0;
        }
        if (jl_eqn(name, n, "isdigit") || jl_eqn(name, n, "isalpha") || jl_eqn(name, n, "isspace")) {
            int ok = obj->n > 0;
            for (size_t i = 0; i < obj->n && ok; i++) {
                unsigned char ch = (unsigned char)obj->s[i];
                ok = name[2] == 'd' ? isdigit(ch) : name[2] == 'a' ? isalpha(ch) || ch >= 0x80 : isspace(ch);
            }
            if (name[2] == 's' && ok == 0 && obj->n) { /* unicode spaces */
                ok = 1;
                for (size_t i = 0; i < obj->n && ok;) {
                    uint32_t cp;
                    int k2 = fs_utf8_decode((const unsigned char *)obj->s + i, obj->n - i, &cp);
                    ok = k2 && jv_py_space(cp);
                    i += k2 ? (size_t)k2 : 1;
                }
            }
            return *out = jv_bool(ok), 0;
        }
        if (jl_eqn(name, n, "format")) {
            /* "{}" and "{0}" style with positional arguments only */
            jbuf b = {0};
            size_t next = 0;
            for (size_t i = 0; i < obj->n; i++) {
                char ch = obj->s[i];
                if ((ch == '{' || ch == '}') && i + 1 < obj->n && obj->s[i + 1] == ch) {
                    jb_add(&b, &ch, 1), i++;
                    continue;
                }
                if (ch == '{') {
                    size_t j = i + 1, idx = next++;
                    if (j < obj->n && isdigit((unsigned char)obj->s[j])) idx = (size_t)(obj->s[j++] - '0');
                    if (j >= obj->n || obj->s[j] != '}' || idx >= a->npos) {
                        jb_free(&b);
                        return jerr(c, at, "str.format(): only {} and {N} with positional arguments are supported");
                    }
                    jv_str_out(&b, &a->pos[idx]);
                    i = j;
                    continue;
                }
                jb_add(&b, &ch, 1);
            }
            int rc = jl_mkstr(c, at, b.p ? b.p : "", b.n, out);
            jb_free(&b);
            return rc;
        }
    } else if (obj->t == JV_DICT) {
        if (jl_eqn(name, n, "items") || jl_eqn(name, n, "keys") || jl_eqn(name, n, "values")) {
            jv l;
            if (jl_mklist(c, at, obj->n, &l)) return -1;
            for (size_t i = 0; i < obj->n; i++) {
                if (name[0] == 'k') l.items[i] = obj->pairs[i].k;
                else if (name[0] == 'v') l.items[i] = obj->pairs[i].v;
                else {
                    jv pair;
                    if (jl_mklist(c, at, 2, &pair)) return -1;
                    pair.tuple = 1;
                    pair.items[0] = obj->pairs[i].k, pair.items[1] = obj->pairs[i].v;
                    l.items[i] = pair;
                }
            }
            return *out = l, 0;
        }
        if (jl_eqn(name, n, "get")) {
            if (!a0) return jerr(c, at, "get() takes a key");
            for (size_t i = obj->n; i-- > 0;)
                if (jv_eq(&obj->pairs[i].k, a0)) return *out = obj->pairs[i].v, 0;
            *out = a1 ? *a1 : jv_none();
            return 0;
        }
    }
    static const char *const mutators[] = {"append", "extend", "insert", "pop", "remove", "clear", "update",
                                           "setdefault", "popitem", "sort", "reverse", "add", "discard", NULL};
    for (int i = 0; mutators[i]; i++)
        if (jl_eqn(name, n, mutators[i]) && (obj->t == JV_LIST || obj->t == JV_DICT))
            return jerr(c, at, "'%s' would change a %s: templates cannot modify values", mutators[i], jv_type_name(obj));
    *found = 0;
    return -1;
}

