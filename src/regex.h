/* regex.h - a small backtracking regex engine for the pre-tokenizer
 * patterns of tokenizer.json files (Split's "Regex", ByteLevel's GPT-2
 * pattern), with the semantics HF `tokenizers` gets from Oniguruma:
 * leftmost-first (at each start position, alternatives and greedy
 * quantifiers are tried in order and the first path that reaches the end
 * wins), over Unicode code points of valid UTF-8 text.
 *
 * Supported: literals and escapes (\r \n \t \f \v \e \a \xHH \x{H..} \uHHHH,
 * escaped punctuation), . (any but \n), classes [...] / [^...] with ranges,
 * nested classes and escapes, \s \S \d \D \w \W, \p{..} \P{..} \p{^..} over
 * Unicode general categories (L Lu Ll Lt Lm Lo M Mn Mc Me N Nd Nl
 * No P Pc Pd Ps Pe Pi Pf Po S Sm Sc Sk So Z Zs Zl Zp C Cc Cf Cs Co Cn, and
 * the long names Letter, Mark, Number, Punctuation, Symbol, Separator,
 * Other), groups (...) (?:...), case-insensitive (?i:...) (?i) (?-i:...)
 * with Unicode simple case folding, lookahead (?=...) (?!...), quantifiers
 * ? * + {n} {n,} {n,m} and their lazy forms (??, *?, +?, {n,m}?), |.
 * Anything else (anchors, back references, lookbehind, possessive
 * quantifiers, atomic groups, scripts such as \p{Han}, class set
 * operations, \pL without braces, which Oniguruma reads as "pL", and (?i)
 * letter pairs that one character folds to, "ss" for ß) is a compile error
 * naming the construct and its offset.
 *
 * Matching never takes more than O(program size x text length) steps:
 * after a few thousand steps a match records every (instruction, position)
 * it has tried, and a state that failed once is never explored again.
 *
 * Docs: docs/tokenizer.md
 */
#ifndef FS_REGEX_H
#define FS_REGEX_H

#include <stddef.h>

#include "util.h"

typedef struct fs_regex fs_regex;

/* Compile pattern[0..len). On error returns -1 with e naming the construct
 * and its byte offset in the pattern. */
int fs_regex_compile(fs_regex **out, const char *pattern, size_t len, fs_err *e);
void fs_regex_free(fs_regex *re);

/* 1 if some text matches re with an empty match (e.g. "a*", "(?!x)"). */
int fs_regex_can_be_empty(const fs_regex *re);

/* Scratch memory for matching: the backtracking stack and the visited-state
 * set. Zero-initialise it; it grows as needed and is reused across calls;
 * fs_regex_scratch_free releases it. One scratch per thread. */
typedef struct {
    void *stack;
    size_t stack_cap;
    void *memo;
    size_t memo_cap, memo_used;
    unsigned memo_gen;
} fs_regex_scratch;
void fs_regex_scratch_free(fs_regex_scratch *s);

/* The leftmost match in text[0..n) that starts at or after byte `from`
 * (a character boundary): 1 with [*start, *end), or 0 if there is none.
 * Text that is not valid UTF-8 is matched byte by byte at the bad bytes
 * (a bad byte is a character that only negated classes match). */
int fs_regex_find(const fs_regex *re, fs_regex_scratch *s, const char *text, size_t n, size_t from,
                  size_t *start, size_t *end);

#endif
