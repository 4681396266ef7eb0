/* test_tokenizer.c - Unicode tables, NFC, the pre-tokenizer scanner, BPE on
 * known strings, decode's U+FFFD rule, and the streaming decoder over every
 * golden case. Parts that need the real tokenizer.json ($FS_TOKENIZER_DIR,
 * default models/qwen3-tokenizer) are skipped with a note when it is absent.
 * The full HF comparison is tests/e2e_tokenizer.sh.
 *
 * Docs: docs/tokenizer.md
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "test.h"
#include "tokenizer.h"
#include "unicode.h"
#include "util.h"

static void test_classes(void) {
    CHECK(fs_unicode_is_letter('a') && fs_unicode_is_letter('Z'));
    CHECK(fs_unicode_is_letter(0xE9));     /* é */
    CHECK(fs_unicode_is_letter(0x4E2D));   /* 中 */
    CHECK(fs_unicode_is_letter(0xAC00));   /* 가, inside a UnicodeData First/Last range */
    CHECK(fs_unicode_is_letter(0x20000));  /* CJK Extension B */
    CHECK(fs_unicode_is_letter(0x02B0));   /* ʰ modifier letter (Lm) */
    CHECK(!fs_unicode_is_letter(0x0301));  /* combining acute is Mn, not L */
    CHECK(!fs_unicode_is_letter('_') && !fs_unicode_is_letter('1'));
    CHECK(fs_unicode_is_number('0') && fs_unicode_is_number('9'));
    CHECK(fs_unicode_is_number(0xB2));     /* ² (No) */
    CHECK(fs_unicode_is_number(0x216B));   /* Ⅻ (Nl) */
    CHECK(fs_unicode_is_number(0xBD));     /* ½ */
    CHECK(fs_unicode_is_number(0x0661));   /* Arabic-Indic one */
    CHECK(fs_unicode_is_number(0xFF11));   /* fullwidth 1 */
    CHECK(!fs_unicode_is_number(0x4E09));  /* 三 is a letter (Lo) */
    uint32_t spaces[] = {' ', '\t', '\n', '\v', '\f', '\r', 0x85, 0xA0, 0x1680, 0x2000, 0x200A,
                         0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
    for (size_t i = 0; i < sizeof spaces / sizeof spaces[0]; i++)
        CHECKF(fs_unicode_is_space(spaces[i]), "U+%04X", spaces[i]);
    CHECK(!fs_unicode_is_space(0x200B));   /* zero width space is not White_Space */
    CHECK(!fs_unicode_is_space(0xFEFF));
    CHECK(!fs_unicode_is_space(0x180E));
    CHECK(fs_unicode_class(0x10FFFF) == FS_UCLASS_OTHER);
    CHECK_EQ_INT(fs_unicode_ccc(0x0301), 230);
    CHECK_EQ_INT(fs_unicode_ccc(0x0323), 220);
    CHECK_EQ_INT(fs_unicode_ccc('a'), 0);
}

static void check_nfc(const char *in, const char *want) {
    size_t n;
    char *got = fs_unicode_nfc(in, strlen(in), &n);
    CHECKF(n == strlen(want) && memcmp(got, want, n) == 0, "NFC(%s) = %s, want %s", in, got, want);
    /* NFC is idempotent, and the quick check must never say "yes" wrongly. */
    size_t n2;
    char *again = fs_unicode_nfc(got, n, &n2);
    CHECK(n2 == n && memcmp(again, got, n) == 0);
    if (fs_unicode_nfc_quick(in, strlen(in))) CHECKF(strcmp(in, want) == 0, "quick check passed non-NFC %s", in);
    free(again);
    free(got);
}

static void test_nfc(void) {
    check_nfc("abc", "abc");
    check_nfc("e\xCC\x81", "\xC3\xA9");                         /* e + U+0301 -> é */
    check_nfc("cafe\xCC\x81!", "caf\xC3\xA9!");
    check_nfc("\xE2\x84\xAB", "\xC3\x85");                      /* U+212B ANGSTROM SIGN -> Å (singleton) */
    check_nfc("\xE2\x84\xA6", "\xCE\xA9");                      /* U+2126 OHM -> Ω */
    check_nfc("a\xCC\xA3\xCC\x82", "\xE1\xBA\xAD");             /* a + dot below + circumflex -> ậ */
    check_nfc("a\xCC\x82\xCC\xA3", "\xE1\xBA\xAD");             /* same after canonical reordering */
    check_nfc("\xE1\x84\x80\xE1\x85\xA1", "\xEA\xB0\x80");      /* jamo L V -> 가 */
    check_nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81"); /* L V T -> 각 */
    check_nfc("\xEA\xB0\x80\xE1\x86\xA8", "\xEA\xB0\x81");      /* LV + T -> LVT */
    check_nfc("\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC");      /* U+0958 is a composition exclusion */
    check_nfc("\xCD\x84", "\xCC\x88\xCC\x81");                  /* U+0344 -> U+0308 U+0301 (non-starter decomposition) */
    check_nfc("\xCC\x81", "\xCC\x81");                          /* a lone mark stays */
    check_nfc("e\xCC\x81\xCC\x81", "\xC3\xA9\xCC\x81");         /* the second acute is blocked */
    check_nfc("\xE1\xBA\x9B\xCC\xA3", "\xE1\xBA\x9B\xCC\xA3");  /* UAX #15 example: ẛ̣ stays */
    check_nfc("q\xCC\x87\xCC\xA3", "q\xCC\xA3\xCC\x87");        /* reorder, nothing composes */
    check_nfc("\xE3\x81\x8B\xE3\x82\x99", "\xE3\x81\x8C");      /* か + voiced mark -> が */
    CHECK(fs_unicode_nfc_quick("plain ascii", 11));
    CHECK(fs_unicode_nfc_quick("\xE4\xB8\xAD\xC3\xA9", 5));
    CHECK(!fs_unicode_nfc_quick("e\xCC\x81", 3));
}

/* Split s with the scanner and join the pieces with '|'. */
static void check_split(const char *s, const char *want) {
    char got[512];
    size_t n = strlen(s), o = 0;
    for (size_t i = 0; i < n;) {
        size_t end = fs_pretok_next(s, n, i);
        if (end <= i || end > n) {
            CHECKF(0, "scanner stuck at %zu in %s", i, s);
            return;
        }
        if (i) got[o++] = '|';
        memcpy(got + o, s + i, end - i);
        o += end - i;
        i = end;
    }
    got[o] = 0;
    CHECKF(strcmp(got, want) == 0, "split(\"%s\") = \"%s\", want \"%s\"", s, got, want);
}

static void test_pretokenizer(void) {
    check_split("Hello world", "Hello| world");
    check_split("a   b", "a|  | b");              /* \s+(?!\S) leaves one space for " b" */
    check_split("a  ", "a|  ");                   /* at the end nothing is left behind */
    check_split("  \tfoo", "  |\tfoo");           /* a tab can prefix a word */
    check_split("a \n b", "a| \n| b");            /* \s*[\r\n]+ ends at the last line break */
    check_split("x\n\n  ", "x|\n\n|  ");
    check_split("\r\n\r\nx", "\r\n\r\n|x");
    check_split("a.\r\n", "a|.\r\n");             /* punctuation takes trailing line breaks */
    check_split(" !!!\n\nx", " !!!\n\n|x");
    check_split("it's", "it|'s");
    check_split("IT'S", "IT|'S");
    check_split("We'Ll", "We|'Ll");
    check_split("'sdf", "'s|df");                 /* the contraction wins over the word */
    check_split("x'\xC5\xBF", "x|'\xC5\xBF");     /* 'ſ: long s folds to s */
    check_split("' s", "'| s");
    check_split("123abc", "1|2|3|abc");           /* digits one at a time */
    check_split("$100", "$|1|0|0");
    check_split("\xC2\xBFQu\xC3\xA9?", "\xC2\xBFQu\xC3\xA9|?");
    check_split("a\xC2\xA0" "b", "a|\xC2\xA0" "b"); /* NBSP is \s, and prefixes a word */
    check_split("x \xCC\x81y", "x| \xCC\x81|y");   /* a combining mark is "other" */
    check_split("\n", "\n");
    check_split(" ", " ");
    check_split("x\xC2\x85y", "x|\xC2\x85y");     /* U+0085 is \s */
    check_split("\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96", "\xE4\xBD\xA0\xE5\xA5\xBD|\xEF\xBC\x8C\xE4\xB8\x96");
}

/* Ids checked against an independent port of HF tokenizers during
 * development (and by e2e_tokenizer.sh against HF itself). */
static void check_encode(const fs_tokenizer *t, const char *s, const int *want, int n_want) {
    int *ids, n;
    fs_err e;
    int rc = fs_tokenizer_encode(t, s, strlen(s), &ids, &n, &e);
    CHECKF(rc == 0, "%s", e.msg);
    if (rc) return;
    int same = n == n_want;
    for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
    CHECKF(same, "encode(\"%s\"): got %d ids, first %d", s, n, n ? ids[0] : -1);
    free(ids);
}

#define ENC(t, s, ...) do { static const int w_[] = {__VA_ARGS__}; \
    check_encode(t, s, w_, (int)(sizeof w_ / sizeof w_[0])); } while (0)

static void check_decode(const fs_tokenizer *t, const char *bytes, size_t n, const char *want) {
    int ids[16];
    for (size_t i = 0; i < n; i++) {
        char one[2] = {bytes[i], 0};
        ids[i] = bytes[i] ? fs_tokenizer_token_id(t, one) : -1;
        CHECK(ids[i] >= 0);
    }
    char *text;
    size_t len;
    fs_err e;
    CHECK(fs_tokenizer_decode(t, ids, (int)n, &text, &len, &e) == 0);
    CHECKF(len == strlen(want) && memcmp(text, want, len) == 0, "decode gave %s, want %s", text, want);
    free(text);
}

/* Stream-decode ids one at a time; the pieces must each be valid UTF-8 and
 * join to the whole decode. */
static int stream_matches(const fs_tokenizer *t, const int *ids, int n) {
    char *whole;
    size_t whole_len;
    fs_err e;
    if (fs_tokenizer_decode(t, ids, n, &whole, &whole_len, &e) < 0) return 0;
    size_t cap = FS_DETOK_MAX_OUT(fs_tokenizer_max_token_bytes(t));
    char *piece = malloc(cap);
    char *joined = malloc(whole_len + 16);
    size_t o = 0;
    int ok = 1;
    fs_detok d;
    fs_detok_init(&d);
    for (int i = 0; i <= n && ok; i++) {
        size_t k = i < n ? fs_detok_push(&d, t, ids[i], piece, cap) : fs_detok_flush(&d, piece, cap);
        for (size_t j = 0; j < k;) {
            uint32_t cp;
            int m = fs_utf8_decode((const unsigned char *)piece + j, k - j, &cp);
            if (m == 0) { ok = 0; break; }
            j += (size_t)m;
        }
        if (o + k > whole_len) { ok = 0; break; }
        memcpy(joined + o, piece, k);
        o += k;
    }
    ok = ok && o == whole_len && memcmp(joined, whole, o) == 0;
    free(piece);
    free(joined);
    free(whole);
    return ok;
}

static void test_real(const fs_tokenizer *t) {
    CHECK_EQ_INT(fs_tokenizer_n_vocab(t), 151669);
    ENC(t, "Hello, world!", 9707, 11, 1879, 0);
    ENC(t, "I'm don't WE'LL", 40, 2776, 1513, 944, 19677, 6, 4086);
    ENC(t, "x = 12345;", 87, 284, 220, 16, 17, 18, 19, 20, 26);
    ENC(t, "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C", 108386, 3837, 99489);
    ENC(t, "<|im_start|>user\nhi<|im_end|>\n", 151644, 872, 198, 6023, 151645, 198);
    ENC(t, "a   b\n\n\n  c", 64, 256, 293, 1406, 220, 272);
    ENC(t, "cafe\xCC\x81", 924, 58858);              /* NFC first: same as "café" */
    ENC(t, "caf\xC3\xA9", 924, 58858);
    ENC(t, "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", 126317);
    ENC(t, "<think>\n</think>", 151667, 198, 151668);
    ENC(t, "<|im_start>", 27, 91, 318, 4906, 29);
    CHECK_EQ_INT(fs_tokenizer_token_id(t, "<|im_end|>"), 151645);
    CHECK_EQ_INT(fs_tokenizer_token_id(t, "Hello"), 9707);
    CHECK_EQ_INT(fs_tokenizer_token_id(t, "no such token, surely"), -1);
    CHECK(fs_tokenizer_is_special(t, 151645) && !fs_tokenizer_is_special(t, 151667) && !fs_tokenizer_is_special(t, 9707));
    size_t len;
    const char *b = fs_tokenizer_token_bytes(t, 151644, &len);
    CHECK(b && len == 12 && memcmp(b, "<|im_start|>", 12) == 0);
    CHECK(fs_tokenizer_token_bytes(t, 151669, &len) == NULL && fs_tokenizer_token_bytes(t, -1, &len) == NULL);

    int *ids, n;
    fs_err e;
    CHECK(fs_tokenizer_encode(t, "a\xFF" "b", 3, &ids, &n, &e) == -1 && strstr(e.msg, "UTF-8"));
    CHECK(fs_tokenizer_encode(t, "\xED\xA0\x80", 3, &ids, &n, &e) == -1); /* a surrogate */
    CHECK(fs_tokenizer_encode(t, "", 0, &ids, &n, &e) == 0 && n == 0);
    free(ids);
    int bad = 151669;
    char *text;
    CHECK(fs_tokenizer_decode(t, &bad, 1, &text, &len, &e) == -1);

    /* U+FFFD per maximal subpart, as Python's errors="replace". */
    check_decode(t, "\xE2\x82" "A", 3, "\xEF\xBF\xBD" "A");
    check_decode(t, "\xF0\x80\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    check_decode(t, "\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    check_decode(t, "\xF0\x9F\x98", 3, "\xEF\xBF\xBD");
    check_decode(t, "\xFF\xC3\xA9", 3, "\xEF\xBF\xBD\xC3\xA9");
    check_decode(t, "\xC3" "\xC3\xA9", 3, "\xEF\xBF\xBD\xC3\xA9");

    /* Streaming: byte tokens that split characters, then every golden case. */
    int split[] = {fs_tokenizer_token_id(t, "\xF0"), fs_tokenizer_token_id(t, "\x9F"), fs_tokenizer_token_id(t, "\x98"),
                   fs_tokenizer_token_id(t, "\x80"), fs_tokenizer_token_id(t, "\xE2"), fs_tokenizer_token_id(t, "x"),
                   fs_tokenizer_token_id(t, "\xC3")};
    CHECK(stream_matches(t, split, 7));
    char *data;
    size_t dlen;
    if (fs_read_file("tests/golden/tokenizer/cases.jsonl", &data, &dlen, &e) < 0) {
        CHECKF(0, "%s", e.msg);
        return;
    }
    /* All cases joined by <|endoftext|>: one big input (which turns on the
     * BPE word cache) must give exactly the per-case ids, since an added
     * token ends every pre-token span. */
    char *joined = malloc(dlen * 4 + 64);
    size_t jn = 0;
    int *concat = NULL, n_concat = 0, cap_concat = 0;
    int n_cases = 0, n_ok = 0;
    for (char *line = data, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line) - 1;
        fs_json_doc doc;
        if (fs_json_parse(&doc, line, (size_t)(nl - line + 1), &e) < 0) {
            CHECKF(0, "cases.jsonl: %s", e.msg);
            break;
        }
        n_cases++;
        memcpy(joined + jn, doc.root->str, doc.root->len);
        jn += doc.root->len;
        memcpy(joined + jn, "<|endoftext|>", 13);
        jn += 13;
        if (fs_tokenizer_encode(t, doc.root->str, doc.root->len, &ids, &n, &e) == 0) {
            n_ok += stream_matches(t, ids, n);
            if (n_concat + n + 1 > cap_concat) {
                cap_concat = (n_concat + n + 1) * 2;
                concat = realloc(concat, (size_t)cap_concat * sizeof *concat);
            }
            memcpy(concat + n_concat, ids, (size_t)n * sizeof *ids);
            n_concat += n;
            concat[n_concat++] = 151643;
            free(ids);
        }
        fs_json_free(&doc);
    }
    CHECKF(n_cases >= 350 && n_ok == n_cases, "streaming matched %d of %d cases", n_ok, n_cases);
    CHECK(jn > 16384);
    CHECK(fs_tokenizer_encode(t, joined, jn, &ids, &n, &e) == 0);
    CHECKF(n == n_concat && memcmp(ids, concat, (size_t)n * sizeof *ids) == 0,
           "joined cases: %d ids, per-case total %d", n, n_concat);
    free(ids);
    free(concat);
    free(joined);
    free(data);
}

/* ---- the pipeline, on small hand-made tokenizer.json files -------------- */

/* A byte-level tokenizer.json: ids 0..255 are the bytes (spelled in GPT-2's
 * alphabet), 256 "ab" (merge a b), 257 " a" (merge Ġ a); `pipeline` is the
 * rest of the object's members ("normalizer": ..., "added_tokens": ...),
 * `model_extra` more members of "model". Returns malloc'd text. */
static char *mini_json(const char *pipeline, const char *model_extra) {
    size_t cap = 16384 + strlen(pipeline) + strlen(model_extra), o = 0;
    char *j = malloc(cap);
    o += (size_t)snprintf(j + o, cap - o, "{%s%s\"model\": {\"type\": \"BPE\", %s%s\"vocab\": {", pipeline,
                          *pipeline ? ", " : "", model_extra, *model_extra ? ", " : "");
    int next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        char u[4];
        int n = fs_utf8_encode(printable ? (uint32_t)b : (uint32_t)next++, u);
        o += (size_t)snprintf(j + o, cap - o, "%s\"%s%.*s\": %d", b ? ", " : "", (b == '"' || b == '\\') ? "\\" : "",
                              n, u, b);
    }
    o += (size_t)snprintf(j + o, cap - o, ", \"ab\": 256, \"\xC4\xA0" "a\": 257}, \"merges\": [\"a b\", \"\xC4\xA0 a\"]}}");
    return j;
}

#define BL "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}"
#define DEC "\"decoder\": " BL

/* Encode text with the tokenizer built from pipeline (+ model_extra);
 * compare the ids with want[0..n_want) (add_special as given). */
static void check_mini(const char *pipeline, const char *model_extra, const char *text, int add_special,
                       const int *want, int n_want) {
    char *json = mini_json(pipeline, model_extra);
    fs_tokenizer *t;
    fs_err e;
    int rc = fs_tokenizer_parse(&t, json, strlen(json), "mini.json", &e);
    free(json);
    CHECKF(rc == 0, "%s", e.msg);
    if (rc) return;
    int *ids, n;
    rc = fs_tokenizer_encode_opt(t, text, strlen(text), add_special, &ids, &n, &e);
    CHECKF(rc == 0, "%s", e.msg);
    int same = rc == 0 && n == n_want;
    for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
    if (!same) {
        fprintf(stderr, "  \"%s\" -> ", text);
        for (int i = 0; rc == 0 && i < n; i++) fprintf(stderr, "%d ", ids[i]);
        fputc('\n', stderr);
    }
    CHECKF(same, "pipeline {%s} on \"%s\"", pipeline, text);
    if (rc == 0) free(ids);
    fs_tokenizer_free(t);
}
#define MINI(pipeline, extra, text, special, ...) do { static const int w_[] = {__VA_ARGS__}; \
    check_mini(pipeline, extra, text, special, w_, (int)(sizeof w_ / sizeof w_[0])); } while (0)

static void test_pipeline(void) {
    /* no split: "ab" merges; a Split on "b" keeps them apart */
    MINI("\"pre_tokenizer\": " BL ", " DEC, "", "ab", 0, 256);
    MINI("\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
         "{\"Regex\": \"b\"}, \"behavior\": \"Isolated\", \"invert\": false}, " BL "]}, " DEC, "", "ab", 0, 'a', 'b');
    /* Split behaviours on "xaby" with the delimiter "b" (a|b apart is 97 98,
     * together 256) */
    static const char *split_pre = "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
                                   "\"Split\", \"pattern\": {\"String\": \"%s\"}, \"behavior\": \"%s\", \"invert\": %s}, "
                                   BL "]}, " DEC;
    char pl[1024];
    snprintf(pl, sizeof pl, split_pre, "b", "Removed", "false");
    MINI(pl, "", "xaby", 0, 'x', 'a', 'y');
    snprintf(pl, sizeof pl, split_pre, "b", "MergedWithPrevious", "false");
    MINI(pl, "", "xaby", 0, 'x', 256, 'y');
    snprintf(pl, sizeof pl, split_pre, "a", "MergedWithNext", "false");
    MINI(pl, "", "xaby", 0, 'x', 256, 'y');
    snprintf(pl, sizeof pl, split_pre, "x", "MergedWithNext", "true"); /* invert: "aby" is the match */
    MINI(pl, "", "xaby", 0, 'x', 256, 'y');
    snprintf(pl, sizeof pl, split_pre, "a", "Removed", "true");       /* invert: only the a's stay */
    MINI(pl, "", "xaaby", 0, 'a', 'a');
    /* Digits: individual (1|2|3) or contiguous (123 as one piece) - seen
     * through ignore_merges, which takes a piece that is a vocab entry whole */
    MINI("\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", "
         "\"individual_digits\": true}, " BL "]}, " DEC, "", "a12b", 0, 'a', '1', '2', 'b');
    MINI("\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
         "{\"Regex\": \"\\\\s\"}, \"behavior\": \"Isolated\", \"invert\": false}, " BL "]}, " DEC,
         "\"ignore_merges\": true", "ab ab", 0, 256, ' ', 256);
    /* ByteLevel's add_prefix_space: "a" becomes " a" (257), each piece */
    MINI("\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": false}, " DEC, "",
         "a", 0, 257);
    MINI("\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": true}, " DEC, "",
         "a.a", 0, 257, '.', 'a'); /* the prefix goes on before the split */
    /* the post-processor: add_special adds the template's tokens */
    static const char *tmpl = "\"added_tokens\": [{\"id\": 258, \"content\": \"<s>\", \"special\": true, \"normalized\": "
                              "false}], \"pre_tokenizer\": " BL ", " DEC ", \"post_processor\": {\"type\": \"Sequence\", "
                              "\"processors\": [" BL ", {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": "
                              "{\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, "
                              "{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}], \"special_tokens\": {\"<s>\": "
                              "{\"id\": \"<s>\", \"ids\": [258], \"tokens\": [\"<s>\"]}}}]}";
    MINI(tmpl, "", "ab", 1, 258, 256, 258);
    MINI(tmpl, "", "ab", 0, 256);
    MINI(tmpl, "", "", 1, 258, 258);
    /* added-token flags */
    static const char *flags = "\"added_tokens\": ["
        "{\"id\": 258, \"content\": \"<l>\", \"lstrip\": true, \"special\": true, \"normalized\": false}, "
        "{\"id\": 259, \"content\": \"<r>\", \"rstrip\": true, \"special\": true, \"normalized\": false}, "
        "{\"id\": 260, \"content\": \"wd\", \"single_word\": true, \"special\": false, \"normalized\": false}, "
        "{\"id\": 261, \"content\": \"e\\u0301\", \"special\": false, \"normalized\": true}], "
        "\"normalizer\": {\"type\": \"NFC\"}, \"pre_tokenizer\": " BL ", " DEC;
    MINI(flags, "", "x \t<l>y", 0, 'x', 258, 'y');
    MINI(flags, "", "x<r> \ny", 0, 'x', 259, 'y');
    MINI(flags, "", "<r> <l>", 0, 259, 258);
    MINI(flags, "", "a wd.", 0, 'a', ' ', 260, '.');
    MINI(flags, "", "awd wdb", 0, 'a', 'w', 'd', ' ', 'w', 'd', 'b'); /* next to a word character: plain text */
    MINI(flags, "", "\xC3\xA9", 0, 261);                           /* é: the token's NFC */
    MINI(flags, "", "e\xCC\x81" "e", 0, 261, 'e');                /* decomposed text is normalized first */
}

/* What a tokenizer.json asks for and we do not implement is refused by name. */
static void check_refused(const char *pipeline, const char *model_extra, const char *want) {
    char *json = mini_json(pipeline, model_extra);
    fs_tokenizer *t = (fs_tokenizer *)1;
    fs_err e = {{0}};
    int rc = fs_tokenizer_parse(&t, json, strlen(json), "bad.json", &e);
    free(json);
    CHECKF(rc == -1 && t == NULL && strstr(e.msg, want) && strncmp(e.msg, "bad.json: ", 10) == 0,
           "got \"%s\", want \"%s\"", e.msg, want);
}

static void test_refused(void) {
    check_refused("\"pre_tokenizer\": " BL ", " DEC ", \"normalizer\": {\"type\": \"NFKC\"}", "",
                  "normalizer NFKC is not supported (supported: NFC, Sequence)");
    check_refused("\"pre_tokenizer\": " BL ", " DEC ", \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": "
                  "[{\"type\": \"NFC\"}, {\"type\": \"Lowercase\"}]}", "", "normalizer Lowercase is not supported");
    check_refused(DEC, "", "pre_tokenizer is missing");
    check_refused("\"pre_tokenizer\": {\"type\": \"Metaspace\"}, " DEC, "", "pre_tokenizer Metaspace is not supported");
    check_refused("\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Whitespace\"}]}, " DEC,
                  "", "pre_tokenizer Whitespace is not supported");
    check_refused("\"pre_tokenizer\": {\"type\": \"Digits\"}, " DEC, "", "pre_tokenizer has no ByteLevel step");
    check_refused("\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [" BL ", {\"type\": \"Digits\"}]}, "
                  DEC, "", "pre_tokenizer Digits after ByteLevel is not supported");
    check_refused("\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                  "{\"Regex\": \"a(?<=b)\"}, \"behavior\": \"Isolated\"}, " BL "]}, " DEC, "",
                  "pre_tokenizer Split: regex: unsupported lookbehind (?<=...) / (?<!...) at offset 1");
    check_refused("\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                  "{\"Regex\": \"a*\"}, \"behavior\": \"Isolated\"}, " BL "]}, " DEC, "",
                  "pre_tokenizer Split: the pattern can match the empty string");
    check_refused("\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                  "{\"Regex\": \"a\"}, \"behavior\": \"Sideways\"}, " BL "]}, " DEC, "",
                  "pre_tokenizer Split: behavior Sideways is not supported");
    check_refused("\"pre_tokenizer\": " BL, "", "decoder is missing");
    check_refused("\"pre_tokenizer\": " BL ", \"decoder\": {\"type\": \"WordPiece\"}", "",
                  "decoder WordPiece is not supported");
    check_refused("\"pre_tokenizer\": " BL ", " DEC ", \"post_processor\": {\"type\": \"RobertaProcessing\"}", "",
                  "post_processor RobertaProcessing is not supported");
    check_refused("\"pre_tokenizer\": " BL ", " DEC ", \"post_processor\": {\"type\": \"TemplateProcessing\", "
                  "\"single\": [{\"SpecialToken\": {\"id\": \"<x>\"}}, {\"Sequence\": {\"id\": \"A\"}}], "
                  "\"special_tokens\": {}}", "", "special token <x> has no ids");
    check_refused("\"pre_tokenizer\": " BL ", " DEC, "\"byte_fallback\": true", "model.byte_fallback is not supported");
    check_refused("\"pre_tokenizer\": " BL ", " DEC, "\"dropout\": 0.1", "model.dropout is not supported");
    check_refused("\"pre_tokenizer\": " BL ", " DEC, "\"continuing_subword_prefix\": \"##\"",
                  "model.continuing_subword_prefix is not supported");
    check_refused("\"pre_tokenizer\": " BL ", " DEC ", \"added_tokens\": [{\"id\": 258, \"content\": \"<s>\", "
                  "\"lstrip\": \"yes\"}]", "", "added_tokens[].lstrip is not true or false");
    check_refused("\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": 1}, " DEC, "",
                  "pre_tokenizer ByteLevel.use_regex is not true or false");
    check_refused("\"pre_tokenizer\": {\"type\": \"M\\u0001x\"}, " DEC, "", "pre_tokenizer M?x is not supported");
    /* HF re-derives added tokens' ids: "ab" is vocab id 256, a new one gets 258 */
    check_refused("\"pre_tokenizer\": " BL ", " DEC ", \"added_tokens\": [{\"id\": 300, \"content\": \"ab\"}]", "",
                  "added token 300 (ab): HF tokenizers would give it id 256");
    check_refused("\"pre_tokenizer\": " BL ", " DEC ", \"added_tokens\": [{\"id\": 259, \"content\": \"<s>\"}]", "",
                  "added token 259 (<s>): HF tokenizers would give it id 258");
}

/* fs_tokenizer_parse reads tokenizer.json's text from memory, as
 * fs_tokenizer_load does from the file (the shipped tiny model's, so no
 * download). */
static void test_parse(void) {
    fs_tokenizer *t;
    fs_err e = {{0}};
    int rc = fs_tokenizer_load(&t, "models/tiny", &e);
    CHECKF(rc == 0, "%s", e.msg);
    if (rc) return;
    int n = fs_tokenizer_n_vocab(t);
    CHECK(n > 256);
    fs_tokenizer_free(t);

    char *text;
    size_t len;
    CHECK(fs_read_file("models/tiny/tokenizer.json", &text, &len, &e) == 0);
    CHECK(fs_tokenizer_parse(&t, text, len, "tiny", &e) == 0 && fs_tokenizer_n_vocab(t) == n);
    fs_tokenizer_free(t);
    CHECK(fs_tokenizer_parse(&t, text, len / 2, "cut.json", &e) == -1 && t == NULL);
    CHECKF(strncmp(e.msg, "cut.json: JSON error at byte", 28) == 0, "%s", e.msg);
    free(text);
}

/* tokenizer.json that is a directory or a FIFO is named as such, and the
 * FIFO is not opened (that would wait for a writer: alarm() guards it). */
static void test_not_regular(void) {
    char dir[256], path[300];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/fs_test_tok_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    fs_tokenizer *t;
    fs_err e = {{0}};
    alarm(30);
    CHECK(mkfifo(path, 0600) == 0);
    CHECK(fs_tokenizer_load(&t, dir, &e) == -1 && t == NULL);
    CHECKF(strstr(e.msg, "tokenizer.json is a FIFO (named pipe), not a regular file") != NULL, "%s", e.msg);
    CHECK(fs_tokenizer_load(&t, path, &e) == -1 && strstr(e.msg, "is a FIFO"));
    unlink(path);
    CHECK(mkdir(path, 0700) == 0);
    CHECK(fs_tokenizer_load(&t, dir, &e) == -1);
    CHECKF(strstr(e.msg, "tokenizer.json is a directory, not a regular file") != NULL, "%s", e.msg);
    rmdir(path);
    CHECK(fs_tokenizer_load(&t, dir, &e) == -1 && strstr(e.msg, "tokenizer.json: No such file"));
    alarm(0);
    rmdir(dir);
}

int main(void) {
    test_classes();
    test_parse();
    test_not_regular();
    test_nfc();
    test_pretokenizer();
    test_pipeline();
    test_refused();
    const char *dir = getenv("FS_TOKENIZER_DIR");
    if (!dir || !*dir) dir = "models/qwen3-tokenizer";
    char path[1024];
    fs_path_join(path, sizeof path, dir, "tokenizer.json");
    if (!fs_file_exists(path)) {
        printf("note: %s not found; skipping the real-tokenizer tests (make tokenizer)\n", path);
    } else {
        fs_tokenizer *t;
        fs_err e;
        double t0 = fs_now();
        int rc = fs_tokenizer_load(&t, dir, &e);
        CHECKF(rc == 0, "%s", rc ? e.msg : "");
        if (rc == 0) {
            printf("tokenizer loaded in %.3f s\n", fs_now() - t0);
            test_real(t);
            fs_tokenizer_free(t);
        }
        CHECK(fs_tokenizer_load(&t, "/nonexistent/dir", &e) == -1 && t == NULL);
    }
    return TEST_SUMMARY();
}
