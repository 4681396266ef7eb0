/* unicode.h - the few Unicode facts the tokenizer needs: which code points
 * are letters (\p{L}), numbers (\p{N}) and white space (\s), every code
 * point's general category and simple case folding (for the pre-tokenizer
 * regexes, src/regex.c), and NFC normalization (the NFC normalizer).
 *
 * The data comes from the Unicode Character Database through the generated
 * src/unicode_tables.c (tools/gen_unicode.py; fs_ucd_version names the UCD
 * version). HF tokenizers gets the same facts from Oniguruma's tables (the
 * regex) and Rust's unicode-normalization crate (NFC); if their Unicode
 * version differs from ours, code points assigned in between can tokenize
 * differently. That is the only expected source of disagreement.
 *
 * Docs: docs/tokenizer.md
 */
#ifndef FS_UNICODE_H
#define FS_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Character classes of the pre-tokenizer regex. Disjoint by construction:
 * no White_Space code point is a letter or a number. */
enum {
    FS_UCLASS_OTHER = 0,
    FS_UCLASS_LETTER = 1, /* general category L*: Lu Ll Lt Lm Lo */
    FS_UCLASS_NUMBER = 2, /* general category N*: Nd Nl No */
    FS_UCLASS_SPACE = 3,  /* property White_Space (what \s means in Unicode regexes) */
};

/* ---- generated tables (src/unicode_tables.c) ----
 * Two-level lookup: value(cp) = stage2[stage1[cp >> 8]][cp & 255].
 * props byte: bits 0-1 the FS_UCLASS_*, bits 2-3 NFC_Quick_Check
 * (0 yes, 1 no, 2 maybe). */
typedef struct { uint32_t cp; uint16_t offset, len; } fs_ucd_decomp; /* full canonical decomposition */
typedef struct { uint64_t pair; uint32_t composite; } fs_ucd_comp;   /* pair = first << 21 | second */
extern const char fs_ucd_version[];
extern const uint8_t fs_ucd_props_stage1[0x1100];
extern const uint8_t fs_ucd_props_stage2[][256];
extern const uint8_t fs_ucd_ccc_stage1[0x1100];
extern const uint8_t fs_ucd_ccc_stage2[][256];
extern const fs_ucd_decomp fs_ucd_decomps[];
extern const uint32_t fs_ucd_decomp_pool[];
extern const fs_ucd_comp fs_ucd_comps[];
extern const size_t fs_ucd_n_decomps, fs_ucd_n_comps;
/* General category, same two-level shape; values are the FS_GC_* below. */
extern const uint8_t fs_ucd_gc_stage1[0x1100];
extern const uint8_t fs_ucd_gc_stage2[][256];
/* Simple case folding (CaseFolding.txt C + S): {cp, folded}, sorted by cp. */
extern const uint32_t fs_ucd_fold[][2];
extern const size_t fs_ucd_n_fold;

/* General categories, in tools/gen_unicode.py's GC_NAMES order (Cn, the
 * unassigned code points, is 0). The regex engine's \p{..} classes are
 * bit masks over these. */
enum {
    FS_GC_Cn, FS_GC_Lu, FS_GC_Ll, FS_GC_Lt, FS_GC_Lm, FS_GC_Lo, FS_GC_Mn, FS_GC_Mc, FS_GC_Me,
    FS_GC_Nd, FS_GC_Nl, FS_GC_No, FS_GC_Pc, FS_GC_Pd, FS_GC_Ps, FS_GC_Pe, FS_GC_Pi, FS_GC_Pf,
    FS_GC_Po, FS_GC_Sm, FS_GC_Sc, FS_GC_Sk, FS_GC_So, FS_GC_Zs, FS_GC_Zl, FS_GC_Zp, FS_GC_Cc,
    FS_GC_Cf, FS_GC_Cs, FS_GC_Co, FS_GC_COUNT
};

/* ---- queries ---- (cp must be <= 0x10FFFF) */
static inline int fs_unicode_class(uint32_t cp) {
    return fs_ucd_props_stage2[fs_ucd_props_stage1[cp >> 8]][cp & 255] & 3;
}
static inline int fs_unicode_is_letter(uint32_t cp) { return fs_unicode_class(cp) == FS_UCLASS_LETTER; }
static inline int fs_unicode_is_number(uint32_t cp) { return fs_unicode_class(cp) == FS_UCLASS_NUMBER; }
static inline int fs_unicode_is_space(uint32_t cp) { return fs_unicode_class(cp) == FS_UCLASS_SPACE; }
static inline int fs_unicode_ccc(uint32_t cp) {
    return fs_ucd_ccc_stage2[fs_ucd_ccc_stage1[cp >> 8]][cp & 255];
}

static inline int fs_unicode_gc(uint32_t cp) {
    return fs_ucd_gc_stage2[fs_ucd_gc_stage1[cp >> 8]][cp & 255];
}
/* Simple case folding: the folded code point (cp itself when it has none). */
uint32_t fs_unicode_fold(uint32_t cp);

/* Canonical composite of (a, b) (Hangul included), or 0 if none. */
uint32_t fs_unicode_compose(uint32_t a, uint32_t b);

/* Full canonical decomposition of cp into out (at most 4 code points;
 * Hangul syllables give 2 or 3 jamo). Returns the count (1 = unchanged). */
int fs_unicode_decompose(uint32_t cp, uint32_t out[4]);

/* 1 if s[0..len) (valid UTF-8) is certainly NFC already: every byte ASCII,
 * or the standard NFC quick check answers Yes. 0 means "run fs_unicode_nfc". */
int fs_unicode_nfc_quick(const char *s, size_t len);

/* NFC of s[0..len), which must be valid UTF-8 (the tokenizer checks first).
 * Returns a malloc'd buffer (NUL-terminated; *out_len bytes). NFC can grow
 * text (Unicode bounds it at 3x); in practice the length barely changes. */
char *fs_unicode_nfc(const char *s, size_t len, size_t *out_len);

#endif
