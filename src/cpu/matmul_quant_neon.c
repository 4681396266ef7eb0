/* matmul_quant_neon.c - the linear layer with Q8_0 / Q4_0 weights on
 * aarch64: matmul_quant.c's x8 decode and packed integer GEMM, written
 * for NEON, with the dot product (sdot) and int8 matrix multiply (smmla)
 * instructions where the CPU has them.
 *
 *   y[t, n] = sum_b d_w[n, b] * d_x[t, b] * S[n, t, b],   S = sum of 32 int8 x int8
 *
 * (x quantized to Q8_0 first, matmul_quant.c; only the block sum is f32).
 * The weights are in the x8 layout (repack.c), which the backend makes at
 * upload on aarch64 as on x86: a superblock holds the 8 rows' f16 scales,
 * then for each quad j (4 consecutive k) 32 bytes, 4 bytes of each row:
 *
 *   qs: | r0 k4j..4j+3 | r1 | r2 | r3 | r4 | r5 | r6 | r7 |    one 32-byte quad j
 *       '------ one 16-byte NEON vector -----'---- another ----'
 *
 * Three ways to turn such bytes into int32 sums of 4 products:
 *
 *   sdot (FEAT_DotProd, Cortex-A55/A76 and later, Apple M1 and later):
 *     vdotq_laneq_s32(acc, w, x, j): lane i of acc += w[4i..4i+3] . x[4j..4j+3].
 *     With w one half of quad j (rows r..r+3) and x the token's 16 bytes
 *     of that block, the instruction itself picks x's quad j ("by
 *     element"): one instruction does 4 rows x 4 products, and the 4 lanes
 *     are the 4 rows' sums - no broadcast, no horizontal sum. This is
 *     AVX-VNNI's vpdpbusd with both operands signed.
 *   smull (every aarch64 CPU, the fallback): x's quad j is broadcast
 *     (vdupq_laneq_s32), vmull_s8 / vmull_high_s8 give 16 int16 products,
 *     vpaddq_s16 adds neighbours (2 products per int16: |sum| <= 2 * 128 *
 *     127 < 32767, as maddubs on x86) and vpadalq_s16 adds those pairs
 *     into the 4 int32 lanes: 4 instructions (and the broadcast, shared)
 *     for sdot's one.
 *   smmla (FEAT_I8MM, Graviton 3, Apple M2 and later; prefill only):
 *     vmmlaq_s32(acc, a, b): a and b are 2 x 8 int8 matrices (two rows of
 *     8 bytes each) and acc += a b^T, a 2 x 2 int32 block: 32 products in
 *     one instruction, twice sdot's 16. a = 2 tokens' x, b = 2 weight rows,
 *     both k 8c .. 8c+7. The packed panel is reordered for it (to_mmla):
 *     zipping the 32-bit quads j = 2c and 2c+1 of rows r, r+1 gives
 *     exactly [row r k8c..8c+7 | row r+1 k8c..8c+7].
 *
 * Q4_0: nibbles q = w + 8 (0..15) are valid signed bytes as they are (& 15
 * for k 0..15, >> 4 for k 16..31), so S = sum q x - 8 sum x, and the
 * accumulator starts at -8 sum x (sum x computed with x's quantization,
 * fs_q8_0_sum). Q8_0 bytes are used as they are.
 *
 * Decode (T < FS_GEMM_MIN_T, fs_x8_neon): per pair of groups (16 rows,
 * stored side by side by repack.c) and block, x's 32 bytes are loaded once
 * (two vectors) and every weight vector meets them. Per superblock of 8
 * rows x 32 k, counted from the source (the x loads, -8 sum x and the
 * prefetch are shared by the pair and left out): Q4_0 (144 bytes) 8
 * loads, 16 and / shift, 16 sdot, 2 adds of the split accumulators, then
 * 1 load + 2 widenings of the f16 scales, 2 int -> f32 conversions, 2
 * multiplies and 2 FMAs: ~51, 6.4 per block of 32 weights of one row
 * (AVX2: ~4.6 with 256-bit registers, 8 rows each); Q8_0 (272 bytes) 16
 * loads, 16 sdot and the same 11: ~43. Without sdot each sdot becomes 4
 * (smull, smull2, addp, sadalp) plus a broadcast of x's quad shared by
 * both halves and both groups: ~103 (Q4_0) / ~95 (Q8_0). Accumulators are
 * split (low / high nibbles, even / odd quads) so that no chain of
 * dependent sdot is longer than 4 per block.
 *
 * Prefill (T >= FS_GEMM_MIN_T, fs_qgemm_neon_chunk): as on x86, each 8-row
 * panel is unpacked once into the thread's f->qpack (Q4_0 nibbles to bytes
 * 0..15, the scales to f32: the layout of matmul_quant.c's pack) and then
 * meets every token, 4 at a time:
 *   sdot tile: 4 tokens x 8 rows = 8 int32 accumulators; per block 16
 *     weight loads, 8 x loads, 64 sdot, 4 accumulator starts, 2 + 4 scale
 *     loads, 8 conversions + 8 multiplies + 8 FMAs: ~120 instructions per
 *     1,024 multiply-adds.
 *   smmla tile: 4 tokens (2 pairs) x 8 rows (4 pairs) = 8 2 x 2 blocks;
 *     per block 16 weight loads, 16 x half-loads (2 per token pair and 8
 *     k), 32 smmla, ~20 to start the accumulators and build the scale
 *     vectors, 8 conversions + 8 multiplies + 8 FMAs: ~110 per 1,024 -
 *     half sdot's multiply instructions, but the per-block scaling of
 *     Q8_0 / Q4_0 keeps the total close.
 *   smull tile: the sdot tile with each sdot replaced as above: ~340.
 * (In the tiles each token's chain is 8 sdot per block, but 8 chains run
 * side by side.)
 * (Counts from the source: qemu cannot time them, and no aarch64 machine
 * was at hand; docs/cpu.md.)
 *
 * Threads. matmul_quant.c cuts the rows into chunks, one parallel loop:
 * decode chunks are whole pairs of groups (16 rows, ~256 KiB of weights),
 * prefill chunks whole 8-row panels; a chunk computes its rows for every
 * token, so no two threads write the same output, and a prefill chunk
 * packs into its own thread's panel (tid). The weights are read once per
 * decode step, and once per chunk in prefill (then reused from L1 for all
 * T tokens, while x streams from L2).
 *
 * Docs: docs/cpu.md, docs/quantization.md
 */
#include <string.h>

#include "cpu_backend.h"

#if defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>

#define INL static inline __attribute__((always_inline))

/* The decode plan's prefetch (cpu_backend.h): prfm pldl1keep (T0) or
 * pldl1strm (NTA, streaming); hint is a constant at every call. */
#define PREFETCH(p, hint)                                                                                      \
    do {                                                                                                       \
        if ((hint) == FS_PF_T0) __builtin_prefetch((p), 0, 3);                                                 \
        else if ((hint) == FS_PF_NTA) __builtin_prefetch((p), 0, 0);                                           \
    } while (0)
/* Both of the plan's prefetches for the bytes at p: the near one at p +
 * ahead, the far one (pldl2keep, into L2) at p + far where far is not 0. */
#define PREFETCH_AT(p, hint, ahead, far)                                                                       \
    do {                                                                                                       \
        PREFETCH((p) + (ahead), hint);                                                                         \
        if (far) __builtin_prefetch((p) + (far), 0, 2);                                                        \
    } while (0)

/* ---- the 4-row, 4-byte dot products ----
 * acc lane i += w[4i .. 4i+3] . x[4 lane .. 4 lane+3]; lane is a constant. */
#define DOT_SDOT(acc, w, x, lane) vdotq_laneq_s32((acc), (w), (x), (lane))
#define DOT_SMULL(acc, w, x, lane) \
    dot_smull((acc), (w), vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x), (lane))))
INL int32x4_t dot_smull(int32x4_t acc, int8x16_t w, int8x16_t xq) {
    int16x8_t lo = vmull_s8(vget_low_s8(w), vget_low_s8(xq)), hi = vmull_high_s8(w, xq);
    return vpadalq_s16(acc, vpaddq_s16(lo, hi));
}

/* 8 f16 scales -> two f32 vectors */
INL void widen_scales(const uint8_t *p, float32x4_t *lo, float32x4_t *hi) {
    uint16x8_t h = vld1q_u16((const uint16_t *)(const void *)p);
    *lo = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
    *hi = vcvt_high_f32_f16(vreinterpretq_f16_u16(h));
}

/* ---- decode: x8 weights, one token ---- */

/* One superblock's 8 integer sums (rows 0-3 in *lo, 4-7 in *hi), x's block
 * in x0 (k 0..15) and x1 (k 16..31); Q4_0 minus 8 sum x. Two accumulators
 * per half (Q4_0: low / high nibbles; Q8_0: even / odd quads). */
#define Q4_VEC(DOT, q)                                                                                         \
    {                                                                                                          \
        uint8x16_t v = vld1q_u8(sb + 16 + 32 * (q)), u = vld1q_u8(sb + 32 + 32 * (q));                           \
        a0 = DOT(a0, vreinterpretq_s8_u8(vandq_u8(v, m4)), x0, q);                                             \
        b0 = DOT(b0, vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), x1, q);                                            \
        a1 = DOT(a1, vreinterpretq_s8_u8(vandq_u8(u, m4)), x0, q);                                             \
        b1 = DOT(b1, vreinterpretq_s8_u8(vshrq_n_u8(u, 4)), x1, q);                                            \
    }
#define Q8_VEC(DOT, q, xv, lane, c0, c1)                                                                       \
    {                                                                                                          \
        c0 = DOT(c0, vld1q_s8((const int8_t *)sb + 16 + 32 * (q)), xv, lane);                                 \
        c1 = DOT(c1, vld1q_s8((const int8_t *)sb + 32 + 32 * (q)), xv, lane);                                 \
    }
#define SUPER_SUMS(NAME, TARGET, DOT)                                                                          \
    INL TARGET void NAME(const int q4, const uint8_t *sb, int8x16_t x0, int8x16_t x1, int32_t sx, int32x4_t *lo,  \
                         int32x4_t *hi) {                                                                      \
        int32x4_t a0 = vdupq_n_s32(q4 ? -8 * sx : 0), a1 = a0, b0 = vdupq_n_s32(0), b1 = b0;                   \
        if (q4) {                                                                                              \
            const uint8x16_t m4 = vdupq_n_u8(15);                                                              \
            Q4_VEC(DOT, 0) Q4_VEC(DOT, 1) Q4_VEC(DOT, 2) Q4_VEC(DOT, 3)                                        \
        } else {                                                                                               \
            Q8_VEC(DOT, 0, x0, 0, a0, a1) Q8_VEC(DOT, 1, x0, 1, b0, b1)                                        \
            Q8_VEC(DOT, 2, x0, 2, a0, a1) Q8_VEC(DOT, 3, x0, 3, b0, b1)                                        \
            Q8_VEC(DOT, 4, x1, 0, a0, a1) Q8_VEC(DOT, 5, x1, 1, b0, b1)                                        \
            Q8_VEC(DOT, 6, x1, 2, a0, a1) Q8_VEC(DOT, 7, x1, 3, b0, b1)                                        \
        }                                                                                                      \
        *lo = vaddq_s32(a0, b0);                                                                               \
        *hi = vaddq_s32(a1, b1);                                                                               \
    }

/* Groups [g0, g1) of 8 rows against token t. A pair of groups (stored
 * side by side, repack.c) shares x's loads; a group without its partner
 * (the last one when N / 8 is odd) runs alone. The weights are prefetched
 * as the dtype's decode plan says (tune_cpu.c). */
#define X8_DECODE(NAME, TARGET, SUMS)                                                                          \
    INL TARGET void NAME##_hint(const fs_quant_job *j, int t, int g0, int g1, const int hint, size_t ahead,       \
                                size_t far) {                                                                  \
        int nb = j->K / FS_QK, q4 = j->dt == FS_DTYPE_Q4_0;                                                    \
        int64_t G = j->N / 8;                                                                                  \
        size_t sbytes = fs_x8_super_bytes(j->dt);                                                              \
        const fs_block_q8_0 *x = j->f->qx + (size_t)t * (size_t)nb;                                            \
        const fs_q8_0_sum *xs = j->f->qxs + (size_t)t * (size_t)nb;                                            \
        float *y = j->y + (size_t)t * (size_t)j->N;                                                            \
        for (int g = g0; g < g1;) {                                                                            \
            const uint8_t *sb = (const uint8_t *)j->W + fs_x8_index(G, nb, g, 0) * sbytes;                     \
            int pair = g % 2 == 0 && g + 1 < g1;                                                               \
            /* bytes from one of the group's superblocks to the next: 2 in a pair */                            \
            size_t step = (fs_x8_index(G, nb, g, 1) - fs_x8_index(G, nb, g, 0)) * sbytes;                      \
            float32x4_t f0 = vdupq_n_f32(0), f1 = f0, f2 = f0, f3 = f0;                                        \
            for (int b = 0; b < nb; b++, sb += step) {                                                         \
                for (size_t o = 0; o < step; o += 64) PREFETCH_AT((const char *)sb + o, hint, ahead, far);    \
                int8x16_t x0 = vld1q_s8(x[b].qs), x1 = vld1q_s8(x[b].qs + 16);                                 \
                float32x4_t dx = vdupq_n_f32(xs[b].d), d0, d1;                                                 \
                int32x4_t s0, s1;                                                                              \
                if (q4) SUMS(1, sb, x0, x1, xs[b].s, &s0, &s1);                                                \
                else SUMS(0, sb, x0, x1, 0, &s0, &s1);                                                         \
                widen_scales(sb, &d0, &d1);                                                                    \
                f0 = vfmaq_f32(f0, vcvtq_f32_s32(s0), vmulq_f32(d0, dx));                                      \
                f1 = vfmaq_f32(f1, vcvtq_f32_s32(s1), vmulq_f32(d1, dx));                                      \
                if (pair) {                                                                                    \
                    const uint8_t *sp = sb + sbytes;                                                           \
                    if (q4) SUMS(1, sp, x0, x1, xs[b].s, &s0, &s1);                                            \
                    else SUMS(0, sp, x0, x1, 0, &s0, &s1);                                                     \
                    widen_scales(sp, &d0, &d1);                                                                \
                    f2 = vfmaq_f32(f2, vcvtq_f32_s32(s0), vmulq_f32(d0, dx));                                  \
                    f3 = vfmaq_f32(f3, vcvtq_f32_s32(s1), vmulq_f32(d1, dx));                                  \
                }                                                                                              \
            }                                                                                                  \
            vst1q_f32(y + (size_t)g * 8, f0);                                                                  \
            vst1q_f32(y + (size_t)g * 8 + 4, f1);                                                              \
            if (pair) {                                                                                        \
                vst1q_f32(y + (size_t)g * 8 + 8, f2);                                                          \
                vst1q_f32(y + (size_t)g * 8 + 12, f3);                                                         \
            }                                                                                                  \
            g += pair ? 2 : 1;                                                                                 \
        }                                                                                                      \
    }                                                                                                          \
    static TARGET void NAME(const fs_quant_job *j, int t, int g0, int g1) {                                    \
        const fs_cpu_plan *p = &j->f->plan[j->dt];                                                             \
        switch (p->prefetch) {                                                                                 \
        case FS_PF_T0: NAME##_hint(j, t, g0, g1, FS_PF_T0, (size_t)p->ahead, (size_t)p->far); break;           \
        case FS_PF_NTA: NAME##_hint(j, t, g0, g1, FS_PF_NTA, (size_t)p->ahead, (size_t)p->far); break;         \
        default: NAME##_hint(j, t, g0, g1, FS_PF_NONE, 0, (size_t)p->far); break;                              \
        }                                                                                                      \
    }

#define NO_TARGET
SUPER_SUMS(sums_smull, NO_TARGET, DOT_SMULL)
X8_DECODE(x8_smull, NO_TARGET, sums_smull)
#if FS_HAVE_DOTPROD_TARGET
SUPER_SUMS(sums_sdot, FS_DOTPROD_FN, DOT_SDOT)
X8_DECODE(x8_sdot, FS_DOTPROD_FN, sums_sdot)
#endif

void fs_x8_neon(const fs_quant_job *j, int t, int g0, int g1, int dotprod) {
#if FS_HAVE_DOTPROD_TARGET
    if (dotprod) {
        x8_sdot(j, t, g0, g1);
        return;
    }
#endif
    (void)dotprod;
    x8_smull(j, t, g0, g1);
}

/* ---- prefill: the packed integer GEMM ---- */

/* The panel (matmul_quant.c's layout): pq[b][j] = quad j of rows 0..7 (32
 * bytes, row r at 4 r; Q4_0 as bytes 0..15), pd[b][r] = row r's scale. */

/* From x8 weights: the quads are already interleaved; Q4_0's nibbles are
 * split (byte i of vector j holds k 4j + i and 16 + 4j + i). */
static void pack_x8(const void *W, fs_dtype dt, int N, int K, int n, uint8_t *pq, float *pd) {
    int nb = K / FS_QK;
    size_t sbytes = fs_x8_super_bytes(dt);
    const uint8x16_t m4 = vdupq_n_u8(15);
    for (int b = 0; b < nb; b++) {
        const uint8_t *sb = (const uint8_t *)W + fs_x8_index(N / 8, nb, n / 8, b) * sbytes;
        float32x4_t d0, d1;
        widen_scales(sb, &d0, &d1);
        vst1q_f32(pd + (size_t)b * 8, d0);
        vst1q_f32(pd + (size_t)b * 8 + 4, d1);
        uint8_t *p = pq + (size_t)b * 256;
        if (dt == FS_DTYPE_Q4_0)
            for (int h = 0; h < 8; h++) {   /* 16-byte half h of quad vector h / 2 */
                uint8x16_t v = vld1q_u8(sb + 16 + 16 * h);
                vst1q_u8(p + 16 * h, vandq_u8(v, m4));
                vst1q_u8(p + 128 + 16 * h, vshrq_n_u8(v, 4));
            }
        else memcpy(p, sb + 16, 256);
    }
}

/* From weights in the file's layout (N % 8 != 0 keeps a matrix there):
 * rows n .. n+7, byte by byte - the layout is the same, only gathered. */
static void pack_rows(const void *W, fs_dtype dt, int K, int n, uint8_t *pq, float *pd) {
    int nb = K / FS_QK;
    size_t row_bytes = fs_dtype_row_bytes(dt, K);
    for (int r = 0; r < 8; r++) {
        const uint8_t *row = (const uint8_t *)W + (size_t)(n + r) * row_bytes;
        for (int b = 0; b < nb; b++) {
            uint8_t *p = pq + (size_t)b * 256 + 4 * r;
            if (dt == FS_DTYPE_Q4_0) {
                const fs_block_q4_0 *blk = (const fs_block_q4_0 *)(const void *)row + b;
                pd[(size_t)b * 8 + r] = fs_f16_to_f32(blk->d);
                for (int k = 0; k < 16; k++) {
                    p[32 * (k / 4) + k % 4] = blk->qs[k] & 15;
                    p[32 * (4 + k / 4) + k % 4] = blk->qs[k] >> 4;
                }
            } else {
                const fs_block_q8_0 *blk = (const fs_block_q8_0 *)(const void *)row + b;
                pd[(size_t)b * 8 + r] = fs_f16_to_f32(blk->d);
                for (int k = 0; k < 32; k++) p[32 * (k / 4) + k % 4] = (uint8_t)blk->qs[k];
            }
        }
    }
}

/* The tile: nt (<= 4) tokens x 8 rows with 4-byte dot products. Token
 * i's blocks at x + i * xstride, its 8 outputs at y + i * ldy. Tokens past
 * nt read token 0's bytes (never stored) so that every register is set. */
#define TOK_QUAD(DOT, j, xv, lane)                                                                             \
    {                                                                                                          \
        int8x16_t w0 = vld1q_s8(pb + 32 * (j)), w1 = vld1q_s8(pb + 32 * (j) + 16);                             \
        s0 = DOT(s0, w0, xv##0, lane), s1 = DOT(s1, w1, xv##0, lane);                                          \
        if (nt > 1) s2 = DOT(s2, w0, xv##1, lane), s3 = DOT(s3, w1, xv##1, lane);                              \
        if (nt > 2) s4 = DOT(s4, w0, xv##2, lane), s5 = DOT(s5, w1, xv##2, lane);                              \
        if (nt > 3) s6 = DOT(s6, w0, xv##3, lane), s7 = DOT(s7, w1, xv##3, lane);                              \
    }
#define TILE_DOT(NAME, TARGET, DOT)                                                                            \
    INL TARGET void NAME(const int q4, const int nt, const uint8_t *pq, const float *pd, int nb,                \
                         const fs_block_q8_0 *x, size_t xstride, const fs_q8_0_sum *xs, float *y, size_t ldy) {  \
        float32x4_t f0 = vdupq_n_f32(0), f1 = f0, f2 = f0, f3 = f0, f4 = f0, f5 = f0, f6 = f0, f7 = f0;        \
        size_t o1 = nt > 1 ? xstride : 0, o2 = nt > 2 ? 2 * xstride : 0, o3 = nt > 3 ? 3 * xstride : 0;        \
        for (int b = 0; b < nb; b++) {                                                                         \
            const int8_t *pb = (const int8_t *)pq + (size_t)b * 256;                                           \
            const fs_block_q8_0 *xb = x + b;                                                                   \
            const fs_q8_0_sum *sb = xs + b;                                                                    \
            int8x16_t xa0 = vld1q_s8(xb[0].qs), xa1 = vld1q_s8(xb[o1].qs);                                     \
            int8x16_t xa2 = vld1q_s8(xb[o2].qs), xa3 = vld1q_s8(xb[o3].qs);                                    \
            int8x16_t xh0 = vld1q_s8(xb[0].qs + 16), xh1 = vld1q_s8(xb[o1].qs + 16);                           \
            int8x16_t xh2 = vld1q_s8(xb[o2].qs + 16), xh3 = vld1q_s8(xb[o3].qs + 16);                          \
            int32x4_t s0 = vdupq_n_s32(q4 ? -8 * sb[0].s : 0), s1 = s0;                                       \
            int32x4_t s2 = vdupq_n_s32(q4 ? -8 * sb[o1].s : 0), s3 = s2;                                      \
            int32x4_t s4 = vdupq_n_s32(q4 ? -8 * sb[o2].s : 0), s5 = s4;                                      \
            int32x4_t s6 = vdupq_n_s32(q4 ? -8 * sb[o3].s : 0), s7 = s6;                                      \
            TOK_QUAD(DOT, 0, xa, 0) TOK_QUAD(DOT, 1, xa, 1) TOK_QUAD(DOT, 2, xa, 2) TOK_QUAD(DOT, 3, xa, 3)    \
            TOK_QUAD(DOT, 4, xh, 0) TOK_QUAD(DOT, 5, xh, 1) TOK_QUAD(DOT, 6, xh, 2) TOK_QUAD(DOT, 7, xh, 3)    \
            float32x4_t dw0 = vld1q_f32(pd + (size_t)b * 8), dw1 = vld1q_f32(pd + (size_t)b * 8 + 4);         \
            f0 = vfmaq_f32(f0, vcvtq_f32_s32(s0), vmulq_n_f32(dw0, sb[0].d));                                  \
            f1 = vfmaq_f32(f1, vcvtq_f32_s32(s1), vmulq_n_f32(dw1, sb[0].d));                                  \
            if (nt > 1) {                                                                                      \
                f2 = vfmaq_f32(f2, vcvtq_f32_s32(s2), vmulq_n_f32(dw0, sb[o1].d));                             \
                f3 = vfmaq_f32(f3, vcvtq_f32_s32(s3), vmulq_n_f32(dw1, sb[o1].d));                             \
            }                                                                                                  \
            if (nt > 2) {                                                                                      \
                f4 = vfmaq_f32(f4, vcvtq_f32_s32(s4), vmulq_n_f32(dw0, sb[o2].d));                             \
                f5 = vfmaq_f32(f5, vcvtq_f32_s32(s5), vmulq_n_f32(dw1, sb[o2].d));                             \
            }                                                                                                  \
            if (nt > 3) {                                                                                      \
                f6 = vfmaq_f32(f6, vcvtq_f32_s32(s6), vmulq_n_f32(dw0, sb[o3].d));                             \
                f7 = vfmaq_f32(f7, vcvtq_f32_s32(s7), vmulq_n_f32(dw1, sb[o3].d));                             \
            }                                                                                                  \
        }                                                                                                      \
        vst1q_f32(y, f0), vst1q_f32(y + 4, f1);                                                                \
        if (nt > 1) vst1q_f32(y + ldy, f2), vst1q_f32(y + ldy + 4, f3);                                        \
        if (nt > 2) vst1q_f32(y + 2 * ldy, f4), vst1q_f32(y + 2 * ldy + 4, f5);                                \
        if (nt > 3) vst1q_f32(y + 3 * ldy, f6), vst1q_f32(y + 3 * ldy + 4, f7);                                \
    }

/* All tokens against the packed panel of rows n .. n+7: tiles of 4 tokens;
 * q4 and nt are constants in each call of TILE, so each is its own loop. */
#define PANEL_TOKENS(NAME, TARGET, TILE)                                                                       \
    static TARGET void NAME(const fs_quant_job *j, const uint8_t *pq, const float *pd, int n) {                \
        int nb = j->K / FS_QK, q4 = j->dt == FS_DTYPE_Q4_0;                                                    \
        size_t xstride = (size_t)nb, ldy = (size_t)j->N;                                                       \
        for (int t = 0; t < j->T; t += 4) {                                                                    \
            const fs_block_q8_0 *x = j->f->qx + (size_t)t * xstride;                                           \
            const fs_q8_0_sum *sx = j->f->qxs + (size_t)t * xstride;                                           \
            float *y = j->y + (size_t)t * ldy + (size_t)n;                                                     \
            int nt = j->T - t < 4 ? j->T - t : 4;                                                              \
            if (q4) switch (nt) {                                                                              \
                case 4: TILE(1, 4, pq, pd, nb, x, xstride, sx, y, ldy); break;                                 \
                case 3: TILE(1, 3, pq, pd, nb, x, xstride, sx, y, ldy); break;                                 \
                case 2: TILE(1, 2, pq, pd, nb, x, xstride, sx, y, ldy); break;                                 \
                default: TILE(1, 1, pq, pd, nb, x, xstride, sx, y, ldy); break;                                \
                }                                                                                              \
            else switch (nt) {                                                                                 \
                case 4: TILE(0, 4, pq, pd, nb, x, xstride, sx, y, ldy); break;                                 \
                case 3: TILE(0, 3, pq, pd, nb, x, xstride, sx, y, ldy); break;                                 \
                case 2: TILE(0, 2, pq, pd, nb, x, xstride, sx, y, ldy); break;                                 \
                default: TILE(0, 1, pq, pd, nb, x, xstride, sx, y, ldy); break;                                \
                }                                                                                              \
        }                                                                                                      \
    }

TILE_DOT(tile_smull, NO_TARGET, DOT_SMULL)
PANEL_TOKENS(tokens_smull, NO_TARGET, tile_smull)
#if FS_HAVE_DOTPROD_TARGET
TILE_DOT(tile_sdot, FS_DOTPROD_FN, DOT_SDOT)
PANEL_TOKENS(tokens_sdot, FS_DOTPROD_FN, tile_sdot)
#endif

#if FS_HAVE_I8MM_TARGET
/* The panel reordered for smmla, in place: block b's chunk c (k 8c ..
 * 8c+7) is 4 row pairs of 16 bytes, [row 2p k 8c..8c+7 | row 2p+1 ...]:
 * the 32-bit zip of quads 2c and 2c+1. */
static void to_mmla(uint8_t *pq, int nb) {
    for (int b = 0; b < nb; b++) {
        uint8_t *p = pq + (size_t)b * 256;
        int32x4_t q[16];
        for (int i = 0; i < 16; i++) q[i] = vld1q_s32((const int32_t *)(const void *)(p + 16 * i));
        for (int c = 0; c < 4; c++) {
            /* quad 2c: q[4c] (rows 0-3), q[4c + 1] (rows 4-7); quad 2c+1: q[4c + 2], q[4c + 3] */
            int32_t *o = (int32_t *)(void *)(p + 64 * c);
            vst1q_s32(o, vzip1q_s32(q[4 * c], q[4 * c + 2]));
            vst1q_s32(o + 4, vzip2q_s32(q[4 * c], q[4 * c + 2]));
            vst1q_s32(o + 8, vzip1q_s32(q[4 * c + 1], q[4 * c + 3]));
            vst1q_s32(o + 12, vzip2q_s32(q[4 * c + 1], q[4 * c + 3]));
        }
    }
}

/* The smmla tile: nt (<= 4) tokens as 2 pairs (0, 1) and (2, 3), 8 rows
 * as 4 pairs; acc[p][r] = the 2 x 2 block [token 2p, 2p+1] x [row 2r,
 * 2r+1], lanes (t0 r0, t0 r1, t1 r0, t1 r1). Per block and chunk c of 8 k,
 * each token pair's 16 bytes are gathered from its two rows of x (two
 * 8-byte loads) and meet the 4 row pairs' 16 bytes of the panel. The
 * scales: [d_w r0, d_w r1, d_w r0, d_w r1] * [d_x t0, d_x t0, d_x t1,
 * d_x t1]. A missing token reads the last real one (never stored). */
#define MM_PAIR(p, xa, xb)                                                                                     \
    {                                                                                                          \
        int8x16_t xv = vcombine_s8(vld1_s8((xa)->qs + 8 * c), vld1_s8((xb)->qs + 8 * c));                      \
        c##p##0 = vmmlaq_s32(c##p##0, xv, w0), c##p##1 = vmmlaq_s32(c##p##1, xv, w1);                          \
        c##p##2 = vmmlaq_s32(c##p##2, xv, w2), c##p##3 = vmmlaq_s32(c##p##3, xv, w3);                          \
    }
#define MM_SCALE(p, r)                                                                                         \
    {                                                                                                          \
        float32x2_t dw = vld1_f32(pd + (size_t)b * 8 + 2 * (r));                                               \
        f##p##r = vfmaq_f32(f##p##r, vcvtq_f32_s32(c##p##r), vmulq_f32(vcombine_f32(dw, dw), dx##p));          \
    }
#define MM_STORE(p, r)                                                                                         \
    {                                                                                                          \
        vst1_f32(y + (size_t)(2 * (p)) * ldy + 2 * (r), vget_low_f32(f##p##r));                                \
        if (nt > 2 * (p) + 1) vst1_f32(y + (size_t)(2 * (p) + 1) * ldy + 2 * (r), vget_high_f32(f##p##r));     \
    }
INL FS_I8MM_FN void tile_mmla(const int q4, const int nt, const uint8_t *pq, const float *pd, int nb,
                              const fs_block_q8_0 *x, size_t xstride, const fs_q8_0_sum *xs, float *y, size_t ldy) {
    float32x4_t f00 = vdupq_n_f32(0), f01 = f00, f02 = f00, f03 = f00, f10 = f00, f11 = f00, f12 = f00, f13 = f00;
    size_t o1 = (size_t)(nt > 1 ? 1 : 0) * xstride, o2 = (size_t)(nt > 2 ? 2 : nt - 1) * xstride;
    size_t o3 = (size_t)(nt > 3 ? 3 : nt - 1) * xstride;
    for (int b = 0; b < nb; b++) {
        const fs_block_q8_0 *xb = x + b;
        const fs_q8_0_sum *sb = xs + b;
        int32x4_t c00, c01, c02, c03, c10, c11, c12, c13;
        c00 = q4 ? vcombine_s32(vdup_n_s32(-8 * sb[0].s), vdup_n_s32(-8 * sb[o1].s)) : vdupq_n_s32(0);
        c10 = q4 ? vcombine_s32(vdup_n_s32(-8 * sb[o2].s), vdup_n_s32(-8 * sb[o3].s)) : vdupq_n_s32(0);
        c01 = c02 = c03 = c00;
        c11 = c12 = c13 = c10;
        const int8_t *pb = (const int8_t *)pq + (size_t)b * 256;
        for (int c = 0; c < 4; c++) {
            int8x16_t w0 = vld1q_s8(pb + 64 * c), w1 = vld1q_s8(pb + 64 * c + 16);
            int8x16_t w2 = vld1q_s8(pb + 64 * c + 32), w3 = vld1q_s8(pb + 64 * c + 48);
            MM_PAIR(0, xb, xb + o1)
            if (nt > 2) MM_PAIR(1, xb + o2, xb + o3)
        }
        float32x4_t dx0 = vcombine_f32(vdup_n_f32(sb[0].d), vdup_n_f32(sb[o1].d));
        float32x4_t dx1 = vcombine_f32(vdup_n_f32(sb[o2].d), vdup_n_f32(sb[o3].d));
        MM_SCALE(0, 0) MM_SCALE(0, 1) MM_SCALE(0, 2) MM_SCALE(0, 3)
        if (nt > 2) {
            MM_SCALE(1, 0) MM_SCALE(1, 1) MM_SCALE(1, 2) MM_SCALE(1, 3)
        }
    }
    MM_STORE(0, 0) MM_STORE(0, 1) MM_STORE(0, 2) MM_STORE(0, 3)
    if (nt > 2) {
        MM_STORE(1, 0) MM_STORE(1, 1) MM_STORE(1, 2) MM_STORE(1, 3)
    }
}
PANEL_TOKENS(tokens_mmla, FS_I8MM_FN, tile_mmla)
#endif

void fs_qgemm_neon_chunk(void *arg, int chunk, int tid) {
    const fs_quant_job *j = arg;
    int n0 = chunk * j->rows, n1 = n0 + j->rows < j->N ? n0 + j->rows : j->N, nb = j->K / FS_QK;
    uint8_t *pq = j->f->qpack + (size_t)tid * j->f->qpack_stride;
    float *pd = (float *)(void *)(pq + (size_t)j->K * 8);
    int n = n0;
    for (; n + 8 <= n1; n += 8) {
        if (j->x8) pack_x8(j->W, j->dt, j->N, j->K, n, pq, pd);
        else pack_rows(j->W, j->dt, j->K, n, pq, pd);
#if FS_HAVE_I8MM_TARGET
        if (j->f->i8mm) {
            to_mmla(pq, nb);
            tokens_mmla(j, pq, pd, n);
            continue;
        }
#endif
#if FS_HAVE_DOTPROD_TARGET
        if (j->f->dotprod) {
            tokens_sdot(j, pq, pd, n);
            continue;
        }
#endif
        tokens_smull(j, pq, pd, n);
    }
    /* the last N % 8 rows (a matrix in the file's layout), row by row */
    size_t row_bytes = fs_dtype_row_bytes(j->dt, j->K);
    for (int t = 0; n < n1 && t < j->T; t++) {
        const void *w = (const uint8_t *)j->W + (size_t)n * row_bytes;
        float *y = j->y + (size_t)t * (size_t)j->N + (size_t)n;
        const fs_block_q8_0 *x = j->f->qx + (size_t)t * (size_t)nb;
        const fs_q8_0_sum *xs = j->f->qxs + (size_t)t * (size_t)nb;
        if (j->dt == FS_DTYPE_Q8_0) fs_cpu_dot_rows_q8_0(j->f->isa, j->K, w, n1 - n, x, xs, y);
        else fs_cpu_dot_rows_q4_0(j->f->isa, j->K, w, n1 - n, x, xs, y);
    }
}

#endif
