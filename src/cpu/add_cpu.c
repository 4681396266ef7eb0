/* add_cpu.c - the residual connection, x += y, for the CPU backend.
 *
 *   x[i] += y[i]      x, y: [n]
 *
 * The same f32 additions as the reference (matmul.c adds each output to
 * y), so bit-identical; 16 at a time with AVX2, 8 with NEON. The matmul
 * op calls it for the rows each chunk has just computed (matmul_cpu.c), so
 * the add runs on all threads, on data still in cache; a scalar loop would
 * cost a measurable part of a decoded token (docs/bench.md).
 *
 * Docs: docs/forward.md
 */
#include "cpu_backend.h"

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

void fs_cpu_add(fs_isa isa, float *x, const float *y, size_t n) {
    size_t i = 0;
#if defined(__x86_64__) || defined(__i386__)
    if (isa == FS_ISA_AVX2) i = add_avx2(x, y, n);
#elif defined(__aarch64__)
    if (isa == FS_ISA_NEON) i = add_neon(x, y, n);
#endif
    (void)isa;
    for (; i < n; i++) x[i] += y[i];
}
