/* ops_neon.c - the CPU backend's small ops on aarch64 NEON: rmsnorm,
 * SwiGLU, the softmax's exp, RoPE. The AVX2 versions live in the files
 * of the ops (rmsnorm_cpu.c, swiglu_cpu.c, vec_cpu.c, rope_kv_cpu.c),
 * which call these when the kernel set is NEON; each computes what its
 * AVX2 twin computes, 4 lanes at a time:
 *
 *   rmsnorm   y = x / sqrt(mean(x^2) + eps) * w: the sum of squares in
 *             double as the reference (2 doubles a lane pair: vcvt_f64_f32
 *             widens exactly), scale and product in f32; w bf16, f16 or
 *             f32 (widened exactly). Within one f32 rounding of the
 *             reference (the double sum reordered).
 *   swiglu    o = g / (1 + e^-g) * u with fs_exp4 (exp_neon.h) and a true
 *             division (vdivq_f32): a few ulp of the reference's double.
 *   exp_sum   s[i] = e^(s[i] - m), their sum: attention's softmax
 *             numerators, fs_exp4.
 *   quantize  x -> Q8_0 blocks and their sums (quant_cpu.c's
 *             fs_cpu_quantize_x): the scalar quantizer's operations - max
 *             |x|, d = max / 127 as f16, q = round-to-nearest-even(x * (1 /
 *             d)) - so the same bytes; a NaN or an infinity, or a scale that
 *             is 0 as an f16, gives the same constant block.
 *   rope      one head's pairs (a, b) -> (a c - b s, b c + a s): the
 *             reference's products and sums, unfused (the build does not
 *             contract a * b + c into an FMA under -std=c11), so bit for
 *             bit the reference.
 *
 * Threads: none here; the callers split the work (swiglu: chunks of 4096
 * elements over the pool; rope: tokens over the pool; rmsnorm and the exp
 * sum run on the thread that calls them).
 *
 * Docs: docs/cpu.md
 */
#include "cpu_backend.h"

#if defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>

#include "exp_neon.h"

static inline float32x4_t weight4(const void *w, fs_dtype wt, int i) {
    if (wt == FS_DTYPE_BF16) return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)w + i), 16));
    if (wt == FS_DTYPE_F16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)w + i)));
    return vld1q_f32((const float *)w + i);
}

void fs_rmsnorm_rows_neon(const float *x, const void *w, fs_dtype wt, float *y, int rows, int n, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * (size_t)n;
        float *yr = y + (size_t)r * (size_t)n;
        float64x2_t a0 = vdupq_n_f64(0), a1 = a0;
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            float32x4_t v = vld1q_f32(xr + i);
            float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
            a0 = vfmaq_f64(a0, lo, lo);
            a1 = vfmaq_f64(a1, hi, hi);
        }
        double ss = vaddvq_f64(vaddq_f64(a0, a1));
        for (; i < n; i++) ss += (double)xr[i] * (double)xr[i];
        float var = (float)(ss / n) + eps;
        float scale = (float)(1.0 / sqrt((double)var));
        for (i = 0; i + 4 <= n; i += 4)
            vst1q_f32(yr + i, vmulq_f32(weight4(w, wt, i), vmulq_n_f32(vld1q_f32(xr + i), scale)));
        for (; i < n; i++) yr[i] = fs_cpu_weight(w, wt, (size_t)i) * (xr[i] * scale);
    }
}

size_t fs_swiglu_neon(const float *g, const float *u, float *o, size_t i0, size_t i1) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    size_t i = i0;
    for (; i + 4 <= i1; i += 4) {
        float32x4_t gv = vld1q_f32(g + i);
        float32x4_t silu = vdivq_f32(gv, vaddq_f32(one, fs_exp4(vnegq_f32(gv))));
        vst1q_f32(o + i, vmulq_f32(silu, vld1q_f32(u + i)));
    }
    return i;
}

float fs_vexp_sum_neon(float *s, float m, int n) {
    float32x4_t mv = vdupq_n_f32(m), acc = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = fs_exp4(vsubq_f32(vld1q_f32(s + i), mv));
        vst1q_f32(s + i, e);
        acc = vaddq_f32(acc, e);
    }
    float sum = vaddvq_f32(acc);
    for (; i < n; i++) {
        s[i] = expf(s[i] - m);
        sum += s[i];
    }
    return sum;
}

void fs_quantize_x_neon(const float *x, fs_block_q8_0 *y, fs_q8_0_sum *sums, int k) {
    const float32x4_t inf = vdupq_n_f32(INFINITY);
    for (int b = 0; b < k / FS_QK; b++) {
        const float *xb = x + (size_t)b * FS_QK;
        float32x4_t v[8], m = vdupq_n_f32(0);
        uint32x4_t finite = vdupq_n_u32(~0u);
        for (int i = 0; i < 8; i++) {
            v[i] = vld1q_f32(xb + 4 * i);
            float32x4_t a = vabsq_f32(v[i]);
            finite = vandq_u32(finite, vcltq_f32(a, inf));   /* false for an infinity and a NaN */
            m = vmaxq_f32(m, a);
        }
        uint16_t h = 0x7e00;   /* a NaN or an infinity: scale NaN, every q 0, as quant.c */
        float d = 0.0f, dh = NAN;
        if (vminvq_u32(finite)) {
            d = vmaxvq_f32(m) / 127.0f;
            h = fs_f32_to_f16(d);
            dh = fs_f16_to_f32(h);
        }
        y[b].d = h;
        if (dh == 0.0f || isnan(dh)) {   /* NaN, or a scale that is 0 as an f16: all q 0 */
            vst1q_s8(y[b].qs, vdupq_n_s8(0));
            vst1q_s8(y[b].qs + 16, vdupq_n_s8(0));
            if (sums) sums[b].d = dh, sums[b].s = 0;
            continue;
        }
        float id = 1.0f / d;
        int16x8_t q[4];
        for (int i = 0; i < 4; i++)   /* f32 products, rounded to nearest even: rintf */
            q[i] = vcombine_s16(vmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[2 * i], id))),
                                vmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[2 * i + 1], id))));
        int8x16_t lo = vcombine_s8(vmovn_s16(q[0]), vmovn_s16(q[1]));
        int8x16_t hi = vcombine_s8(vmovn_s16(q[2]), vmovn_s16(q[3]));
        vst1q_s8(y[b].qs, lo);
        vst1q_s8(y[b].qs + 16, hi);
        if (sums) sums[b].d = dh, sums[b].s = vaddlvq_s8(lo) + vaddlvq_s8(hi);
    }
}

int fs_rope_head_neon(float *head, const float *c, const float *s, int half) {
    int i = 0;
    for (; i + 4 <= half; i += 4) {
        float32x4_t a = vld1q_f32(head + i), b = vld1q_f32(head + half + i);
        float32x4_t cv = vld1q_f32(c + i), sv = vld1q_f32(s + i);
        vst1q_f32(head + i, vsubq_f32(vmulq_f32(a, cv), vmulq_f32(b, sv)));
        vst1q_f32(head + half + i, vaddq_f32(vmulq_f32(b, cv), vmulq_f32(a, sv)));
    }
    return i;
}

#endif
