/* exp_neon.h - e^x for 4 floats at once (aarch64 NEON), for SwiGLU and the
 * attention softmax of the CPU backend (ops_neon.c). aarch64 only.
 *
 *   e^x = 2^n * e^r,   n = round(x / ln 2),   r = x - n ln 2,  |r| <= ln2 / 2
 *
 * The method and the constants of exp_avx2.h (which says where they come
 * from), 4 lanes wide: ln 2 split into a high part with 8 significant bits
 * (n * LN2_HI exact) and a low part, e^r = 1 + r + r^2 p(r) with p of
 * degree 5, 2^n built in the exponent bits, x clamped to [-87.3, 88].
 * vrndnq_f32 rounds to nearest even as _mm256_round_ps does, and vfmsq_f32
 * (a - b c, one rounding) is the fnmadd of the x86 version, so both give
 * the same bits. tests/test_cpu_kernels.c compares it with exp in double
 * over the whole range (under qemu-aarch64: scripts/test_neon.sh).
 *
 * Docs: docs/cpu.md
 */
#ifndef FS_CPU_EXP_NEON_H
#define FS_CPU_EXP_NEON_H

#include <arm_neon.h>

static inline float32x4_t fs_exp4(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.0f));
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));   /* LN2_HI: 8 significant bits */
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));              /* LN2_LO = ln 2 - LN2_HI */
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    float32x4_t er = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), vmulq_f32(p, r), r);
    int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(er, vreinterpretq_f32_s32(bits));
}

#endif
