/* matmul_float.c - the CPU backend's linear layer with f32 / f16 / bf16
 * weights: y = x W^T on all cores.
 *
 *   y[t, n] = sum_k x[t, k] * W[n, k]      x: [T, K] f32   W: [N, K] bf16/f16/f32   y: [T, N] f32
 *
 * Nearly all of the model's time is here, in two regimes:
 *
 * Decode (T = 1, GEMV). Every weight is used once per token, so the speed
 * is the memory bandwidth: the job is to stream W (1.2 GB for Qwen3-0.6B in
 * bf16) as fast as the memory system delivers it. Threads split the N
 * output rows into contiguous ranges (each thread reads its own contiguous
 * slice of W); each thread converts 16-bit weights to f32 in registers and
 * accumulates with FMA in several independent accumulators.
 *
 * Prefill (T >= FS_GEMM_MIN_T, GEMM). Each weight is used T times, so the
 * speed is arithmetic: the job is to keep the FMA units busy. A panel of
 * FS_PANEL_N = 16 weight rows x FS_PANEL_K columns is converted to f32 once
 * into a small per-thread buffer (pack, fits in L1/L2), laid out k-major so
 * that one k gives 16 consecutive floats (two AVX2 vectors). The register
 * tile then computes FS_TILE_T = 6 tokens x 16 rows: per k it loads the two
 * weight vectors once, broadcasts x[t, k] for each of the 6 tokens and
 * issues 12 FMAs into 12 accumulator registers. Every weight value loaded
 * is reused 6 times from a register, every x value 16 times.
 *
 * The ISA-specific loops live in matmul_avx2.c and matmul_neon.c; this file
 * holds the portable scalar versions (the fallback, and the shape of the
 * algorithm in plain C), the panel packing, and the job: how one weight's
 * rows are split into chunks of the matmul's parallel pass (matmul_cpu.c,
 * which also handles the input's rmsnorm / SwiGLU and the residual add).
 *
 * Quantized weights (Q8_0 / Q4_0) go to matmul_quant.c.
 *
 * Docs: docs/forward.md
 */
#include "cpu_backend.h"

/* ---- portable pieces ---- */

void fs_pack_panel(const void *W, fs_dtype dt, int K, int n, int rows, int k0, int kc, float *pack) {
    for (int r = 0; r < FS_PANEL_N; r++) {
        if (r >= rows) {
            for (int k = 0; k < kc; k++) pack[(size_t)k * FS_PANEL_N + (size_t)r] = 0.0f;
            continue;
        }
        size_t base = (size_t)(n + r) * (size_t)K + (size_t)k0;
        switch (dt) {   /* one switch per row, not per element */
        case FS_DTYPE_BF16: {
            const uint16_t *w = (const uint16_t *)W + base;
            for (int k = 0; k < kc; k++) pack[(size_t)k * FS_PANEL_N + (size_t)r] = fs_bf16_to_f32(w[k]);
            break;
        }
        case FS_DTYPE_F16: {
            const uint16_t *w = (const uint16_t *)W + base;
            for (int k = 0; k < kc; k++) pack[(size_t)k * FS_PANEL_N + (size_t)r] = fs_f16_to_f32(w[k]);
            break;
        }
        default: {
            const float *w = (const float *)W + base;
            for (int k = 0; k < kc; k++) pack[(size_t)k * FS_PANEL_N + (size_t)r] = w[k];
        }
        }
    }
}

/* Scalar GEMV: 4 rows at a time so the 4 sums are independent chains. */
void fs_gemv_scalar(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1) {
    for (int n = n0; n < n1; n += 4) {
        int rows = n1 - n < 4 ? n1 - n : 4;
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * (size_t)K;
            float acc[4] = {0, 0, 0, 0};
            for (int r = 0; r < rows; r++) {
                size_t w0 = (size_t)(n + r) * (size_t)K;
                for (int k = 0; k < K; k++) acc[r] += xt[k] * fs_cpu_weight(W, dt, w0 + (size_t)k);
            }
            for (int r = 0; r < rows; r++) y[(size_t)t * (size_t)N + (size_t)(n + r)] = acc[r];
        }
    }
}

/* Scalar GEMM: the same panel/tile structure as the SIMD versions. */
void fs_gemm_scalar(const float *x, const void *W, fs_dtype dt, float *y, int T, int K, int N, int n0, int n1,
                    float *pack) {
    for (int n = n0; n < n1; n += FS_PANEL_N) {
        int rows = n1 - n < FS_PANEL_N ? n1 - n : FS_PANEL_N;
        for (int k0 = 0; k0 < K; k0 += FS_PANEL_K) {
            int kc = K - k0 < FS_PANEL_K ? K - k0 : FS_PANEL_K;
            fs_pack_panel(W, dt, K, n, rows, k0, kc, pack);
            for (int t = 0; t < T; t++) {
                const float *xt = x + (size_t)t * (size_t)K + (size_t)k0;
                float acc[FS_PANEL_N] = {0};
                for (int k = 0; k < kc; k++)
                    for (int r = 0; r < FS_PANEL_N; r++) acc[r] += xt[k] * pack[(size_t)k * FS_PANEL_N + (size_t)r];
                float *yt = y + (size_t)t * (size_t)N + (size_t)n;
                for (int r = 0; r < rows; r++) yt[r] = k0 ? yt[r] + acc[r] : acc[r];
            }
        }
    }
}

/* ---- the job ---- */

/* One chunk: rows [n0, n1) of y, all T tokens. Chunks are contiguous row
 * ranges, so each thread streams a contiguous slice of W. */
static void float_chunk(void *arg, int chunk, int tid) {
    const fs_float_job *j = arg;
    int n0 = chunk * j->rows, n1 = n0 + j->rows < j->N ? n0 + j->rows : j->N;
    float *pack = j->f->pack + (size_t)tid * FS_PANEL_K * FS_PANEL_N;
    switch (j->f->isa) {
    case FS_ISA_AVX2:
        if (j->gemm) fs_gemm_avx2(j->x, j->W, j->dt, j->y, j->T, j->K, j->N, n0, n1, pack);
        else fs_gemv_avx2(j->x, j->W, j->dt, j->y, j->T, j->K, j->N, n0, n1);
        return;
    case FS_ISA_NEON:
        if (j->gemm) fs_gemm_neon(j->x, j->W, j->dt, j->y, j->T, j->K, j->N, n0, n1, pack);
        else fs_gemv_neon(j->x, j->W, j->dt, j->y, j->T, j->K, j->N, n0, n1);
        return;
    case FS_ISA_SCALAR: break;
    }
    if (j->gemm) fs_gemm_scalar(j->x, j->W, j->dt, j->y, j->T, j->K, j->N, n0, n1, pack);
    else fs_gemv_scalar(j->x, j->W, j->dt, j->y, j->T, j->K, j->N, n0, n1);
}

/* Prefill chunks are one panel (FS_PANEL_N rows: compute, so small chunks
 * balance well); decode chunks about FS_DECODE_CHUNK_BYTES of weights. */
void fs_cpu_float_job(fs_cpu *f, fs_float_job *j, const fs_buf *W, const float *x, float *y, int T, int K, int N,
                      fs_cpu_job *job) {
    int gemm = T >= FS_GEMM_MIN_T;
    int rows = gemm ? FS_PANEL_N : fs_cpu_decode_rows(N, fs_dtype_row_bytes(W->dtype, K), f->nth, 4);
    *j = (fs_float_job){f, x, W->data, W->dtype, y, T, K, N, rows, gemm};
    *job = (fs_cpu_job){float_chunk, j, rows, (N + rows - 1) / rows};
}
