/* jinja_impl.h - what the three parts of the Jinja interpreter share:
 * values (jinja_value.c), the tokens (jinja_lex.c), the syntax tree
 * (jinja_parse.c builds it, jinja_eval.c walks it), the arena they live in and the output buffer.
 * Not a public header: use jinja.h.
 *
 * Values are small structs passed by value; strings, lists and dicts point
 * into an arena that lives as long as the render (or the compiled
 * template, for literals), so nothing is freed one by one. Lists and dicts
 * are immutable (the sandbox transformers uses forbids mutation), except
 * a namespace(), whose attributes `set ns.x = ...` changes.
 *
 * Docs: docs/chat.md
 */
#ifndef FS_JINJA_IMPL_H
#define FS_JINJA_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "jinja.h"

/* ---- arena ---- */

typedef struct jarena {
    struct jchunk *head;
    size_t used_total, limit; /* bytes handed out; 0 limit: none */
    int over;                 /* the limit was hit: allocation returned NULL */
} jarena;

void *ja_alloc(jarena *a, size_t n); /* zeroed, 16-aligned; NULL past the limit */
char *ja_strdup(jarena *a, const char *s, size_t n);
void ja_free(jarena *a);

/* ---- output buffer ---- */

typedef struct jbuf {
    char *p;
    size_t n, cap, max; /* max: refuse to grow past it (0: no bound) */
    int over;
} jbuf;

void jb_add(jbuf *b, const char *s, size_t n);
void jb_puts(jbuf *b, const char *s);
void jb_free(jbuf *b);

/* ---- values ---- */

typedef enum {
    JV_UNDEF, /* a missing variable, attribute or item: prints "", is false */
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST, /* also tuples (tuple = JV_TUPLE) and what jinja2 gives as lazy
              * generators (tuple = JV_GENERATOR: select, map, unique...) */
    JV_DICT,
    JV_NS,    /* namespace(): a dict whose entries can be set */
    JV_MACRO, /* a {% macro %}, callable */
    JV_FUNC,  /* a global function: range, namespace, dict, raise_exception, strftime_now */
} jv_type;

typedef struct jv jv;
typedef struct jpair jpair;
typedef struct jns jns;
struct jnode;

enum { JV_TUPLE = 1, JV_GENERATOR = 2 };

/* A generator behaves as in jinja2 where a template can tell: it is always
 * true (even when empty), has no len() and no index, is not JSON, and
 * prints as "<generator object>"; |list makes it a list. */
struct jv {
    uint8_t t;
    uint8_t tuple;
    size_t n; /* string bytes; list items; dict pairs */
    union {
        int64_t i; /* bool too */
        double f;
        const char *s; /* string bytes (not NUL-terminated); UNDEF: the missing name or NULL */
        jv *items;
        jpair *pairs;
        jns *ns;
        const struct jnode *macro;
        int func;
    };
};

struct jpair {
    jv k, v;
};

struct jns {
    jpair *pairs;
    size_t n, cap;
};

static inline jv jv_undef(const char *name) { jv v = {JV_UNDEF, 0, 0, {.s = name}}; return v; }
static inline jv jv_none(void) { jv v = {JV_NONE, 0, 0, {.i = 0}}; return v; }
static inline jv jv_bool(int b) { jv v = {JV_BOOL, 0, 0, {.i = b != 0}}; return v; }
static inline jv jv_int(int64_t i) { jv v = {JV_INT, 0, 0, {.i = i}}; return v; }
static inline jv jv_float(double f) { jv v = {JV_FLOAT, 0, 0, {.f = f}}; return v; }
static inline jv jv_str(const char *s, size_t n) { jv v = {JV_STR, 0, n, {.s = s}}; return v; }

const char *jv_type_name(const jv *v); /* Python's: "str", "int", "NoneType", "list", ... */
int jv_truthy(const jv *v);
int jv_eq(const jv *a, const jv *b);
/* dict / namespace member by string key; NULL if absent */
const jv *jv_get(const jv *d, const char *key, size_t n);
/* Python's str(v) appended to b (UNDEF: nothing); repr(v) */
void jv_str_out(jbuf *b, const jv *v);
void jv_repr_out(jbuf *b, const jv *v);
/* json.dumps(v, ensure_ascii, indent (<0: none), separators (NULL: default),
 * sort_keys): 0, or -1 with why (an undefined or a callable inside). */
int jv_json_out(jbuf *b, const jv *v, int ensure_ascii, int indent, const char *item_sep, const char *key_sep,
                int sort_keys, const char **why);
/* Python's repr(float) */
void jv_float_out(jbuf *b, double x);
/* a JSON value as a jv (arena-allocated; numbers with an integer value
 * below 2^53 become ints). NULL when out of memory. */
int jv_from_json(jarena *a, const fs_json *j, jv *out);

/* Python str.isspace() of one code point */
int jv_py_space(uint32_t cp);
/* number of code points of a UTF-8 string */
size_t jv_utf8_len(const char *s, size_t n);
/* byte offset of code point k (k <= length) */
size_t jv_utf8_offset(const char *s, size_t n, size_t k);

/* ---- syntax tree ---- */

typedef enum {
    /* statements */
    N_BLOCK,    /* kids: statements */
    N_TEXT,     /* s: literal text */
    N_OUTPUT,   /* a: expression */
    N_IF,       /* a: condition, b: then (N_BLOCK), c: else (N_BLOCK/N_IF) or NULL */
    N_FOR,      /* names: targets, a: iterable, b: filter or NULL, c: body, d: else or NULL */
    N_SET,      /* names[0] (and attr s for ns.attr): target(s); a: value */
    N_SETBLOCK, /* names[0]: target; c: body */
    N_MACRO,    /* s: name; names: params; kids: default values (NULL: none); c: body */
    N_BREAK,
    N_CONTINUE,
    /* expressions */
    E_CONST,  /* value */
    E_NAME,   /* s */
    E_ATTR,   /* a.s */
    E_ITEM,   /* a[b] */
    E_SLICE,  /* a[b:c:d] (NULL parts: omitted) */
    E_CALL,   /* a(kids..., names=kwvals...) */
    E_FILTER, /* a | s(kids..., names=kwvals...) */
    E_TEST,   /* a is [not] s(kids...); op = 1: negated */
    E_NOT,    /* not a */
    E_NEG,    /* -a */
    E_POS,    /* +a */
    E_BINOP,  /* a op b: op is one of + - * / // % ** ~ */
    E_CMP,    /* a op b: op is one of == != < <= > >= in notin */
    E_AND,
    E_OR,
    E_COND,   /* b if a else c (c NULL: undefined) */
    E_LIST,   /* kids (tuple = 1: a tuple) */
    E_DICT,   /* kids: key, value, key, value... */
} jnode_kind;

enum { OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT,
       OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN };

typedef struct jnode jnode;
struct jnode {
    uint8_t kind, op, tuple;
    int line, col;
    const char *s; /* name, attribute, filter or test name, text */
    size_t sn;
    jv value;
    jnode *a, *b, *c, *d;
    jnode **kids;
    size_t nkids;
    const char **names; /* for targets, macro params, keyword argument names */
    size_t *name_lens;
    jnode **kwvals;
    size_t nnames;
};

struct fs_jinja {
    jarena arena; /* the nodes and literal strings */
    jnode *root;
};

/* ---- tokens: jinja_lex.c makes them, jinja_parse.c reads them ---- */

enum { T_EOF, T_TEXT, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END, T_NAME, T_STRING, T_INT, T_FLOAT, T_OP };

typedef struct {
    int type;
    int line, col;
    const char *s; /* name / op / text / decoded string */
    size_t n;
    jv value; /* T_INT, T_FLOAT */
} jtok;

typedef struct {
    fs_jinja *t;
    fs_err *e;
    const char *src; /* normalised source */
    size_t len;
    jtok *toks;
    size_t ntoks, cap, pos;
    int depth;
} jparser;

/* "template line L, column C: <message>" into p->e; -1 */
int jinja_perr(jparser *p, int line, int col, const char *fmt, ...) FS_PRINTF(4, 5);
/* how a token reads in a message: printable, bounded */
const char *jinja_tok_desc(const jtok *k, char *buf, size_t cap);
/* src[0..len) -> p->src (normalised) and p->toks, ending with T_EOF */
int jinja_lex(jparser *p, const char *src, size_t len);
/* the tree of a whole template into t->root */
int jinja_parse(fs_jinja *t, const char *src, size_t len, fs_err *e);

/* ---- rendering (jinja_eval.c), and the library it calls (jinja_lib.c) ---- */

typedef struct jframe jframe;

typedef struct jctx {
    jarena arena;        /* values made while rendering */
    jbuf *out;           /* where text goes now (a macro call swaps it) */
    fs_err *e;
    jframe *root;        /* the template's own variables: what macros see */
    jframe *frame;       /* the innermost scope */
    int depth;           /* macro calls and nested evaluation */
    uint64_t steps;      /* loop iterations and macro calls so far */
    time_t now;          /* 0: the clock */
} jctx;

/* A call's arguments: positional, then keyword. */
typedef struct jargs {
    const jv *pos;
    size_t npos;
    const char *const *kn;
    const size_t *kl;
    const jv *kv;
    size_t nkw;
} jargs;

/* Fill e with "template line L, column C: <message>" for node at; -1. */
int jerr(jctx *c, const jnode *at, const char *fmt, ...) FS_PRINTF(3, 4);
/* -1 with the "undefined" message for v (an UNDEF value). */
int jerr_undef(jctx *c, const jnode *at, const jv *v);

/* name[0..n) applied to in: filters (x|name), tests (x is name), methods
 * (x.name(...)) and global functions (name(...)). Each returns 0 with
 * *out, or -1 with the error in c->e. *found = 0 (and -1) when the name is
 * not one we implement. */
int jl_filter(jctx *c, const jnode *at, const char *name, size_t n, const jv *in, const jargs *a, jv *out);
int jl_test(jctx *c, const jnode *at, const char *name, size_t n, const jv *in, const jargs *a, int *result);
int jl_method(jctx *c, const jnode *at, const jv *obj, const char *name, size_t n, const jargs *a, jv *out,
              int *found);
int jl_global(jctx *c, const jnode *at, int func, const jargs *a, jv *out);
/* is there a filter / test of that name (the parser refuses others) */
int jl_filter_known(const char *name, size_t n);
int jl_test_known(const char *name, size_t n);
/* the global functions, by name: -1 if none */
int jl_global_id(const char *name, size_t n);
/* helpers the evaluator, jinja_lib.c and jinja_str.c share */
static inline int jl_eqn(const char *s, size_t n, const char *lit) { return strlen(lit) == n && !memcmp(s, lit, n); }
/* argument i, or the keyword argument name (NULL: not given) */
static inline const jv *jl_arg(const jargs *a, size_t i, const char *name) {
    if (i < a->npos) return &a->pos[i];
    for (size_t k = 0; k < a->nkw; k++)
        if (jl_eqn(a->kn[k], a->kl[k], name)) return &a->kv[k];
    return NULL;
}
int jl_oom(jctx *c, const jnode *at);
int jl_mkstr(jctx *c, const jnode *at, const char *s, size_t n, jv *out); /* a copy in the arena */
int jl_mklist(jctx *c, const jnode *at, size_t n, jv *out);                /* n items, to be filled */
int jl_need_str(jctx *c, const jnode *at, const jv *v, const char *what);
int jl_opt_int(jctx *c, const jnode *at, const jv *v, int64_t dflt, int64_t *out, const char *what);
/* jinja_str.c: s.strip(chars) (chars NULL: whitespace); case mapping
 * (mode 0 lower, 1 upper, 2 str.title, 3 capitalize, 4 jinja2's |title); s.replace */
jv jl_strip(const jv *s, const jv *chars, int left, int right);
int jl_case(jctx *c, const jnode *at, const jv *s, int mode, jv *out);
int jl_replace(jctx *c, const jnode *at, const jv *s, const jv *old, const jv *new, int64_t count, jv *out);
uint32_t jl_upper_cp(uint32_t c);
uint32_t jl_lower_cp(uint32_t c);
int jl_cased(uint32_t c);
int jl_iterate(jctx *c, const jnode *at, const jv *v, jv **items, size_t *n); /* list of what `for` sees */
int jl_compare(jctx *c, const jnode *at, const jv *a, const jv *b, int *cmp); /* <, ==, > as -1/0/1 */
int jl_str(jctx *c, const jv *v, jv *out); /* str(v) as a string value */

#endif
