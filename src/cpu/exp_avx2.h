/* exp_avx2.h - e^x for 8 floats at once (AVX2 + FMA), for swiglu and the
 * attention softmax of the CPU backend. x86 only: include it from files
 * that compile AVX2 code with a target attribute.
 *
 *   e^x = 2^n * e^r,   n = round(x / ln 2),   r = x - n ln 2,  |r| <= ln2 / 2
 *
 * ln 2 is split into a high part with few mantissa bits (n * LN2_HI is
 * exact for |n| <= 128) and a small low part, so r keeps full precision.
 * e^r on [-0.347, 0.347] is a degree-6 polynomial, 1 + r + r^2 p(r), whose
 * coefficients are the classic minimax fit for single precision (the
 * Cephes library's expf); measured within 1.25 ulp of exp. 2^n is built
 * directly in the exponent bits. x is clamped to [-87.3, 88]: below, the
 * result would be subnormal (returned as ~1.2e-38 instead: the error is
 * irrelevant next to 1 + e^x or a softmax sum); above, it is clamped to
 * e^88 = 1.7e38 so that 2^n stays finite (n <= 127), and silu(g) = g /
 * (1 + e^-g) still comes out ~0.
 * tests/test_cpu_kernels.c compares it with exp in double over the whole
 * range.
 *
 * Docs: docs/forward.md
 */
#ifndef FS_CPU_EXP_AVX2_H
#define FS_CPU_EXP_AVX2_H

#include <immintrin.h>

__attribute__((target("avx2,fma"))) static inline __m256 fs_exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);     /* LN2_HI: 8 significant bits */
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);         /* LN2_LO = ln 2 - LN2_HI */
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 er = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(er, _mm256_castsi256_ps(bits));
}

#endif
