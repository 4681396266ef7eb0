/* test_regex.c - the pre-tokenizer regex engine (src/regex.c):
 *   - matches of small patterns, written out by hand (leftmost-first
 *     alternation, greedy and lazy quantifiers, classes, \p{..}, (?i),
 *     lookahead, counted repetition);
 *   - compile errors: every unsupported construct is named, with its offset;
 *   - backtracking stays linear on patterns that explode without the
 *     visited-state set ((a+)+b);
 *   - the regex engine running Qwen's pattern and the hand-written scanner
 *     fs_pretok_next agree on random text;
 *   - the golden file tests/golden/regex/expected.jsonl: Oniguruma's own
 *     splits (through HF tokenizers, scripts/oracle_tokenizer.py --regex)
 *     of the real tokenizers' patterns and of one pattern per construct.
 *
 * Docs: docs/tokenizer.md
 */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "regex.h"
#include "test.h"
#include "tokenizer.h"
#include "util.h"

static const char QWEN[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
                           " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char LLAMA3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
                             " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* All matches of pattern in text, joined by '|' (text between matches is
 * left out). */
static void matches(const char *pattern, const char *text, char *out, size_t cap) {
    fs_regex *re;
    fs_err e;
    if (fs_regex_compile(&re, pattern, strlen(pattern), &e) < 0) {
        snprintf(out, cap, "ERROR %s", e.msg);
        return;
    }
    fs_regex_scratch s = {0};
    size_t n = strlen(text), pos = 0, st, en, o = 0;
    out[0] = 0;
    while (pos <= n && fs_regex_find(re, &s, text, n, pos, &st, &en)) {
        o += (size_t)snprintf(out + o, cap - o, "%s%.*s", o ? "|" : "", (int)(en - st), text + st);
        if (o >= cap) break;
        pos = en > st ? en : st + 1;
    }
    fs_regex_scratch_free(&s);
    fs_regex_free(re);
}

static void check(const char *pattern, const char *text, const char *want) {
    char got[1024];
    matches(pattern, text, got, sizeof got);
    CHECKF(strcmp(got, want) == 0, "/%s/ on \"%s\": got \"%s\", want \"%s\"", pattern, text, got, want);
}

static void test_matching(void) {
    check("a|ab", "ab", "a");                        /* leftmost-first, not longest */
    check("ab|a", "ab", "ab");
    check("a+?b", "aaab", "aaab");                   /* lazy still has to reach b */
    check("a+?", "aaa", "a|a|a");
    check("a{2,3}", "aaaaaaa", "aaa|aaa");
    check("a{2,3}?", "aaaaa", "aa|aa");
    check("a{2}", "aaaaa", "aa|aa");
    check("a{2,}", "a aa aaaa", "aa|aaaa");
    check("ba{,2}", "baaab", "baa|b");              /* {,n} is {0,n} */
    check("a{x", "a{x", "a{x");                      /* not a quantifier: literal */
    check("(?:ab)+", "ababa", "abab");
    check("(ab|a)(?=c)", "abcac", "ab|a");
    check("x(?!y)", "xyxz", "x");
    check("[a-c]+", "abcdcba", "abc|cba");
    check("[^a-c]+", "abcdcba", "d");
    check("[]a]+", "]a]b", "]a]");
    check("[\\-+]+", "a-+-b", "-+-");
    check("[^\\W\\d]+", "ab12_c", "ab|_c");
    check("\\d+", "x12\xd9\xa3y", "12\xd9\xa3");     /* Arabic-Indic three is Nd */
    check("\\s+(?!\\S)", "a   b", "  ");
    check("\\s*[\\r\\n]+", "a \n b", " \n");
    check("\\p{Lu}+", "abCDe\xc3\x89", "CD|\xc3\x89");
    check("\\P{L}+", "ab12cd", "12");
    check("\\p{^L}+", "ab12cd", "12");
    check("\\p{N}+", "x\xc2\xbd\xe2\x85\xab", "\xc2\xbd\xe2\x85\xab"); /* ½ (No), Ⅻ (Nl) */
    check("\\w+", "x\xc2\xb2 _", "x\xc2\xb2|_");            /* Oniguruma's \w: every number */
    check("[\\w]+", "x\xc2\xb2 _\xe2\x85\xab", "x|_\xe2\x85\xab"); /* ...but not ² in a class */
    check("\\p{P}+", "a.,b\xe2\x80\x94", ".,|\xe2\x80\x94");
    check("\\p{Sc}", "$5\xe2\x82\xac", "$|\xe2\x82\xac");
    check("(?i:abc)", "xAbCx", "AbC");
    check("(?i:s)", "s\xc5\xbfS", "s|\xc5\xbf|S");   /* ſ folds to s */
    check("(?i:k)", "k\xe2\x84\xaaK", "k|\xe2\x84\xaa|K"); /* KELVIN SIGN folds to k */
    check("(?i:[a-c]+)", "xABcx", "ABc");
    check("(?i)x+", "xXx", "xXx");
    check("a(?i:b)c", "aBc abC", "aBc");
    check("(?i:a(?-i:b))", "Ab AB", "Ab");
    check(".+", "ab\ncd", "ab|cd");                 /* . is not \n */
    check("\\x41+|\\x{4e2d}", "AA\xe4\xb8\xad", "AA|\xe4\xb8\xad");
    check("[[a-c]x]+", "axbyc", "axb|c");
    check("[^[^a]]+", "aab", "aa");
    check("(?:a|ab)(?:c|bcd)", "abcd", "abcd");     /* backtracks into the first group */
    check("'s|'t", "it's 'T", "'s");
    check(QWEN, "Hello world's 123", "Hello| world|'s| |1|2|3");
    check(QWEN, "a   b\n\n  c", "a|  | b|\n\n| | c");
}

static void check_error(const char *pattern, const char *want) {
    fs_regex *re = (fs_regex *)1;
    fs_err e = {{0}};
    int rc = fs_regex_compile(&re, pattern, strlen(pattern), &e);
    CHECKF(rc == -1 && re == NULL && strstr(e.msg, want), "/%s/: rc %d, message \"%s\", want \"%s\"", pattern, rc,
           e.msg, want);
}

static void test_errors(void) {
    check_error("(?<=a)b", "lookbehind (?<=...) / (?<!...) at offset 0");
    check_error("x(?<!a)b", "lookbehind (?<=...) / (?<!...) at offset 1");
    check_error("(?>a)", "atomic group");
    check_error("^a", "anchor at offset 0");
    check_error("a$", "anchor at offset 1");
    check_error("a++", "possessive quantifier at offset 2");
    check_error("a**", "nested quantifier at offset 2");
    check_error("*a", "nothing to repeat at offset 0");
    check_error("(a", "unbalanced parenthesis at offset 0");
    check_error("a)", "unbalanced parenthesis at offset 1");
    check_error("[abc", "unterminated character class at offset 0");
    check_error("[z-a]", "range out of order at offset 1");
    check_error("\\p{Han}", "unsupported property \\p{Han} at offset 0");
    check_error("\\p{L", "malformed \\p{...} at offset 0");
    check_error("\\b", "unsupported escape \\b at offset 0");
    check_error("\\pL", "\\p without braces");
    check_error("(?i:class)", "(?i) letters that a single character folds to");
    check_error("(?i:fix)", "(?i) letters that a single character folds to");
    check_error("a\\1", "unsupported escape \\1 at offset 1");
    check_error("[[:alpha:]]", "POSIX bracket");
    check_error("[a-z&&[^aeiou]]", "class intersection && at offset 4");
    check_error("(?m:a)", "unsupported group syntax (?m at offset 0");
    check_error("(?-m:a)", "unsupported group flag (only i)");
    check_error("(?P<n>a)", "unsupported group syntax (?P");
    check_error("(a*)*", "can match the empty string");
    check_error("a{3,2}", "m < n");
    check_error("a{1001}", "above 1000");
    check_error("\\", "ends with a backslash");
    check_error("\\x{110000}", "out of range");
    check_error("a\xff", "not valid UTF-8 at offset 1");
    /* deep nesting is refused before it can exhaust the parser's stack */
    char deep[300];
    memset(deep, '(', 150);
    memset(deep + 150, ')', 150);
    deep[299] = 0;
    check_error(deep, "nested too deeply");
    fs_regex *re;
    fs_err e;
    CHECK(fs_regex_compile(&re, "a*", 2, &e) == 0 && fs_regex_can_be_empty(re));
    fs_regex_free(re);
    CHECK(fs_regex_compile(&re, "(?!x)", 5, &e) == 0 && fs_regex_can_be_empty(re));
    fs_regex_free(re);
    CHECK(fs_regex_compile(&re, "a+|b?c", 6, &e) == 0 && !fs_regex_can_be_empty(re));
    fs_regex_free(re);
}

/* Without the visited-state set, (a+)+b on a's then c takes 2^n steps. */
static void test_no_blowup(void) {
    size_t n = 20000;
    char *text = malloc(n + 2);
    memset(text, 'a', n);
    text[n] = 'c';
    text[n + 1] = 0;
    fs_regex *re;
    fs_err e;
    CHECK(fs_regex_compile(&re, "(?:a+)+b", 8, &e) == 0);
    fs_regex_scratch s = {0};
    size_t st, en;
    double t0 = fs_now();
    CHECK(fs_regex_find(re, &s, text, n + 1, 0, &st, &en) == 0);
    double dt = fs_now() - t0;
    CHECKF(dt < 5.0, "(a+)+b on %zu bytes took %.2f s", n, dt);
    fs_regex_free(re);
    CHECK(fs_regex_compile(&re, "(?:a|aa)+(?=c)", 14, &e) == 0);
    CHECK(fs_regex_find(re, &s, text, n + 1, 0, &st, &en) == 1 && st == 0 && en == n);
    fs_regex_free(re);
    fs_regex_scratch_free(&s);
    free(text);
}

/* The regex engine on Qwen's (Llama 3's) pattern and fs_pretok_scan with
 * 1 (3) digits must cut random text the same way (the tokenizer uses the
 * scanner for those patterns). */
static void test_scanner_agrees(const char *pattern, int digits) {
    static const char *pool[] = {"a", "Z", "\xc3\xa9", "\xe4\xb8\xad", "1", "7", "42", "9", "\xd9\xa3", "\xc2\xbd", " ", "  ",
                                 "\t", "\n", "\r", "\r\n", "'", "'s", "'LL", "'\xc5\xbf", ".", "!", "-", "\xcc\x81",
                                 "\xc2\xa0", "\xe3\x80\x80", "\xc2\x85", "\xf0\x9f\x98\x80", "_", "\xe2\x80\x94"};
    fs_regex *re;
    fs_err e;
    CHECK(fs_regex_compile(&re, pattern, strlen(pattern), &e) == 0);
    fs_regex_scratch s = {0};
    fs_rng r;
    fs_rng_seed(&r, 17);
    int bad = 0;
    char text[512];
    for (int k = 0; k < 3000; k++) {
        size_t n = 0;
        int len = (int)(fs_rng_next(&r) % 40);
        for (int i = 0; i < len; i++) {
            const char *p = pool[fs_rng_next(&r) % (sizeof pool / sizeof pool[0])];
            memcpy(text + n, p, strlen(p));
            n += strlen(p);
        }
        for (size_t i = 0; i < n;) {
            size_t st, en, want = fs_pretok_scan(text, n, i, digits);
            if (!fs_regex_find(re, &s, text, n, i, &st, &en) || st != i || en != want) {
                if (bad++ < 5) fprintf(stderr, "scanner and regex differ at %zu of \"%.*s\"\n", i, (int)n, text);
                break;
            }
            i = en;
        }
    }
    CHECKF(bad == 0, "%d texts cut differently", bad);
    fs_regex_scratch_free(&s);
    fs_regex_free(re);
}

/* Patterns Oniguruma accepts and we refuse on purpose (named in regex.h). */
static int refusal_expected(const char *pattern) {
    static const char *ok[] = {"[a-z&&]+", "[^[:x]]", "\\pL+", "\\pN", "(?i:ss)"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(pattern, ok[i]) == 0) return 1;
    return 0;
}

/* Compare one list of pieces with ours. isolated: matches and the text
 * between them; else the matches alone. */
static int same_pieces(const fs_regex *re, fs_regex_scratch *s, const fs_json *text, const fs_json *want, int isolated) {
    const char *t = text->str;
    size_t n = text->len, pos = 0, st, en;
    const fs_json *w = want->child;
    int ok = 1;
#define EXPECT(a, b)                                                                                   \
    do {                                                                                               \
        if (!w || w->len != (b) - (a) || memcmp(w->str, t + (a), (b) - (a)) != 0) ok = 0;              \
        else w = w->next;                                                                              \
    } while (0)
    while (ok && pos < n && fs_regex_find(re, s, t, n, pos, &st, &en)) {
        if (isolated && st > pos) EXPECT(pos, st);
        if (en > st) EXPECT(st, en);
        pos = en > st ? en : st + 1;
    }
    if (ok && isolated && pos < n) EXPECT(pos, n);
#undef EXPECT
    return ok && w == NULL;
}

static void test_golden(void) {
    char *data;
    size_t len;
    fs_err e;
    const char *path = "tests/golden/regex/expected.jsonl";
    if (!fs_file_exists(path)) {
        printf("note: %s not found; the Oniguruma comparison is skipped\n", path);
        return;
    }
    if (fs_read_file(path, &data, &len, &e) < 0) {
        CHECKF(0, "%s", e.msg);
        return;
    }
    int n_patterns = 0, n_texts = 0, n_bad = 0, n_refused = 0;
    fs_regex_scratch s = {0};
    char *line = data, *nl;
    line = strchr(line, '\n') + 1; /* the header */
    for (; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) break;
        fs_json_doc doc;
        if (fs_json_parse(&doc, line, (size_t)(nl - line), &e) < 0) {
            CHECKF(0, "%s: %s", path, e.msg);
            break;
        }
        const fs_json *pat = fs_json_get(doc.root, "pattern");
        const fs_json *mt = fs_json_get(doc.root, "matches"), *iso = fs_json_get(doc.root, "isolated");
        fs_regex *re;
        int rc = fs_regex_compile(&re, pat->str, pat->len, &e);
        if (!mt) { /* Oniguruma refused it: so must we */
            CHECKF(rc < 0, "/%s/: Oniguruma refuses it (%s), we compile it", pat->str,
                   fs_json_string(fs_json_get(doc.root, "error")));
            if (rc == 0) fs_regex_free(re);
        } else if (rc < 0) {
            n_refused++;
            CHECKF(refusal_expected(pat->str), "/%s/: we refuse what Oniguruma accepts: %s", pat->str, e.msg);
        } else {
            n_patterns++;
            /* the texts are the oracle's input, in tests/golden/regex/cases.jsonl */
            const fs_json *texts = fs_json_get(doc.root, "texts");
            const fs_json *t = texts ? texts->child : NULL, *m = mt->child, *i = iso->child;
            for (; t && m && i; t = t->next, m = m->next, i = i->next) {
                n_texts++;
                if (!same_pieces(re, &s, t, m, 0) || !same_pieces(re, &s, t, i, 1)) {
                    if (n_bad++ < 10) fprintf(stderr, "regex golden: /%s/ differs on \"%s\"\n", pat->str, t->str);
                }
            }
            fs_regex_free(re);
        }
        fs_json_free(&doc);
    }
    CHECKF(n_bad == 0, "%d of %d texts differ from Oniguruma", n_bad, n_texts);
    CHECKF(n_patterns >= 80 && n_texts >= 8000, "only %d patterns, %d texts compared", n_patterns, n_texts);
    printf("regex golden: %d patterns, %d of %d texts split as Oniguruma does; %d patterns refused on purpose\n",
           n_patterns, n_texts - n_bad, n_texts, n_refused);
    fs_regex_scratch_free(&s);
    free(data);
}

int main(void) {
    test_matching();
    test_errors();
    test_no_blowup();
    test_scanner_agrees(QWEN, 1);
    test_scanner_agrees(LLAMA3, 3);
    test_golden();
    return TEST_SUMMARY();
}
