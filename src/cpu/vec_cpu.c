/* vec_cpu.c - small vector helpers for the CPU backend's attention and
 * its greedy pick.
 *
 *   fs_vargmax: the lowest i with x[i] = max x; -1 if any x[i] is NaN (argmax.c's rule)
 *   fs_vscale: y[i] *= a
 *   fs_vexp_sum: s[i] = e^(s[i] - m), returning the sum   (softmax numerators)
 *   fs_vdot_heads: s[h][b] = q[h] . k[b, h / group]        (every head's scores of nb positions)
 *   fs_vmix_heads: o[h] += sum_b p[h][b] v[b, h / group]   (probabilities times values)
 *   fs_vwiden_f16 / fs_vnarrow_f16: rows of an f16 KV cache to f32 and back
 *
 * The _heads forms are decode attention's inner loops (attention_cpu.c).
 * They walk the cache position by position, each position's kv heads in
 * order - the order of the bytes in memory, which is what the hardware
 * prefetchers follow best - and take f32 or f16 caches, widening f16
 * values in registers as they load them (exact). dot_heads computes the
 * query heads of a kv head two at a time, so each key is loaded (and
 * widened) once for both; mix_heads takes 4 positions a pass, so each
 * 8 floats of o are loaded and stored once per 4 values. Both ask for
 * the cache's lines `ahead` bytes further on into L2 (pf_ahead).
 *
 * One body per ISA (AVX2 chosen at run time, NEON at compile time - the
 * exp sum's in ops_neon.c - scalar otherwise). The _heads bodies need D a
 * multiple of 16 (AVX2) or 8 (NEON) for dot, 8 or 4 for mix; any other D
 * takes the scalar loops (f32 accumulation). 512-bit (AVX-512) bodies
 * were written and measured: no faster from memory (f32 within 5%, f16
 * slower), so there are none.
 *
 * Docs: docs/forward.md, docs/kv-cache.md
 */
#include <math.h>

#include "cpu_backend.h"

/* Ask for kv head chunk i's D values `ahead` bytes further on into L2
 * (prefetcht1 on x86, pldl2keep on aarch64): attention reads the cache in
 * address order, so these are the bytes it reads a little later. */
static inline void pf_ahead(const void *p, size_t i, int f16, int D, size_t ahead) {
    const char *c = (const char *)p + i * (f16 ? 2 : 4) + ahead;
    for (int o = 0; o < D * (f16 ? 2 : 4); o += 64) __builtin_prefetch(c + o, 0, 2);
}

#if defined(__x86_64__) || defined(__i386__) || (defined(__ARM_NEON) && defined(__aarch64__))
/* The lanes' answers (values m[], indices at[], L of them) and the tail
 * x[i0 .. n) to one: the largest value, of the lanes holding it the
 * lowest index (the lanes' index sets interleave), then the tail's later
 * indices only where strictly larger. -1 on a NaN in the tail. */
static int argmax_lanes(const float *m, const int32_t *at, int L, const float *x, int i0, int n) {
    float M = m[0];
    for (int l = 1; l < L; l++)
        if (m[l] > M) M = m[l];
    int best = n;
    for (int l = 0; l < L; l++)
        if (m[l] == M && at[l] < best) best = at[l];
    for (int i = i0; i < n; i++) {
        if (x[i] != x[i]) return -1;
        if (x[i] > M) M = x[i], best = i;
    }
    return best;
}
#endif

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

static inline TGT float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* A row of 8 keys or values, from f32 or f16 (widened exactly). */
#define TGTH __attribute__((target("avx2,fma,f16c")))
static inline __attribute__((always_inline)) TGTH __m256 kv8(const void *p, size_t i, int f16) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_loadu_ps((const float *)p + i);
}

/* dot_heads, D a multiple of 16: per position and kv head, the group's
 * query heads two at a time share each load of the key (and its f16
 * widening); 2 chains a head. */
static inline __attribute__((always_inline)) TGTH void dot_heads_avx2(size_t ahead, const float *q, const void *k,
                                                                     int f16, size_t stride, int nb, int Hkv,
                                                                     int group, int D, float *s, int lds) {
    for (int b = 0; b < nb; b++)
        for (int g = 0; g < Hkv; g++) {
            size_t kr = (size_t)b * stride + (size_t)g * (size_t)D;
            if (ahead) pf_ahead(k, kr, f16, D, ahead);
            int hh = 0;
            for (; hh + 2 <= group; hh += 2) {
                int h = g * group + hh;
                const float *q0 = q + (size_t)h * (size_t)D, *q1 = q0 + D;
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, c0 = a0, c1 = a0;
                for (int i = 0; i < D; i += 16) {
                    __m256 k0 = kv8(k, kr + (size_t)i, f16), k1 = kv8(k, kr + (size_t)i + 8, f16);
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + i), k0, a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + i + 8), k1, a1);
                    c0 = _mm256_fmadd_ps(_mm256_loadu_ps(q1 + i), k0, c0);
                    c1 = _mm256_fmadd_ps(_mm256_loadu_ps(q1 + i + 8), k1, c1);
                }
                s[(size_t)h * (size_t)lds + (size_t)b] = hsum8(_mm256_add_ps(a0, a1));
                s[(size_t)(h + 1) * (size_t)lds + (size_t)b] = hsum8(_mm256_add_ps(c0, c1));
            }
            for (; hh < group; hh++) {
                int h = g * group + hh;
                const float *q0 = q + (size_t)h * (size_t)D;
                __m256 a0 = _mm256_setzero_ps(), a1 = a0;
                for (int i = 0; i < D; i += 16) {
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + i), kv8(k, kr + (size_t)i, f16), a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + i + 8), kv8(k, kr + (size_t)i + 8, f16), a1);
                }
                s[(size_t)h * (size_t)lds + (size_t)b] = hsum8(_mm256_add_ps(a0, a1));
            }
        }
}

/* mix_heads, D a multiple of 8: 4 positions a pass (o loaded and stored
 * once per 4 values), the group's heads two at a time sharing each load
 * of the values; a last 1-3 positions one at a time. */
static inline __attribute__((always_inline)) TGTH void mix_heads_avx2(size_t ahead, float *const *o, const float *p,
                                                                     int ldp, const void *v, int f16, size_t stride,
                                                                     int nb, int Hkv, int group, int D) {
    int b = 0;
    for (; b + 4 <= nb; b += 4)
        for (int g = 0; g < Hkv; g++) {
            size_t r0 = (size_t)b * stride + (size_t)g * (size_t)D, r1 = r0 + stride, r2 = r1 + stride, r3 = r2 + stride;
            if (ahead)
                for (int r = 0; r < 4; r++) pf_ahead(v, r0 + (size_t)r * stride, f16, D, ahead);
            int hh = 0;
            for (; hh + 2 <= group; hh += 2) {
                int h = g * group + hh;
                const float *p0 = p + (size_t)h * (size_t)ldp + b, *p1 = p0 + ldp;
                __m256 x0 = _mm256_set1_ps(p0[0]), x1 = _mm256_set1_ps(p0[1]), x2 = _mm256_set1_ps(p0[2]),
                       x3 = _mm256_set1_ps(p0[3]);
                __m256 y0 = _mm256_set1_ps(p1[0]), y1 = _mm256_set1_ps(p1[1]), y2 = _mm256_set1_ps(p1[2]),
                       y3 = _mm256_set1_ps(p1[3]);
                float *o0 = o[h], *o1 = o[h + 1];
                for (int i = 0; i < D; i += 8) {
                    __m256 v0 = kv8(v, r0 + (size_t)i, f16), v1 = kv8(v, r1 + (size_t)i, f16);
                    __m256 v2 = kv8(v, r2 + (size_t)i, f16), v3 = kv8(v, r3 + (size_t)i, f16);
                    __m256 a = _mm256_loadu_ps(o0 + i), c = _mm256_loadu_ps(o1 + i);
                    a = _mm256_fmadd_ps(x0, v0, a), c = _mm256_fmadd_ps(y0, v0, c);
                    a = _mm256_fmadd_ps(x1, v1, a), c = _mm256_fmadd_ps(y1, v1, c);
                    a = _mm256_fmadd_ps(x2, v2, a), c = _mm256_fmadd_ps(y2, v2, c);
                    a = _mm256_fmadd_ps(x3, v3, a), c = _mm256_fmadd_ps(y3, v3, c);
                    _mm256_storeu_ps(o0 + i, a);
                    _mm256_storeu_ps(o1 + i, c);
                }
            }
            for (; hh < group; hh++) {
                int h = g * group + hh;
                const float *p0 = p + (size_t)h * (size_t)ldp + b;
                __m256 x0 = _mm256_set1_ps(p0[0]), x1 = _mm256_set1_ps(p0[1]), x2 = _mm256_set1_ps(p0[2]),
                       x3 = _mm256_set1_ps(p0[3]);
                float *o0 = o[h];
                for (int i = 0; i < D; i += 8) {
                    __m256 a = _mm256_loadu_ps(o0 + i);
                    a = _mm256_fmadd_ps(x0, kv8(v, r0 + (size_t)i, f16), a);
                    a = _mm256_fmadd_ps(x1, kv8(v, r1 + (size_t)i, f16), a);
                    a = _mm256_fmadd_ps(x2, kv8(v, r2 + (size_t)i, f16), a);
                    a = _mm256_fmadd_ps(x3, kv8(v, r3 + (size_t)i, f16), a);
                    _mm256_storeu_ps(o0 + i, a);
                }
            }
        }
    for (; b < nb; b++)
        for (int g = 0; g < Hkv; g++) {
            size_t r0 = (size_t)b * stride + (size_t)g * (size_t)D;
            for (int hh = 0; hh < group; hh++) {
                int h = g * group + hh;
                __m256 x0 = _mm256_set1_ps(p[(size_t)h * (size_t)ldp + (size_t)b]);
                float *o0 = o[h];
                for (int i = 0; i < D; i += 8)
                    _mm256_storeu_ps(o0 + i, _mm256_fmadd_ps(x0, kv8(v, r0 + (size_t)i, f16), _mm256_loadu_ps(o0 + i)));
            }
        }
}

static TGTH void dot_heads_f32_avx2(size_t ahead, const float *q, const void *k, size_t stride, int nb, int Hkv,
                                    int group, int D, float *s, int lds) {
    dot_heads_avx2(ahead, q, k, 0, stride, nb, Hkv, group, D, s, lds);
}
static TGTH void dot_heads_f16_avx2(size_t ahead, const float *q, const void *k, size_t stride, int nb, int Hkv,
                                    int group, int D, float *s, int lds) {
    dot_heads_avx2(ahead, q, k, 1, stride, nb, Hkv, group, D, s, lds);
}
static TGTH void mix_heads_f32_avx2(size_t ahead, float *const *o, const float *p, int ldp, const void *v,
                                    size_t stride, int nb, int Hkv, int group, int D) {
    mix_heads_avx2(ahead, o, p, ldp, v, 0, stride, nb, Hkv, group, D);
}
static TGTH void mix_heads_f16_avx2(size_t ahead, float *const *o, const float *p, int ldp, const void *v,
                                    size_t stride, int nb, int Hkv, int group, int D) {
    mix_heads_avx2(ahead, o, p, ldp, v, 1, stride, nb, Hkv, group, D);
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

/* max(v, m) keeps m where v is NaN, as the scalar loop's v > m does */
static TGT float vscale_max_avx2(float *y, float a, int n) {
    __m256 av = _mm256_set1_ps(a), mv = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(y + i), av);
        _mm256_storeu_ps(y + i, v);
        mv = _mm256_max_ps(v, mv);
    }
    float t[8], m = -INFINITY;
    _mm256_storeu_ps(t, mv);
    for (int k = 0; k < 8; k++)
        if (t[k] > m) m = t[k];
    for (; i < n; i++) {
        y[i] *= a;
        if (y[i] > m) m = y[i];
    }
    return m;
}

/* Greedy decoding's pick over V logits (151,936 for Qwen3): the scalar
 * loop (argmax.c) carries one chain - compare with the best so far,
 * branch - at ~3 ns an element on CPU D, 0.4 ms a token; here 4 chains
 * of 8 lanes, each lane keeping its largest value and the first index
 * that held it (a strict > blend, so a later equal value does not
 * replace it), and an unordered compare collecting NaNs. */
static TGT int vargmax_avx2(const float *x, int n) {
    if (n < 32) return -2;   /* the caller's scalar loop */
    __m256 m[4], nan = _mm256_setzero_ps();
    __m256i at[4], idx[4], step = _mm256_set1_epi32(32);
    for (int c = 0; c < 4; c++) {   /* the first 32: every lane holds a value */
        idx[c] = _mm256_setr_epi32(8 * c, 8 * c + 1, 8 * c + 2, 8 * c + 3, 8 * c + 4, 8 * c + 5, 8 * c + 6, 8 * c + 7);
        m[c] = _mm256_loadu_ps(x + 8 * c);
        at[c] = idx[c];
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(m[c], m[c], _CMP_UNORD_Q));
    }
    int i = 32;
    for (; i + 32 <= n; i += 32)
        for (int c = 0; c < 4; c++) {
            __m256 v = _mm256_loadu_ps(x + i + 8 * c), gt = _mm256_cmp_ps(v, m[c], _CMP_GT_OQ);
            idx[c] = _mm256_add_epi32(idx[c], step);
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            m[c] = _mm256_blendv_ps(m[c], v, gt);
            at[c] = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(at[c]), _mm256_castsi256_ps(idx[c]), gt));
        }
    if (_mm256_movemask_ps(nan)) return -1;
    float mv[32];
    int32_t av[32];
    for (int c = 0; c < 4; c++) {
        _mm256_storeu_ps(mv + 8 * c, m[c]);
        _mm256_storeu_si256((__m256i *)(av + 8 * c), at[c]);
    }
    return argmax_lanes(mv, av, 32, x, i, n);
}
#endif

#if defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>

/* vargmax_avx2's plan in 4 chains of 4 lanes (vcgt + vbsl). */
static int vargmax_neon(const float *x, int n) {
    if (n < 16) return -2;   /* the caller's scalar loop */
    float32x4_t m[4];
    uint32x4_t at[4], idx[4], ok = vdupq_n_u32(~0u), step = vdupq_n_u32(16);
    for (int c = 0; c < 4; c++) {
        const uint32_t first[4] = {4u * c, 4u * c + 1, 4u * c + 2, 4u * c + 3};
        idx[c] = vld1q_u32(first);
        m[c] = vld1q_f32(x + 4 * c);
        at[c] = idx[c];
        ok = vandq_u32(ok, vceqq_f32(m[c], m[c]));   /* false in a NaN's lane */
    }
    int i = 16;
    for (; i + 16 <= n; i += 16)
        for (int c = 0; c < 4; c++) {
            float32x4_t v = vld1q_f32(x + i + 4 * c);
            uint32x4_t gt = vcgtq_f32(v, m[c]);
            idx[c] = vaddq_u32(idx[c], step);
            ok = vandq_u32(ok, vceqq_f32(v, v));
            m[c] = vbslq_f32(gt, v, m[c]);
            at[c] = vbslq_u32(gt, idx[c], at[c]);
        }
    if (vminvq_u32(ok) == 0) return -1;
    float mv[16];
    int32_t av[16];
    for (int c = 0; c < 4; c++) {
        vst1q_f32(mv + 4 * c, m[c]);
        vst1q_s32(av + 4 * c, vreinterpretq_s32_u32(at[c]));
    }
    return argmax_lanes(mv, av, 16, x, i, n);
}

/* vmaxnm keeps the number where the other is NaN, as the scalar loop */
static float vscale_max_neon(float *y, float a, int n) {
    float32x4_t mv = vdupq_n_f32(-INFINITY);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(y + i), a);
        vst1q_f32(y + i, v);
        mv = vmaxnmq_f32(mv, v);
    }
    float m = vmaxnmvq_f32(mv);
    for (; i < n; i++) {
        y[i] *= a;
        if (y[i] > m) m = y[i];
    }
    return m;
}

static inline float32x4_t kv4(const void *p, size_t i, int f16) {
    if (f16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)p + i)));
    return vld1q_f32((const float *)p + i);
}

/* dot_heads / mix_heads, D a multiple of 8: the AVX2 bodies' order, 4
 * lanes at a time (the query heads of a group share each key load). */
static void dot_heads_neon(size_t ahead, const float *q, const void *k, int f16, size_t stride, int nb, int Hkv,
                           int group, int D, float *s, int lds) {
    for (int b = 0; b < nb; b++)
        for (int g = 0; g < Hkv; g++) {
            size_t kr = (size_t)b * stride + (size_t)g * (size_t)D;
            if (ahead) pf_ahead(k, kr, f16, D, ahead);
            int hh = 0;
            for (; hh + 2 <= group; hh += 2) {
                int h = g * group + hh;
                const float *q0 = q + (size_t)h * (size_t)D, *q1 = q0 + D;
                float32x4_t a0 = vdupq_n_f32(0), a1 = a0, c0 = a0, c1 = a0;
                for (int i = 0; i < D; i += 8) {
                    float32x4_t k0 = kv4(k, kr + (size_t)i, f16), k1 = kv4(k, kr + (size_t)i + 4, f16);
                    a0 = vfmaq_f32(a0, vld1q_f32(q0 + i), k0);
                    a1 = vfmaq_f32(a1, vld1q_f32(q0 + i + 4), k1);
                    c0 = vfmaq_f32(c0, vld1q_f32(q1 + i), k0);
                    c1 = vfmaq_f32(c1, vld1q_f32(q1 + i + 4), k1);
                }
                s[(size_t)h * (size_t)lds + (size_t)b] = vaddvq_f32(vaddq_f32(a0, a1));
                s[(size_t)(h + 1) * (size_t)lds + (size_t)b] = vaddvq_f32(vaddq_f32(c0, c1));
            }
            for (; hh < group; hh++) {
                int h = g * group + hh;
                const float *q0 = q + (size_t)h * (size_t)D;
                float32x4_t a0 = vdupq_n_f32(0), a1 = a0;
                for (int i = 0; i < D; i += 8) {
                    a0 = vfmaq_f32(a0, vld1q_f32(q0 + i), kv4(k, kr + (size_t)i, f16));
                    a1 = vfmaq_f32(a1, vld1q_f32(q0 + i + 4), kv4(k, kr + (size_t)i + 4, f16));
                }
                s[(size_t)h * (size_t)lds + (size_t)b] = vaddvq_f32(vaddq_f32(a0, a1));
            }
        }
}

static void mix_heads_neon(size_t ahead, float *const *o, const float *p, int ldp, const void *v, int f16,
                           size_t stride, int nb, int Hkv, int group, int D) {
    int b = 0;
    for (; b + 2 <= nb; b += 2)   /* 2 positions a pass */
        for (int g = 0; g < Hkv; g++) {
            size_t r0 = (size_t)b * stride + (size_t)g * (size_t)D, r1 = r0 + stride;
            if (ahead) pf_ahead(v, r0, f16, D, ahead), pf_ahead(v, r1, f16, D, ahead);
            for (int hh = 0; hh < group; hh++) {
                int h = g * group + hh;
                float x0 = p[(size_t)h * (size_t)ldp + (size_t)b], x1 = p[(size_t)h * (size_t)ldp + (size_t)b + 1];
                float *o0 = o[h];
                for (int i = 0; i < D; i += 4) {
                    float32x4_t a = vld1q_f32(o0 + i);
                    a = vfmaq_n_f32(a, kv4(v, r0 + (size_t)i, f16), x0);
                    a = vfmaq_n_f32(a, kv4(v, r1 + (size_t)i, f16), x1);
                    vst1q_f32(o0 + i, a);
                }
            }
        }
    for (; b < nb; b++)
        for (int g = 0; g < Hkv; g++) {
            size_t r0 = (size_t)b * stride + (size_t)g * (size_t)D;
            for (int hh = 0; hh < group; hh++) {
                int h = g * group + hh;
                float x0 = p[(size_t)h * (size_t)ldp + (size_t)b], *o0 = o[h];
                for (int i = 0; i < D; i += 4) vst1q_f32(o0 + i, vfmaq_n_f32(vld1q_f32(o0 + i), kv4(v, r0 + (size_t)i, f16), x0));
            }
        }
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

static inline float kv1(const void *p, size_t i, int f16) {
    return f16 ? fs_f16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

int fs_vargmax(fs_isa isa, const float *x, int n) {
    int r = -2;
#if defined(__x86_64__) || defined(__i386__)
    if (isa == FS_ISA_AVX2) r = vargmax_avx2(x, n);
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (isa == FS_ISA_NEON) r = vargmax_neon(x, n);
#endif
    return r != -2 ? r : fs_ref_argmax_of(x, n);
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

float fs_vscale_max(fs_isa isa, float *y, float a, int n) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == FS_ISA_AVX2) return vscale_max_avx2(y, a, n);
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (isa == FS_ISA_NEON) return vscale_max_neon(y, a, n);
#endif
    float m = -INFINITY;
    for (int i = 0; i < n; i++) {
        y[i] *= a;
        if (y[i] > m) m = y[i];
    }
    return m;
}

void fs_vdot_heads(fs_isa isa, size_t ahead, const float *q, const void *k, int f16, size_t stride, int nb, int Hkv,
                   int group, int D, float *s, int lds) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == FS_ISA_AVX2 && D % 16 == 0) {
        if (f16) dot_heads_f16_avx2(ahead, q, k, stride, nb, Hkv, group, D, s, lds);
        else dot_heads_f32_avx2(ahead, q, k, stride, nb, Hkv, group, D, s, lds);
        return;
    }
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (isa == FS_ISA_NEON && D % 8 == 0) { dot_heads_neon(ahead, q, k, f16, stride, nb, Hkv, group, D, s, lds); return; }
#endif
    (void)ahead;
    for (int b = 0; b < nb; b++)
        for (int h = 0; h < Hkv * group; h++) {
            const float *qh = q + (size_t)h * (size_t)D;
            size_t kr = (size_t)b * stride + (size_t)(h / group) * (size_t)D;
            float a[4] = {0, 0, 0, 0};   /* 4 chains */
            int i = 0;
            for (; i + 4 <= D; i += 4)
                for (int c = 0; c < 4; c++) a[c] += qh[i + c] * kv1(k, kr + (size_t)(i + c), f16);
            for (; i < D; i++) a[0] += qh[i] * kv1(k, kr + (size_t)i, f16);
            s[(size_t)h * (size_t)lds + (size_t)b] = (a[0] + a[1]) + (a[2] + a[3]);
        }
}

void fs_vmix_heads(fs_isa isa, size_t ahead, float *const *o, const float *p, int ldp, const void *v, int f16,
                   size_t stride, int nb, int Hkv, int group, int D) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa == FS_ISA_AVX2 && D % 8 == 0) {
        if (f16) mix_heads_f16_avx2(ahead, o, p, ldp, v, stride, nb, Hkv, group, D);
        else mix_heads_f32_avx2(ahead, o, p, ldp, v, stride, nb, Hkv, group, D);
        return;
    }
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (isa == FS_ISA_NEON && D % 4 == 0) { mix_heads_neon(ahead, o, p, ldp, v, f16, stride, nb, Hkv, group, D); return; }
#endif
    (void)ahead;
    for (int b = 0; b < nb; b++)
        for (int h = 0; h < Hkv * group; h++) {
            float pb = p[(size_t)h * (size_t)ldp + (size_t)b];
            size_t vr = (size_t)b * stride + (size_t)(h / group) * (size_t)D;
            for (int i = 0; i < D; i++) o[h][i] += pb * kv1(v, vr + (size_t)i, f16);
        }
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
