/* test_ops.c - every CPU backend op against a plain double-precision formula.
 *
 * Random inputs, many shapes (odd sizes, T = 1 and T > 1), every weight dtype.
 * The ops are called through the fs_backend table, the way forward.c calls
 * them, so the seam itself is tested too. Tolerances: the reference backend
 * accumulates in double and rounds once (src/cpu/cpu.h), so each result is
 * within a few f32 ulps of the exact value: 2e-6 * (1 + |ref|).
 *
 * Docs: docs/forward.md, docs/testing.md
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "backend.h"
#include "test.h"

#define TOL 2e-6

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* uniform [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static fs_backend *be;

/* An f32 activation buffer filled with random values in [-scale, scale). */
static fs_buf *rand_act(float *host, size_t n, double scale) {
    fs_err e;
    fs_buf *b = be->alloc(be, n, &e);
    for (size_t i = 0; i < n; i++) host[i] = (float)(urand() * scale);
    be->write(be, b, 0, host, n);
    return b;
}

/* A weight tensor of the given dtype holding random values; deq gets the
 * exact f32 value of each stored element (what the op must read). */
typedef struct { fs_tensor t; void *data; fs_buf *buf; } weight;
static weight rand_weight(fs_dtype dt, int64_t d0, int64_t d1, float *deq, double scale) {
    weight w;
    memset(&w, 0, sizeof w);
    size_t n = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    size_t es = dt == FS_DTYPE_F32 ? 4 : 2;
    w.data = malloc(n * es);
    for (size_t i = 0; i < n; i++) {
        float v = (float)(urand() * scale);
        if (dt == FS_DTYPE_F32) { ((float *)w.data)[i] = v; deq[i] = v; }
        else if (dt == FS_DTYPE_BF16) { uint16_t h = fs_f32_to_bf16(v); ((uint16_t *)w.data)[i] = h; deq[i] = fs_bf16_to_f32(h); }
        else { uint16_t h = fs_f32_to_f16(v); ((uint16_t *)w.data)[i] = h; deq[i] = fs_f16_to_f32(h); }
    }
    w.t.name = "test.weight";
    w.t.dtype = dt;
    w.t.ndim = d1 ? 2 : 1;
    w.t.shape[0] = d0;
    w.t.shape[1] = d1;
    w.t.data = w.data;
    w.t.nbytes = n * es;
    fs_err e;
    w.buf = be->upload(be, &w.t, &e);
    return w;
}
static void free_weight(weight *w) { be->free_buf(be, w->buf); free(w->data); }

static const fs_dtype dtypes[] = {FS_DTYPE_F32, FS_DTYPE_BF16, FS_DTYPE_F16};

static void test_embed(void) {
    int V = 37, H = 13;
    for (int d = 0; d < 3; d++) {
        float *deq = malloc(sizeof(float) * V * H);
        weight w = rand_weight(dtypes[d], V, H, deq, 2.0);
        int ids[6] = {0, 36, 5, 5, 17, 1};
        for (int T = 1; T <= 6; T += 5) {
            float out[6 * 13];
            fs_err e;
            fs_buf *o = be->alloc(be, (size_t)T * H, &e);
            be->embed(be, w.buf, ids, T, H, o);
            be->read(be, o, 0, out, (size_t)T * H);
            int bad = 0;
            for (int t = 0; t < T; t++)
                for (int i = 0; i < H; i++) bad += out[t * H + i] != deq[ids[t] * H + i];
            CHECKF(bad == 0, "embed dtype %s T %d: %d elements differ", fs_dtype_name(dtypes[d]), T, bad);
            be->free_buf(be, o);
        }
        free_weight(&w);
        free(deq);
    }
}

static void test_rmsnorm(void) {
    int shapes[][2] = {{1, 1}, {1, 7}, {3, 64}, {5, 33}, {2, 128}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int rows = shapes[si][0], n = shapes[si][1];
        for (int d = 0; d < 3; d++) {
            float *x = malloc(sizeof(float) * rows * n), *y = malloc(sizeof(float) * rows * n);
            float *w = malloc(sizeof(float) * n);
            fs_buf *xb = rand_act(x, (size_t)rows * n, 3.0);
            weight wt = rand_weight(dtypes[d], n, 0, w, 1.5);
            fs_err e;
            fs_buf *yb = be->alloc(be, (size_t)rows * n, &e);
            /* a large eps in some cases, so a forgotten eps cannot hide */
            float eps = (si % 2) ? 0.25f : 1e-6f;
            be->rmsnorm(be, xb, wt.buf, yb, rows, n, eps);
            be->read(be, yb, 0, y, (size_t)rows * n);
            double worst = 0;
            for (int r = 0; r < rows; r++) {
                double ss = 0;
                for (int i = 0; i < n; i++) ss += (double)x[r * n + i] * x[r * n + i];
                double scale = 1.0 / sqrt(ss / n + (double)eps);
                for (int i = 0; i < n; i++) {
                    double ref = (double)w[i] * x[r * n + i] * scale;
                    double err = fabs(y[r * n + i] - ref) / (1 + fabs(ref));
                    if (err > worst) worst = err;
                }
            }
            CHECKF(worst <= TOL, "rmsnorm rows %d n %d dtype %s: err %g", rows, n, fs_dtype_name(dtypes[d]), worst);
            /* in place (y = x), as the per-head q_norm / k_norm use it */
            be->rmsnorm(be, xb, wt.buf, xb, rows, n, eps);
            float *y2 = malloc(sizeof(float) * rows * n);
            be->read(be, xb, 0, y2, (size_t)rows * n);
            CHECK(memcmp(y, y2, sizeof(float) * rows * n) == 0);
            free(y2);
            be->free_buf(be, xb); be->free_buf(be, yb); free_weight(&wt);
            free(x); free(y); free(w);
        }
    }
}

static void test_matmul(void) {
    int shapes[][3] = {{1, 1, 1}, {1, 7, 5}, {3, 13, 9}, {4, 64, 33}, {2, 129, 17}, {7, 250, 3}, {1, 1023, 11}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int T = shapes[si][0], K = shapes[si][1], N = shapes[si][2];
        for (int d = 0; d < 3; d++) {
            float *x = malloc(sizeof(float) * T * K), *W = malloc(sizeof(float) * N * K);
            float *y = malloc(sizeof(float) * T * N);
            fs_buf *xb = rand_act(x, (size_t)T * K, 2.0);
            weight wt = rand_weight(dtypes[d], N, K, W, 1.0);
            fs_err e;
            fs_buf *yb = be->alloc(be, (size_t)T * N, &e);
            be->matmul(be, xb, wt.buf, yb, T, K, N);
            be->read(be, yb, 0, y, (size_t)T * N);
            double worst = 0;
            for (int t = 0; t < T; t++)
                for (int n = 0; n < N; n++) {
                    double ref = 0;
                    for (int k = 0; k < K; k++) ref += (double)x[t * K + k] * W[(size_t)n * K + k];
                    double err = fabs(y[t * N + n] - ref) / (1 + fabs(ref));
                    if (err > worst) worst = err;
                }
            CHECKF(worst <= TOL, "matmul T %d K %d N %d dtype %s: err %g", T, K, N, fs_dtype_name(dtypes[d]), worst);
            /* row t of a batch equals the same row alone (decode == prefill) */
            fs_buf *x1 = be->alloc(be, (size_t)K, &e), *y1 = be->alloc(be, (size_t)N, &e);
            be->copy(be, xb, (size_t)(T - 1) * K, x1, 0, (size_t)K);
            be->matmul(be, x1, wt.buf, y1, 1, K, N);
            float *yl = malloc(sizeof(float) * N);
            be->read(be, y1, 0, yl, (size_t)N);
            CHECK(memcmp(yl, y + (size_t)(T - 1) * N, sizeof(float) * N) == 0);
            free(yl);
            be->free_buf(be, x1); be->free_buf(be, y1);
            be->free_buf(be, xb); be->free_buf(be, yb); free_weight(&wt);
            free(x); free(W); free(y);
        }
    }
}

/* HF's float32 angle: inv_freq = 1 / theta^(f32(2i)/D) in f32, angle = f32(p * inv_freq). */
static double hf_angle(int p, int i, int D, double theta) {
    float expo = (float)(2 * i) / (float)D;
    float inv = 1.0f / (float)pow((float)theta, (double)expo);
    return (double)((float)p * inv);
}

static void test_rope(void) {
    int Ds[] = {2, 8, 128};
    int pos0s[] = {0, 3, 100000};
    double thetas[] = {10000.0, 1000000.0};
    for (int di = 0; di < 3; di++)
        for (int pi = 0; pi < 3; pi++)
            for (int ti = 0; ti < 2; ti++) {
                int D = Ds[di], pos0 = pos0s[pi], T = 3, heads = 2, half = D / 2;
                double theta = thetas[ti];
                size_t n = (size_t)T * heads * D;
                float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
                fs_buf *xb = rand_act(x, n, 2.0);
                be->rope(be, xb, T, heads, D, pos0, theta);
                be->read(be, xb, 0, y, n);
                double worst_hf = 0, worst_exact = 0, worst_norm = 0;
                for (int t = 0; t < T; t++)
                    for (int h = 0; h < heads; h++)
                        for (int i = 0; i < half; i++) {
                            size_t o = ((size_t)t * heads + h) * D;
                            double a = x[o + i], b = x[o + i + half];
                            /* exact math: angle in double, no f32 rounding */
                            double ang = (pos0 + t) * pow(theta, -2.0 * i / D);
                            double r0 = a * cos(ang) - b * sin(ang), r1 = b * cos(ang) + a * sin(ang);
                            double e0 = fmax(fabs(y[o + i] - r0), fabs(y[o + i + half] - r1));
                            if (e0 > worst_exact) worst_exact = e0;
                            /* HF's f32 angle, rotation done in double */
                            ang = hf_angle(pos0 + t, i, D, theta);
                            r0 = a * cos(ang) - b * sin(ang); r1 = b * cos(ang) + a * sin(ang);
                            e0 = fmax(fabs(y[o + i] - r0), fabs(y[o + i + half] - r1));
                            if (e0 > worst_hf) worst_hf = e0;
                            /* a rotation keeps the pair's length */
                            double n0 = sqrt(a * a + b * b), n1 = hypot(y[o + i], y[o + i + half]);
                            if (fabs(n0 - n1) > worst_norm) worst_norm = fabs(n0 - n1);
                        }
                CHECKF(worst_hf <= 1e-6, "rope D %d pos0 %d theta %g: err vs HF angles %g", D, pos0, theta, worst_hf);
                CHECKF(worst_norm <= 1e-6, "rope D %d pos0 %d: norm changed by %g", D, pos0, worst_norm);
                if (pos0 < 100)   /* small angles: f32 angles are still accurate */
                    CHECKF(worst_exact <= 1e-5, "rope D %d pos0 %d theta %g: err vs exact %g", D, pos0, theta, worst_exact);
                if (pos0 == 0)    /* position 0 is the identity (first token only) */
                    CHECK(memcmp(x, y, sizeof(float) * heads * D) == 0);
                be->free_buf(be, xb);
                free(x); free(y);
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
            /* the cache's rows: Hkv * D floats, padded in every other case */
            size_t st = (size_t)Hkv * D + (size_t)(ci % 2) * 5;
            size_t nq = (size_t)T * Hq * D, nkv = (size_t)n_ctx * st;
            float *q = malloc(sizeof(float) * nq), *kc = malloc(sizeof(float) * nkv);
            float *vc = malloc(sizeof(float) * nkv), *out = malloc(sizeof(float) * nq);
            float *out2 = malloc(sizeof(float) * nq);
            fs_buf *qb = rand_act(q, nq, 2.0), *kb = rand_act(kc, nkv, 2.0), *vb = rand_act(vc, nkv, 1.0);
            /* positions never written must never be read: poison them */
            for (size_t i = (size_t)(pos0 + T) * st; i < nkv; i++) kc[i] = vc[i] = NAN;
            for (int j = 0; j < n_ctx; j++)   /* and so must the padding */
                for (size_t i = (size_t)Hkv * D; i < st; i++) kc[(size_t)j * st + i] = vc[(size_t)j * st + i] = NAN;
            be->write(be, kb, 0, kc, nkv);
            be->write(be, vb, 0, vc, nkv);
            fs_err e;
            fs_buf *ob = be->alloc(be, nq, &e), *sc = be->alloc(be, (size_t)n_ctx, &e);
            be->attention(be, qb, kb, vb, st, ob, sc, T, pos0, Hq, Hkv, D);
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
            for (size_t i = 0; i < (size_t)Hkv * D; i++) { kc[last + i] += 5.0f; vc[last + i] -= 3.0f; }
            be->write(be, kb, 0, kc, nkv);
            be->write(be, vb, 0, vc, nkv);
            be->attention(be, qb, kb, vb, st, ob, sc, T, pos0, Hq, Hkv, D);
            be->read(be, ob, 0, out2, nq);
            size_t before = (size_t)(T - 1) * Hq * D;
            CHECKF(memcmp(out, out2, sizeof(float) * before) == 0, "attention T %d pos0 %d: a token saw a later one", T, pos0);
            int changed = 0;
            for (size_t i = before; i < nq; i++) changed |= out[i] != out2[i];
            CHECK(changed);   /* ...while the last token does see its own key */

            be->free_buf(be, qb); be->free_buf(be, kb); be->free_buf(be, vb);
            be->free_buf(be, ob); be->free_buf(be, sc);
            free(q); free(kc); free(vc); free(out); free(out2);
        }
    }
}

static void test_swiglu_add_copy(void) {
    size_t ns[] = {1, 7, 300};
    for (int k = 0; k < 3; k++) {
        size_t n = ns[k];
        float *g = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * n);
        fs_buf *gb = rand_act(g, n, 8.0), *ub = rand_act(u, n, 2.0);
        be->swiglu(be, gb, ub, gb, n);   /* in place, as forward.c uses it */
        be->read(be, gb, 0, o, n);
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            double ref = g[i] / (1.0 + exp(-(double)g[i])) * u[i];
            double err = fabs(o[i] - ref) / (1 + fabs(ref));
            if (err > worst) worst = err;
        }
        CHECKF(worst <= TOL, "swiglu n %zu: err %g", n, worst);

        be->write(be, gb, 0, g, n);
        be->add(be, gb, ub, n);
        be->read(be, gb, 0, o, n);
        int bad = 0;
        for (size_t i = 0; i < n; i++) bad += o[i] != g[i] + u[i];
        CHECKF(bad == 0, "add n %zu: %d wrong", n, bad);

        if (n > 2) {   /* copy with offsets on both sides */
            be->write(be, gb, 0, g, n);
            be->copy(be, ub, 1, gb, 2, n - 2);
            be->read(be, gb, 0, o, n);
            CHECK(o[0] == g[0] && o[1] == g[1] && memcmp(o + 2, u + 1, sizeof(float) * (n - 2)) == 0);
        }
        be->free_buf(be, gb); be->free_buf(be, ub);
        free(g); free(u); free(o);
    }
}

static void test_backend_names(void) {
    fs_err e;
    fs_backend *b = fs_backend_new("cpu", &e);
    CHECK(b && !strcmp(b->name, "cpu"));
    if (b) b->destroy(b);
    CHECK(fs_backend_new("tpu", &e) == NULL && strstr(e.msg, "unknown backend 'tpu'"));
}

int main(void) {
    fs_err e;
    be = fs_backend_cpu_new(&e);
    if (!be) { fprintf(stderr, "%s\n", e.msg); return 1; }
    test_embed();
    test_rmsnorm();
    test_matmul();
    test_rope();
    test_attention();
    test_swiglu_add_copy();
    test_backend_names();
    be->destroy(be);
    return TEST_SUMMARY();
}
