/* matmul_fast.c - the fast linear layer: y = x W^T on all cores.
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
 * algorithm in plain C), the panel packing, and the threading.
 *
 * Quantized weights (Q8_0 / Q4_0) go to matmul_quant.c.
 *
 * Docs: docs/forward.md
 */
#include <stdlib.h>
#include <string.h>

#include "fast.h"
#include "quant.h"

/* ---- ISA detection ---- */

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static int have_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int f16c = (c >> 29) & 1, fma = (c >> 12) & 1;
    /* __builtin_cpu_supports also checks that the OS saves the YMM state */
    return f16c && fma && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
/* AVX-VNNI (VEX-encoded vpdpbusd: Zen 5, Intel Alder Lake and later):
 * cpuid leaf 7, subleaf 1, EAX bit 4. The YMM state check is have_avx2's. */
static int have_avx_vnni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 4) & 1;
}
#endif

fs_isa fs_fast_detect_isa(void) {
    const char *force = getenv("FS_ISA");
    if (force && !strcmp(force, "scalar")) return FS_ISA_SCALAR;
#if defined(__x86_64__) || defined(__i386__)
    if (have_avx2()) return FS_ISA_AVX2;
#elif defined(__ARM_NEON)
    return FS_ISA_NEON;
#endif
    return FS_ISA_SCALAR;
}

int fs_fast_detect_vnni(fs_isa isa) {
    const char *force = getenv("FS_ISA");
    if (isa != FS_ISA_AVX2 || (force && !strcmp(force, "avx2"))) return 0;
#if (defined(__x86_64__) || defined(__i386__)) && FS_HAVE_VNNI_TARGET
    return have_avx_vnni();
#else
    return 0;
#endif
}

const char *fs_backend_cpu_isa(void) {
    fs_isa isa = fs_fast_detect_isa();
    return fs_fast_detect_vnni(isa) ? "avx2+avx-vnni" : fs_isa_name(isa);
}

const char *fs_isa_name(fs_isa isa) {
    switch (isa) {
    case FS_ISA_AVX2: return "avx2";
    case FS_ISA_NEON: return "neon";
    case FS_ISA_SCALAR: break;
    }
    return "scalar";
}

/* ---- portable pieces ---- */

static inline float w_at(const void *W, fs_dtype dt, size_t i) {
    switch (dt) {
    case FS_DTYPE_BF16: return fs_bf16_to_f32(((const uint16_t *)W)[i]);
    case FS_DTYPE_F16: return fs_f16_to_f32(((const uint16_t *)W)[i]);
    default: break;
    }
    return ((const float *)W)[i];
}

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
                for (int k = 0; k < K; k++) acc[r] += xt[k] * w_at(W, dt, w0 + (size_t)k);
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

/* ---- threading ---- */

typedef struct {
    fs_fast *f;
    const float *x;
    const void *W;
    fs_dtype dt;
    float *y;
    int T, K, N;
    int rows;    /* output rows per chunk: a multiple of 4 (GEMV) or of FS_PANEL_N (GEMM) */
    int gemm;
} mm_job;

/* One chunk: rows [n0, n1) of y, all T tokens. Chunks are contiguous row
 * ranges, so each thread streams a contiguous slice of W. */
static void mm_chunk(void *arg, int chunk, int tid) {
    const mm_job *j = arg;
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

/* Rows per chunk: per_thread chunks per thread (so a descheduled thread's
 * share is picked up by the others, see threadpool.h), rounded to the
 * kernel's row block. Prefill uses 8: its chunks are compute. */
int fs_fast_chunk_rows(int N, int nth, int align, int per_thread) {
    int r = N / (nth * per_thread);
    if (r < align) r = align;
    return (r + align - 1) / align * align;
}

/* Rows per chunk for decode: about FS_DECODE_CHUNK_BYTES of weights, and
 * at least two chunks per thread. Each thread streams its contiguous share
 * chunk after chunk (threadpool.h), so the size only sets how long the
 * barrier at the end of the matmul may wait: the last chunk (~256 KiB,
 * ~10 us on one core). The lm_head of Qwen3-0.6B in Q4_0 (85 MB) is
 * ~330 chunks, a 1024 x 1024 matrix the minimum 4 (2 threads). */
int fs_fast_decode_rows(int N, size_t row_bytes, int nth, int align) {
    size_t total = (size_t)N * row_bytes;
    size_t chunks = (total + FS_DECODE_CHUNK_BYTES - 1) / FS_DECODE_CHUNK_BYTES;
    if (chunks < 2 * (size_t)nth) chunks = 2 * (size_t)nth;
    int r = (int)(((size_t)N + chunks - 1) / chunks);
    if (r < align) r = align;
    return (r + align - 1) / align * align;
}

/* Several matmuls that read the same x (q/k/v, gate/up) run as one
 * parallel loop: matmul i's chunks are numbered after matmul i-1's. A
 * decode step then waits for the slowest thread once instead of once per
 * matmul, and x is quantized once. */
typedef struct {
    int n;
    int first[FS_MATMUL_N_MAX + 1];    /* matmul i has chunks [first[i], first[i + 1]) */
    fs_task_fn fn[FS_MATMUL_N_MAX];
    void *arg[FS_MATMUL_N_MAX];
} mm_multi;

static void multi_chunk(void *arg, int c, int tid) {
    const mm_multi *m = arg;
    int i = 0;
    while (c >= m->first[i + 1]) i++;
    m->fn[i](m->arg[i], c - m->first[i], tid);
}

void fs_fast_matmul_n(fs_backend *b, const fs_buf *x, int n, const fs_buf *const *W, fs_buf *const *y, int T, int K,
                      const int *N) {
    fs_fast *f = fast_ctx(b);
    mm_job mj[FS_MATMUL_N_MAX];
    fs_qjob qj[FS_MATMUL_N_MAX];
    mm_multi m = {n, {0}, {0}, {0}};
    int quantized = 0;
    for (int i = 0; i < n; i++)
        if (fs_dtype_is_quant(W[i]->dtype) && !quantized) {
            fs_fast_quantize_x(f, cpu_f32(x), T, K);
            quantized = 1;
        }
    for (int i = 0; i < n; i++) {
        int chunks;
        if (fs_dtype_is_quant(W[i]->dtype)) {
            chunks = fs_fast_quant_job(f, &qj[i], W[i], cpu_f32_mut(y[i]), T, K, N[i], &m.fn[i]);
            m.arg[i] = &qj[i];
        } else {
            int gemm = T >= FS_GEMM_MIN_T;
            mj[i] = (mm_job){f, cpu_f32(x), W[i]->data, W[i]->dtype, cpu_f32_mut(y[i]), T, K, N[i],
                             gemm ? FS_PANEL_N : fs_fast_decode_rows(N[i], fs_dtype_row_bytes(W[i]->dtype, K), f->nth, 4), gemm};
            chunks = (N[i] + mj[i].rows - 1) / mj[i].rows;
            m.fn[i] = mm_chunk;
            m.arg[i] = &mj[i];
        }
        m.first[i + 1] = m.first[i] + chunks;
    }
    if (n == 1) fs_threadpool_for(f->pool, m.first[1], m.fn[0], m.arg[0]);
    else fs_threadpool_for(f->pool, m.first[n], multi_chunk, &m);
}

void fs_fast_matmul(fs_backend *b, const fs_buf *x, const fs_buf *W, fs_buf *y, int T, int K, int N) {
    fs_fast_matmul_n(b, x, 1, &W, &y, T, K, &N);
}
