/* fuzz_tokenizer_load.c - libFuzzer target for loading a tokenizer.json,
 * then encoding and decoding with whatever loaded.
 *
 * Input:  TOKENIZER_JSON \0 TEXT
 * (a JSON text never holds a raw NUL byte, so the first one splits the two).
 * fs_tokenizer_parse reads TOKENIZER_JSON from memory, as fs_tokenizer_load
 * does from the file. A failure must be one line starting with the name.
 * When a tokenizer loads:
 *   - TEXT (when valid UTF-8) encodes, every id below fs_tokenizer_n_vocab;
 *     invalid UTF-8 is refused, never crashes; with add_special the ids are
 *     the same, with fs_tokenizer_n_special more around them;
 *   - those ids decode; the streaming decoder gives the same bytes, each
 *     push valid UTF-8 and within FS_DETOK_MAX_OUT;
 *   - every id's bytes can be read and are at most max_token_bytes long;
 *     looking them up gives an id in range (not necessarily the same one:
 *     added tokens are looked up by their text first, as documented).
 * (decode(encode(x)) == x is not required here: a hostile file may give an
 * added token text that decodes to other bytes, as HF would too.
 * fuzz_tokenizer checks that equality on the real Qwen3 tokenizer.)
 *
 *   make fuzz && build/fuzz/fuzz_tokenizer_load fuzz/corpus/tokenizer_load -max_total_time=300
 *
 * Docs: docs/testing.md
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "util.h"

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_tokenizer_load: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
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

static void check_message(const fs_err *e) {
    if (strncmp(e->msg, "fuzz.json: ", 11) != 0) die("message does not name the file", e->msg);
    for (const unsigned char *p = (const unsigned char *)e->msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f) die("control byte in a message", e->msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t json_len = nul ? (size_t)(nul - data) : size;
    const char *text = nul ? (const char *)nul + 1 : "";
    size_t text_len = nul ? size - json_len - 1 : 0;

    fs_tokenizer *t;
    fs_err e = {{0}};
    if (fs_tokenizer_parse(&t, (const char *)data, json_len, "fuzz.json", &e)) {
        if (t) die("failure left a tokenizer", NULL);
        check_message(&e);
        return 0;
    }
    int n_vocab = fs_tokenizer_n_vocab(t);
    if (n_vocab < 256) die("loaded with fewer than 256 ids", NULL);

    /* The first ids: bytes within max_token_bytes, lookups in range. */
    size_t max_len = fs_tokenizer_max_token_bytes(t);
    char *tokbuf = malloc(max_len + 1);
    for (int id = 0; id < n_vocab && id < 4096; id++) {
        size_t len;
        const char *b = fs_tokenizer_token_bytes(t, id, &len);
        if (!b) continue;
        if (len > max_len) die("a token is longer than max_token_bytes", NULL);
        memcpy(tokbuf, b, len);
        tokbuf[len] = 0;
        if (strlen(tokbuf) != len) continue; /* a NUL inside: token_id takes C strings */
        int back = fs_tokenizer_token_id(t, tokbuf);
        if (back < -1 || back >= n_vocab) die("token_id out of range", NULL);
        (void)fs_tokenizer_is_special(t, id);
    }
    free(tokbuf);
    if (fs_tokenizer_token_bytes(t, -1, &max_len) || fs_tokenizer_token_bytes(t, n_vocab, &max_len))
        die("bytes for an id out of range", NULL);

    int *ids = NULL, n = 0;
    int rc = fs_tokenizer_encode(t, text, text_len, &ids, &n, &e);
    if (!valid_utf8((const uint8_t *)text, text_len)) {
        if (rc == 0) die("invalid UTF-8 was accepted", NULL);
        fs_tokenizer_free(t);
        return 0;
    }
    if (rc) die("valid UTF-8 did not encode", e.msg);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab) die("id out of range", NULL);
    int *sids = NULL, ns = 0;
    if (fs_tokenizer_encode_opt(t, text, text_len, 1, &sids, &ns, &e)) die("add_special encode failed", e.msg);
    if (ns != n + fs_tokenizer_n_special(t)) die("add_special did not add n_special ids", NULL);
    int found = 0;
    for (int k = 0; k + n <= ns && !found; k++) found = memcmp(sids + k, ids, (size_t)n * sizeof *ids) == 0;
    if (!found) die("add_special changed the text's ids", NULL);
    for (int i = 0; i < ns; i++)
        if (sids[i] < 0 || sids[i] >= n_vocab) die("special id out of range", NULL);
    free(sids);

    char *got;
    size_t got_len;
    if (fs_tokenizer_decode(t, ids, n, &got, &got_len, &e)) die("decode failed", e.msg);
    if (!valid_utf8((const uint8_t *)got, got_len)) die("decode wrote invalid UTF-8", NULL);
    size_t cap = FS_DETOK_MAX_OUT(fs_tokenizer_max_token_bytes(t));
    char *piece = malloc(cap);
    size_t o = 0;
    fs_detok d;
    fs_detok_init(&d);
    for (int i = 0; i <= n; i++) {
        size_t k = i < n ? fs_detok_push(&d, t, ids[i], piece, cap) : fs_detok_flush(&d, piece, cap);
        if (k > cap) die("streaming decode overran its bound", NULL);
        if (!valid_utf8((const uint8_t *)piece, k)) die("streaming decode wrote invalid UTF-8", NULL);
        if (o + k > got_len || memcmp(got + o, piece, k) != 0) die("streaming decode differs from decode", NULL);
        o += k;
    }
    if (o != got_len) die("streaming decode is short", NULL);
    free(piece);
    free(got);
    free(ids);
    fs_tokenizer_free(t);
    return 0;
}
