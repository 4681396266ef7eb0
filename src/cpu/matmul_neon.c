/* matmul_neon.c - the matmul kernels for aarch64 NEON (Apple Silicon,
 * Graviton, Raspberry Pi 4+). Same algorithms as matmul_avx2.c with 4-wide
 * vectors:
 *
 *   y[t, n] = sum_k x[t, k] * W[n, k]      rows [n0, n1) of y[T, N]
 *
 *   bf16 -> f32: vshll_n_u16(h, 16) widens 4 u16 to u32 shifted left by 16
 *                (a bf16 is the top half of an f32: exact);
 *   f16  -> f32: vcvt_f32_f16, exact.
 * GEMV: 4 rows x 2 accumulators (8 k per step). GEMM: the tile is 6 tokens
 * x 16 rows = 24 accumulators (aarch64 has 32 vector registers), the
 * packed panel's 16 floats per k are 4 vectors. The tile on its own
 * (fs_tile_neon, any panel stride) is also prefill attention's
 * (attention_cpu.c), as fs_tile_avx2 is on x86.
 *
 * Docs: docs/forward.md, docs/cpu.md
 */
#include "cpu_backend.h"

#if defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>

static inline float32x4_t load4(const void *W, fs_dtype dt, size_t i) {
    switch (dt) {
    case FS_DTYPE_BF16:
        return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)W + i), 16));
    case FS_DTYPE_F16:
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)W + i)));
    default: break;
    }
    return vld1q_f32((const float *)W + i);
}

static inline __attribute__((always_inline)) void gemv_dt(const float *x, const void *W, fs_dtype dt, float *y,
                                                          int T, int K, int N, int n0, int n1) {
    size_t Ks = (size_t)K;
    int n = n0;
    for (; n + 4 <= n1; n += 4) {
        size_t r0 = (size_t)n * Ks, r1 = r0 + Ks, r2 = r1 + Ks, r3 = r2 + Ks;
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * Ks;
            float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            int k = 0;
            for (; k + 8 <= K; k += 8) {
                float32x4_t x0 = vld1q_f32(xt + k), x1 = vld1q_f32(xt + k + 4);
                a0 = vfmaq_f32(a0, load4(W, dt, r0 + k), x0);
                b0 = vfmaq_f32(b0, load4(W, dt, r0 + k + 4), x1);
                a1 = vfmaq_f32(a1, load4(W, dt, r1 + k), x0);
                b1 = vfmaq_f32(b1, load4(W, dt, r1 + k + 4), x1);
                a2 = vfmaq_f32(a2, load4(W, dt, r2 + k), x0);
                b2 = vfmaq_f32(b2, load4(W, dt, r2 + k + 4), x1);
                a3 = vfmaq_f32(a3, load4(W, dt, r3 + k), x0);
                b3 = vfmaq_f32(b3, load4(W, dt, r3 + k + 4), x1);
            }
            float s0 = vaddvq_f32(vaddq_f32(a0, b0)), s1 = vaddvq_f32(vaddq_f32(a1, b1));
            float s2 = vaddvq_f32(vaddq_f32(a2, b2)), s3 = vaddvq_f32(vaddq_f32(a3, b3));
            for (; k < K; k++) {
                s0 += xt[k] * fs_cpu_weight(W, dt, r0 + k);
                s1 += xt[k] * fs_cpu_weight(W, dt, r1 + k);
                s2 += xt[k] * fs_cpu_weight(W, dt, r2 + k);
                s3 += xt[k] * fs_cpu_weight(W, dt, r3 + k);
            }
            float *yt = y + (size_t)t * (size_t)N + (size_t)n;
            yt[0] = s0, yt[1] = s1, yt[2] = s2, yt[3] = s3;
        }
    }
    for (; n < n1; n++) {
        size_t r0 = (size_t)n * Ks;
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * Ks;
            float32x4_t a0 = vdupq_n_f32(0);
            int k = 0;
            for (; k + 4 <= K; k += 4) a0 = vfmaq_f32(a0, load4(W, dt, r0 + k), vld1q_f32(xt + k));
            float s0 = vaddvq_f32(a0);
            for (; k < K; k++) s0 += xt[k] * fs_cpu_weight(W, dt, r0 + k);
            y[(size_t)t * (size_t)N + (size_t)n] = s0;
        }
    }
}

void fs_gemv_neon(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1) {
    switch (dt) {
    case FS_DTYPE_BF16: gemv_dt(x, W, FS_DTYPE_BF16, y, T, K, N, n0, n1); break;
    case FS_DTYPE_F16: gemv_dt(x, W, FS_DTYPE_F16, y, T, K, N, n0, n1); break;
    default: gemv_dt(x, W, FS_DTYPE_F32, y, T, K, N, n0, n1); break;
    }
}

static inline __attribute__((always_inline)) void tile(const int nt, const float *x, size_t ldx, const float *pw,
                                                       size_t ldw, int kc, float *y, size_t ldy, int accum, int ncols) {
    float32x4_t c[FS_TILE_T][4];
    for (int i = 0; i < nt; i++) c[i][0] = c[i][1] = c[i][2] = c[i][3] = vdupq_n_f32(0);
    for (int k = 0; k < kc; k++) {
        const float *p = pw + (size_t)k * ldw;
        float32x4_t w0 = vld1q_f32(p), w1v = vld1q_f32(p + 4), w2 = vld1q_f32(p + 8), w3 = vld1q_f32(p + 12);
        for (int i = 0; i < nt; i++) {
            float32x4_t xb = vdupq_n_f32(x[(size_t)i * ldx + (size_t)k]);
            c[i][0] = vfmaq_f32(c[i][0], xb, w0);
            c[i][1] = vfmaq_f32(c[i][1], xb, w1v);
            c[i][2] = vfmaq_f32(c[i][2], xb, w2);
            c[i][3] = vfmaq_f32(c[i][3], xb, w3);
        }
    }
    for (int i = 0; i < nt; i++) {
        float tmp[16];
        for (int v = 0; v < 4; v++) vst1q_f32(tmp + 4 * v, c[i][v]);
        float *yi = y + (size_t)i * ldy;
        for (int r = 0; r < ncols; r++) yi[r] = accum ? yi[r] + tmp[r] : tmp[r];
    }
}

void fs_gemm_neon(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                  float *pack) {
    for (int n = n0; n < n1; n += FS_PANEL_N) {
        int rows = n1 - n < FS_PANEL_N ? n1 - n : FS_PANEL_N;
        for (int k0 = 0; k0 < K; k0 += FS_PANEL_K) {
            int kc = K - k0 < FS_PANEL_K ? K - k0 : FS_PANEL_K;
            fs_pack_panel(W, dt, K, n, rows, k0, kc, pack);
            for (int t = 0; t < T; t += FS_TILE_T) {
                const float *xt = x + (size_t)t * (size_t)K + (size_t)k0;
                float *yt = y + (size_t)t * (size_t)N + (size_t)n;
                int acc = k0 > 0;
                switch (T - t < FS_TILE_T ? T - t : FS_TILE_T) {
                case 6: tile(6, xt, (size_t)K, pack, 16, kc, yt, (size_t)N, acc, rows); break;
                case 5: tile(5, xt, (size_t)K, pack, 16, kc, yt, (size_t)N, acc, rows); break;
                case 4: tile(4, xt, (size_t)K, pack, 16, kc, yt, (size_t)N, acc, rows); break;
                case 3: tile(3, xt, (size_t)K, pack, 16, kc, yt, (size_t)N, acc, rows); break;
                case 2: tile(2, xt, (size_t)K, pack, 16, kc, yt, (size_t)N, acc, rows); break;
                default: tile(1, xt, (size_t)K, pack, 16, kc, yt, (size_t)N, acc, rows); break;
                }
            }
        }
    }
}

void fs_tile_neon(int nt, const float *x, size_t ldx, const float *pw, size_t ldw, int kc, float *y, size_t ldy,
                  int accum, int ncols) {
    switch (nt) {
    case 6: tile(6, x, ldx, pw, ldw, kc, y, ldy, accum, ncols); break;
    case 5: tile(5, x, ldx, pw, ldw, kc, y, ldy, accum, ncols); break;
    case 4: tile(4, x, ldx, pw, ldw, kc, y, ldy, accum, ncols); break;
    case 3: tile(3, x, ldx, pw, ldw, kc, y, ldy, accum, ncols); break;
    case 2: tile(2, x, ldx, pw, ldw, kc, y, ldy, accum, ncols); break;
    default: tile(1, x, ldx, pw, ldw, kc, y, ldy, accum, ncols); break;
    }
}

#else /* no NEON: never called (fs_cpu_detect never picks it) */

void fs_tile_neon(int nt, const float *x, size_t ldx, const float *pw, size_t ldw, int kc, float *y, size_t ldy,
                  int accum, int ncols) {
    fs_tile_avx2(nt, x, ldx, pw, ldw, kc, y, ldy, accum, ncols);
}

void fs_gemv_neon(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1) {
    fs_gemv_scalar(x, W, dt, y, T, K, N, n0, n1);
}
void fs_gemm_neon(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                  float *pack) {
    fs_gemm_scalar(x, W, dt, y, T, K, N, n0, n1, pack);
}

#endif
