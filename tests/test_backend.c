/* test_backend.c - every op of every backend against the reference
 * backend ("cpu-ref"), through backend.h alone.
 *
 *   test_backend [NAME[:ISA] ...]
 *
 * NAME is what fs_backend_open takes ("cpu", "cuda", ...); ":ISA" sets
 * FS_ISA before opening (the CPU backend's kernel choice). Without
 * arguments: "cpu" under FS_ISA=scalar, avx2, avx-vnni, avx512 (x86),
 * neon, dotprod (aarch64: the other architecture's names do not open) and
 * the machine's own choice (with AMX where the CPU has it; a variant whose
 * describe() line repeats an earlier one is not run twice), then "cuda". A backend that does not open is reported as
 * "NAME: skipped (reason)" and does not fail the test. Nothing here knows
 * a backend's internals, so a new backend runs it unchanged.
 *
 * Each backend instance (and its reference twin) is reserved once, for the
 * largest shapes, before its first op. Every case draws fresh random inputs
 * (never zeros), writes NaN into every output first (through write), runs
 * the op on both backends and compares. Shapes include tails that are not
 * multiples of any tile: T in {1, 2, 3, 5, 7, 17, 64, 130}; K and N odd
 * multiples of 32 for quantized weights, anything for float ones; D in
 * {32, 64, 128}; GQA groups 1, 2, 4; attention at pos0 0 and after earlier
 * steps, with the positions before pos0 written by earlier rope_kv calls.
 * Batched steps (continuous batching): steps that mix 2-5 sequences, each
 * with its own cache (of its own size), some with a prompt of many tokens
 * and some with one, in any order; rope_kv must store each token in its
 * own sequence's cache and attention read the right cache up to the
 * right position (later steps read what earlier ones stored).
 *
 * Tolerances. u = 2^-24 (f32 unit roundoff). A dot product of length K,
 * S = sum_k |in_k w_k| (in = the matmul's input after its rmsnorm / SwiGLU):
 *
 *   regime  who                                     bound on |y - y_ref|
 *   F32     f32 accumulation (SIMD lanes, K blocks)  4 sqrt(K) u S
 *   Q8ACT   the input quantized to Q8_0 (the CPU's   F32 + sum_b 0.57 (amax_b / 127) sum_{k in b} |w_k|
 *           quantized matmuls): per block b the input moves by at most
 *           half a step d_b / 2 plus 127 d_b 2^-11 (d_b rounded to f16)
 *   BF16    input and weights rounded to bf16        F32 + 2^-8 S
 *           (tensor cores): each by <= 2^-9 relative
 *
 * An input read through rmsnorm or SwiGLU also allows 4 u S: the
 * transform itself may round differently by a few ulp per element (the
 * CPU's SwiGLU takes e^x in f32, within 1.25 ulp, where the reference uses
 * double). An added output (the residual) also allows one rounding of the
 * sum, u (|y0| + |y|). Whatever its regime, a decode step (T = 1) with float
 * weights must stay within 1e-4 S of the reference on every backend.
 * Which regime a backend's matmul runs in is declared in the table
 * regimes[] below (per backend name, weight kind and T); a backend not
 * listed is held to F32 (float weights) and Q8ACT (quantized).
 *
 *   op          bound
 *   embed       exact (a gather: every stored value is exact in f32)
 *   rmsnorm     (4 + sqrt(n)) u |y_ref|              (the scale's sum of squares)
 *   rope_kv     (8 + sqrt(D) if normed) u |pair|      per (x_i, x_i+D/2) pair, |pair| its length
 *   attention   F32: 5e-6 max|v|   BF16: 1e-2 max|v|  (outputs are convex combinations of v rows;
 *               BF16 rounds q, k, the probabilities and v: measured on
 *               the H200, 2026-12-04, up to 5.8e-3 max|v| at T 64-130,
 *               D 64/128). A step that mixes sequences is the op
 *               "attention (mixed)" in regimes[].
 *   attention with f16 KV caches (both sides f16): + 4e-4 max|v| (F16_KV_ATTN:
 *               the two sides' K differ by f32 rounding before they are
 *               rounded to f16, so an element may land on the next f16)
 *   copy        exact
 *   argmax      exact: the lowest index on ties, -1 if any NaN
 *
 * The worst error seen is printed per op and dtype, as a fraction of its
 * bound and relative to its scale, so the numbers above can be checked
 * against measurement.
 *
 * Docs: docs/testing.md, docs/forward.md
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "backend.h"
#include "quant.h"
#include "test.h"

#define U 0x1p-24
/* attention with f16 caches, on top of the F32 / BF16 bound, in max|v|.
 * Both sides round the same V (rope_kv does not touch it) to the same f16;
 * K leaves the QK-norm a few f32 ulp apart, so an element may round to the
 * neighbouring f16 on one side: that moves a score by at most
 * 2^-11 |q_d k_d| / sqrt(D) (here |q_d|, |k_d| <= ~2.5 after the norm:
 * <= 3.8e-4 at D 64), and an output by about that times max|v|. Measured
 * 2026-12-04 on the Xeon (AVX2, AVX-512, AMX sets): worst 7.5e-7 max|v|,
 * the same as with f32 caches - no flip seen. */
#define F16_KV_ATTN 4e-4

typedef enum { R_F32, R_Q8ACT, R_BF16 } regime;
static const char *const regime_name[] = {"F32", "Q8ACT", "BF16"};

/* How each backend's matmul and attention round, by name, weight kind
 * (0 float, 1 quantized, -1 any) and the call's T (rows with min_T <= T);
 * the first row that matches wins. */
static const struct {
    const char *backend, *op;
    int quant, min_T;
    regime r;
} regimes[] = {
    /* every CPU kernel set: AVX-512's vdpbf16ps and the AMX tiles take the
     * f32 input as three bf16 parts that sum to it exactly, so they are
     * f32 dot products too (src/cpu/matmul_amx.c) */
    {"cpu", "matmul", 0, 1, R_F32},
    {"cpu", "matmul", 1, 1, R_Q8ACT},
    {"cpu", "attention", -1, 1, R_F32},
    {"cuda", "matmul", 0, 2, R_BF16},     /* prefill on tensor cores */
    {"cuda", "matmul", 1, 2, R_BF16},
    {"cuda", "matmul", 1, 1, R_F32},      /* decode: f32 input, each weight d * q exactly */
    {"cuda", "attention", -1, 2, R_BF16},   /* a prompt (one sequence) on tensor cores; mixed steps: f32 */
};

static regime regime_of(const char *backend, const char *op, int quant, int T) {
    for (size_t i = 0; i < sizeof regimes / sizeof regimes[0]; i++)
        if (!strcmp(regimes[i].backend, backend) && !strcmp(regimes[i].op, op) &&
            (regimes[i].quant < 0 || regimes[i].quant == quant) && T >= regimes[i].min_T)
            return regimes[i].r;
    return quant > 0 ? R_Q8ACT : R_F32;
}

/* ---- random data ---- */

static uint64_t rng = 0x853c49e6748fea9bull;
static double urand(void) { /* uniform [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}
static void fill(float *x, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(urand() * scale);
}
/* Positive, away from zero: norm weights. */
static void fill_pos(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(1.0 + 0.5 * urand());
}

/* A tensor of dtype dt holding rows x K random values (scaled); deq gets
 * each stored element as f32. data is malloc'd: free(t->data). */
static void make_tensor(fs_tensor *t, fs_dtype dt, int rows, int K, int ndim, const float *vals, float *deq) {
    size_t rb = fs_dtype_row_bytes(dt, K);
    uint8_t *data = malloc(rb * (size_t)rows);
    for (int r = 0; r < rows; r++) {
        const float *v = vals + (size_t)r * K;
        uint8_t *dst = data + (size_t)r * rb;
        for (int k = 0; k < K; k++) {
            if (dt == FS_DTYPE_F32) memcpy(dst + 4 * (size_t)k, &v[k], 4);
            else if (dt == FS_DTYPE_BF16 || dt == FS_DTYPE_F16) {
                uint16_t h = dt == FS_DTYPE_BF16 ? fs_f32_to_bf16(v[k]) : fs_f32_to_f16(v[k]);
                memcpy(dst + 2 * (size_t)k, &h, 2);
            }
        }
        if (dt == FS_DTYPE_Q8_0) fs_quantize_row_q8_0(v, (fs_block_q8_0 *)dst, K);
        if (dt == FS_DTYPE_Q4_0) fs_quantize_row_q4_0(v, (fs_block_q4_0 *)dst, K);
    }
    memset(t, 0, sizeof *t);
    t->name = "test.weight";
    t->dtype = dt;
    t->ndim = ndim;
    t->shape[0] = ndim == 2 ? rows : K;
    t->shape[1] = ndim == 2 ? K : 0;
    t->data = data;
    t->nbytes = rb * (size_t)rows;
    for (size_t i = 0; i < (size_t)rows * (size_t)K; i++) deq[i] = fs_tensor_get_f32(t, i);
}

/* ---- the two backends ---- */

#define MAX_T 130      /* tokens of one step, at most */
#define MAX_SEQS 5     /* sequences of one step, at most */

static fs_backend *ref, *be;   /* the reference, the backend under test */
static fs_dtype kv_dtype;      /* both sides' KV caches: F32, then F16 (--kv f16) */
static const char *be_name;    /* its fs_backend_open name (regimes[] key) */

static fs_buf *put(fs_backend *b, const float *host, size_t n) {
    fs_err e;
    fs_buf *buf = b->alloc(b, n, &e);
    if (!buf) { fprintf(stderr, "%s: %s\n", b->name, e.msg); exit(1); }
    b->write(b, buf, 0, host, n);
    return buf;
}
static fs_buf *nan_buf(fs_backend *b, size_t n) {
    float *h = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    fs_buf *buf = put(b, h, n);
    free(h);
    return buf;
}
static fs_buf *upload(fs_backend *b, const fs_tensor *t) {
    fs_err e;
    fs_buf *buf = b->upload(b, t, &e);
    if (!buf) { fprintf(stderr, "%s: %s\n", b->name, e.msg); exit(1); }
    return buf;
}
static void get(fs_backend *b, const fs_buf *buf, float *host, size_t n) {
    b->sync(b);
    b->read(b, buf, 0, host, n);
}
/* The step of T tokens of one sequence at positions pos0 .. pos0 + T - 1. */
static void set_seq_step(fs_backend *b, const int *ids, int T, int pos0) {
    int pos[MAX_T], seq[MAX_T] = {0};
    for (int t = 0; t < T; t++) pos[t] = pos0 + t;
    b->set_step(b, &(fs_step){T, ids, pos, seq, 1});
}

/* ---- the worst errors, per op and dtype ---- */

typedef struct {
    char op[32];
    int dt, reg;       /* dt -1: no weight */
    double ratio, rel;  /* worst error / bound, worst error / scale */
    int cases, bad;
} stat;
static stat stats[64];
static int n_stats;

/* Record one compared element: err, its bound and its scale. Returns 1 if
 * within the bound (a NaN is not). */
static int note(const char *op, int dt, regime reg, double err, double bound, double scale) {
    stat *s = NULL;
    for (int i = 0; i < n_stats; i++)
        if (!strcmp(stats[i].op, op) && stats[i].dt == dt && stats[i].reg == (int)reg) s = &stats[i];
    if (!s && n_stats < 64) {
        s = &stats[n_stats++];
        memset(s, 0, sizeof *s);
        snprintf(s->op, sizeof s->op, "%s", op);
        s->dt = dt, s->reg = reg;
    }
    int ok = err <= bound;
    if (s) {
        double r = bound > 0 ? err / bound : (err > 0 ? INFINITY : 0), q = scale > 0 ? err / scale : 0;
        if (!(r <= s->ratio)) s->ratio = r;
        if (!(q <= s->rel)) s->rel = q;
        s->cases++;
        s->bad += !ok;
    }
    return ok;
}

static void print_stats(void) {
    printf("  %-18s %-5s %-6s %8s %12s %12s\n", "op", "dtype", "regime", "values", "worst/bound", "worst/scale");
    for (int i = 0; i < n_stats; i++)
        printf("  %-18s %-5s %-6s %8d %12.3g %12.3g%s\n", stats[i].op, stats[i].dt < 0 ? "-" : fs_dtype_name(stats[i].dt),
               regime_name[stats[i].reg], stats[i].cases, stats[i].ratio, stats[i].rel, stats[i].bad ? "  FAILED" : "");
    n_stats = 0;
}

/* ---- matmul ---- */

static const fs_dtype all_dtypes[] = {FS_DTYPE_F32, FS_DTYPE_F16, FS_DTYPE_BF16, FS_DTYPE_Q8_0, FS_DTYPE_Q4_0};

/* n linear layers of one input [T, K] in one call; form 0 plain, 1 rmsnorm'd,
 * 2 SwiGLU'd; add[i]: output i is added to. */
static void case_matmul(int T, int K, int n, const fs_dtype *dts, const int *Ns, int form, const int *add) {
    size_t nx = (size_t)T * K;
    float *x = malloc(sizeof(float) * nx), *up = malloc(sizeof(float) * nx), *nw = malloc(sizeof(float) * K);
    double *in = malloc(sizeof(double) * nx);
    fill(x, nx, 2.0);
    fill(up, nx, 2.0);
    fill_pos(nw, (size_t)K);
    fs_tensor nt;
    float *nwd = malloc(sizeof(float) * K);
    make_tensor(&nt, FS_DTYPE_BF16, 1, K, 1, nw, nwd);
    /* the input the layers read, in double (for the bounds) */
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * K;
        double ss = 0;
        for (int k = 0; k < K; k++) ss += (double)xt[k] * xt[k];
        double scale = 1.0 / sqrt(ss / K + 1e-6);
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            in[i] = form == 0 ? x[i] : form == 1 ? xt[k] * scale * nwd[k] : x[i] / (1.0 + exp(-(double)x[i])) * up[i];
        }
    }
    fs_tensor wt[FS_MATMUL_MAX];
    float *wd[FS_MATMUL_MAX], *y0[FS_MATMUL_MAX];
    for (int i = 0; i < n; i++) {
        size_t nw_ = (size_t)Ns[i] * K;
        float *vals = malloc(sizeof(float) * nw_);
        wd[i] = malloc(sizeof(float) * nw_);
        fill(vals, nw_, 1.0);
        make_tensor(&wt[i], dts[i], Ns[i], K, 2, vals, wd[i]);
        free(vals);
        y0[i] = malloc(sizeof(float) * (size_t)T * Ns[i]);
        fill(y0[i], (size_t)T * Ns[i], 4.0);
    }
    float *yr[FS_MATMUL_MAX], *yb[FS_MATMUL_MAX];
    for (int side = 0; side < 2; side++) {
        fs_backend *b = side ? be : ref;
        fs_buf *xb = put(b, x, nx), *ub = put(b, up, nx), *nb = upload(b, &nt), *W[FS_MATMUL_MAX];
        fs_linear out[FS_MATMUL_MAX];
        for (int i = 0; i < n; i++) {
            size_t ny = (size_t)T * Ns[i];
            W[i] = upload(b, &wt[i]);
            out[i] = (fs_linear){W[i], add[i] ? put(b, y0[i], ny) : nan_buf(b, ny), Ns[i], add[i]};
        }
        fs_mm_in mi = {xb, form == 1 ? nb : NULL, 1e-6f, form == 2 ? ub : NULL};
        b->matmul(b, &mi, T, K, out, n);
        for (int i = 0; i < n; i++) {
            float *y = malloc(sizeof(float) * (size_t)T * Ns[i]);
            get(b, out[i].y, y, (size_t)T * Ns[i]);
            (side ? yb : yr)[i] = y;
            b->free_buf(b, out[i].y);
            b->free_buf(b, W[i]);
        }
        b->free_buf(b, xb); b->free_buf(b, ub); b->free_buf(b, nb);
    }
    for (int i = 0; i < n; i++) {
        int q = fs_dtype_is_quant(dts[i]);
        regime reg = regime_of(be_name, "matmul", q, T);
        int bad = 0;
        for (int t = 0; t < T; t++)
            for (int o = 0; o < Ns[i]; o++) {
                const double *it = in + (size_t)t * K;
                const float *w = wd[i] + (size_t)o * K;
                double S = 0, q8 = 0;
                for (int k = 0; k < K; k++) S += fabs(it[k] * w[k]);
                for (int k0 = 0; q && k0 + 32 <= K; k0 += 32) {
                    double amax = 0, ws = 0;
                    for (int k = k0; k < k0 + 32; k++) amax = fmax(amax, fabs(it[k])), ws += fabs(w[k]);
                    q8 += 0.57 * amax / 127.0 * ws;
                }
                size_t j = (size_t)t * Ns[i] + o;
                double bound = (4.0 * sqrt((double)K) + (form ? 4.0 : 0.0)) * U * S + 1e-30;
                if (reg == R_Q8ACT) bound += q8;
                if (reg == R_BF16) bound += 0x1p-8 * S;
                if (add[i]) bound += U * (fabs(y0[i][j]) + fabs(yr[i][j]));
                double err = fabs((double)yb[i][j] - yr[i][j]);
                char op[24];
                snprintf(op, sizeof op, "matmul%s%s", form == 1 ? "+norm" : form == 2 ? "+swiglu" : "", add[i] ? "+add" : "");
                if (!note(op, dts[i], reg, err, bound, S)) bad++;
                if (T == 1 && !q && !(err <= 1e-4 * S + 1e-30)) bad++;   /* every backend's decode */
            }
        CHECKF(bad == 0, "%s: matmul T %d K %d N %d %s form %d add %d (%d of %d): %d outside the %s bound", be->name, T, K,
               Ns[i], fs_dtype_name(dts[i]), form, add[i], i + 1, n, bad, regime_name[reg]);
        free(yr[i]); free(yb[i]); free(wd[i]); free(y0[i]); free((void *)wt[i].data);
    }
    free((void *)nt.data);
    free(x); free(up); free(nw); free(nwd); free(in);
}

static void test_matmul(void) {
    static const int Ts[] = {1, 2, 3, 5, 7, 17, 64, 130};
    static const int Kf[] = {1, 7, 64, 129, 300, 1027}, Nf[] = {1, 5, 17, 33, 70, 16};
    static const int Kq[] = {32, 96, 160, 352, 1056}, Nq[] = {8, 24, 5, 40, 17, 64, 33};
    static const int no_add[FS_MATMUL_MAX] = {0};
    int c = 0;
    for (int d = 0; d < 5; d++)
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
            for (int form = 0; form < 3; form++, c++) {
                int q = fs_dtype_is_quant(all_dtypes[d]);
                int r = c / 3 + 2 * form;   /* each form walks through every K and N */
                int K = q ? Kq[r % 5] : Kf[r % 6], N = q ? Nq[(5 * r) % 7] : Nf[(5 * r) % 6], add[1] = {r % 2};
                case_matmul(Ts[ti], K, 1, &all_dtypes[d], &N, form, add);
            }
    /* several layers of one input (q/k/v, gate/up), mixed dtypes, some added */
    static const fs_dtype mixed[4] = {FS_DTYPE_Q4_0, FS_DTYPE_BF16, FS_DTYPE_Q8_0, FS_DTYPE_F32};
    static const int Ns[4] = {40, 8, 17, 24}, adds[4] = {0, 1, 0, 1};
    for (int n = 1; n <= FS_MATMUL_MAX; n++)
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti += 2)
            case_matmul(Ts[ti], 96, n, mixed, Ns, (n + (int)ti) % 3, adds);
    /* an lm_head-like decode (many chunks), and a wide added output of a prompt */
    int Nbig = 1000, add1[1] = {1}, Nwide = 1100;
    case_matmul(1, 352, 1, &all_dtypes[4], &Nbig, 1, no_add);
    case_matmul(1, 352, 1, &all_dtypes[2], &Nbig, 1, no_add);
    case_matmul(130, 32, 1, &all_dtypes[1], &Nwide, 0, add1);
    case_matmul(130, 32, 1, &all_dtypes[3], &Nwide, 2, add1);
}

/* ---- embed, rmsnorm, copy, argmax ---- */

static void test_embed(void) {
    int V = 53, H = 96, ids[130];
    for (int d = 0; d < 5; d++)
        for (int T = 1; T <= 130; T = T * 3 + 4) {
            float *vals = malloc(sizeof(float) * V * H), *deq = malloc(sizeof(float) * V * H);
            float *o = malloc(sizeof(float) * T * H);
            fill(vals, (size_t)V * H, 2.0);
            fs_tensor t;
            make_tensor(&t, all_dtypes[d], V, H, 2, vals, deq);
            for (int i = 0; i < T; i++) ids[i] = (int)((unsigned)(i * 31 + d * 7) % (unsigned)V);
            fs_buf *tb = upload(be, &t), *ob = nan_buf(be, (size_t)T * H);
            set_seq_step(be, ids, T, 0);
            be->embed(be, tb, H, ob);
            get(be, ob, o, (size_t)T * H);
            int bad = 0;
            for (int i = 0; i < T; i++)
                for (int k = 0; k < H; k++)
                    bad += !note("embed", all_dtypes[d], R_F32, fabs(o[i * H + k] - deq[(size_t)ids[i] * H + k]), 0, 1);
            CHECKF(bad == 0, "%s: embed %s T %d: %d values differ", be->name, fs_dtype_name(all_dtypes[d]), T, bad);
            be->free_buf(be, tb); be->free_buf(be, ob);
            free(vals); free(deq); free(o); free((void *)t.data);
        }
}

static void test_rmsnorm(void) {
    static const int shapes[][2] = {{1, 1024}, {130, 96}, {3, 7}, {5, 33}, {17, 128}, {2, 3072}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
        for (int d = 0; d < 3; d++) {
            int rows = shapes[c][0], n = shapes[c][1];
            size_t nx = (size_t)rows * n;
            float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * n), *wd = malloc(sizeof(float) * n);
            float *yr = malloc(sizeof(float) * nx), *yb = malloc(sizeof(float) * nx);
            fill(x, nx, 3.0);
            fill_pos(w, (size_t)n);
            fs_tensor t;
            make_tensor(&t, all_dtypes[d], 1, n, 1, w, wd);
            float eps = c % 2 ? 0.25f : 1e-6f;   /* a large eps too, so a forgotten one cannot hide */
            for (int side = 0; side < 2; side++) {
                fs_backend *b = side ? be : ref;
                fs_buf *xb = put(b, x, nx), *wb = upload(b, &t), *yb_ = nan_buf(b, nx);
                b->rmsnorm(b, xb, wb, c % 3 ? yb_ : xb, rows, n, eps);   /* in place too */
                get(b, c % 3 ? yb_ : xb, side ? yb : yr, nx);
                b->free_buf(b, xb); b->free_buf(b, wb); b->free_buf(b, yb_);
            }
            int bad = 0;
            for (size_t i = 0; i < nx; i++) {
                double err = fabs((double)yb[i] - yr[i]);
                bad += !note("rmsnorm", all_dtypes[d], R_F32, err, (4 + sqrt((double)n)) * U * fabs(yr[i]) + 1e-37, fabs(yr[i]));
            }
            CHECKF(bad == 0, "%s: rmsnorm rows %d n %d %s: %d values beyond the bound", be->name, rows, n,
                   fs_dtype_name(all_dtypes[d]), bad);
            free(x); free(w); free(wd); free(yr); free(yb); free((void *)t.data);
        }
}

static void test_copy_argmax(void) {
    size_t n = 1000;
    float *a = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * n);
    fill(a, n, 5.0);
    fs_buf *src = put(be, a, n), *dst = nan_buf(be, n);
    be->copy(be, src, 3, dst, 10, 500);   /* a row from the middle, to an offset */
    be->copy(be, src, 0, dst, 0, 10);
    get(be, dst, o, n);
    int bad = memcmp(o, a, 10 * sizeof(float)) != 0 || memcmp(o + 10, a + 3, 500 * sizeof(float)) != 0;
    for (size_t i = 510; i < n; i++) bad += !isnan(o[i]);
    CHECKF(bad == 0, "%s: copy wrote the wrong elements", be->name);

    /* argmax: the largest; the lowest index on ties; -1 if any NaN */
    for (int rep = 0; rep < 20; rep++) {
        int len = rep < 10 ? 1 + rep * 97 : 151936 / (rep - 8);
        float *x = malloc(sizeof(float) * len);
        fill(x, (size_t)len, 10.0);
        int want = 0;
        for (int i = 1; i < len; i++)
            if (x[i] > x[want]) want = i;
        if (rep % 3 == 1 && len > 2) {   /* a tie after the first maximum */
            x[len - 1] = x[want];
            if (want == len - 1) want = len - 1;
        }
        if (rep % 4 == 3) x[len / 2] = -INFINITY;
        fs_buf *xb = put(be, x, (size_t)len);
        CHECKF(be->argmax(be, xb, len) == want, "%s: argmax of %d values: %d, not %d", be->name, len,
               be->argmax(be, xb, len), want);
        x[(rep * 7919) % len] = NAN;
        be->write(be, xb, 0, x, (size_t)len);
        CHECKF(be->argmax(be, xb, len) == -1, "%s: argmax of %d values with a NaN: not -1", be->name, len);
        be->free_buf(be, xb);
        free(x);
    }
    float ties[6] = {1, 3, 2, 3, 3, -1};
    fs_buf *tb = put(be, ties, 6);
    CHECK_EQ_INT(be->argmax(be, tb, 6), 1);
    be->free_buf(be, tb);
    /* vector kernels keep a maximum per lane and chain (the cpu backend:
     * 4 x 8 lanes, then a scalar tail): every length up to 100, the
     * maximum first, last, in the middle, tied in two lanes, tied with a
     * later element of its own lane, -0 before +0 (equal: the first
     * wins), all -inf, a NaN last */
    for (int len = 1; len <= 100; len++) {
        float x[100];
        for (int c = 0; c < 8; c++) {
            int want = 0;
            for (int i = 0; i < len; i++) x[i] = (float)(-1 - (i * 37) % 11);
            switch (c) {
            case 0: x[0] = 7; want = 0; break;
            case 1: x[len - 1] = 7; want = len - 1; break;
            case 2: x[len / 2] = 7; want = len / 2; break;
            case 3: x[len / 3] = x[len - 1 - len / 5] = 7; want = len / 3 < len - 1 - len / 5 ? len / 3 : len - 1 - len / 5; break;
            case 4: x[len / 4] = 7; if (len / 4 + 32 < len) x[len / 4 + 32] = 7; want = len / 4; break;
            case 5: x[len / 3] = -0.0f; x[len - 1] = 0.0f; want = len / 3; break;
            case 6: for (int i = 0; i < len; i++) x[i] = -INFINITY; want = 0; break;
            case 7: x[len / 2] = 7; x[len - 1] = NAN; want = -1; break;
            }
            fs_buf *xb = put(be, x, (size_t)len);
            int got = be->argmax(be, xb, len);
            CHECKF(got == want, "%s: argmax of %d values, case %d: %d, not %d", be->name, len, c, got, want);
            be->free_buf(be, xb);
        }
    }

    /* argmax_rows: each of MAX_SEQS rows as argmax finds it alone - one
     * row with a NaN (-1), one with ties, one whose maximum is its last */
    {
        enum { N = 151936 / 8 + 3 };
        float *x = malloc(sizeof(float) * MAX_SEQS * N);
        int want[MAX_SEQS], got[MAX_SEQS];
        fill(x, (size_t)MAX_SEQS * N, 10.0);
        x[1 * N + N / 3] = NAN;
        x[2 * N + 5] = x[2 * N + 900] = 1e6f;
        x[3 * N + N - 1] = 1e6f;
        fs_buf *xb = put(be, x, (size_t)MAX_SEQS * N);
        for (int r = 0; r < MAX_SEQS; r++) {
            fs_buf *row = put(be, x + (size_t)r * N, N);
            want[r] = be->argmax(be, row, N);
            be->free_buf(be, row);
        }
        CHECK(want[1] == -1 && want[2] == 5 && want[3] == N - 1);
        for (int rows = 1; rows <= MAX_SEQS; rows += MAX_SEQS - 1) {
            be->argmax_rows(be, xb, rows, N, got);
            for (int r = 0; r < rows; r++)
                CHECKF(got[r] == want[r], "%s: argmax_rows(%d rows), row %d: %d, not %d", be->name, rows, r, got[r], want[r]);
        }
        be->free_buf(be, xb);
        free(x);
    }
    be->free_buf(be, src); be->free_buf(be, dst);
    free(a); free(o);
}

/* ---- rope_kv and attention: steps against the caches of 1-5 sequences ---- */

typedef struct {
    fs_backend *b;
    fs_buf *caches[MAX_SEQS], *qn, *kn;
    fs_qkv_bias bias;   /* q/k/v biases (Qwen2) of up to 8 heads: bf16, f16, f32 */
} kv_side;
static float v_bias_max;   /* max |v bias|, for attention's bound */
static fs_tensor bias_t[3]; /* their host tensors: a backend may keep a view until freed (kv_close) */

/* One step (st: its tokens' positions and sequences): rope_kv (QK-norm if
 * normed, q/k/v biases if biased) of fresh q, k, v on both backends, then
 * attention; compares q, k, v (biased in place) and the attention output. */
static void step(kv_side *s, const fs_step *st, int Hq, int Hkv, int D, int normed, int biased) {
    int T = st->T, one_seq = 1;
    for (int t = 1; t < T; t++) one_seq &= st->seq[t] == st->seq[0] && st->pos[t] == st->pos[0] + t;
    size_t nq = (size_t)T * Hq * D, nk = (size_t)T * Hkv * D;
    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nk), *v = malloc(sizeof(float) * nk);
    float *out[2][4];
    fill(q, nq, 2.0);
    fill(k, nk, 2.0);
    fill(v, nk, 1.0);
    for (int side = 0; side < 2; side++) {
        fs_backend *b = s[side].b;
        fs_buf *qb = put(b, q, nq), *kb = put(b, k, nk), *vb = put(b, v, nk), *ob = nan_buf(b, nq);
        b->set_step(b, st);
        b->rope_kv(b, qb, kb, vb, normed ? s[side].qn : NULL, normed ? s[side].kn : NULL, 1e-6f, s[side].caches, Hq, Hkv,
                   D, biased ? &s[side].bias : NULL);
        b->attention(b, qb, s[side].caches, ob, Hq, Hkv, D);
        for (int i = 0; i < 4; i++) out[side][i] = malloc(sizeof(float) * (i % 2 ? nk : nq));
        get(b, qb, out[side][0], nq);
        get(b, kb, out[side][1], nk);
        get(b, ob, out[side][2], nq);
        get(b, vb, out[side][3], nk);
        b->free_buf(b, qb); b->free_buf(b, kb); b->free_buf(b, vb); b->free_buf(b, ob);
    }
    int bad_rope = 0, bad_attn = 0, half = D / 2;
    /* v + v_bias: the same f32 add everywhere, so exactly the reference's */
    bad_rope += memcmp(out[0][3], out[1][3], nk * sizeof(float)) != 0;
    for (int i = 0; i < 2; i++) {   /* q, then k: pairs (x_j, x_j+D/2) of every head */
        size_t n = i ? nk : nq;
        const float *r = out[0][i], *g = out[1][i];
        for (size_t h = 0; h < n; h += (size_t)D)
            for (int j = 0; j < half; j++) {
                double len = hypot(r[h + j], r[h + j + half]);
                double err = fmax(fabs((double)g[h + j] - r[h + j]), fabs((double)g[h + j + half] - r[h + j + half]));
                bad_rope += !note(normed ? (biased ? "rope_kv+bias+norm" : "rope_kv+norm") : biased ? "rope_kv+bias" : "rope_kv", -1, R_F32, err,
                                  (8 + (normed ? sqrt((double)D) : 0)) * U * len + 1e-37, len);
            }
    }
    int f16 = kv_dtype == FS_DTYPE_F16;
    const char *op = one_seq ? (f16 ? "attention f16 KV" : "attention") : (f16 ? "attention (mixed) f16 KV" : "attention (mixed)");
    regime reg = regime_of(be_name, one_seq ? "attention" : "attention (mixed)", -1, T);
    double vmax = 0;
    for (size_t i = 0; i < nk; i++) vmax = fmax(vmax, fabs(v[i]) + (biased ? v_bias_max : 0));
    /* f16 caches: both sides round the same K and V to f16, but K comes
     * out of rope_kv a few f32 ulp apart, so now and then an element
     * rounds to the neighbouring f16 (2^-11 relative): see the top */
    double bound = (reg == R_BF16 ? 1e-2 : 5e-6) + (f16 ? F16_KV_ATTN : 0);
    for (size_t i = 0; i < nq; i++) {
        double err = fabs((double)out[1][2][i] - out[0][2][i]);
        bad_attn += !note(op, -1, reg, err, bound * vmax, vmax);
    }
    CHECKF(bad_rope == 0, "%s: rope_kv T %d of %d sequences (first at %d) Hq %d Hkv %d D %d normed %d biased %d: %d pairs "
           "beyond the bound (or v differs)", be->name, T, st->n_seq, st->pos[0], Hq, Hkv, D, normed, biased, bad_rope);
    CHECKF(bad_attn == 0, "%s: %s T %d of %d sequences (first at %d) Hq %d Hkv %d D %d: %d values beyond the %s bound",
           be->name, op, T, st->n_seq, st->pos[0], Hq, Hkv, D, bad_attn, regime_name[reg]);
    for (int side = 0; side < 2; side++)
        for (int i = 0; i < 4; i++) free(out[side][i]);
    free(q); free(k); free(v);
}

#define N_CTX 1100

/* Both backends' caches for n_seq sequences (sequence i's of n_ctx[i]
 * positions) and norm weights; Hq, Hkv and normed for case si. */
static void kv_open(kv_side *s, int n_seq, const int *n_ctx, int Hkv, int D, fs_tensor *qt, fs_tensor *kt, int si) {
    float *w = malloc(sizeof(float) * D), *wd = malloc(sizeof(float) * D);
    fill_pos(w, (size_t)D);
    make_tensor(qt, si % 4 < 2 ? FS_DTYPE_BF16 : FS_DTYPE_F16, 1, D, 1, w, wd);
    fill_pos(w, (size_t)D);
    make_tensor(kt, FS_DTYPE_F32, 1, D, 1, w, wd);
    /* biases of 8 heads (the most any case has), in the three float dtypes */
    static const fs_dtype bias_dt[3] = {FS_DTYPE_BF16, FS_DTYPE_F16, FS_DTYPE_F32};
    fs_tensor *bt = bias_t;
    float *bv = malloc(sizeof(float) * 8 * (size_t)D), *bd = malloc(sizeof(float) * 8 * (size_t)D);
    for (int i = 0; i < 3; i++) {
        fill(bv, 8 * (size_t)D, 1.0);
        make_tensor(&bt[i], bias_dt[i], 1, 8 * D, 1, bv, bd);
    }
    v_bias_max = 0;
    for (int i = 0; i < 8 * D; i++) v_bias_max = fmaxf(v_bias_max, fabsf(bd[i]));
    for (int side = 0; side < 2; side++) {
        fs_err e;
        s[side] = (kv_side){side ? be : ref, {NULL}, NULL, NULL, {NULL, NULL, NULL}};
        for (int i = 0; i < n_seq; i++) {
            s[side].caches[i] = s[side].b->kv_alloc(s[side].b, n_ctx[i], Hkv, D, &e);
            if (!s[side].caches[i]) { fprintf(stderr, "%s: %s\n", s[side].b->name, e.msg); exit(1); }
        }
        s[side].qn = upload(s[side].b, qt);
        s[side].kn = upload(s[side].b, kt);
        s[side].bias = (fs_qkv_bias){upload(s[side].b, &bt[0]), upload(s[side].b, &bt[1]), upload(s[side].b, &bt[2])};
    }
    free(w); free(wd); free(bv); free(bd);
}

static void kv_close(kv_side *s, int n_seq, fs_tensor *qt, fs_tensor *kt) {
    for (int side = 0; side < 2; side++) {
        for (int i = 0; i < n_seq; i++) s[side].b->free_buf(s[side].b, s[side].caches[i]);
        s[side].b->free_buf(s[side].b, s[side].qn);
        s[side].b->free_buf(s[side].b, s[side].kn);
        s[side].b->free_buf(s[side].b, (fs_buf *)s[side].bias.q);
        s[side].b->free_buf(s[side].b, (fs_buf *)s[side].bias.k);
        s[side].b->free_buf(s[side].b, (fs_buf *)s[side].bias.v);
    }
    free((void *)qt->data); free((void *)kt->data);
    for (int i = 0; i < 3; i++) free((void *)bias_t[i].data);
}

/* Hq, Hkv: groups 1, 2, 4, 4, 2, 3 (an odd group: the kernels take the
 * query heads of a kv head in pairs, attention_cpu.c) */
static const int groups[][2] = {{8, 8}, {8, 4}, {8, 2}, {4, 1}, {6, 3}, {6, 2}};
#define NGROUPS 6

static void test_attention(int D) {
    /* steps: a prompt, then decode and more prompt chunks on the same cache */
    /* the last reaches positions 260 and 300: decode steps whose keys the
     * CPU backend splits into ranges when it has more threads than
     * (token, kv head) pairs (attention_cpu.c) */
    static const int seqs[][5] = {{130, 1, 7, 1, 64}, {5, 17, 1, 2, 3}, {1, 1, 64, 130, 1}, {64, 3, 1, 17, 5},
                                  {130, 130, 1, 39, 1}};
    int ids[MAX_T] = {0}, pos[MAX_T], seq[MAX_T] = {0}, n_ctx = N_CTX;
    for (size_t si = 0; si < sizeof seqs / sizeof seqs[0]; si++) {
        int Hq = groups[(si + (size_t)D) % NGROUPS][0], Hkv = groups[(si + (size_t)D) % NGROUPS][1], normed = (int)si % 2;
        fs_tensor qt, kt;
        kv_side s[2];
        kv_open(s, 1, &n_ctx, Hkv, D, &qt, &kt, (int)si);
        int p = 0;
        for (int i = 0; i < 5 && p + seqs[si][i] <= N_CTX; i++) {
            int T = seqs[si][i];
            for (int t = 0; t < T; t++) pos[t] = p + t;
            step(s, &(fs_step){T, ids, pos, seq, 1}, Hq, Hkv, D, normed, si >= 2);
            p += T;
        }
        kv_close(s, 1, &qt, &kt);
    }
}

/* A long context: prompt chunks up to position 1040, then decode steps
 * with more than 1,024 keys, where the CPU backend's decode attention
 * takes every kv head of a token in one chunk and cuts the keys into
 * ranges (attention_cpu.c), and a batched step of two sequences there. */
static void test_attention_long(int D) {
    int ids[MAX_T] = {0}, pos[MAX_T], seq[MAX_T] = {0}, n_ctx[2] = {N_CTX, N_CTX - 16};
    int gi = D == 32 ? 5 : D == 64 ? 0 : 1;   /* groups 3, 1 and (Qwen3-0.6B's) 2 */
    int Hq = groups[gi][0], Hkv = groups[gi][1];
    fs_tensor qt, kt;
    kv_side s[2];
    kv_open(s, 2, n_ctx, Hkv, D, &qt, &kt, 7);
    for (int sq = 0; sq < 2; sq++)
        for (int p = 0; p < 1040; p += MAX_T) {
            for (int t = 0; t < MAX_T; t++) pos[t] = p + t, seq[t] = sq;
            step(s, &(fs_step){MAX_T, ids, pos, seq, 2}, Hq, Hkv, D, 1, 0);
        }
    static const int decode[] = {1, 1, 3, 2};   /* tokens of each step, sequence 0 at 1040 .. */
    int p = 1040;
    for (size_t i = 0; i < sizeof decode / sizeof decode[0]; i++) {
        for (int t = 0; t < decode[i]; t++) pos[t] = p + t, seq[t] = 0;
        step(s, &(fs_step){decode[i], ids, pos, seq, 2}, Hq, Hkv, D, 1, 0);
        p += decode[i];
    }
    /* one token of each sequence, at different positions */
    pos[0] = p, seq[0] = 0, pos[1] = 1040, seq[1] = 1;
    step(s, &(fs_step){2, ids, pos, seq, 2}, Hq, Hkv, D, 1, 0);
    kv_close(s, 2, &qt, &kt);
}

/* Batched steps: each step is runs of tokens (a sequence, how many), the
 * runs in any order, a sequence's tokens at its next positions. */
typedef struct { int seq, n; } run;
static const struct {
    int n_seq;
    run steps[4][MAX_SEQS + 1];   /* a run of n = 0 ends the step */
} schedules[] = {
    {2, {{{0, 7}, {1, 3}}, {{0, 1}, {1, 1}}, {{1, 17}, {0, 1}}, {{0, 1}, {1, 1}}}},
    /* sequence 3 sits out the third step; 67 tokens: more than one of the
     * GPU's decode attention launches (64 tokens) */
    {5, {{{0, 5}, {1, 1}, {2, 2}, {3, 1}, {4, 9}}, {{4, 1}, {3, 1}, {2, 1}, {1, 1}, {0, 1}},
         {{0, 1}, {1, 64}, {2, 1}, {4, 1}}, {{2, 1}, {0, 40}, {3, 1}, {1, 1}, {4, 1}}}},
    /* a prompt of sequence 1 alone (one sequence, n_seq 3), then mixed
     * steps past the first 64 positions */
    {3, {{{1, 130}}, {{0, 1}, {2, 2}}, {{2, 1}, {1, 1}, {0, 3}}, {{0, 1}, {1, 1}, {2, 1}}}},
};

static void test_batched(int D) {
    int ids[MAX_T] = {0}, pos[MAX_T], seq[MAX_T];
    for (size_t si = 0; si < sizeof schedules / sizeof schedules[0]; si++) {
        int n_seq = schedules[si].n_seq, Hq = groups[(si + (size_t)D + 2) % NGROUPS][0], Hkv = groups[(si + (size_t)D + 2) % NGROUPS][1];
        int n_ctx[MAX_SEQS], next[MAX_SEQS] = {0};   /* each cache's size; each sequence's next position */
        for (int i = 0; i < n_seq; i++) n_ctx[i] = N_CTX - 37 * i;   /* sessions may differ in n_ctx */
        fs_tensor qt, kt;
        kv_side s[2];
        kv_open(s, n_seq, n_ctx, Hkv, D, &qt, &kt, (int)si);
        for (int k = 0; k < 4; k++) {
            int T = 0;
            for (const run *r = schedules[si].steps[k]; r->n; r++)
                for (int j = 0; j < r->n; j++, T++) {
                    seq[T] = r->seq;
                    pos[T] = next[r->seq]++;
                }
            step(s, &(fs_step){T, ids, pos, seq, n_seq}, Hq, Hkv, D, (int)(si + (size_t)k) % 2, (int)(si + (size_t)k / 2) % 2);
        }
        kv_close(s, n_seq, &qt, &kt);
    }
}

/* ---- main ---- */

/* Both backends reserved for everything the tests above do with head dim D. */
static int reserve(fs_backend *b, int D, fs_err *e) {
    float inv[64];
    for (int i = 0; i < D / 2; i++) inv[i] = 1.0f / (float)pow(1e6f, (double)((float)(2 * i) / (float)D));
    fs_reserve r = {.max_T = MAX_T, .max_seqs = MAX_SEQS, .max_K = 3072, .max_N = 2400, .n_ctx = N_CTX,
                    .Hq = 8, .Hkv = 8, .D = D, .rope_inv_freq = inv, .kv_dtype = kv_dtype};
    return b->reserve(b, &r, e);
}

/* Opens name (":ISA" sets FS_ISA); NULL with the reason in e. */
static fs_backend *open_variant(const char *arg, char *name, size_t cap, fs_err *e) {
    snprintf(name, cap, "%s", arg);
    char *colon = strchr(name, ':');
    if (colon) {
        *colon = 0;
        setenv("FS_ISA", colon + 1, 1);
    } else {
        unsetenv("FS_ISA");
    }
    return fs_backend_open(&(fs_backend_opts){name, 0, 0}, e);
}

static void test_names(void) {
    fs_err e;
    CHECK(strstr(fs_backend_names(), "cpu-ref") && strstr(fs_backend_names(), "cuda"));
    CHECK(fs_backend_open(&(fs_backend_opts){"tpu", 0, 0}, &e) == NULL && strstr(e.msg, "unknown backend 'tpu'") &&
          strstr(e.msg, "cpu-ref"));
    fs_backend *b = fs_backend_open(&(fs_backend_opts){"auto", 0, 0}, &e);   /* "auto" always opens something */
    CHECK(b != NULL);
    if (b) b->destroy(b);
    b = fs_backend_open(NULL, &e);
    CHECK(b != NULL);
    if (b) b->destroy(b);
    b = fs_backend_open(&(fs_backend_opts){"cuda", 0, 0}, &e);   /* opens, or says why not */
    CHECK(b != NULL || e.msg[0]);
    if (b) b->destroy(b);
}

int main(int argc, char **argv) {
    static const char *const defaults[] = {"cpu:scalar", "cpu:avx2", "cpu:avx-vnni", "cpu:avx512",
                                           "cpu:neon",   "cpu:dotprod", "cpu",      "cuda"};
    const char *const *names = argc > 1 ? (const char *const *)argv + 1 : defaults;
    int n_names = argc > 1 ? argc - 1 : (int)(sizeof defaults / sizeof defaults[0]);
    char seen[8][256];
    int n_seen = 0;
    test_names();
    for (int v = 0; v < n_names; v++) {
        char name[64];
        fs_err e;
        fs_backend *probe = open_variant(names[v], name, sizeof name, &e);
        if (!probe) {
            printf("%s: skipped (%s)\n", names[v], e.msg);
            continue;
        }
        char line[256];
        snprintf(line, sizeof line, "%s: %s", probe->name, probe->describe(probe));
        probe->destroy(probe);
        int dup = 0;
        for (int i = 0; i < n_seen; i++) dup |= !strcmp(seen[i], line);
        if (dup) {
            printf("%s: skipped (the same kernels as before: %s)\n", names[v], line);
            continue;
        }
        if (n_seen < 8) snprintf(seen[n_seen++], sizeof seen[0], "%s", line);
        printf("%s: %s\n", names[v], line);
        be_name = name;
        int failed0 = test_failed;
        for (int D = 32; D <= 128; D *= 2) {
            ref = fs_backend_open(&(fs_backend_opts){"cpu-ref", 0, 0}, &e);
            be = open_variant(names[v], name, sizeof name, &e);
            if (!ref || !be || reserve(ref, D, &e) || reserve(be, D, &e)) {
                CHECKF(0, "%s: cannot open and reserve: %s", names[v], e.msg);
                break;
            }
            if (D == 64) {
                test_embed();
                test_rmsnorm();
                test_matmul();
                test_copy_argmax();
            }
            test_attention(D);
            test_attention_long(D);
            test_batched(D);
            be->destroy(be);
            ref->destroy(ref);
        }
        /* the same steps with f16 caches on both sides (--kv f16) */
        kv_dtype = FS_DTYPE_F16;
        for (int D = 64; D <= 128; D *= 2) {
            ref = fs_backend_open(&(fs_backend_opts){"cpu-ref", 0, 0}, &e);
            be = open_variant(names[v], name, sizeof name, &e);
            if (!ref || !be || reserve(ref, D, &e)) {
                CHECKF(0, "%s: cannot open and reserve: %s", names[v], e.msg);
                break;
            }
            if (reserve(be, D, &e)) {   /* a backend without f16 caches must say so */
                CHECKF(strstr(e.msg, "not supported") != NULL, "%s: f16 KV refused unclearly: %s", names[v], e.msg);
                printf("%s: f16 KV cache refused (%s)\n", names[v], e.msg);
            } else {
                test_attention(D);
                test_attention_long(D);
                test_batched(D);
            }
            be->destroy(be);
            ref->destroy(ref);
        }
        kv_dtype = FS_DTYPE_F32;
        print_stats();
        printf("%s: %s\n", names[v], test_failed == failed0 ? "ok" : "FAILED");
    }
    unsetenv("FS_ISA");
    return TEST_SUMMARY();
}
