/* tokenizer.h - Qwen3's byte-level BPE, loaded from a Hugging Face
 * tokenizer.json, exact against HF `tokenizers`.
 *
 * encode: text -> NFC -> split out added/special tokens (<|im_start|> ...)
 *         -> pre-tokenize each remaining span with Qwen's regex
 *         -> map bytes to the byte-level alphabet -> BPE merges by rank -> ids
 * decode: ids -> token bytes (byte-level alphabet mapped back) -> UTF-8 text
 *
 * Docs: docs/tokenizer.md
 */
#ifndef FS_TOKENIZER_H
#define FS_TOKENIZER_H

#include <stddef.h>

#include "util.h"

typedef struct fs_tokenizer fs_tokenizer;

/* path: a tokenizer.json file or a directory containing one. */
int fs_tokenizer_load(fs_tokenizer **out, const char *path, fs_err *e);
void fs_tokenizer_free(fs_tokenizer *t);

/* Encode len bytes of text (need not be NUL-terminated). Added/special
 * tokens in the text are recognised as HF does. Invalid UTF-8 is an error.
 * *ids is malloc'd (caller frees). */
int fs_tokenizer_encode(const fs_tokenizer *t, const char *text, size_t len,
                        int **ids, int *n_ids, fs_err *e);

/* One past the largest id (vocab plus added tokens). */
int fs_tokenizer_n_vocab(const fs_tokenizer *t);

/* The raw bytes a token stands for (special tokens: their text), or NULL
 * for an id out of range. Not NUL-terminated; *len is set. */
const char *fs_tokenizer_token_bytes(const fs_tokenizer *t, int id, size_t *len);

/* Id of an exact token string ("<|im_end|>", "hello"), or -1. */
int fs_tokenizer_token_id(const fs_tokenizer *t, const char *token);

/* 1 if id is an added token marked special (e.g. <|im_end|>). */
int fs_tokenizer_is_special(const fs_tokenizer *t, int id);

/* Whole decode: invalid UTF-8 in the joined bytes becomes U+FFFD, as
 * Python's bytes.decode("utf-8", errors="replace") does. *text is malloc'd
 * and NUL-terminated. Ids out of range are an error. */
int fs_tokenizer_decode(const fs_tokenizer *t, const int *ids, int n_ids,
                        char **text, size_t *len, fs_err *e);

/* Streaming decode: feed ids one at a time, get back only complete UTF-8
 * characters, so a write never splits a character. A token can end in the
 * middle of a character; those bytes wait in the stream until the next
 * token completes them. */
typedef struct fs_detok {
    unsigned char pending[8];
    int n_pending;
} fs_detok;

void fs_detok_init(fs_detok *d);
/* Writes at most token length + 8 bytes to out; returns bytes written
 * (0 for an unknown id). cap must be at least that. */
size_t fs_detok_push(fs_detok *d, const fs_tokenizer *t, int id, char *out, size_t cap);
/* End of stream: pending bytes that never completed become U+FFFD. */
size_t fs_detok_flush(fs_detok *d, char *out, size_t cap);

#endif
