/* test_fast_ops.c - the fast CPU backend ("cpu") against the scalar
 * reference ("cpu-ref"), op by op, plus the thread pool.
 *
 * Every fast kernel runs on every ISA this machine has (the portable scalar
 * fallback always; AVX2 or NEON when present), with 1, 2 and 3 threads, on
 * shapes chosen to hit every tail (Q8_0 / Q4_0 weights too, see
 * check_matmul_quant for their bound): K = 1..69 odd (not multiples of the 8-
 * or 16-wide vector step), 1023, 1024, 3072; N not a multiple of the 4-row
 * GEMV block nor of the 16-row GEMM panel; T = 1, 2, 3 (GEMV), 5, 17, 64,
 * 130 (GEMM, with partial 6-token tiles); bf16, f16 and f32 weights.
 *
 * Tolerance of a dot product y = sum_k x_k w_k computed in f32 against the
 * double reference: with S = sum_k |x_k w_k| and u = 2^-24 (f32 unit
 * roundoff), any summation order has error <= K u S (worst case), and
 * random-like rounding gives ~sqrt(K) u S. The fast paths sum in 8- or
 * 16-lane partial sums and 256-wide K blocks, much better than the worst
 * case, so the test requires
 *       |y_fast - y_ref| <= 4 sqrt(K) u S + 1e-30
 * per element (the measured worst ratio is printed, well below 1).
 *
 * Docs: docs/forward.md
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

#include "cpu/fast.h"
#include "quant.h"
#include "test.h"

static uint64_t rng = 0x243f6a8885a308d3ull;
static double urand(void) { /* uniform [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static fs_backend *ref;                 /* "cpu-ref" */
static fs_backend *fast[4];             /* "cpu" with 1, 2, 3 threads ([1..3]) */
/* The kernel sets to run: scalar always, then the machine's SIMD ISA, and
 * on AVX2 machines with AVX-VNNI the AVX2 kernels both without and with it
 * (the last entry is the backend's own choice, restored after each run). */
typedef struct { fs_isa isa; int vnni; } kernels;
static kernels isas[3];
static int n_isas;

static void use_kernels(fs_backend *b, int s) {
    fast_ctx(b)->isa = isas[s].isa;
    fast_ctx(b)->vnni = isas[s].vnni;
}
static const char *kernels_name(int s) { return isas[s].vnni ? "avx2+avx-vnni" : fs_isa_name(isas[s].isa); }

static fs_buf *act(fs_backend *b, const float *host, size_t n) {
    fs_err e;
    fs_buf *buf = b->alloc(b, n, &e);
    if (!buf) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    b->write(b, buf, 0, host, n);
    return buf;
}

/* Random [N, K] weights of dtype dt (n = N * K elements), values uniform in
 * [-1, 1) before rounding or quantizing; deq (if not NULL) gets each
 * stored element's exact f32 (Q8_0 / Q4_0: dequantized). */
static void *rand_weight(fs_dtype dt, size_t n, float *deq, fs_tensor *t, int N, int K) {
    void *data;
    size_t nbytes;
    if (fs_dtype_is_quant(dt)) {
        size_t rb = fs_quant_row_bytes(dt, K);
        uint8_t *q = malloc(rb * (size_t)N);
        float *row = malloc(sizeof(float) * (size_t)K);
        for (int r = 0; r < N; r++) {
            uint8_t *qr = q + rb * (size_t)r;
            for (int k = 0; k < K; k++) row[k] = (float)urand();
            if (dt == FS_DTYPE_Q8_0) fs_quantize_row_q8_0(row, (fs_block_q8_0 *)qr, K);
            else fs_quantize_row_q4_0(row, (fs_block_q4_0 *)qr, K);
            if (deq && dt == FS_DTYPE_Q8_0) fs_dequantize_row_q8_0((const fs_block_q8_0 *)qr, deq + (size_t)r * K, K);
            else if (deq) fs_dequantize_row_q4_0((const fs_block_q4_0 *)qr, deq + (size_t)r * K, K);
        }
        free(row);
        data = q;
        nbytes = rb * (size_t)N;
    } else {
        size_t es = dt == FS_DTYPE_F32 ? 4 : 2;
        data = malloc(n * es + 1);
        for (size_t i = 0; i < n; i++) {
            float v = (float)urand(), d;
            if (dt == FS_DTYPE_F32) { ((float *)data)[i] = v; d = v; }
            else if (dt == FS_DTYPE_BF16) { uint16_t h = fs_f32_to_bf16(v); ((uint16_t *)data)[i] = h; d = fs_bf16_to_f32(h); }
            else { uint16_t h = fs_f32_to_f16(v); ((uint16_t *)data)[i] = h; d = fs_f16_to_f32(h); }
            if (deq) deq[i] = d;
        }
        nbytes = n * es;
    }
    memset(t, 0, sizeof *t);
    t->name = "test.weight";
    t->dtype = dt;
    t->ndim = 2;
    t->shape[0] = N;
    t->shape[1] = K;
    t->data = data;
    t->nbytes = nbytes;
    return data;
}

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
    ref->matmul(ref, xb, wb, yb, T, K, N);
    ref->read(ref, yb, 0, yr, ny);
    ref->free_buf(ref, xb); ref->free_buf(ref, yb); ref->free_buf(ref, wb);

    for (int th = 1; th <= 3; th++) {
        fs_backend *b = fast[th];
        for (int s = 0; s < n_isas; s++) {
            use_kernels(b, s);
            xb = act(b, x, nx);
            yb = b->alloc(b, ny, &e);
            wb = b->upload(b, &t, &e);
            for (size_t i = 0; i < ny; i++) yf[i] = NAN;
            b->write(b, yb, 0, yf, ny);   /* every output must be written */
            b->matmul(b, xb, wb, yb, T, K, N);
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
    }
    printf("matmul: worst error / tolerance = %.3f\n", worst_matmul_ratio);
}

/* Quantized weights (Q8_0, Q4_0). The reference dequantizes W exactly and
 * keeps x in f32; the fast path also quantizes x to Q8_0 (blocks of 32,
 * scale d_b = max|x_b| / 127 stored as f16), so x_k moves by at most
 * d_b / 2 from rounding q, plus 127 d_b 2^-11 from rounding d to f16:
 * < 0.57 d_b. Bound per output: sum_b 0.57 d_b sum_{k in b} |w_k|, plus
 * the f32 bound above. */
static void check_matmul_quant(int T, int K, int N, fs_dtype dt) {
    fs_err e;
    size_t nx = (size_t)T * K, nw = (size_t)N * K, ny = (size_t)T * N;
    float *x = malloc(sizeof(float) * nx), *deq = malloc(sizeof(float) * nw);
    float *yr = malloc(sizeof(float) * ny), *yf = malloc(sizeof(float) * ny);
    for (size_t i = 0; i < nx; i++) x[i] = (float)urand();
    fs_tensor t;
    void *wq = rand_weight(dt, nw, deq, &t, N, K);

    fs_buf *xb = act(ref, x, nx), *yb = ref->alloc(ref, ny, &e), *wb = ref->upload(ref, &t, &e);
    ref->matmul(ref, xb, wb, yb, T, K, N);
    ref->read(ref, yb, 0, yr, ny);
    ref->free_buf(ref, xb); ref->free_buf(ref, yb); ref->free_buf(ref, wb);
    /* Uploaded under the best ISA (which may repack W into the x8 layout,
     * src/cpu/repack.c), then run with each ISA: the scalar kernels must
     * read a repacked W too. */
    for (int th = 1; th <= 3; th++)
      for (int s = 0; s < n_isas; s++) {
        fs_backend *b = fast[th];
        xb = act(b, x, nx), yb = b->alloc(b, ny, &e), wb = b->upload(b, &t, &e);
        use_kernels(b, s);
        b->matmul(b, xb, wb, yb, T, K, N);
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
      }
    free(x); free(deq); free(yr); free(yf); free(wq);
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

/* matmul_n: several matmuls of one x in one parallel loop must give
 * exactly (bit for bit) what separate matmul calls give: the same kernels
 * run on the same chunks, x is only quantized once. Mixed weight dtypes,
 * N not a multiple of 8 (the row-by-row path next to the x8 one), decode
 * and prefill T. */
static void check_matmul_n(int T, int K, const fs_dtype *dts, const int *Ns, int n) {
    fs_err e;
    fs_tensor t[FS_MATMUL_N_MAX];
    void *data[FS_MATMUL_N_MAX];
    size_t nx = (size_t)T * K;
    float *x = malloc(sizeof(float) * nx);
    for (size_t i = 0; i < nx; i++) x[i] = (float)urand();
    for (int i = 0; i < n; i++) data[i] = rand_weight(dts[i], (size_t)Ns[i] * K, NULL, &t[i], Ns[i], K);
    for (int th = 1; th <= 3; th++)
        for (int s = 0; s < n_isas; s++) {
            fs_backend *b = fast[th];
            fs_buf *xb = act(b, x, nx), *W[FS_MATMUL_N_MAX], *y1[FS_MATMUL_N_MAX], *yn[FS_MATMUL_N_MAX];
            for (int i = 0; i < n; i++) {
                W[i] = b->upload(b, &t[i], &e);
                y1[i] = b->alloc(b, (size_t)T * Ns[i], &e);
                yn[i] = b->alloc(b, (size_t)T * Ns[i], &e);
            }
            use_kernels(b, s);
            for (int i = 0; i < n; i++) b->matmul(b, xb, W[i], y1[i], T, K, Ns[i]);
            b->matmul_n(b, xb, n, (const fs_buf *const *)W, yn, T, K, Ns);
            use_kernels(b, n_isas - 1);
            int diff = 0;
            for (int i = 0; i < n; i++) {
                size_t ny = (size_t)T * Ns[i];
                float *a = malloc(sizeof(float) * ny), *c = malloc(sizeof(float) * ny);
                b->read(b, y1[i], 0, a, ny);
                b->read(b, yn[i], 0, c, ny);
                if (memcmp(a, c, sizeof(float) * ny)) diff++;
                free(a); free(c);
                b->free_buf(b, W[i]); b->free_buf(b, y1[i]); b->free_buf(b, yn[i]);
            }
            b->free_buf(b, xb);
            CHECKF(diff == 0, "matmul_n T %d K %d n %d %s threads %d: %d of %d outputs differ from matmul", T, K, n,
                   kernels_name(s), th, diff, n);
        }
    for (int i = 0; i < n; i++) free(data[i]);
    free(x);
}

static void test_matmul_n(void) {
    static const fs_dtype mixed[3] = {FS_DTYPE_BF16, FS_DTYPE_Q8_0, FS_DTYPE_Q4_0};
    static const fs_dtype q4[3] = {FS_DTYPE_Q4_0, FS_DTYPE_Q4_0, FS_DTYPE_Q4_0};
    static const fs_dtype f[2] = {FS_DTYPE_F16, FS_DTYPE_F32};
    static const int Nm[3] = {24, 40, 19}, Nq[3] = {64, 8, 24}, Nf[2] = {17, 33};
    static const int Ts[] = {1, 2, 5, 37};
    for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++) {
        check_matmul_n(Ts[i], 64, mixed, Nm, 3);
        check_matmul_n(Ts[i], 1024, q4, Nq, 3);
        check_matmul_n(Ts[i], 96, f, Nf, 2);
    }
}

/* Repacked weights share arenas (backend_fast.c): buffers that are alive
 * at the same time must not overlap, and freeing some must not disturb the
 * others. Each weight's matmul result is recorded right after its upload
 * and must stay bit-identical while other weights come and go. */
static void test_weight_arena(void) {
    fs_err e;
    enum { NW = 24, K = 256 };
    fs_backend *b = fast[2];
    if (fast_ctx(b)->isa != FS_ISA_AVX2) return;   /* only AVX2 repacks */
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
            CHECKF(W[i] && W[i]->x8, "arena: upload %d", i);
            b->matmul(b, xb, W[i], yb, 1, K, N[i]);
            free(want[i]);
            want[i] = malloc(sizeof(float) * (size_t)N[i]);
            b->read(b, yb, 0, want[i], (size_t)N[i]);
        }
        for (int i = 0; i < NW; i++) {
            b->matmul(b, xb, W[i], yb, 1, K, N[i]);
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
            CHECKF(wf && wf->arena && wf->data != map && !memcmp(wf->data, big, tb.nbytes),
                   "arena: big file-backed bf16 weight copied");
            if (wf) b->free_buf(b, wf);
            fs_tensor tn = tf;   /* the first 1024 values as a norm weight */
            tn.ndim = 1;
            tn.shape[0] = 1024;
            tn.shape[1] = 0;
            tn.nbytes = 1024 * 2;
            fs_buf *wn = b->upload(b, &tn, &e);
            CHECKF(wn && !wn->arena && wn->data != map && !memcmp(wn->data, big, tn.nbytes),
                   "arena: 1-D file-backed weight copied to the heap");
            if (wn) b->free_buf(b, wn);
            munmap(map, tb.nbytes);
        }
        if (fd >= 0) close(fd);
        unlink(path);
        fs_buf *wb = b->upload(b, &tb, &e), *ws = b->upload(b, &ts, &e);
        CHECKF(wb && !wb->arena && wb->data == big, "arena: big weight in memory stays a view");
        CHECKF(ws && !ws->arena && ws->data == small, "arena: small weight stays a view");
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

/* Attention: f32 online softmax vs the double two-pass reference.
 * Outputs are convex combinations of V rows, so the error is measured
 * relative to max |v|; 5e-6 covers f32 exp and the accumulation over
 * up to ~300 keys (measured worst is printed). */
static void test_attention(void) {
    static const struct { int T, pos0, Hq, Hkv, D; } cs[] = {
        {1, 0, 2, 1, 2}, {1, 9, 4, 2, 6}, {5, 0, 4, 2, 64}, {17, 3, 3, 1, 128},
        {2, 130, 16, 8, 128}, {64, 100, 2, 2, 70}, {130, 0, 2, 1, 8}, {1, 300, 4, 4, 33},
        /* the tiled prefill path (AVX2, T >= 4, D % 16 == 0): partial key
         * panels, partial 6-query tiles, several 64-token slabs, pos0 > 0 */
        {4, 0, 2, 1, 16}, {71, 0, 16, 8, 128}, {150, 37, 4, 2, 64}, {9, 500, 6, 3, 32}};
    double worst_all = 0;
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        int T = cs[c].T, pos0 = cs[c].pos0, Hq = cs[c].Hq, Hkv = cs[c].Hkv, D = cs[c].D;
        int n_ctx = pos0 + T;
        size_t st = (size_t)Hkv * D + (size_t)(c % 3) * 8;   /* cache rows: unpadded, or padded by 8 or 16 */
        size_t nq = (size_t)T * Hq * D, nkv = (size_t)n_ctx * st;
        float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nkv), *v = malloc(sizeof(float) * nkv);
        float *or_ = malloc(sizeof(float) * nq), *of = malloc(sizeof(float) * nq);
        for (size_t i = 0; i < nq; i++) q[i] = (float)(urand() * 3);   /* peaky softmax too */
        for (size_t i = 0; i < nkv; i++)   /* the padding is never read: NaN */
            if (i % st < (size_t)Hkv * D) k[i] = (float)(urand() * 3), v[i] = (float)urand();
            else k[i] = v[i] = NAN;
        fs_err e;
        fs_buf *qb = act(ref, q, nq), *kb = act(ref, k, nkv), *vb = act(ref, v, nkv);
        fs_buf *ob = ref->alloc(ref, nq, &e), *sb = ref->alloc(ref, (size_t)n_ctx, &e);
        ref->attention(ref, qb, kb, vb, st, ob, sb, T, pos0, Hq, Hkv, D);
        ref->read(ref, ob, 0, or_, nq);
        ref->free_buf(ref, qb); ref->free_buf(ref, kb); ref->free_buf(ref, vb);
        ref->free_buf(ref, ob); ref->free_buf(ref, sb);
        for (int th = 1; th <= 3; th++)
            for (int s = 0; s < n_isas; s++) {
                fs_backend *b = fast[th];
                use_kernels(b, s);
                qb = act(b, q, nq), kb = act(b, k, nkv), vb = act(b, v, nkv);
                ob = b->alloc(b, nq, &e), sb = b->alloc(b, (size_t)n_ctx, &e);
                b->attention(b, qb, kb, vb, st, ob, sb, T, pos0, Hq, Hkv, D);
                b->read(b, ob, 0, of, nq);
                double worst = 0;
                for (size_t i = 0; i < nq; i++) {
                    double d = fabs((double)of[i] - or_[i]);
                    if (!(d <= worst)) worst = d;
                }
                if (worst > worst_all) worst_all = worst;
                CHECKF(worst <= 5e-6, "attention T %d pos0 %d Hq %d Hkv %d D %d %s threads %d: err %g", T, pos0,
                       Hq, Hkv, D, kernels_name(s), th, worst);
                b->free_buf(b, qb); b->free_buf(b, kb); b->free_buf(b, vb);
                b->free_buf(b, ob); b->free_buf(b, sb);
                use_kernels(b, n_isas - 1);
            }
        free(q); free(k); free(v); free(or_); free(of);
    }
    printf("attention: worst abs error %.3g (|v| <= 1)\n", worst_all);
}

/* rope: the same f32 arithmetic as the reference, so bit-identical. */
static void test_rope(void) {
    static const struct { int T, heads, D, pos0; } cs[] = {{1, 1, 2, 0}, {5, 3, 6, 7}, {17, 8, 128, 1000}, {3, 2, 64, 40000}};
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        size_t n = (size_t)cs[c].T * cs[c].heads * cs[c].D;
        float *x = malloc(sizeof(float) * n), *a = malloc(sizeof(float) * n), *f = malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) x[i] = (float)urand();
        fs_buf *xb = act(ref, x, n);
        ref->rope(ref, xb, cs[c].T, cs[c].heads, cs[c].D, cs[c].pos0, 1e6);
        ref->read(ref, xb, 0, a, n);
        ref->free_buf(ref, xb);
        for (int th = 1; th <= 3; th++) {
            xb = act(fast[th], x, n);
            fast[th]->rope(fast[th], xb, cs[c].T, cs[c].heads, cs[c].D, cs[c].pos0, 1e6);
            fast[th]->read(fast[th], xb, 0, f, n);
            fast[th]->free_buf(fast[th], xb);
            CHECKF(memcmp(a, f, sizeof(float) * n) == 0, "rope case %zu threads %d differs from the reference", c, th);
        }
        free(x); free(a); free(f);
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
            uint32_t *w = malloc(sizeof(uint32_t) * (size_t)n);
            for (size_t i = 0; i < nx; i++) x[i] = (float)(urand() * 6);
            for (int i = 0; i < n; i++) {
                float v = (float)(1 + urand());
                if (wts[d] == FS_DTYPE_BF16) ((uint16_t *)w)[i] = fs_f32_to_bf16(v);
                else if (wts[d] == FS_DTYPE_F16) ((uint16_t *)w)[i] = fs_f32_to_f16(v);
                else ((float *)w)[i] = v;
            }
            fs_tensor t;
            memset(&t, 0, sizeof t);
            t.name = "norm.weight";
            t.dtype = wts[d];
            t.ndim = 1;
            t.shape[0] = n;
            t.data = w;
            t.nbytes = (size_t)n * (wts[d] == FS_DTYPE_F32 ? 4 : 2);
            fs_err e;
            fs_buf *xb = act(ref, x, nx), *wb = ref->upload(ref, &t, &e), *yb = ref->alloc(ref, nx, &e);
            ref->rmsnorm(ref, xb, wb, yb, rows, n, 1e-6f);
            ref->read(ref, yb, 0, a, nx);
            ref->free_buf(ref, xb); ref->free_buf(ref, wb); ref->free_buf(ref, yb);
            fs_backend *b = fast[2];
            xb = act(b, x, nx), wb = b->upload(b, &t, &e);
            b->rmsnorm(b, xb, wb, xb, rows, n, 1e-6f);   /* in place, as forward.c's q/k norm */
            b->read(b, xb, 0, f, nx);
            b->free_buf(b, xb); b->free_buf(b, wb);
            int bad = 0;
            for (size_t i = 0; i < nx; i++) bad += !(fabs((double)f[i] - a[i]) <= 3 * ldexp(fabs((double)a[i]), -23) + 1e-38);
            CHECKF(bad == 0, "rmsnorm rows %d n %d %s: %d values beyond 3 ulp", rows, n, fs_dtype_name(wts[d]), bad);
            free(x); free(a); free(f); free(w);
        }
}

/* add: the same f32 additions, bit-identical, for lengths around the
 * vector width and the threading chunk. */
static void test_add(void) {
    static const size_t ns[] = {1, 7, 16, 1023, 1024, 65536, 65537, 200003};
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        size_t n = ns[c];
        float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
        float *a = malloc(sizeof(float) * n), *f = malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) x[i] = (float)(urand() * 10), y[i] = (float)urand();
        fs_buf *xb = act(ref, x, n), *yb = act(ref, y, n);
        ref->add(ref, xb, yb, n);
        ref->read(ref, xb, 0, a, n);
        ref->free_buf(ref, xb); ref->free_buf(ref, yb);
        for (int th = 1; th <= 3; th++)
            for (int s = 0; s < n_isas; s++) {
                fs_backend *b = fast[th];
                use_kernels(b, s);
                xb = act(b, x, n), yb = act(b, y, n);
                b->add(b, xb, yb, n);
                b->read(b, xb, 0, f, n);
                b->free_buf(b, xb); b->free_buf(b, yb);
                CHECKF(memcmp(a, f, sizeof(float) * n) == 0, "add n %zu threads %d %s differs from the reference", n, th,
                       kernels_name(s));
                use_kernels(b, n_isas - 1);
            }
        free(x); free(y); free(a); free(f);
    }
}

/* swiglu: f32 expf vs double exp: a few ulp of the result. */
static void test_swiglu(void) {
    static const size_t ns[] = {1, 7, 4096, 4097, 20000};
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        size_t n = ns[c];
        float *g = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n);
        float *a = malloc(sizeof(float) * n), *f = malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) g[i] = (float)(urand() * 20), u[i] = (float)(urand() * 4);
        fs_err e;
        fs_buf *gb = act(ref, g, n), *ub = act(ref, u, n), *ob = ref->alloc(ref, n, &e);
        ref->swiglu(ref, gb, ub, ob, n);
        ref->read(ref, ob, 0, a, n);
        ref->free_buf(ref, gb); ref->free_buf(ref, ub); ref->free_buf(ref, ob);
        for (int th = 1; th <= 3; th++) {
            fs_backend *b = fast[th];
            gb = act(b, g, n), ub = act(b, u, n);
            b->swiglu(b, gb, ub, gb, n);   /* in place, as forward.c calls it */
            b->read(b, gb, 0, f, n);
            b->free_buf(b, gb); b->free_buf(b, ub);
            double worst = 0;
            for (size_t i = 0; i < n; i++) {
                double d = fabs((double)f[i] - a[i]) / (fabs((double)a[i]) + 1e-30);
                if (fabs((double)a[i]) < 1e-30) d = fabs((double)f[i]);
                if (!(d <= worst)) worst = d;
            }
            CHECKF(worst <= 1e-6, "swiglu n %zu threads %d: rel err %g", n, th, worst);
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
    if (fs_fast_detect_isa() != FS_ISA_AVX2) return;
    double worst = 0;
    int bad_clamp = 0;
    exp8_range(&worst, &bad_clamp);
    CHECKF(worst <= 3.0, "fs_exp8: %.2f ulp from exp", worst);
    CHECKF(bad_clamp == 0, "fs_exp8: %d clamped results not finite and positive", bad_clamp);
    printf("exp8: worst %.2f ulp\n", worst);
}
#else
static void test_exp8(void) {}
#endif

/* The pool: every chunk runs exactly once, on a valid tid, across many
 * back-to-back regions of different sizes (a late thread never runs a
 * chunk of the wrong region, threadpool.c). */
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

static void test_names(void) {
    fs_err e;
    fs_backend *b = fs_backend_new("cpu", &e);
    CHECK(b && !strcmp(b->name, "cpu"));
    if (b) b->destroy(b);
    b = fs_backend_new_opts(NULL, 3, &e);
    CHECK(b && !strcmp(b->name, "cpu") && fast_ctx(b)->nth == 3);
    if (b) b->destroy(b);
    b = fs_backend_new("cpu-ref", &e);
    CHECK(b && !strcmp(b->name, "cpu-ref"));
    if (b) b->destroy(b);
    CHECK(fs_backend_new("gpu", &e) == NULL && strstr(e.msg, "cpu-ref"));
}

int main(void) {
    fs_err e;
    ref = fs_backend_cpu_new(&e);
    for (int th = 1; th <= 3; th++) {
        fast[th] = fs_backend_fast_new(th, &e);
        if (!ref || !fast[th]) { fprintf(stderr, "%s\n", e.msg); return 1; }
    }
    fs_fast *f = fast_ctx(fast[1]);
    isas[n_isas++] = (kernels){FS_ISA_SCALAR, 0};
    if (f->isa != FS_ISA_SCALAR && f->vnni) isas[n_isas++] = (kernels){f->isa, 0};
    if (f->isa != FS_ISA_SCALAR) isas[n_isas++] = (kernels){f->isa, f->vnni};
    printf("kernels tested:");
    for (int s = 0; s < n_isas; s++) printf(" %s", kernels_name(s));
    printf("\n");
    test_threadpool();
    test_matmul();
    test_matmul_quant();
    test_matmul_n();
    test_weight_arena();
    test_attention();
    test_rope();
    test_exp8();
    test_rmsnorm();
    test_swiglu();
    test_add();
    test_x8_rows();
    test_names();
    for (int th = 1; th <= 3; th++) fast[th]->destroy(fast[th]);
    ref->destroy(ref);
    return TEST_SUMMARY();
}
