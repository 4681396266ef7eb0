/* util.c - errors, files, time, float16 conversions, UTF-8, the seeded PRNG.
 * See util.h for the contracts.
 *
 * Docs: docs/weights.md
 */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Messages quote what came from files ("model_type \"...\"", tensor names,
 * dtype strings): a control byte there would break the one-line promise or
 * send escape sequences to the user's terminal. Each one is written as an
 * escape instead (\n, \t, \r, \xNN); everything else is copied as is. The
 * parts are joined into dst, truncated before an escape that would not fit. */
static void set_line(char *dst, size_t cap, const char *const *parts, int n_parts) {
    size_t n = 0;
    int full = 0;
    for (int i = 0; i < n_parts && !full; i++)
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p && !full; p++) {
            char esc[5];
            int k;
            if (*p >= 0x20 && *p != 0x7f) esc[0] = (char)*p, k = 1;
            else if (*p == '\n') k = snprintf(esc, sizeof esc, "\\n");
            else if (*p == '\t') k = snprintf(esc, sizeof esc, "\\t");
            else if (*p == '\r') k = snprintf(esc, sizeof esc, "\\r");
            else k = snprintf(esc, sizeof esc, "\\x%02x", *p);
            full = n + (size_t)k > cap - 1;
            if (!full) memcpy(dst + n, esc, (size_t)k), n += (size_t)k;
        }
    dst[n] = 0;
}

int fs_errf(fs_err *e, const char *fmt, ...) {
    if (!e) return -1;
    char msg[FS_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *parts[1] = {msg};
    set_line(e->msg, sizeof e->msg, parts, 1);
    return -1;
}

int fs_err_prefix(fs_err *e, const char *fmt, ...) {
    if (!e) return -1;
    char old[FS_ERR_LEN], pre[FS_ERR_LEN];
    memcpy(old, e->msg, sizeof old);
    old[sizeof old - 1] = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    const char *parts[3] = {pre, ": ", old};
    set_line(e->msg, sizeof e->msg, parts, 3);
    return -1;
}

int fs_read_file(const char *path, char **data, size_t *len, fs_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return fs_errf(e, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return fs_errf(e, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return fs_errf(e, "%s: out of memory (%zu bytes)", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        free(buf);
        return fs_errf(e, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = 0;
    *data = buf;
    if (len) *len = n;
    return 0;
}

static void oom(size_t n) {
    fprintf(stderr, "fs: out of memory allocating %zu bytes\n", n);
    abort();
}

void *fs_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *fs_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *fs_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *fs_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = fs_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

int fs_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

int fs_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}

double fs_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int fs_path_join(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

int fs_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int fs_regular_file(const char *path, fs_err *e) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return 0;
        return fs_errf(e, "%s: %s", path, strerror(errno));
    }
    if (S_ISREG(st.st_mode)) return 1;
    const char *kind = S_ISDIR(st.st_mode)                         ? "a directory"
                       : S_ISFIFO(st.st_mode)                      ? "a FIFO (named pipe)"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                       : S_ISSOCK(st.st_mode)                      ? "a socket"
                                                                   : "a special file";
    return fs_errf(e, "%s is %s, not a regular file", path, kind);
}

/* f16: sign 1, exponent 5 (bias 15), mantissa 10. Subnormals have exponent 0
 * and value mantissa * 2^-24. */
float fs_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    union { uint32_t u; float f; } v;
    if (exp == 0) {
        /* zero or subnormal: exact in f32 */
        float m = (float)man * (1.0f / 16777216.0f);
        return sign ? -m : m;
    } else if (exp == 31) {
        v.u = sign | 0x7f800000u | (man << 13);
    } else {
        v.u = sign | ((exp + 112) << 23) | (man << 13);
    }
    return v.f;
}

uint16_t fs_f32_to_f16(float f) {
    union { float f; uint32_t u; } v = {f};
    uint32_t sign = (v.u >> 16) & 0x8000;
    uint32_t absu = v.u & 0x7fffffffu;
    if (absu >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absu > 0x7f800000u ? 0x200 : 0));
    if (absu >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (absu < 0x38800000u) { /* below the smallest normal f16 (2^-14) */
        /* subnormal: value / 2^-24, rounded to nearest even */
        union { uint32_t u; float f; } a = {absu};
        float scaled = a.f * 16777216.0f;
        uint32_t m = (uint32_t)scaled;
        float rem = scaled - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t exp = ((absu >> 23) - 112) << 10;
    uint32_t man = (absu >> 13) & 0x3ff;
    uint32_t rest = absu & 0x1fff;
    uint32_t h = exp | man;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

uint16_t fs_f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);
    uint32_t round = 0x7fff + ((v.u >> 16) & 1);
    return (uint16_t)((v.u + round) >> 16);
}

int fs_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; v = c & 0x1f; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; v = c & 0x0f; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return len;
}

int fs_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* --- the PRNG: xoshiro256** (Blackman & Vigna), seeded by splitmix64 ---
 * Small, fast, 256 bits of state, and fully specified by integer
 * arithmetic, so every machine produces the same stream. splitmix64 spreads
 * a small seed (0, 1, 2...) over the whole state, which must not be all
 * zero. */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void fs_rng_seed(fs_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t fs_rng_next(fs_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double fs_rng_uniform(fs_rng *r) {
    /* the top 53 bits fill a double's mantissa exactly: k / 2^53 */
    return (double)(fs_rng_next(r) >> 11) * 0x1.0p-53;
}
