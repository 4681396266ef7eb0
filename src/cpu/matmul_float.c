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
#include <string.h>

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
 * ranges, so each thread streams a contiguous slice of W. With AVX2 the
 * kernel depends on the call: AMX tiles for a bf16 prefill where the CPU
 * has them (matmul_amx.c), with AVX-512 for 2-12 tokens (a batched
 * decode step) the rows read as stored (fs_gemvT_avx512), the AVX2 GEMM for
 * other prefills, and for one token the decode plan's kernel (tune_cpu.c: 256- or 512-bit, and for
 * bf16 vdpbf16ps on the split input). */
static void float_chunk(void *arg, int chunk, int tid) {
    const fs_float_job *j = arg;
    int n0 = chunk * j->rows, n1 = n0 + j->rows < j->N ? n0 + j->rows : j->N;
    float *pack = j->f->pack + (size_t)tid * 2 * FS_PANEL_K * FS_PANEL_N;   /* two panels (AVX-512) */
    const fs_cpu *f = j->f;
    switch (f->isa) {
    case FS_ISA_AVX2: {
        const fs_cpu_plan *plan = &f->plan[j->dt];
        if (j->amx) fs_amx_gemm_bf16(j->f, j->W, j->y, j->T, j->K, j->N, n0, n1, tid);
        else if (f->avx512 && j->T > 1 && j->T <= FS_TILE_T512)
            fs_gemvT_avx512(j->x, j->W, j->dt, j->y, j->T, j->K, j->N, n0, n1);
        else if (j->gemm) fs_gemm_avx2(j->x, j->W, j->dt, j->y, j->T, j->K, j->N, n0, n1, pack, f->avx512);
        else if (j->T > 1) fs_gemv_avx2(j->x, j->W, j->dt, j->y, j->T, j->K, j->N, n0, n1, plan);
        else switch (fs_cpu_decode_kernel(f, j->dt)) {
            case FS_DK_AVX512_BF16:
                fs_gemv1_avx512_bf16(f->xs, (size_t)f->xs_T * (size_t)f->xs_K, j->W, j->y, j->K, n0, n1, plan);
                break;
            case FS_DK_AVX512: fs_gemv1_avx512(j->x, j->W, j->dt, j->y, j->K, n0, n1, plan); break;
            default: fs_gemv_avx2(j->x, j->W, j->dt, j->y, 1, j->K, j->N, n0, n1, plan); break;
            }
        return;
    }
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
 * balance well; AMX: 32 rows, the B tiles of a pass); decode chunks the
 * pass's chunk rows (f->decode_rows, cpu_backend.h). */
void fs_cpu_float_job(fs_cpu *f, fs_float_job *j, const fs_buf *W, const float *x, float *y, int T, int K, int N,
                      fs_cpu_job *job) {
    int gemm = T >= FS_GEMM_MIN_T, amx = fs_cpu_wants_split(f, W->dtype, T) && T > 1;
    int rows = amx ? fs_cpu_chunk_rows(N, f->nth, 32, 4)
             : gemm ? (f->isa == FS_ISA_AVX2 && f->avx512 ? 2 * FS_PANEL_N : FS_PANEL_N)
                    : f->decode_rows;
    *j = (fs_float_job){f, x, W->data, W->dtype, y, T, K, N, rows, gemm, amx};
    *job = (fs_cpu_job){float_chunk, j, rows, (N + rows - 1) / rows};
}

/* ---- the input split into bf16 parts (cpu_backend.h) ---- */

int fs_cpu_wants_split(const fs_cpu *f, fs_dtype dt, int T) {
    if (f->isa != FS_ISA_AVX2 || dt != FS_DTYPE_BF16 || !f->xs) return 0;
    if (T == 1) return fs_cpu_decode_kernel(f, dt) == FS_DK_AVX512_BF16;
    return f->amx && T >= fs_amx_min_t(f, dt);
}

typedef struct {
    const float *x;
    uint16_t *xs;
    size_t part;
    int T, K, Kp, rows;
} split_job;

static void split_chunk(void *arg, int c, int tid) {
    (void)tid;
    const split_job *s = arg;
    int t0 = c * s->rows, t1 = t0 + s->rows < s->T ? t0 + s->rows : s->T;
    fs_split_rows_avx512(s->x + (size_t)t0 * (size_t)s->K, (size_t)s->K, t1 - t0, s->K,
                         s->xs + (size_t)t0 * (size_t)s->Kp, s->part, s->Kp);
}

/* Rows of T tokens (padded with zero rows to a multiple of 32 for the AMX
 * GEMM's token blocks), split in a parallel pass when there are many. */
void fs_cpu_split_input(fs_cpu *f, const float *x, int T, int K) {
    int Kp = (K + 31) / 32 * 32, Tp = T >= FS_AMX_MIN_T ? (T + 31) / 32 * 32 : T;
    f->xs_K = Kp;
    f->xs_T = Tp;
    size_t part = (size_t)Tp * (size_t)Kp;
    for (int p = 0; p < 3; p++) memset(f->xs + p * part + (size_t)T * (size_t)Kp, 0, (size_t)(Tp - T) * (size_t)Kp * 2);
    split_job s = {x, f->xs, part, T, K, Kp, 8};
    if (T < 16) {
        s.rows = T;
        split_chunk(&s, 0, 0);
    } else {
        fs_threadpool_for(f->pool, (T + s.rows - 1) / s.rows, split_chunk, &s);
    }
}
