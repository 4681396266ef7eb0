/* fuzz_regex.c - libFuzzer target for the pre-tokenizer regex engine
 * (src/regex.c).
 *
 * Input:  PATTERN \0 TEXT   (no NUL: all of it is the pattern, TEXT empty)
 * Checks:
 *   - the pattern compiles, or fails with one line "regex: ... at offset N"
 *     without control bytes;
 *   - a compiled pattern searched over TEXT (any bytes, invalid UTF-8 too)
 *     returns matches in order, inside the text, each search starting where
 *     it was asked to, and never hangs (the visited-state set bounds it);
 *   - on valid UTF-8 TEXT, Qwen's and Llama 3's patterns through the engine
 *     and the hand-written scanner fs_pretok_scan cut it into the same pieces.
 *
 *   make fuzz && build/fuzz/fuzz_regex fuzz/corpus/regex -max_total_time=300
 *
 * Docs: docs/tokenizer.md
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regex.h"
#include "tokenizer.h"
#include "util.h"

static const char QWEN[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
                           " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char LLAMA3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
                             " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static fs_regex *qwen, *llama;
static fs_regex_scratch scratch;

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_regex: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = fs_utf8_decode(s + i, n - i, &cp);
        if (k == 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    const char *text = nul ? (const char *)nul + 1 : "";
    size_t n = nul ? size - plen - 1 : 0;
    fs_err e = {{0}};
    if (!qwen && fs_regex_compile(&qwen, QWEN, sizeof QWEN - 1, &e) < 0) die("Qwen's pattern", e.msg);
    if (!llama && fs_regex_compile(&llama, LLAMA3, sizeof LLAMA3 - 1, &e) < 0) die("Llama 3's pattern", e.msg);

    fs_regex *re;
    if (fs_regex_compile(&re, (const char *)data, plen, &e) < 0) {
        if (strncmp(e.msg, "regex: ", 7) != 0 || !strstr(e.msg, " at offset ")) die("message form", e.msg);
        for (const unsigned char *p = (const unsigned char *)e.msg; *p; p++)
            if (*p < 0x20 || *p == 0x7f) die("control byte in a message", e.msg);
    } else {
        size_t pos = 0, st, en;
        while (pos <= n && fs_regex_find(re, &scratch, text, n, pos, &st, &en)) {
            if (st < pos || en < st || en > n) die("match out of order or out of range", NULL);
            if (en == st && !fs_regex_can_be_empty(re)) die("empty match from a pattern that cannot be empty", NULL);
            pos = en > st ? en : st + 1;
        }
        fs_regex_free(re);
    }

    if (valid_utf8((const uint8_t *)text, n)) {
        for (int k = 0; k < 2; k++) {
            for (size_t i = 0; i < n;) {
                size_t st, en, want = fs_pretok_scan(text, n, i, k ? 3 : 1);
                if (!fs_regex_find(k ? llama : qwen, &scratch, text, n, i, &st, &en) || st != i || en != want)
                    die(k ? "regex and scanner cut Llama 3's pattern differently"
                          : "regex and scanner cut Qwen's pattern differently", NULL);
                i = en;
            }
        }
    }
    return 0;
}
