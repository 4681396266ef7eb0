/* sha256.c - SHA-256 (FIPS 180-4), the scalar textbook version.
 *
 * The message is padded to a multiple of 64 bytes (a 1 bit, zeros, then the
 * length in bits as a 64-bit big-endian number) and fed block by block into
 * the compression function:
 *
 *   W[0..15]  = the block as 16 big-endian 32-bit words
 *   W[t]      = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16]      t = 16..63
 *   a..h      = state
 *   64 rounds: T1 = h + S1(e) + Ch(e,f,g) + K[t] + W[t]
 *              T2 = S0(a) + Maj(a,b,c)
 *              h=g g=f f=e e=d+T1 d=c c=b b=a a=T1+T2
 *   state    += a..h
 *
 * All arithmetic is mod 2^32, which unsigned 32-bit C arithmetic gives for
 * free. Speed (~200-400 MB/s) is fine for checking a download once.
 *
 * Docs: docs/pull.md
 */
#include "sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First 32 bits of the fractional parts of the cube roots of the first 64
 * primes (FIPS 180-4 section 4.2.2). */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void compress(uint32_t state[8], const uint8_t block[64]) {
    uint32_t W[64];
    for (int t = 0; t < 16; t++)
        W[t] = (uint32_t)block[4 * t] << 24 | (uint32_t)block[4 * t + 1] << 16 |
               (uint32_t)block[4 * t + 2] << 8 | (uint32_t)block[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(W[t - 15], 7) ^ rotr(W[t - 15], 18) ^ (W[t - 15] >> 3);
        uint32_t s1 = rotr(W[t - 2], 17) ^ rotr(W[t - 2], 19) ^ (W[t - 2] >> 10);
        W[t] = s1 + W[t - 7] + s0 + W[t - 16];
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; t++) {
        uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t T1 = h + S1 + ch + K[t] + W[t];
        uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t T2 = S0 + maj;
        h = g; g = f; f = e; e = d + T1;
        d = c; c = b; b = a; a = T1 + T2;
    }
    state[0] += a; state[1] += b; state[2] += c; state[3] += d;
    state[4] += e; state[5] += f; state[6] += g; state[7] += h;
}

void fs_sha256_init(fs_sha256_ctx *s) {
    /* First 32 bits of the fractional parts of the square roots of the
     * first 8 primes. */
    static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->state, H0, sizeof H0);
    s->total = 0;
    s->fill = 0;
}

void fs_sha256_update(fs_sha256_ctx *s, const void *data, size_t len) {
    const uint8_t *p = data;
    s->total += len;
    if (s->fill) { /* top up a partial block first */
        size_t take = 64 - s->fill < len ? 64 - s->fill : len;
        memcpy(s->block + s->fill, p, take);
        s->fill += take; p += take; len -= take;
        if (s->fill < 64) return;
        compress(s->state, s->block);
        s->fill = 0;
    }
    for (; len >= 64; p += 64, len -= 64) compress(s->state, p);
    memcpy(s->block, p, len);
    s->fill = len;
}

void fs_sha256_final(fs_sha256_ctx *s, uint8_t digest[32]) {
    uint64_t bits = s->total * 8;
    s->block[s->fill++] = 0x80;
    /* No room for the 8-byte length in this block: pad it out and start
     * another one. */
    if (s->fill > 56) {
        memset(s->block + s->fill, 0, 64 - s->fill);
        compress(s->state, s->block);
        s->fill = 0;
    }
    memset(s->block + s->fill, 0, 56 - s->fill);
    for (int i = 0; i < 8; i++) s->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    compress(s->state, s->block);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(s->state[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(s->state[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(s->state[i] >> 8);
        digest[4 * i + 3] = (uint8_t)s->state[i];
    }
}

void fs_sha256(const void *data, size_t len, uint8_t digest[32]) {
    fs_sha256_ctx s;
    fs_sha256_init(&s);
    fs_sha256_update(&s, data, len);
    fs_sha256_final(&s, digest);
}

void fs_sha256_hex(const uint8_t digest[32], char hex[65]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = 0;
}

int fs_sha256_file(const char *path, uint8_t digest[32], fs_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return fs_errf(e, "%s: %s", path, strerror(errno));
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = fs_xmalloc(CHUNK);
    fs_sha256_ctx s;
    fs_sha256_init(&s);
    size_t n;
    while ((n = fread(buf, 1, CHUNK, f)) > 0) fs_sha256_update(&s, buf, n);
    int bad = ferror(f);
    free(buf);
    fclose(f);
    if (bad) return fs_errf(e, "%s: read error", path);
    fs_sha256_final(&s, digest);
    return 0;
}
