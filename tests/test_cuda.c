/* test_cuda.c - the CUDA backend against double-precision references.
 *
 *   test_cuda            every op, every weight dtype, every fusion, shapes
 *                        with tails; steps that mix sequences (each token
 *                        its own cache and position); a recorded step
 *                        replayed against the same ops run directly. One
 *                        table row per check: op, dtype, shape, error,
 *                        tolerance, pass/fail.
 *   test_cuda --matmul   the matmul rows only
 *   test_cuda --bench    timings on a model with Qwen3-0.6B's shapes and
 *                        random weights (bench_cuda.c).
 *
 * On a machine without a usable GPU it prints why and counts as skipped
 * (exit 0), so `make test` passes on CI.
 *
 * The references here are written from backend.h's definitions, in double
 * (the CPU reference backend's arithmetic, src/cpu/), on the values the
 * GPU sees (dequantized weights). Errors are max |gpu - ref| / max |ref|
 * over an output. Outputs are poisoned with NaN before each op, so an
 * element the GPU never wrote fails. Tolerances:
 *   decode path (T = 1) and f32 kernels   1e-4  (measured ~1e-7)
 *   tensor-core matmul and attention      1e-2  (T > 1: bf16 inputs; measured ~2e-3)
 *   embed, argmax, copy                   exact
 *
 * Docs: docs/gpu.md
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cuda/backend_cuda.h"
#include "test.h"
#include "util.h"

#include "test_cuda.h"

fs_backend *B;
static fs_rng rng;

float frand(void) { return (float)(fs_rng_uniform(&rng) * 2.0 - 1.0); }

static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
}

static float *poison(size_t n) {
    float *x = fs_xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

/* max |a - ref| / max |ref|; infinity if a has a NaN where ref does not */
static double rel_err(const float *a, const float *ref, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) && !isnan(ref[i])) return INFINITY;
        double d = fabs((double)a[i] - (double)ref[i]);
        if (d > num) num = d;
        if (fabs((double)ref[i]) > den) den = fabs((double)ref[i]);
    }
    return den > 0.0 ? num / den : num;
}

static void row(const char *op, const char *dtype, const char *shape, double err, double tol) {
    int ok = err <= tol;
    printf("%-22s %-5s %-34s %10.3g %8.0e  %s\n", op, dtype, shape, err, tol, ok ? "pass" : "FAIL");
    fflush(stdout);
    CHECKF(ok, "%s %s %s: error %.3g > %.3g", op, dtype, shape, err, tol);
}

fs_buf *dev_f32(const float *x, size_t n) {
    fs_err e = {{0}};
    fs_buf *b = B->alloc(B, n, &e);
    if (!b) {
        fprintf(stderr, "alloc: %s\n", e.msg);
        exit(1);
    }
    if (x) B->write(B, b, 0, x, n);
    return b;
}

void set_seq_step(const int *ids, int T, int pos0) {
    int *pos = fs_xmalloc((size_t)T * sizeof(int)), *seq = fs_xcalloc((size_t)T, sizeof(int));
    for (int t = 0; t < T; t++) pos[t] = pos0 + t;
    B->set_step(B, &(fs_step){T, ids, pos, seq, 1});   /* copied: the arrays may go */
    free(pos), free(seq);
}

static float *get(const fs_buf *b, size_t n) {
    float *x = fs_xmalloc(n * sizeof(float));
    B->read(B, b, 0, x, n);
    return x;
}

/* ---- weights: stored values and the f32 values they stand for ---- */

/* One Q8_0 / Q4_0 block of 32 weights from 32 floats (GGUF's rounding). */
static void quant_block(fs_dtype dt, const float *x, void *blk, float *deq) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < 32; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (dt == FS_DTYPE_Q8_0) {
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        uint16_t dh = fs_f32_to_f16(d);
        memcpy(blk, &dh, 2);
        int8_t *qs = (int8_t *)blk + 2;
        for (int i = 0; i < 32; i++) {
            qs[i] = (int8_t)roundf(x[i] * id);
            deq[i] = fs_f16_to_f32(dh) * (float)qs[i];
        }
    } else {
        float d = max / -8.0f, id = d ? 1.0f / d : 0.0f;
        uint16_t dh = fs_f32_to_f16(d);
        memcpy(blk, &dh, 2);
        uint8_t *qs = (uint8_t *)blk + 2;
        int q[32];
        for (int i = 0; i < 32; i++) {
            int v = (int)(x[i] * id + 8.5f);
            q[i] = v < 0 ? 0 : v > 15 ? 15 : v;
            deq[i] = fs_f16_to_f32(dh) * (float)(q[i] - 8);
        }
        for (int i = 0; i < 16; i++) qs[i] = (uint8_t)(q[i] | q[i + 16] << 4);
    }
}

void make_weight(weight *w, fs_dtype dt, int N, int K, float scale) {
    size_t n = (size_t)N * (size_t)K;
    float *f = fs_xmalloc(n * sizeof(float));
    fill(f, n, scale);
    w->deq = fs_xmalloc(n * sizeof(float));
    memset(&w->t, 0, sizeof w->t);
    w->t.name = "test.weight";
    w->t.dtype = dt;
    w->t.ndim = N == 1 ? 1 : 2;
    w->t.shape[0] = N == 1 ? K : N;
    w->t.shape[1] = K;
    if (dt == FS_DTYPE_Q8_0 || dt == FS_DTYPE_Q4_0) {
        size_t bb = dt == FS_DTYPE_Q8_0 ? 34 : 18;
        w->t.nbytes = n / 32 * bb;
        w->data = fs_xmalloc(w->t.nbytes);
        for (size_t b = 0; b < n / 32; b++) quant_block(dt, f + 32 * b, (char *)w->data + b * bb, w->deq + 32 * b);
    } else {
        size_t es = dt == FS_DTYPE_F32 ? 4 : 2;
        w->t.nbytes = n * es;
        w->data = fs_xmalloc(w->t.nbytes);
        for (size_t i = 0; i < n; i++) {
            if (dt == FS_DTYPE_F32) ((float *)w->data)[i] = w->deq[i] = f[i];
            else if (dt == FS_DTYPE_BF16) w->deq[i] = fs_bf16_to_f32(((uint16_t *)w->data)[i] = fs_f32_to_bf16(f[i]));
            else w->deq[i] = fs_f16_to_f32(((uint16_t *)w->data)[i] = fs_f32_to_f16(f[i]));
        }
    }
    w->t.data = w->data;
    free(f);
    fs_err e = {{0}};
    w->buf = B->upload(B, &w->t, &e);
    if (!w->buf) {
        fprintf(stderr, "upload: %s\n", e.msg);
        exit(1);
    }
}

void free_weight(weight *w) {
    B->free_buf(B, w->buf);
    free(w->data);
    free(w->deq);
}

static const fs_dtype all_dtypes[] = {FS_DTYPE_F32, FS_DTYPE_F16, FS_DTYPE_BF16, FS_DTYPE_Q8_0, FS_DTYPE_Q4_0};
static const char *dt_name(fs_dtype t) {
    static const char *n[] = {"f32", "f16", "bf16", "q8_0", "q4_0"};
    return n[t];
}

/* ---- references (double accumulation, f32 where the reference rounds) ---- */

static float ref_rms_scale(const float *x, int n, float eps) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float var = (float)(ss / n) + eps;
    return (float)(1.0 / sqrt((double)var));
}

static void ref_rmsnorm(const float *x, const float *w, float *y, int rows, int n, float eps) {
    for (int r = 0; r < rows; r++) {
        float s = ref_rms_scale(x + (size_t)r * n, n, eps);
        for (int i = 0; i < n; i++) y[(size_t)r * n + i] = w[i] * (x[(size_t)r * n + i] * s);
    }
}

/* the matmul's transformed input, [T, K] */
static void ref_mm_input(const float *x, const float *norm, const float *up, float eps, int T, int K, float *in) {
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * K;
        float s = norm ? ref_rms_scale(xr, K, eps) : 1.0f;
        for (int k = 0; k < K; k++) {
            if (up) {
                double g = xr[k];
                float silu = (float)(g / (1.0 + exp(-g)));
                in[(size_t)t * K + k] = silu * up[(size_t)t * K + k];
            } else if (norm) {
                in[(size_t)t * K + k] = norm[k] * (xr[k] * s);
            } else {
                in[(size_t)t * K + k] = xr[k];
            }
        }
    }
}

static void ref_matmul(const float *in, const float *W, float *y, int T, int K, int N, int add) {
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) acc += (double)in[(size_t)t * K + k] * W[(size_t)n * K + k];
            float v = (float)acc;
            y[(size_t)t * N + n] = add ? y[(size_t)t * N + n] + v : v;
        }
}

/* ---- the checks ---- */

static void check_embed(void) {
    enum { V = 1000, H = 96, T = 5 };
    int ids[T] = {0, 999, 17, 17, 500};
    for (int d = 0; d < 5; d++) {
        fs_dtype dt = all_dtypes[d];
        weight w;
        make_weight(&w, dt, V, H, 1.0f);
        fs_buf *out = dev_f32(NULL, (size_t)T * H);
        float *p = poison((size_t)T * H);
        B->write(B, out, 0, p, (size_t)T * H);
        set_seq_step(ids, T, 0);
        B->embed(B, w.buf, H, out);
        float *got = get(out, (size_t)T * H), *ref = fs_xmalloc((size_t)T * H * sizeof(float));
        for (int t = 0; t < T; t++) memcpy(ref + (size_t)t * H, w.deq + (size_t)ids[t] * H, H * sizeof(float));
        row("embed", dt_name(dt), "V=1000 H=96 T=5", rel_err(got, ref, (size_t)T * H), 0.0);
        free(got), free(ref), free(p);
        B->free_buf(B, out);
        free_weight(&w);
    }
}

static void check_rmsnorm(void) {
    const int rows = 3, n = 1000;
    for (int d = 0; d < 3; d++) {
        fs_dtype dt = d == 0 ? FS_DTYPE_F32 : d == 1 ? FS_DTYPE_BF16 : FS_DTYPE_F16;
        weight w;
        make_weight(&w, dt, 1, n, 1.0f);
        float *x = fs_xmalloc((size_t)rows * n * sizeof(float)), *ref = fs_xmalloc((size_t)rows * n * sizeof(float));
        fill(x, (size_t)rows * n, 3.0f);
        ref_rmsnorm(x, w.deq, ref, rows, n, 1e-6f);
        fs_buf *xb = dev_f32(x, (size_t)rows * n);
        B->rmsnorm(B, xb, w.buf, xb, rows, n, 1e-6f);   /* in place */
        float *got = get(xb, (size_t)rows * n);
        row("rmsnorm (in place)", dt_name(dt), "rows=3 n=1000", rel_err(got, ref, (size_t)rows * n), 1e-5);
        free(got), free(x), free(ref);
        B->free_buf(B, xb);
        free_weight(&w);
    }
}

static int hint_prefetch;   /* run_matmul gives the prefetch hint first (backend.h) */

/* One matmul call: n_lin layers of sizes Ns, input mode (0 plain, 1 norm,
 * 2 swiglu), add flags. Returns the error over all outputs. */
static double run_matmul(fs_dtype dt, fs_dtype dt2, int T, int K, const int *Ns, const int *adds, int n_lin, int mode) {
    weight w[FS_MATMUL_MAX], norm;
    float *x = fs_xmalloc((size_t)T * K * sizeof(float)), *up = fs_xmalloc((size_t)T * K * sizeof(float));
    fill(x, (size_t)T * K, 2.0f);
    fill(up, (size_t)T * K, 1.0f);
    fs_buf *xb = dev_f32(x, (size_t)T * K), *upb = dev_f32(up, (size_t)T * K);
    if (mode == 1) make_weight(&norm, FS_DTYPE_BF16, 1, K, 1.0f);
    float *in = fs_xmalloc((size_t)T * K * sizeof(float));
    ref_mm_input(x, mode == 1 ? norm.deq : NULL, mode == 2 ? up : NULL, 1e-6f, T, K, in);
    fs_linear lin[FS_MATMUL_MAX];
    float *ys[FS_MATMUL_MAX];
    for (int i = 0; i < n_lin; i++) {
        make_weight(&w[i], i == 1 ? dt2 : dt, Ns[i], K, 0.05f);
        size_t ny = (size_t)T * Ns[i];
        ys[i] = fs_xmalloc(ny * sizeof(float));
        if (adds[i]) fill(ys[i], ny, 1.0f);
        else for (size_t j = 0; j < ny; j++) ys[i][j] = NAN;
        lin[i].W = w[i].buf;
        lin[i].y = dev_f32(ys[i], ny);
        lin[i].N = Ns[i];
        lin[i].add = adds[i];
    }
    fs_mm_in min = {xb, mode == 1 ? norm.buf : NULL, 1e-6f, mode == 2 ? upb : NULL};
    if (hint_prefetch && B->prefetch) {   /* a hint changes no result: its own weights, and odd sizes */
        const fs_buf *pf[FS_PREFETCH_MAX] = {w[0].buf, mode == 1 ? norm.buf : w[0].buf, xb, upb};
        B->prefetch(B, pf, FS_PREFETCH_MAX);
    }
    B->matmul(B, &min, T, K, lin, n_lin);
    double worst = 0.0;
    for (int i = 0; i < n_lin; i++) {
        size_t ny = (size_t)T * Ns[i];
        float *got = get(lin[i].y, ny);
        ref_matmul(in, w[i].deq, ys[i], T, K, Ns[i], adds[i]);
        double err = rel_err(got, ys[i], ny);
        if (err > worst) worst = err;
        free(got), free(ys[i]);
        B->free_buf(B, lin[i].y);
        free_weight(&w[i]);
    }
    if (mode == 1) free_weight(&norm);
    B->free_buf(B, xb), B->free_buf(B, upb);
    free(x), free(up), free(in);
    return worst;
}

static void check_matmul(void) {
    static const char *modes[] = {"plain", "norm", "swiglu"};
    char shape[64], op[32];
    /* every dtype x every input mode, decode and prefill, one layer with add */
    for (int d = 0; d < 5; d++) {
        fs_dtype dt = all_dtypes[d];
        for (int mode = 0; mode < 3; mode++) {
            static const int Ts[] = {1, 2, 65, 130};
            for (int ti = 0; ti < 4; ti++) {
                int T = Ts[ti], K = mode == 2 ? 3072 : 1024, N = ti == 3 ? 1027 : 300, add = (mode + ti) % 2;
                double err = run_matmul(dt, dt, T, K, &N, &add, 1, mode);
                snprintf(op, sizeof op, "matmul %s%s", modes[mode], add ? " +=" : "");
                snprintf(shape, sizeof shape, "T=%d K=%d N=%d", T, K, N);
                row(op, dt_name(dt), shape, err, T == 1 ? 1e-4 : 1e-2);
            }
        }
        /* Qwen3-0.6B's q/k/v and gate/up: enough rows for the unsplit GEMV */
        int qkv[3] = {2048, 1024, 1024}, qkv_add[3] = {0, 0, 1}, gu[2] = {3072, 3000}, gu_add[2] = {0, 0};
        /* three layers whose rows begin and end inside a staged GEMV block (gemv_stage.cu) */
        int odd[3] = {700, 333, 129}, odd_add[3] = {0, 1, 0};
        row("matmul 3 layers plain", dt_name(dt), "T=1 K=512 N=700+333+129", run_matmul(dt, dt, 1, 512, odd, odd_add, 3, 0), 1e-4);
        row("matmul qkv norm", dt_name(dt), "T=1 K=1024 N=2048+1024+1024", run_matmul(dt, dt, 1, 1024, qkv, qkv_add, 3, 1), 1e-4);
        row("matmul gate/up norm", dt_name(dt), "T=1 K=1024 N=3072+3000", run_matmul(dt, dt, 1, 1024, gu, gu_add, 2, 1), 1e-4);
        hint_prefetch = 1;
        row("matmul qkv norm, prefetch hint", dt_name(dt), "T=1 K=1024 N=2048+1024+1024", run_matmul(dt, dt, 1, 1024, qkv, qkv_add, 3, 1), 1e-4);
        row("matmul qkv norm, prefetch hint", dt_name(dt), "T=7 K=1024 N=2048+1024+1024", run_matmul(dt, dt, 7, 1024, qkv, qkv_add, 3, 1), 1e-2);
        hint_prefetch = 0;
        row("matmul qkv norm", dt_name(dt), "T=300 K=1024 N=2048+1024+1024", run_matmul(dt, dt, 300, 1024, qkv, qkv_add, 3, 1), 1e-2);
        /* the pipelined GEMM (gemm.cu): a batched decode step's o_proj (64
         * tokens, one row of tiles, K cut into 16 slices); K = 352, 5.5
         * steps of 64, in 2 slices (the last step half past K); a chunk of
         * 5 row tiles, the last one token */
        int n1024 = 1024, n200 = 200, n0 = 0, n1 = 1;
        row("matmul plain (batched step)", dt_name(dt), "T=64 K=2048 N=1024", run_matmul(dt, dt, 64, 2048, &n1024, &n0, 1, 0), 1e-2);
        row("matmul swiglu += (K tail, split)", dt_name(dt), "T=64 K=352 N=200", run_matmul(dt, dt, 64, 352, &n200, &n1, 1, 2), 1e-2);
        row("matmul norm (5 row tiles)", dt_name(dt), "T=257 K=1024 N=1024", run_matmul(dt, dt, 257, 1024, &n1024, &n0, 1, 1), 1e-2);
        /* q, k, v: three layers in one call, tails in every N */
        int Ns[3] = {64, 32, 17}, adds[3] = {0, 1, 0};
        for (int T = 1; T <= 70; T += 69) {
            snprintf(shape, sizeof shape, "T=%d K=96 N=64+32+17", T);
            row("matmul 3 layers norm", dt_name(dt), shape, run_matmul(dt, dt, T, 96, Ns, adds, 3, 1), T == 1 ? 1e-4 : 1e-2);
        }
    }
    /* K not a multiple of the 16-byte vector: the element-wise kernel */
    int N = 45, add = 0;
    row("matmul (any K)", "bf16", "T=1 K=100 N=45", run_matmul(FS_DTYPE_BF16, FS_DTYPE_BF16, 1, 100, &N, &add, 1, 1), 1e-4);
    row("matmul (any K)", "f32", "T=3 K=101 N=45", run_matmul(FS_DTYPE_F32, FS_DTYPE_F32, 3, 101, &N, &add, 1, 0), 1e-4);
    row("matmul (any K)", "f16", "T=5 K=100 N=45", run_matmul(FS_DTYPE_F16, FS_DTYPE_F16, 5, 100, &N, &add, 1, 2), 1e-4);
    /* two dtypes in one call */
    int Ns[2] = {40, 50}, adds[2] = {0, 0};
    row("matmul mixed dtypes", "bf+q8", "T=1 K=128 N=40+50", run_matmul(FS_DTYPE_BF16, FS_DTYPE_Q8_0, 1, 128, Ns, adds, 2, 0), 1e-4);
    row("matmul mixed dtypes", "bf+q8", "T=9 K=128 N=40+50", run_matmul(FS_DTYPE_BF16, FS_DTYPE_Q8_0, 9, 128, Ns, adds, 2, 0), 1e-2);
    /* the shapes of Qwen3-0.6B's decode (lm_head's 151936 rows: the grid loop) */
    int Nl = 151936, a0 = 0;
    row("matmul lm_head norm", "bf16", "T=1 K=1024 N=151936", run_matmul(FS_DTYPE_BF16, FS_DTYPE_BF16, 1, 1024, &Nl, &a0, 1, 1), 1e-4);
    row("matmul lm_head norm", "q4_0", "T=1 K=1024 N=151936", run_matmul(FS_DTYPE_Q4_0, FS_DTYPE_Q4_0, 1, 1024, &Nl, &a0, 1, 1), 1e-4);
}

/* The few-token tensor-core matmul (gemm_skinny.cu) on the shapes of a
 * batched decode step: every token tile (T up to 8, 16, 32, 64), every
 * row grouping on 132 SMs (qkv: 2 row groups a block; N = 1024 and 1027:
 * 1, K cut across blocks, a partial last block; Llama 3.2 1B's gate/up,
 * 16,384 rows: 8), layers whose rows begin and end inside a block.
 * Held to the T > 1 bound (bf16 inputs). check_matmul's T = 2, 7, 9 and
 * 64 rows take it too, K tails included (K = 352: 5.5 windows of q8_0). */
static void check_skinny_matmul(void) {
    char shape[64];
    long before = fs_cuda_skinny_launches;
    for (int d = 0; d < 5; d++) {
        fs_dtype dt = all_dtypes[d];
        int qkv[3] = {2048, 1024, 1024}, qkv_add[3] = {0, 0, 1}, N = 1027, n1024 = 1024, add1 = 1, add0 = 0;
        int odd[3] = {700, 333, 129}, odd_add[3] = {0, 1, 0};
        /* f32 weights have no skinny kernel: their rows run on the GEMM */
        row("matmul qkv norm (skinny)", dt_name(dt), "T=64 K=1024 N=2048+1024+1024", run_matmul(dt, dt, 64, 1024, qkv, qkv_add, 3, 1), 1e-2);
        row("matmul swiglu += (skinny)", dt_name(dt), "T=17 K=3072 N=1027", run_matmul(dt, dt, 17, 3072, &N, &add1, 1, 2), 1e-2);
        row("matmul plain (skinny)", dt_name(dt), "T=8 K=2048 N=1024", run_matmul(dt, dt, 8, 2048, &n1024, &add0, 1, 0), 1e-2);
        for (int T = 16; T <= 33; T += 17) {
            snprintf(shape, sizeof shape, "T=%d K=512 N=700+333+129", T);
            row("matmul 3 layers plain (skinny)", dt_name(dt), shape, run_matmul(dt, dt, T, 512, odd, odd_add, 3, 0), 1e-2);
        }
        int gu[2] = {8192, 8192}, gu_add[2] = {0, 0};
        row("matmul gate/up norm (skinny)", dt_name(dt), "T=64 K=2048 N=8192+8192", run_matmul(dt, dt, 64, 2048, gu, gu_add, 2, 1), 1e-2);
    }
    /* the lm_head's 151,936 rows stay on the GEMM (ops_cuda.c, SKINNY_MAX_N) */
    int Nl = 151936, a0 = 0;
    row("matmul lm_head norm (gemm)", "bf16", "T=5 K=1024 N=151936", run_matmul(FS_DTYPE_BF16, FS_DTYPE_BF16, 5, 1024, &Nl, &a0, 1, 1), 1e-2);
    row("matmul lm_head norm (gemm)", "q4_0", "T=5 K=1024 N=151936", run_matmul(FS_DTYPE_Q4_0, FS_DTYPE_Q4_0, 5, 1024, &Nl, &a0, 1, 1), 1e-2);
    /* the rows above passing on gemm.cu would prove nothing */
    long n = fs_cuda_skinny_launches - before;
    CHECKF(n == 4 * 6, "%ld matmuls took gemm_skinny.cu, expected 24 (every row but f32's and the lm_head's)", n);
    printf("gemm_skinny.cu: %ld launches\n", n);
}

/* Two decode matmuls back to back, nothing from the host between them:
 * y1 = x W1, then y2 += rmsnorm(y1) W2. In a decode step (T = 1) the
 * second is a programmatic launch that starts while the first runs, so
 * its input and its += output come from the kernel just before it - what
 * the staged GEMV must not read before its griddepcontrol.wait. */
static double run_chain(fs_dtype dt) {
    int K = 1024, N1 = 1024, N2 = 1027;
    weight w1, w2, norm;
    make_weight(&w1, dt, N1, K, 0.05f);
    make_weight(&w2, dt, N2, K, 0.05f);
    make_weight(&norm, FS_DTYPE_BF16, 1, K, 1.0f);
    float *x = fs_xmalloc((size_t)K * sizeof(float)), *y2 = fs_xmalloc((size_t)N2 * sizeof(float));
    fill(x, (size_t)K, 2.0f);
    fill(y2, (size_t)N2, 1.0f);
    fs_buf *xb = dev_f32(x, (size_t)K), *y1b = dev_f32(NULL, (size_t)N1), *y2b = dev_f32(y2, (size_t)N2);
    fs_linear l1 = {w1.buf, y1b, N1, 0}, l2 = {w2.buf, y2b, N2, 1};
    fs_mm_in in1 = {xb, NULL, 1e-6f, NULL}, in2 = {y1b, norm.buf, 1e-6f, NULL};
    B->matmul(B, &in1, 1, K, &l1, 1);
    B->matmul(B, &in2, 1, K, &l2, 1);
    float *got1 = get(y1b, (size_t)N1), *got2 = get(y2b, (size_t)N2);
    float *want1 = fs_xmalloc((size_t)N1 * sizeof(float)), *in = fs_xmalloc((size_t)K * sizeof(float));
    ref_matmul(x, w1.deq, want1, 1, K, N1, 0);
    double e1 = rel_err(got1, want1, (size_t)N1);
    ref_mm_input(got1, norm.deq, NULL, 1e-6f, 1, K, in);   /* from what the first call wrote */
    ref_matmul(in, w2.deq, y2, 1, K, N2, 1);
    double e2 = rel_err(got2, y2, (size_t)N2);
    free(got1), free(got2), free(want1), free(in), free(x), free(y2);
    B->free_buf(B, xb), B->free_buf(B, y1b), B->free_buf(B, y2b);
    free_weight(&w1), free_weight(&w2), free_weight(&norm);
    return e1 > e2 ? e1 : e2;
}

/* The decode matmuls (T = 1) again, for a backend opened with the staged
 * GEMV on (gemv_stage.cu, FS_CUDA_GEMV_STAGE=KB): at 64 KB a block, and at
 * 16 KB (blocks hold few rows, a call's layers begin and end inside
 * blocks, and shapes that would need too many blocks fall back to
 * gemv.cu). The backend is in a one-token step, so launches are
 * programmatic as in a decode step. */
static void check_decode_matmul(void) {
    int id0 = 0;
    set_seq_step(&id0, 1, 0);
    for (int d = 0; d < 5; d++) {
        fs_dtype dt = all_dtypes[d];
        int N = 1027, add1 = 1, add0 = 0;
        row("matmul norm +=", dt_name(dt), "T=1 K=1024 N=1027", run_matmul(dt, dt, 1, 1024, &N, &add1, 1, 1), 1e-4);
        row("matmul swiglu", dt_name(dt), "T=1 K=3072 N=1027", run_matmul(dt, dt, 1, 3072, &N, &add0, 1, 2), 1e-4);
        int qkv[3] = {2048, 1024, 1024}, qkv_add[3] = {0, 0, 1};
        row("matmul qkv norm", dt_name(dt), "T=1 K=1024 N=2048+1024+1024", run_matmul(dt, dt, 1, 1024, qkv, qkv_add, 3, 1), 1e-4);
        int Ns[3] = {700, 333, 129}, adds[3] = {0, 1, 0};
        row("matmul 3 layers plain", dt_name(dt), "T=1 K=512 N=700+333+129", run_matmul(dt, dt, 1, 512, Ns, adds, 3, 0), 1e-4);
        row("matmul chain: plain, then norm +=", dt_name(dt), "T=1 K=1024 N=1024, 1027", run_chain(dt), 1e-4);
    }
}

/* rope of one head, in place, as src/cpu/rope_kv.c */
static void ref_rope(float *x, int D, int p, const float *inv_freq) {
    int half = D / 2;
    for (int i = 0; i < half; i++) {
        float angle = (float)p * inv_freq[i];
        float c = (float)cos((double)angle), s = (float)sin((double)angle);
        float a = x[i], b = x[i + half];
        float a_cos = a * c, b_sin = b * s, b_cos = b * c, a_sin = a * s;
        x[i] = a_cos - b_sin;
        x[i + half] = b_cos + a_sin;
    }
}

static float *inv_freq_table(int D) {
    float *f = fs_xmalloc((size_t)(D / 2) * sizeof(float));
    for (int i = 0; i < D / 2; i++) {
        float expo = (float)(2 * i) / (float)D;
        f[i] = 1.0f / (float)pow(1000000.0f, (double)expo);
    }
    return f;
}

/* The KV caches' dtype the next reserve() asks for: F32, or F16 (--kv f16). */
static fs_dtype kv_dtype = FS_DTYPE_F32;
static const char *kv_name(void) { return kv_dtype == FS_DTYPE_F16 ? "f16 kv" : "f32"; }
/* A cache's contents as an f16 cache holds them (rounded to nearest even). */
static void kv_round(float *x, size_t n) {
    if (kv_dtype == FS_DTYPE_F16)
        for (size_t i = 0; i < n; i++) x[i] = fs_f16_to_f32(fs_f32_to_f16(x[i]));
}

/* reserve with these attention shapes (and room for the matmul checks) */
static void reserve(int Hq, int Hkv, int D, int n_ctx, int max_T, int max_seqs) {
    float *inv = inv_freq_table(D);
    fs_reserve r = {.max_T = max_T, .max_seqs = max_seqs, .max_K = 3072, .max_N = 151936, .n_ctx = n_ctx, .Hq = Hq,
                    .Hkv = Hkv, .D = D, .rope_inv_freq = inv, .kv_dtype = kv_dtype};
    fs_err e = {{0}};
    if (B->reserve(B, &r, &e)) {
        fprintf(stderr, "reserve: %s\n", e.msg);
        exit(1);
    }
    free(inv);
}

static void check_rope_kv(int Hq, int Hkv, int D, int T, int pos0, int norms) {
    const int n_ctx = 4200;
    reserve(Hq, Hkv, D, n_ctx, 256, 1);
    float *inv = inv_freq_table(D);
    size_t nq = (size_t)T * Hq * D, nk = (size_t)T * Hkv * D, ncache = 2 * (size_t)Hkv * n_ctx * D;
    float *q = fs_xmalloc(nq * 4), *k = fs_xmalloc(nk * 4), *v = fs_xmalloc(nk * 4);
    fill(q, nq, 2.0f), fill(k, nk, 2.0f), fill(v, nk, 1.0f);
    weight qn, kn;
    make_weight(&qn, FS_DTYPE_BF16, 1, D, 1.0f);
    make_weight(&kn, FS_DTYPE_F32, 1, D, 1.0f);
    fs_buf *qb = dev_f32(q, nq), *kb = dev_f32(k, nk), *vb = dev_f32(v, nk);
    fs_err e = {{0}};
    fs_buf *cache = B->kv_alloc(B, n_ctx, Hkv, D, &e);
    float *cache_ref = fs_xmalloc(ncache * 4);
    for (size_t i = 0; i < ncache; i++) cache_ref[i] = frand();
    kv_round(cache_ref, ncache);
    B->write(B, cache, 0, cache_ref, ncache);
    int *ids = fs_xcalloc((size_t)T, sizeof(int));
    set_seq_step(ids, T, pos0);
    B->rope_kv(B, qb, kb, vb, norms ? qn.buf : NULL, norms ? kn.buf : NULL, 1e-6f, &cache, Hq, Hkv, D, NULL);
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < Hq; h++) {
            float *x = q + ((size_t)t * Hq + h) * D;
            if (norms) ref_rmsnorm(x, qn.deq, x, 1, D, 1e-6f);
            ref_rope(x, D, pos0 + t, inv);
        }
        for (int g = 0; g < Hkv; g++) {
            float *x = k + ((size_t)t * Hkv + g) * D;
            if (norms) ref_rmsnorm(x, kn.deq, x, 1, D, 1e-6f);
            ref_rope(x, D, pos0 + t, inv);
            memcpy(cache_ref + ((size_t)g * n_ctx + pos0 + t) * D, x, (size_t)D * 4);
            memcpy(cache_ref + (((size_t)Hkv + g) * n_ctx + pos0 + t) * D, v + ((size_t)t * Hkv + g) * D, (size_t)D * 4);
            kv_round(cache_ref + ((size_t)g * n_ctx + pos0 + t) * D, (size_t)D);
            kv_round(cache_ref + (((size_t)Hkv + g) * n_ctx + pos0 + t) * D, (size_t)D);
        }
    }
    float *gq = get(qb, nq), *gk = get(kb, nk), *gc = get(cache, ncache);
    double err = fmax(rel_err(gq, q, nq), fmax(rel_err(gk, k, nk), rel_err(gc, cache_ref, ncache)));
    char shape[64];
    snprintf(shape, sizeof shape, "T=%d pos0=%d Hq=%d Hkv=%d D=%d", T, pos0, Hq, Hkv, D);
    /* f16: the GPU's k and the reference's, 1e-6 apart, can round to
     * neighbouring halves (one ulp: 2^-11 relative) */
    row(norms ? "rope_kv (qk-norm)" : "rope_kv", kv_name(), shape, err, kv_dtype == FS_DTYPE_F16 ? 1e-3 : 1e-4);
    free(gq), free(gk), free(gc), free(q), free(k), free(v), free(cache_ref), free(ids), free(inv);
    B->free_buf(B, qb), B->free_buf(B, kb), B->free_buf(B, vb), B->free_buf(B, cache);
    free_weight(&qn), free_weight(&kn);
}

static void ref_attention(const float *q, const float *cache, float *out, int T, int pos0, int Hq, int Hkv, int D,
                          int n_ctx) {
    int group = Hq / Hkv;
    double scale = 1.0 / sqrt((double)D);
    float *sc = fs_xmalloc((size_t)(pos0 + T) * sizeof(float));
    for (int t = 0; t < T; t++)
        for (int h = 0; h < Hq; h++) {
            int g = h / group, n = pos0 + t + 1;
            const float *qh = q + ((size_t)t * Hq + h) * D;
            const float *K = cache + (size_t)g * n_ctx * D, *V = cache + ((size_t)Hkv + g) * n_ctx * D;
            float m = -INFINITY;
            for (int j = 0; j < n; j++) {
                double dot = 0.0;
                for (int d = 0; d < D; d++) dot += (double)qh[d] * K[(size_t)j * D + d];
                sc[j] = (float)(dot * scale);
                if (sc[j] > m) m = sc[j];
            }
            double sum = 0.0;
            for (int j = 0; j < n; j++) sum += exp((double)sc[j] - m);
            for (int j = 0; j < n; j++) sc[j] = (float)(exp((double)sc[j] - m) / sum);
            for (int d = 0; d < D; d++) {
                double acc = 0.0;
                for (int j = 0; j < n; j++) acc += (double)sc[j] * V[(size_t)j * D + d];
                out[((size_t)t * Hq + h) * D + d] = (float)acc;
            }
        }
    free(sc);
}

static void check_attention(int Hq, int Hkv, int D, int n_ctx, int T, int pos0) {
    reserve(Hq, Hkv, D, n_ctx, 256, 1);
    size_t nq = (size_t)T * Hq * D, ncache = 2 * (size_t)Hkv * n_ctx * D;
    float *q = fs_xmalloc(nq * 4), *cache = fs_xmalloc(ncache * 4), *ref = fs_xmalloc(nq * 4);
    fill(q, nq, 0.5f);
    fill(cache, ncache, 1.0f);
    kv_round(cache, ncache);   /* the reference reads what an f16 cache holds */
    fs_err e = {{0}};
    fs_buf *qb = dev_f32(q, nq), *cb = B->kv_alloc(B, n_ctx, Hkv, D, &e), *ob = dev_f32(NULL, nq);
    B->write(B, cb, 0, cache, ncache);
    float *p = poison(nq);
    B->write(B, ob, 0, p, nq);
    int *ids = fs_xcalloc((size_t)T, sizeof(int));
    set_seq_step(ids, T, pos0);
    B->attention(B, qb, &cb, ob, Hq, Hkv, D);
    ref_attention(q, cache, ref, T, pos0, Hq, Hkv, D, n_ctx);
    float *got = get(ob, nq);
    char shape[64];
    snprintf(shape, sizeof shape, "T=%d pos0=%d n_ctx=%d %d/%d D=%d", T, pos0, n_ctx, Hq, Hkv, D);
    int tc = T > 1 && (D == 64 || D == 128);   /* tensor cores: bf16 inputs */
    row(T == 1 ? "attention (decode)" : tc ? "attention (prefill tc)" : "attention (prefill)", kv_name(), shape,
        rel_err(got, ref, nq), tc ? 1e-2 : 1e-4);
    free(q), free(cache), free(ref), free(got), free(p), free(ids);
    B->free_buf(B, qb), B->free_buf(B, cb), B->free_buf(B, ob);
}

/* A step that mixes sequences (continuous batching): token t at position
 * pos[t] of sequence seq[t], each sequence with its own cache of its own
 * n_ctx. rope_kv must store each token in its own cache and attention
 * read that cache up to pos[t] (the per-token decode kernel, in launches
 * of up to 64 tokens). prompt = 1: every token of the last sequence, at
 * consecutive positions - the prefill kernels, with that sequence's cache,
 * not sequence 0's. */
static void check_batched(int Hq, int Hkv, int D, int n_seq, int T, int prompt) {
    enum { MAXS = 8, CTX = 1200 };
    static const int start[MAXS] = {1100, 900, 63, 64, 500, 7, 200, 129};   /* each sequence's first position */
    reserve(Hq, Hkv, D, CTX, 256, MAXS);
    float *inv = inv_freq_table(D);
    int n_ctx[MAXS], next[MAXS];
    int *ids = fs_xcalloc((size_t)T, sizeof(int)), *pos = fs_xmalloc((size_t)T * sizeof(int)), *seq = fs_xmalloc((size_t)T * sizeof(int));
    for (int i = 0; i < n_seq; i++) n_ctx[i] = CTX - 60 * i, next[i] = start[i];
    for (int t = 0; t < T; t++) {
        seq[t] = prompt || T == 1 ? n_seq - 1 : (t * 7 + t / n_seq) % n_seq;   /* n_seq tokens: each sequence once */
        pos[t] = next[seq[t]]++;
    }
    size_t nq = (size_t)T * Hq * D, nk = (size_t)T * Hkv * D;
    float *q = fs_xmalloc(nq * 4), *k = fs_xmalloc(nk * 4), *v = fs_xmalloc(nk * 4), *ref = fs_xmalloc(nq * 4);
    fill(q, nq, 2.0f), fill(k, nk, 2.0f), fill(v, nk, 1.0f);
    weight qn, kn;
    make_weight(&qn, FS_DTYPE_BF16, 1, D, 1.0f);
    make_weight(&kn, FS_DTYPE_F32, 1, D, 1.0f);
    fs_buf *qb = dev_f32(q, nq), *kb = dev_f32(k, nk), *vb = dev_f32(v, nk), *ob = dev_f32(NULL, nq);
    float *p = poison(nq);
    B->write(B, ob, 0, p, nq);
    fs_buf *caches[MAXS];
    float *cache_ref[MAXS];
    fs_err e = {{0}};
    for (int i = 0; i < n_seq; i++) {   /* earlier positions: as earlier steps left them */
        size_t nc = 2 * (size_t)Hkv * n_ctx[i] * D;
        caches[i] = B->kv_alloc(B, n_ctx[i], Hkv, D, &e);
        cache_ref[i] = fs_xmalloc(nc * 4);
        fill(cache_ref[i], nc, 1.0f);
        B->write(B, caches[i], 0, cache_ref[i], nc);
    }
    B->set_step(B, &(fs_step){T, ids, pos, seq, n_seq});
    B->rope_kv(B, qb, kb, vb, qn.buf, kn.buf, 1e-6f, caches, Hq, Hkv, D, NULL);
    B->attention(B, qb, caches, ob, Hq, Hkv, D);
    for (int t = 0; t < T; t++) {   /* rope_kv: each token at its position, into its sequence's cache */
        float *c = cache_ref[seq[t]];
        size_t nc = (size_t)n_ctx[seq[t]];
        for (int h = 0; h < Hq; h++) {
            float *x = q + ((size_t)t * Hq + h) * D;
            ref_rmsnorm(x, qn.deq, x, 1, D, 1e-6f);
            ref_rope(x, D, pos[t], inv);
        }
        for (int g = 0; g < Hkv; g++) {
            float *x = k + ((size_t)t * Hkv + g) * D;
            ref_rmsnorm(x, kn.deq, x, 1, D, 1e-6f);
            ref_rope(x, D, pos[t], inv);
            memcpy(c + ((size_t)g * nc + pos[t]) * D, x, (size_t)D * 4);
            memcpy(c + (((size_t)Hkv + g) * nc + pos[t]) * D, v + ((size_t)t * Hkv + g) * D, (size_t)D * 4);
        }
    }
    for (int t = 0; t < T; t++)   /* attention: each token against its own cache, keys 0 .. pos[t] */
        ref_attention(q + (size_t)t * Hq * D, cache_ref[seq[t]], ref + (size_t)t * Hq * D, 1, pos[t], Hq, Hkv, D,
                      n_ctx[seq[t]]);
    float *gq = get(qb, nq), *gk = get(kb, nk), *go = get(ob, nq);
    double err_rope = fmax(rel_err(gq, q, nq), rel_err(gk, k, nk));
    for (int i = 0; i < n_seq; i++) {
        size_t nc = 2 * (size_t)Hkv * n_ctx[i] * D;
        float *gc = get(caches[i], nc);
        err_rope = fmax(err_rope, rel_err(gc, cache_ref[i], nc));
        free(gc), free(cache_ref[i]);
        B->free_buf(B, caches[i]);
    }
    char shape[64];
    snprintf(shape, sizeof shape, "T=%d of %d seqs %d/%d D=%d", T, prompt ? 1 : n_seq < T ? n_seq : T, Hq, Hkv, D);
    int tc = prompt && T > 1 && (D == 64 || D == 128);   /* a prompt on tensor cores: bf16 inputs */
    row("rope_kv (batched)", "f32", shape, err_rope, 1e-4);
    row(prompt ? "attention (prompt, seq>0)" : "attention (batched)", "f32", shape, rel_err(go, ref, nq), tc ? 1e-2 : 1e-4);
    free(gq), free(gk), free(go), free(q), free(k), free(v), free(ref), free(p), free(inv), free(ids), free(pos), free(seq);
    B->free_buf(B, qb), B->free_buf(B, kb), B->free_buf(B, vb), B->free_buf(B, ob);
    free_weight(&qn), free_weight(&kn);
}

/* set_step carries up to 330 tokens in a kernel's parameters and copies
 * longer steps; a one-token step goes with the next kernel: every path,
 * at the limits, alternating, seen through embed. */
static void check_step(void) {
    enum { V = 3000, H = 32 };
    reserve(16, 8, 128, 4200, 1500, 1);
    weight w;
    make_weight(&w, FS_DTYPE_F32, V, H, 1.0f);
    fs_buf *out = dev_f32(NULL, (size_t)1200 * H);
    int *ids = fs_xmalloc(1200 * sizeof(int));
    double worst = 0.0;
    static const int Ts[] = {3, 1200, 330, 331, 1, 1200, 2};
    for (int round = 0; round < 7; round++) {
        int T = Ts[round];
        for (int t = 0; t < T; t++) ids[t] = (t * 7 + round * 13) % V;
        set_seq_step(ids, T, round);
        B->embed(B, w.buf, H, out);
        float *got = get(out, (size_t)T * H), *ref = fs_xmalloc((size_t)T * H * sizeof(float));
        for (int t = 0; t < T; t++) memcpy(ref + (size_t)t * H, w.deq + (size_t)ids[t] * H, H * sizeof(float));
        double err = rel_err(got, ref, (size_t)T * H);
        if (err > worst) worst = err;
        free(got), free(ref);
    }
    row("set_step + embed", "f32", "T = 1 / 2-330 / 331-1200", worst, 0.0);
    free(ids);
    B->free_buf(B, out);
    free_weight(&w);
}

static void check_copy_argmax(void) {
    const int n = 151936;
    float *x = fs_xmalloc(n * sizeof(float));
    fill(x, n, 10.0f);
    x[1234] = 50.0f;
    x[99999] = 50.0f;   /* a tie: the lower index wins */
    fs_buf *xb = dev_f32(x, n), *yb = dev_f32(NULL, n);
    B->copy(B, xb, 1000, yb, 5, 20000);
    float *y = get(yb, n);
    int ok = 1;
    for (int i = 0; i < 20000; i++) ok &= y[5 + i] == x[1000 + i];
    row("copy", "f32", "n=20000 offsets 1000 -> 5", ok ? 0.0 : 1.0, 0.0);
    int am = B->argmax(B, xb, n);
    row("argmax (tie)", "f32", "n=151936", am == 1234 ? 0.0 : 1.0, 0.0);
    int am2 = B->argmax(B, xb, 1234);   /* a prefix: the max is elsewhere */
    int best = 0;
    for (int i = 1; i < 1234; i++)
        if (x[i] > x[best]) best = i;
    row("argmax (prefix)", "f32", "n=1234", am2 == best ? 0.0 : 1.0, 0.0);
    x[77777] = NAN;
    B->write(B, xb, 0, x, n);
    row("argmax (NaN)", "f32", "n=151936", B->argmax(B, xb, n) == -1 ? 0.0 : 1.0, 0.0);
    float minus_inf[3] = {-INFINITY, -INFINITY, -INFINITY};
    B->write(B, xb, 0, minus_inf, 3);
    row("argmax (all -inf)", "f32", "n=3", B->argmax(B, xb, 3) == 0 ? 0.0 : 1.0, 0.0);
    free(x), free(y);
    B->free_buf(B, xb), B->free_buf(B, yb);
}

/* A decode step recorded once and replayed at several positions must give
 * what the same ops give run directly. */
typedef struct mini {
    fs_buf *embed, *norm, *wqkv[3], *qn, *kn, *wo, *x, *q, *k, *v, *att, *cache;
    int H, Hq, Hkv, D;
} mini;

static void mini_step(void *ctx) {
    mini *m = ctx;
    B->embed(B, m->embed, m->H, m->x);
    fs_mm_in in = {m->x, m->norm, 1e-6f, NULL};
    fs_linear qkv[3] = {{m->wqkv[0], m->q, m->Hq * m->D, 0}, {m->wqkv[1], m->k, m->Hkv * m->D, 0}, {m->wqkv[2], m->v, m->Hkv * m->D, 0}};
    B->matmul(B, &in, 1, m->H, qkv, 3);
    B->rope_kv(B, m->q, m->k, m->v, m->qn, m->kn, 1e-6f, &m->cache, m->Hq, m->Hkv, m->D, NULL);
    B->attention(B, m->q, &m->cache, m->att, m->Hq, m->Hkv, m->D);
    fs_mm_in in2 = {m->att, NULL, 0.0f, NULL};
    fs_linear o = {m->wo, m->x, m->H, 1};
    B->matmul(B, &in2, 1, m->Hq * m->D, &o, 1);
}

static void check_record(void) {
    const int H = 256, Hq = 4, Hkv = 2, D = 64, V = 500, n_ctx = 300;
    reserve(Hq, Hkv, D, n_ctx, 256, 1);
    weight emb, norm, w[3], qn, kn, wo;
    make_weight(&emb, FS_DTYPE_BF16, V, H, 1.0f);
    make_weight(&norm, FS_DTYPE_BF16, 1, H, 1.0f);
    make_weight(&w[0], FS_DTYPE_Q8_0, Hq * D, H, 0.1f);
    make_weight(&w[1], FS_DTYPE_Q8_0, Hkv * D, H, 0.1f);
    make_weight(&w[2], FS_DTYPE_Q8_0, Hkv * D, H, 0.1f);
    make_weight(&qn, FS_DTYPE_BF16, 1, D, 1.0f);
    make_weight(&kn, FS_DTYPE_BF16, 1, D, 1.0f);
    make_weight(&wo, FS_DTYPE_BF16, H, Hq * D, 0.05f);
    mini m[2];
    fs_err e = {{0}};
    for (int i = 0; i < 2; i++) {
        m[i] = (mini){emb.buf, norm.buf, {w[0].buf, w[1].buf, w[2].buf}, qn.buf, kn.buf, wo.buf,
                      dev_f32(NULL, H), dev_f32(NULL, (size_t)Hq * D), dev_f32(NULL, (size_t)Hkv * D),
                      dev_f32(NULL, (size_t)Hkv * D), dev_f32(NULL, (size_t)Hq * D), B->kv_alloc(B, n_ctx, Hkv, D, &e),
                      H, Hq, Hkv, D};
    }
    int id = 7;
    set_seq_step(&id, 1, 0);
    fs_rec *rec = B->record(B, mini_step, &m[0], &e);
    CHECKF(rec != NULL, "record: %s", e.msg);
    if (!rec) return;
    double worst = 0.0;
    for (int pos = 0; pos < 40; pos++) {
        id = (pos * 37) % V;
        set_seq_step(&id, 1, pos);
        B->replay(B, rec);
        mini_step(&m[1]);
        float *a = get(m[0].x, H), *b = get(m[1].x, H);
        double err = rel_err(a, b, H);
        if (err > worst) worst = err;
        free(a), free(b);
    }
    row("record/replay vs direct", "mixed", "40 steps, embed..o_proj", worst, 0.0);
    B->rec_free(B, rec);
    for (int i = 0; i < 2; i++) {
        fs_buf *bufs[] = {m[i].x, m[i].q, m[i].k, m[i].v, m[i].att, m[i].cache};
        for (int j = 0; j < 6; j++) B->free_buf(B, bufs[j]);
    }
    free_weight(&emb), free_weight(&norm), free_weight(&qn), free_weight(&kn), free_weight(&wo);
    for (int i = 0; i < 3; i++) free_weight(&w[i]);
}

int main(int argc, char **argv) {
    fs_err e = {{0}};
    fs_backend_opts o = {"cuda", 0, 0};
    if (argc == 1) setenv("FS_CUDA_PREFETCH", "1", 0);   /* the checks run with the prefetch hints acted on */
    B = fs_backend_cuda_new(&o, &e);
    if (!B) {
        printf("test_cuda: skipped: %s\n", e.msg);
        return argc > 1 ? 0 : 77;   /* 77: counted as skipped by tests/run.sh */
    }
    fs_rng_seed(&rng, 20261201);
    printf("%s\n", B->describe(B));
    if (argc > 1 && !strcmp(argv[1], "--bench")) return bench_cuda(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "--matmul")) {   /* the matmul rows alone (memcheck runs them sooner) */
        printf("%-22s %-5s %-34s %10s %8s  %s\n", "op", "dtype", "shape", "error", "tol", "result");
        reserve(16, 8, 128, 4200, 256, 1);
        check_matmul();
        check_skinny_matmul();
        B->destroy(B);
        return TEST_SUMMARY();
    }
    if (argc > 1) return 0;   /* --help: the binary runs (scripts/cuda_check.sh) */

    printf("%-22s %-5s %-34s %10s %8s  %s\n", "op", "dtype", "shape", "error", "tol", "result");
    reserve(16, 8, 128, 4200, 256, 1);
    check_embed();
    check_rmsnorm();
    check_matmul();
    check_skinny_matmul();
    check_rope_kv(16, 8, 128, 1, 0, 1);
    check_rope_kv(16, 8, 128, 1, 4095, 1);
    check_rope_kv(16, 8, 128, 7, 100, 1);
    check_rope_kv(4, 1, 64, 3, 10, 0);
    check_attention(16, 8, 128, 4096, 1, 0);
    check_attention(16, 8, 128, 4096, 1, 1);
    check_attention(16, 8, 128, 4096, 1, 15);     /* ranges cut from the token's keys: 16 .. */
    check_attention(16, 8, 128, 4096, 1, 16);
    check_attention(16, 8, 128, 4096, 1, 63);
    check_attention(16, 8, 128, 4096, 1, 200);
    check_attention(16, 8, 128, 4096, 1, 1030);   /* .. to 64 keys a range, not multiples */
    check_attention(16, 8, 128, 4096, 1, 4095);
    check_attention(16, 8, 128, 50, 1, 49);
    check_attention(12, 4, 64, 1000, 1, 777);
    check_attention(16, 8, 128, 4096, 37, 0);
    check_attention(16, 8, 128, 4096, 100, 150);
    check_attention(12, 4, 64, 1000, 40, 3);
    check_attention(8, 8, 32, 300, 64, 0);
    check_attention(16, 1, 64, 200, 9, 5);
    /* the combine's shapes: 16 heads a kv head (one thread a column of
     * every range), D 256 with 8 (more columns than threads), 3 with an
     * odd cache (odd ranges: the scores' rows are padded) */
    check_attention(16, 1, 64, 2000, 1, 1999);
    check_attention(16, 2, 256, 3001, 1, 3000);
    check_attention(12, 4, 64, 1001, 1, 1000);
    /* --kv f16: the same kernels on an f16 cache (stores rounded, loads
     * widened); the reference reads the rounded values, so the bounds stay */
    kv_dtype = FS_DTYPE_F16;
    check_rope_kv(16, 8, 128, 1, 4095, 1);
    check_rope_kv(16, 8, 128, 7, 100, 1);
    check_attention(16, 8, 128, 4096, 1, 4095);
    check_attention(12, 4, 64, 1000, 1, 777);
    check_attention(16, 8, 128, 4096, 100, 150);
    check_attention(8, 8, 32, 300, 64, 0);
    check_attention(16, 2, 256, 3001, 1, 3000);
    kv_dtype = FS_DTYPE_F32;
    check_batched(16, 8, 128, 4, 4, 0);     /* a batched decode step: one token of each of 4 sequences */
    check_batched(16, 8, 128, 2, 1, 0);     /* one token of sequence 1 of 2, at 900 (T = 1: programmatic launches) */
    check_batched(16, 8, 128, 8, 100, 0);   /* prompts and decode steps of 8 sequences: two launches */
    check_batched(12, 4, 64, 3, 7, 0);
    check_batched(8, 8, 32, 5, 70, 0);      /* D 32 */
    check_batched(16, 8, 128, 3, 100, 1);   /* a prompt of sequence 2 (tensor cores) */
    check_batched(8, 8, 32, 3, 40, 1);      /* a prompt of sequence 2 (f32 prefill kernel) */
    check_copy_argmax();
    check_step();
    check_record();
    fs_buf *big = dev_f32(NULL, 64u << 20);
    printf("bandwidth (device copy, read + write): %.0f GB/s\n", B->bandwidth(B, big, 64u << 20) / 1e9);
    B->free_buf(B, big);
    B->destroy(B);
    /* a batched step's matmuls on the GEMM, as before gemm_skinny.cu (the
     * FS_CUDA_SKINNY=0 of A/B runs) */
    setenv("FS_CUDA_SKINNY", "0", 1);
    B = fs_backend_cuda_new(&o, &e);
    CHECKF(B != NULL, "FS_CUDA_SKINNY=0: %s", e.msg);
    if (B) {
        printf("-- FS_CUDA_SKINNY=0\n");
        reserve(16, 8, 128, 4200, 256, 1);
        long before = fs_cuda_skinny_launches;
        for (int d = 0; d < 5; d++) {
            int N = 1027, add1 = 1, n1024 = 1024, add0 = 0;
            fs_dtype dt = all_dtypes[d];
            row("matmul swiglu += (gemm)", dt_name(dt), "T=17 K=3072 N=1027", run_matmul(dt, dt, 17, 3072, &N, &add1, 1, 2), 1e-2);
            row("matmul plain (gemm)", dt_name(dt), "T=64 K=2048 N=1024", run_matmul(dt, dt, 64, 2048, &n1024, &add0, 1, 0), 1e-2);
        }
        CHECKF(fs_cuda_skinny_launches == before, "FS_CUDA_SKINNY=0 still took gemm_skinny.cu");
        B->destroy(B);
    }
    unsetenv("FS_CUDA_SKINNY");
    /* the decode matmuls down the other paths (gemv_stage.cu) */
    static const char *stage[] = {"64", "16"};
    for (int i = 0; i < 2; i++) {
        setenv("FS_CUDA_GEMV_STAGE", stage[i], 1);
        B = fs_backend_cuda_new(&o, &e);
        if (!B) {
            CHECKF(0, "FS_CUDA_GEMV_STAGE=%s: %s", stage[i], e.msg);
            break;
        }
        printf("-- FS_CUDA_GEMV_STAGE=%s\n", stage[i]);
        reserve(16, 8, 128, 4200, 256, 1);
        long before = fs_cuda_staged_launches;
        check_decode_matmul();
        /* the rows above passing on gemv.cu would prove nothing: some ran staged */
        long staged = fs_cuda_staged_launches - before;
        CHECKF(staged > 0, "FS_CUDA_GEMV_STAGE=%s: no matmul took the staged GEMV", stage[i]);
        printf("FS_CUDA_GEMV_STAGE=%s: %ld staged launches\n", stage[i], staged);
        B->destroy(B);
    }
    return TEST_SUMMARY();
}
