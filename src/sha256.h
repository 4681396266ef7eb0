/* sha256.h - SHA-256 (FIPS 180-4), used by `fs pull` to check downloads.
 *
 * The Hugging Face hub names every large (LFS) file by the SHA-256 of its
 * bytes and sends it as the ETag / X-Linked-Etag header, so after a
 * download we hash the file and compare: a mismatch means a corrupt or
 * mixed-up download, never a silently wrong model.
 *
 * Streaming use: init, update as many times as needed, final.
 *
 * Docs: docs/pull.md
 */
#ifndef FS_SHA256_H
#define FS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct fs_sha256_ctx {
    uint32_t state[8];    /* the running hash H0..H7 */
    uint64_t total;       /* bytes hashed so far (the length goes in the padding) */
    uint8_t block[64];    /* a partly filled 512-bit block */
    size_t fill;          /* bytes in block */
} fs_sha256_ctx;

void fs_sha256_init(fs_sha256_ctx *s);
void fs_sha256_update(fs_sha256_ctx *s, const void *data, size_t len);
void fs_sha256_final(fs_sha256_ctx *s, uint8_t digest[32]);

/* One-shot helpers. hex is 64 lowercase hex digits + NUL. */
void fs_sha256(const void *data, size_t len, uint8_t digest[32]);
void fs_sha256_hex(const uint8_t digest[32], char hex[65]);

/* Hash a whole file (read in 1 MiB chunks, so any size works). */
int fs_sha256_file(const char *path, uint8_t digest[32], fs_err *e);

#endif
