/* vec_cpu.c - small vector helpers for the CPU backend's attention.
 *
 *   fs_vscale: y[i] *= a
 *   fs_vexp_sum: s[i] = e^(s[i] - m), returning the sum   (softmax numerators)
 *   fs_vdot_rows: s[b] = sum_i q[i] * k[b * stride + i]        b < nb (scores of a key block)
 *   fs_vmix_rows: o[i] += sum_b p[b] * v[b * stride + i]       (probabilities times values)
 *   fs_vwiden_f16 / fs_vnarrow_f16: rows of an f16 KV cache to f32 and back
 *
 * The _rows forms exist for attention's inner loops: dot_rows does 4 keys
 * at once (q loaded once per 4 keys, one horizontal sum per 4 keys instead
 * of per key), mix_rows keeps 32 floats of o in registers across the whole
 * block of values instead of loading and storing o once per key.
 *
 * One body per ISA (AVX2 chosen at run time, NEON at compile time - the
 * exp sum's in ops_neon.c - scalar otherwise), any n (vector tails handled one element at a time). Without
 * AVX2 the _rows forms are loops of vdot / vaxpy (f32 accumulation).
 *
 * Docs: docs/forward.md, docs/kv-cache.md
 */
#include <math.h>

#include "cpu_backend.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "exp_avx2.h"
#define TGT __attribute__((target("avx2,fma")))

static TGT float vexp_sum_avx2(float *s, float m, int n) {
    __m256 mv = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = fs_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + i), mv));
        _mm256_storeu_ps(s + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float t[8], sum = 0.0f;
    _mm256_storeu_ps(t, acc);
    for (int k = 0; k < 8; k++) sum += t[k];
    for (; i < n; i++) {
        s[i] = expf(s[i] - m);
        sum += s[i];
    }
    return sum;
}

static TGT float vdot_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float r = _mm_cvtss_f32(s);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

static TGT float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static TGT void vdot_rows_avx2(const float *q, const float *k, size_t stride, int nb, int n, float *s) {
    int b = 0;
    for (; b + 4 <= nb; b += 4) {
        const float *k0 = k + (size_t)b * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int i = 0;
        for (; i + 16 <= n; i += 16) {   /* 8 chains */
            __m256 qv = _mm256_loadu_ps(q + i), qw = _mm256_loadu_ps(q + i + 8);
            a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + i), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + i), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + i), a3);
            b0 = _mm256_fmadd_ps(qw, _mm256_loadu_ps(k0 + i + 8), b0);
            b1 = _mm256_fmadd_ps(qw, _mm256_loadu_ps(k1 + i + 8), b1);
            b2 = _mm256_fmadd_ps(qw, _mm256_loadu_ps(k2 + i + 8), b2);
            b3 = _mm256_fmadd_ps(qw, _mm256_loadu_ps(k3 + i + 8), b3);
        }
        a0 = _mm256_add_ps(a0, b0), a1 = _mm256_add_ps(a1, b1), a2 = _mm256_add_ps(a2, b2), a3 = _mm256_add_ps(a3, b3);
        for (; i + 8 <= n; i += 8) {
            __m256 qv = _mm256_loadu_ps(q + i);
            a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + i), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + i), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + i), a3);
        }
        float r0 = hsum8(a0), r1 = hsum8(a1), r2 = hsum8(a2), r3 = hsum8(a3);
        for (; i < n; i++) r0 += q[i] * k0[i], r1 += q[i] * k1[i], r2 += q[i] * k2[i], r3 += q[i] * k3[i];
        s[b] = r0, s[b + 1] = r1, s[b + 2] = r2, s[b + 3] = r3;
    }
    for (; b < nb; b++) s[b] = vdot_avx2(q, k + (size_t)b * stride, n);
}

static TGT void vmix_rows_avx2(float *o, const float *p, const float *v, size_t stride, int nb, int n) {
    int i = 0;
    /* 64 floats of o = 8 independent FMA chains (enough to cover the FMA
     * latency; 4 chains run at half speed) */
    for (; i + 64 <= n; i += 64) {
        __m256 a[8];
        for (int c = 0; c < 8; c++) a[c] = _mm256_loadu_ps(o + i + 8 * c);
        for (int b = 0; b < nb; b++) {
            const float *vb = v + (size_t)b * stride + i;
            __m256 pb = _mm256_set1_ps(p[b]);
            a[0] = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb), a[0]);
            a[1] = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 8), a[1]);
            a[2] = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 16), a[2]);
            a[3] = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 24), a[3]);
            a[4] = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 32), a[4]);
            a[5] = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 40), a[5]);
            a[6] = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 48), a[6]);
            a[7] = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 56), a[7]);
        }
        for (int c = 0; c < 8; c++) _mm256_storeu_ps(o + i + 8 * c, a[c]);
    }
    for (; i + 32 <= n; i += 32) {
        __m256 a0 = _mm256_loadu_ps(o + i), a1 = _mm256_loadu_ps(o + i + 8);
        __m256 a2 = _mm256_loadu_ps(o + i + 16), a3 = _mm256_loadu_ps(o + i + 24);
        for (int b = 0; b < nb; b++) {
            const float *vb = v + (size_t)b * stride + i;
            __m256 pb = _mm256_set1_ps(p[b]);
            a0 = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb), a0);
            a1 = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 8), a1);
            a2 = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 16), a2);
            a3 = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 24), a3);
        }
        _mm256_storeu_ps(o + i, a0);
        _mm256_storeu_ps(o + i + 8, a1);
        _mm256_storeu_ps(o + i + 16, a2);
        _mm256_storeu_ps(o + i + 24, a3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a0 = _mm256_loadu_ps(o + i);
        for (int b = 0; b < nb; b++) a0 = _mm256_fmadd_ps(_mm256_set1_ps(p[b]), _mm256_loadu_ps(v + (size_t)b * stride + i), a0);
        _mm256_storeu_ps(o + i, a0);
    }
    for (; i < n; i++)
        for (int b = 0; b < nb; b++) o[i] += p[b] * v[(size_t)b * stride + i];
}

static __attribute__((target("avx2,f16c"))) void widen_f16c(float *dst, const uint16_t *src, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = fs_f16_to_f32(src[i]);
}

static __attribute__((target("avx2,f16c"))) void narrow_f16c(uint16_t *dst, const float *src, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = fs_f32_to_f16(src[i]);
}

static TGT void vscale_avx2(float *y, float a, int n) {
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(av, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= a;
}
#endif

#if defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>

static float vdot_neon(const float *a, const float *b, int n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    float r = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

static void vaxpy_neon(float *y, float a, const float *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

static void widen_neon(float *dst, const uint16_t *src, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + i))));
    for (; i < n; i++) dst[i] = fs_f16_to_f32(src[i]);
}

static void narrow_neon(uint16_t *dst, const float *src, int n) {   /* FPCR's default: to nearest even */
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    for (; i < n; i++) dst[i] = fs_f32_to_f16(src[i]);
}

static void vscale_neon(float *y, float a, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
    for (; i < n; i++) y[i] *= a;
}
#endif

static float vdot(fs_isa isa, const float *a, const float *b, int n) {
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (isa == FS_ISA_NEON) return vdot_neon(a, b, n);
#endif
    (void)isa;
    float s[4] = {0, 0, 0, 0};   /* 4 chains, like the vector versions */
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s[j] += a[i + j] * b[i + j];
    for (; i < n; i++) s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static void vaxpy(fs_isa isa, float *y, float a, const float *x, int n) {
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (isa == FS_ISA_NEON) { vaxpy_neon(y, a, x, n); return; }
#endif
    (void)isa;
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

float fs_vexp_sum(fs_isa isa, float *s, float m, int n) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == FS_ISA_AVX2) return vexp_sum_avx2(s, m, n);
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (isa == FS_ISA_NEON) return fs_vexp_sum_neon(s, m, n);   /* ops_neon.c */
#endif
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        s[i] = expf(s[i] - m);
        sum += s[i];
    }
    return sum;
}

void fs_vscale(fs_isa isa, float *y, float a, int n) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == FS_ISA_AVX2) { vscale_avx2(y, a, n); return; }
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (isa == FS_ISA_NEON) { vscale_neon(y, a, n); return; }
#endif
    for (int i = 0; i < n; i++) y[i] *= a;
}

void fs_vdot_rows(fs_isa isa, const float *q, const float *k, size_t stride, int nb, int n, float *s) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == FS_ISA_AVX2) { vdot_rows_avx2(q, k, stride, nb, n, s); return; }
#endif
    for (int b = 0; b < nb; b++) s[b] = vdot(isa, q, k + (size_t)b * stride, n);
}

void fs_vmix_rows(fs_isa isa, float *o, const float *p, const float *v, size_t stride, int nb, int n) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == FS_ISA_AVX2) { vmix_rows_avx2(o, p, v, stride, nb, n); return; }
#endif
    for (int b = 0; b < nb; b++) vaxpy(isa, o, p[b], v + (size_t)b * stride, n);
}

void fs_vwiden_f16(fs_isa isa, float *dst, const uint16_t *src, size_t stride, int rows, int n) {
    for (int r = 0; r < rows; r++, dst += n, src += stride) {
#if defined(__x86_64__) || defined(__i386__)
        if (isa == FS_ISA_AVX2) { widen_f16c(dst, src, n); continue; }
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
        if (isa == FS_ISA_NEON) { widen_neon(dst, src, n); continue; }
#endif
        for (int i = 0; i < n; i++) dst[i] = fs_f16_to_f32(src[i]);
    }
}

void fs_vnarrow_f16(fs_isa isa, uint16_t *dst, const float *src, int n) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == FS_ISA_AVX2) { narrow_f16c(dst, src, n); return; }
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (isa == FS_ISA_NEON) { narrow_neon(dst, src, n); return; }
#endif
    (void)isa;
    for (int i = 0; i < n; i++) dst[i] = fs_f32_to_f16(src[i]);
}
