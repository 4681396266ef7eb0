/* regex.c - the pre-tokenizer regex engine (see regex.h for the syntax).
 *
 * Two halves, in the classic Thompson/Pike style of a compiled program:
 *
 *   compile: a recursive-descent parser turns the pattern into a program
 *     of a few instruction kinds, built from fragments whose jumps are
 *     relative (so a fragment can be copied for {n,m} and moved when a
 *     quantifier wraps it):
 *       CHAR c       consume one code point equal to c (under (?i): whose
 *                    simple case folding equals c's)
 *       CLASS k      consume one code point in class k ([...], \p{L}, \s ...)
 *       ANY          consume one code point other than \n
 *       SPLIT x, y   try pc+x first; if that path fails, pc+y
 *       JMP x        continue at pc+x
 *       LOOK neg, x  run the body (pc+1 .. its MATCH) at the current position
 *                    without consuming; continue at pc+x if it matched
 *                    (neg = 0, (?=...)) or did not (neg = 1, (?!...))
 *       MATCH        success: the match ends here
 *     e.g. \s+(?!\S) compiles to
 *       0 CLASS \s   1 SPLIT -1,+1   2 LOOK neg,+3   3 CLASS \S   4 MATCH   5 MATCH
 *
 *   match: a backtracking machine. SPLIT pushes its second choice on a
 *     stack and follows the first; a failing path pops the latest choice
 *     (a branch that cannot start with the next byte, by its first_set
 *     computed at compile time, is skipped without a push).
 *     Trying choices in program order is exactly Oniguruma's leftmost-first
 *     rule: "a|ab" on "ab" matches "a", and a greedy \s+ gives back one
 *     character at a time until (?!\S) holds.
 *
 * Backtracking can be exponential ((a+)+b on "aaaa...c"). The guard: after
 * MEMO_AFTER steps in one search the machine records each (instruction,
 * position) it reaches in a hash set; reaching one again means the first
 * visit already failed (no captures, so the outcome depends on nothing
 * else), and the path is dropped. That bounds a search by program size x
 * text length. Lookahead bodies are separate runs with their own ids, since
 * a lookahead that succeeded stops before exploring every state it marked.
 *
 * Docs: docs/tokenizer.md
 */
#include "regex.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

enum { OP_CHAR, OP_CLASS, OP_ANY, OP_SPLIT, OP_JMP, OP_LOOK, OP_MATCH };

typedef struct {
    uint8_t op;
    uint8_t fold; /* CHAR/CLASS under (?i) */
    uint8_t neg;  /* LOOK: (?!...) */
    int32_t x, y; /* relative jumps */
    uint32_t arg; /* CHAR: the code point (folded under (?i)); CLASS: class index */
} inst;

/* One member of a character class. Every kind can be negated on its own
 * (\S, \P{L}, [^...] nested), then the class as a whole. */
enum { ITEM_RANGE, ITEM_GC, ITEM_SPACE, ITEM_SUB };
typedef struct {
    uint8_t kind, neg;
    uint8_t latin1_word; /* \w or \W inside [...]: see item_match */
    uint32_t lo, hi; /* RANGE: lo..hi; GC: lo = bit mask over FS_GC_*; SUB: lo = class index */
} class_item;

typedef struct {
    class_item *items;
    int n, cap;
    uint8_t neg, fold;
    uint64_t ascii[2]; /* the answer for code points below 128, filled after parsing */
} cclass;

/* What the path starting at an instruction can consume first: a set of
 * ASCII bytes, "some non-ASCII character", or nothing (it can match empty
 * there). A SPLIT whose branch cannot start with the next byte skips that
 * branch: most alternatives of a pre-tokenizer pattern fail on their first
 * character, and this saves pushing and popping them. */
typedef struct {
    uint64_t ascii[2];
    uint8_t other, empty;
} first_set;

struct fs_regex {
    inst *code;
    first_set *first; /* [n_code] */
    int n_code;
    cclass *classes;
    int n_classes;
    int nullable;
};

#define GC(x) (1u << FS_GC_##x)
/* \w as Oniguruma has it: letters, marks, every number (not only Nd), and
 * connector punctuation */
#define WORD_MASK (GC(Lu) | GC(Ll) | GC(Lt) | GC(Lm) | GC(Lo) | GC(Mn) | GC(Mc) | GC(Me) | GC(Nd) | GC(Nl) | GC(No) | GC(Pc))
#define BAD_CP 0x110000u   /* an invalid UTF-8 byte: matches only negated sets */
#define MAX_CODE 200000    /* instructions; {n,m} copies can grow a program fast */
#define MAX_DEPTH 64       /* group nesting (the parser recurses per group) */
#define MAX_LOOK_DEPTH 8   /* nested lookaheads (the matcher recurses per level) */
#define MEMO_AFTER 4096    /* steps before the visited-state set is switched on */

/* ---- code points ------------------------------------------------------- */

static inline uint32_t next_cp(const unsigned char *s, size_t n, size_t i, int *len) {
    if (s[i] < 0x80) {
        *len = 1;
        return s[i];
    }
    uint32_t cp;
    int k = fs_utf8_decode(s + i, n - i, &cp);
    if (k == 0) {
        *len = 1;
        return BAD_CP;
    }
    *len = k;
    return cp;
}

static uint32_t fold(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    return cp < BAD_CP ? fs_unicode_fold(cp) : cp;
}

static int item_match(const fs_regex *re, const class_item *it, uint32_t cp);

static int class_match_plain(const fs_regex *re, const cclass *c, uint32_t cp) {
    int in = 0;
    for (int i = 0; i < c->n && !in; i++) in = item_match(re, &c->items[i], cp);
    return in;
}

static int item_match(const fs_regex *re, const class_item *it, uint32_t cp) {
    int in = 0;
    switch (it->kind) {
    case ITEM_RANGE: in = cp >= it->lo && cp <= it->hi; break;
    case ITEM_GC:
        in = cp < BAD_CP && ((it->lo >> fs_unicode_gc(cp)) & 1);
        /* Oniguruma answers \w inside a bracket class from a separate
         * table for code points below 256, in which the Latin-1 number
         * signs (No: superscripts, fractions) are not word characters,
         * although a bare \w matches them. Reproduced, since the golden
         * test compares with Oniguruma. */
        if (in && it->latin1_word && cp < 256 && fs_unicode_gc(cp) == FS_GC_No) in = 0;
        break;
    case ITEM_SPACE: in = cp < BAD_CP && fs_unicode_is_space(cp); break;
    case ITEM_SUB: {
        const cclass *sub = &re->classes[it->lo];
        in = class_match_plain(re, sub, cp) ^ sub->neg;
        break;
    }
    }
    return in ^ it->neg;
}

/* Under (?i) a class matches a character when it holds any character of
 * the same simple case folding: cp itself, its folding, or any other code
 * point folding to the same (a linear scan; (?i) classes are rare). */
static int class_match_slow(const fs_regex *re, const cclass *c, uint32_t cp) {
    int in = class_match_plain(re, c, cp);
    if (!in && c->fold && cp < BAD_CP) {
        uint32_t f = fold(cp);
        if (f != cp) in = class_match_plain(re, c, f);
        for (size_t i = 0; !in && i < fs_ucd_n_fold; i++)
            if (fs_ucd_fold[i][1] == f && fs_ucd_fold[i][0] != cp) in = class_match_plain(re, c, fs_ucd_fold[i][0]);
    }
    return in ^ c->neg;
}

static inline int class_match(const fs_regex *re, const cclass *c, uint32_t cp) {
    if (cp < 128) return (int)((c->ascii[cp >> 6] >> (cp & 63)) & 1);
    return class_match_slow(re, c, cp);
}

/* ---- parsing ----------------------------------------------------------- */

typedef struct {
    inst *code;
    int n, cap;
    int nullable; /* can match the empty string */
} frag;

typedef struct {
    const unsigned char *p;
    size_t len, pos;
    fs_err *e;
    fs_regex *re;
    int fold;      /* (?i) in effect */
    int depth, look_depth;
} parser;

/* A pattern byte for an error message: control and non-ASCII bytes as '?'. */
static int shown(int c) { return c >= 0x20 && c < 0x7f ? c : '?'; }

static int perr(parser *P, size_t at, const char *what) {
    return fs_errf(P->e, "regex: %s at offset %zu", what, at);
}

static int emit(parser *P, frag *f, inst in) {
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->code = fs_xrealloc(f->code, (size_t)f->cap * sizeof *f->code);
    }
    f->code[f->n++] = in;
    return 0;
}

static int append(parser *P, frag *dst, const frag *src) {
    if ((long)dst->n + src->n > MAX_CODE) return perr(P, P->pos, "the pattern compiles to too many instructions");
    for (int i = 0; i < src->n; i++) emit(P, dst, src->code[i]);
    return 0;
}

static int new_class(parser *P) {
    fs_regex *re = P->re;
    re->classes = fs_xrealloc(re->classes, (size_t)(re->n_classes + 1) * sizeof *re->classes);
    memset(&re->classes[re->n_classes], 0, sizeof *re->classes);
    return re->n_classes++;
}

static void class_add(parser *P, int k, class_item it) {
    cclass *c = &P->re->classes[k];
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4;
        c->items = fs_xrealloc(c->items, (size_t)c->cap * sizeof *c->items);
    }
    c->items[c->n++] = it;
}

static int at_end(const parser *P) { return P->pos >= P->len; }
static int peek(const parser *P) { return at_end(P) ? -1 : P->p[P->pos]; }

/* Masks of the general categories, by the names Oniguruma accepts for them. */
static const struct { const char *name; uint32_t mask; } gc_names[] = {
    {"L", GC(Lu) | GC(Ll) | GC(Lt) | GC(Lm) | GC(Lo)}, {"Letter", GC(Lu) | GC(Ll) | GC(Lt) | GC(Lm) | GC(Lo)},
    {"Lu", GC(Lu)}, {"Ll", GC(Ll)}, {"Lt", GC(Lt)}, {"Lm", GC(Lm)}, {"Lo", GC(Lo)},
    {"M", GC(Mn) | GC(Mc) | GC(Me)}, {"Mark", GC(Mn) | GC(Mc) | GC(Me)},
    {"Mn", GC(Mn)}, {"Mc", GC(Mc)}, {"Me", GC(Me)},
    {"N", GC(Nd) | GC(Nl) | GC(No)}, {"Number", GC(Nd) | GC(Nl) | GC(No)},
    {"Nd", GC(Nd)}, {"Nl", GC(Nl)}, {"No", GC(No)},
    {"P", GC(Pc) | GC(Pd) | GC(Ps) | GC(Pe) | GC(Pi) | GC(Pf) | GC(Po)},
    {"Punctuation", GC(Pc) | GC(Pd) | GC(Ps) | GC(Pe) | GC(Pi) | GC(Pf) | GC(Po)},
    {"Pc", GC(Pc)}, {"Pd", GC(Pd)}, {"Ps", GC(Ps)}, {"Pe", GC(Pe)}, {"Pi", GC(Pi)}, {"Pf", GC(Pf)}, {"Po", GC(Po)},
    {"S", GC(Sm) | GC(Sc) | GC(Sk) | GC(So)}, {"Symbol", GC(Sm) | GC(Sc) | GC(Sk) | GC(So)},
    {"Sm", GC(Sm)}, {"Sc", GC(Sc)}, {"Sk", GC(Sk)}, {"So", GC(So)},
    {"Z", GC(Zs) | GC(Zl) | GC(Zp)}, {"Separator", GC(Zs) | GC(Zl) | GC(Zp)},
    {"Zs", GC(Zs)}, {"Zl", GC(Zl)}, {"Zp", GC(Zp)},
    {"C", GC(Cc) | GC(Cf) | GC(Cs) | GC(Co) | GC(Cn)}, {"Other", GC(Cc) | GC(Cf) | GC(Cs) | GC(Co) | GC(Cn)},
    {"Cc", GC(Cc)}, {"Cf", GC(Cf)}, {"Cs", GC(Cs)}, {"Co", GC(Co)}, {"Cn", GC(Cn)},
};

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

/* Read hex digits: exactly `count` of them, or (count 0) a {..} group. */
static int parse_hex(parser *P, int count, size_t start, uint32_t *cp) {
    uint32_t v = 0;
    int braces = count == 0, got = 0;
    if (braces) {
        if (peek(P) != '{') return perr(P, start, "\\x needs hex digits");
        P->pos++;
    }
    while (!at_end(P) && (braces || got < count) && hexval(peek(P)) >= 0) {
        v = v * 16 + (uint32_t)hexval(peek(P));
        P->pos++;
        if (++got > 8 || v > 0x10FFFF) return perr(P, start, "code point escape out of range");
    }
    if (braces) {
        if (peek(P) != '}' || got == 0) return perr(P, start, "malformed \\x{...}");
        P->pos++;
    } else if (got != count) {
        return perr(P, start, "malformed hex escape");
    }
    *cp = v;
    return 0;
}

/* An escape after the backslash (P->pos is past it). Returns 1 with *cp for
 * a single character, 2 with *it for a set, -1 on error. */
static int parse_escape(parser *P, uint32_t *cp, class_item *it) {
    size_t start = P->pos - 1;
    if (at_end(P)) return perr(P, start, "pattern ends with a backslash");
    int c = P->p[P->pos++];
    memset(it, 0, sizeof *it);
    switch (c) {
    case 'n': *cp = '\n'; return 1;
    case 'r': *cp = '\r'; return 1;
    case 't': *cp = '\t'; return 1;
    case 'f': *cp = '\f'; return 1;
    case 'v': *cp = '\v'; return 1;
    case 'a': *cp = 7; return 1;
    case 'e': *cp = 27; return 1;
    case 'x':
        if (peek(P) == '{') return parse_hex(P, 0, start, cp) < 0 ? -1 : 1;
        return parse_hex(P, 2, start, cp) < 0 ? -1 : 1;
    case 'u': return parse_hex(P, 4, start, cp) < 0 ? -1 : 1;
    case 's': case 'S': it->kind = ITEM_SPACE; it->neg = c == 'S'; return 2;
    case 'd': case 'D': it->kind = ITEM_GC; it->lo = GC(Nd); it->neg = c == 'D'; return 2;
    case 'w': case 'W': it->kind = ITEM_GC; it->lo = WORD_MASK; it->neg = c == 'W'; return 2;
    case 'p': case 'P': {
        it->kind = ITEM_GC;
        it->neg = c == 'P';
        char name[32];
        size_t nl = 0;
        if (peek(P) == '{') {
            P->pos++;
            if (peek(P) == '^') {
                it->neg ^= 1;
                P->pos++;
            }
            while (!at_end(P) && peek(P) != '}' && nl + 1 < sizeof name) name[nl++] = (char)shown(P->p[P->pos++]);
            if (peek(P) != '}') return perr(P, start, "malformed \\p{...}");
            P->pos++;
        } else {
            /* Oniguruma (Ruby syntax) reads \pL as the letters "pL": refuse
             * rather than guess which was meant. */
            return perr(P, start, "\\p without braces (write \\p{L})");
        }
        name[nl] = 0;
        for (size_t i = 0; i < sizeof gc_names / sizeof gc_names[0]; i++)
            if (strcmp(gc_names[i].name, name) == 0) {
                it->lo = gc_names[i].mask;
                return 2;
            }
        return fs_errf(P->e, "regex: unsupported property \\p{%s} at offset %zu (only general categories)", name,
                       start);
    }
    default: break;
    }
    if (c < 0x80 && !((c | 0x20) >= 'a' && (c | 0x20) <= 'z') && !(c >= '0' && c <= '9')) {
        *cp = (uint32_t)c; /* escaped punctuation stands for itself */
        return 1;
    }
    return fs_errf(P->e, "regex: unsupported escape \\%c at offset %zu", shown(c), start);
}

/* A literal code point of the pattern (UTF-8). */
static int parse_literal(parser *P, uint32_t *cp) {
    int k;
    *cp = next_cp(P->p, P->len, P->pos, &k);
    if (*cp == BAD_CP) return perr(P, P->pos, "pattern is not valid UTF-8");
    P->pos += (size_t)k;
    return 0;
}

/* [...] after the '['. Returns the class index, or -1. */
static int parse_class(parser *P) {
    size_t start = P->pos - 1;
    int k = new_class(P);
    P->re->classes[k].fold = (uint8_t)P->fold;
    if (peek(P) == '^') {
        P->re->classes[k].neg = 1;
        P->pos++;
    }
    int first = 1;
    for (;;) {
        if (at_end(P)) return perr(P, start, "unterminated character class");
        int c = peek(P);
        if (c == ']' && !first) {
            P->pos++;
            return k;
        }
        first = 0;
        size_t at = P->pos;
        if (c == '[') {
            if (P->pos + 1 < P->len && P->p[P->pos + 1] == ':') return perr(P, at, "unsupported POSIX bracket [:...:]");
            if (++P->depth > MAX_DEPTH) return perr(P, at, "classes nested too deeply");
            P->pos++;
            int sub = parse_class(P);
            P->depth--;
            if (sub < 0) return -1;
            class_add(P, k, (class_item){ITEM_SUB, 0, 0, (uint32_t)sub, 0});
            continue;
        }
        if (c == '&' && P->pos + 1 < P->len && P->p[P->pos + 1] == '&')
            return perr(P, at, "unsupported class intersection &&");
        uint32_t lo;
        class_item it;
        if (c == '\\') {
            P->pos++;
            int r = parse_escape(P, &lo, &it);
            if (r < 0) return -1;
            if (r == 2) {
                it.latin1_word = it.kind == ITEM_GC && it.lo == WORD_MASK;
                class_add(P, k, it);
                continue;
            }
        } else if (parse_literal(P, &lo) < 0) {
            return -1;
        }
        uint32_t hi = lo;
        if (peek(P) == '-' && P->pos + 1 < P->len && P->p[P->pos + 1] != ']') {
            P->pos++;
            if (peek(P) == '\\') {
                P->pos++;
                int r = parse_escape(P, &hi, &it);
                if (r < 0) return -1;
                if (r == 2) return perr(P, at, "a range ends in a set escape");
            } else if (parse_literal(P, &hi) < 0) {
                return -1;
            }
            if (hi < lo) return perr(P, at, "range out of order");
        }
        class_add(P, k, (class_item){ITEM_RANGE, 0, 0, lo, hi});
    }
}

static int parse_alt(parser *P, frag *out);

static void frag_free(frag *f) {
    free(f->code);
    memset(f, 0, sizeof *f);
}

/* One atom into out (empty for a flag group such as "(?i)"). */
static int parse_atom(parser *P, frag *out) {
    size_t at = P->pos;
    int c = P->p[P->pos++];
    uint32_t cp;
    class_item it;
    switch (c) {
    case '(': {
        if (++P->depth > MAX_DEPTH) return perr(P, at, "groups nested too deeply");
        int saved_fold = P->fold, look = -1;
        if (peek(P) == '?') {
            P->pos++;
            int d = peek(P);
            if (d == ':') {
                P->pos++;
            } else if (d == '=' || d == '!') {
                look = d == '!';
                P->pos++;
            } else if (d == '<' && P->pos + 1 < P->len && (P->p[P->pos + 1] == '=' || P->p[P->pos + 1] == '!')) {
                return perr(P, at, "unsupported lookbehind (?<=...) / (?<!...)");
            } else if (d == '>') {
                return perr(P, at, "unsupported atomic group (?>...)");
            } else if (d == 'i' || d == '-') {
                int on = 1;
                if (d == '-') {
                    on = 0;
                    P->pos++;
                }
                if (peek(P) != 'i') return perr(P, at, "unsupported group flag (only i)");
                P->pos++;
                if (peek(P) == ')') { /* (?i) to the end of the enclosing group */
                    P->pos++;
                    P->depth--;
                    P->fold = on;
                    out->nullable = 1;
                    return 0;
                }
                if (peek(P) != ':') return perr(P, at, "unsupported group flag (only i)");
                P->pos++;
                P->fold = on;
            } else {
                return fs_errf(P->e, "regex: unsupported group syntax (?%c at offset %zu", shown(d), at);
            }
        }
        if (look >= 0 && ++P->look_depth > MAX_LOOK_DEPTH) return perr(P, at, "lookaheads nested too deeply");
        frag body = {0};
        if (parse_alt(P, &body) < 0) {
            frag_free(&body);
            return -1;
        }
        if (peek(P) != ')') {
            frag_free(&body);
            return perr(P, at, "unbalanced parenthesis");
        }
        P->pos++;
        P->fold = saved_fold;
        P->depth--;
        if (look >= 0) {
            P->look_depth--;
            emit(P, out, (inst){OP_LOOK, 0, (uint8_t)look, body.n + 2, 0, 0});
            int rc = append(P, out, &body);
            emit(P, out, (inst){OP_MATCH, 0, 0, 0, 0, 0});
            out->nullable = 1;
            frag_free(&body);
            return rc;
        }
        int rc = append(P, out, &body);
        out->nullable = body.nullable;
        frag_free(&body);
        return rc;
    }
    case '[': {
        int k = parse_class(P);
        if (k < 0) return -1;
        return emit(P, out, (inst){OP_CLASS, 0, 0, 0, 0, (uint32_t)k});
    }
    case '.': return emit(P, out, (inst){OP_ANY, 0, 0, 0, 0, 0});
    case '^': case '$': return perr(P, at, "unsupported anchor");
    case ')': return perr(P, at, "unbalanced parenthesis");
    case '*': case '+': case '?': return perr(P, at, "quantifier with nothing to repeat");
    case '\\': {
        int r = parse_escape(P, &cp, &it);
        if (r < 0) return -1;
        if (r == 2) {
            int k = new_class(P);
            class_add(P, k, it);
            return emit(P, out, (inst){OP_CLASS, 0, 0, 0, 0, (uint32_t)k});
        }
        break;
    }
    default:
        P->pos = at;
        if (parse_literal(P, &cp) < 0) return -1;
    }
    if (P->fold) return emit(P, out, (inst){OP_CHAR, 1, 0, 0, 0, fold(cp)});
    return emit(P, out, (inst){OP_CHAR, 0, 0, 0, 0, cp});
}

/* {n}, {n,}, {n,m}, {,m} at P->pos: 1 with the bounds (max -1: none), 0 if the
 * brace is not a quantifier (then it is a literal, as in Oniguruma). */
static int parse_braces(parser *P, long *min, long *max) {
    size_t i = P->pos + 1;
    long a = 0, b = -1;
    int digits = 0;
    while (i < P->len && P->p[i] >= '0' && P->p[i] <= '9' && a <= 100000) a = a * 10 + (P->p[i++] - '0'), digits++;
    if (!digits && !(i + 1 < P->len && P->p[i] == ',' && P->p[i + 1] >= '0' && P->p[i + 1] <= '9'))
        return 0; /* {,n} is {0,n} (Oniguruma's Ruby syntax); "{" or "{,}" is literal */
    if (i < P->len && P->p[i] == ',') {
        i++;
        if (i < P->len && P->p[i] >= '0' && P->p[i] <= '9') {
            b = 0;
            while (i < P->len && P->p[i] >= '0' && P->p[i] <= '9' && b <= 100000) b = b * 10 + (P->p[i++] - '0');
        }
    } else {
        b = a;
    }
    if (i >= P->len || P->p[i] != '}') return 0;
    P->pos = i + 1;
    *min = a;
    *max = b;
    return 1;
}

/* Wrap f in a quantifier. greedy: the loop/optional branch is tried first. */
static int quantify(parser *P, frag *f, long min, long max, int greedy, size_t at) {
    if (max >= 0 && max < min) return perr(P, at, "repetition {n,m} with m < n");
    if (min > 1000 || max > 1000) return perr(P, at, "repetition count above 1000");
    if (max < 0 && f->nullable)
        return perr(P, at, "unsupported: an unbounded repetition of something that can match the empty string");
    frag atom = *f, out = {0};
    int len = atom.n, rc = 0;
    for (long i = 0; i < min && rc == 0; i++) rc = append(P, &out, &atom);
    if (rc == 0 && max < 0) { /* min copies, then a star */
        emit(P, &out, greedy ? (inst){OP_SPLIT, 0, 0, 1, len + 2, 0} : (inst){OP_SPLIT, 0, 0, len + 2, 1, 0});
        rc = append(P, &out, &atom);
        emit(P, &out, (inst){OP_JMP, 0, 0, -(len + 1), 0, 0});
    } else if (rc == 0 && max > min) {
        /* (max - min) nested optionals: x(x(x)?)? - each SPLIT skips to the
         * common end, so this is "up to k more", tried longest first. */
        long k = max - min;
        if ((long)out.n + k * (len + 1) > MAX_CODE) rc = perr(P, at, "the pattern compiles to too many instructions");
        for (long i = 0; i < k && rc == 0; i++) {
            int skip = (int)((k - i) * (len + 1)); /* from this SPLIT to the end */
            emit(P, &out, greedy ? (inst){OP_SPLIT, 0, 0, 1, skip, 0} : (inst){OP_SPLIT, 0, 0, skip, 1, 0});
            rc = append(P, &out, &atom);
        }
    }
    out.nullable = min == 0 || atom.nullable;
    frag_free(f);
    *f = out;
    return rc;
}

static int parse_concat(parser *P, frag *out) {
    out->nullable = 1;
    uint32_t prev_fold = 0; /* the previous atom, when it was a lone (?i) letter */
    while (!at_end(P) && peek(P) != '|' && peek(P) != ')') {
        frag a = {0};
        size_t at = P->pos;
        if (peek(P) == '{') { /* a brace at an atom's place is a literal */
            P->pos++;
            emit(P, &a, (inst){OP_CHAR, 0, 0, 0, 0, '{'});
        } else if (parse_atom(P, &a) < 0) {
            frag_free(&a);
            return -1;
        }
        int quantified = 0;
        for (;;) {
            long min, max;
            size_t qat = P->pos;
            int c = peek(P);
            if (c == '*') min = 0, max = -1, P->pos++;
            else if (c == '+') min = 1, max = -1, P->pos++;
            else if (c == '?') min = 0, max = 1, P->pos++;
            else if (c == '{' && parse_braces(P, &min, &max)) {}
            else break;
            if (quantified) {
                frag_free(&a);
                return perr(P, qat, "unsupported nested quantifier");
            }
            if (a.n == 0) {
                frag_free(&a);
                return perr(P, at, "quantifier after a flag group");
            }
            int greedy = 1;
            if (peek(P) == '?') {
                greedy = 0;
                P->pos++;
            } else if (peek(P) == '+') {
                frag_free(&a);
                return perr(P, P->pos, "unsupported possessive quantifier");
            }
            if (quantify(P, &a, min, max, greedy, qat) < 0) {
                frag_free(&a);
                return -1;
            }
            quantified = 1;
        }
        /* Under (?i) Oniguruma lets one character match several: "ss"
         * matches ß (full case folding). We fold one to one, so refuse the
         * pairs that some character folds to (ß ẞ: ss, ﬀ ﬁ ﬂ ﬃ ﬄ: ff fi fl,
         * ﬅ ﬆ: st) instead of matching less than Oniguruma. */
        uint32_t c = (!quantified && a.n == 1 && a.code[0].op == OP_CHAR && a.code[0].fold) ? a.code[0].arg : 0;
        if (prev_fold && ((prev_fold == 's' && (c == 's' || c == 't')) ||
                          (prev_fold == 'f' && (c == 'f' || c == 'i' || c == 'l')))) {
            frag_free(&a);
            return perr(P, at, "unsupported: (?i) letters that a single character folds to (ss, st, ff, fi, fl)");
        }
        prev_fold = c;
        int nullable = a.nullable || a.n == 0;
        int rc = append(P, out, &a);
        frag_free(&a);
        if (rc < 0) return -1;
        out->nullable = out->nullable && nullable;
    }
    return 0;
}

/* a|b|c: SPLIT(+1, over a) a JMP(end) SPLIT(+1, over b) b JMP(end) c */
static int parse_alt(parser *P, frag *out) {
    if (parse_concat(P, out) < 0) return -1;
    while (peek(P) == '|') {
        P->pos++;
        frag b = {0}, both = {0};
        if (parse_concat(P, &b) < 0) {
            frag_free(&b);
            return -1;
        }
        emit(P, &both, (inst){OP_SPLIT, 0, 0, 1, out->n + 2, 0});
        int rc = append(P, &both, out);
        emit(P, &both, (inst){OP_JMP, 0, 0, b.n + 1, 0, 0});
        if (rc == 0) rc = append(P, &both, &b);
        both.nullable = out->nullable || b.nullable;
        frag_free(&b);
        frag_free(out);
        *out = both;
        if (rc < 0) return -1;
    }
    return 0;
}

/* first[pc] for every instruction, by iterating to a fixed point: the sets
 * only grow, and the non-consuming edges (SPLIT, JMP, LOOK) form no cycle
 * without a consuming instruction in it (an unbounded repetition of
 * something that can be empty is refused), so a few passes settle it. */
static void compute_first(fs_regex *re) {
    re->first = fs_xcalloc((size_t)re->n_code, sizeof *re->first);
    for (int changed = 1; changed;) {
        changed = 0;
        for (int pc = re->n_code - 1; pc >= 0; pc--) {
            const inst *in = &re->code[pc];
            first_set f = {{0, 0}, 0, 0};
            const first_set *a = NULL, *b = NULL;
            switch (in->op) {
            case OP_CHAR:
                if (in->arg < 128) f.ascii[in->arg >> 6] |= 1ULL << (in->arg & 63);
                else f.other = 1;
                if (in->fold) { /* the other case, and non-ASCII foldings (K, ſ) */
                    uint32_t c = in->arg;
                    if (c >= 'a' && c <= 'z') f.ascii[(c - 32) >> 6] |= 1ULL << ((c - 32) & 63);
                    f.other = 1;
                }
                break;
            case OP_CLASS:
                f.ascii[0] = re->classes[in->arg].ascii[0];
                f.ascii[1] = re->classes[in->arg].ascii[1];
                f.other = 1;
                break;
            case OP_ANY:
                f.ascii[0] = ~(1ULL << '\n');
                f.ascii[1] = ~0ULL;
                f.other = 1;
                break;
            case OP_MATCH: f.empty = 1; break;
            case OP_JMP: a = &re->first[pc + in->x]; break;
            case OP_LOOK: a = &re->first[pc + in->x]; break; /* the lookahead consumes nothing */
            case OP_SPLIT:
                a = &re->first[pc + in->x];
                b = &re->first[pc + in->y];
                break;
            }
            for (const first_set *g = a; g; g = g == a ? b : NULL) {
                f.ascii[0] |= g->ascii[0];
                f.ascii[1] |= g->ascii[1];
                f.other |= g->other;
                f.empty |= g->empty;
            }
            first_set *old = &re->first[pc];
            if (memcmp(old, &f, sizeof f) != 0) {
                *old = f;
                changed = 1;
            }
        }
    }
}

/* Can the path whose first set is f start at a position whose next byte
 * is b (-1: the end of the text)? */
static inline int viable(const first_set *f, int b) {
    if (f->empty) return 1;
    if (b < 0) return 0;
    return b < 128 ? (int)((f->ascii[b >> 6] >> (b & 63)) & 1) : f->other;
}

void fs_regex_free(fs_regex *re) {
    if (!re) return;
    free(re->first);
    for (int i = 0; i < re->n_classes; i++) free(re->classes[i].items);
    free(re->classes);
    free(re->code);
    free(re);
}

int fs_regex_compile(fs_regex **out, const char *pattern, size_t len, fs_err *e) {
    *out = NULL;
    fs_regex *re = fs_xcalloc(1, sizeof *re);
    parser P = {(const unsigned char *)pattern, len, 0, e, re, 0, 0, 0};
    frag f = {0};
    int rc = parse_alt(&P, &f);
    if (rc == 0 && !at_end(&P)) rc = perr(&P, P.pos, "unbalanced parenthesis");
    if (rc == 0) rc = emit(&P, &f, (inst){OP_MATCH, 0, 0, 0, 0, 0});
    if (rc < 0) {
        frag_free(&f);
        fs_regex_free(re);
        return -1;
    }
    for (int k = 0; k < re->n_classes; k++)
        for (uint32_t cp = 0; cp < 128; cp++)
            if (class_match_slow(re, &re->classes[k], cp)) re->classes[k].ascii[cp >> 6] |= 1ULL << (cp & 63);
    re->code = f.code;
    re->n_code = f.n;
    re->nullable = f.nullable;
    compute_first(re);
    *out = re;
    return 0;
}

int fs_regex_can_be_empty(const fs_regex *re) { return re->nullable; }

/* ---- matching ---------------------------------------------------------- */

typedef struct {
    int32_t pc;
    uint32_t run;
    size_t pos;
} state;

typedef struct {
    size_t pos;
    int32_t pc;
    uint32_t run, gen;
} memo_slot;

typedef struct {
    const fs_regex *re;
    fs_regex_scratch *s;
    const unsigned char *text;
    size_t n, sp;
    uint64_t steps;
    uint32_t next_run;
} matcher;

static void push(matcher *m, int32_t pc, uint32_t run, size_t pos) {
    fs_regex_scratch *s = m->s;
    if (m->sp == s->stack_cap) {
        s->stack_cap = s->stack_cap ? s->stack_cap * 2 : 64;
        s->stack = fs_xrealloc(s->stack, s->stack_cap * sizeof(state));
    }
    ((state *)s->stack)[m->sp++] = (state){pc, run, pos};
}

static size_t memo_hash(size_t pos, int32_t pc, uint32_t run) {
    uint64_t k = (uint64_t)pos * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)(uint32_t)pc << 32 | run) * 0xC2B2AE3D27D4EB4FULL;
    return (size_t)(k ^ (k >> 31));
}

/* 1 if (run, pc, pos) was seen before in this search; records it if not. */
static int memo_seen(matcher *m, int32_t pc, uint32_t run, size_t pos) {
    fs_regex_scratch *s = m->s;
    if ((s->memo_used + 1) * 2 > s->memo_cap) {
        size_t old_cap = s->memo_cap, cap = old_cap ? old_cap * 2 : 4096;
        memo_slot *old = s->memo, *nw = fs_xcalloc(cap, sizeof *nw);
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].gen != s->memo_gen) continue;
            size_t h = memo_hash(old[i].pos, old[i].pc, old[i].run) & (cap - 1);
            while (nw[h].gen == s->memo_gen) h = (h + 1) & (cap - 1);
            nw[h] = old[i];
        }
        free(old);
        s->memo = nw;
        s->memo_cap = cap;
    }
    memo_slot *t = s->memo;
    size_t h = memo_hash(pos, pc, run) & (s->memo_cap - 1);
    for (; t[h].gen == s->memo_gen; h = (h + 1) & (s->memo_cap - 1))
        if (t[h].pos == pos && t[h].pc == pc && t[h].run == run) return 1;
    t[h] = (memo_slot){pos, pc, run, s->memo_gen};
    s->memo_used++;
    return 0;
}

/* Run the program from pc at pos; 1 with *end on the first path (in
 * priority order) that reaches MATCH. */
static int run(matcher *m, int32_t pc0, uint32_t run_id, size_t pos0, size_t *end) {
    const fs_regex *re = m->re;
    const unsigned char *s = m->text;
    size_t base = m->sp;
    push(m, pc0, run_id, pos0);
    while (m->sp > base) {
        state st = ((state *)m->s->stack)[--m->sp];
        int32_t pc = st.pc;
        size_t pos = st.pos;
        for (;;) {
            if (++m->steps > MEMO_AFTER && memo_seen(m, pc, run_id, pos)) break;
            const inst *in = &re->code[pc];
            int len;
            uint32_t cp;
            if (in->op == OP_CHAR) {
                if (pos >= m->n) break;
                cp = next_cp(s, m->n, pos, &len);
                if (in->fold ? fold(cp) != in->arg : cp != in->arg) break;
                pos += (size_t)len;
                pc++;
            } else if (in->op == OP_CLASS) {
                if (pos >= m->n) break;
                cp = next_cp(s, m->n, pos, &len);
                if (!class_match(re, &re->classes[in->arg], cp)) break;
                pos += (size_t)len;
                pc++;
            } else if (in->op == OP_ANY) {
                if (pos >= m->n) break;
                cp = next_cp(s, m->n, pos, &len);
                if (cp == '\n') break;
                pos += (size_t)len;
                pc++;
            } else if (in->op == OP_SPLIT) {
                int b = pos < m->n ? s[pos] : -1;
                int x = viable(&re->first[pc + in->x], b), y = viable(&re->first[pc + in->y], b);
                if (x && y) push(m, pc + in->y, run_id, pos);
                if (x) pc += in->x;
                else if (y) pc += in->y;
                else break;
            } else if (in->op == OP_JMP) {
                pc += in->x;
            } else if (in->op == OP_LOOK) {
                size_t ignored;
                int hit = run(m, pc + 1, ++m->next_run, pos, &ignored);
                if (hit == in->neg) break;
                pc += in->x;
            } else { /* OP_MATCH */
                m->sp = base;
                *end = pos;
                return 1;
            }
        }
    }
    return 0;
}

int fs_regex_find(const fs_regex *re, fs_regex_scratch *s, const char *text, size_t n, size_t from, size_t *start,
                  size_t *end) {
    /* A new generation empties the visited-state set in O(1). */
    if (++s->memo_gen == 0) {
        if (s->memo) memset(s->memo, 0, s->memo_cap * sizeof(memo_slot));
        s->memo_gen = 1;
    }
    s->memo_used = 0;
    matcher m = {re, s, (const unsigned char *)text, n, 0, 0, 0};
    for (size_t st = from; st <= n;) {
        if (run(&m, 0, 0, st, end)) {
            *start = st;
            return 1;
        }
        if (st == n) break;
        int len;
        next_cp(m.text, n, st, &len);
        st += (size_t)len;
    }
    return 0;
}

void fs_regex_scratch_free(fs_regex_scratch *s) {
    free(s->stack);
    free(s->memo);
    memset(s, 0, sizeof *s);
}
