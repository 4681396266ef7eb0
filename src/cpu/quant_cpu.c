/* quant_cpu.c - the CPU backend's kernels for Q8_0 activations: quantizing
 * a matmul's input row, and dot products of Q8_0 / Q4_0 weight rows with it.
 *
 *   quantize_x   x [k] f32 -> Q8_0 blocks, and per block d as f32 and the
 *                sum of the 32 q (fs_q8_0_sum, quant.h)
 *   dot_rows     out[r] = sum_i W[r, i] x[i], r < nrows: one activation row
 *                against consecutive weight rows (decode without the x8
 *                layout: an ISA other than AVX2, or N % 8 != 0)
 *
 * Every version computes the same integer block sums as quant.c's scalar
 * definitions (fs_quantize_row_q8_0, fs_vec_dot_*_ref), which are also the
 * FS_ISA=scalar kernels; the SIMD ones differ only in the order of the f32
 * additions of the block sums, and the quantizer writes the same bytes.
 *
 * AVX2: the instruction that multiplies bytes, _mm256_maddubs_epi16, wants
 * one operand unsigned. a * b = |a| * (b * sign(a)), so we pass |w| (as
 * unsigned) and x with w's sign moved onto it (_mm256_sign_epi8). Pairs of
 * products land in int16 (|127 * 127 * 2| < 32767: no saturation, because
 * Q8_0 never stores -128), _mm256_madd_epi16 with ones widens to 8 int32.
 * The f16 scales are widened with F16C's vcvtph2ps (_cvtsh_ss, exact like
 * fs_f16_to_f32, but one instruction instead of a function call). The fs
 * Makefile builds for baseline x86-64, so the AVX2 code is compiled with a
 * target attribute and chosen at run time (the backend's cpuid check).
 * NEON: vdotq_s32 (4 int8 products per int32 lane) when the build targets
 * the dot product extension, else vmull_s8 (int16 products) + vpadalq_s16
 * (these row kernels only run for matrices x8 cannot take; the quantizer
 * is ops_neon.c's, the x8 and GEMM kernels matmul_quant_neon.c's).
 *
 * Docs: docs/quantization.md
 */
#include "cpu_backend.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#define ROUND_NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* A block written whole: scale h (an f16), every q 0, as the scalar
 * quantizer writes a block with a NaN or infinity (h = NaN) or one whose
 * scale rounds to 0 (h = 0). */
static void constant_block(fs_block_q8_0 *y, fs_q8_0_sum *sum, uint16_t h) {
    y->d = h;
    memset(y->qs, 0, sizeof y->qs);
    if (sum) {
        sum->d = fs_f16_to_f32(h);
        sum->s = 0;
    }
}

/* Same operations as the scalar version, 8 lanes at a time, so the bytes
 * are identical: max of |x| is exact, d and 1/d are the same scalar f32
 * operations, and _mm256_round_ps rounds to nearest-even like rintf. The
 * two special blocks are found first, as there (quant.c): a NaN or an
 * infinity (_mm256_max_ps would drop a NaN in one operand, and its
 * conversion gives -128, a plausible value), and a scale that is 0 as an
 * f16 (1/d could be inf). */
AVX2_FN static void quantize_row_q8_0_avx2(const float *x, fs_block_q8_0 *y, fs_q8_0_sum *sums, int k) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f), inf = _mm256_set1_ps(INFINITY);
    for (int b = 0; b < k / FS_QK; b++) {
        const float *xb = x + (size_t)b * FS_QK;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 a0 = _mm256_andnot_ps(sign_bit, v0), a1 = _mm256_andnot_ps(sign_bit, v1);
        __m256 a2 = _mm256_andnot_ps(sign_bit, v2), a3 = _mm256_andnot_ps(sign_bit, v3);
        /* |x| < inf is false for an infinity and (unordered) for a NaN */
        __m256 bad = _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(a0, inf, _CMP_NLT_UQ), _mm256_cmp_ps(a1, inf, _CMP_NLT_UQ)),
                                  _mm256_or_ps(_mm256_cmp_ps(a2, inf, _CMP_NLT_UQ), _mm256_cmp_ps(a3, inf, _CMP_NLT_UQ)));
        if (_mm256_movemask_ps(bad)) {
            constant_block(&y[b], sums ? &sums[b] : NULL, 0x7e00);
            continue;
        }
        __m256 m = _mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f;
        y[b].d = _cvtss_sh(d, 0);   /* F16C, round to nearest even as fs_f32_to_f16 */
        if (_cvtsh_ss(y[b].d) == 0.0f) {
            constant_block(&y[b], sums ? &sums[b] : NULL, y[b].d);
            continue;
        }
        const __m256 vid = _mm256_set1_ps(1.0f / d);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, vid), ROUND_NEAREST));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, vid), ROUND_NEAREST));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, vid), ROUND_NEAREST));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, vid), ROUND_NEAREST));
        /* The packs work within 128-bit lanes, which scrambles the order
         * into 0 1 4 5 2 3 6 7 (groups of 4); one permute puts it back. */
        __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
        __m256i q = _mm256_packs_epi16(p01, p23);
        q = _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[b].qs, q);
        if (sums) {
            /* sum of the 32 int8: flip the sign bits (q + 128, unsigned),
             * sum absolute differences with 0 (4 x 8 bytes), minus 32 * 128 */
            __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
            __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
            sums[b].s = (int32_t)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
            sums[b].d = _cvtsh_ss(y[b].d);
        }
    }
}

/* 8 int32 partial sums of w[i] * x[i] over 32 int8 pairs (see the top). */
AVX2_FN static inline __m256i dot32_i8(__m256i w, __m256i x) {
    __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

AVX2_FN static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* One weight row against one activation row whose sums are known (decode,
 * called for every row of a matrix). Q4_0 skips the sign trick: the
 * nibbles q_w = w + 8 (0..15) are unsigned as they are, so maddubs(q_w, x)
 * is exact and
 *   sum w x = sum q_w x - 8 sum x,
 * with sum x taken from xs (computed once per activation row and shared
 * by all N rows), as is x's scale in f32. The 8 int32 lanes each hold a
 * partial sum of the block (4 of its 32 products), so each lane subtracts
 * sum x once: 8 sum x in all. Rows are done one after the other: the
 * weights then stream through memory in order, which the hardware
 * prefetcher follows (4 rows interleaved measured slower, docs/bench.md),
 * helped by a software prefetch ROW_AHEAD bytes ahead. These kernels only
 * run where the x8 layout cannot (N % 8 != 0), so they keep one fixed
 * prefetch rather than a decode plan (cpu_backend.h): T0, the hint that
 * was never far from the best on the CPUs measured (docs/bench.md). */
#define ROW_AHEAD 16384

AVX2_FN static float row_q4_0_avx2(int nb, const fs_block_q4_0 *w, const fs_block_q8_0 *x, const fs_q8_0_sum *xs) {
    const __m256i low4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int b = 0;
#define BLOCK(b, acc)                                                                                      \
    {                                                                                                      \
        __m128i raw = _mm_loadu_si128((const __m128i *)w[b].qs);                                           \
        __m256i q = _mm256_and_si256(                                                                      \
            _mm256_insertf128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1), low4);       \
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)x[b].qs)), ones); \
        s = _mm256_sub_epi32(s, _mm256_set1_epi32(xs[b].s));                                              \
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(_cvtsh_ss(w[b].d) * xs[b].d), acc);    \
    }
    for (; b + 1 < nb; b += 2) {
        _mm_prefetch((const char *)(w + b) + ROW_AHEAD, _MM_HINT_T0);
        BLOCK(b, a0)
        BLOCK(b + 1, a1)
    }
    if (b < nb) BLOCK(b, a0)
#undef BLOCK
    return hsum8(_mm256_add_ps(a0, a1));
}

AVX2_FN static float row_q8_0_avx2(int nb, const fs_block_q8_0 *w, const fs_block_q8_0 *x, const fs_q8_0_sum *xs) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int b = 0;
#define BLOCK(b, acc)                                                                                      \
    {                                                                                                      \
        __m256i s = dot32_i8(_mm256_loadu_si256((const __m256i *)w[b].qs),                                 \
                             _mm256_loadu_si256((const __m256i *)x[b].qs));                                \
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(_cvtsh_ss(w[b].d) * xs[b].d), acc);    \
    }
    for (; b + 1 < nb; b += 2) {
        _mm_prefetch((const char *)(w + b) + ROW_AHEAD, _MM_HINT_T0);
        BLOCK(b, a0)
        BLOCK(b + 1, a1)
    }
    if (b < nb) BLOCK(b, a0)
#undef BLOCK
    return hsum8(_mm256_add_ps(a0, a1));
}
#endif

#if defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>

/* sum of w[i] * x[i] over 32 int8 pairs, exact in int32. */
static inline int32_t dot32_i8_neon(int8x16_t w0, int8x16_t w1, int8x16_t x0, int8x16_t x1) {
#if defined(__ARM_FEATURE_DOTPROD)
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), w0, x0);
    s = vdotq_s32(s, w1, x1);
    return vaddvq_s32(s);
#else
    int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(x0));
    int16x8_t p1 = vmull_s8(vget_high_s8(w0), vget_high_s8(x0));
    int16x8_t p2 = vmull_s8(vget_low_s8(w1), vget_low_s8(x1));
    int16x8_t p3 = vmull_s8(vget_high_s8(w1), vget_high_s8(x1));
    int32x4_t s = vpaddlq_s16(p0);
    s = vpadalq_s16(s, p1);
    s = vpadalq_s16(s, p2);
    s = vpadalq_s16(s, p3);
    return vaddvq_s32(s);
#endif
}

/* The f32 sum runs in block order, as in the reference: only the integer
 * part is vectorized, so NEON results equal the _ref ones exactly. */
static float vec_dot_q8_0_q8_0_neon(int k, const fs_block_q8_0 *w, const fs_block_q8_0 *x) {
    float sum = 0.0f;
    for (int b = 0; b < k / FS_QK; b++) {
        int32_t s = dot32_i8_neon(vld1q_s8(w[b].qs), vld1q_s8(w[b].qs + 16), vld1q_s8(x[b].qs),
                                  vld1q_s8(x[b].qs + 16));
        sum += (float)s * (fs_f16_to_f32(w[b].d) * fs_f16_to_f32(x[b].d));
    }
    return sum;
}

static float vec_dot_q4_0_q8_0_neon(int k, const fs_block_q4_0 *w, const fs_block_q8_0 *x) {
    float sum = 0.0f;
    const uint8x16_t mask = vdupq_n_u8(15);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int b = 0; b < k / FS_QK; b++) {
        uint8x16_t raw = vld1q_u8(w[b].qs);
        int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, mask)), eight);
        int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), eight);
        int32_t s = dot32_i8_neon(w0, w1, vld1q_s8(x[b].qs), vld1q_s8(x[b].qs + 16));
        sum += (float)s * (fs_f16_to_f32(w[b].d) * fs_f16_to_f32(x[b].d));
    }
    return sum;
}
#endif

void fs_cpu_quantize_x(fs_isa isa, const float *x, fs_block_q8_0 *y, fs_q8_0_sum *sums, int k) {
#if defined(__x86_64__)
    if (isa == FS_ISA_AVX2) {
        quantize_row_q8_0_avx2(x, y, sums, k);
        return;
    }
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (isa == FS_ISA_NEON) {
        fs_quantize_x_neon(x, y, sums, k);   /* ops_neon.c */
        return;
    }
#endif
    (void)isa;
    fs_quantize_row_q8_0(x, y, k);
    fs_q8_0_sums(y, k, sums);
}

void fs_cpu_dot_rows_q8_0(fs_isa isa, int k, const fs_block_q8_0 *w, int nrows, const fs_block_q8_0 *x,
                          const fs_q8_0_sum *xs, float *out) {
    int nb = k / FS_QK;
    for (int r = 0; r < nrows; r++) {
        const fs_block_q8_0 *wr = w + (size_t)r * (size_t)nb;
        switch (isa) {
#if defined(__x86_64__)
        case FS_ISA_AVX2: out[r] = row_q8_0_avx2(nb, wr, x, xs); continue;
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
        case FS_ISA_NEON: out[r] = vec_dot_q8_0_q8_0_neon(k, wr, x); continue;
#endif
        default: out[r] = fs_vec_dot_q8_0_q8_0_ref(k, wr, x);
        }
    }
}

void fs_cpu_dot_rows_q4_0(fs_isa isa, int k, const fs_block_q4_0 *w, int nrows, const fs_block_q8_0 *x,
                          const fs_q8_0_sum *xs, float *out) {
    int nb = k / FS_QK;
    for (int r = 0; r < nrows; r++) {
        const fs_block_q4_0 *wr = w + (size_t)r * (size_t)nb;
        switch (isa) {
#if defined(__x86_64__)
        case FS_ISA_AVX2: out[r] = row_q4_0_avx2(nb, wr, x, xs); continue;
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
        case FS_ISA_NEON: out[r] = vec_dot_q4_0_q8_0_neon(k, wr, x); continue;
#endif
        default: out[r] = fs_vec_dot_q4_0_q8_0_ref(k, wr, x);
        }
    }
}
