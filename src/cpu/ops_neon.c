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
 *   rope      one head's pairs (a, b) -> (a c - b s, b c + a s): the
 *             reference's products and sums, unfused (the build does not
 *             contract a * b + c into an FMA under -std=c11), so bit for
 *             bit the reference.
 *
 * Threads: none here; the callers split the work (swiglu: chunks of 4096
 * elements over the pool; rope: tokens over the pool; rmsnorm and the exp
 * sum run on the thread that calls them).
 *
 * Docs: docs/cpu.md, docs/forward.md
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
