/* test_cpu_kernels.c - the CPU backend ("cpu") from the inside: every
 * kernel set on every thread count, the layouts it keeps to itself, the
 * thread pool.
 *
 * tests/test_backend.c checks every op of every backend through backend.h.
 * This test knows the CPU backend's internals (src/cpu/cpu_backend.h):
 * each kernel set this machine has runs (the portable scalar fallback
 * always; AVX2 or NEON when present; AVX2 with and without AVX-VNNI,
 * AVX-512...; NEON without sdot, with sdot, with smmla) with
 * 1, 2 and 3 threads, switched in place on backends reserved once, and is
 * compared with the reference ("cpu-ref") on shapes chosen to hit every
 * tail: K = 1..69 odd (not multiples of the 8- or 16-wide vector step),
 * 1023, 1024, 3072; N not a multiple of the 4-row GEMV block nor of the
 * 16-row GEMM panel; T = 1, 2, 3 (GEMV), 5, 17, 64, 130 (GEMM, partial
 * 6-token tiles); bf16, f16, f32, Q8_0 and Q4_0 weights. Also: weights
 * repacked for AVX2 (x8) read by the scalar kernels; the fused matmul bit
 * for bit the separate steps; the huge-page arenas; the padded KV cache;
 * the Q8_0 activation kernels against quant.c's definitions; FS_ISA=scalar
 * reaching the quantized decode; no allocation after reserve.
 *
 * Tolerance of a dot product y = sum_k x_k w_k computed in f32 against the
 * double reference: with S = sum_k |x_k w_k| and u = 2^-24 (f32 unit
 * roundoff), any summation order has error <= K u S (worst case), and
 * random-like rounding gives ~sqrt(K) u S. The CPU kernels sum in 8- or
 * 16-lane partial sums and 256-wide K blocks, much better than the worst
 * case, so the test requires
 *       |y_cpu - y_ref| <= 4 sqrt(K) u S + 1e-30
 * per element (the measured worst ratio is printed, well below 1).
 *
 * Docs: docs/forward.md, docs/testing.md
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "cpu/cpu_backend.h"
#include "quant.h"
#include "test.h"

static uint64_t rng = 0x243f6a8885a308d3ull;
static double urand(void) { /* uniform [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* ---- allocation counting: no op may allocate after reserve ----
 * glibc lets a program define malloc and friends (the library's own stay
 * reachable as __libc_*); sanitizers replace them themselves, so the
 * counter is only built without them. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FS_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FS_SANITIZED 1
#endif
#if defined(__GLIBC__) && !defined(FS_SANITIZED)
#define COUNT_MALLOC 1
extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t), *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static volatile int mallocs;   /* allocations since the counter was reset */
void *malloc(size_t n) { mallocs++; return __libc_malloc(n); }
void *calloc(size_t n, size_t s) { mallocs++; return __libc_calloc(n, s); }
void *realloc(void *p, size_t n) { mallocs++; return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { mallocs++; return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    mallocs++;
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;
}
#endif

/* ---- the backends ---- */

static fs_backend *ref;                 /* "cpu-ref" */
static fs_backend *cpu[4];              /* "cpu" with 1, 2, 3 threads ([1..3]) */
/* The kernel sets to run: scalar always, then every set this machine has,
 * each capped below the next (AVX2; AVX2 + AVX-VNNI; + AVX-512, its
 * decode kernels; + AVX512_BF16, with the bf16 decode kernel vdpbf16ps;
 * + AMX), each
 * with its own decode kernel and a different prefetch hint (the plan,
 * tune_cpu.c; the hint changes no result, but each must run). The last
 * entry is the backend's own choice, restored after each run. */
typedef struct {
    fs_cpu_kernels k;
    int decode, prefetch;   /* the plan every dtype gets; decode -1: the default kernel */
} kernels;
static kernels isas[7];
static int n_isas;

static void use_kernels(fs_backend *b, int s) {
    fs_cpu *f = cpu_ctx(b);
    fs_cpu_set_kernels(f, isas[s].k);
    fs_cpu_plan_defaults(f);
    for (int dt = 0; dt < FS_CPU_NDTYPE; dt++) {
        if (isas[s].decode >= 0) f->plan[dt].kernel = isas[s].decode;
        f->plan[dt].prefetch = isas[s].prefetch;
    }
}
static const char *kernels_name(int s) {
    static char buf[7][96];
    static const char *const dk[] = {"avx2", "avx-vnni", "avx512", "avx512-bf16", "neon", "dotprod"};
    char k[64];
    fs_cpu_kernels_name(isas[s].k, k, sizeof k);
    if (isas[s].k.isa != FS_ISA_SCALAR && isas[s].decode >= 0) snprintf(buf[s], sizeof buf[s], "%s/%s", k, dk[isas[s].decode]);
    else snprintf(buf[s], sizeof buf[s], "%s", k);
    return buf[s];
}

/* Every backend here is reserved for the shapes below, with head dim D
 * (the RoPE table's; attention may use any D up to it). */
#define MAX_T 130
#define MAX_K 3072
#define MAX_N 4096
#define N_CTX 700
static fs_backend *open_reserved(const char *name, int n_threads, int D) {
    fs_err e;
    fs_backend *b = fs_backend_open(&(fs_backend_opts){name, n_threads, 0}, &e);
    float inv[512];
    for (int i = 0; i < D / 2; i++) inv[i] = 1.0f / (float)pow(1e6f, (double)((float)(2 * i) / (float)D));
    fs_reserve r = {.max_T = MAX_T, .max_seqs = 4, .max_K = MAX_K, .max_N = MAX_N, .n_ctx = N_CTX, .Hq = 16,
                    .Hkv = 8, .D = D, .rope_inv_freq = inv};
    if (!b || b->reserve(b, &r, &e)) { fprintf(stderr, "%s: %s\n", name, e.msg); exit(1); }
    return b;
}

/* The step of T tokens of one sequence at positions pos0 .. pos0 + T - 1. */
static void set_seq_step(fs_backend *b, const int *ids, int T, int pos0) {
    int pos[MAX_T], seq[MAX_T] = {0};
    for (int t = 0; t < T; t++) pos[t] = pos0 + t;
    b->set_step(b, &(fs_step){T, ids, pos, seq, 1});
}

static fs_buf *act(fs_backend *b, const float *host, size_t n) {
    fs_err e;
    fs_buf *buf = b->alloc(b, n, &e);
    if (!buf) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    b->write(b, buf, 0, host, n);
    return buf;
}

/* y = x W^T, plain: the matmul op with one linear layer. */
static void mm(fs_backend *b, const fs_buf *x, const fs_buf *W, fs_buf *y, int T, int K, int N) {
    fs_mm_in in = {x, NULL, 0, NULL};
    fs_linear o = {W, y, N, 0};
    b->matmul(b, &in, T, K, &o, 1);
}

/* Random [N, K] weights of dtype dt (n = N * K elements), values uniform in
 * [-1, 1) before rounding or quantizing; deq (if not NULL) gets each
 * stored element's exact f32 (tensor.c's getter). */
static void *rand_weight(fs_dtype dt, size_t n, float *deq, fs_tensor *t, int N, int K) {
    size_t rb = fs_dtype_row_bytes(dt, K);
    uint8_t *data = malloc(rb * (size_t)N + 1);
    float *row = malloc(sizeof(float) * (size_t)K);
    for (int r = 0; r < N; r++) {
        uint8_t *dst = data + rb * (size_t)r;
        for (int k = 0; k < K; k++) row[k] = (float)urand();
        for (int k = 0; k < K; k++) {
            if (dt == FS_DTYPE_F32) memcpy(dst + 4 * (size_t)k, &row[k], 4);
            else if (dt == FS_DTYPE_BF16 || dt == FS_DTYPE_F16) {
                uint16_t h = dt == FS_DTYPE_BF16 ? fs_f32_to_bf16(row[k]) : fs_f32_to_f16(row[k]);
                memcpy(dst + 2 * (size_t)k, &h, 2);
            }
        }
        if (dt == FS_DTYPE_Q8_0) fs_quantize_row_q8_0(row, (fs_block_q8_0 *)dst, K);
        if (dt == FS_DTYPE_Q4_0) fs_quantize_row_q4_0(row, (fs_block_q4_0 *)dst, K);
    }
    free(row);
    memset(t, 0, sizeof *t);
    t->name = "test.weight";
    t->dtype = dt;
    t->ndim = 2;
    t->shape[0] = N;
    t->shape[1] = K;
    t->data = data;
    t->nbytes = rb * (size_t)N;
    for (size_t i = 0; deq && i < n; i++) deq[i] = fs_tensor_get_f32(t, i);
    return data;
}

/* ---- matmul ---- */

static double worst_matmul_ratio = 0;

static void check_matmul(int T, int K, int N, fs_dtype dt) {
    fs_err e;
    size_t nx = (size_t)T * K, nw = (size_t)N * K, ny = (size_t)T * N;
    float *x = malloc(sizeof(float) * nx), *deq = malloc(sizeof(float) * nw);
    float *yr = malloc(sizeof(float) * ny), *yf = malloc(sizeof(float) * ny);
    for (size_t i = 0; i < nx; i++) x[i] = (float)urand();
    fs_tensor t;
    void *wdata = rand_weight(dt, nw, deq, &t, N, K);

    fs_buf *xb = act(ref, x, nx), *yb = ref->alloc(ref, ny, &e), *wb = ref->upload(ref, &t, &e);
    mm(ref, xb, wb, yb, T, K, N);
    ref->read(ref, yb, 0, yr, ny);
    ref->free_buf(ref, xb); ref->free_buf(ref, yb); ref->free_buf(ref, wb);

    for (int th = 1; th <= 3; th++) {
        fs_backend *b = cpu[th];
        for (int s = 0; s < n_isas; s++) {
            use_kernels(b, s);
            xb = act(b, x, nx);
            yb = b->alloc(b, ny, &e);
            wb = b->upload(b, &t, &e);
            for (size_t i = 0; i < ny; i++) yf[i] = NAN;
            b->write(b, yb, 0, yf, ny);   /* every output must be written */
            mm(b, xb, wb, yb, T, K, N);
            b->read(b, yb, 0, yf, ny);
            int bad = 0;
            double worst = 0;
            for (int ti = 0; ti < T; ti++)
                for (int n = 0; n < N; n++) {
                    double S = 0;
                    for (int k = 0; k < K; k++) S += fabs((double)x[(size_t)ti * K + k] * deq[(size_t)n * K + k]);
                    double tol = 4.0 * sqrt((double)K) * ldexp(1.0, -24) * S + 1e-30;
                    double d = fabs((double)yf[(size_t)ti * N + n] - yr[(size_t)ti * N + n]);
                    if (!(d <= tol)) bad++;
                    if (d / tol > worst) worst = d / tol;
                }
            if (worst > worst_matmul_ratio) worst_matmul_ratio = worst;
            CHECKF(bad == 0, "matmul %s T %d K %d N %d %s threads %d: %d outside tolerance (worst %.2f x tol)",
                   fs_dtype_name(dt), T, K, N, kernels_name(s), th, bad, worst);
            b->free_buf(b, xb); b->free_buf(b, yb); b->free_buf(b, wb);
        }
        use_kernels(b, n_isas - 1);
    }
    free(x); free(deq); free(yr); free(yf); free(wdata);
}

static void test_matmul(void) {
    static const fs_dtype dts[] = {FS_DTYPE_BF16, FS_DTYPE_F16, FS_DTYPE_F32};
    static const int Ts[] = {1, 2, 3, 5, 17};
    for (int d = 0; d < 3; d++) {
        for (int K = 1; K <= 69; K += 2)   /* every vector tail */
            check_matmul(Ts[K % 5], K, 37, dts[d]);
        check_matmul(1, 1023, 37, dts[d]);
        check_matmul(2, 1024, 21, dts[d]);
        check_matmul(3, 3072, 9, dts[d]);
        check_matmul(5, 1023, 19, dts[d]);
        check_matmul(17, 1024, 33, dts[d]);
        check_matmul(64, 300, 50, dts[d]);    /* K not a multiple of the 256-wide K block */
        check_matmul(130, 70, 35, dts[d]);
        check_matmul(6, 3072, 16, dts[d]);
        check_matmul(1, 1024, 520, dts[d]);   /* >= 1 MiB: copied into a huge-page arena (Linux) */
        /* a batched decode step (2-12 tokens; with AVX-512 the rows read as
         * stored, fs_gemvT_avx512): 8 and 12 tokens with odd rows and a K
         * tail; 13 takes the GEMM again */
        check_matmul(8, 1000, 67, dts[d]);
        check_matmul(12, 3072, 40, dts[d]);
        check_matmul(13, 100, 33, dts[d]);
        /* AMX (bf16, T >= 4): 32-token blocks, one of 16 or fewer, 32-row
         * chunks with a partial last tile, odd K (the pairs padded); the
         * smallest step that takes the tiles (a batched decode of 4) */
        check_matmul(4, 96, 40, dts[d]);
        check_matmul(16, 64, 32, dts[d]);
        check_matmul(33, 1024, 70, dts[d]);
        check_matmul(48, 33, 17, dts[d]);
    }
    printf("matmul: worst error / tolerance = %.3f\n", worst_matmul_ratio);
}

/* Quantized weights (Q8_0, Q4_0). The reference dequantizes W exactly and
 * keeps x in f32; the CPU backend also quantizes x to Q8_0 (blocks of 32,
 * scale d_b = max|x_b| / 127 stored as f16), so x_k moves by at most
 * d_b / 2 from rounding q, plus 127 d_b 2^-11 from rounding d to f16:
 * < 0.57 d_b. Bound per output: sum_b 0.57 d_b sum_{k in b} |w_k|, plus
 * the f32 bound above. */
static void check_matmul_quant(int T, int K, int N, fs_dtype dt) {
    fs_err e;
    size_t nx = (size_t)T * K, nw = (size_t)N * K, ny = (size_t)T * N;
    float *x = malloc(sizeof(float) * nx), *deq = malloc(sizeof(float) * nw);
    float *yr = malloc(sizeof(float) * ny), *yf = malloc(sizeof(float) * ny), *y256 = malloc(sizeof(float) * ny);
    int have256 = 0;
    for (size_t i = 0; i < nx; i++) x[i] = (float)urand();
    fs_tensor t;
    void *wq = rand_weight(dt, nw, deq, &t, N, K);

    fs_buf *xb = act(ref, x, nx), *yb = ref->alloc(ref, ny, &e), *wb = ref->upload(ref, &t, &e);
    mm(ref, xb, wb, yb, T, K, N);
    ref->read(ref, yb, 0, yr, ny);
    ref->free_buf(ref, xb); ref->free_buf(ref, yb); ref->free_buf(ref, wb);
    /* Uploaded under the best ISA (which may repack W into the x8 layout,
     * src/cpu/repack.c), then run with each ISA: the scalar kernels must
     * read a repacked W too. */
    for (int th = 1; th <= 3; th++)
      for (int s = 0; s < n_isas; s++) {
        fs_backend *b = cpu[th];
        xb = act(b, x, nx), yb = b->alloc(b, ny, &e), wb = b->upload(b, &t, &e);
        use_kernels(b, s);
        mm(b, xb, wb, yb, T, K, N);
        use_kernels(b, n_isas - 1);
        b->read(b, yb, 0, yf, ny);
        b->free_buf(b, xb); b->free_buf(b, yb); b->free_buf(b, wb);
        int bad = 0;
        double worst = 0;
        for (int ti = 0; ti < T; ti++)
            for (int n = 0; n < N; n++) {
                const float *xr = x + (size_t)ti * K, *wr = deq + (size_t)n * K;
                double tol = 0, S = 0;
                for (int k0 = 0; k0 < K; k0 += FS_QK) {
                    double amax = 0, wsum = 0;
                    for (int k = k0; k < k0 + FS_QK; k++) {
                        if (fabs(xr[k]) > amax) amax = fabs(xr[k]);
                        wsum += fabs(wr[k]);
                        S += fabs((double)xr[k] * wr[k]);
                    }
                    tol += 0.57 * amax / 127.0 * wsum;
                }
                tol += 4.0 * sqrt((double)K) * ldexp(1.0, -24) * S + 1e-30;
                double d = fabs((double)yf[(size_t)ti * N + n] - yr[(size_t)ti * N + n]);
                if (!(d <= tol)) bad++;
                if (d / tol > worst) worst = d / tol;
            }
        CHECKF(bad == 0, "matmul %s T %d K %d N %d %s threads %d: %d outside tolerance (worst %.2f x tol)",
               fs_dtype_name(dt), T, K, N, kernels_name(s), th, bad, worst);
        /* Without AMX every x86 GEMM (T >= FS_GEMM_MIN_T) - the 256-bit
         * one and AVX-512's 16-row vpdpbusd panels - sums each block
         * exactly in int32 and adds the blocks in the same order: the
         * same bits, a stricter check than the tolerance above (which a
         * wrong sum-of-x correction can pass). */
        if (T >= FS_GEMM_MIN_T && isas[s].k.isa == FS_ISA_AVX2 && !isas[s].k.amx) {
            if (!have256) memcpy(y256, yf, sizeof(float) * ny), have256 = 1;
            else CHECKF(!memcmp(y256, yf, sizeof(float) * ny), "matmul %s T %d K %d N %d %s threads %d: not the avx2 GEMM's bits",
                        fs_dtype_name(dt), T, K, N, kernels_name(s), th);
        }
      }
    free(x); free(deq); free(yr); free(yf); free(y256); free(wq);
}

static void test_matmul_quant(void) {
    static const fs_dtype dts[] = {FS_DTYPE_Q8_0, FS_DTYPE_Q4_0};
    for (int d = 0; d < 2; d++) {
        check_matmul_quant(1, 32, 5, dts[d]);
        check_matmul_quant(2, 1024, 37, dts[d]);
        check_matmul_quant(17, 96, 33, dts[d]);
        check_matmul_quant(3, 3072, 9, dts[d]);
        check_matmul_quant(130, 64, 7, dts[d]);
        /* the packed 8-row GEMM (T >= 4, N >= 8): whole panels, a partial
         * token tile, the N % 8 tail rows, and the largest K of Qwen3 */
        check_matmul_quant(4, 32, 8, dts[d]);
        check_matmul_quant(7, 256, 21, dts[d]);
        check_matmul_quant(37, 1024, 64, dts[d]);
        check_matmul_quant(9, 3072, 40, dts[d]);
        /* the 512-bit direct tiles' last step (48 tokens, 4 tiles of 12)
         * and the first that packs (49) */
        check_matmul_quant(48, 3072, 32, dts[d]);
        check_matmul_quant(49, 96, 48, dts[d]);
        /* AMX (x8 weights; T >= 4 for Q8_0, 5 for Q4_0 - below, the
         * packed GEMM): 16-token blocks and a partial one, 16-row tiles
         * and a last group of 8 alone (N / 8 odd), one block of K and
         * many; the smallest steps on either side of Q4_0's threshold */
        check_matmul_quant(5, 64, 24, dts[d]);
        check_matmul_quant(8, 1024, 48, dts[d]);
        check_matmul_quant(16, 32, 16, dts[d]);
        check_matmul_quant(17, 96, 40, dts[d]);
        check_matmul_quant(33, 1024, 24, dts[d]);
        check_matmul_quant(130, 3072, 48, dts[d]);
        /* decode (T < 4) with N % 8 == 0: the x8 kernels, groups in pairs
         * and a last group alone (N / 8 odd), one chunk or several */
        check_matmul_quant(1, 1024, 64, dts[d]);
        check_matmul_quant(2, 96, 16, dts[d]);
        check_matmul_quant(3, 3072, 24, dts[d]);
        check_matmul_quant(1, 32, 8, dts[d]);
        check_matmul_quant(1, 1024, 200, dts[d]);
        check_matmul_quant(1, 3072, 1032, dts[d]);
    }
}

/* The x8 layout keeps every value: each row read back from the repacked
 * matrix (fs_x8_dequant_row, what embed does) equals the row dequantized
 * from the file's layout - for N / 8 even and odd (a last group alone). */
static void test_x8_rows(void) {
    static const int Ns[] = {8, 16, 24, 40, 64};
    for (int d = 0; d < 2; d++)
        for (size_t c = 0; c < sizeof Ns / sizeof Ns[0]; c++) {
            fs_dtype dt = d ? FS_DTYPE_Q4_0 : FS_DTYPE_Q8_0;
            int N = Ns[c], K = 96, bad = 0;
            float *deq = malloc(sizeof(float) * (size_t)N * K), row[96];
            fs_tensor t;
            void *data = rand_weight(dt, (size_t)N * K, deq, &t, N, K);
            uint8_t *x8 = malloc(t.nbytes);
            fs_x8_repack(&t, x8, 0, N / 8);
            for (int n = 0; n < N; n++) {
                fs_x8_dequant_row(x8, dt, N, K, n, row);
                bad += memcmp(row, deq + (size_t)n * K, sizeof row) != 0;
            }
            CHECKF(bad == 0, "x8 %s N %d: %d rows differ after repacking", fs_dtype_name(dt), N, bad);
            free(deq); free(data); free(x8);
        }
}

/* The fused matmul is the separate steps, bit for bit: n layers of one x
 * in one call give what n calls give (the same kernels on the same chunks,
 * x quantized once); a norm input what the rmsnorm op followed by the
 * matmul gives; a SwiGLU input what the backend's SwiGLU kernel followed
 * by the matmul gives; an added output y0 + (what the matmul writes), in
 * f32. Mixed weight dtypes, N not a multiple of 8 (the row-by-row path
 * next to the x8 one), decode and prefill T. */
static void check_fused(int T, int K, const fs_dtype *dts, const int *Ns, int n) {
    fs_err e;
    fs_tensor t[FS_MATMUL_MAX], nt;
    void *data[FS_MATMUL_MAX];
    size_t nx = (size_t)T * K;
    float *x = malloc(sizeof(float) * nx), *u = malloc(sizeof(float) * nx), *g = malloc(sizeof(float) * nx);
    for (size_t i = 0; i < nx; i++) x[i] = (float)urand(), u[i] = (float)urand();
    for (int i = 0; i < n; i++) data[i] = rand_weight(dts[i], (size_t)Ns[i] * K, NULL, &t[i], Ns[i], K);
    void *ndata = rand_weight(FS_DTYPE_BF16, (size_t)K, NULL, &nt, 1, K);
    nt.ndim = 1, nt.shape[0] = K, nt.shape[1] = 0;
    for (int th = 1; th <= 3; th++)
        for (int s = 0; s < n_isas; s++) {
            fs_backend *b = cpu[th];
            fs_buf *xb = act(b, x, nx), *ub = act(b, u, nx), *nb = b->upload(b, &nt, &e), *xn = b->alloc(b, nx, &e);
            fs_buf *W[FS_MATMUL_MAX], *y1[FS_MATMUL_MAX], *yn[FS_MATMUL_MAX];
            fs_linear out[FS_MATMUL_MAX];
            for (int i = 0; i < n; i++) {
                W[i] = b->upload(b, &t[i], &e);
                y1[i] = b->alloc(b, (size_t)T * Ns[i], &e);
                yn[i] = b->alloc(b, (size_t)T * Ns[i], &e);
                out[i] = (fs_linear){W[i], yn[i], Ns[i], 0};
            }
            use_kernels(b, s);
            int diff = 0;
            for (int form = 0; form < 4; form++) {   /* plain, norm, SwiGLU, add */
                fs_buf *x1 = xb;
                if (form == 1) b->rmsnorm(b, xb, nb, x1 = xn, T, K, 1e-6f);
                if (form == 2) {
                    fs_cpu_swiglu(cpu_ctx(b), x, u, g, nx);
                    b->write(b, x1 = xn, 0, g, nx);
                }
                for (int i = 0; i < n; i++) mm(b, x1, W[i], y1[i], T, K, Ns[i]);
                fs_mm_in in = {xb, form == 1 ? nb : NULL, 1e-6f, form == 2 ? ub : NULL};
                for (int i = 0; i < n; i++) out[i].add = form == 3 && i % 2 == 0;
                float *y0[FS_MATMUL_MAX];
                for (int i = 0; i < n; i++) {
                    size_t ny = (size_t)T * Ns[i];
                    y0[i] = malloc(sizeof(float) * ny);
                    for (size_t j = 0; j < ny; j++) y0[i][j] = (float)(urand() * 4);
                    b->write(b, yn[i], 0, y0[i], ny);
                }
                b->matmul(b, &in, T, K, out, n);
                for (int i = 0; i < n; i++) {
                    size_t ny = (size_t)T * Ns[i];
                    float *a = malloc(sizeof(float) * ny), *c = malloc(sizeof(float) * ny);
                    b->read(b, y1[i], 0, a, ny);
                    b->read(b, yn[i], 0, c, ny);
                    if (out[i].add)
                        for (size_t j = 0; j < ny; j++) a[j] = y0[i][j] + a[j];
                    if (memcmp(a, c, sizeof(float) * ny)) diff++;
                    free(a); free(c); free(y0[i]);
                }
            }
            use_kernels(b, n_isas - 1);
            for (int i = 0; i < n; i++) {
                b->free_buf(b, W[i]); b->free_buf(b, y1[i]); b->free_buf(b, yn[i]);
            }
            b->free_buf(b, xb); b->free_buf(b, ub); b->free_buf(b, nb); b->free_buf(b, xn);
            CHECKF(diff == 0, "fused matmul T %d K %d n %d %s threads %d: %d outputs differ from the separate steps", T,
                   K, n, kernels_name(s), th, diff);
        }
    for (int i = 0; i < n; i++) free(data[i]);
    free(ndata);
    free(x); free(u); free(g);
}

static void test_fused(void) {
    static const fs_dtype mixed[3] = {FS_DTYPE_BF16, FS_DTYPE_Q8_0, FS_DTYPE_Q4_0};
    static const fs_dtype q4[3] = {FS_DTYPE_Q4_0, FS_DTYPE_Q4_0, FS_DTYPE_Q4_0};
    static const fs_dtype f[2] = {FS_DTYPE_F16, FS_DTYPE_F32};
    static const int Nm[3] = {24, 40, 19}, Nq[3] = {64, 8, 24}, Nf[2] = {17, 33};
    static const int Ts[] = {1, 2, 5, 37};
    for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++) {
        check_fused(Ts[i], 64, mixed, Nm, 3);
        check_fused(Ts[i], 1024, q4, Nq, 3);
        check_fused(Ts[i], 96, f, Nf, 2);
    }
}

/* An added output wider than the add scratch (max_T * max_K floats) is
 * computed in slabs of tokens: the result must still be y0 + x W^T
 * (within the f32 bound; the slabs may take other kernels than one call). */
static void test_add_slabs(void) {
    fs_err e;
    float inv[1] = {1.0f};
    fs_reserve r = {.max_T = 64, .max_seqs = 1, .max_K = 32, .max_N = 2000, .n_ctx = 1, .Hq = 1, .Hkv = 1, .D = 2,
                    .rope_inv_freq = inv};   /* add scratch: 2048 floats, 1 token of N = 2000 */
    fs_backend *b = fs_backend_open(&(fs_backend_opts){"cpu", 2, 0}, &e);
    fs_backend *rb = fs_backend_open(&(fs_backend_opts){"cpu-ref", 0, 0}, &e);
    CHECK(b && rb && !b->reserve(b, &r, &e) && !rb->reserve(rb, &r, &e));
    if (!b || !rb) return;
    int T = 64, K = 32, N = 2000, bad = 0;
    float *x = malloc(sizeof(float) * T * K), *y0 = malloc(sizeof(float) * T * N);
    float *ya = malloc(sizeof(float) * T * N), *yb = malloc(sizeof(float) * T * N), *deq = malloc(sizeof(float) * N * K);
    for (int i = 0; i < T * K; i++) x[i] = (float)urand();
    for (int i = 0; i < T * N; i++) y0[i] = (float)urand();
    fs_tensor t;
    void *w = rand_weight(FS_DTYPE_BF16, (size_t)N * K, deq, &t, N, K);
    fs_backend *bs[2] = {rb, b};
    for (int i = 0; i < 2; i++) {
        fs_buf *xb = act(bs[i], x, (size_t)T * K), *yb_ = act(bs[i], y0, (size_t)T * N), *wb = bs[i]->upload(bs[i], &t, &e);
        fs_mm_in in = {xb, NULL, 0, NULL};
        bs[i]->matmul(bs[i], &in, T, K, &(fs_linear){wb, yb_, N, 1}, 1);
        bs[i]->read(bs[i], yb_, 0, i ? yb : ya, (size_t)T * N);
        bs[i]->free_buf(bs[i], xb); bs[i]->free_buf(bs[i], yb_); bs[i]->free_buf(bs[i], wb);
    }
    for (int tn = 0; tn < T * N; tn++) {
        double S = 0;
        for (int k = 0; k < K; k++) S += fabs((double)x[(tn / N) * K + k] * deq[(size_t)(tn % N) * K + k]);
        bad += !(fabs((double)yb[tn] - ya[tn]) <= 4 * sqrt((double)K) * ldexp(S, -24) + ldexp(fabs(ya[tn]), -24));
    }
    CHECKF(bad == 0, "add in slabs: %d values beyond the bound", bad);
    b->destroy(b);
    rb->destroy(rb);
    free(x); free(y0); free(ya); free(yb); free(deq); free(w);
}

/* Repacked weights share arenas (backend_cpu.c): buffers that are alive
 * at the same time must not overlap, and freeing some must not disturb the
 * others. Each weight's matmul result is recorded right after its upload
 * and must stay bit-identical while other weights come and go. */
static void test_weight_arena(void) {
    fs_err e;
    enum { NW = 24, K = 256 };
    fs_backend *b = cpu[2];
    if (cpu_ctx(b)->isa != FS_ISA_AVX2 && cpu_ctx(b)->isa != FS_ISA_NEON) return;   /* only these repack */
    float x[K];
    for (int k = 0; k < K; k++) x[k] = (float)urand();
    fs_buf *xb = act(b, x, K), *W[NW] = {0}, *yb = b->alloc(b, 8 * 200, &e);
    void *data[NW] = {0};
    float *want[NW] = {0}, got[8 * 200];
    int N[NW], bad = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < NW; i++) {
            if (W[i]) continue;
            fs_dtype dt = i % 2 ? FS_DTYPE_Q4_0 : FS_DTYPE_Q8_0;
            N[i] = 8 * (1 + (i * 7 + round * 3) % 200);
            free(data[i]);
            fs_tensor t;
            data[i] = rand_weight(dt, (size_t)N[i] * K, NULL, &t, N[i], K);
            W[i] = b->upload(b, &t, &e);
            CHECKF(W[i] && cpu_buf(W[i])->x8, "arena: upload %d", i);
            CHECK(b->buf_bytes(b, W[i]) == t.nbytes);
            mm(b, xb, W[i], yb, 1, K, N[i]);
            free(want[i]);
            want[i] = malloc(sizeof(float) * (size_t)N[i]);
            b->read(b, yb, 0, want[i], (size_t)N[i]);
        }
        for (int i = 0; i < NW; i++) {
            mm(b, xb, W[i], yb, 1, K, N[i]);
            b->read(b, yb, 0, got, (size_t)N[i]);
            if (memcmp(got, want[i], sizeof(float) * (size_t)N[i])) bad++;
        }
        for (int i = round % 2; i < NW; i += 2) {   /* free every other one */
            b->free_buf(b, W[i]);
            W[i] = NULL;
        }
    }
    CHECKF(bad == 0, "arena: %d weights changed while others were uploaded and freed", bad);
#ifdef __linux__
    {   /* A big bf16 matrix read from a file mapping is copied into an arena
         * (and the file's pages released), a 1-D one (a norm) to the heap:
         * nothing stays a view into the file. One in memory the model owns
         * (a converted tensor) stays a view, or it would be resident twice;
         * so does a small one. */
        float deq[1];
        size_t nbig = (size_t)520 * 1024;
        float *d = malloc(sizeof(float) * nbig);
        fs_tensor tb, ts, tf;
        void *big = rand_weight(FS_DTYPE_BF16, nbig, d, &tb, 520, 1024), *small = rand_weight(FS_DTYPE_BF16, 1, deq, &ts, 1, 1);
        char path[] = "/tmp/fs-test-arena.XXXXXX";
        int fd = mkstemp(path);
        void *map = MAP_FAILED;
        if (fd >= 0 && write(fd, big, tb.nbytes) == (ssize_t)tb.nbytes)
            map = mmap(NULL, tb.nbytes, PROT_READ, MAP_PRIVATE, fd, 0);
        CHECKF(map != MAP_FAILED, "arena: cannot map a test file");
        if (map != MAP_FAILED) {
            tf = tb;
            tf.data = map;
            tf.file_backed = 1;
            fs_buf *wf = b->upload(b, &tf, &e);
            CHECKF(wf && cpu_buf(wf)->arena && wf->data != map && !memcmp(wf->data, big, tb.nbytes),
                   "arena: big file-backed bf16 weight copied");
            CHECK(wf && b->buf_bytes(b, wf) == tb.nbytes);
            if (wf) b->free_buf(b, wf);
            fs_tensor tn = tf;   /* the first 1024 values as a norm weight */
            tn.ndim = 1;
            tn.shape[0] = 1024;
            tn.shape[1] = 0;
            tn.nbytes = 1024 * 2;
            fs_buf *wn = b->upload(b, &tn, &e);
            CHECKF(wn && !cpu_buf(wn)->arena && wn->data != map && !memcmp(wn->data, big, tn.nbytes),
                   "arena: 1-D file-backed weight copied to the heap");
            CHECK(wn && b->buf_bytes(b, wn) == tn.nbytes);
            if (wn) b->free_buf(b, wn);
            munmap(map, tb.nbytes);
        }
        if (fd >= 0) close(fd);
        unlink(path);
        fs_buf *wb = b->upload(b, &tb, &e), *ws = b->upload(b, &ts, &e);
        CHECKF(wb && !cpu_buf(wb)->arena && wb->data == big, "arena: big weight in memory stays a view");
        CHECKF(ws && !cpu_buf(ws)->arena && ws->data == small, "arena: small weight stays a view");
        CHECK(b->buf_bytes(b, wb) == 0);
        b->free_buf(b, wb);
        b->free_buf(b, ws);
        free(big); free(small); free(d);
    }
#endif
    for (int i = 0; i < NW; i++) {
        if (W[i]) b->free_buf(b, W[i]);
        free(data[i]);
        free(want[i]);
    }
    b->free_buf(b, xb);
    b->free_buf(b, yb);
}

/* ---- attention, rope_kv, rmsnorm, SwiGLU, add ---- */

/* A KV cache on b holding k and v ([n, Hkv * D] each) at positions 0 ..
 * n-1, written in its own layout (ref.h); the CPU's padding after each
 * position is NaN, so a kernel that read it would show. */
static fs_buf *cache_with(fs_backend *b, const float *k, const float *v, int n, int Hkv, int D) {
    fs_err e;
    fs_buf *c = b->kv_alloc(b, N_CTX, Hkv, D, &e);
    if (!c) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    size_t row = (size_t)Hkv * D;
    for (size_t i = 0; i < (size_t)N_CTX * c->kv_stride; i++) kv_keys(c)[i] = kv_values(c)[i] = NAN;
    for (int p = 0; p < n; p++) {
        memcpy(kv_keys(c) + (size_t)p * c->kv_stride, k + (size_t)p * row, row * sizeof(float));
        memcpy(kv_values(c) + (size_t)p * c->kv_stride, v + (size_t)p * row, row * sizeof(float));
    }
    return c;
}

/* Attention: f32 online softmax vs the double two-pass reference.
 * Outputs are convex combinations of V rows, so the error is measured
 * relative to max |v|; 5e-6 covers f32 exp and the accumulation over
 * up to ~500 keys (measured worst is printed). */
static void test_attention(void) {
    static const struct { int T, pos0, Hq, Hkv, D, mixed; } cs[] = {
        {1, 0, 2, 1, 2, 0}, {1, 9, 4, 2, 6, 0}, {5, 0, 4, 2, 64, 0}, {17, 3, 3, 1, 128, 0},
        {2, 130, 16, 8, 128, 0}, {64, 100, 2, 2, 70, 0}, {130, 0, 2, 1, 8, 0}, {1, 300, 4, 4, 33, 0},
        /* the tiled prefill path (AVX2, T >= 4, D % 16 == 0): partial key
         * panels, partial 6-query tiles, several 64-token slabs, pos0 > 0 */
        {4, 0, 2, 1, 16, 0}, {71, 0, 16, 8, 128, 0}, {130, 37, 4, 2, 64, 0}, {9, 500, 6, 3, 32, 0},
        /* ... on AMX tiles where D % 32 == 0 (attention_amx.c): 16-row
         * query tiles with a tail, 3 steps of 32 dims, a group of 4 */
        {40, 21, 4, 2, 96, 0}, {33, 0, 8, 2, 128, 0},
        /* a step of two sequences (mixed): token t is of sequence t % 2,
         * at position pos0 + t / 2 of its own cache - the per-token path,
         * also where a prompt of that size would be tiled */
        {6, 0, 4, 2, 64, 1}, {9, 120, 16, 8, 128, 1}, {2, 7, 2, 1, 16, 1}};
    double worst_all = 0;
    int ids[MAX_T] = {0}, pos[MAX_T], seq[MAX_T];
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        int T = cs[c].T, pos0 = cs[c].pos0, Hq = cs[c].Hq, Hkv = cs[c].Hkv, D = cs[c].D, n = pos0 + T;
        int mixed = cs[c].mixed;
        for (int t = 0; t < T; t++) seq[t] = mixed ? t % 2 : 0, pos[t] = mixed ? pos0 + t / 2 : pos0 + t;
        fs_step st = {T, ids, pos, seq, mixed ? 2 : 1};
        size_t nq = (size_t)T * Hq * D, nkv = (size_t)n * Hkv * D;
        float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nkv), *v = malloc(sizeof(float) * nkv);
        float *or_ = malloc(sizeof(float) * nq), *of = malloc(sizeof(float) * nq);
        for (size_t i = 0; i < nq; i++) q[i] = (float)(urand() * 3);   /* peaky softmax too */
        for (size_t i = 0; i < nkv; i++) k[i] = (float)(urand() * 3), v[i] = (float)urand();
        fs_err e;
        /* the second sequence's cache holds other keys and values: v as keys, k / 3 as values */
        float *k1 = malloc(sizeof(float) * nkv), *v1 = malloc(sizeof(float) * nkv);
        for (size_t i = 0; i < nkv; i++) k1[i] = v[i], v1[i] = k[i] / 3;
        fs_buf *qb = act(ref, q, nq), *ob = ref->alloc(ref, nq, &e);
        fs_buf *kv[2] = {cache_with(ref, k, v, n, Hkv, D), cache_with(ref, k1, v1, n, Hkv, D)};
        ref->set_step(ref, &st);
        ref->attention(ref, qb, kv, ob, Hq, Hkv, D);
        ref->read(ref, ob, 0, or_, nq);
        ref->free_buf(ref, qb); ref->free_buf(ref, kv[0]); ref->free_buf(ref, kv[1]); ref->free_buf(ref, ob);
        for (int th = 1; th <= 3; th++)
            for (int s = 0; s < n_isas; s++) {
                fs_backend *b = cpu[th];
                use_kernels(b, s);
                qb = act(b, q, nq), ob = b->alloc(b, nq, &e);
                kv[0] = cache_with(b, k, v, n, Hkv, D), kv[1] = cache_with(b, k1, v1, n, Hkv, D);
                b->set_step(b, &st);
                b->attention(b, qb, kv, ob, Hq, Hkv, D);
                b->read(b, ob, 0, of, nq);
                double worst = 0;
                for (size_t i = 0; i < nq; i++) {
                    double d = fabs((double)of[i] - or_[i]);
                    if (!(d <= worst)) worst = d;
                }
                if (worst > worst_all) worst_all = worst;
                CHECKF(worst <= 5e-6, "attention T %d pos0 %d Hq %d Hkv %d D %d%s %s threads %d: err %g", T, pos0,
                       Hq, Hkv, D, mixed ? " (two sequences)" : "", kernels_name(s), th, worst);
                b->free_buf(b, qb); b->free_buf(b, kv[0]); b->free_buf(b, kv[1]); b->free_buf(b, ob);
                use_kernels(b, n_isas - 1);
            }
        free(q); free(k); free(v); free(k1); free(v1); free(or_); free(of);
    }
    printf("attention: worst abs error %.3g (|v| <= 1)\n", worst_all);
}

/* rope_kv: the reference's rotation bit for bit (the same f32 products
 * of the same table), and with f16 norm weights the reference's rmsnorm
 * too; K and V land at pos0 .. in the padded cache. */
static void test_rope_kv(void) {
    static const struct { int T, Hq, Hkv, D, pos0; } cs[] = {
        {1, 1, 1, 2, 0}, {5, 3, 3, 6, 7}, {17, 8, 4, 128, 600}, {3, 2, 1, 64, 40}};
    int ids[MAX_T] = {0};
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        int T = cs[c].T, Hq = cs[c].Hq, Hkv = cs[c].Hkv, D = cs[c].D, pos0 = cs[c].pos0;
        size_t nq = (size_t)T * Hq * D, nk = (size_t)T * Hkv * D;
        float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nk), *v = malloc(sizeof(float) * nk);
        float *a = malloc(sizeof(float) * (nq + nk)), *f = malloc(sizeof(float) * (nq + nk));
        for (size_t i = 0; i < nq; i++) q[i] = (float)urand();
        for (size_t i = 0; i < nk; i++) k[i] = (float)urand(), v[i] = (float)urand();
        fs_tensor nt;
        void *nd = rand_weight(FS_DTYPE_F16, (size_t)D, NULL, &nt, 1, D);
        nt.ndim = 1, nt.shape[0] = D, nt.shape[1] = 0;
        fs_backend *r = open_reserved("cpu-ref", 0, D);
        for (int normed = 0; normed < 2; normed++) {
            fs_err e;
            fs_buf *qb = act(r, q, nq), *kb = act(r, k, nk), *vb = act(r, v, nk), *nb = r->upload(r, &nt, &e);
            fs_buf *kv = r->kv_alloc(r, N_CTX, Hkv, D, &e);
            set_seq_step(r, ids, T, pos0);
            r->rope_kv(r, qb, kb, vb, normed ? nb : NULL, normed ? nb : NULL, 1e-6f, &kv, Hq, Hkv, D, NULL);
            r->read(r, qb, 0, a, nq);
            r->read(r, kb, 0, a + nq, nk);
            r->free_buf(r, qb); r->free_buf(r, kb); r->free_buf(r, vb); r->free_buf(r, nb); r->free_buf(r, kv);
            for (int th = 1; th <= 3; th++)
                for (int s = 0; s < n_isas; s++) {
                    fs_backend *b = open_reserved("cpu", th, D);
                    use_kernels(b, s);
                    qb = act(b, q, nq), kb = act(b, k, nk), vb = act(b, v, nk), nb = b->upload(b, &nt, &e);
                    kv = b->kv_alloc(b, N_CTX, Hkv, D, &e);
                    set_seq_step(b, ids, T, pos0);
                    b->rope_kv(b, qb, kb, vb, normed ? nb : NULL, normed ? nb : NULL, 1e-6f, &kv, Hq, Hkv, D, NULL);
                    b->read(b, qb, 0, f, nq);
                    b->read(b, kb, 0, f + nq, nk);
                    int bad = memcmp(a, f, sizeof(float) * (nq + nk)) != 0;
                    size_t row = (size_t)Hkv * D;
                    CHECK(kv->kv_stride == row + FS_KV_PAD);
                    for (int t = 0; t < T; t++)
                        bad += memcmp(kv_keys(kv) + (size_t)(pos0 + t) * kv->kv_stride, f + nq + (size_t)t * row, row * 4) ||
                               memcmp(kv_values(kv) + (size_t)(pos0 + t) * kv->kv_stride, v + (size_t)t * row, row * 4);
                    CHECKF(bad == 0, "rope_kv case %zu normed %d %s threads %d differs from the reference", c, normed,
                           kernels_name(s), th);
                    b->free_buf(b, qb); b->free_buf(b, kb); b->free_buf(b, vb); b->free_buf(b, nb); b->free_buf(b, kv);
                    b->destroy(b);
                }
        }
        r->destroy(r);
        free(q); free(k); free(v); free(a); free(f); free(nd);
    }
}

/* rmsnorm: the same operations as the reference, the double sum of
 * squares reordered: at most one f32 rounding of the scale apart, so
 * within 3 ulp of the reference's y (weights bf16, f16 and f32). */
static void test_rmsnorm(void) {
    static const struct { int rows, n; } cs[] = {{1, 1024}, {16, 128}, {3, 7}, {5, 33}, {2, 3072}};
    static const fs_dtype wts[] = {FS_DTYPE_BF16, FS_DTYPE_F16, FS_DTYPE_F32};
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++)
        for (int d = 0; d < 3; d++) {
            int rows = cs[c].rows, n = cs[c].n;
            size_t nx = (size_t)rows * n;
            float *x = malloc(sizeof(float) * nx), *a = malloc(sizeof(float) * nx), *f = malloc(sizeof(float) * nx);
            for (size_t i = 0; i < nx; i++) x[i] = (float)(urand() * 6);
            fs_tensor t;
            void *w = rand_weight(wts[d], (size_t)n, NULL, &t, 1, n);
            t.ndim = 1, t.shape[0] = n, t.shape[1] = 0;
            fs_err e;
            fs_buf *xb = act(ref, x, nx), *wb = ref->upload(ref, &t, &e), *yb = ref->alloc(ref, nx, &e);
            ref->rmsnorm(ref, xb, wb, yb, rows, n, 1e-6f);
            ref->read(ref, yb, 0, a, nx);
            ref->free_buf(ref, xb); ref->free_buf(ref, wb); ref->free_buf(ref, yb);
            for (int s = 0; s < n_isas; s++) {
                fs_backend *b = cpu[2];
                use_kernels(b, s);
                xb = act(b, x, nx), wb = b->upload(b, &t, &e);
                b->rmsnorm(b, xb, wb, xb, rows, n, 1e-6f);   /* in place */
                b->read(b, xb, 0, f, nx);
                b->free_buf(b, xb); b->free_buf(b, wb);
                use_kernels(b, n_isas - 1);
                int bad = 0;
                for (size_t i = 0; i < nx; i++)
                    bad += !(fabs((double)f[i] - a[i]) <= 3 * ldexp(fabs((double)a[i]), -23) + 1e-38);
                CHECKF(bad == 0, "rmsnorm rows %d n %d %s %s: %d values beyond 3 ulp", rows, n, fs_dtype_name(wts[d]),
                       kernels_name(s), bad);
            }
            free(x); free(a); free(f); free(w);
        }
}

/* fs_vscale_max (prefill attention's row scale and max): the same f32
 * products as the scalar loop, bit for bit, and its max - NaNs skipped as
 * `if (y > m)` skips them; for lengths around the vector widths. */
static void test_vscale_max(void) {
    for (int n = 0; n <= 41; n++)
        for (int nan_at = -1; nan_at < (n < 3 ? n : 3); nan_at++)
            for (int s = 0; s < n_isas; s++) {
                float a[41], b[41], m = -INFINITY;
                for (int i = 0; i < n; i++) a[i] = b[i] = (float)(urand() * 50);
                if (nan_at >= 0) a[nan_at * (n - 1) / 2] = b[nan_at * (n - 1) / 2] = NAN;
                for (int i = 0; i < n; i++) {
                    a[i] *= 0.088388f;
                    if (a[i] > m) m = a[i];
                }
                fs_cpu *f = cpu_ctx(cpu[1]);
                use_kernels(cpu[1], s);
                float got = fs_vscale_max(f->isa, b, 0.088388f, n);
                use_kernels(cpu[1], n_isas - 1);
                int same = memcmp(a, b, sizeof(float) * (size_t)n) == 0;   /* bit for bit, NaNs included */
                CHECKF(same && (got == m || (isinf(m) && isinf(got))), "vscale_max n %d nan %d %s: max %g vs %g", n,
                       nan_at, kernels_name(s), got, m);
            }
}

/* SwiGLU (the down_proj's input): f32 exp vs double exp, a few ulp of the
 * result; add (the residual): the same f32 additions, bit-identical; for
 * lengths around the vector widths and the threading chunk. */
static void test_swiglu_add(void) {
    static const size_t ns[] = {1, 7, 16, 1023, 4096, 4097, 20000, 65537};
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        size_t n = ns[c];
        float *g = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n);
        float *a = malloc(sizeof(float) * n), *f = malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) g[i] = (float)(urand() * 20), u[i] = (float)(urand() * 4);
        fs_ref_swiglu(g, u, a, n);
        for (int th = 1; th <= 3; th++)
            for (int s = 0; s < n_isas; s++) {
                use_kernels(cpu[th], s);
                memcpy(f, g, sizeof(float) * n);
                fs_cpu_swiglu(cpu_ctx(cpu[th]), f, u, f, n);   /* in place */
                use_kernels(cpu[th], n_isas - 1);
                double worst = 0;
                for (size_t i = 0; i < n; i++) {
                    double d = fabs((double)f[i] - a[i]) / (fabs((double)a[i]) + 1e-30);
                    if (fabs((double)a[i]) < 1e-30) d = fabs((double)f[i]);
                    if (!(d <= worst)) worst = d;
                }
                CHECKF(worst <= 1e-6, "swiglu n %zu threads %d %s: rel err %g", n, th, kernels_name(s), worst);
            }
        for (size_t i = 0; i < n; i++) a[i] = g[i] + u[i];
        for (int s = 0; s < n_isas; s++) {
            memcpy(f, g, sizeof(float) * n);
            fs_cpu_add(isas[s].k.isa, f, u, n);
            CHECKF(memcmp(a, f, sizeof(float) * n) == 0, "add n %zu %s differs from the f32 sum", n, kernels_name(s));
        }
        free(g); free(u); free(a); free(f);
    }
}

#if defined(__x86_64__)
#include "cpu/exp_avx2.h"
/* fs_exp8 against exp in double: within 3 ulp over [-87.3, 88] (a fine
 * grid plus every power-of-two boundary region), finite and clamped
 * outside. Run only when the CPU has AVX2 + FMA. */
__attribute__((target("avx2,fma"))) static void exp8_range(double *worst, int *bad_clamp) {
    for (int i = -1000000; i <= 1000000; i += 8) {
        float xs[8], ys[8];
        for (int k = 0; k < 8; k++) xs[k] = (float)(i + k) * 1e-4f * 0.9f;   /* -90 .. 90 */
        _mm256_storeu_ps(ys, fs_exp8(_mm256_loadu_ps(xs)));
        for (int k = 0; k < 8; k++) {
            if (xs[k] < -87.3f || xs[k] > 88.0f) {
                *bad_clamp += !(isfinite(ys[k]) && ys[k] > 0);
                continue;
            }
            double ex = exp((double)xs[k]), ulp = ldexp(1.0, ilogb(ex) - 23);
            double d = fabs((double)ys[k] - ex) / ulp;
            if (!(d <= *worst)) *worst = d;
        }
    }
}

static void test_exp8(void) {
    if (fs_cpu_detect().isa != FS_ISA_AVX2) return;
    double worst = 0;
    int bad_clamp = 0;
    exp8_range(&worst, &bad_clamp);
    CHECKF(worst <= 3.0, "fs_exp8: %.2f ulp from exp", worst);
    CHECKF(bad_clamp == 0, "fs_exp8: %d clamped results not finite and positive", bad_clamp);
    printf("exp8: worst %.2f ulp\n", worst);
}
#elif defined(__aarch64__)
#include <arm_neon.h>
#include "cpu/exp_neon.h"
/* fs_exp4 (NEON) against exp in double: the same grid and bounds as
 * fs_exp8's on x86 (under qemu-aarch64: scripts/test_neon.sh). */
static void test_exp8(void) {
    double worst = 0;
    int bad_clamp = 0;
    for (int i = -1000000; i <= 1000000; i += 4) {
        float xs[4], ys[4];
        for (int k = 0; k < 4; k++) xs[k] = (float)(i + k) * 1e-4f * 0.9f;   /* -90 .. 90 */
        vst1q_f32(ys, fs_exp4(vld1q_f32(xs)));
        for (int k = 0; k < 4; k++) {
            if (xs[k] < -87.3f || xs[k] > 88.0f) {
                bad_clamp += !(isfinite(ys[k]) && ys[k] > 0);
                continue;
            }
            double ex = exp((double)xs[k]), ulp = ldexp(1.0, ilogb(ex) - 23);
            double d = fabs((double)ys[k] - ex) / ulp;
            if (!(d <= worst)) worst = d;
        }
    }
    CHECKF(worst <= 3.0, "fs_exp4: %.2f ulp from exp", worst);
    CHECKF(bad_clamp == 0, "fs_exp4: %d clamped results not finite and positive", bad_clamp);
    printf("exp4 (neon): worst %.2f ulp\n", worst);
}
#else
static void test_exp8(void) {}
#endif

/* ---- Q8_0 activations: quant_cpu.c against quant.c's definitions ---- */

/* Random values with a spread of block scales (1e-4 .. 1e2) and an
 * occasional outlier. */
static void fill_blocks(float *x, int k) {
    for (int b = 0; b < k / FS_QK; b++) {
        double scale = pow(10.0, 3.0 * urand() - 1.0);
        for (int i = 0; i < FS_QK; i++) {
            double v = urand() * scale;
            if ((rng & 63) == 0) v *= 8;
            x[b * FS_QK + i] = (float)v;
        }
    }
}

/* The quantizer of every ISA writes the bytes and sums of
 * fs_quantize_row_q8_0 + fs_q8_0_sums. The row kernels (decode without
 * x8) compute _ref's integer block sums, the f32 additions reordered:
 * |kernel - ref| <= 4 (nb + 2) u sum |terms|; NEON and scalar add in
 * _ref's order, so they equal it. */
static void test_q8_kernels(void) {
    enum { MAXK = 3072 };
    static float x[MAXK], w[MAXK];
    static fs_block_q8_0 a8[MAXK / 32], b8[MAXK / 32];
    static fs_q8_0_sum as[MAXK / 32], bs[MAXK / 32];
    int qdiff = 0, bad = 0, cases = 0;
    for (int s = 0; s < n_isas; s++)
        for (int rep = 0; rep < 40; rep++) {
            int k = 32 * (1 + rep % 7) + (rep % 5 == 0 ? 1024 : 0);
            fill_blocks(x, k);
            if (rep == 0)
                for (int i = 0; i < k; i++) x[i] = (float)(i % 255 - 127) * 0.5f;   /* many exact .5 ties */
            if (rep == 1)
                for (int i = 0; i < k; i++) x[i] = i < k / 2 ? 0.0f : -1.0f;      /* zero blocks, all -127 */
            if (rep == 2) { /* k = 96: a NaN, an infinity, denormals (issue 18: the NaN had become -128) */
                x[5] = NAN;
                x[32 + 31] = -INFINITY;
                for (int i = 64; i < 96; i++) x[i] = i % 2 ? 3e-39f : -1e-44f;
            }
            if (rep == 3) /* k = 128: blocks whose scale rounds to 0 as an f16 */
                for (int i = 0; i < k; i++) x[i] = (float)(i % 7) * 1e-9f * (float)(1 + i / 32);
            fs_quantize_row_q8_0(x, a8, k);
            fs_q8_0_sums(a8, k, as);
            fs_cpu_quantize_x(isas[s].k.isa, x, b8, bs, k);
            qdiff += memcmp(a8, b8, sizeof(fs_block_q8_0) * (size_t)(k / 32)) != 0;
            for (int b = 0; b < k / 32; b++) qdiff += as[b].s != bs[b].s || memcmp(&as[b].d, &bs[b].d, 4) != 0;
            int nr = 1 + rep % 9, nb = k / 32;
            fs_block_q8_0 *w8 = malloc(sizeof *w8 * (size_t)(nr * nb));
            fs_block_q4_0 *w4 = malloc(sizeof *w4 * (size_t)(nr * nb));
            for (int r = 0; r < nr; r++) {
                fill_blocks(w, k);
                fs_quantize_row_q8_0(w, w8 + (size_t)r * nb, k);
                fs_quantize_row_q4_0(w, w4 + (size_t)r * nb, k);
            }
            float o8[9], o4[9];
            fs_cpu_dot_rows_q8_0(isas[s].k.isa, k, w8, nr, b8, bs, o8);
            fs_cpu_dot_rows_q4_0(isas[s].k.isa, k, w4, nr, b8, bs, o4);
            for (int r = 0; r < nr; r++)
                for (int kind = 0; kind < 2; kind++) {
                    float refv = kind ? fs_vec_dot_q4_0_q8_0_ref(k, w4 + (size_t)r * nb, b8)
                                      : fs_vec_dot_q8_0_q8_0_ref(k, w8 + (size_t)r * nb, b8);
                    double mag = 0;
                    for (int b = 0; b < nb; b++) {
                        float xd[32], wd[32];
                        fs_dequantize_row_q8_0(b8 + b, xd, 32);
                        if (kind) fs_dequantize_row_q4_0(w4 + (size_t)r * nb + b, wd, 32);
                        else fs_dequantize_row_q8_0(w8 + (size_t)r * nb + b, wd, 32);
                        for (int i = 0; i < 32; i++) mag += fabs((double)xd[i] * wd[i]);
                    }
                    float got = kind ? o4[r] : o8[r];
                    double tol = isas[s].k.isa == FS_ISA_AVX2 ? 4.0 * (nb + 2) * ldexp(mag, -24) : 0;
                    bad += !(fabs((double)got - refv) <= tol) && !(isnan(got) && isnan(refv));
                    cases++;
                }
            free(w8); free(w4);
        }
    CHECKF(qdiff == 0, "fs_cpu_quantize_x: %d blocks or sums differ from quantize + fs_q8_0_sums", qdiff);
    CHECKF(bad == 0, "%d of %d row dot products differ from _ref beyond rounding", bad, cases);
}

/* FS_ISA=scalar reaches every path, the quantized decode included: a
 * backend opened with it runs the scalar kernels, does not repack, and its
 * Q4_0 / Q8_0 decode equals _ref's dot of each row with x quantized by
 * fs_quantize_row_q8_0, bit for bit (an AVX2 row kernel adds in another
 * order). */
static void test_isa_env(void) {
    setenv("FS_ISA", "scalar", 1);
    fs_backend *b = open_reserved("cpu", 2, 128);
    unsetenv("FS_ISA");
    CHECK(cpu_ctx(b)->isa == FS_ISA_SCALAR && cpu_ctx(b)->vnni == 0 && cpu_ctx(b)->avx512 == 0 &&
          cpu_ctx(b)->amx == 0 && strstr(b->describe(b), "scalar kernels"));
    int K = 1024, N = 64, bad = 0;
    float x[1024], y[64];
    fs_block_q8_0 xq[32];
    for (int i = 0; i < K; i++) x[i] = (float)urand();
    fs_quantize_row_q8_0(x, xq, K);
    for (int d = 0; d < 2; d++) {
        fs_dtype dt = d ? FS_DTYPE_Q4_0 : FS_DTYPE_Q8_0;
        fs_err e;
        fs_tensor t;
        void *w = rand_weight(dt, (size_t)N * K, NULL, &t, N, K);
        fs_buf *wb = b->upload(b, &t, &e), *xb = act(b, x, (size_t)K), *yb = b->alloc(b, (size_t)N, &e);
        CHECK(!cpu_buf(wb)->x8);
        mm(b, xb, wb, yb, 1, K, N);
        b->read(b, yb, 0, y, (size_t)N);
        size_t rb = fs_dtype_row_bytes(dt, K);
        for (int n = 0; n < N; n++) {
            const void *row = (const uint8_t *)w + (size_t)n * rb;
            float want = d ? fs_vec_dot_q4_0_q8_0_ref(K, row, xq) : fs_vec_dot_q8_0_q8_0_ref(K, row, xq);
            bad += memcmp(&want, &y[n], 4) != 0;
        }
        b->free_buf(b, wb); b->free_buf(b, xb); b->free_buf(b, yb);
        free(w);
    }
    CHECKF(bad == 0, "FS_ISA=scalar: %d quantized decode outputs are not the scalar kernels'", bad);
    b->destroy(b);
    /* a name that is no level of this architecture is refused, clearly */
    fs_err e;
#if defined(__aarch64__)
    setenv("FS_ISA", "avx2", 1);
#else
    setenv("FS_ISA", "neon", 1);
#endif
    fs_backend *bad_isa = fs_backend_open(&(fs_backend_opts){"cpu", 1, 0}, &e);
    CHECKF(!bad_isa && strstr(e.msg, "FS_ISA=") && strstr(e.msg, "scalar"), "unknown FS_ISA: %s", bad_isa ? "opened" : e.msg);
    if (bad_isa) bad_isa->destroy(bad_isa);
    unsetenv("FS_ISA");
    /* each level caps the ones above it */
    fs_cpu_kernels all = fs_cpu_detect();
#if defined(__aarch64__)
    {
        setenv("FS_ISA", "neon", 1);
        fs_cpu_kernels a = fs_cpu_detect();
        CHECK(a.isa == all.isa && !a.dotprod && !a.i8mm);
        setenv("FS_ISA", "dotprod", 1);
        a = fs_cpu_detect();
        CHECK(a.isa == all.isa && a.dotprod == all.dotprod && !a.i8mm);
        setenv("FS_ISA", "i8mm", 1);
        a = fs_cpu_detect();
        CHECK(!memcmp(&a, &all, sizeof a));
        CHECK(all.i8mm <= all.dotprod);   /* the smmla kernels are built on the sdot ones' target */
        unsetenv("FS_ISA");
    }
    return;
#endif
    setenv("FS_ISA", "avx2", 1);
    fs_cpu_kernels k = fs_cpu_detect();
    CHECK(k.isa == all.isa && !k.vnni && !k.avx512 && !k.bf16 && !k.amx);
    setenv("FS_ISA", "avx-vnni", 1);
    k = fs_cpu_detect();
    CHECK(k.vnni == all.vnni && !k.avx512 && !k.amx);
    setenv("FS_ISA", "avx512", 1);
    k = fs_cpu_detect();
    CHECK(k.vnni == all.vnni && k.avx512 == all.avx512 && k.bf16 == all.bf16 && !k.amx);
    setenv("FS_ISA", "amx", 1);
    k = fs_cpu_detect();
    CHECK(!memcmp(&k, &all, sizeof k));
    unsetenv("FS_ISA");
}

/* ---- the input split into bf16 parts, the AMX tile configuration ---- */

/* hi + mid + lo is x exactly for normal floats of every magnitude (the
 * sum in double is exact: three bf16 of a common exponent range); an
 * infinity stays in hi with zeros after it, a NaN stays a NaN; the rows
 * are zero-padded to ldk. */
static void test_split_bf16(void) {
    if (!cpu_ctx(cpu[1])->avx512) return;
    enum { K = 77, LDK = 96 };
    float x[2 * K];
    uint16_t xs[3 * 2 * LDK];
    for (int i = 0; i < 2 * K; i++) x[i] = (float)(urand() * ldexp(1.0, (i * 37) % 200 - 100));
    x[3] = INFINITY, x[4] = -INFINITY, x[5] = NAN, x[6] = 0.0f, x[7] = -0.0f, x[8] = 3.4e38f, x[9] = 1.17549435e-38f;
    fs_split_rows_avx512(x, K, 2, K, xs, 2 * LDK, LDK);
    int bad = 0;
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < LDK; k++) {
            double v[3];
            for (int p = 0; p < 3; p++) v[p] = fs_bf16_to_f32(xs[p * 2 * LDK + r * LDK + k]);
            double want = k < K ? x[r * K + k] : 0.0, sum = v[0] + v[1] + v[2];
            if (k < K && isnan(want)) bad += !isnan(v[0]);
            else if (k < K && isinf(want)) bad += v[0] != want || v[1] != 0 || v[2] != 0;
            else bad += sum != want;
        }
    CHECKF(bad == 0, "bf16 split: %d values are not hi + mid + lo", bad);
}

/* The int8 configuration read back from the tile unit (sttilecfg) is the
 * one written: palette 1, C 16 x 64 bytes, A 16 x 32, B 8 x 64 - what
 * a configuration whose stores a compiler dropped would not be. */
static void test_amx_config(void) {
    if (!cpu_ctx(cpu[1])->amx) return;
    uint8_t got[64], want[64] = {1};
    static const int bytes[6] = {64, 64, 32, 32, 64, 64}, rows[6] = {16, 16, 16, 16, 8, 8};
    for (int i = 0; i < 6; i++) want[16 + 2 * i] = (uint8_t)bytes[i], want[48 + i] = (uint8_t)rows[i];
    memset(got, 0xee, sizeof got);
    fs_amx_config_roundtrip(got);
    CHECKF(!memcmp(got, want, sizeof want), "AMX: the tile configuration read back differs from the one loaded");
}

/* ---- calibration (tune_cpu.c) ---- */

/* Candidate c "runs" for its own time, ms[c] milliseconds, returned, not
 * spun (a unit test must not depend on the machine's load): every third
 * sample of any candidate comes back twice as long, as a sample the
 * scheduler interrupted would, so the pick has to see through outliers. */
static int fake_calls;
static double fake_run(void *ctx, int c) {
    const double *ms = ctx;
    return ms[c] * 1e-3 * (++fake_calls % 3 == 0 ? 2.0 : 1.0);
}

/* Stage 4's question, made up: the tiles win from T = fake_tiles_from on;
 * which T were asked is kept (a bit per index in {4, 8, 16, 32, 64}). */
static int fake_tiles_from, fake_tiles_asked;
static int fake_tiles_win(void *ctx, int T) {
    (void)ctx;
    for (int k = 0; k < 5; k++)
        if (T == 4 << k) fake_tiles_asked |= 1 << k;
    return T >= fake_tiles_from;
}

/* The pick is the faster of candidates whose speeds are made to differ,
 * whichever comes first; plans round-trip through the cache file (in a
 * temporary FS_HOME, other keys kept, a key replaced); a backend opened
 * with FS_CALIBRATE=1 measures its weights' decode and stores the plan, the
 * next reads it back, and FS_CALIBRATE=0 keeps the defaults. */
static void test_tune(void) {
    double slow_fast[2] = {2.0, 1.0}, fast_slow[3] = {1.0, 2.0, 3.0}, close[2] = {1.0, 0.99};
    CHECK(fs_cpu_tune_pick(2, fake_run, slow_fast, 5, 0, 0.03) == 1);   /* the faster replaces the reference */
    CHECK(fs_cpu_tune_pick(3, fake_run, fast_slow, 5, 2, 0.03) == 0);
    CHECK(fs_cpu_tune_pick(3, fake_run, fast_slow, 5, 0, 0.03) == 0);   /* the reference is the fastest */
    CHECK(fs_cpu_tune_pick(2, fake_run, close, 5, 0, 0.03) == 0);       /* 1% is within the margin: the reference stays */
    {   /* stage 4: the tiles made to win from T = from on; asked from the largest down, stopping at the first loss */
        static const int Ts[5] = {4, 8, 16, 32, 64};
        int froms[5] = {1, 8, 32, 64, 1000}, want[5] = {4, 8, 32, 64, 65};
        for (int i = 0; i < 5; i++) {
            fake_tiles_from = froms[i];
            fake_tiles_asked = 0;
            int got = fs_cpu_tune_tiles(5, Ts, fake_tiles_win, NULL);
            CHECKF(got == want[i], "tiles winning from %d: the plan says from %d, want %d", froms[i], got, want[i]);
            /* every T from the largest down to the first loss, none below it */
            int asked = 0;
            for (int k = 4; k >= 0; k--) {
                asked |= 1 << k;
                if (Ts[k] < froms[i]) break;
            }
            CHECKF(fake_tiles_asked == asked, "tiles winning from %d: asked %#x, want %#x", froms[i], fake_tiles_asked, asked);
        }
    }

    char dir[] = "/tmp/fs_tune_XXXXXX", path[1100];
    if (!mkdtemp(dir)) { CHECK(0); return; }
    const char *old_home = getenv("FS_HOME");
    char *saved = old_home ? strdup(old_home) : NULL;
    snprintf(path, sizeof path, "%s/sub", dir);
    setenv("FS_HOME", path, 1);   /* a directory that does not exist yet */
    fs_cpu_plan a = {FS_DK_AVX512, FS_PF_NTA, 1024, 0, 0, 8192, 32}, b = {FS_DK_AVX2, FS_PF_NONE, 0, 0, 0, 0, 0}, got;
    CHECK(fs_cpu_tune_load("cpu A | key", &got) != 0);
    CHECK(fs_cpu_tune_store("cpu A | key", &a) == 0 && fs_cpu_tune_store("cpu B | key", &b) == 0);
    CHECK(fs_cpu_tune_load("cpu A | key", &got) == 0 && got.kernel == a.kernel && got.prefetch == a.prefetch &&
          got.ahead == a.ahead && got.far == a.far && got.tiles == a.tiles && got.how == FS_PLAN_CACHED);
    CHECK(fs_cpu_tune_store("cpu A | key", &b) == 0);
    CHECK(fs_cpu_tune_load("cpu A | key", &got) == 0 && got.kernel == FS_DK_AVX2 && got.prefetch == FS_PF_NONE);
    CHECK(fs_cpu_tune_load("cpu B | key", &got) == 0 && got.kernel == FS_DK_AVX2);
    CHECK(fs_cpu_tune_load("cpu B", &got) != 0);   /* a prefix is not the key */
    {   /* a line without far= (written before the far prefetch existed) reads as far 0; a bad far is refused */
        char file[1200];
        FILE *fp = fs_cpu_tune_path(file, sizeof file) == 0 ? fopen(file, "a") : NULL;
        CHECK(fp != NULL);
        if (fp) {
            fprintf(fp, "cpu C | key\tkernel=avx2 prefetch=t0 ahead=4096\ncpu D | key\tkernel=avx2 prefetch=t0 ahead=4096 far=-5\n"
                        "cpu E | key\tkernel=avx2 prefetch=t0 ahead=4096 far=0 tiles=2\n"
                        "cpu F | key\tkernel=avx2 prefetch=t0 ahead=4096 far=4096\n");
            fclose(fp);
        }
        CHECK(fs_cpu_tune_load("cpu C | key", &got) == 0 && got.ahead == 4096 && got.far == 0 && got.tiles == 0);
        CHECK(fs_cpu_tune_load("cpu D | key", &got) != 0);
        CHECK(fs_cpu_tune_load("cpu E | key", &got) != 0);   /* tiles below FS_AMX_MIN_T: refused */
        /* a line without tiles= (written before stage 4) reads as not measured */
        CHECK(fs_cpu_tune_load("cpu F | key", &got) == 0 && got.far == 4096 && got.tiles == 0);
    }

    if (cpu_ctx(cpu[1])->isa == FS_ISA_AVX2 || cpu_ctx(cpu[1])->isa == FS_ISA_NEON) {
        static const char *const modes[3] = {"1", NULL, "0"}, *const want[3] = {"(calibrated)", "(cached)", "(default)"};
        int tiles_measured = 0;
        fs_tensor t;
        void *w = rand_weight(FS_DTYPE_Q4_0, (size_t)1024 * 1024, NULL, &t, 1024, 1024);
        for (int m = 0; m < 3; m++) {
            if (modes[m]) setenv("FS_CALIBRATE", modes[m], 1);
            else unsetenv("FS_CALIBRATE");
            fs_err e;
            fs_backend *be = fs_backend_open(&(fs_backend_opts){"cpu", 2, 0}, &e);
            fs_buf *wb = be ? be->upload(be, &t, &e) : NULL;
            float inv[64] = {0};
            /* 64 tokens: enough for stage 4 where the CPU has AMX tiles */
            fs_reserve r = {.max_T = 64, .max_seqs = 1, .max_K = 1024, .max_N = 1024, .n_ctx = 16, .Hq = 2, .Hkv = 1, .D = 128, .rope_inv_freq = inv};
            CHECK(wb && be->reserve(be, &r, &e) == 0);
            const char *d = be ? be->describe(be) : "";
            CHECKF(strstr(d, "Q4_0 decode") && strstr(d, want[m]), "FS_CALIBRATE=%s: %s", modes[m] ? modes[m] : "(unset)", d);
            if (m == 0) printf("calibrated: %s\n", strstr(d, "Q4_0 decode"));
            if (wb && cpu_ctx(be)->amx && cpu_ctx(be)->tpack) {   /* stage 4 measured, cached, or the default */
                int from = cpu_ctx(be)->plan[FS_DTYPE_Q4_0].tiles, amx_t = fs_amx_min_t(cpu_ctx(be), FS_DTYPE_Q4_0);
                char said[64];
                snprintf(said, sizeof said, "AMX tiles from %d tokens", amx_t);
                CHECKF(strstr(d, said), "FS_CALIBRATE=%s: describe does not say '%s': %s", modes[m] ? modes[m] : "(unset)", said, d);
                if (m == 0) tiles_measured = from;
                if (m == 0) CHECKF(from == 5 || from == 8 || from == 16 || from == 32 || from == 64 || from == 65, "stage 4 said %d", from);
                if (m == 1) CHECKF(from == tiles_measured, "cached tiles %d, measured %d", from, tiles_measured);
                if (m == 2) CHECKF(from == 0 && amx_t == 5, "FS_CALIBRATE=0: tiles %d, from %d", from, amx_t);
            }
            if (wb) be->free_buf(be, wb);
            if (be) be->destroy(be);
        }
        unsetenv("FS_CALIBRATE");
        free(w);
    }
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    if (saved) setenv("FS_HOME", saved, 1);
    else unsetenv("FS_HOME");
    free(saved);
}

/* After reserve, a decode step's ops - and a prefill's, and a batched
 * step's - allocate nothing (ds4's guard, here a count of malloc calls);
 * describe, reserved_bytes and the bandwidth probe say something
 * sensible. */
static void test_no_alloc(void) {
    fs_err e;
    enum { H = 256, Hq = 4, Hkv = 2, D = 64, I = 768, V = 1000, T = 70, NW = 6 };
    fs_backend *b = open_reserved("cpu", 2, D);
    /* q, k, o (also the embedding table), gate, down, lm_head */
    static const fs_dtype dts[NW] = {FS_DTYPE_Q4_0, FS_DTYPE_Q8_0, FS_DTYPE_BF16, FS_DTYPE_Q4_0, FS_DTYPE_F16, FS_DTYPE_Q8_0};
    static const int Ns[NW] = {Hq * D, Hkv * D, H, I, H, V}, Ks[NW] = {H, H, Hq * D, H, I, H};
    fs_tensor tw[NW], nt;
    void *wd[NW];
    fs_buf *W[NW];
    for (int i = 0; i < NW; i++) {
        wd[i] = rand_weight(dts[i], (size_t)Ns[i] * Ks[i], NULL, &tw[i], Ns[i], Ks[i]);
        W[i] = b->upload(b, &tw[i], &e);
    }
    void *nd = rand_weight(FS_DTYPE_BF16, (size_t)H, NULL, &nt, 1, H);
    nt.ndim = 1, nt.shape[0] = H, nt.shape[1] = 0;
    fs_buf *norm = b->upload(b, &nt, &e);
    float *h = malloc(sizeof(float) * (size_t)T * I);
    for (int i = 0; i < T * I; i++) h[i] = (float)urand();
    fs_buf *x = act(b, h, (size_t)T * H), *q = b->alloc(b, (size_t)T * Hq * D, &e), *k = b->alloc(b, (size_t)T * Hkv * D, &e);
    fs_buf *v = act(b, h, (size_t)T * Hkv * D), *att = b->alloc(b, (size_t)T * Hq * D, &e), *g = b->alloc(b, (size_t)T * I, &e);
    fs_buf *u = act(b, h, (size_t)T * I), *last = b->alloc(b, (size_t)3 * H, &e), *logits = b->alloc(b, (size_t)3 * V, &e);
    fs_buf *kv[3], *bw = b->alloc(b, (size_t)16 << 20, &e);
    for (int i = 0; i < 3; i++) kv[i] = b->kv_alloc(b, N_CTX, Hkv, D, &e);
    /* the batched step: sequence 0 goes on, sequence 1 starts with 2 tokens, sequence 2 with 1 */
    static const int b_seq[4] = {0, 1, 1, 2}, b_pos[4] = {0, 0, 1, 0}, b_last[3] = {0, 2, 3};
    int ids[MAX_T] = {0}, pos[MAX_T], seq[MAX_T], p0 = 0, argmax = -2;
#ifdef COUNT_MALLOC
    mallocs = 0;
#endif
    for (int step = 0; step < 4; step++) {   /* a prompt, two decode steps, a batched step of 3 sequences */
        int batched = step == 3, Ts = step == 0 ? T : batched ? 4 : 1, n_seq = batched ? 3 : 1;
        for (int t = 0; t < Ts; t++) {
            seq[t] = batched ? b_seq[t] : 0;
            pos[t] = !batched ? p0 + t : b_seq[t] == 0 ? p0 : b_pos[t];
        }
        b->set_step(b, &(fs_step){Ts, ids, pos, seq, n_seq});
        b->embed(b, W[2], H, x);
        b->matmul(b, &(fs_mm_in){x, norm, 1e-6f, NULL}, Ts, H,
                  (fs_linear[2]){{W[0], q, Hq * D, 0}, {W[1], k, Hkv * D, 0}}, 2);
        b->rope_kv(b, q, k, v, norm, norm, 1e-6f, kv, Hq, Hkv, D, NULL);
        b->attention(b, q, kv, att, Hq, Hkv, D);
        b->matmul(b, &(fs_mm_in){att, NULL, 0, NULL}, Ts, Hq * D, &(fs_linear){W[2], x, H, 1}, 1);
        b->matmul(b, &(fs_mm_in){x, norm, 1e-6f, NULL}, Ts, H, &(fs_linear){W[3], g, I, 0}, 1);
        b->matmul(b, &(fs_mm_in){g, NULL, 0, u}, Ts, I, &(fs_linear){W[4], x, H, 1}, 1);
        for (int i = 0; i < n_seq; i++)   /* each sequence's last row, then one lm_head for all */
            b->copy(b, x, (size_t)(batched ? b_last[i] : Ts - 1) * H, last, (size_t)i * H, (size_t)H);
        b->matmul(b, &(fs_mm_in){last, norm, 1e-6f, NULL}, n_seq, H, &(fs_linear){W[5], logits, V, 0}, 1);
        argmax = b->argmax(b, logits, V);
        b->rmsnorm(b, x, norm, x, Ts, H, 1e-6f);
        p0 += batched ? 1 : Ts;
    }
    double bytes_per_s = b->bandwidth(b, bw, (size_t)16 << 20);
#ifdef COUNT_MALLOC
    CHECKF(mallocs == 0, "ops after reserve called malloc %d times", mallocs);
#endif
    CHECK(argmax >= 0 && argmax < V);
    CHECKF(bytes_per_s > 1e8, "bandwidth: %g B/s", bytes_per_s);
    printf("bandwidth (64 MiB, 2 threads): %.1f GB/s\n", bytes_per_s / 1e9);
    CHECK(b->reserved_bytes(b) > (size_t)MAX_T * MAX_K * 4);
    char kname[64];
    fs_cpu_kernels_name(fs_cpu_get_kernels(cpu_ctx(b)), kname, sizeof kname);
    CHECK(strstr(b->describe(b), kname) && strstr(b->describe(b), "2 threads"));
    fs_buf *all[] = {x, q, k, v, att, g, u, last, logits, kv[0], kv[1], kv[2], bw, norm};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) b->free_buf(b, all[i]);
    for (int i = 0; i < NW; i++) {
        b->free_buf(b, W[i]);
        free(wd[i]);
    }
    free(nd); free(h);
    b->destroy(b);
}

/* ---- the thread pool ---- */

/* Every chunk runs exactly once, on a valid tid, across many back-to-back
 * regions of different sizes (a late thread never runs a chunk of the
 * wrong region, threadpool.c). */
typedef struct { int *hits; int nth; int bad_tid; } pool_arg;
static void count_chunk(void *arg, int chunk, int tid) {
    pool_arg *a = arg;
    if (tid < 0 || tid >= a->nth) a->bad_tid = 1;
    __atomic_fetch_add(&a->hits[chunk], 1, __ATOMIC_RELAXED);
}

/* Who runs what, in order, with the timing forced: 2 threads, 16 chunks,
 * shares [0, 8) and [8, 16). Thread 0 waits in chunk 0 until the worker
 * is in chunk 8; the worker stays there until thread 0 has run 15 chunks.
 * So thread 0 runs its share front to back, then steals the back half of
 * the worker's rest [9, 16) - chunk 12 now, [13, 16) as its own share -
 * then half of [9, 12) (10, then 11), then 9: 0..7 12 13 14 15 10 11 9. */
typedef struct {
    int order[16], count;        /* thread 0's chunks */
    int worker_in, worker_chunk; /* the worker is in its first chunk, which one */
    int timeout;
} order_arg;

static int wait_flag(const int *flag, int want) {   /* up to ~2 s */
    for (int i = 0; i < 20000; i++) {
        if (__atomic_load_n(flag, __ATOMIC_ACQUIRE) >= want) return 0;
        nanosleep(&(struct timespec){0, 100000}, NULL);
    }
    return -1;
}

static void order_chunk(void *arg, int chunk, int tid) {
    order_arg *a = arg;
    if (tid == 0) {
        if (chunk == 0 && wait_flag(&a->worker_in, 1)) a->timeout = 1;
        a->order[a->count] = chunk;
        __atomic_store_n(&a->count, a->count + 1, __ATOMIC_RELEASE);
    } else if (!a->worker_in) {
        a->worker_chunk = chunk;
        __atomic_store_n(&a->worker_in, 1, __ATOMIC_RELEASE);
        if (wait_flag(&a->count, 15)) a->timeout = 1;
    }
}

static void test_threadpool_shares(void) {
    static const int want[15] = {0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15, 10, 11, 9};
    fs_err e;
    fs_threadpool *p = fs_threadpool_new(2, &e);
    CHECK(p != NULL);
    if (!p) return;
    order_arg a;
    memset(&a, 0, sizeof a);
    fs_threadpool_for(p, 16, order_chunk, &a);
    CHECKF(!a.timeout, "thread pool order: a thread never came");
    if (!a.timeout) {
        CHECKF(a.worker_chunk == 8 && a.count == 15 && !memcmp(a.order, want, sizeof want),
               "thread pool order: worker took %d, thread 0 ran %d chunks, not 0..7 12 13 14 15 10 11 9",
               a.worker_chunk, a.count);
    }
    fs_threadpool_free(p);
}

/* A loop of more chunks than a share can number (2^24 - 1) runs as
 * several regions: every chunk index still comes exactly once (their
 * count and their sum). */
typedef struct { uint64_t calls, sum; } big_arg;
static void big_chunk(void *arg, int chunk, int tid) {
    (void)tid;
    big_arg *a = arg;
    __atomic_fetch_add(&a->calls, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&a->sum, (uint64_t)chunk, __ATOMIC_RELAXED);
}

static void test_threadpool_big(void) {
    fs_err e;
    fs_threadpool *p = fs_threadpool_new(2, &e);
    CHECK(p != NULL);
    if (!p) return;
    uint64_t n = 0xffffffu + 3;
    big_arg a = {0, 0};
    fs_threadpool_for(p, (int)n, big_chunk, &a);
    CHECKF(a.calls == n && a.sum == n * (n - 1) / 2, "thread pool, %llu chunks: %llu calls",
           (unsigned long long)n, (unsigned long long)a.calls);
    fs_threadpool_free(p);
}

static void test_threadpool(void) {
    for (int nth = 1; nth <= 5; nth++) {
        fs_err e;
        fs_threadpool *p = fs_threadpool_new(nth, &e);
        CHECK(p && fs_threadpool_size(p) == nth);
        if (!p) continue;
        int hits[257], wrong = 0;
        pool_arg a = {hits, nth, 0};
        for (int r = 0; r < 3000; r++) {
            int n = 1 + (r * 37) % 257;
            memset(hits, 0, sizeof hits);
            fs_threadpool_for(p, n, count_chunk, &a);
            for (int i = 0; i < n; i++) wrong += hits[i] != 1;
            for (int i = n; i < 257; i++) wrong += hits[i] != 0;
        }
        CHECKF(wrong == 0 && !a.bad_tid, "thread pool %d threads: %d chunks not run exactly once", nth, wrong);
        fs_threadpool_free(p);
    }
    test_threadpool_shares();
    test_threadpool_big();
    int i0, i1;
    fs_split_range(100, 16, 1, 3, &i0, &i1);
    CHECK(i0 == 32 && i1 == 64);
    fs_split_range(100, 16, 2, 3, &i0, &i1);
    CHECK(i0 == 64 && i1 == 100);
    CHECK(fs_default_threads() >= 1);
}

/* fs_cpu_pass_rows: a decode pass's chunks, one row count for all its
 * weights. For the Qwen3-0.6B passes in each weight format and several
 * thread counts: whole pairs of x8 groups, at least two chunks a thread,
 * about FS_DECODE_CHUNK_BYTES, and shares split by count that hold the
 * same rows wherever the sizes allow it (the q/k/v pass of Q4_0 once got
 * 9 chunks for 2 threads). */
static void test_pass_rows(void) {
    static const struct { int n, N[3]; size_t rb; int gap; } passes[] = {
        {3, {2048, 1024, 1024}, 576, 0},   /* q/k/v, Q4_0, K 1024 */
        {1, {1024}, 1152, 0},              /* o, Q4_0, K 2048 */
        {2, {3072, 3072}, 576, 0},         /* gate/up, Q4_0 */
        {1, {1024}, 1728, 0},              /* down, Q4_0, K 3072 */
        {3, {2048, 1024, 1024}, 1088, 0},  /* q/k/v, Q8_0 */
        {1, {1024}, 3264, 0},              /* down, Q8_0 */
        {3, {2048, 1024, 1024}, 2048, 0},  /* q/k/v, bf16 */
        {1, {1024}, 6144, 0},              /* down, bf16 */
        {1, {151936}, 576, -1},            /* lm_head, Q4_0 (-1: within one chunk) */
        {1, {151936}, 2048, -1},           /* lm_head, bf16 */
        {1, {40}, 64, -1},                 /* a small one: fewer rows than two chunks a thread */
    };
    for (size_t c = 0; c < sizeof passes / sizeof passes[0]; c++)
        for (int nth = 1; nth <= 16; nth *= 2) {
            int n = passes[c].n, R = fs_cpu_pass_rows(passes[c].N, n, passes[c].rb, nth), chunks = 0;
            long rows = 0, lo = -1, hi = 0;
            CHECKF(R > 0 && R % FS_DECODE_ALIGN == 0, "pass %zu, %d threads: %d rows", c, nth, R);
            if (R <= 0) continue;
            for (int i = 0; i < n; i++) chunks += (passes[c].N[i] + R - 1) / R, rows += passes[c].N[i];
            for (int t = 0; t < nth; t++) {   /* the pool's split by count, in rows */
                int a, b;
                long r = 0;
                fs_split_range(chunks, 1, t, nth, &a, &b);
                for (int i = 0, first = 0; i < n; i++) {
                    for (int k = first; k < first + (passes[c].N[i] + R - 1) / R; k++)
                        if (k >= a && k < b) r += (k - first + 1) * R <= passes[c].N[i] ? R : passes[c].N[i] - (k - first) * R;
                    first += (passes[c].N[i] + R - 1) / R;
                }
                if (lo < 0 || r < lo) lo = r;
                if (r > hi) hi = r;
            }
            long gap = passes[c].gap >= 0 ? passes[c].gap : R;
            if (rows >= 2L * nth * FS_DECODE_ALIGN) {
                CHECKF(chunks >= 2 * nth, "pass %zu, %d threads: %d chunks of %d rows", c, nth, chunks, R);
                if (nth <= 4) CHECKF(hi - lo <= gap, "pass %zu, %d threads: shares %ld .. %ld rows (R %d)", c, nth, lo, hi, R);
            }
            CHECKF((size_t)R * passes[c].rb <= 2 * FS_DECODE_CHUNK_BYTES || R == FS_DECODE_ALIGN,
                   "pass %zu: chunks of %zu bytes", c, (size_t)R * passes[c].rb);
        }
}

int main(void) {
    ref = open_reserved("cpu-ref", 0, 128);
    for (int th = 1; th <= 3; th++) {
        cpu[th] = open_reserved("cpu", th, 128);
        CHECK(cpu_ctx(cpu[th])->nth == th && !strcmp(cpu[th]->name, "cpu"));
    }
    fs_cpu_kernels k = fs_cpu_get_kernels(cpu_ctx(cpu[1])), none = {FS_ISA_SCALAR, 0, 0, 0, 0, 0, 0};
    isas[n_isas++] = (kernels){none, -1, FS_PF_T0};
    if (k.isa == FS_ISA_AVX2) {
        if (k.vnni || k.avx512) isas[n_isas++] = (kernels){{FS_ISA_AVX2, 0, 0, 0, 0, 0, 0}, FS_DK_AVX2, FS_PF_NTA};
        if (k.vnni && k.avx512) isas[n_isas++] = (kernels){{FS_ISA_AVX2, 1, 0, 0, 0, 0, 0}, FS_DK_VNNI, FS_PF_NONE};
        if (k.avx512) isas[n_isas++] = (kernels){{FS_ISA_AVX2, k.vnni, 1, 0, 0, 0, 0}, FS_DK_AVX512, FS_PF_NTA};
        if (k.bf16) isas[n_isas++] = (kernels){{FS_ISA_AVX2, k.vnni, 1, 1, 0, 0, 0}, FS_DK_AVX512_BF16, FS_PF_T0};
    }
    /* NEON below what the CPU has: without sdot (the smull decode and GEMM
     * tiles), with sdot but without smmla (the sdot GEMM tile) */
    if (k.isa == FS_ISA_NEON) {
        if (k.dotprod) isas[n_isas++] = (kernels){{FS_ISA_NEON, 0, 0, 0, 0, 0, 0}, FS_DK_NEON, FS_PF_NTA};
        if (k.i8mm) isas[n_isas++] = (kernels){{FS_ISA_NEON, 0, 0, 0, 0, 1, 0}, FS_DK_DOTPROD, FS_PF_NONE};
    }
    isas[n_isas++] = (kernels){k, -1, cpu_ctx(cpu[1])->plan[FS_DTYPE_BF16].prefetch};
    printf("kernels tested:");
    for (int s = 0; s < n_isas; s++) printf(" %s", kernels_name(s));
    printf("\n");
    test_threadpool();
    test_pass_rows();
    test_matmul();
    test_matmul_quant();
    test_fused();
    test_add_slabs();
    test_weight_arena();
    test_attention();
    test_vscale_max();
    test_rope_kv();
    test_exp8();
    test_rmsnorm();
    test_swiglu_add();
    test_x8_rows();
    test_q8_kernels();
    test_isa_env();
    test_split_bf16();
    test_amx_config();
    test_tune();
    test_no_alloc();
    for (int th = 1; th <= 3; th++) cpu[th]->destroy(cpu[th]);
    ref->destroy(ref);
    return TEST_SUMMARY();
}
