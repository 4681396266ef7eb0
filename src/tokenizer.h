/* tokenizer.h - byte-level BPE tokenizers (Qwen2/2.5/3, Llama 3, GPT-2,
 * SmolLM2 ...) built from the pipeline a Hugging Face tokenizer.json
 * describes, exact against HF `tokenizers`.
 *
 * encode: text -> split out added tokens (<|im_start|> ...), found in the
 *         raw text as HF does -> the normalizer (NFC) on each remaining
 *         span -> the pre_tokenizer's steps (Split with its own regex,
 *         compiled by src/regex.c; ByteLevel; Digits) -> map bytes to the
 *         byte-level alphabet -> BPE merges by rank -> ids
 *         -> the post_processor's special tokens, when asked for
 * decode: ids -> token bytes (byte-level alphabet mapped back) -> UTF-8 text
 * Whatever a tokenizer.json asks for that is not implemented is a load
 * error naming it.
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
/* The same from the text of a tokenizer.json already in memory (tests, the
 * fuzzer); name prefixes the error messages. */
int fs_tokenizer_parse(fs_tokenizer **out, const char *json, size_t len, const char *name, fs_err *e);
void fs_tokenizer_free(fs_tokenizer *t);

/* Encode len bytes of text (need not be NUL-terminated). Added/special
 * tokens in the text are recognised as HF does. Invalid UTF-8 is an error.
 * *ids is malloc'd (caller frees). */
int fs_tokenizer_encode(const fs_tokenizer *t, const char *text, size_t len,
                        int **ids, int *n_ids, fs_err *e);

/* The same, as HF's tokenizer.encode(text, add_special_tokens=...):
 * add_special = 1 also adds the post-processor's special tokens (Llama 3:
 * <|begin_of_text|> first), which is what HF's `tokenizer(text)` gives;
 * fs_tokenizer_encode is add_special = 0, how apply_chat_template
 * tokenizes (the template writes those tokens itself). */
int fs_tokenizer_encode_opt(const fs_tokenizer *t, const char *text, size_t len, int add_special,
                            int **ids, int *n_ids, fs_err *e);

/* How many ids add_special = 1 adds (0 for Qwen, 1 for Llama 3). */
int fs_tokenizer_n_special(const fs_tokenizer *t);

/* One past the largest id (vocab plus added tokens). */
int fs_tokenizer_n_vocab(const fs_tokenizer *t);

/* The raw bytes a token stands for (special tokens: their text), or NULL
 * for an id out of range. Not NUL-terminated; *len is set. */
const char *fs_tokenizer_token_bytes(const fs_tokenizer *t, int id, size_t *len);

/* Longest token in bytes (for sizing fs_detok_push buffers). */
size_t fs_tokenizer_max_token_bytes(const fs_tokenizer *t);

/* Id of the token whose text is exactly `token` ("<|im_end|>", " hello"),
 * or -1. The text is raw UTF-8 (" hello"), not the byte-level spelling in
 * tokenizer.json ("Ġhello"); added tokens are looked up first. */
int fs_tokenizer_token_id(const fs_tokenizer *t, const char *token);

/* 1 if id is an added token marked special (e.g. <|im_end|>). */
int fs_tokenizer_is_special(const fs_tokenizer *t, int id);

/* Whole decode: invalid UTF-8 in the joined bytes becomes U+FFFD, as
 * Python's bytes.decode("utf-8", errors="replace") does. *text is malloc'd
 * and NUL-terminated. Ids out of range are an error. */
int fs_tokenizer_decode(const fs_tokenizer *t, const int *ids, int n_ids,
                        char **text, size_t *len, fs_err *e);

/* Qwen's pre-tokenizer regex written out by hand (exposed for tests and the
 * docs): the end of the pre-token that starts at byte i of text[0..n),
 * i < n. text must be valid UTF-8. A tokenizer.json whose Split has exactly
 * Qwen's (or Llama 3's) pattern uses this instead of the regex engine (same
 * pieces, faster); tests/test_regex.c and fuzz/fuzz_regex.c check the two
 * agree. */
size_t fs_pretok_next(const char *text, size_t n, size_t i);
/* The same scanner with alternative 3 taking up to max_digits number
 * characters: 3 is Llama 3's pattern (\p{N}{1,3}), which it runs too. */
size_t fs_pretok_scan(const char *text, size_t n, size_t i, int max_digits);

/* Streaming decode: feed ids one at a time, get back only complete UTF-8
 * characters, so a write never splits a character. A token can end in the
 * middle of a character; those bytes wait in the stream until the next
 * token completes them. */
typedef struct fs_detok {
    unsigned char pending[8];
    int n_pending;
} fs_detok;

void fs_detok_init(fs_detok *d);
/* Writes at most FS_DETOK_MAX_OUT(token length) bytes to out and returns
 * the count. Every invalid byte can become a 3-byte U+FFFD, and up to 3
 * pending bytes from earlier tokens can be flushed as U+FFFD too, hence
 * 3 * len + 9. An unknown id, or cap below that bound, writes nothing and
 * returns 0. FS_DETOK_MAX_OUT(fs_tokenizer_max_token_bytes(t)) fits any id. */
#define FS_DETOK_MAX_OUT(token_len) (3 * (size_t)(token_len) + 9)
size_t fs_detok_push(fs_detok *d, const fs_tokenizer *t, int id, char *out, size_t cap);
/* End of stream: pending bytes that never completed become one U+FFFD
 * (3 bytes; cap must be at least 3). */
size_t fs_detok_flush(fs_detok *d, char *out, size_t cap);

#endif
