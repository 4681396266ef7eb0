/* fuzz_tokenizer.c - libFuzzer target for the tokenizer.
 *
 * Loads the real tokenizer once (FS_TOKENIZER, a tokenizer.json or its
 * directory; default models/qwen3-tokenizer/tokenizer.json). For each input
 * that is valid UTF-8 it checks:
 *   - encode succeeds, every id is in range;
 *   - decode(encode(x)) == x normalized the way encode normalizes: NFC on
 *     each span between added tokens (found here by a plain leftmost-longest
 *     search, independent of the tokenizer's own matcher);
 *   - the streaming decoder gives the same bytes, each push valid UTF-8;
 *   - add_special adds nothing (Qwen's post-processor is ByteLevel only).
 * When Llama 3.2's tokenizer is here too (FS_TOKENIZER2, default
 * models/tok-llama3_2/tokenizer.json; `make tokenizers`), it runs through
 * the regex engine (its Split pattern is not Qwen's), with no normalizer:
 * decode(encode(x)) == x exactly, and add_special puts <|begin_of_text|>
 * (128000) in front.
 * Invalid UTF-8 must be rejected by encode, never crash it; such an input
 * is then also mapped to valid UTF-8 (each bad byte picks a code point from
 * a list of troublemakers: combining marks, jamo, odd spaces, U+017F) and
 * checked, so random bytes still exercise NFC and the scanner.
 *
 *   make fuzz && build/fuzz/fuzz_tokenizer fuzz/corpus/tokenizer -max_total_time=300
 *
 * Docs: docs/tokenizer.md
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "unicode.h"
#include "util.h"

static fs_tokenizer *tok, *tok2;
static int tried2;

static const char *added[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
                              "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
                              "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
                              "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
                              "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                              "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
                              "<think>", "</think>"};

static void die(const char *what) {
    fprintf(stderr, "fuzz_tokenizer: %s\n", what);
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

/* Append NFC(s[0..n)) to out. */
static void append_nfc(char *out, size_t *o, const char *s, size_t n) {
    size_t m;
    char *norm = fs_unicode_nfc(s, n, &m);
    memcpy(out + *o, norm, m);
    *o += m;
    free(norm);
}

static const uint32_t troublemakers[] = {
    0x0301, 0x0308, 0x0323, 0x0338, 0x0344, 0x0340, 0x1100, 0x1161, 0x11A8, 0xAC00, 0x00A0, 0x0085,
    0x2028, 0x3000, 0x200D, 0x017F, 0x00E9, 0x212B, 0x0958, 0x093C, 0x3099, 0x304B, 0x0F73, 0x1E9B,
    0x00BD, 0x2163, 0x0661, 0x1F600, 0x1F3FD, 0xFB01, 0x0000, 0x000D,
};

static int check(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (check(data, size) || size > 4096) return 0;
    /* Invalid input: rebuild it as valid UTF-8 and check that. */
    char *fixed = malloc(size * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < size;) {
        uint32_t cp;
        int k = fs_utf8_decode(data + i, size - i, &cp);
        if (k == 0) {
            cp = troublemakers[data[i] % (sizeof troublemakers / sizeof troublemakers[0])];
            k = 1;
        }
        o += (size_t)fs_utf8_encode(cp, fixed + o);
        i += (size_t)k;
    }
    if (!check((const uint8_t *)fixed, o)) die("repaired input is still invalid");
    free(fixed);
    return 0;
}

/* Returns 0 if data was invalid UTF-8 (after checking that encode refused it). */
static int check(const uint8_t *data, size_t size) {
    if (!tok) {
        const char *path = getenv("FS_TOKENIZER");
        fs_err e;
        if (fs_tokenizer_load(&tok, path && *path ? path : "models/qwen3-tokenizer/tokenizer.json", &e) < 0)
            die(e.msg);
    }
    const char *text = (const char *)data;
    int *ids, n;
    fs_err e;
    int rc = fs_tokenizer_encode(tok, text, size, &ids, &n, &e);
    if (!valid_utf8(data, size)) {
        if (rc == 0) die("invalid UTF-8 was accepted");
        return 0;
    }
    if (rc < 0) die(e.msg);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= fs_tokenizer_n_vocab(tok)) die("id out of range");
    int *sids, ns;
    if (fs_tokenizer_encode_opt(tok, text, size, 1, &sids, &ns, &e) < 0) die(e.msg);
    if (ns != n || memcmp(sids, ids, (size_t)n * sizeof *ids) != 0) die("Qwen: add_special changed the ids");
    free(sids);
    if (!tried2) {
        tried2 = 1;
        const char *p2 = getenv("FS_TOKENIZER2");
        p2 = p2 && *p2 ? p2 : "models/tok-llama3_2/tokenizer.json";
        if (fs_file_exists(p2) && fs_tokenizer_load(&tok2, p2, &e) < 0) die(e.msg);
    }
    if (tok2) {
        int *lids, nl;
        if (fs_tokenizer_encode_opt(tok2, text, size, 1, &lids, &nl, &e) < 0) die(e.msg);
        if (nl < 1 || lids[0] != 128000) die("Llama: add_special did not put <|begin_of_text|> first");
        char *back;
        size_t back_len;
        if (fs_tokenizer_decode(tok2, lids + 1, nl - 1, &back, &back_len, &e) < 0) die(e.msg);
        if (back_len != size || memcmp(back, text, size) != 0) die("Llama: decode(encode(x)) != x");
        free(back);
        free(lids);
    }

    /* Expected text: NFC per span, added tokens kept verbatim. */
    char *want = malloc(size * 3 + 16);
    size_t w = 0, span = 0;
    for (size_t i = 0; i < size;) {
        size_t best = 0;
        for (size_t k = 0; k < sizeof added / sizeof added[0]; k++) {
            size_t L = strlen(added[k]);
            if (L <= size - i && L > best && memcmp(text + i, added[k], L) == 0) best = L;
        }
        if (!best) {
            i++;
            continue;
        }
        append_nfc(want, &w, text + span, i - span);
        memcpy(want + w, text + i, best);
        w += best;
        i += best;
        span = i;
    }
    append_nfc(want, &w, text + span, size - span);

    char *got;
    size_t got_len;
    if (fs_tokenizer_decode(tok, ids, n, &got, &got_len, &e) < 0) die(e.msg);
    if (got_len != w || memcmp(got, want, w) != 0) die("decode(encode(x)) != NFC(x)");

    size_t cap = FS_DETOK_MAX_OUT(fs_tokenizer_max_token_bytes(tok));
    char *piece = malloc(cap);
    size_t o = 0;
    fs_detok d;
    fs_detok_init(&d);
    for (int i = 0; i <= n; i++) {
        size_t k = i < n ? fs_detok_push(&d, tok, ids[i], piece, cap) : fs_detok_flush(&d, piece, cap);
        if (!valid_utf8((const uint8_t *)piece, k)) die("streaming decode wrote invalid UTF-8");
        if (o + k > got_len || memcmp(got + o, piece, k) != 0) die("streaming decode differs from decode");
        o += k;
    }
    if (o != got_len) die("streaming decode is short");
    free(piece);
    free(got);
    free(want);
    free(ids);
    return 1;
}
