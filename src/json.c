/* json.c - a strict RFC 8259 parser into an arena-allocated tree.
 *
 * The parser is recursive descent over the grammar of RFC 8259 section 2-7:
 *
 *   value  = object / array / string / number / true / false / null
 *   object = '{' [ member *( ',' member ) ] '}'    member = string ':' value
 *   array  = '[' [ value *( ',' value ) ] ']'
 *   number = [ '-' ] int [ frac ] [ exp ]          int = '0' / [1-9] *DIGIT
 *
 * Strict means: no trailing commas, no comments, no leading zeros, no
 * NaN/Infinity, no leading '+', no raw control characters (U+0000..U+001F) in
 * strings, nothing but whitespace after the top-level value, input must be
 * valid UTF-8 (a byte-order mark is rejected like any other stray byte).
 *
 * Choices where RFC 8259 leaves room (documented in docs/weights.md):
 *  - Lone surrogates (\uD800 without a following \uDC00..\uDFFF, or a low
 *    surrogate on its own) are an ERROR. Python's json accepts them, but the
 *    decoded strings must be valid UTF-8 and U+FFFD would silently change a
 *    token's bytes; no file we read (tokenizer.json, configs) contains one.
 *  - A number whose magnitude overflows a double (1e400) is an error rather
 *    than infinity; underflow (1e-400) becomes 0 as strtod gives.
 *  - Duplicate object keys are kept in the tree; fs_json_get returns the last
 *    one, as Python's json does.
 *  - Positions in messages: "byte" is the 0-based offset into the text;
 *    line and column are 1-based, and the column counts bytes.
 *
 * Memory: every node and decoded string comes from one arena (a chain of
 * large blocks), so parsing the 11 MB tokenizer.json is a few hundred
 * thousand bump allocations and freeing it is a handful of free() calls.
 *
 * Docs: docs/weights.md
 */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------ */

typedef struct arena_block {
    struct arena_block *prev;
    size_t used, cap;
    /* data follows, max_align_t-aligned */
} arena_block;

typedef struct arena {
    arena_block *top;
    size_t next_cap; /* blocks double from 4 KB to 1 MB: small documents
                        (an HTTP body) stay small, big ones pay few mallocs */
} arena;

#define ARENA_FIRST (1u << 12)
#define ARENA_BLOCK (1u << 20)
#define ARENA_ALIGN 16u
#define BLOCK_HEADER (((sizeof(arena_block) + ARENA_ALIGN - 1) / ARENA_ALIGN) * ARENA_ALIGN)

static void *arena_alloc(arena *a, size_t n) {
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_block *b = a->top;
    if (!b || b->cap - b->used < n) {
        if (b && n > ARENA_BLOCK / 2) {
            /* A long string gets a block of its own, slipped in under the
             * current one so small nodes keep filling the current block. */
            arena_block *big = fs_xmalloc(BLOCK_HEADER + n);
            big->cap = big->used = n;
            big->prev = b->prev;
            b->prev = big;
            return (char *)big + BLOCK_HEADER;
        }
        if (a->next_cap < ARENA_FIRST) a->next_cap = ARENA_FIRST;
        size_t cap = n > a->next_cap ? n : a->next_cap;
        if (a->next_cap < ARENA_BLOCK) a->next_cap *= 2;
        arena_block *nb = fs_xmalloc(BLOCK_HEADER + cap);
        nb->used = 0;
        nb->cap = cap;
        nb->prev = b;
        a->top = b = nb;
    }
    void *p = (char *)b + BLOCK_HEADER + b->used;
    b->used += n;
    return p;
}

static void arena_free(arena *a) {
    arena_block *b = a->top;
    while (b) {
        arena_block *prev = b->prev;
        free(b);
        b = prev;
    }
    free(a);
}

/* ---- parser ----------------------------------------------------------- */

typedef struct parser {
    const unsigned char *s;
    size_t n, pos;
    arena *ar;
    fs_err *e;
} parser;

/* Report an error at byte offset `at`: line/column are computed here, by
 * rescanning, because errors are rare and the hot path should not track them. */
static int fail_at(parser *p, size_t at, const char *msg) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->n; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return fs_errf(p->e, "JSON error at byte %zu (line %zu, column %zu): %s", at, line, col, msg);
}

static int fail(parser *p, const char *msg) { return fail_at(p, p->pos, msg); }

static void skip_ws(parser *p) {
    while (p->pos < p->n) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static fs_json *new_node(parser *p, fs_json_type t) {
    fs_json *v = arena_alloc(p->ar, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = t;
    return v;
}

static int hex4(const unsigned char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* Parse a string starting at the opening quote. Two passes: the first finds
 * the closing quote and checks raw bytes (control characters, UTF-8); the
 * second decodes escapes into the arena. The decoded form is never longer
 * than the raw form (\uXXXX is 6 bytes for at most 3 UTF-8 bytes; a
 * surrogate pair is 12 bytes for 4), so the raw length bounds the buffer. */
static int parse_string(parser *p, const char **out, size_t *out_len) {
    size_t start = ++p->pos; /* after the quote */
    size_t i = start;
    int has_escape = 0;
    const unsigned char *s = p->s;
    for (;;) {
        if (i >= p->n) return fail_at(p, start - 1, "unterminated string");
        unsigned char c = s[i];
        if (c == '"') break;
        if (c == '\\') {
            has_escape = 1;
            if (i + 1 >= p->n) return fail_at(p, start - 1, "unterminated string");
            if (s[i + 1] == 0 || !strchr("\"\\/bfnrtu", s[i + 1])) return fail_at(p, i, "invalid escape in string");
            i += 2; /* \uXXXX digits are checked in the decode pass */
            continue;
        }
        if (c < 0x20) return fail_at(p, i, "control character in string (must be escaped)");
        if (c < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int len = fs_utf8_decode(s + i, p->n - i, &cp);
        if (!len) return fail_at(p, i, "invalid UTF-8 in string");
        i += (size_t)len;
    }
    size_t raw_len = i - start;
    char *buf = arena_alloc(p->ar, raw_len + 1);
    size_t o = 0;
    if (!has_escape) {
        memcpy(buf, s + start, raw_len);
        o = raw_len;
    } else {
        for (size_t j = start; j < i;) {
            unsigned char c = s[j];
            if (c != '\\') {
                buf[o++] = (char)c;
                j++;
                continue;
            }
            unsigned char x = s[j + 1];
            switch (x) {
            case '"': buf[o++] = '"'; j += 2; continue;
            case '\\': buf[o++] = '\\'; j += 2; continue;
            case '/': buf[o++] = '/'; j += 2; continue;
            case 'b': buf[o++] = '\b'; j += 2; continue;
            case 'f': buf[o++] = '\f'; j += 2; continue;
            case 'n': buf[o++] = '\n'; j += 2; continue;
            case 'r': buf[o++] = '\r'; j += 2; continue;
            case 't': buf[o++] = '\t'; j += 2; continue;
            case 'u': break;
            default: return fail_at(p, j, "invalid escape in string");
            }
            uint32_t cp;
            if (j + 6 > i || hex4(s + j + 2, &cp)) return fail_at(p, j, "invalid \\u escape (need 4 hex digits)");
            if (cp >= 0xdc00 && cp <= 0xdfff) return fail_at(p, j, "lone low surrogate in \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                /* UTF-16 surrogate pair: \uD8xx\uDCxx encodes one code point
                 * above U+FFFF: 0x10000 + (hi - 0xD800) << 10 + (lo - 0xDC00). */
                uint32_t lo;
                if (j + 12 > i || s[j + 6] != '\\' || s[j + 7] != 'u' || hex4(s + j + 8, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return fail_at(p, j, "lone high surrogate in \\u escape (no low surrogate follows)");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                j += 6;
            }
            j += 6;
            o += (size_t)fs_utf8_encode(cp, buf + o);
        }
    }
    buf[o] = 0;
    p->pos = i + 1;
    *out = buf;
    *out_len = o;
    return 0;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int parse_number(parser *p, fs_json *v) {
    size_t start = p->pos, i = start;
    const unsigned char *s = p->s;
    if (i < p->n && s[i] == '-') i++;
    if (i >= p->n || !is_digit(s[i])) return fail_at(p, i, "invalid number (expected a digit)");
    if (s[i] == '0') {
        i++;
        if (i < p->n && is_digit(s[i])) return fail_at(p, i, "invalid number (leading zero)");
    } else {
        while (i < p->n && is_digit(s[i])) i++;
    }
    if (i < p->n && s[i] == '.') {
        i++;
        if (i >= p->n || !is_digit(s[i])) return fail_at(p, i, "invalid number (expected a digit after '.')");
        while (i < p->n && is_digit(s[i])) i++;
    }
    if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->n || !is_digit(s[i])) return fail_at(p, i, "invalid number (expected a digit in exponent)");
        while (i < p->n && is_digit(s[i])) i++;
    }
    /* The text is not NUL-terminated, so strtod gets a terminated copy. The
     * grammar was checked above, so strtod sees only what JSON allows. */
    size_t len = i - start;
    char small[64];
    char *tmp = len < sizeof small ? small : fs_xmalloc(len + 1);
    memcpy(tmp, s + start, len);
    tmp[len] = 0;
    errno = 0;
    double d = strtod(tmp, NULL);
    int range = errno == ERANGE && isinf(d);
    if (tmp != small) free(tmp);
    if (range) return fail_at(p, start, "number out of range for a double");
    v->number = d;
    p->pos = i;
    return 0;
}

static int parse_value(parser *p, fs_json **out, int depth);

static int parse_container(parser *p, fs_json *v, int depth) {
    int is_obj = v->type == FS_JSON_OBJECT;
    unsigned char close = is_obj ? '}' : ']';
    p->pos++; /* the opening bracket */
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    fs_json **tail = &v->child;
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        if (is_obj) {
            if (p->pos >= p->n) return fail(p, "unexpected end of input in object (expected a key)");
            if (p->s[p->pos] != '"')
                return fail(p, p->s[p->pos] == '}' ? "trailing comma in object" : "expected a string key in object");
            if (parse_string(p, &key, &key_len)) return -1;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':') return fail(p, "expected ':' after object key");
            p->pos++;
            skip_ws(p);
        } else if (p->pos < p->n && p->s[p->pos] == ']') {
            return fail(p, "trailing comma in array");
        }
        fs_json *child;
        if (parse_value(p, &child, depth + 1)) return -1;
        child->key = key;
        child->key_len = key_len;
        *tail = child;
        tail = &child->next;
        v->len++;
        skip_ws(p);
        if (p->pos >= p->n)
            return fail(p, is_obj ? "unexpected end of input in object" : "unexpected end of input in array");
        unsigned char c = p->s[p->pos];
        if (c == close) {
            p->pos++;
            return 0;
        }
        if (c != ',')
            return fail(p, is_obj ? "expected ',' or '}' in object" : "expected ',' or ']' in array");
        p->pos++;
        skip_ws(p);
    }
}

static int match_word(parser *p, const char *w) {
    size_t n = strlen(w);
    if (p->n - p->pos < n || memcmp(p->s + p->pos, w, n) != 0) return 0;
    p->pos += n;
    return 1;
}

static int parse_value(parser *p, fs_json **out, int depth) {
    if (depth > FS_JSON_MAX_DEPTH) return fail(p, "nesting deeper than FS_JSON_MAX_DEPTH (256)");
    skip_ws(p);
    if (p->pos >= p->n) return fail(p, "unexpected end of input (expected a value)");
    unsigned char c = p->s[p->pos];
    fs_json *v;
    switch (c) {
    case '{':
    case '[':
        v = new_node(p, c == '{' ? FS_JSON_OBJECT : FS_JSON_ARRAY);
        *out = v;
        return parse_container(p, v, depth);
    case '"':
        v = new_node(p, FS_JSON_STRING);
        *out = v;
        return parse_string(p, &v->str, &v->len);
    case 't':
    case 'f':
    case 'n':
        v = new_node(p, c == 'n' ? FS_JSON_NULL : FS_JSON_BOOL);
        *out = v;
        if (c == 't' && match_word(p, "true")) v->boolean = 1;
        else if (c == 'f' && match_word(p, "false")) v->boolean = 0;
        else if (c == 'n' && match_word(p, "null")) {
        } else return fail(p, "invalid literal (expected true, false or null)");
        return 0;
    default:
        if (c == '-' || is_digit(c)) {
            v = new_node(p, FS_JSON_NUMBER);
            *out = v;
            return parse_number(p, v);
        }
        if (c == 'N' || c == 'I') return fail(p, "NaN and Infinity are not JSON");
        if (c == '}' || c == ']') return fail(p, "unexpected closing bracket (expected a value)");
        return fail(p, "unexpected character (expected a value)");
    }
}

int fs_json_parse(fs_json_doc *doc, const char *text, size_t len, fs_err *e) {
    doc->root = NULL;
    doc->arena = NULL;
    arena *ar = fs_xcalloc(1, sizeof *ar);
    parser p = {(const unsigned char *)text, len, 0, ar, e};
    fs_json *root;
    if (parse_value(&p, &root, 1)) {
        arena_free(ar);
        return -1;
    }
    skip_ws(&p);
    if (p.pos != p.n) {
        fail(&p, "trailing characters after the JSON value");
        arena_free(ar);
        return -1;
    }
    doc->root = root;
    doc->arena = ar;
    return 0;
}

void fs_json_free(fs_json_doc *doc) {
    if (!doc) return;
    if (doc->arena) arena_free(doc->arena);
    doc->arena = NULL;
    doc->root = NULL;
}

/* ---- lookups ---------------------------------------------------------- */

const fs_json *fs_json_get(const fs_json *obj, const char *key) {
    if (!obj || obj->type != FS_JSON_OBJECT || !key) return NULL;
    size_t kl = strlen(key);
    const fs_json *found = NULL;
    for (const fs_json *c = obj->child; c; c = c->next)
        if (c->key_len == kl && memcmp(c->key, key, kl) == 0) found = c; /* last wins */
    return found;
}

const fs_json *fs_json_index(const fs_json *arr, size_t i) {
    if (!arr || arr->type != FS_JSON_ARRAY) return NULL;
    const fs_json *c = arr->child;
    while (c && i--) c = c->next;
    return c;
}

const char *fs_json_string(const fs_json *v) {
    return v && v->type == FS_JSON_STRING ? v->str : NULL;
}

double fs_json_number_or(const fs_json *v, double fallback) {
    return v && v->type == FS_JSON_NUMBER ? v->number : fallback;
}

int fs_json_int(const fs_json *v, int64_t lo, int64_t hi, int64_t *out) {
    if (!v || v->type != FS_JSON_NUMBER) return 0;
    double d = v->number;
    /* Compare in double before converting: casting an out-of-range double to
     * int64 is undefined behaviour. 2^63 is exact in double. */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return 0;
    if (d != floor(d)) return 0;
    int64_t x = (int64_t)d;
    if (x < lo || x > hi) return 0;
    if (out) *out = x;
    return 1;
}

int fs_json_is(const fs_json *v, fs_json_type t) { return v && v->type == t; }

/* ---- writing ---------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s, or 0 with *skip = the length of
 * the "maximal subpart" to replace by one U+FFFD. This matches Python's
 * bytes.decode(errors="replace") and the WHATWG decoder: a truncated but
 * otherwise well-formed prefix (E2 82 followed by 'A') is one U+FFFD, while
 * a byte that can never start or continue a sequence is one U+FFFD each. */
static size_t utf8_valid_len(const unsigned char *s, size_t n, size_t *skip) {
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) need = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0) lo = 0xa0;        /* no overlong forms */
        else if (c == 0xed) hi = 0x9f;   /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0) lo = 0x90;        /* no overlong forms */
        else if (c == 0xf4) hi = 0x8f;   /* nothing above U+10FFFF */
    } else {
        *skip = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < need && i < n; i++) {
        unsigned b = s[i];
        unsigned l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xbf;
        if (b < l || b > h) break;
    }
    if (i == need) return need;
    *skip = i;
    return 0;
}

void fs_json_write_string(FILE *f, const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t skip = 0, n = utf8_valid_len(s + i, len - i, &skip);
            if (n) {
                fwrite(s + i, 1, n, f);
                i += n;
            } else {
                fputs("\xef\xbf\xbd", f); /* U+FFFD */
                i += skip;
            }
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (c < 0x20) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
        i++;
    }
    fputc('"', f);
}

int fs_json_parse_file(fs_json_doc *doc, const char *path, fs_err *e) {
    char *text;
    size_t len;
    if (fs_read_file(path, &text, &len, e)) return -1;
    /* strings are copied into the document's arena: the text can go now */
    int rc = fs_json_parse(doc, text, len, e);
    free(text);
    return rc ? fs_err_prefix(e, "%s", path) : 0;
}
