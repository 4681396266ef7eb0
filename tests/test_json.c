/* test_json.c - the strict JSON parser: valid documents, every kind of
 * invalid one (with the exact error position), unicode escapes, numbers,
 * nesting limits, the string writer, and a timed parse of the real Qwen3
 * tokenizer.json when it is present.
 *
 * Docs: docs/weights.md
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static int parses(const char *s) {
    fs_json_doc d;
    fs_err e;
    int ok = fs_json_parse(&d, s, strlen(s), &e) == 0;
    if (ok) fs_json_free(&d);
    return ok;
}

/* Invalid input must fail, and the message must contain `where`
 * (e.g. "byte 5 (line 1, column 6)") and `what`. */
static void check_bad(const char *s, size_t len, const char *where, const char *what) {
    fs_json_doc d;
    fs_err e = {{0}};
    int rc = fs_json_parse(&d, s, len, &e);
    CHECKF(rc == -1, "accepted invalid JSON: %s", s);
    if (rc == 0) {
        fs_json_free(&d);
        return;
    }
    CHECKF(strstr(e.msg, where) != NULL, "input %s: message \"%s\" lacks \"%s\"", s, e.msg, where);
    CHECKF(strstr(e.msg, what) != NULL, "input %s: message \"%s\" lacks \"%s\"", s, e.msg, what);
}
#define BAD(s, where, what) check_bad(s, strlen(s), where, what)

static void test_valid(void) {
    const char *ok[] = {
        "null", "true", "false", "0", "-0", "1", "-1", "1.5", "1e10", "1E+10", "1e-10", "-0.0e0",
        "\"\"", "\"abc\"", "[]", "{}", "[1,2,3]", " \t\r\n[ 1 , 2 ] \n", "{\"a\":1,\"b\":[true,null]}",
        "[[[[[]]]]]", "{\"\":0}", "\"\\u0000\"", "\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"", "\"\xc3\xa9\"",
        "\"\xf0\x9f\x98\x80\"", "123456789012345678901234567890", "1e308", "1e-400",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) CHECKF(parses(ok[i]), "rejected valid JSON: %s", ok[i]);
}

static void test_invalid(void) {
    BAD("", "byte 0 (line 1, column 1)", "unexpected end of input");
    BAD("   ", "byte 3 (line 1, column 4)", "unexpected end");
    BAD("[1,2,]", "byte 5 (line 1, column 6)", "trailing comma in array");
    BAD("{\"a\":1,}", "byte 7 (line 1, column 8)", "trailing comma in object");
    BAD("{\"a\" 1}", "byte 5 (line 1, column 6)", "expected ':'");
    BAD("{1:2}", "byte 1 (line 1, column 2)", "expected a string key");
    BAD("[1 2]", "byte 3 (line 1, column 4)", "expected ',' or ']'");
    BAD("{\"a\":1 \"b\":2}", "byte 7", "expected ',' or '}'");
    BAD("01", "byte 1 (line 1, column 2)", "leading zero");
    BAD("-01", "byte 2", "leading zero");
    BAD("+1", "byte 0", "unexpected character");
    BAD("1.", "byte 2", "after '.'");
    BAD(".5", "byte 0", "unexpected character");
    BAD("1e", "byte 2", "exponent");
    BAD("1e+", "byte 3", "exponent");
    BAD("-", "byte 1", "expected a digit");
    BAD("NaN", "byte 0", "NaN and Infinity");
    BAD("Infinity", "byte 0", "NaN and Infinity");
    BAD("-Infinity", "byte 1", "expected a digit");
    BAD("1e400", "byte 0", "out of range");
    BAD("-1e400", "byte 0", "out of range");
    BAD("tru", "byte 0", "invalid literal");
    BAD("nul", "byte 0", "invalid literal");
    BAD("[true false]", "byte 6", "expected ',' or ']'");
    BAD("1 2", "byte 2 (line 1, column 3)", "trailing characters");
    BAD("{} x", "byte 3", "trailing characters");
    BAD("[1]\n\n  ]", "byte 7 (line 3, column 3)", "trailing characters");
    BAD("\"abc", "byte 0", "unterminated string");
    BAD("\"ab\\", "byte 0", "unterminated string");
    BAD("\"a\tb\"", "byte 2 (line 1, column 3)", "control character");
    BAD("\"a\nb\"", "byte 2", "control character");
    BAD("\"\\x\"", "byte 1", "invalid escape");
    BAD("\"\\u12\"", "byte 1", "4 hex digits");
    BAD("\"\\u12g4\"", "byte 1", "4 hex digits");
    BAD("\"ab\\ud800\"", "byte 3", "lone high surrogate");
    BAD("\"\\ud800\\u0041\"", "byte 1", "lone high surrogate");
    BAD("\"\\ud800x\"", "byte 1", "lone high surrogate");
    BAD("\"\\udc00\"", "byte 1", "lone low surrogate");
    BAD("\"\xff\"", "byte 1", "invalid UTF-8");
    BAD("\"\xc3\"", "byte 1", "invalid UTF-8");
    BAD("\"\xc0\xaf\"", "byte 1", "invalid UTF-8");             /* overlong '/' */
    BAD("\"\xed\xa0\x80\"", "byte 1", "invalid UTF-8");         /* encoded surrogate */
    BAD("\xef\xbb\xbf{}", "byte 0", "unexpected character");    /* BOM */
    BAD("{\"a\":}", "byte 5", "unexpected closing bracket");
    BAD("[", "byte 1", "unexpected end of input");
    BAD("[1,", "byte 3", "unexpected end of input");
    BAD("{\"a\":1", "byte 6", "unexpected end of input in object");
    BAD("{\"a\"", "byte 4", "expected ':'");
    BAD("// c\n1", "byte 0", "unexpected character");
    BAD("'a'", "byte 0", "unexpected character");
    BAD("{\"a\":1}\n{\"line2\" x", "line 2, column 1", "trailing characters");
    /* NUL bytes inside the text (not in a string) are stray bytes. */
    check_bad("[1,\0]", 5, "byte 3", "unexpected character");
    check_bad("\"a\0\"", 4, "byte 2", "control character");
}

static void test_strings(void) {
    fs_json_doc d;
    fs_err e;
    const char *s = "[\"\\u00e9\\u4e2d\\ud83d\\ude00\\u0000x\", \"\\uD834\\uDD1E\", \"caf\xc3\xa9\", \"\\\"\\\\\\/\"]";
    CHECK(fs_json_parse(&d, s, strlen(s), &e) == 0);
    const fs_json *a = fs_json_index(d.root, 0);
    CHECK(fs_json_is(a, FS_JSON_STRING));
    /* é = C3 A9, 中 = E4 B8 AD, 😀 = F0 9F 98 80, then NUL, x */
    const char want[] = "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\0x";
    CHECK_EQ_INT(a->len, sizeof want - 1);
    CHECK(memcmp(a->str, want, sizeof want - 1) == 0);
    CHECK_STR(fs_json_string(fs_json_index(d.root, 1)), "\xf0\x9d\x84\x9e"); /* U+1D11E, uppercase hex */
    CHECK_STR(fs_json_string(fs_json_index(d.root, 2)), "caf\xc3\xa9");
    CHECK_STR(fs_json_string(fs_json_index(d.root, 3)), "\"\\/");
    CHECK(fs_json_index(d.root, 4) == NULL);
    CHECK_EQ_INT(d.root->len, 4);
    fs_json_free(&d);
}

static void test_numbers(void) {
    fs_json_doc d;
    fs_err e;
    const char *s = "[0, -0, 1.5e3, -2.5E-2, 9007199254740993, 1e308, 1e-400, 12345678901234567890123, 3.0, 1e2]";
    CHECK(fs_json_parse(&d, s, strlen(s), &e) == 0);
    CHECK(fs_json_number_or(fs_json_index(d.root, 0), 7) == 0);
    double nz = fs_json_number_or(fs_json_index(d.root, 1), 7);
    CHECK(nz == 0 && signbit(nz)); /* -0 keeps its sign */
    CHECK(fs_json_number_or(fs_json_index(d.root, 2), 0) == 1500);
    CHECK(fs_json_number_or(fs_json_index(d.root, 3), 0) == -0.025);
    CHECK(fs_json_number_or(fs_json_index(d.root, 4), 0) == 9007199254740992.0); /* rounds to nearest double */
    CHECK(fs_json_number_or(fs_json_index(d.root, 5), 0) == 1e308);
    CHECK(fs_json_number_or(fs_json_index(d.root, 6), 1) == 0);
    CHECK_NEAR(fs_json_number_or(fs_json_index(d.root, 7), 0), 1.2345678901234568e22, 1e7);
    int64_t x = -1;
    CHECK(fs_json_int(fs_json_index(d.root, 8), 0, 10, &x) && x == 3); /* 3.0 is an integer value */
    CHECK(fs_json_int(fs_json_index(d.root, 9), 0, 100, &x) && x == 100);
    CHECK(!fs_json_int(fs_json_index(d.root, 9), 0, 99, &x));      /* out of range */
    CHECK(!fs_json_int(fs_json_index(d.root, 2 + 1), -10, 10, &x)); /* -0.025 not integer */
    CHECK(!fs_json_int(fs_json_index(d.root, 5), INT64_MIN, INT64_MAX, &x)); /* 1e308 beyond int64 */
    CHECK(fs_json_number_or(d.root, 42) == 42); /* wrong type -> fallback */
    CHECK(fs_json_number_or(NULL, 43) == 43);
    fs_json_free(&d);
}

static void test_objects(void) {
    fs_json_doc d;
    fs_err e;
    const char *s = "{\"a\": 1, \"b\": {\"c\": [10, 20]}, \"a\": 2, \"s\": \"x\", \"n\": null, \"t\": true}";
    CHECK(fs_json_parse(&d, s, strlen(s), &e) == 0);
    CHECK_EQ_INT(d.root->len, 6); /* duplicates are kept in the tree */
    CHECK(fs_json_number_or(fs_json_get(d.root, "a"), 0) == 2); /* last wins */
    CHECK(fs_json_number_or(fs_json_index(fs_json_get(fs_json_get(d.root, "b"), "c"), 1), 0) == 20);
    CHECK(fs_json_get(fs_json_get(d.root, "zz"), "c") == NULL); /* NULL-safe chains */
    CHECK(fs_json_get(fs_json_get(d.root, "s"), "c") == NULL);  /* wrong type */
    CHECK(fs_json_is(fs_json_get(d.root, "n"), FS_JSON_NULL));
    const fs_json *t = fs_json_get(d.root, "t");
    CHECK(fs_json_is(t, FS_JSON_BOOL) && t->boolean == 1);
    CHECK(fs_json_string(fs_json_get(d.root, "a")) == NULL);
    CHECK(fs_json_index(d.root, 0) == NULL); /* object is not an array */
    /* Members keep document order and their keys. */
    const fs_json *c = d.root->child;
    CHECK(c && c->key_len == 1 && c->key[0] == 'a' && c->number == 1);
    fs_json_free(&d);
    fs_json_free(&d); /* freeing twice is harmless */
}

static void test_depth(void) {
    int n = FS_JSON_MAX_DEPTH;
    char *s = malloc((size_t)(2 * n + 3));
    for (int i = 0; i < n; i++) s[i] = '[';
    for (int i = 0; i < n; i++) s[n + i] = ']';
    s[2 * n] = 0;
    CHECKF(parses(s), "depth %d should parse", n);
    /* one more level */
    memmove(s + 1, s, (size_t)(2 * n + 1));
    s[0] = '[';
    s[2 * n + 1] = ']';
    s[2 * n + 2] = 0;
    char where[64];
    snprintf(where, sizeof where, "byte %d", n);
    check_bad(s, strlen(s), where, "nesting deeper");
    free(s);
    /* very deep input must fail cleanly too, not overflow the stack */
    size_t big = 1000000;
    char *t = malloc(big);
    memset(t, '{', big);
    fs_json_doc d;
    fs_err e;
    CHECK(fs_json_parse(&d, t, big, &e) == -1);
    memset(t, '[', big);
    CHECK(fs_json_parse(&d, t, big, &e) == -1 && strstr(e.msg, "nesting"));
    free(t);
}

static void test_big_string(void) {
    /* a string longer than one arena block */
    size_t n = 3u << 20;
    char *s = malloc(n + 3);
    s[0] = '"';
    memset(s + 1, 'a', n);
    s[n + 1] = '"';
    s[n + 2] = 0;
    fs_json_doc d;
    fs_err e;
    CHECK(fs_json_parse(&d, s, n + 2, &e) == 0);
    CHECK_EQ_INT(d.root->len, n);
    fs_json_free(&d);
    free(s);
}

static void check_write(const char *in, size_t len, const char *want) {
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    fs_json_write_string(f, in, len);
    fclose(f);
    CHECKF(blen == strlen(want) && memcmp(buf, want, blen) == 0, "wrote \"%s\", want \"%s\"", buf, want);
    /* What we write must parse back (valid UTF-8, all escapes legal). */
    fs_json_doc d;
    fs_err e;
    CHECKF(fs_json_parse(&d, buf, blen, &e) == 0, "our output does not parse: %s", e.msg);
    if (d.root) fs_json_free(&d);
    free(buf);
}

static void test_write(void) {
    check_write("abc", 3, "\"abc\"");
    check_write("a\"b\\c/", 6, "\"a\\\"b\\\\c/\"");
    check_write("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
    check_write("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
    check_write("x\0y", 3, "\"x\\u0000y\"");
    check_write("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
    /* invalid UTF-8 -> U+FFFD per maximal subpart (as Python's "replace") */
    check_write("a\xffz", 3, "\"a\xef\xbf\xbdz\"");
    check_write("\xe2\x82" "A", 3, "\"\xef\xbf\xbd" "A\"");          /* truncated 3-byte: one */
    check_write("\xe2\x82", 2, "\"\xef\xbf\xbd\"");                   /* truncated at end */
    check_write("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");       /* overlong: two */
    check_write("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate: three */
    check_write("\xf4\x90\x80\x80", 4, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    check_write("\xf0\x9f\x98", 3, "\"\xef\xbf\xbd\"");
}

static void test_roundtrip_unicode(void) {
    /* every BMP scalar and a sample of astral ones survive escape -> parse */
    int bad = 0;
    for (uint32_t cp = 1; cp < 0x110000; cp += (cp < 0x10000 ? 1 : 97)) {
        if (cp >= 0xd800 && cp <= 0xdfff) continue;
        char in[32], out[4];
        if (cp < 0x10000) {
            snprintf(in, sizeof in, "\"\\u%04X\"", cp);
        } else {
            uint32_t v = cp - 0x10000;
            snprintf(in, sizeof in, "\"\\u%04x\\u%04x\"", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
        }
        int n = fs_utf8_encode(cp, out);
        fs_json_doc d;
        fs_err e;
        if (fs_json_parse(&d, in, strlen(in), &e) != 0) {
            bad++;
            continue;
        }
        if (d.root->len != (size_t)n || memcmp(d.root->str, out, (size_t)n)) bad++;
        fs_json_free(&d);
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_tokenizer(void) {
    const char *dir = getenv("FS_TOKENIZER_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir && *dir ? dir : "models/qwen3-tokenizer");
    char *text;
    size_t len;
    fs_err e;
    if (fs_read_file(path, &text, &len, &e)) {
        printf("test_json: skipping the tokenizer.json parse (%s)\n", e.msg);
        return;
    }
    fs_json_doc d;
    double t0 = fs_now();
    int rc = fs_json_parse(&d, text, len, &e);
    double dt = fs_now() - t0;
    CHECKF(rc == 0, "tokenizer.json: %s", e.msg);
    if (rc == 0) {
        printf("test_json: parsed %s (%.1f MB) in %.1f ms\n", path, len / 1e6, dt * 1e3);
        const fs_json *vocab = fs_json_get(fs_json_get(d.root, "model"), "vocab");
        CHECK(fs_json_is(vocab, FS_JSON_OBJECT));
        CHECKF(vocab && vocab->len == 151643, "vocab has %zu entries", vocab ? vocab->len : 0);
        int64_t id;
        CHECK(fs_json_int(fs_json_get(vocab, "!"), 0, 1000000, &id) && id == 0);
        const fs_json *added = fs_json_get(d.root, "added_tokens");
        CHECK(fs_json_is(added, FS_JSON_ARRAY) && added->len > 0);
        CHECK_STR(fs_json_string(fs_json_get(fs_json_index(added, 0), "content")), "<|endoftext|>");
        /* "well under a second" on an optimised build; sanitizers are
         * several times slower, so they only get a loose bound. */
        CHECKF(dt < (SANITIZED ? 5.0 : 1.0), "parse took %.3f s", dt);
        fs_json_free(&d);
    }
    free(text);
}

int main(void) {
    test_valid();
    test_invalid();
    test_strings();
    test_numbers();
    test_objects();
    test_depth();
    test_big_string();
    test_write();
    test_roundtrip_unicode();
    test_tokenizer();
    return TEST_SUMMARY();
}
