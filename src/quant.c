/* quant.c - Q8_0 / Q4_0 block quantization: rows, dot products, and the
 * one-time conversion of a loaded model's matrices.
 *
 *   Q8_0 block (34 bytes):  d = max|x| / 127        q[i] = round(x[i] / d)      x ~ d * q
 *   Q4_0 block (18 bytes):  d = m / -8, where m is the value of largest
 *                           magnitude (sign kept)    q[i] = clamp(round(x[i]/d + 8), 0, 15)
 *                                                     x ~ d * (q - 8)
 * Both follow GGUF (llama.cpp's ggml-quants reference code) so the bytes
 * match what a learner finds there. Q4_0 divides by -8, not by 7: the
 * extreme value m lands exactly on q = 0 (d * -8 = m) and the 16 levels
 * -8..7 are used on its side fully; the opposite extreme can only reach
 * +7 * |d| and clamps there (at most |m| / 8 off).
 * Rounding: Q8_0 rounds to nearest, ties to even (rintf), which is what the
 * AVX2 / NEON versions do too, so every version writes the same bytes. Q4_0
 * truncates x/d + 8.5 as GGUF does (ties round up).
 *
 * Dot products (the fast backend's inner loop, y = x W^T one row at a time):
 * the activations x are quantized to Q8_0 first, then per block
 *   sumi = sum_{i<32} qw[i] * qx[i]          exact, in integers
 *   sum += sumi * (d_w * d_x)                f32
 * The _ref versions do exactly that in scalar C, in block order; the SIMD
 * versions compute the same integer sums and differ only in the order of
 * the f32 additions (several accumulators, summed at the end).
 *
 * AVX2: the instruction that multiplies bytes, _mm256_maddubs_epi16, wants
 * one operand unsigned. a * b = |a| * (b * sign(a)), so we pass |w| (as
 * unsigned) and x with w's sign moved onto it (_mm256_sign_epi8). Pairs of
 * products land in int16 (|127 * 127 * 2| < 32767: no saturation, because
 * Q8_0 never stores -128), _mm256_madd_epi16 with ones widens to 8 int32.
 * Q4_0 first unpacks 16 bytes into 32 nibbles (low nibbles are weights
 * 0..15, high nibbles 16..31) and subtracts 8.
 * The f16 scales are widened with F16C's vcvtph2ps (_cvtsh_ss, exact like
 * fs_f16_to_f32, but one instruction instead of a call: it doubled the
 * kernels' speed). The fs Makefile builds for baseline x86-64, so the AVX2
 * code is compiled with a target attribute and chosen at run time (cpuid).
 * NEON: vdotq_s32 (4 int8 products per int32 lane) when the CPU has the dot
 * product extension, else vmull_s8 (int16 products) + vpadalq_s16.
 *
 * Docs: docs/quantization.md
 */
#include "quant.h"
#include "safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QUANT_X86 1
#include <immintrin.h>
#include <cpuid.h>
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#define ROUND_NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#elif defined(__ARM_NEON) && defined(__aarch64__)
#define QUANT_NEON 1
#include <arm_neon.h>
#endif

/* The struct layouts are the file format: no padding allowed. */
_Static_assert(sizeof(fs_block_q8_0) == 34, "Q8_0 block must be 34 bytes");
_Static_assert(sizeof(fs_block_q4_0) == 18, "Q4_0 block must be 18 bytes");

size_t fs_quant_row_bytes(fs_dtype t, int k) { return fs_dtype_row_bytes(t, k); }

int fs_dtype_from_weights_name(const char *s, fs_dtype *out) {
    static const struct {
        const char *name;
        fs_dtype t;
    } names[] = {{"bf16", FS_DTYPE_BF16}, {"f16", FS_DTYPE_F16},   {"f32", FS_DTYPE_F32},
                 {"q8_0", FS_DTYPE_Q8_0}, {"q4_0", FS_DTYPE_Q4_0}};
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].name)) {
            *out = names[i].t;
            return 0;
        }
    return -1;
}

/* ---- quantize / dequantize ------------------------------------------ */

static void quantize_row_q8_0_scalar(const float *x, fs_block_q8_0 *y, int k) {
    for (int b = 0; b < k / FS_QK; b++) {
        const float *xb = x + (size_t)b * FS_QK;
        float amax = 0.0f;
        for (int i = 0; i < FS_QK; i++) amax = fmaxf(amax, fabsf(xb[i]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fs_f32_to_f16(d);
        for (int i = 0; i < FS_QK; i++) y[b].qs[i] = (int8_t)rintf(xb[i] * id);
    }
}

#ifdef QUANT_X86
/* Same operations as the scalar version, 8 lanes at a time, so the bytes
 * are identical: max of |x| is exact, d and 1/d are the same scalar f32
 * operations, and _mm256_round_ps rounds to nearest-even like rintf. */
AVX2_FN static void quantize_row_q8_0_avx2(const float *x, fs_block_q8_0 *y, fs_q8_0_sum *sums, int k) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < k / FS_QK; b++) {
        const float *xb = x + (size_t)b * FS_QK;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign_bit, v0), _mm256_andnot_ps(sign_bit, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign_bit, v2), _mm256_andnot_ps(sign_bit, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = _cvtss_sh(d, 0);   /* F16C, round to nearest even as fs_f32_to_f16 */
        const __m256 vid = _mm256_set1_ps(id);
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

/* Decided once, before main (a constructor), so the hot path reads a plain
 * int and threads never race to initialize it. F16C is CPUID leaf 1, ECX
 * bit 29 (clang 14's __builtin_cpu_supports does not know "f16c"). */
static int cpu_avx2;
__attribute__((constructor)) static void detect_cpu(void) {
    unsigned a, b, c, d;
    __builtin_cpu_init();
    int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1);
    cpu_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
}
static int have_avx2(void) { return cpu_avx2; }
#endif

void fs_quantize_row_q8_0(const float *x, fs_block_q8_0 *y, int k) {
#ifdef QUANT_X86
    if (have_avx2()) {
        quantize_row_q8_0_avx2(x, y, NULL, k);
        return;
    }
#endif
    quantize_row_q8_0_scalar(x, y, k);
}

void fs_quantize_row_q8_0_sums(const float *x, fs_block_q8_0 *y, fs_q8_0_sum *sums, int k) {
#ifdef QUANT_X86
    if (have_avx2()) {
        quantize_row_q8_0_avx2(x, y, sums, k);
        return;
    }
#endif
    quantize_row_q8_0_scalar(x, y, k);
    fs_q8_0_sums(y, k, sums);
}

void fs_quantize_row_q4_0(const float *x, fs_block_q4_0 *y, int k) {
    for (int b = 0; b < k / FS_QK; b++) {
        const float *xb = x + (size_t)b * FS_QK;
        float amax = 0.0f, m = 0.0f; /* largest magnitude, and that value with its sign */
        for (int i = 0; i < FS_QK; i++)
            if (fabsf(xb[i]) > amax) {
                amax = fabsf(xb[i]);
                m = xb[i];
            }
        float d = m / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fs_f32_to_f16(d);
        for (int i = 0; i < FS_QK / 2; i++) {
            /* x/d lies in [-8, 8]; + 8.5 then truncation rounds half up into
             * [0, 16.5]; only the far extreme (16) needs the clamp. */
            int lo = (int)(xb[i] * id + 8.5f), hi = (int)(xb[i + 16] * id + 8.5f);
            lo = lo < 0 ? 0 : lo > 15 ? 15 : lo;
            hi = hi < 0 ? 0 : hi > 15 ? 15 : hi;
            y[b].qs[i] = (uint8_t)(lo | hi << 4);
        }
    }
}

void fs_dequantize_row_q8_0(const fs_block_q8_0 *x, float *y, int k) {
    for (int b = 0; b < k / FS_QK; b++) {
        float d = fs_f16_to_f32(x[b].d);
        for (int i = 0; i < FS_QK; i++) y[(size_t)b * FS_QK + (size_t)i] = d * (float)x[b].qs[i];
    }
}

void fs_dequantize_row_q4_0(const fs_block_q4_0 *x, float *y, int k) {
    for (int b = 0; b < k / FS_QK; b++) {
        float d = fs_f16_to_f32(x[b].d);
        float *yb = y + (size_t)b * FS_QK;
        for (int i = 0; i < FS_QK / 2; i++) {
            yb[i] = d * (float)((x[b].qs[i] & 15) - 8);
            yb[i + 16] = d * (float)((x[b].qs[i] >> 4) - 8);
        }
    }
}

/* ---- dot products: scalar reference --------------------------------- */

float fs_vec_dot_q8_0_q8_0_ref(int k, const fs_block_q8_0 *w, const fs_block_q8_0 *x) {
    float sum = 0.0f;
    for (int b = 0; b < k / FS_QK; b++) {
        int sumi = 0;
        for (int i = 0; i < FS_QK; i++) sumi += w[b].qs[i] * x[b].qs[i];
        sum += (float)sumi * (fs_f16_to_f32(w[b].d) * fs_f16_to_f32(x[b].d));
    }
    return sum;
}

float fs_vec_dot_q4_0_q8_0_ref(int k, const fs_block_q4_0 *w, const fs_block_q8_0 *x) {
    float sum = 0.0f;
    for (int b = 0; b < k / FS_QK; b++) {
        int sumi = 0;
        for (int i = 0; i < FS_QK / 2; i++) {
            sumi += ((w[b].qs[i] & 15) - 8) * x[b].qs[i];
            sumi += ((w[b].qs[i] >> 4) - 8) * x[b].qs[i + 16];
        }
        sum += (float)sumi * (fs_f16_to_f32(w[b].d) * fs_f16_to_f32(x[b].d));
    }
    return sum;
}

/* ---- dot products: AVX2 --------------------------------------------- */

#ifdef QUANT_X86
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

/* The scale product d_w * d_x is formed in scalar f32 exactly as in the
 * reference; two accumulators so consecutive blocks' FMAs overlap. */
AVX2_FN static float vec_dot_q8_0_q8_0_avx2(int k, const fs_block_q8_0 *w, const fs_block_q8_0 *x) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int nb = k / FS_QK, b = 0;
    for (; b + 1 < nb; b += 2) {
        __m256i s0 = dot32_i8(_mm256_loadu_si256((const __m256i *)w[b].qs),
                              _mm256_loadu_si256((const __m256i *)x[b].qs));
        __m256i s1 = dot32_i8(_mm256_loadu_si256((const __m256i *)w[b + 1].qs),
                              _mm256_loadu_si256((const __m256i *)x[b + 1].qs));
        float d0 = _cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d);
        float d1 = _cvtsh_ss(w[b + 1].d) * _cvtsh_ss(x[b + 1].d);
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_set1_ps(d0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), _mm256_set1_ps(d1), acc1);
    }
    for (; b < nb; b++) {
        __m256i s = dot32_i8(_mm256_loadu_si256((const __m256i *)w[b].qs),
                             _mm256_loadu_si256((const __m256i *)x[b].qs));
        float d = _cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d);
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

/* 16 bytes of nibbles -> 32 int8 weights in -8..7, in weight order: the low
 * nibbles (weights 0..15) in the low 128 bits, the high nibbles above. */
AVX2_FN static inline __m256i unpack_q4(const uint8_t *qs) {
    __m128i raw = _mm_loadu_si128((const __m128i *)qs);
    __m256i both = _mm256_insertf128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1);
    __m256i nib = _mm256_and_si256(both, _mm256_set1_epi8(15));
    return _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
}

AVX2_FN static float vec_dot_q4_0_q8_0_avx2(int k, const fs_block_q4_0 *w, const fs_block_q8_0 *x) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int nb = k / FS_QK, b = 0;
    for (; b + 1 < nb; b += 2) {
        __m256i s0 = dot32_i8(unpack_q4(w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs));
        __m256i s1 = dot32_i8(unpack_q4(w[b + 1].qs), _mm256_loadu_si256((const __m256i *)x[b + 1].qs));
        float d0 = _cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d);
        float d1 = _cvtsh_ss(w[b + 1].d) * _cvtsh_ss(x[b + 1].d);
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_set1_ps(d0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), _mm256_set1_ps(d1), acc1);
    }
    for (; b < nb; b++) {
        __m256i s = dot32_i8(unpack_q4(w[b].qs), _mm256_loadu_si256((const __m256i *)x[b].qs));
        float d = _cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d);
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}
/* One weight row against one activation row whose sums are known (decode,
 * called for every row of a matrix). Q4_0 skips the sign trick: the
 * nibbles q_w = w + 8 (0..15) are unsigned as they are, so maddubs(q_w, x)
 * is exact and
 *   sum w x = sum q_w x - 8 sum x,
 * with sum x taken from xs (computed once per activation row and shared
 * by all N rows), as is x's scale in f32. The 8 int32 lanes each hold a
 * partial sum of the block (4 of its 32 products), so each lane subtracts
 * sum x once: 8 sum x in all. Rows are done one after the
 * other: the weights then stream through memory in order, which the
 * hardware prefetcher follows (4 rows interleaved ran 2x slower), helped by
 * a software prefetch PREFETCH_AHEAD bytes ahead. */
/* Bytes ahead of the read position to prefetch, non-temporal (see gemv1_dt
 * in src/cpu/matmul_avx2.c: 16 KiB measured best for a single stream). */
#define PREFETCH_AHEAD 16384

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
        _mm_prefetch((const char *)(w + b) + PREFETCH_AHEAD, _MM_HINT_NTA);
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
        _mm_prefetch((const char *)(w + b) + PREFETCH_AHEAD, _MM_HINT_NTA);
        BLOCK(b, a0)
        BLOCK(b + 1, a1)
    }
    if (b < nb) BLOCK(b, a0)
#undef BLOCK
    return hsum8(_mm256_add_ps(a0, a1));
}
#endif

/* ---- dot products: NEON --------------------------------------------- */

#ifdef QUANT_NEON
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

float fs_vec_dot_q8_0_q8_0(int k, const fs_block_q8_0 *w, const fs_block_q8_0 *x) {
#if defined(QUANT_X86)
    if (have_avx2()) return vec_dot_q8_0_q8_0_avx2(k, w, x);
#elif defined(QUANT_NEON)
    return vec_dot_q8_0_q8_0_neon(k, w, x);
#endif
    return fs_vec_dot_q8_0_q8_0_ref(k, w, x);
}

float fs_vec_dot_q4_0_q8_0(int k, const fs_block_q4_0 *w, const fs_block_q8_0 *x) {
#if defined(QUANT_X86)
    if (have_avx2()) return vec_dot_q4_0_q8_0_avx2(k, w, x);
#elif defined(QUANT_NEON)
    return vec_dot_q4_0_q8_0_neon(k, w, x);
#endif
    return fs_vec_dot_q4_0_q8_0_ref(k, w, x);
}

/* ---- model conversion ----------------------------------------------- */

/* Row n of a [N, K] tensor of any dtype, as f32. */
static void read_row(const fs_tensor *t, int64_t n, int K, float *out) {
    const uint8_t *row = (const uint8_t *)t->data + (size_t)n * fs_dtype_row_bytes(t->dtype, K);
    switch (t->dtype) {
    case FS_DTYPE_F32: memcpy(out, row, (size_t)K * sizeof(float)); break;
    case FS_DTYPE_F16:
        for (int i = 0; i < K; i++) {
            uint16_t h;
            memcpy(&h, row + 2 * (size_t)i, 2);
            out[i] = fs_f16_to_f32(h);
        }
        break;
    case FS_DTYPE_BF16:
        for (int i = 0; i < K; i++) {
            uint16_t h;
            memcpy(&h, row + 2 * (size_t)i, 2);
            out[i] = fs_bf16_to_f32(h);
        }
        break;
    case FS_DTYPE_Q8_0: fs_dequantize_row_q8_0((const fs_block_q8_0 *)row, out, K); break;
    case FS_DTYPE_Q4_0: fs_dequantize_row_q4_0((const fs_block_q4_0 *)row, out, K); break;
    }
}

/* Write K f32 values as one row of dtype `to` at dst. Returns 0, or -1 when
 * a value (or a block scale) does not fit the target's range. */
static int write_row(const float *x, int K, fs_dtype to, uint8_t *dst) {
    switch (to) {
    case FS_DTYPE_F32: memcpy(dst, x, (size_t)K * sizeof(float)); return 0;
    case FS_DTYPE_F16:
        for (int i = 0; i < K; i++) {
            uint16_t h = fs_f32_to_f16(x[i]);
            if (isfinite(x[i]) && !isfinite(fs_f16_to_f32(h))) return -1;
            memcpy(dst + 2 * (size_t)i, &h, 2);
        }
        return 0;
    case FS_DTYPE_BF16:
        for (int i = 0; i < K; i++) {
            uint16_t h = fs_f32_to_bf16(x[i]);
            memcpy(dst + 2 * (size_t)i, &h, 2);
        }
        return 0;
    case FS_DTYPE_Q8_0:
    case FS_DTYPE_Q4_0: {
        if (to == FS_DTYPE_Q8_0) fs_quantize_row_q8_0(x, (fs_block_q8_0 *)dst, K);
        else fs_quantize_row_q4_0(x, (fs_block_q4_0 *)dst, K);
        /* the block scale is an f16: a block whose largest |x| is beyond
         * 127 * 65504 (8 * 65504 for Q4_0) cannot be stored */
        size_t bs = fs_dtype_row_bytes(to, FS_QK);
        for (int b = 0; b < K / FS_QK; b++) {
            uint16_t d;
            memcpy(&d, dst + (size_t)b * bs, 2);
            if (!isfinite(fs_f16_to_f32(d))) return -1;
        }
        return 0;
    }
    }
    return -1;
}

/* Convert one bound matrix in place (the tensor then points at memory the
 * model owns). Block formats need K % 32 == 0; other matrices are kept as
 * stored, with a note on stderr (Qwen3 has none). */
static int convert_tensor(fs_model *m, fs_tensor *t, fs_dtype to, float *scratch, fs_err *e) {
    if (t->dtype == to || !t->data) return 0;
    int64_t N = t->shape[0], K = t->shape[1];
    if (t->ndim != 2) return fs_errf(e, "convert: tensor %s is not a matrix", t->name);
    if (fs_dtype_is_quant(to) && K % FS_QK) {
        fprintf(stderr, "fs: note: %s has K = %lld, not a multiple of %d; kept as %s, not %s\n", t->name,
                (long long)K, FS_QK, fs_dtype_name(t->dtype), fs_dtype_name(to));
        return 0;
    }
    size_t row_bytes = fs_dtype_row_bytes(to, K), bytes;
    if (!fs_mul_size(row_bytes, (size_t)N, &bytes))
        return fs_errf(e, "convert: tensor %s: %s size overflows", t->name, fs_dtype_name(to));
    uint8_t *dst = fs_model_own(m, bytes);
    if (!dst) return fs_errf(e, "convert: tensor %s: out of memory allocating %zu bytes", t->name, bytes);
    for (int64_t n = 0; n < N; n++) {
        read_row(t, n, (int)K, scratch);
        if (write_row(scratch, (int)K, to, dst + (size_t)n * row_bytes))
            return fs_errf(e, "convert: tensor %s row %lld: a value is too large for %s", t->name, (long long)n,
                           fs_dtype_name(to));
    }
    if (t->file_backed) fs_st_release_pages(t->data, t->nbytes);   /* the file's copy is not needed now */
    t->dtype = to;
    t->data = dst;
    t->file_backed = 0;
    t->nbytes = bytes;
    return 0;
}

int fs_model_convert(fs_model *m, fs_dtype to, fs_err *e) {
    const fs_config *c = &m->cfg;
    int64_t maxK = c->hidden;
    if ((int64_t)c->n_heads * c->head_dim > maxK) maxK = (int64_t)c->n_heads * c->head_dim;
    if (c->ffn > maxK) maxK = c->ffn;
    float *scratch = fs_xmalloc((size_t)maxK * sizeof(float));
    int tied = m->lm_head.data == m->embed_tokens.data;
    int rc = convert_tensor(m, &m->embed_tokens, to, scratch, e);
    for (int l = 0; l < c->n_layers && !rc; l++) {
        fs_layer *L = &m->layers[l];
        fs_tensor *mats[] = {&L->q_proj, &L->k_proj, &L->v_proj, &L->o_proj,
                             &L->gate_proj, &L->up_proj, &L->down_proj};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0] && !rc; i++) rc = convert_tensor(m, mats[i], to, scratch, e);
    }
    /* Tied: the output projection is the embedding matrix, converted once. */
    if (!rc && tied)
        m->lm_head = m->embed_tokens;
    else if (!rc) {
        rc = convert_tensor(m, &m->lm_head, to, scratch, e);
    }
    free(scratch);
    return rc;
}

void fs_q8_0_sums(const fs_block_q8_0 *x, int k, fs_q8_0_sum *out) {
    for (int b = 0; b < k / FS_QK; b++) {
        int s = 0;
        for (int i = 0; i < FS_QK; i++) s += x[b].qs[i];
        out[b].d = fs_f16_to_f32(x[b].d);
        out[b].s = s;
    }
}

void fs_vec_dot_q8_0_q8_0_rows(int k, const fs_block_q8_0 *w, int nrows, const fs_block_q8_0 *x,
                               const fs_q8_0_sum *xs, float *out) {
    int r = 0, nb = k / FS_QK;
#if defined(QUANT_X86)
    if (have_avx2())
        for (; r < nrows; r++) out[r] = row_q8_0_avx2(nb, w + (size_t)r * nb, x, xs);
#endif
    (void)xs;
    for (; r < nrows; r++) out[r] = fs_vec_dot_q8_0_q8_0(k, w + (size_t)r * nb, x);
}

void fs_vec_dot_q4_0_q8_0_rows(int k, const fs_block_q4_0 *w, int nrows, const fs_block_q8_0 *x,
                               const fs_q8_0_sum *xs, float *out) {
    int r = 0, nb = k / FS_QK;
#if defined(QUANT_X86)
    if (have_avx2())
        for (; r < nrows; r++) out[r] = row_q4_0_avx2(nb, w + (size_t)r * nb, x, xs);
#endif
    (void)xs;
    for (; r < nrows; r++) out[r] = fs_vec_dot_q4_0_q8_0(k, w + (size_t)r * nb, x);
}
