/* fuzz_json.c - libFuzzer target for the JSON parser.
 *
 * Feeds arbitrary bytes to fs_json_parse. On success it walks the whole tree
 * (every lookup helper on every node) and round-trips every string through
 * fs_json_write_string: the written form must parse back to the same bytes,
 * because decoded strings are always valid UTF-8. Any crash, sanitizer
 * report or abort() is a bug.
 *
 *   make fuzz && build/fuzz/fuzz_json fuzz/corpus/json -max_total_time=300
 *
 * Docs: docs/weights.md
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static void roundtrip(const fs_json *v) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return;
    fs_json_write_string(f, v->str, v->len);
    fclose(f);
    fs_json_doc d;
    fs_err e;
    if (fs_json_parse(&d, buf, len, &e) != 0) abort();
    if (d.root->type != FS_JSON_STRING || d.root->len != v->len || memcmp(d.root->str, v->str, v->len)) abort();
    fs_json_free(&d);
    free(buf);
}

static void walk(const fs_json *v, int depth) {
    if (depth > FS_JSON_MAX_DEPTH + 1) abort();
    (void)fs_json_number_or(v, 0);
    int64_t x;
    (void)fs_json_int(v, INT64_MIN, INT64_MAX, &x);
    if (v->type == FS_JSON_STRING) {
        if (v->str[v->len] != 0) abort();
        roundtrip(v);
    }
    size_t n = 0;
    for (const fs_json *c = v->child; c; c = c->next, n++) {
        if (v->type == FS_JSON_OBJECT) {
            if (!c->key || c->key[c->key_len] != 0) abort();
            char key[64];
            size_t kl = c->key_len < sizeof key - 1 ? c->key_len : sizeof key - 1;
            memcpy(key, c->key, kl);
            key[kl] = 0;
            (void)fs_json_get(v, key);
        }
        walk(c, depth + 1);
    }
    if ((v->type == FS_JSON_ARRAY || v->type == FS_JSON_OBJECT) && n != v->len) abort();
    if (v->type == FS_JSON_ARRAY && n && !fs_json_index(v, n - 1)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fs_json_doc d;
    fs_err e;
    if (fs_json_parse(&d, (const char *)data, size, &e) == 0) {
        walk(d.root, 1);
        fs_json_free(&d);
    } else if (strncmp(e.msg, "JSON error at byte ", 19) != 0) {
        abort(); /* every failure carries a position */
    }
    return 0;
}
