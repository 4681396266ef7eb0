/* rmsnorm_cpu.c - rmsnorm with AVX2 (NEON's is in ops_neon.c), for the CPU backend.
 *
 *   y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w      x, y: [rows, n]   w: [n]
 *
 * The same operations as the reference (rmsnorm.c) - the sum of squares in
 * double, scale = 1 / sqrt(f32(mean) + eps), y = w * f32(x * scale) - only
 * 4 doubles and 8 floats at a time, and the weight read as a vector
 * instead of element by element. The sum is added in a different order, so
 * ss can differ from the reference in its last double bits, which
 * practically never changes the f32 scale: the test allows one f32
 * rounding. A decode step runs it for every layer's two block norms (the
 * input of the matmul that follows, matmul_cpu.c), every head of q and k
 * (rope_kv_cpu.c) and the final norm, so the reference's element-by-element
 * loop would show (docs/bench.md). NEON runs ops_neon.c's version (bf16,
 * f16, f32 weights); other weight dtypes (f16 on x86) and the scalar
 * kernels use the reference's row (rmsnorm.c).
 *
 * Not threaded: one row is a few hundred nanoseconds, less than waking the
 * pool; a 512-token prefill spends well under 1% of its time here.
 *
 * Docs: docs/forward.md
 */
#include <math.h>

#include "cpu_backend.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TGT __attribute__((target("avx2,fma")))

static TGT void rmsnorm_avx2(const float *x, const void *w, fs_dtype wt, float *y, int rows, int n, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * (size_t)n;
        float *yr = y + (size_t)r * (size_t)n;
        __m256d a0 = _mm256_setzero_pd(), a1 = a0;
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(xr + i);
            __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
            a0 = _mm256_fmadd_pd(lo, lo, a0);
            a1 = _mm256_fmadd_pd(hi, hi, a1);
        }
        double t[4];
        _mm256_storeu_pd(t, _mm256_add_pd(a0, a1));
        double ss = (t[0] + t[1]) + (t[2] + t[3]);
        for (; i < n; i++) ss += (double)xr[i] * (double)xr[i];
        float var = (float)(ss / n) + eps;
        float scale = (float)(1.0 / sqrt((double)var));
        __m256 sv = _mm256_set1_ps(scale);
        i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 wv;
            if (wt == FS_DTYPE_BF16)
                wv = _mm256_castsi256_ps(
                    _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))), 16));
            else wv = _mm256_loadu_ps((const float *)w + i);
            _mm256_storeu_ps(yr + i, _mm256_mul_ps(wv, _mm256_mul_ps(_mm256_loadu_ps(xr + i), sv)));
        }
        for (; i < n; i++) {
            float wi = wt == FS_DTYPE_BF16 ? fs_bf16_to_f32(((const uint16_t *)w)[i]) : ((const float *)w)[i];
            yr[i] = wi * (xr[i] * scale);
        }
    }
}
#endif

void fs_cpu_rmsnorm_rows(fs_isa isa, const float *x, const fs_buf *w, float *y, int rows, int n, float eps) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == FS_ISA_AVX2 && (w->dtype == FS_DTYPE_BF16 || w->dtype == FS_DTYPE_F32)) {
        rmsnorm_avx2(x, w->data, w->dtype, y, rows, n, eps);
        return;
    }
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (isa == FS_ISA_NEON && (w->dtype == FS_DTYPE_BF16 || w->dtype == FS_DTYPE_F16 || w->dtype == FS_DTYPE_F32)) {
        fs_rmsnorm_rows_neon(x, w->data, w->dtype, y, rows, n, eps);   /* ops_neon.c */
        return;
    }
#endif
    (void)isa;
    for (int r = 0; r < rows; r++)
        fs_ref_rmsnorm_row(x + (size_t)r * (size_t)n, w, y + (size_t)r * (size_t)n, n, eps);
}

void fs_cpu_rmsnorm(fs_backend *b, const fs_buf *x, const fs_buf *w, fs_buf *y, int rows, int n, float eps) {
    fs_cpu_rmsnorm_rows(cpu_ctx(b)->isa, buf_f32(x), w, buf_f32_mut(y), rows, n, eps);
}
