/* unicode.c - NFC normalization and code point lookups over the generated
 * UCD tables (src/unicode_tables.c).
 *
 * NFC (UAX #15) in three passes over code points:
 *   1. decompose: replace each character by its full canonical decomposition
 *      (table lookup; Hangul syllables by arithmetic, since their 11172
 *      decompositions follow one formula);
 *   2. reorder: within every run of non-starters (ccc != 0), stable-sort by
 *      canonical combining class, so "a + dot below + acute" and
 *      "a + acute + dot below" become the same sequence;
 *   3. compose: walk left to right; a character combines with the last
 *      starter if nothing between them "blocks" it (a character with ccc 0 or
 *      ccc >= its own) and the pair has a primary composite.
 * Most text is already NFC, so fs_unicode_nfc_quick answers that first from
 * the NFC_Quick_Check property and the tokenizer skips the three passes.
 *
 * Docs: docs/tokenizer.md
 */
#include "unicode.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7,
       LCOUNT = 19, VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static int nfc_qc(uint32_t cp) {
    return (fs_ucd_props_stage2[fs_ucd_props_stage1[cp >> 8]][cp & 255] >> 2) & 3;
}

uint32_t fs_unicode_compose(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    uint64_t key = ((uint64_t)a << 21) | b;
    size_t lo = 0, hi = fs_ucd_n_comps;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (fs_ucd_comps[mid].pair < key) lo = mid + 1;
        else hi = mid;
    }
    return lo < fs_ucd_n_comps && fs_ucd_comps[lo].pair == key ? fs_ucd_comps[lo].composite : 0;
}

uint32_t fs_unicode_fold(uint32_t cp) {
    size_t lo = 0, hi = fs_ucd_n_fold;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (fs_ucd_fold[mid][0] < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < fs_ucd_n_fold && fs_ucd_fold[lo][0] == cp ? fs_ucd_fold[lo][1] : cp;
}

int fs_unicode_decompose(uint32_t cp, uint32_t out[4]) {
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE;
        out[0] = LBASE + s / NCOUNT;
        out[1] = VBASE + (s % NCOUNT) / TCOUNT;
        if (s % TCOUNT == 0) return 2;
        out[2] = TBASE + s % TCOUNT;
        return 3;
    }
    size_t lo = 0, hi = fs_ucd_n_decomps;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (fs_ucd_decomps[mid].cp < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < fs_ucd_n_decomps && fs_ucd_decomps[lo].cp == cp) {
        const fs_ucd_decomp *d = &fs_ucd_decomps[lo];
        for (int i = 0; i < d->len; i++) out[i] = fs_ucd_decomp_pool[d->offset + i];
        return d->len;
    }
    out[0] = cp;
    return 1;
}

int fs_unicode_nfc_quick(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    int last_ccc = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            last_ccc = 0;
            i++;
            continue;
        }
        uint32_t cp;
        int n = fs_utf8_decode(s + i, len - i, &cp);
        if (n == 0) return 0;
        i += (size_t)n;
        int ccc = fs_unicode_ccc(cp);
        if (ccc != 0 && last_ccc > ccc) return 0;
        if (nfc_qc(cp) != 0) return 0;
        last_ccc = ccc;
    }
    return 1;
}

char *fs_unicode_nfc(const char *str, size_t len, size_t *out_len) {
    const unsigned char *s = (const unsigned char *)str;
    /* Pass 1: decompose into a code point buffer. No character yields more
     * than 1.5 code points per UTF-8 byte (ASCII: 1 per byte; the worst,
     * 2-byte characters such as U+01D5, give 3), so 2 * len needs no resize. */
    size_t cap = len * 2 + 4, n = 0;
    uint32_t *cp = fs_xmalloc(cap * sizeof *cp);
    for (size_t i = 0; i < len;) {
        uint32_t c;
        int k = fs_utf8_decode(s + i, len - i, &c);
        if (k == 0) { c = 0xFFFD; k = 1; } /* unreachable for valid input */
        i += (size_t)k;
        if (c < 0xC0) { cp[n++] = c; continue; } /* nothing below U+00C0 decomposes */
        uint32_t d[4];
        int m = fs_unicode_decompose(c, d);
        for (int j = 0; j < m; j++) cp[n++] = d[j];
    }
    /* Pass 2: canonical ordering, insertion sort inside non-starter runs
     * (runs are short: a few marks at most). */
    for (size_t i = 1; i < n; i++) {
        int ci = fs_unicode_ccc(cp[i]);
        if (ci == 0) continue;
        size_t j = i;
        uint32_t c = cp[i];
        while (j > 0) {
            int cj = fs_unicode_ccc(cp[j - 1]);
            if (cj == 0 || cj <= ci) break;
            cp[j] = cp[j - 1];
            j--;
        }
        cp[j] = c;
    }
    /* Pass 3: compose in place. `starter` is the index of the last starter
     * in the output; `last_ccc` the class of the last character written
     * after it (-1 when none was, i.e. the candidate is adjacent). */
    size_t out = 0;
    long starter = -1;
    int last_ccc = -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cp[i];
        int ccc = fs_unicode_ccc(c);
        if (starter >= 0 && (last_ccc == -1 || (last_ccc != 0 && last_ccc < ccc))) {
            uint32_t comp = fs_unicode_compose(cp[starter], c);
            if (comp) {
                cp[starter] = comp;
                continue;
            }
        }
        if (ccc == 0) {
            starter = (long)out;
            last_ccc = -1;
        } else {
            last_ccc = ccc;
        }
        cp[out++] = c;
    }
    char *res = fs_xmalloc(out * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < out; i++) o += (size_t)fs_utf8_encode(cp[i], res + o);
    res[o] = 0;
    free(cp);
    *out_len = o;
    return res;
}
