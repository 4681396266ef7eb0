/* fuzz_pull.c - libFuzzer target for what `fs pull` reads from a server.
 *
 * Input: one selector byte, then the bytes a server could have sent.
 *   0     response headers as curl -D writes them (fs_pull_parse_headers)
 *   1     a model.safetensors.index.json (fs_pull_shard_names)
 *   2..6  a downloaded file, checked before it would be promoted
 *         (fs_pull_check_file) as config.json, tokenizer.json,
 *         model.safetensors, model.safetensors.index.json,
 *         generation_config.json
 * What must hold:
 *   - headers: any bytes parse; the status is 0 or three digits, sizes are
 *     -1 (unknown) or non-negative, every string is terminated in its field;
 *   - shard names: each is a plain "*.safetensors" name (no '/', no "..",
 *     no leading '.' or '-'), no two alike;
 *   - a file that passes as model.safetensors is a file fs_st_parse
 *     accepts, exactly as long as its header says; one refused as "cut
 *     short" has a valid header announcing more bytes than it has; a JSON
 *     file that passes parses to an object;
 *   - every failure is one line (no control byte).
 *
 *   make fuzz && build/fuzz/fuzz_pull fuzz/corpus/pull -max_total_time=300
 *
 * Docs: docs/testing.md
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "pull.h"
#include "safetensors.h"

static char path[256];

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_pull: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void check_message(const fs_err *e) {
    if (!e->msg[0]) die("failure without a message", NULL);
    for (const unsigned char *p = (const unsigned char *)e->msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f) die("control byte in a message", e->msg);
}

static void check_str(const char *s, size_t cap, const char *what) {
    if (!memchr(s, 0, cap)) die("unterminated header field", what);
}

static void headers(const char *text, size_t len) {
    fs_pull_response r;
    memset(&r, 0, sizeof r);
    r.content_length = r.linked_size = r.range_total = -1;
    fs_pull_parse_headers(text, len, &r);
    if (r.status != 0 && (r.status < 100 || r.status > 999)) die("status out of range", NULL);
    if (r.content_length < -1 || r.linked_size < -1 || r.range_total < -1) die("negative size", NULL);
    check_str(r.etag, sizeof r.etag, "etag");
    check_str(r.linked_etag, sizeof r.linked_etag, "linked_etag");
    check_str(r.error_code, sizeof r.error_code, "error_code");
}

static void shard_names(const char *text, size_t len) {
    char **names;
    int n;
    fs_err e = {{0}};
    if (fs_pull_shard_names(text, len, &names, &n, &e)) {
        check_message(&e);
        return;
    }
    if (n < 1) die("an index with no shard passed", NULL);
    for (int i = 0; i < n; i++) {
        const char *s = names[i];
        size_t l = strlen(s);
        if (l <= 12 || strcmp(s + l - 12, ".safetensors") || strchr(s, '/') || strstr(s, "..") || s[0] == '.' ||
            s[0] == '-')
            die("unsafe shard name passed", s);
        for (int j = 0; j < i; j++)
            if (!strcmp(names[j], s)) die("a shard listed twice", s);
    }
    fs_pull_free_names(names, n);
}

static void check_file(const char *name, const uint8_t *data, size_t size) {
    if (!path[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/fs_fuzz_pull.%d", base && *base ? base : "/tmp", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) die("cannot write", path);
    int resumable = 0;
    fs_err e = {{0}};
    int rc = fs_pull_check_file(name, path, &resumable, &e);
    unlink(path);
    if (rc) {
        check_message(&e);
        if (resumable) {
            uint64_t need;
            fs_err e2;
            if (!strstr(name, ".safetensors") || size < 8) die("resumable, but not a safetensors file", e.msg);
            uint64_t n = 0;
            for (int i = 7; i >= 0; i--) n = n << 8 | data[i];
            if (8 + n > size || fs_st_check_header(data, (size_t)(8 + n), name, &need, &e2) || need <= size)
                die("resumable, but the header does not announce more", e.msg);
        }
        return;
    }
    if (strstr(name, ".safetensors") && !strstr(name, ".json")) {
        uint8_t *copy = malloc(size ? size : 1); /* exactly sized: ASan sees the end */
        if (size) memcpy(copy, data, size);
        fs_safetensors st;
        if (fs_st_parse(&st, copy, size, name, &e)) die("passed the pull check, refused by the loader", e.msg);
        if (st.data_end != size) die("passed with bytes after the last tensor", NULL);
        fs_st_close(&st);
        free(copy);
    } else {
        fs_json_doc doc;
        if (fs_json_parse(&doc, (const char *)data, size, &e) || !fs_json_is(doc.root, FS_JSON_OBJECT))
            die("passed, but is not a JSON object", NULL);
        fs_json_free(&doc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *files[] = {"config.json", "tokenizer.json", "model.safetensors", "model.safetensors.index.json",
                                  "generation_config.json"};
    if (size < 1) return 0;
    unsigned sel = data[0] % 7;
    const char *text = (const char *)data + 1;
    size--;
    if (sel == 0) headers(text, size);
    else if (sel == 1) shard_names(text, size);
    else check_file(files[sel - 2], data + 1, size);
    return 0;
}
