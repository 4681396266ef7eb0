/* tokenizer.c - byte-level BPE built from the pipeline a tokenizer.json
 * describes (see tokenizer.h; the stages are read in the "loading" part and
 * anything not implemented is refused there, by name).
 *
 * Exactness against HF `tokenizers` rests on reproducing each stage as HF
 * runs it, in HF's order:
 *   1. added tokens with normalized=false are found in the *raw* text first,
 *      leftmost match, longest at that position, with their single_word,
 *      lstrip and rstrip flags;
 *   2. every span between them goes through the normalizer (NFC) on its
 *      own; then the normalized=true added tokens are found in that;
 *   3. the pre-tokenizer's steps split each span into pieces: Split with
 *      its regex (compiled by src/regex.c, leftmost-first like HF's
 *      Oniguruma) and behaviour, ByteLevel (prefix space, GPT-2's regex),
 *      Digits. Qwen's and Llama 3's patterns, e.g. Qwen's
 *        (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}
 *        | ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
 *      run on fs_pretok_scan() below instead: the same regex written out by
 *      hand, alternative by alternative (faster; checked against the engine);
 *   4. each piece's bytes become single-byte tokens (the ByteLevel step:
 *      GPT-2 maps each byte to a printable character so that vocab strings
 *      are text; we keep raw bytes and map ids instead), then BPE merges
 *      adjacent pairs, always the pair of lowest merge rank first (ties:
 *      leftmost), as HF's Word::merge_all does with its binary heap; with
 *      ignore_merges (Llama 3) a piece that is a vocab entry is taken whole;
 *   5. on request, the post-processor's special tokens around the ids.
 *
 * Tables are built once at load, sized from the file: a token-bytes -> id
 * hash (open addressing) and a (left id, right id) -> (rank, merged id) hash.
 * Encoding allocates only its output and scratch that grows with the input.
 *
 * Docs: docs/tokenizer.md
 */
#include "tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "regex.h"
#include "unicode.h"

typedef struct {
    uint64_t key; /* left id << 32 | right id; MERGE_EMPTY when unused */
    uint32_t rank;
    int32_t id;   /* the merged token */
} merge_slot;

#define MERGE_EMPTY UINT64_MAX

typedef struct {
    int id;
    const char *text; /* the content to look for (normalized=true: after the normalizer) */
    size_t len;
    uint8_t lstrip, rstrip, single_word, normalized;
} added_token;

/* One pre-tokenizer step, as tokenizer.json's pre_tokenizer lists them.
 * Split, ByteLevel with use_regex (GPT-2's pattern) and Digits (the
 * pattern \p{N}) all become "split each piece with this regex, keep the
 * parts as `behavior` says"; ByteLevel's add_prefix_space first puts a
 * space before each piece that does not start with one. The byte-to-
 * alphabet mapping of ByteLevel is implicit (we keep raw bytes). */
enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
typedef struct {
    fs_regex *re;         /* NULL: no split */
    int scanner;          /* re is Qwen's (1) or Llama 3's (3) exact pattern: fs_pretok_scan with
                           * that many digits does it, faster; 0: the regex engine */
    int behavior, invert;
    int add_prefix_space;
} pretok_step;

struct fs_tokenizer {
    int n_vocab;          /* max id + 1 */
    char *pool;           /* every token's raw bytes, back to back */
    size_t *tok_off;      /* [n_vocab] offset in pool */
    uint32_t *tok_len;    /* [n_vocab] byte length; UINT32_MAX = no token with this id */
    unsigned char *special;
    unsigned char *in_vocab; /* [n_vocab] 1 if the id is in model.vocab (ignore_merges looks only there) */
    size_t max_token_len;

    int32_t *str_slots;   /* raw bytes -> id (vocab and added); -1 empty */
    size_t str_mask;
    merge_slot *merges;
    size_t merge_mask;
    int ignore_merges;    /* model.ignore_merges: a pre-token that is a vocab entry is taken whole */

    int byte_id[256];     /* the single-byte token for each byte */

    added_token *added;   /* in file order */
    int n_added;
    unsigned char added_first[2][256]; /* [normalized][byte]: 1 if some added token starts with it */

    int nfc;              /* the normalizer is NFC (alone or in a Sequence) */
    pretok_step *steps;
    int n_steps;
    int *prefix_ids, n_prefix; /* the post-processor's special tokens before and after */
    int *suffix_ids, n_suffix; /* the text, added when add_special_tokens is on */
};

/* ---- hashing ---------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

static int str_lookup(const fs_tokenizer *t, const char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & t->str_mask;; i = (i + 1) & t->str_mask) {
        int id = t->str_slots[i];
        if (id < 0) return -1;
        if (t->tok_len[id] == n && memcmp(t->pool + t->tok_off[id], s, n) == 0) return id;
    }
}

/* Insert id (its bytes already in the pool). Returns the id already holding
 * these bytes, or -1 if it was inserted. */
static int str_insert(fs_tokenizer *t, int id) {
    const char *s = t->pool + t->tok_off[id];
    size_t n = t->tok_len[id];
    size_t i = hash_bytes(s, n) & t->str_mask;
    for (;; i = (i + 1) & t->str_mask) {
        int other = t->str_slots[i];
        if (other < 0) break;
        if (t->tok_len[other] == n && memcmp(t->pool + t->tok_off[other], s, n) == 0) return other;
    }
    t->str_slots[i] = id;
    return -1;
}

static const merge_slot *merge_lookup(const fs_tokenizer *t, int a, int b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (size_t i = hash_u64(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const merge_slot *m = &t->merges[i];
        if (m->key == key) return m;
        if (m->key == MERGE_EMPTY) return NULL;
    }
}

/* ---- the byte-level alphabet -------------------------------------------
 * GPT-2's bytes_to_unicode: printable Latin-1 bytes ('!'..'~', 0xA1..0xAC,
 * 0xAE..0xFF) stand for themselves; the other 68 bytes are given the code
 * points 256, 257, ... in byte order. Vocab strings are written in this
 * alphabet, so "Ġhello" is the bytes " hello". */
static void build_byte_alphabet(int byte_for_cp[324]) { /* -1 where cp is not in the alphabet */
    int next = 256;
    for (int cp = 0; cp < 324; cp++) byte_for_cp[cp] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        byte_for_cp[printable ? b : next++] = b;
    }
}

/* Convert a vocab string from the alphabet to raw bytes in out (at most
 * len bytes: each character is at least one byte). Returns the byte count,
 * or -1 if a character is outside the alphabet. */
static long alphabet_to_bytes(const int *byte_for_cp, const char *s, size_t len, char *out) {
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        int k = fs_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (k == 0 || cp >= 324 || byte_for_cp[cp] < 0) return -1;
        out[o++] = (char)byte_for_cp[cp];
        i += (size_t)k;
    }
    return (long)o;
}

/* ---- loading ---------------------------------------------------------- */

/* ---- the pipeline's stages, as tokenizer.json describes them ----------
 * Every stage a file names is either built here or refused by name: a file
 * whose pipeline we cannot reproduce must not load and tokenize differently
 * from HF without a word. */

/* Qwen2/2.5/3's Split pattern. A Split with exactly this pattern is run by
 * the hand-written scanner fs_pretok_next (the same pre-tokens, checked
 * against the regex engine by tests/test_regex.c and the fuzzer; it skips
 * the interpreter's overhead on the default model). */
static const char QWEN_PATTERN[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
                                   " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* GPT-2's pattern: what ByteLevel splits with when use_regex is true. */
/* Llama 3's: Qwen's with \p{N}{1,3}; the same scanner, three digits. */
static const char LLAMA3_PATTERN[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
                                     " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char GPT2_PATTERN[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* obj.key as a boolean: dflt when absent or null, an error when another type. */
static int get_flag(const fs_json *obj, const char *key, int dflt, int *out, const char *where, fs_err *e) {
    const fs_json *v = fs_json_get(obj, key);
    if (!v || fs_json_is(v, FS_JSON_NULL)) {
        *out = dflt;
        return 0;
    }
    if (!fs_json_is(v, FS_JSON_BOOL)) return fs_errf(e, "%s.%s is not true or false", where, key);
    *out = v->boolean;
    return 0;
}

static const char *type_of(const fs_json *v) { return fs_json_string(fs_json_get(v, "type")); }

/* A name from the file, fit for a one-line error message: printable ASCII
 * kept, anything else '?', at most 48 bytes. Returns a thread-local
 * buffer (each message uses it once). */
static const char *shown(const char *s) {
    static _Thread_local char buf[52];
    size_t o = 0;
    for (; s && *s && o < 48; s++) buf[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    if (s && *s) buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
    buf[o] = 0;
    return buf;
}

static int load_normalizer(fs_tokenizer *t, const fs_json *n, fs_err *e) {
    if (!n || fs_json_is(n, FS_JSON_NULL)) return 0;
    const char *type = type_of(n);
    if (!type) return fs_errf(e, "normalizer has no type");
    if (strcmp(type, "NFC") == 0) {
        t->nfc = 1;
        return 0;
    }
    if (strcmp(type, "Sequence") == 0) {
        const fs_json *list = fs_json_get(n, "normalizers");
        if (!fs_json_is(list, FS_JSON_ARRAY)) return fs_errf(e, "normalizer Sequence has no normalizers array");
        for (const fs_json *c = list->child; c; c = c->next)
            if (load_normalizer(t, c, e) < 0) return -1;
        return 0;
    }
    return fs_errf(e, "normalizer %s is not supported (supported: NFC, Sequence)", shown(type));
}

static int add_step(fs_tokenizer *t, const char *pattern, size_t len, int behavior, int invert, int prefix,
                    const char *what, fs_err *e) {
    pretok_step st = {NULL, 0, behavior, invert, prefix};
    if (pattern) {
        if (fs_regex_compile(&st.re, pattern, len, e) < 0) return fs_err_prefix(e, "pre_tokenizer %s", what);
        if (fs_regex_can_be_empty(st.re)) {
            fs_regex_free(st.re);
            return fs_errf(e, "pre_tokenizer %s: the pattern can match the empty string, which is not supported",
                           what);
        }
        /* scanner: the digits alternative 3 takes (0: no scanner, use the regex) */
        if (len == sizeof QWEN_PATTERN - 1 && memcmp(pattern, QWEN_PATTERN, len) == 0) st.scanner = 1;
        if (len == sizeof LLAMA3_PATTERN - 1 && memcmp(pattern, LLAMA3_PATTERN, len) == 0) st.scanner = 3;
    }
    if (!st.re && !prefix) return 0; /* nothing to do (ByteLevel without regex or prefix) */
    t->steps = fs_xrealloc(t->steps, (size_t)(t->n_steps + 1) * sizeof *t->steps);
    t->steps[t->n_steps++] = st;
    return 0;
}

/* *byte_level: set once the ByteLevel step is seen; nothing may follow it
 * (it maps the text to the byte alphabet, which later steps would see). */
static int load_pretok(fs_tokenizer *t, const fs_json *p, int *byte_level, fs_err *e) {
    const char *type = type_of(p);
    if (!type) return fs_errf(e, "pre_tokenizer has no type");
    if (strcmp(type, "Sequence") == 0) {
        const fs_json *list = fs_json_get(p, "pretokenizers");
        if (!fs_json_is(list, FS_JSON_ARRAY)) return fs_errf(e, "pre_tokenizer Sequence has no pretokenizers array");
        for (const fs_json *c = list->child; c; c = c->next)
            if (load_pretok(t, c, byte_level, e) < 0) return -1;
        return 0;
    }
    if (*byte_level) return fs_errf(e, "pre_tokenizer %s after ByteLevel is not supported", shown(type));
    if (strcmp(type, "ByteLevel") == 0) {
        int prefix, use_regex;
        if (get_flag(p, "add_prefix_space", 1, &prefix, "pre_tokenizer ByteLevel", e) < 0 ||
            get_flag(p, "use_regex", 1, &use_regex, "pre_tokenizer ByteLevel", e) < 0)
            return -1;
        *byte_level = 1;
        /* trim_offsets only changes offsets, which we do not report. */
        return add_step(t, use_regex ? GPT2_PATTERN : NULL, use_regex ? sizeof GPT2_PATTERN - 1 : 0,
                        SPLIT_ISOLATED, 0, prefix, "ByteLevel", e);
    }
    if (strcmp(type, "Digits") == 0) {
        int single;
        if (get_flag(p, "individual_digits", 0, &single, "pre_tokenizer Digits", e) < 0) return -1;
        /* HF splits on char::is_numeric: general categories Nd, Nl, No. */
        return add_step(t, "\\p{N}", 5, single ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS, 0, 0, "Digits", e);
    }
    if (strcmp(type, "Split") == 0) {
        static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
        const char *b = fs_json_string(fs_json_get(p, "behavior"));
        int behavior = -1, invert;
        for (int i = 0; b && i < 5; i++)
            if (strcmp(b, names[i]) == 0) behavior = i;
        if (behavior < 0) return fs_errf(e, "pre_tokenizer Split: behavior %s is not supported", b ? shown(b) : "(missing)");
        if (get_flag(p, "invert", 0, &invert, "pre_tokenizer Split", e) < 0) return -1;
        const fs_json *pat = fs_json_get(p, "pattern");
        const fs_json *re = fs_json_get(pat, "Regex"), *str = fs_json_get(pat, "String");
        if (fs_json_is(re, FS_JSON_STRING)) return add_step(t, re->str, re->len, behavior, invert, 0, "Split", e);
        if (!fs_json_is(str, FS_JSON_STRING) || str->len == 0)
            return fs_errf(e, "pre_tokenizer Split: pattern is neither {\"Regex\": ...} nor a non-empty {\"String\": ...}");
        /* A literal string: the same regex with every ASCII punctuation or
         * space character escaped. */
        char *lit = fs_xmalloc(str->len * 2 + 1);
        size_t o = 0;
        for (size_t i = 0; i < str->len; i++) {
            unsigned char c = (unsigned char)str->str[i];
            if (c < 0x80 && !((c | 0x20) >= 'a' && (c | 0x20) <= 'z') && !(c >= '0' && c <= '9')) lit[o++] = '\\';
            lit[o++] = (char)c;
        }
        int rc = add_step(t, lit, o, behavior, invert, 0, "Split", e);
        free(lit);
        return rc;
    }
    return fs_errf(e, "pre_tokenizer %s is not supported (supported: Split, ByteLevel, Digits, Sequence)",
                   shown(type));
}

static int load_decoder(const fs_json *d, fs_err *e) {
    const char *type = type_of(d);
    if (!d || fs_json_is(d, FS_JSON_NULL)) return fs_errf(e, "decoder is missing (only ByteLevel is supported)");
    if (!type) return fs_errf(e, "decoder has no type");
    if (strcmp(type, "ByteLevel") == 0) return 0;
    if (strcmp(type, "Sequence") == 0) {
        const fs_json *list = fs_json_get(d, "decoders");
        if (!fs_json_is(list, FS_JSON_ARRAY)) return fs_errf(e, "decoder Sequence has no decoders array");
        for (const fs_json *c = list->child; c; c = c->next)
            if (load_decoder(c, e) < 0) return -1;
        return 0;
    }
    return fs_errf(e, "decoder %s is not supported (supported: ByteLevel, Sequence)", shown(type));
}

static void append_ids(int **ids, int *n, const int *add, int n_add, int at_front) {
    if (n_add == 0) return;
    *ids = fs_xrealloc(*ids, (size_t)(*n + n_add + 1) * sizeof **ids);
    if (at_front) {
        memmove(*ids + n_add, *ids, (size_t)*n * sizeof **ids);
        memcpy(*ids, add, (size_t)n_add * sizeof *add);
    } else {
        memcpy(*ids + *n, add, (size_t)n_add * sizeof *add);
    }
    *n += n_add;
}

/* TemplateProcessing's "single" template: special tokens before the
 * sequence A go before the text, those after it after. */
static int load_template(fs_tokenizer *t, const fs_json *p, fs_err *e) {
    const fs_json *single = fs_json_get(p, "single"), *specials = fs_json_get(p, "special_tokens");
    if (!fs_json_is(single, FS_JSON_ARRAY)) return fs_errf(e, "post_processor TemplateProcessing has no single template");
    int *pre = NULL, n_pre = 0, *post = NULL, n_post = 0, seen_a = 0, rc = 0;
    for (const fs_json *item = single->child; item && rc == 0; item = item->next) {
        const fs_json *sp = fs_json_get(item, "SpecialToken"), *seq = fs_json_get(item, "Sequence");
        if (seq) {
            const char *which = fs_json_string(fs_json_get(seq, "id"));
            if (!which || strcmp(which, "A") != 0 || seen_a)
                rc = fs_errf(e, "post_processor TemplateProcessing: the single template must hold sequence A once");
            seen_a = 1;
            continue;
        }
        const char *name = fs_json_string(fs_json_get(sp, "id"));
        const fs_json *ids = fs_json_get(fs_json_get(specials, name ? name : ""), "ids");
        if (!name || !fs_json_is(ids, FS_JSON_ARRAY)) {
            rc = fs_errf(e, "post_processor TemplateProcessing: special token %s has no ids",
                         name ? shown(name) : "(unnamed)");
            break;
        }
        for (const fs_json *v = ids->child; v; v = v->next) {
            int64_t id;
            if (!fs_json_int(v, 0, t->n_vocab - 1, &id)) {
                rc = fs_errf(e, "post_processor TemplateProcessing: special token %s has an id out of range",
                             shown(name));
                break;
            }
            int one = (int)id;
            if (seen_a) append_ids(&post, &n_post, &one, 1, 0);
            else append_ids(&pre, &n_pre, &one, 1, 0);
        }
    }
    if (rc == 0 && !seen_a) rc = fs_errf(e, "post_processor TemplateProcessing: the single template has no sequence A");
    if (rc == 0) { /* a later processor wraps what the earlier ones made */
        append_ids(&t->prefix_ids, &t->n_prefix, pre, n_pre, 1);
        append_ids(&t->suffix_ids, &t->n_suffix, post, n_post, 0);
    }
    free(pre);
    free(post);
    return rc;
}

static int load_post(fs_tokenizer *t, const fs_json *p, fs_err *e) {
    if (!p || fs_json_is(p, FS_JSON_NULL)) return 0;
    const char *type = type_of(p);
    if (!type) return fs_errf(e, "post_processor has no type");
    if (strcmp(type, "ByteLevel") == 0) return 0; /* it only trims offsets */
    if (strcmp(type, "TemplateProcessing") == 0) return load_template(t, p, e);
    if (strcmp(type, "Sequence") == 0) {
        const fs_json *list = fs_json_get(p, "processors");
        if (!fs_json_is(list, FS_JSON_ARRAY)) return fs_errf(e, "post_processor Sequence has no processors array");
        for (const fs_json *c = list->child; c; c = c->next)
            if (load_post(t, c, e) < 0) return -1;
        return 0;
    }
    return fs_errf(e, "post_processor %s is not supported (supported: TemplateProcessing, ByteLevel, Sequence)",
                   shown(type));
}

/* The BPE model's options: what changes the ids must be what we implement. */
static int load_model_options(fs_tokenizer *t, const fs_json *model, fs_err *e) {
    const fs_json *dropout = fs_json_get(model, "dropout");
    if (dropout && !fs_json_is(dropout, FS_JSON_NULL) && !(fs_json_is(dropout, FS_JSON_NUMBER) && dropout->number == 0))
        return fs_errf(e, "model.dropout is not supported (it makes BPE random)");
    int fallback;
    if (get_flag(model, "byte_fallback", 0, &fallback, "model", e) < 0) return -1;
    if (fallback) return fs_errf(e, "model.byte_fallback is not supported (only byte-level BPE)");
    static const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const fs_json *v = fs_json_get(model, affixes[i]);
        if (v && !fs_json_is(v, FS_JSON_NULL) && !(fs_json_is(v, FS_JSON_STRING) && v->len == 0))
            return fs_errf(e, "model.%s is not supported", affixes[i]);
    }
    return get_flag(model, "ignore_merges", 0, &t->ignore_merges, "model", e);
}


static int load_json(fs_tokenizer *t, const fs_json *root, fs_err *e) {
    const fs_json *model = fs_json_get(root, "model");
    const fs_json *vocab = fs_json_get(model, "vocab");
    const fs_json *merges = fs_json_get(model, "merges");
    const fs_json *added = fs_json_get(root, "added_tokens");
    const char *type = fs_json_string(fs_json_get(model, "type"));
    if (!type || strcmp(type, "BPE") != 0) return fs_errf(e, "model.type is not \"BPE\"");
    if (!fs_json_is(vocab, FS_JSON_OBJECT)) return fs_errf(e, "model.vocab is not an object");
    if (!fs_json_is(merges, FS_JSON_ARRAY)) return fs_errf(e, "model.merges is not an array");
    if (added && !fs_json_is(added, FS_JSON_ARRAY)) return fs_errf(e, "added_tokens is not an array");
    int byte_level = 0;
    if (load_model_options(t, model, e) < 0 || load_normalizer(t, fs_json_get(root, "normalizer"), e) < 0)
        return -1;
    const fs_json *pretok = fs_json_get(root, "pre_tokenizer");
    if (!pretok || fs_json_is(pretok, FS_JSON_NULL))
        return fs_errf(e, "pre_tokenizer is missing (byte-level BPE needs a ByteLevel pre-tokenizer)");
    if (load_pretok(t, pretok, &byte_level, e) < 0) return -1;
    if (!byte_level) return fs_errf(e, "pre_tokenizer has no ByteLevel step (only byte-level BPE is supported)");
    if (load_decoder(fs_json_get(root, "decoder"), e) < 0) return -1;

    int byte_for_cp[324];
    build_byte_alphabet(byte_for_cp);

    /* Pass 1: ids and pool size. */
    int64_t max_id = -1;
    size_t pool_len = 0;
    for (const fs_json *v = vocab->child; v; v = v->next) {
        int64_t id;
        if (!fs_json_int(v, 0, 1 << 24, &id)) return fs_errf(e, "vocab entry has a bad id");
        if (id > max_id) max_id = id;
        pool_len += v->key_len;
    }
    int n_added = 0;
    for (const fs_json *a = added ? added->child : NULL; a; a = a->next) {
        int64_t id;
        const fs_json *content = fs_json_get(a, "content");
        if (!fs_json_int(fs_json_get(a, "id"), 0, 1 << 24, &id) || !fs_json_is(content, FS_JSON_STRING) ||
            content->len == 0)
            return fs_errf(e, "added_tokens[%d]: needs an integer id and a non-empty content", n_added);
        static const char *flags[] = {"special", "lstrip", "rstrip", "single_word", "normalized"};
        for (int k = 0; k < 5; k++) {
            int ignored;
            if (get_flag(a, flags[k], 0, &ignored, "added_tokens[]", e) < 0) return -1;
        }
        if (id > max_id) max_id = id;
        pool_len += content->len * 3; /* room for its NFC form, which can be longer (UAX #15: 3x at most) */
        n_added++;
    }
    if (max_id < 255) return fs_errf(e, "vocab is too small (%lld tokens)", (long long)max_id + 1);
    t->n_vocab = (int)max_id + 1;
    t->pool = fs_xmalloc(pool_len + 1);
    t->tok_off = fs_xcalloc((size_t)t->n_vocab, sizeof *t->tok_off);
    t->tok_len = fs_xmalloc((size_t)t->n_vocab * sizeof *t->tok_len);
    t->special = fs_xcalloc((size_t)t->n_vocab, 1);
    t->in_vocab = fs_xcalloc((size_t)t->n_vocab, 1);
    for (int i = 0; i < t->n_vocab; i++) t->tok_len[i] = UINT32_MAX;
    t->str_mask = pow2_at_least((size_t)t->n_vocab * 2) - 1;
    t->str_slots = fs_xmalloc((t->str_mask + 1) * sizeof *t->str_slots);
    memset(t->str_slots, 0xff, (t->str_mask + 1) * sizeof *t->str_slots);

    /* Pass 2: vocab bytes. */
    size_t off = 0;
    for (const fs_json *v = vocab->child; v; v = v->next) {
        int id = (int)v->number;
        long n = alphabet_to_bytes(byte_for_cp, v->key, v->key_len, t->pool + off);
        if (n < 0) return fs_errf(e, "vocab token %d has a character outside the byte-level alphabet", id);
        if (t->tok_len[id] != UINT32_MAX) return fs_errf(e, "vocab id %d appears twice", id);
        t->tok_off[id] = off;
        t->tok_len[id] = (uint32_t)n;
        t->in_vocab[id] = 1;
        off += (size_t)n;
        if (str_insert(t, id) >= 0) return fs_errf(e, "vocab token %d duplicates another token's bytes", id);
        if ((size_t)n > t->max_token_len) t->max_token_len = (size_t)n;
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = str_lookup(t, &c, 1);
        if (t->byte_id[b] < 0) return fs_errf(e, "vocab has no token for byte 0x%02x", b);
    }

    /* Added tokens. HF decodes them through the ByteLevel decoder too, which
     * maps a token's characters back to bytes when all of them are in the
     * alphabet and keeps the UTF-8 text otherwise; we store what that gives. */
    t->added = fs_xcalloc((size_t)n_added + 1, sizeof *t->added);
    /* HF does not take an added token's id from the file: it re-derives it
     * (AddedVocabulary::add_tokens), in file order - a text already in the
     * vocab keeps its vocab id, any other gets the next id after the vocab
     * and the added tokens so far. Files HF wrote agree; a hand-edited one
     * may not, and then HF's ids are not the file's: refuse it. */
    size_t vocab_size = vocab->len;
    int64_t max_added = -1;
    char *spelled = fs_xmalloc(pool_len + 1); /* holds any added token's bytes */
    for (const fs_json *a = added ? added->child : NULL; a; a = a->next) {
        int id = (int)fs_json_get(a, "id")->number;
        const fs_json *content = fs_json_get(a, "content");
        long nb = alphabet_to_bytes(byte_for_cp, content->str, content->len, spelled);
        int in_vocab = nb < 0 ? -1 : str_lookup(t, spelled, (size_t)nb);
        int64_t hf_id = in_vocab >= 0 && t->in_vocab[in_vocab] ? in_vocab
                      : max_added < 0 ? (int64_t)vocab_size
                      : max_added >= (int64_t)vocab_size ? max_added + 1 : (int64_t)vocab_size;
        if (hf_id != id) {
            free(spelled);
            return fs_errf(e, "added token %d (%s): HF tokenizers would give it id %lld (an added token's text "
                              "already in the vocab keeps its vocab id; others follow the vocab in file order)",
                           id, shown(content->str), (long long)hf_id);
        }
        if (hf_id > max_added) max_added = hf_id;
        int is_special, lstrip, rstrip, single_word, normalized;
        /* (the types were checked in pass 1) HF's default for a token without
         * "normalized": special tokens are matched in the raw text, others
         * after normalization. */
        get_flag(a, "special", 0, &is_special, "", e);
        get_flag(a, "lstrip", 0, &lstrip, "", e);
        get_flag(a, "rstrip", 0, &rstrip, "", e);
        get_flag(a, "single_word", 0, &single_word, "", e);
        get_flag(a, "normalized", !is_special, &normalized, "", e);
        added_token *at = &t->added[t->n_added++];
        at->id = id;
        at->lstrip = (uint8_t)lstrip;
        at->rstrip = (uint8_t)rstrip;
        at->single_word = (uint8_t)single_word;
        at->normalized = (uint8_t)normalized;
        /* A normalized token is looked for in normalized text, so its own
         * text is normalized the same way first (as HF does). */
        if (at->normalized && t->nfc && !fs_unicode_nfc_quick(content->str, content->len)) {
            size_t nl;
            at->text = fs_unicode_nfc(content->str, content->len, &nl);
            at->len = nl;
            if (nl > content->len * 3) { /* cannot happen (UAX #15), but the pool was sized on it */
                free(spelled);
                return fs_errf(e, "added token %d: its NFC form is more than 3x longer", id);
            }
        } else {
            char *match = fs_xmalloc(content->len);
            memcpy(match, content->str, content->len);
            at->text = match;
            at->len = content->len;
        }
        t->added_first[at->normalized][(unsigned char)at->text[0]] = 1;
        t->special[id] = (unsigned char)is_special;
        if (t->tok_len[id] != UINT32_MAX) continue; /* also a vocab token: decodes as that */
        /* A normalized token decodes from its normalized text, as HF does
         * (it keeps the normalized content for such tokens). */
        long n = alphabet_to_bytes(byte_for_cp, at->text, at->len, t->pool + off);
        if (n < 0) {
            memcpy(t->pool + off, at->text, at->len);
            n = (long)at->len;
        }
        t->tok_off[id] = off;
        t->tok_len[id] = (uint32_t)n;
        off += (size_t)n;
        if ((size_t)n > t->max_token_len) t->max_token_len = (size_t)n;
        str_insert(t, id);
    }
    free(spelled);

    /* Merges: "a b" strings (older files) or [a, b] pairs. Rank = index. */
    size_t n_merges = merges->len;
    t->merge_mask = pow2_at_least(n_merges * 2 + 1) - 1;
    t->merges = fs_xmalloc((t->merge_mask + 1) * sizeof *t->merges);
    for (size_t i = 0; i <= t->merge_mask; i++) t->merges[i].key = MERGE_EMPTY;
    size_t cap = t->max_token_len * 2 + 8;
    char *buf = fs_xmalloc(cap);
    uint32_t rank = 0;
    for (const fs_json *m = merges->child; m; m = m->next, rank++) {
        const char *sa, *sb;
        size_t la, lb;
        if (fs_json_is(m, FS_JSON_ARRAY) && m->len == 2 && fs_json_is(m->child, FS_JSON_STRING) &&
            fs_json_is(m->child->next, FS_JSON_STRING)) {
            sa = m->child->str, la = m->child->len;
            sb = m->child->next->str, lb = m->child->next->len;
        } else if (fs_json_is(m, FS_JSON_STRING) && memchr(m->str, ' ', m->len)) {
            sa = m->str;
            la = (size_t)((const char *)memchr(m->str, ' ', m->len) - m->str);
            sb = sa + la + 1;
            lb = m->len - la - 1;
        } else {
            free(buf);
            return fs_errf(e, "merges[%u] is not a pair of strings", rank);
        }
        if (la + lb > cap) {
            free(buf);
            return fs_errf(e, "merges[%u] is longer than any token", rank);
        }
        long na = alphabet_to_bytes(byte_for_cp, sa, la, buf);
        long nb = na < 0 ? -1 : alphabet_to_bytes(byte_for_cp, sb, lb, buf + na);
        int ia = na < 0 ? -1 : str_lookup(t, buf, (size_t)na);
        int ib = nb < 0 ? -1 : str_lookup(t, buf + na, (size_t)nb);
        int ic = nb < 0 ? -1 : str_lookup(t, buf, (size_t)(na + nb));
        if (ia < 0 || ib < 0 || ic < 0) {
            free(buf);
            return fs_errf(e, "merges[%u]: a part or the merged token is not in the vocab", rank);
        }
        uint64_t key = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
        size_t s = hash_u64(key) & t->merge_mask;
        while (t->merges[s].key != MERGE_EMPTY && t->merges[s].key != key) s = (s + 1) & t->merge_mask;
        if (t->merges[s].key == key) continue; /* duplicate pair: the first (lowest) rank wins, as in HF */
        t->merges[s].key = key;
        t->merges[s].rank = rank;
        t->merges[s].id = ic;
    }
    free(buf);
    return load_post(t, fs_json_get(root, "post_processor"), e);
}

int fs_tokenizer_parse(fs_tokenizer **out, const char *json, size_t len, const char *name, fs_err *e) {
    *out = NULL;
    fs_json_doc doc;
    if (fs_json_parse(&doc, json, len, e) < 0) return fs_err_prefix(e, "%s", name);
    fs_tokenizer *t = fs_xcalloc(1, sizeof *t);
    int rc = load_json(t, doc.root, e);
    fs_json_free(&doc);
    if (rc < 0) {
        fs_tokenizer_free(t);
        return fs_err_prefix(e, "%s", name);
    }
    *out = t;
    return 0;
}

int fs_tokenizer_load(fs_tokenizer **out, const char *path, fs_err *e) {
    *out = NULL;
    char file[4096];
    const char *p = path;
    size_t plen = strlen(path);
    if (!(plen >= 5 && strcmp(path + plen - 5, ".json") == 0)) {
        if (fs_path_join(file, sizeof file, path, "tokenizer.json") < 0) return fs_errf(e, "%s: path too long", path);
        p = file;
    }
    /* A directory, FIFO or device is named as such (and a FIFO is never
     * opened: that would wait for a writer). */
    if (fs_regular_file(p, e) < 0) return -1;
    char *text;
    size_t len;
    if (fs_read_file(p, &text, &len, e) < 0) return -1;
    int rc = fs_tokenizer_parse(out, text, len, p, e);
    free(text);
    return rc;
}

void fs_tokenizer_free(fs_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_added; i++) free((char *)t->added[i].text);
    free(t->added);
    free(t->pool);
    free(t->tok_off);
    free(t->tok_len);
    free(t->special);
    free(t->in_vocab);
    for (int i = 0; i < t->n_steps; i++) fs_regex_free(t->steps[i].re);
    free(t->steps);
    free(t->prefix_ids);
    free(t->suffix_ids);
    free(t->str_slots);
    free(t->merges);
    free(t);
}

int fs_tokenizer_n_vocab(const fs_tokenizer *t) { return t->n_vocab; }

size_t fs_tokenizer_max_token_bytes(const fs_tokenizer *t) { return t->max_token_len; }

const char *fs_tokenizer_token_bytes(const fs_tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->n_vocab || t->tok_len[id] == UINT32_MAX) {
        *len = 0;
        return NULL;
    }
    *len = t->tok_len[id];
    return t->pool + t->tok_off[id];
}

int fs_tokenizer_token_id(const fs_tokenizer *t, const char *token) {
    size_t n = strlen(token);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && memcmp(t->added[i].text, token, n) == 0) return t->added[i].id;
    return str_lookup(t, token, n);
}

int fs_tokenizer_is_special(const fs_tokenizer *t, int id) {
    return id >= 0 && id < t->n_vocab && t->special[id];
}

/* ---- encoding --------------------------------------------------------- */

/* A cache of BPE results for short pre-tokens, alive for one encode call.
 * Natural text repeats its words ("the", " of", "\n\n"), and a cache hit
 * skips the merge loop, whose hash probes into the 8 MB merge table are
 * most of the encode time. Direct-mapped (a new word evicts the old one) and
 * private to the call, so results never depend on earlier calls or threads:
 * BPE of a word is a pure function, the cache only remembers it. Small inputs
 * (a chat turn) skip it; it pays off from tens of kilobytes. */
#define CACHE_SLOTS 8192
#define CACHE_WORD 22
#define CACHE_IDS 6
#define CACHE_MIN_INPUT 16384
typedef struct {
    uint8_t len, n_ids; /* len 0: empty slot */
    char word[CACHE_WORD];
    int32_t ids[CACHE_IDS];
} cache_entry;

/* Scratch for one encode call; grows with the input, freed at the end. */
typedef struct {
    int *ids;
    size_t n_ids, cap_ids;
    struct sym { int id, prev, next; } *sym;
    struct heap_item { uint32_t rank; int pos; int id; } *heap;
    size_t cap_sym;
    cache_entry *cache; /* NULL for small inputs */
    fs_regex_scratch rx;
    /* The general pre-tokenizer path: pieces are (offset, length) in work,
     * which holds the span and any prefixed copies ("a" -> " a"). */
    char *work;
    size_t work_len, work_cap;
    struct piece { size_t off, len; } *pa, *pb;
    size_t cap_pa, cap_pb;
    struct seg { size_t start, end; int match; } *seg;
    size_t cap_seg;
} enc;

static void push_id(enc *x, int id) {
    if (x->n_ids == x->cap_ids) {
        x->cap_ids = x->cap_ids ? x->cap_ids * 2 : 256;
        x->ids = fs_xrealloc(x->ids, x->cap_ids * sizeof *x->ids);
    }
    x->ids[x->n_ids++] = id;
}

/* Heap ordered like HF's Merge: lower rank first, then lower position. */
static int heap_less(const struct heap_item *a, const struct heap_item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(struct heap_item *h, size_t *n, struct heap_item it) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(&it, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = it;
}

static struct heap_item heap_pop(struct heap_item *h, size_t *n) {
    struct heap_item top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

static void heap_push_pair(const fs_tokenizer *t, enc *x, size_t *n_heap, int pos) {
    int nx = x->sym[pos].next;
    if (nx < 0) return;
    const merge_slot *m = merge_lookup(t, x->sym[pos].id, x->sym[nx].id);
    if (m) heap_push(x->heap, n_heap, (struct heap_item){m->rank, pos, m->id});
}

/* BPE over one pre-token: start from single bytes, repeatedly apply the
 * lowest-rank merge present. Symbols form a linked list in x->sym (merged
 * ones are unlinked and marked id = -1); the heap may hold stale entries,
 * which are skipped when the pair they name no longer exists. */
static void bpe_word(const fs_tokenizer *t, enc *x, const unsigned char *w, size_t n) {
    if (t->ignore_merges) { /* HF: a word that is itself in the vocab is one token, merges or not */
        int id = str_lookup(t, (const char *)w, n);
        if (id >= 0 && t->in_vocab[id]) {
            push_id(x, id);
            return;
        }
    }
    if (n == 1) {
        push_id(x, t->byte_id[w[0]]);
        return;
    }
    cache_entry *ce = NULL;
    if (x->cache && n <= CACHE_WORD) {
        ce = &x->cache[hash_bytes((const char *)w, n) & (CACHE_SLOTS - 1)];
        if (ce->len == n && memcmp(ce->word, w, n) == 0) {
            for (int i = 0; i < ce->n_ids; i++) push_id(x, ce->ids[i]);
            return;
        }
    }
    size_t first = x->n_ids;
    if (n > x->cap_sym) {
        x->cap_sym = n * 2;
        x->sym = fs_xrealloc(x->sym, x->cap_sym * sizeof *x->sym);
        x->heap = fs_xrealloc(x->heap, x->cap_sym * 2 * sizeof *x->heap);
    }
    for (size_t i = 0; i < n; i++) {
        x->sym[i].id = t->byte_id[w[i]];
        x->sym[i].prev = (int)i - 1;
        x->sym[i].next = i + 1 < n ? (int)i + 1 : -1;
    }
    size_t n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++) heap_push_pair(t, x, &n_heap, (int)i);
    while (n_heap > 0) {
        struct heap_item top = heap_pop(x->heap, &n_heap);
        struct sym *s = &x->sym[top.pos];
        if (s->id < 0 || s->next < 0) continue;
        const merge_slot *m = merge_lookup(t, s->id, x->sym[s->next].id);
        if (!m || m->id != top.id) continue; /* stale: this pair changed since it was pushed */
        int gone = s->next;
        s->id = top.id;
        s->next = x->sym[gone].next;
        if (s->next >= 0) x->sym[s->next].prev = top.pos;
        x->sym[gone].id = -1;
        if (s->prev >= 0) heap_push_pair(t, x, &n_heap, s->prev);
        heap_push_pair(t, x, &n_heap, top.pos);
    }
    for (int i = 0; i >= 0; i = x->sym[i].next) push_id(x, x->sym[i].id);
    if (ce && x->n_ids - first <= CACHE_IDS) {
        ce->len = (uint8_t)n;
        ce->n_ids = (uint8_t)(x->n_ids - first);
        memcpy(ce->word, w, n);
        for (size_t i = first; i < x->n_ids; i++) ce->ids[i - first] = x->ids[i];
    }
}

/* Decode the code point at s[i] (valid UTF-8 guaranteed), storing its length. */
static inline uint32_t cp_at(const unsigned char *s, size_t n, size_t i, int *len) {
    if (s[i] < 0x80) {
        *len = 1;
        return s[i];
    }
    uint32_t cp;
    *len = fs_utf8_decode(s + i, n - i, &cp);
    return cp;
}

static inline int class_at(const unsigned char *s, size_t n, size_t i, int *len) {
    if (s[i] < 0x80) {
        *len = 1;
        return fs_unicode_class(s[i]);
    }
    uint32_t cp;
    *len = fs_utf8_decode(s + i, n - i, &cp);
    return fs_unicode_class(cp);
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) after the apostrophe at s[i-1]: the length
 * of the matched letters, or 0. Case-insensitive as Oniguruma folds: the
 * only non-ASCII character folding to one of these letters is U+017F LATIN
 * SMALL LETTER LONG S (folds to 's'). */
static size_t contraction(const unsigned char *s, size_t n, size_t i) {
    unsigned c = s[i] | 0x20;
    if (s[i] >= 0x80) return (s[i] == 0xC5 && i + 1 < n && s[i + 1] == 0xBF) ? 2 : 0;
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return (s[i] & 0xDF) == (c & 0xDF) ? 1 : 0;
    if (i + 1 >= n) return 0;
    unsigned c2 = s[i + 1] | 0x20;
    if (s[i + 1] >= 0x80) return 0;
    if ((c == 'r' && c2 == 'e') || (c == 'v' && c2 == 'e') || (c == 'l' && c2 == 'l')) return 2;
    return 0;
}

static int is_ascii_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

/* Qwen's regex, each alternative tried in order; the first that matches
 * wins. max_digits is how many number characters alternative 3 takes:
 * 1 for Qwen's \p{N}, 3 for Llama 3's \p{N}{1,3} (its only difference). */
size_t fs_pretok_scan(const char *text, size_t n, size_t i, int max_digits) {
    const unsigned char *s = (const unsigned char *)text;
    int l0;
    uint32_t c = cp_at(s, n, i, &l0);
    int k = fs_unicode_class(c);
    size_t j;
    int l;

    /* 1: contractions */
    if (c == '\'' && i + 1 < n && (is_ascii_alpha(s[i + 1]) || s[i + 1] == 0xC5)) {
        size_t m = contraction(s, n, i + 1);
        if (m) return i + 1 + m;
    }
    /* 2: [^\r\n\p{L}\p{N}]?\p{L}+ */
    j = i;
    if (k == FS_UCLASS_LETTER) j = i;
    else if (k != FS_UCLASS_NUMBER && c != '\r' && c != '\n' && i + (size_t)l0 < n &&
             class_at(s, n, i + (size_t)l0, &l) == FS_UCLASS_LETTER)
        j = i + (size_t)l0;
    else j = SIZE_MAX;
    if (j != SIZE_MAX) {
        while (j < n && class_at(s, n, j, &l) == FS_UCLASS_LETTER) j += (size_t)l;
        return j;
    }
    /* 3: \p{N} (or \p{N}{1,3}: up to max_digits of them, greedily) */
    if (k == FS_UCLASS_NUMBER) {
        j = i + (size_t)l0;
        for (int d = 1; d < max_digits && j < n && class_at(s, n, j, &l) == FS_UCLASS_NUMBER; d++) j += (size_t)l;
        return j;
    }
    /* 4: ` ?[^\s\p{L}\p{N}]+[\r\n]*` */
    j = i;
    if (c == ' ' && i + 1 < n && class_at(s, n, i + 1, &l) == FS_UCLASS_OTHER) j = i + 1;
    if (class_at(s, n, j, &l) == FS_UCLASS_OTHER) {
        while (j < n && class_at(s, n, j, &l) == FS_UCLASS_OTHER) j += (size_t)l;
        while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    /* Only white space is left (k == SPACE). Find the run [i, j) and the
     * end of its last line break. */
    size_t last_nl = SIZE_MAX, last_start = i;
    j = i;
    while (j < n && class_at(s, n, j, &l) == FS_UCLASS_SPACE) {
        if (s[j] == '\r' || s[j] == '\n') last_nl = j;
        last_start = j;
        j += (size_t)l;
    }
    /* 5: \s*[\r\n]+ - greedy \s* backtracks to the last line break. */
    if (last_nl != SIZE_MAX) return last_nl + 1;
    /* 6: \s+(?!\S) - at the end, or leave the last space for the next word. */
    if (j == n) return j;
    if (last_start > i) return last_start;
    /* 7: \s+ - a single white space character before a non-space. */
    return j;
}

size_t fs_pretok_next(const char *text, size_t n, size_t i) { return fs_pretok_scan(text, n, i, 1); }

#define GROW(ptr, cap, need)                                                      \
    do {                                                                          \
        if ((need) > (cap)) {                                                     \
            (cap) = (need) * 2;                                                   \
            (ptr) = fs_xrealloc((ptr), (cap) * sizeof *(ptr));                    \
        }                                                                         \
    } while (0)

/* The parts of piece p that step st keeps, appended to x->pb (HF's
 * NormalizedString::split): the regex's matches and the gaps between them
 * are segments; invert swaps which are "matches"; behavior then says what
 * happens to matches: Isolated (a piece each), Removed (dropped),
 * MergedWithPrevious / MergedWithNext (glued to the neighbouring gap),
 * Contiguous (consecutive matches become one piece). Empty parts vanish. */
static void split_piece(const pretok_step *st, enc *x, struct piece p, size_t *n_out) {
    size_t n_seg = 0, pos = 0, ms, me;
    const char *s = x->work + p.off;
    while (pos < p.len) {
        int found = st->scanner ? (ms = pos, me = fs_pretok_scan(s, p.len, pos, st->scanner), 1)
                                : fs_regex_find(st->re, &x->rx, s, p.len, pos, &ms, &me);
        GROW(x->seg, x->cap_seg, n_seg + 2);
        if (!found) ms = me = p.len;
        if (ms > pos) x->seg[n_seg++] = (struct seg){pos, ms, st->invert};
        if (!found) break;
        x->seg[n_seg++] = (struct seg){ms, me, !st->invert};
        pos = me;
    }
    GROW(x->pb, x->cap_pb, *n_out + n_seg + 1);
    struct piece *out = x->pb;
    size_t n = *n_out, carry = SIZE_MAX;
    int prev_match = 0;
    for (size_t i = 0; i < n_seg; i++) {
        struct seg g = x->seg[i];
        int glue = 0;
        switch (st->behavior) {
        case SPLIT_REMOVED: if (g.match) continue; break;
        case SPLIT_ISOLATED: break;
        case SPLIT_MERGED_PREV: glue = g.match && !prev_match && n > *n_out; break;
        case SPLIT_CONTIGUOUS: glue = g.match == prev_match && n > *n_out; break;
        case SPLIT_MERGED_NEXT:
            if (g.match && i + 1 < n_seg && !x->seg[i + 1].match) { /* held for the next gap */
                carry = g.start;
                prev_match = 1;
                continue;
            }
            break;
        }
        prev_match = g.match;
        if (glue) {
            out[n - 1].len = p.off + g.end - out[n - 1].off;
            continue;
        }
        size_t start = carry != SIZE_MAX ? carry : g.start;
        carry = SIZE_MAX;
        if (g.end > start) out[n++] = (struct piece){p.off + start, g.end - start};
    }
    *n_out = n;
}

/* Pre-tokenize s[0..n) (normalized, no added tokens in it) and BPE each
 * pre-token. The common shape - one Split, Isolated, no prefix space
 * (Qwen, Llama 3, GPT-2) - streams matches straight into BPE; any other
 * list of steps goes through piece lists, one step at a time, as HF's
 * PreTokenizedString does. */
static void encode_pretok(const fs_tokenizer *t, enc *x, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    if (t->n_steps == 1 && t->steps[0].behavior == SPLIT_ISOLATED && !t->steps[0].invert &&
        !t->steps[0].add_prefix_space) {
        const pretok_step *st = &t->steps[0];
        size_t pos = 0, ms, me;
        while (pos < n) {
            if (st->scanner) {
                me = fs_pretok_scan(s, n, pos, st->scanner);
                bpe_word(t, x, u + pos, me - pos);
            } else if (fs_regex_find(st->re, &x->rx, s, n, pos, &ms, &me)) {
                if (ms > pos) bpe_word(t, x, u + pos, ms - pos);
                bpe_word(t, x, u + ms, me - ms);
            } else {
                bpe_word(t, x, u + pos, n - pos);
                me = n;
            }
            pos = me;
        }
        return;
    }
    x->work_len = 0;
    GROW(x->work, x->work_cap, n + 1);
    memcpy(x->work, s, n);
    x->work_len = n;
    GROW(x->pa, x->cap_pa, 1);
    x->pa[0] = (struct piece){0, n};
    size_t n_pieces = 1;
    for (int k = 0; k < t->n_steps; k++) {
        const pretok_step *st = &t->steps[k];
        size_t n_out = 0;
        for (size_t i = 0; i < n_pieces; i++) {
            struct piece p = x->pa[i];
            if (st->add_prefix_space && x->work[p.off] != ' ') { /* HF: every piece not starting with ' ' */
                GROW(x->work, x->work_cap, x->work_len + p.len + 1);
                x->work[x->work_len] = ' ';
                memmove(x->work + x->work_len + 1, x->work + p.off, p.len);
                p = (struct piece){x->work_len, p.len + 1};
                x->work_len += p.len;
            }
            if (st->re) {
                split_piece(st, x, p, &n_out);
            } else {
                GROW(x->pb, x->cap_pb, n_out + 1);
                x->pb[n_out++] = p;
            }
        }
        struct piece *tmp = x->pa;
        size_t tcap = x->cap_pa;
        x->pa = x->pb, x->cap_pa = x->cap_pb;
        x->pb = tmp, x->cap_pb = tcap;
        n_pieces = n_out;
    }
    for (size_t i = 0; i < n_pieces; i++) bpe_word(t, x, (const unsigned char *)x->work + x->pa[i].off, x->pa[i].len);
}

/* Rust regex's \w, which HF's single_word test uses: Alphabetic (letters,
 * letter numbers, and marks here), Mark, Decimal_Number,
 * Connector_Punctuation, Join_Control (ZWNJ, ZWJ). */
static int is_word_cp(uint32_t cp) {
    int g = fs_unicode_gc(cp);
    return (g >= FS_GC_Lu && g <= FS_GC_Me) || g == FS_GC_Nd || g == FS_GC_Nl || g == FS_GC_Pc || cp == 0x200C ||
           cp == 0x200D;
}

/* The code point that ends at s[i] (valid UTF-8, i > 0). */
static uint32_t cp_before(const unsigned char *s, size_t i, size_t *start) {
    size_t j = i - 1;
    while (j > 0 && (s[j] & 0xC0) == 0x80) j--;
    int l;
    *start = j;
    return cp_at(s, i, j, &l);
}

/* The next added token of the set `normalized` in s[from..n), the way HF's
 * AddedVocabulary finds it: leftmost-longest matches that do not overlap;
 * a single_word token next to a word character is skipped (its text stays
 * plain text); lstrip / rstrip widen the match over white space (lstrip
 * not back past `floor`, the end of the previous token). Returns the token
 * and its widened [*ms, *me), or NULL. */
static const added_token *next_added(const fs_tokenizer *t, int normalized, const char *text, size_t n, size_t from,
                                     size_t floor, size_t *ms, size_t *me) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = from; i < n; i++) {
        if (!t->added_first[normalized][s[i]]) continue;
        const added_token *best = NULL;
        for (int k = 0; k < t->n_added; k++) {
            const added_token *a = &t->added[k];
            if (a->normalized == normalized && a->len <= n - i && (!best || a->len > best->len) &&
                memcmp(s + i, a->text, a->len) == 0)
                best = a;
        }
        if (!best) continue;
        size_t start = i, end = i + best->len, j;
        int l;
        if (best->single_word && ((start > 0 && is_word_cp(cp_before(s, start, &j))) ||
                                  (end < n && is_word_cp(cp_at(s, n, end, &l))))) {
            i = end - 1; /* the match is used up, as in HF's non-overlapping search */
            continue;
        }
        if (best->lstrip)
            while (start > floor && fs_unicode_is_space(cp_before(s, start, &j))) start = j;
        if (best->rstrip)
            while (end < n && fs_unicode_is_space(cp_at(s, n, end, &l))) end += (size_t)l;
        *ms = start;
        *me = end;
        return best;
    }
    return NULL;
}

/* Added tokens of one set found in s[0..n); the text between them goes to
 * `gap` (normalized set: pre-tokenize; raw set: normalize first). */
static void split_added(const fs_tokenizer *t, enc *x, int normalized, const char *s, size_t n,
                        void (*gap)(const fs_tokenizer *, enc *, const char *, size_t)) {
    size_t pos = 0, ms, me;
    const added_token *a;
    while ((a = next_added(t, normalized, s, n, pos, pos, &ms, &me))) {
        if (ms > pos) gap(t, x, s + pos, ms - pos);
        push_id(x, a->id);
        pos = me;
    }
    if (pos < n) gap(t, x, s + pos, n - pos);
}

/* A span of raw text between added tokens: normalize it on its own, then
 * look for the normalized=true added tokens in what came out. */
static void encode_normalized(const fs_tokenizer *t, enc *x, const char *text, size_t len) {
    char *norm = NULL;
    if (t->nfc && !fs_unicode_nfc_quick(text, len)) {
        norm = fs_unicode_nfc(text, len, &len);
        text = norm;
    }
    split_added(t, x, 1, text, len, encode_pretok);
    free(norm);
}

static size_t utf8_check(const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int k = fs_utf8_decode(s + i, len - i, &cp);
        if (k == 0) return i;
        i += (size_t)k;
    }
    return SIZE_MAX;
}

int fs_tokenizer_encode_opt(const fs_tokenizer *t, const char *text, size_t len, int add_special, int **ids,
                            int *n_ids, fs_err *e) {
    *ids = NULL;
    *n_ids = 0;
    size_t bad = utf8_check(text, len);
    if (bad != SIZE_MAX) return fs_errf(e, "invalid UTF-8 at byte %zu", bad);
    enc x = {0};
    if (len >= CACHE_MIN_INPUT) x.cache = fs_xcalloc(CACHE_SLOTS, sizeof *x.cache);
    if (add_special)
        for (int i = 0; i < t->n_prefix; i++) push_id(&x, t->prefix_ids[i]);
    /* HF's order: added tokens with normalized=false are found in the raw
     * text first; each span between them is normalized on its own. */
    split_added(t, &x, 0, text, len, encode_normalized);
    if (add_special)
        for (int i = 0; i < t->n_suffix; i++) push_id(&x, t->suffix_ids[i]);
    free(x.sym);
    free(x.heap);
    free(x.cache);
    free(x.work);
    free(x.pa);
    free(x.pb);
    free(x.seg);
    fs_regex_scratch_free(&x.rx);
    if (x.n_ids > (size_t)INT32_MAX) {
        free(x.ids);
        return fs_errf(e, "text too long");
    }
    *ids = x.ids ? x.ids : fs_xmalloc(sizeof(int));
    *n_ids = (int)x.n_ids;
    return 0;
}

int fs_tokenizer_encode(const fs_tokenizer *t, const char *text, size_t len, int **ids, int *n_ids, fs_err *e) {
    return fs_tokenizer_encode_opt(t, text, len, 0, ids, n_ids, e);
}

int fs_tokenizer_n_special(const fs_tokenizer *t) { return t->n_prefix + t->n_suffix; }

/* ---- decoding --------------------------------------------------------- */

/* A streaming UTF-8 validator that replaces ill-formed input exactly like
 * Python's bytes.decode("utf-8", errors="replace"): each maximal subpart
 * of an ill-formed sequence (the longest prefix of a valid sequence, or one
 * byte) becomes one U+FFFD. Feeding bytes one at a time keeps it exact
 * across token boundaries, so the whole decode and the streaming decode
 * share this one function. */
static size_t utf8_feed(fs_detok *d, unsigned char b, char *out) {
    size_t o = 0;
    for (;;) {
        if (d->n_pending == 0) {
            if (b < 0x80) {
                out[o++] = (char)b;
            } else if (b >= 0xC2 && b <= 0xF4) {
                d->pending[d->n_pending++] = b;
            } else {
                memcpy(out + o, "\xEF\xBF\xBD", 3);
                o += 3;
            }
            return o;
        }
        unsigned lead = d->pending[0];
        int need = lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
        unsigned lo = 0x80, hi = 0xBF;
        if (d->n_pending == 1) {
            if (lead == 0xE0) lo = 0xA0;
            else if (lead == 0xED) hi = 0x9F;
            else if (lead == 0xF0) lo = 0x90;
            else if (lead == 0xF4) hi = 0x8F;
        }
        if (b >= lo && b <= hi) {
            d->pending[d->n_pending++] = b;
            if (d->n_pending == need) {
                memcpy(out + o, d->pending, (size_t)need);
                o += (size_t)need;
                d->n_pending = 0;
            }
            return o;
        }
        /* The pending bytes are a maximal subpart: one U+FFFD, then b
         * starts afresh. */
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        d->n_pending = 0;
    }
}

void fs_detok_init(fs_detok *d) { memset(d, 0, sizeof *d); }

size_t fs_detok_push(fs_detok *d, const fs_tokenizer *t, int id, char *out, size_t cap) {
    size_t len;
    const char *b = fs_tokenizer_token_bytes(t, id, &len);
    if (!b || cap < FS_DETOK_MAX_OUT(len)) return 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) o += utf8_feed(d, (unsigned char)b[i], out + o);
    return o;
}

size_t fs_detok_flush(fs_detok *d, char *out, size_t cap) {
    if (d->n_pending == 0 || cap < 3) return 0;
    d->n_pending = 0;
    memcpy(out, "\xEF\xBF\xBD", 3);
    return 3;
}

int fs_tokenizer_decode(const fs_tokenizer *t, const int *ids, int n_ids, char **text, size_t *len, fs_err *e) {
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (int i = 0; i < n_ids; i++) {
        size_t n;
        if (!fs_tokenizer_token_bytes(t, ids[i], &n))
            return fs_errf(e, "token id %d is out of range (vocab has %d)", ids[i], t->n_vocab);
        total += n;
    }
    char *out = fs_xmalloc(total * 3 + 4);
    size_t o = 0;
    fs_detok d;
    fs_detok_init(&d);
    for (int i = 0; i < n_ids; i++) {
        size_t n;
        const char *b = fs_tokenizer_token_bytes(t, ids[i], &n);
        for (size_t k = 0; k < n; k++) o += utf8_feed(&d, (unsigned char)b[k], out + o);
    }
    o += fs_detok_flush(&d, out + o, 3);
    out[o] = 0;
    *text = out;
    *len = o;
    return 0;
}
