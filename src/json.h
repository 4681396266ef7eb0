/* json.h - a strict JSON parser (RFC 8259) into a tree of fs_json nodes.
 *
 * Used for config.json, tokenizer.json (11 MB), the safetensors header, the
 * chat messages file and HTTP bodies: anything that comes from outside, so it
 * is strict and never crashes. Malformed input returns -1 with the byte
 * offset, line and column in the message. Strings are decoded to UTF-8
 * (including \uXXXX escapes and surrogate pairs); they may contain NUL bytes,
 * so always use len. Nesting deeper than FS_JSON_MAX_DEPTH is an error.
 *
 * Memory: one document owns all its nodes and strings (an arena); free the
 * document and every node pointer dies with it.
 *
 * Docs: docs/weights.md (how config.json and the safetensors header are read).
 */
#ifndef FS_JSON_H
#define FS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

#define FS_JSON_MAX_DEPTH 256

typedef enum {
    FS_JSON_NULL,
    FS_JSON_BOOL,
    FS_JSON_NUMBER,
    FS_JSON_STRING,
    FS_JSON_ARRAY,
    FS_JSON_OBJECT,
} fs_json_type;

typedef struct fs_json fs_json;
struct fs_json {
    fs_json_type type;
    int boolean;         /* FS_JSON_BOOL */
    double number;       /* FS_JSON_NUMBER */
    const char *str;     /* FS_JSON_STRING: decoded UTF-8, NUL-terminated */
    size_t len;          /* string: bytes; array/object: number of children */
    const char *key;     /* set when this node is an object member */
    size_t key_len;
    fs_json *child;      /* array/object: first element / member */
    fs_json *next;       /* next sibling in the parent array/object */
};

typedef struct fs_json_doc {
    fs_json *root;
    void *arena; /* private */
} fs_json_doc;

/* Parse text[0..len). On error fills e with e.g.
 * "JSON error at byte 17 (line 2, column 5): expected ':' after object key". */
int fs_json_parse(fs_json_doc *doc, const char *text, size_t len, fs_err *e);
void fs_json_free(fs_json_doc *doc);

/* Read the file at path and parse it. Read errors name the path already;
 * parse errors get it as a prefix ("PATH: JSON error at byte ..."). */
int fs_json_parse_file(fs_json_doc *doc, const char *path, fs_err *e);

/* Lookups. All accept NULL and return NULL / the fallback when the node is
 * missing or of the wrong type, so chains like
 * fs_json_get(fs_json_get(root, "model"), "vocab") are safe. Duplicate keys:
 * the last one wins (as Python's json does). */
const fs_json *fs_json_get(const fs_json *obj, const char *key);
const fs_json *fs_json_index(const fs_json *arr, size_t i); /* O(i) */
const char *fs_json_string(const fs_json *v);               /* NULL unless string */
double fs_json_number_or(const fs_json *v, double fallback);
/* 1 if v is a number with an exact integer value in [lo, hi], storing it. */
int fs_json_int(const fs_json *v, int64_t lo, int64_t hi, int64_t *out);
int fs_json_is(const fs_json *v, fs_json_type t);

/* Writing. fs_json_write_string emits a quoted, escaped JSON string;
 * invalid UTF-8 bytes are written as U+FFFD (as HF's errors="replace"). */
void fs_json_write_string(FILE *f, const char *s, size_t len);

#endif
