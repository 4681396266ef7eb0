/* util.h - the small things every file needs: errors, files, time, numbers.
 *
 * Errors: public functions return 0 on success and -1 on failure, filling an
 * fs_err with one human-readable line ("model.safetensors: tensor
 * model.norm.weight: expected shape [1024], got [512]"). The CLI prints that
 * line and exits non-zero. No function in src/ prints or exits on its own.
 *
 * Docs: docs/weights.md (bf16/f16), docs/map.md (layout).
 */
#ifndef FS_UTIL_H
#define FS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FS_ERR_LEN 512

typedef struct fs_err {
    char msg[FS_ERR_LEN];
} fs_err;

#if defined(__GNUC__) || defined(__clang__)
#define FS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FS_PRINTF(a, b)
#endif

/* Fill e (may be NULL) with a formatted message; always returns -1 so callers
 * can write `return fs_errf(e, "...")`. */
int fs_errf(fs_err *e, const char *fmt, ...) FS_PRINTF(2, 3);

/* Prefix an existing message: "ctx: old message". Returns -1. */
int fs_err_prefix(fs_err *e, const char *fmt, ...) FS_PRINTF(2, 3);

/* Read a whole file into a malloc'd, NUL-terminated buffer. */
int fs_read_file(const char *path, char **data, size_t *len, fs_err *e);

/* Allocation that never returns NULL: out of memory is fatal (prints and
 * aborts). Used at load time only; the decode loop never allocates. */
void *fs_xmalloc(size_t n);
void *fs_xcalloc(size_t n, size_t size);
void *fs_xrealloc(void *p, size_t n);
char *fs_xstrdup(const char *s);

/* Overflow-checked size arithmetic: returns 0 on overflow. */
int fs_mul_size(size_t a, size_t b, size_t *out);
int fs_add_size(size_t a, size_t b, size_t *out);

/* Monotonic wall clock in seconds. */
double fs_now(void);

/* Path join into a caller buffer; returns -1 if it does not fit. */
int fs_path_join(char *out, size_t cap, const char *dir, const char *name);
int fs_file_exists(const char *path);
/* What is at path: 1 a regular file; 0 nothing (the caller says "missing"
 * its own way); -1 something a loader cannot read as a file, with e naming
 * it: "PATH is a directory, not a regular file" (also FIFOs, devices,
 * sockets, and stat errors such as permission denied). It never opens path:
 * opening a FIFO would wait for a writer. */
int fs_regular_file(const char *path, fs_err *e);

/* 16-bit floats. bf16 is the top half of an f32 (same exponent, 7-bit
 * mantissa); f16 is IEEE half (5-bit exponent, 10-bit mantissa). */
static inline float fs_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
float fs_f16_to_f32(uint16_t h);
uint16_t fs_f32_to_f16(float f);  /* round to nearest even */
uint16_t fs_f32_to_bf16(float f); /* round to nearest even, NaN stays NaN */

/* UTF-8 helpers. fs_utf8_decode reads one code point at s (n bytes left);
 * returns its length (1-4) and stores the code point, or returns 0 for an
 * invalid or truncated sequence. fs_utf8_encode writes cp, returns length. */
int fs_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
int fs_utf8_encode(uint32_t cp, char out[4]);

/* A seeded PRNG: xoshiro256** (Blackman & Vigna) seeded by splitmix64.
 * Integer arithmetic only, so every machine produces the same stream (the
 * sampler's draws and fs mkmodel's weights depend on that). */
typedef struct fs_rng {
    uint64_t s[4];
} fs_rng;
void fs_rng_seed(fs_rng *r, uint64_t seed);
uint64_t fs_rng_next(fs_rng *r);
double fs_rng_uniform(fs_rng *r); /* [0, 1), 53 random bits */

#endif
