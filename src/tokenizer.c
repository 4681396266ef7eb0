/* tokenizer.c - Qwen3's byte-level BPE (see tokenizer.h for the pipeline).
 *
 * Exactness against HF `tokenizers` rests on reproducing each stage as HF
 * runs it, in HF's order:
 *   1. added tokens are found in the *raw* text first (all of Qwen3's are
 *      normalized=false), leftmost match, longest at that position;
 *   2. every span between them is NFC-normalized on its own;
 *   3. the span is split by the pre-tokenizer regex (Split, Isolated):
 *        (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}
 *        | ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
 *      HF runs it with Oniguruma, a backtracking engine: at each position
 *      the first alternative that matches wins. fs_pretok_next() below is that
 *      regex written out by hand, alternative by alternative;
 *   4. each piece's bytes become single-byte tokens (the ByteLevel step:
 *      GPT-2 maps each byte to a printable character so that vocab strings
 *      are text; we keep raw bytes and map ids instead), then BPE merges
 *      adjacent pairs, always the pair of lowest merge rank first (ties:
 *      leftmost), as HF's Word::merge_all does with its binary heap.
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
#include "unicode.h"

typedef struct {
    uint64_t key; /* left id << 32 | right id; MERGE_EMPTY when unused */
    uint32_t rank;
    int32_t id;   /* the merged token */
} merge_slot;

#define MERGE_EMPTY UINT64_MAX

typedef struct {
    int id;
    const char *text; /* points into the token pool */
    size_t len;
} added_token;

struct fs_tokenizer {
    int n_vocab;          /* max id + 1 */
    char *pool;           /* every token's raw bytes, back to back */
    size_t *tok_off;      /* [n_vocab] offset in pool */
    uint32_t *tok_len;    /* [n_vocab] byte length; UINT32_MAX = no token with this id */
    unsigned char *special;
    size_t max_token_len;

    int32_t *str_slots;   /* raw bytes -> id (vocab and added); -1 empty */
    size_t str_mask;
    merge_slot *merges;
    size_t merge_mask;

    int byte_id[256];     /* the single-byte token for each byte */

    added_token *added;   /* sorted by id */
    int n_added;
    unsigned char added_first[256]; /* 1 if some added token starts with this byte */
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
    const char *norm = fs_json_string(fs_json_get(fs_json_get(root, "normalizer"), "type"));
    if (norm && strcmp(norm, "NFC") != 0)
        return fs_errf(e, "normalizer %s is not supported (only NFC)", norm);

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
        if (id > max_id) max_id = id;
        pool_len += content->len;
        n_added++;
    }
    if (max_id < 255) return fs_errf(e, "vocab is too small (%lld tokens)", (long long)max_id + 1);
    t->n_vocab = (int)max_id + 1;
    t->pool = fs_xmalloc(pool_len + 1);
    t->tok_off = fs_xcalloc((size_t)t->n_vocab, sizeof *t->tok_off);
    t->tok_len = fs_xmalloc((size_t)t->n_vocab * sizeof *t->tok_len);
    t->special = fs_xcalloc((size_t)t->n_vocab, 1);
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
    for (const fs_json *a = added ? added->child : NULL; a; a = a->next) {
        int id = (int)fs_json_get(a, "id")->number;
        const fs_json *content = fs_json_get(a, "content");
        const fs_json *special = fs_json_get(a, "special");
        int is_special = fs_json_is(special, FS_JSON_BOOL) && special->boolean;
        /* normalized=true tokens would be matched after NFC; Qwen has none,
         * so rather than guess, refuse them. */
        if (fs_json_is(fs_json_get(a, "normalized"), FS_JSON_BOOL) && fs_json_get(a, "normalized")->boolean)
            return fs_errf(e, "added token %d is normalized=true, which is not supported", id);
        added_token *at = &t->added[t->n_added++];
        char *match = fs_xmalloc(content->len);
        memcpy(match, content->str, content->len);
        at->id = id;
        at->text = match;
        at->len = content->len;
        t->added_first[(unsigned char)content->str[0]] = 1;
        t->special[id] = (unsigned char)is_special;
        if (t->tok_len[id] != UINT32_MAX) continue; /* also a vocab token: decodes as that */
        long n = alphabet_to_bytes(byte_for_cp, content->str, content->len, t->pool + off);
        if (n < 0) {
            memcpy(t->pool + off, content->str, content->len);
            n = (long)content->len;
        }
        t->tok_off[id] = off;
        t->tok_len[id] = (uint32_t)n;
        off += (size_t)n;
        if ((size_t)n > t->max_token_len) t->max_token_len = (size_t)n;
        str_insert(t, id);
    }

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
    return 0;
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
 * wins. */
size_t fs_pretok_next(const char *text, size_t n, size_t i) {
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
    /* 3: \p{N}, one character at a time */
    if (k == FS_UCLASS_NUMBER) return i + (size_t)l0;
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

static void encode_span(const fs_tokenizer *t, enc *x, const char *text, size_t len) {
    if (len == 0) return;
    char *norm = NULL;
    const unsigned char *s = (const unsigned char *)text;
    size_t n = len;
    if (!fs_unicode_nfc_quick(text, len)) {
        norm = fs_unicode_nfc(text, len, &n);
        s = (const unsigned char *)norm;
    }
    for (size_t i = 0; i < n;) {
        size_t end = fs_pretok_next((const char *)s, n, i);
        bpe_word(t, x, s + i, end - i);
        i = end;
    }
    free(norm);
}

/* The added token starting at s[i] (longest if several), or NULL. */
static const added_token *added_at(const fs_tokenizer *t, const char *s, size_t n, size_t i) {
    const added_token *best = NULL;
    for (int k = 0; k < t->n_added; k++) {
        const added_token *a = &t->added[k];
        if (a->len <= n - i && (!best || a->len > best->len) && memcmp(s + i, a->text, a->len) == 0) best = a;
    }
    return best;
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

int fs_tokenizer_encode(const fs_tokenizer *t, const char *text, size_t len, int **ids, int *n_ids, fs_err *e) {
    *ids = NULL;
    *n_ids = 0;
    size_t bad = utf8_check(text, len);
    if (bad != SIZE_MAX) return fs_errf(e, "invalid UTF-8 at byte %zu", bad);
    enc x = {0};
    if (len >= CACHE_MIN_INPUT) x.cache = fs_xcalloc(CACHE_SLOTS, sizeof *x.cache);
    size_t span = 0;
    for (size_t i = 0; i < len; i++) {
        if (!t->added_first[(unsigned char)text[i]]) continue;
        const added_token *a = added_at(t, text, len, i);
        if (!a) continue;
        encode_span(t, &x, text + span, i - span);
        push_id(&x, a->id);
        i += a->len - 1;
        span = i + 1;
    }
    encode_span(t, &x, text + span, len - span);
    free(x.sym);
    free(x.heap);
    free(x.cache);
    if (x.n_ids > (size_t)INT32_MAX) {
        free(x.ids);
        return fs_errf(e, "text too long");
    }
    *ids = x.ids ? x.ids : fs_xmalloc(sizeof(int));
    *n_ids = (int)x.n_ids;
    return 0;
}

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
