/* add_fast.c - the residual connection, x += y, for the fast backend.
 *
 *   x[i] += y[i]      x, y: [n]  (n = T*H)
 *
 * The same f32 additions as the reference (add.c), so bit-identical; 8 at
 * a time with AVX2, 4 with NEON. In decode (n = 1024) it is a serial op
 * between two parallel matmuls, twice per layer: the reference's scalar
 * loop took ~0.75 us a call on the dev VM (1.5 cycles an element), about
 * 40 us of every decoded token. A prefill's residual (512 x 1024 floats,
 * 2 MB) is split across the threads in chunks of CHUNK floats.
 *
 * Docs: docs/forward.md
 */
#include "fast.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static __attribute__((target("avx2"))) size_t add_avx2(float *x, const float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
        _mm256_storeu_ps(x + i + 8, _mm256_add_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8)));
    }
    return i;
}
#elif defined(__aarch64__)
#include <arm_neon.h>
static size_t add_neon(float *x, const float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_f32(x + i, vaddq_f32(vld1q_f32(x + i), vld1q_f32(y + i)));
        vst1q_f32(x + i + 4, vaddq_f32(vld1q_f32(x + i + 4), vld1q_f32(y + i + 4)));
    }
    return i;
}
#endif

/* x[i0 .. i1) += y[i0 .. i1) */
static void add_range(fs_isa isa, float *x, const float *y, size_t i0, size_t i1) {
    size_t i = i0;
#if defined(__x86_64__) || defined(__i386__)
    if (isa == FS_ISA_AVX2) i += add_avx2(x + i0, y + i0, i1 - i0);
#elif defined(__aarch64__)
    if (isa == FS_ISA_NEON) i += add_neon(x + i0, y + i0, i1 - i0);
#endif
    for (; i < i1; i++) x[i] += y[i];
}

#define CHUNK 65536   /* floats: 256 KiB of x per chunk */

typedef struct {
    fs_isa isa;
    float *x;
    const float *y;
    size_t n;
} add_job;

static void add_chunk(void *arg, int chunk, int tid) {
    (void)tid;
    const add_job *j = arg;
    size_t i0 = (size_t)chunk * CHUNK, i1 = i0 + CHUNK < j->n ? i0 + CHUNK : j->n;
    add_range(j->isa, j->x, j->y, i0, i1);
}

void fs_fast_add(fs_backend *b, fs_buf *x, const fs_buf *y, size_t n) {
    fs_fast *f = fast_ctx(b);
    add_job j = {f->isa, cpu_f32_mut(x), cpu_f32(y), n};
    if (n <= CHUNK) add_range(j.isa, j.x, j.y, 0, n);   /* decode: no pool wake-up */
    else fs_threadpool_for(f->pool, (int)((n + CHUNK - 1) / CHUNK), add_chunk, &j);
}
