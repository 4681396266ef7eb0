/* fuzz_quant.c - libFuzzer target for the number formats: f32 -> f16, bf16,
 * Q8_0 and Q4_0, and back.
 *
 * The input bytes are read as raw f32 bit patterns (so NaN with any
 * payload, infinities, denormals, -0 and the largest finite values all
 * come up), at most 32 blocks of 32. What must hold:
 *   - f16 and bf16: NaN stays NaN, an infinity keeps its sign, a finite
 *     value in range rounds to the nearest representable one (neither
 *     neighbour is closer);
 *   - Q8_0 and Q4_0, blocks of finite values: every value comes back
 *     within the format's rounding error (half a step for Q8_0, a whole step
 *     for Q4_0, whose extreme is clamped from 16 to 15, plus what rounding
 *     the scale to f16 costs), or the block's scale is not finite (a block
 *     too large for an f16 scale, which fs_model_convert refuses);
 *   - a block holding a NaN or an infinity gets a scale that is not finite,
 *     so the value cannot hide as 0 (fs_model_convert refuses it, and a
 *     dequantized row is NaN);
 *   - the CPU backend's activation quantizer (fs_cpu_quantize_x, for the
 *     scalar kernels and, where the machine has it, AVX2) writes the bytes
 *     and sums of fs_quantize_row_q8_0 + fs_q8_0_sums, for any input (the
 *     AVX2 one had turned a NaN into a finite scale and q = -128);
 *   - no undefined behaviour on the way (built with UBSan's
 *     float-cast-overflow: a NaN or an out-of-range float cast to int).
 *
 *   make fuzz && build/fuzz/fuzz_quant fuzz/corpus/quant -max_total_time=300
 *
 * Docs: docs/testing.md
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "quant.h"

#if defined(__x86_64__)
#include <cpuid.h>
/* The AVX2 kernels need AVX2, FMA and F16C (src/cpu/backend_cpu.c has the
 * backend's own check; it is not linked into this target). */
static int have_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c >> 29 & 1) && (c >> 12 & 1) && __builtin_cpu_supports("avx2");
}
#else
static int have_avx2(void) { return 0; }
#endif

#define MAX_BLOCKS 32

static void die(const char *what, int i, float x, float got) {
    fprintf(stderr, "fuzz_quant: %s: element %d, x = %a (%g), got %a (%g)\n", what, i, x, x, got, got);
    abort();
}

/* Round-to-nearest check for a 16-bit format: h is the encoding of x;
 * neither neighbouring encoding (same sign) may be strictly closer. */
static void check_nearest(const char *what, int i, float x, uint16_t h, float (*to_f32)(uint16_t)) {
    float f = to_f32(h);
    if (isnan(x)) {
        if (!isnan(f)) die(what, i, x, f);
        return;
    }
    if (isinf(x)) {
        if (f != x) die(what, i, x, f);
        return;
    }
    if (isinf(f)) return; /* overflow: checked by the caller's range */
    if (signbit(f) != signbit(x) && f != 0) die(what, i, x, f);
    double err = fabs((double)f - (double)x);
    uint16_t mag = h & 0x7fff, sign = h & 0x8000;
    if (mag > 0) {
        float below = to_f32((uint16_t)(sign | (mag - 1)));
        if (fabs((double)below - (double)x) < err) die(what, i, x, f);
    }
    float above = to_f32((uint16_t)(sign | (mag + 1)));
    if (!isnan(above) && fabs((double)above - (double)x) < err) die(what, i, x, f);
}

static float bf16_to_f32(uint16_t h) { return fs_bf16_to_f32(h); }

/* Each value of the block back within tol(d, d16), or a scale that is not
 * finite; a block with a NaN or infinity must have a scale that is not. */
static void check_blocks(const char *what, const float *x, const float *y, const uint16_t *scales, const double *d_exact,
                         int nb, double steps, double qmax) {
    for (int b = 0; b < nb; b++) {
        const float *xb = x + b * FS_QK, *yb = y + b * FS_QK;
        int finite = 1;
        for (int i = 0; i < FS_QK; i++) finite &= isfinite(xb[i]) != 0;
        float d16 = fs_f16_to_f32(scales[b]);
        if (!finite) {
            if (isfinite(d16)) die(what, b * FS_QK, xb[0], d16); /* a NaN/Inf hidden behind a finite scale */
            continue;
        }
        if (!isfinite(d16)) continue; /* too large for an f16 scale: refused by fs_model_convert */
        /* |x - d16 q| <= |x - d q| + |q| |d - d16|, and |x - d q| is the
         * rounding of q (plus f32 rounding in x * (1/d)). */
        double d = fabs((double)d_exact[b]);
        double scale_err = qmax * fabs(fabs((double)d16) - d);
        for (int i = 0; i < FS_QK; i++) {
            double tol = steps * d + scale_err + 1e-6 * fabs((double)xb[i]);
            if (fabs((double)yb[i] - (double)xb[i]) > tol) die(what, b * FS_QK + i, xb[i], yb[i]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static float x[MAX_BLOCKS * FS_QK], y[MAX_BLOCKS * FS_QK];
    static double d_exact[MAX_BLOCKS]; /* the scale before any rounding */
    static fs_block_q8_0 q8[MAX_BLOCKS], q8s[MAX_BLOCKS];
    static fs_block_q4_0 q4[MAX_BLOCKS];
    static fs_q8_0_sum sums[MAX_BLOCKS], sums2[MAX_BLOCKS];
    size_t n_in = size / 4;
    if (n_in == 0) return 0;
    int nb = (int)((n_in + FS_QK - 1) / FS_QK);
    if (nb > MAX_BLOCKS) nb = MAX_BLOCKS;
    int k = nb * FS_QK;
    for (int i = 0; i < k; i++) memcpy(&x[i], data + 4 * ((size_t)i % n_in), 4); /* repeat to whole blocks */

    for (int i = 0; i < k; i++) {
        check_nearest("f16", i, x[i], fs_f32_to_f16(x[i]), fs_f16_to_f32);
        if (isfinite(x[i]) && fabsf(x[i]) < 65504.0f && !isfinite(fs_f16_to_f32(fs_f32_to_f16(x[i]))))
            die("f16 overflowed in range", i, x[i], 0);
        check_nearest("bf16", i, x[i], fs_f32_to_bf16(x[i]), bf16_to_f32);
    }

    /* Q8_0: d = max|x| / 127, q = round(x / d). */
    uint16_t scales[MAX_BLOCKS];
    fs_quantize_row_q8_0(x, q8, k);
    fs_q8_0_sums(q8, k, sums);
    for (int isa = 0; isa < 2; isa++) {
        if (isa && !have_avx2()) break;
        fs_cpu_quantize_x(isa ? FS_ISA_AVX2 : FS_ISA_SCALAR, x, q8s, sums2, k);
        for (int b = 0; b < nb; b++)
            if (memcmp(&q8[b], &q8s[b], sizeof q8[0]) || sums[b].s != sums2[b].s ||
                memcmp(&sums[b].d, &sums2[b].d, sizeof(float)))
                die(isa ? "AVX2 quantize_x differs from the reference" : "scalar quantize_x differs", b * FS_QK,
                    x[b * FS_QK], fs_f16_to_f32(q8s[b].d));
    }
    for (int b = 0; b < nb; b++) {
        float amax = 0;
        for (int i = 0; i < FS_QK; i++) amax = fmaxf(amax, fabsf(x[b * FS_QK + i]));
        d_exact[b] = (double)amax / 127.0;
        scales[b] = q8[b].d;
    }
    fs_dequantize_row_q8_0(q8, y, k);
    check_blocks("q8_0", x, y, scales, d_exact, nb, 0.5, 127);

    /* Q4_0: d = -m / 8 for the value m of largest magnitude, q = x / d + 8. */
    fs_quantize_row_q4_0(x, q4, k);
    for (int b = 0; b < nb; b++) {
        float amax = 0, m = 0;
        for (int i = 0; i < FS_QK; i++)
            if (fabsf(x[b * FS_QK + i]) > amax) amax = fabsf(x[b * FS_QK + i]), m = x[b * FS_QK + i];
        d_exact[b] = (double)m / -8.0;
        scales[b] = q4[b].d;
    }
    fs_dequantize_row_q4_0(q4, y, k);
    check_blocks("q4_0", x, y, scales, d_exact, nb, 1.0, 8);
    return 0;
}
