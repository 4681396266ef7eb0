/* test_ops.c - every op of the reference backend ("cpu-ref") against a
 * plain double-precision formula.
 *
 * Random inputs, many shapes (odd sizes, T = 1 and T > 1), every weight
 * dtype, the fused forms (a matmul's rmsnorm / SwiGLU input and residual
 * add, rope_kv's QK-norm), a step that mixes sequences (each token its own
 * position and cache). The ops are called through the fs_backend table,
 * the way forward.c calls them, so the seam itself is tested too; the KV
 * cache is read and written with the reference's layout (src/cpu/ref.h:
 * the keys of every position, then the values, Hkv * D floats each).
 *
 * Tolerances: the reference accumulates in double and rounds once
 * (src/cpu/ref.h), so each result is within a few f32 ulps of the exact
 * value: 2e-6 * (1 + |ref|). Where a fused op stores an intermediate as
 * f32 (backend.h: the unfused sequence), the formula rounds it to f32 at
 * the same place and is otherwise exact.
 *
 * Docs: docs/forward.md, docs/testing.md
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "backend.h"
#include "quant.h"
#include "test.h"

#define TOL 2e-6

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* uniform [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static fs_backend *be;

/* The step of T tokens of one sequence at positions pos0 .. pos0 + T - 1. */
static void set_seq_step(const int *ids, int T, int pos0) {
    int pos[8], seq[8] = {0};
    for (int t = 0; t < T; t++) pos[t] = pos0 + t;
    be->set_step(be, &(fs_step){T, ids, pos, seq, 1});
}

/* A reference backend reserved for these shapes (rope: HF's f32
 * frequencies of theta for head dim D). */
static fs_backend *open_ref(int max_T, int max_K, int max_N, int n_ctx, int Hq, int Hkv, int D, double theta) {
    fs_err e;
    fs_backend *b = fs_backend_open(&(fs_backend_opts){"cpu-ref", 0, 0}, &e);
    if (!b) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    float inv[512];
    for (int i = 0; i < D / 2; i++) inv[i] = 1.0f / (float)pow((float)theta, (double)((float)(2 * i) / (float)D));
    fs_reserve r = {.max_T = max_T, .max_seqs = 4, .max_K = max_K, .max_N = max_N, .n_ctx = n_ctx, .Hq = Hq,
                    .Hkv = Hkv, .D = D, .rope_inv_freq = inv};
    if (b->reserve(b, &r, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    return b;
}

/* An f32 activation buffer filled with random values in [-scale, scale). */
static fs_buf *rand_act(float *host, size_t n, double scale) {
    fs_err e;
    fs_buf *b = be->alloc(be, n, &e);
    for (size_t i = 0; i < n; i++) host[i] = (float)(urand() * scale);
    be->write(be, b, 0, host, n);
    return b;
}

/* A weight tensor of the given dtype holding random values; deq gets the
 * exact f32 value of each stored element (what the op must read). A
 * quantized one needs d1 (or d0, 1-D) a multiple of 32. */
typedef struct { fs_tensor t; void *data; fs_buf *buf; } weight;
static weight rand_weight(fs_dtype dt, int64_t d0, int64_t d1, float *deq, double scale) {
    weight w;
    memset(&w, 0, sizeof w);
    int64_t K = d1 ? d1 : d0, rows = d1 ? d0 : 1;
    size_t rb = fs_dtype_row_bytes(dt, K);
    w.data = malloc(rb * (size_t)rows);
    float *row = malloc(sizeof(float) * (size_t)K);
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *dst = (uint8_t *)w.data + (size_t)r * rb;
        for (int64_t k = 0; k < K; k++) row[k] = (float)(urand() * scale);
        for (int64_t k = 0; k < K; k++) {
            if (dt == FS_DTYPE_F32) ((float *)dst)[k] = row[k];
            else if (dt == FS_DTYPE_BF16) ((uint16_t *)dst)[k] = fs_f32_to_bf16(row[k]);
            else if (dt == FS_DTYPE_F16) ((uint16_t *)dst)[k] = fs_f32_to_f16(row[k]);
        }
        if (dt == FS_DTYPE_Q8_0) fs_quantize_row_q8_0(row, (fs_block_q8_0 *)dst, (int)K);
        if (dt == FS_DTYPE_Q4_0) fs_quantize_row_q4_0(row, (fs_block_q4_0 *)dst, (int)K);
    }
    free(row);
    w.t.name = "test.weight";
    w.t.dtype = dt;
    w.t.ndim = d1 ? 2 : 1;
    w.t.shape[0] = d0;
    w.t.shape[1] = d1;
    w.t.data = w.data;
    w.t.nbytes = rb * (size_t)rows;
    for (size_t i = 0; i < (size_t)(rows * K); i++) deq[i] = fs_tensor_get_f32(&w.t, i);
    fs_err e;
    w.buf = be->upload(be, &w.t, &e);
    return w;
}
static void free_weight(weight *w) { be->free_buf(be, w->buf); free(w->data); }

static const fs_dtype all_dtypes[] = {FS_DTYPE_F32, FS_DTYPE_BF16, FS_DTYPE_F16, FS_DTYPE_Q8_0, FS_DTYPE_Q4_0};

static void test_embed(void) {
    int V = 37, H = 64, ids[6] = {0, 36, 5, 5, 17, 1};
    be = open_ref(6, H, V, 8, 1, 1, 2, 1e4);
    for (int d = 0; d < 5; d++) {
        float *deq = malloc(sizeof(float) * V * H);
        weight w = rand_weight(all_dtypes[d], V, H, deq, 2.0);
        for (int T = 1; T <= 6; T += 5) {
            float out[6 * 64];
            fs_err e;
            fs_buf *o = be->alloc(be, (size_t)T * H, &e);
            set_seq_step(ids, T, 0);
            be->embed(be, w.buf, H, o);
            be->read(be, o, 0, out, (size_t)T * H);
            int bad = 0;
            for (int t = 0; t < T; t++)
                for (int i = 0; i < H; i++) bad += out[t * H + i] != deq[ids[t] * H + i];
            CHECKF(bad == 0, "embed dtype %s T %d: %d elements differ", fs_dtype_name(all_dtypes[d]), T, bad);
            be->free_buf(be, o);
        }
        free_weight(&w);
        free(deq);
    }
    be->destroy(be);
}

/* rmsnorm of one row in double, with the weight; the f32 steps of the
 * reference are not modelled (TOL covers them). */
static void ref_rmsnorm(const float *x, const float *w, double *y, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    double scale = 1.0 / sqrt(ss / n + (double)eps);
    for (int i = 0; i < n; i++) y[i] = (double)w[i] * x[i] * scale;
}

static void test_rmsnorm(void) {
    int shapes[][2] = {{1, 1}, {1, 7}, {3, 64}, {5, 33}, {2, 128}};
    be = open_ref(1, 1, 1, 1, 1, 1, 2, 1e4);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int rows = shapes[si][0], n = shapes[si][1];
        for (int d = 0; d < 3; d++) {
            float *x = malloc(sizeof(float) * rows * n), *y = malloc(sizeof(float) * rows * n);
            float *w = malloc(sizeof(float) * n);
            double *ref = malloc(sizeof(double) * n);
            fs_buf *xb = rand_act(x, (size_t)rows * n, 3.0);
            weight wt = rand_weight(all_dtypes[d], n, 0, w, 1.5);
            fs_err e;
            fs_buf *yb = be->alloc(be, (size_t)rows * n, &e);
            /* a large eps in some cases, so a forgotten eps cannot hide */
            float eps = (si % 2) ? 0.25f : 1e-6f;
            be->rmsnorm(be, xb, wt.buf, yb, rows, n, eps);
            be->read(be, yb, 0, y, (size_t)rows * n);
            double worst = 0;
            for (int r = 0; r < rows; r++) {
                ref_rmsnorm(x + r * n, w, ref, n, eps);
                for (int i = 0; i < n; i++) {
                    double err = fabs(y[r * n + i] - ref[i]) / (1 + fabs(ref[i]));
                    if (!(err <= worst)) worst = err;
                }
            }
            CHECKF(worst <= TOL, "rmsnorm rows %d n %d dtype %s: err %g", rows, n, fs_dtype_name(all_dtypes[d]), worst);
            /* in place (y = x) */
            be->rmsnorm(be, xb, wt.buf, xb, rows, n, eps);
            float *y2 = malloc(sizeof(float) * rows * n);
            be->read(be, xb, 0, y2, (size_t)rows * n);
            CHECK(memcmp(y, y2, sizeof(float) * rows * n) == 0);
            free(y2);
            be->free_buf(be, xb); be->free_buf(be, yb); free_weight(&wt);
            free(x); free(y); free(w); free(ref);
        }
    }
    be->destroy(be);
}

/* matmul: n linear layers of one input, in one of three forms (0 plain, 1
 * rmsnorm'd, 2 SwiGLU'd), some outputs added to. */
static void check_matmul(int T, int K, const int *N, const fs_dtype *dts, int n, int form, const int *add) {
    fs_err e;
    size_t nx = (size_t)T * K;
    float *x = malloc(sizeof(float) * nx), *u = malloc(sizeof(float) * nx), *in = malloc(sizeof(float) * nx);
    float *nw = malloc(sizeof(float) * K);
    double *row = malloc(sizeof(double) * K);
    fs_buf *xb = rand_act(x, nx, 2.0), *ub = rand_act(u, nx, 2.0);
    weight norm = rand_weight(FS_DTYPE_BF16, K, 0, nw, 1.5);
    /* the input as the op must see it: the intermediate rounded to f32 */
    for (int t = 0; t < T; t++) {
        if (form == 1) ref_rmsnorm(x + (size_t)t * K, nw, row, K, 1e-6f);
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            if (form == 0) in[i] = x[i];
            else if (form == 1) in[i] = (float)row[k];
            else in[i] = (float)((double)x[i] / (1.0 + exp(-(double)x[i]))) * u[i];
        }
    }
    fs_linear out[FS_MATMUL_MAX];
    weight W[FS_MATMUL_MAX];
    float *Wd[FS_MATMUL_MAX], *y0[FS_MATMUL_MAX];
    for (int i = 0; i < n; i++) {
        size_t ny = (size_t)T * N[i];
        Wd[i] = malloc(sizeof(float) * (size_t)N[i] * K);
        y0[i] = malloc(sizeof(float) * ny);
        W[i] = rand_weight(dts[i], N[i], K, Wd[i], 1.0);
        out[i] = (fs_linear){W[i].buf, rand_act(y0[i], ny, 3.0), N[i], add[i]};
    }
    fs_mm_in mi = {xb, form == 1 ? norm.buf : NULL, 1e-6f, form == 2 ? ub : NULL};
    be->matmul(be, &mi, T, K, out, n);
    for (int i = 0; i < n; i++) {
        size_t ny = (size_t)T * N[i];
        float *y = malloc(sizeof(float) * ny);
        be->read(be, out[i].y, 0, y, ny);
        double worst = 0;
        for (int t = 0; t < T; t++)
            for (int o = 0; o < N[i]; o++) {
                double ref = add[i] ? y0[i][(size_t)t * N[i] + o] : 0;
                for (int k = 0; k < K; k++) ref += (double)in[(size_t)t * K + k] * Wd[i][(size_t)o * K + k];
                double err = fabs(y[(size_t)t * N[i] + o] - ref) / (1 + fabs(ref));
                if (!(err <= worst)) worst = err;
            }
        CHECKF(worst <= TOL, "matmul T %d K %d N %d %s form %d add %d (%d of %d): err %g", T, K, N[i],
               fs_dtype_name(dts[i]), form, add[i], i + 1, n, worst);
        /* the last row alone gives the same numbers (decode == prefill) */
        if (!add[i] && T > 1 && i == 0) {
            fs_buf *x1 = be->alloc(be, (size_t)K, &e), *u1 = be->alloc(be, (size_t)K, &e), *y1 = be->alloc(be, (size_t)N[i], &e);
            be->copy(be, xb, (size_t)(T - 1) * K, x1, 0, (size_t)K);
            be->copy(be, ub, (size_t)(T - 1) * K, u1, 0, (size_t)K);
            fs_mm_in m1 = {x1, mi.norm, mi.eps, form == 2 ? u1 : NULL};
            fs_linear o1 = {W[i].buf, y1, N[i], 0};
            be->matmul(be, &m1, 1, K, &o1, 1);
            float *yl = malloc(sizeof(float) * N[i]);
            be->read(be, y1, 0, yl, (size_t)N[i]);
            CHECK(memcmp(yl, y + (size_t)(T - 1) * N[i], sizeof(float) * N[i]) == 0);
            free(yl);
            be->free_buf(be, x1); be->free_buf(be, u1); be->free_buf(be, y1);
        }
        free(y);
        be->free_buf(be, out[i].y);
        free_weight(&W[i]);
        free(Wd[i]); free(y0[i]);
    }
    free_weight(&norm);
    be->free_buf(be, xb); be->free_buf(be, ub);
    free(x); free(u); free(in); free(nw); free(row);
}

static void test_matmul(void) {
    static const int shapes[][3] = {{1, 1, 1}, {1, 7, 5}, {3, 13, 9}, {4, 64, 33}, {2, 129, 17}, {7, 250, 3}, {1, 1023, 11}};
    static const int qshapes[][3] = {{1, 32, 5}, {3, 64, 7}, {7, 96, 16}, {2, 1024, 9}};
    static const int no_add[FS_MATMUL_MAX] = {0}, adds[FS_MATMUL_MAX] = {1, 0, 1, 0};
    be = open_ref(7, 1024, 4 * 33, 1, 1, 1, 2, 1e4);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int d = 0; d < 3; d++)
            for (int form = 0; form < 3; form++) {
                int N = shapes[si][2];
                check_matmul(shapes[si][0], shapes[si][1], &N, &all_dtypes[d], 1, form, form == 2 ? adds : no_add);
            }
    for (size_t si = 0; si < sizeof qshapes / sizeof qshapes[0]; si++)
        for (int d = 3; d < 5; d++) {
            int N = qshapes[si][2];
            check_matmul(qshapes[si][0], qshapes[si][1], &N, &all_dtypes[d], 1, (int)si % 3, si % 2 ? adds : no_add);
        }
    /* several layers of one input, mixed dtypes (q/k/v, gate/up) */
    static const fs_dtype mixed[4] = {FS_DTYPE_Q4_0, FS_DTYPE_BF16, FS_DTYPE_Q8_0, FS_DTYPE_F32};
    static const int Ns[4] = {33, 8, 17, 5};
    for (int n = 2; n <= FS_MATMUL_MAX; n++)
        for (int form = 0; form < 3; form++) check_matmul(5, 96, Ns, mixed, n, form, n == 3 ? adds : no_add);
    be->destroy(be);
}

/* HF's float32 angle: inv_freq = 1 / theta^(f32(2i)/D) in f32, angle = f32(p * inv_freq). */
static double hf_angle(int p, int i, int D, double theta) {
    float expo = (float)(2 * i) / (float)D;
    float inv = 1.0f / (float)pow((float)theta, (double)expo);
    return (double)((float)p * inv);
}

/* rope_kv: T tokens at pos0 of Hq query and Hkv kv heads; with norms
 * (QK-norm) or without. Checks q and k against the formula, that a
 * rotation keeps lengths and position 0 is the identity, and the cache. */
static void test_rope_kv(void) {
    int Ds[] = {2, 8, 128};
    int pos0s[] = {0, 3, 100000};
    double thetas[] = {10000.0, 1000000.0};
    for (int di = 0; di < 3; di++)
        for (int ti = 0; ti < 2; ti++) {
            int D = Ds[di], T = 3, Hq = 2, Hkv = 1, half = D / 2, n_ctx = 100003;
            double theta = thetas[ti];
            be = open_ref(T, 1, 1, n_ctx, Hq, Hkv, D, theta);
            for (int pi = 0; pi < 3; pi++)
                for (int with_norm = 0; with_norm < 2; with_norm++) {
                    int pos0 = pos0s[pi];
                    size_t nq = (size_t)T * Hq * D, nk = (size_t)T * Hkv * D;
                    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nk), *v = malloc(sizeof(float) * nk);
                    float *qo = malloc(sizeof(float) * nq), *ko = malloc(sizeof(float) * nk), *c = malloc(sizeof(float) * nk);
                    float qnw[128], knw[128];
                    double hn[128];
                    fs_buf *qb = rand_act(q, nq, 2.0), *kb = rand_act(k, nk, 2.0), *vb = rand_act(v, nk, 2.0);
                    weight qn = rand_weight(FS_DTYPE_BF16, D, 0, qnw, 1.5), kn = rand_weight(FS_DTYPE_F32, D, 0, knw, 1.5);
                    fs_err e;
                    fs_buf *cache = be->kv_alloc(be, n_ctx, Hkv, D, &e);
                    int ids[3] = {0, 0, 0};
                    set_seq_step(ids, T, pos0);
                    be->rope_kv(be, qb, kb, vb, with_norm ? qn.buf : NULL, with_norm ? kn.buf : NULL, 1e-6f, &cache, Hq,
                                Hkv, D, NULL);
                    be->read(be, qb, 0, qo, nq);
                    be->read(be, kb, 0, ko, nk);
                    double worst_hf = 0, worst_exact = 0, worst_norm = 0;
                    for (int t = 0; t < T; t++)
                        for (int h = 0; h < Hq + Hkv; h++) {
                            int isq = h < Hq;
                            size_t o = isq ? ((size_t)t * Hq + h) * D : ((size_t)t * Hkv + h - Hq) * D;
                            const float *in = (isq ? q : k) + o, *got = (isq ? qo : ko) + o;
                            if (with_norm) ref_rmsnorm(in, isq ? qnw : knw, hn, D, 1e-6f);
                            else for (int i = 0; i < D; i++) hn[i] = in[i];
                            for (int i = 0; i < half; i++) {
                                double a = hn[i], b = hn[i + half];
                                /* exact math: angle in double, no f32 rounding */
                                double ang = (pos0 + t) * pow(theta, -2.0 * i / D);
                                double r0 = a * cos(ang) - b * sin(ang), r1 = b * cos(ang) + a * sin(ang);
                                double e0 = fmax(fabs(got[i] - r0), fabs(got[i + half] - r1)) / (1 + fabs(a) + fabs(b));
                                if (!(e0 <= worst_exact)) worst_exact = e0;
                                /* HF's f32 angle, rotation done in double */
                                ang = hf_angle(pos0 + t, i, D, theta);
                                r0 = a * cos(ang) - b * sin(ang); r1 = b * cos(ang) + a * sin(ang);
                                e0 = fmax(fabs(got[i] - r0), fabs(got[i + half] - r1)) / (1 + fabs(a) + fabs(b));
                                if (!(e0 <= worst_hf)) worst_hf = e0;
                                /* a rotation keeps the pair's length */
                                double n0 = sqrt(a * a + b * b), n1 = hypot(got[i], got[i + half]);
                                if (!(fabs(n0 - n1) / (1 + n0) <= worst_norm)) worst_norm = fabs(n0 - n1) / (1 + n0);
                            }
                        }
                    CHECKF(worst_hf <= TOL, "rope_kv D %d pos0 %d theta %g norm %d: err vs HF angles %g", D, pos0, theta,
                           with_norm, worst_hf);
                    CHECKF(worst_norm <= TOL, "rope_kv D %d pos0 %d norm %d: length changed by %g", D, pos0, with_norm,
                           worst_norm);
                    if (pos0 < 100)   /* small angles: f32 angles are still accurate */
                        CHECKF(worst_exact <= 1e-5, "rope_kv D %d pos0 %d theta %g: err vs exact %g", D, pos0, theta,
                               worst_exact);
                    if (pos0 == 0 && !with_norm)   /* position 0 is the identity (first token only) */
                        CHECK(memcmp(q, qo, sizeof(float) * Hq * D) == 0 && memcmp(k, ko, sizeof(float) * Hkv * D) == 0);
                    /* the cache (ref.h's layout): position pos0 + t holds k[t] and v[t], nothing else changed */
                    size_t kv_row = (size_t)Hkv * D, vals = (size_t)n_ctx * kv_row;
                    be->read(be, cache, (size_t)pos0 * kv_row, c, nk);
                    CHECK(memcmp(c, ko, sizeof(float) * nk) == 0);
                    be->read(be, cache, vals + (size_t)pos0 * kv_row, c, nk);
                    CHECK(memcmp(c, v, sizeof(float) * nk) == 0);
                    if (pos0 > 0) {
                        be->read(be, cache, (size_t)(pos0 - 1) * kv_row, c, kv_row);
                        int nonzero = 0;
                        for (size_t i = 0; i < kv_row; i++) nonzero += c[i] != 0;
                        CHECK(nonzero == 0);
                    }
                    be->free_buf(be, qb); be->free_buf(be, kb); be->free_buf(be, vb); be->free_buf(be, cache);
                    free_weight(&qn); free_weight(&kn);
                    free(q); free(k); free(v); free(qo); free(ko); free(c);
                }
            be->destroy(be);
        }
}

/* Naive attention in double, recomputed from scratch for one (t, h). */
static void ref_attention(const float *q, const float *kc, const float *vc, size_t st, double *out,
                          int t, int h, int pos0, int Hq, int Hkv, int D) {
    int g = h / (Hq / Hkv), n = pos0 + t + 1;
    const float *qh = q + ((size_t)t * Hq + h) * D;
    double *s = malloc(sizeof(double) * n), mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++) {
        double dot = 0;
        for (int d = 0; d < D; d++) dot += (double)qh[d] * kc[(size_t)j * st + (size_t)g * D + d];
        s[j] = dot / sqrt((double)D);
        if (s[j] > mx) mx = s[j];
    }
    for (int j = 0; j < n; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
    for (int d = 0; d < D; d++) {
        double acc = 0;
        for (int j = 0; j < n; j++) acc += s[j] / sum * vc[(size_t)j * st + (size_t)g * D + d];
        out[d] = acc;
    }
    free(s);
}

static void test_attention(void) {
    int cases[][4] = { /* T, pos0, Hkv, ratio */
        {1, 0, 2, 1}, {1, 5, 2, 2}, {4, 0, 1, 4}, {3, 2, 2, 2}, {5, 7, 3, 1}, {2, 30, 2, 4},
    };
    int n_ctx = 40;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int T = cases[ci][0], pos0 = cases[ci][1], Hkv = cases[ci][2], Hq = Hkv * cases[ci][3];
        for (int D = 4; D <= 64; D *= 4) {
            be = open_ref(T, 1, 1, n_ctx, Hq, Hkv, D, 1e4);
            size_t st = (size_t)Hkv * D;   /* the reference's cache: unpadded positions */
            size_t nq = (size_t)T * Hq * D, nkv = (size_t)n_ctx * st;
            float *q = malloc(sizeof(float) * nq), *kc = malloc(sizeof(float) * nkv);
            float *vc = malloc(sizeof(float) * nkv), *out = malloc(sizeof(float) * nq);
            float *out2 = malloc(sizeof(float) * nq);
            fs_err e;
            fs_buf *qb = rand_act(q, nq, 2.0), *cache = be->kv_alloc(be, n_ctx, Hkv, D, &e);
            for (size_t i = 0; i < nkv; i++) kc[i] = (float)(urand() * 2), vc[i] = (float)urand();
            /* positions never written must never be read: poison them */
            for (size_t i = (size_t)(pos0 + T) * st; i < nkv; i++) kc[i] = vc[i] = NAN;
            be->write(be, cache, 0, kc, nkv);
            be->write(be, cache, nkv, vc, nkv);
            fs_buf *ob = be->alloc(be, nq, &e);
            int ids[5] = {0};
            set_seq_step(ids, T, pos0);
            be->attention(be, qb, &cache, ob, Hq, Hkv, D);
            be->read(be, ob, 0, out, nq);
            double worst = 0, ref[64];
            for (int t = 0; t < T; t++)
                for (int h = 0; h < Hq; h++) {
                    ref_attention(q, kc, vc, st, ref, t, h, pos0, Hq, Hkv, D);
                    for (int d = 0; d < D; d++) {
                        double err = fabs(out[((size_t)t * Hq + h) * D + d] - ref[d]) / (1 + fabs(ref[d]));
                        if (!(err <= worst)) worst = err;   /* NaN counts as worst */
                    }
                }
            CHECKF(worst <= TOL, "attention T %d pos0 %d Hq %d Hkv %d D %d: err %g", T, pos0, Hq, Hkv, D, worst);

            /* causal: change the chunk's last key/value; earlier tokens must not notice */
            size_t last = (size_t)(pos0 + T - 1) * st;
            for (size_t i = 0; i < st; i++) { kc[last + i] += 5.0f; vc[last + i] -= 3.0f; }
            be->write(be, cache, 0, kc, nkv);
            be->write(be, cache, nkv, vc, nkv);
            be->attention(be, qb, &cache, ob, Hq, Hkv, D);
            be->read(be, ob, 0, out2, nq);
            size_t before = (size_t)(T - 1) * Hq * D;
            CHECKF(memcmp(out, out2, sizeof(float) * before) == 0, "attention T %d pos0 %d: a token saw a later one", T, pos0);
            int changed = 0;
            for (size_t i = before; i < nq; i++) changed |= out[i] != out2[i];
            CHECK(changed);   /* ...while the last token does see its own key */

            be->free_buf(be, qb); be->free_buf(be, cache); be->free_buf(be, ob);
            free(q); free(kc); free(vc); free(out); free(out2);
            be->destroy(be);
        }
    }
}

/* A step that mixes sequences: each token is rotated by its own position,
 * stored in its own sequence's cache and attends to that cache alone, up
 * to its own position (the formulas above, per token). */
static void test_batched(void) {
    enum { T = 5, N_SEQ = 3, Hq = 4, Hkv = 2, D = 8, N_CTX = 16 };
    static const int pos[T] = {4, 0, 9, 10, 5}, seq[T] = {1, 0, 2, 2, 1}, ids[T] = {0};
    size_t st = (size_t)Hkv * D, nq = (size_t)T * Hq * D, nk = (size_t)T * st, nkv = (size_t)N_CTX * st;
    be = open_ref(T, 1, 1, N_CTX, Hq, Hkv, D, 1e4);
    float q[T * Hq * D], k[T * Hkv * D], v[T * Hkv * D], qo[T * Hq * D], ko[T * Hkv * D], out[T * Hq * D];
    float kc[N_SEQ][N_CTX * Hkv * D], vc[N_SEQ][N_CTX * Hkv * D], c[N_CTX * Hkv * D];
    fs_err e;
    fs_buf *qb = rand_act(q, nq, 2.0), *kb = rand_act(k, nk, 2.0), *vb = rand_act(v, nk, 1.0), *ob = be->alloc(be, nq, &e);
    fs_buf *caches[N_SEQ];
    for (int i = 0; i < N_SEQ; i++) {   /* earlier positions: random, as earlier steps left them */
        caches[i] = be->kv_alloc(be, N_CTX, Hkv, D, &e);
        for (size_t j = 0; j < nkv; j++) kc[i][j] = (float)(urand() * 2), vc[i][j] = (float)urand();
        be->write(be, caches[i], 0, kc[i], nkv);
        be->write(be, caches[i], nkv, vc[i], nkv);
    }
    be->set_step(be, &(fs_step){T, ids, pos, seq, N_SEQ});
    be->rope_kv(be, qb, kb, vb, NULL, NULL, 1e-6f, caches, Hq, Hkv, D, NULL);
    be->attention(be, qb, caches, ob, Hq, Hkv, D);
    be->read(be, qb, 0, qo, nq);
    be->read(be, kb, 0, ko, nk);
    be->read(be, ob, 0, out, nq);
    double worst_rope = 0, worst_attn = 0, ref[8];
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < Hq + Hkv; h++) {   /* rotated by the token's own position */
            const float *in = h < Hq ? q + ((size_t)t * Hq + h) * D : k + ((size_t)t * Hkv + h - Hq) * D;
            const float *got = h < Hq ? qo + ((size_t)t * Hq + h) * D : ko + ((size_t)t * Hkv + h - Hq) * D;
            for (int i = 0; i < D / 2; i++) {
                double ang = hf_angle(pos[t], i, D, 1e4), a = in[i], b = in[i + D / 2];
                double e0 = fmax(fabs(got[i] - (a * cos(ang) - b * sin(ang))), fabs(got[i + D / 2] - (b * cos(ang) + a * sin(ang))));
                if (!(e0 / (1 + fabs(a) + fabs(b)) <= worst_rope)) worst_rope = e0 / (1 + fabs(a) + fabs(b));
            }
        }
        /* the cache the formula reads: the token's sequence's, with what
         * this step stored (its own and earlier tokens of its sequence) */
        for (int u = 0; u <= t; u++)
            if (seq[u] == seq[t]) {
                memcpy(kc[seq[t]] + (size_t)pos[u] * st, ko + (size_t)u * st, st * sizeof(float));
                memcpy(vc[seq[t]] + (size_t)pos[u] * st, v + (size_t)u * st, st * sizeof(float));
            }
        for (int h = 0; h < Hq; h++) {
            ref_attention(qo + (size_t)t * Hq * D, kc[seq[t]], vc[seq[t]], st, ref, 0, h, pos[t], Hq, Hkv, D);
            for (int d = 0; d < D; d++) {
                double err = fabs(out[((size_t)t * Hq + h) * D + d] - ref[d]) / (1 + fabs(ref[d]));
                if (!(err <= worst_attn)) worst_attn = err;
            }
        }
    }
    CHECKF(worst_rope <= TOL, "batched rope_kv: err %g", worst_rope);
    CHECKF(worst_attn <= TOL, "batched attention: err %g", worst_attn);
    /* each sequence's cache: its tokens at their positions, the rest as it was */
    for (int i = 0; i < N_SEQ; i++) {
        for (int t = 0; t < T; t++)
            if (seq[t] == i) {
                memcpy(kc[i] + (size_t)pos[t] * st, ko + (size_t)t * st, st * sizeof(float));
                memcpy(vc[i] + (size_t)pos[t] * st, v + (size_t)t * st, st * sizeof(float));
            }
        be->read(be, caches[i], 0, c, nkv);
        CHECKF(memcmp(c, kc[i], sizeof c) == 0, "batched rope_kv: the keys of sequence %d", i);
        be->read(be, caches[i], nkv, c, nkv);
        CHECKF(memcmp(c, vc[i], sizeof c) == 0, "batched rope_kv: the values of sequence %d", i);
        be->free_buf(be, caches[i]);
    }
    be->free_buf(be, qb); be->free_buf(be, kb); be->free_buf(be, vb); be->free_buf(be, ob);
    be->destroy(be);
}

static void test_copy_argmax(void) {
    be = open_ref(1, 1, 1, 1, 1, 1, 2, 1e4);
    size_t n = 300;
    float *g = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * n);
    fs_buf *gb = rand_act(g, n, 8.0), *ub = rand_act(u, n, 2.0);
    be->copy(be, ub, 1, gb, 2, n - 2);   /* offsets on both sides */
    be->read(be, gb, 0, o, n);
    CHECK(o[0] == g[0] && o[1] == g[1] && memcmp(o + 2, u + 1, sizeof(float) * (n - 2)) == 0);

    /* argmax: the largest, the lowest index on ties, -1 for any NaN */
    float x[8] = {-INFINITY, 1.5f, -3.0f, 7.0f, 7.0f, 2.0f, 7.0f, -1.0f};
    be->write(be, gb, 0, x, 8);
    CHECK_EQ_INT(be->argmax(be, gb, 8), 3);
    CHECK_EQ_INT(be->argmax(be, gb, 3), 1);
    CHECK_EQ_INT(be->argmax(be, gb, 1), 0);
    x[5] = NAN;
    be->write(be, gb, 0, x, 8);
    CHECK_EQ_INT(be->argmax(be, gb, 8), -1);
    CHECK_EQ_INT(be->argmax(be, gb, 5), 3);   /* the NaN is beyond n */
    x[0] = NAN;
    be->write(be, gb, 0, x, 8);
    CHECK_EQ_INT(be->argmax(be, gb, 8), -1);
    be->free_buf(be, gb); be->free_buf(be, ub);
    free(g); free(u); free(o);
    be->destroy(be);
}

int main(void) {
    test_embed();
    test_rmsnorm();
    test_matmul();
    test_rope_kv();
    test_attention();
    test_batched();
    test_copy_argmax();
    return TEST_SUMMARY();
}
