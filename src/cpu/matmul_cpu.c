/* matmul_cpu.c - the CPU backend's matmul op: up to FS_MATMUL_MAX linear
 * layers that read one input, in one parallel pass over all cores.
 *
 *   y_i[t, n] (+)= sum_k in[t, k] * W_i[n, k]      in: [T, K] f32   W_i: [N_i, K]   y_i: [T, N_i]
 *   in = x, rmsnorm(x, norm) or silu(x) * up     (backend.h, fs_mm_in)
 *
 * The same arithmetic as the unfused sequence it replaces, step by step:
 *   1. the input's rmsnorm or SwiGLU is computed once into the reserved
 *      rows x_in (rmsnorm_cpu.c, swiglu_cpu.c) - what the separate op wrote
 *      into an activation buffer;
 *   2. if any weight is quantized, x_in is quantized to Q8_0 once for all
 *      of them (matmul_quant.c); if a bf16 kernel reads it as three bf16
 *      parts (AMX, vdpbf16ps), it is split once (matmul_float.c);
 *   3. each weight's rows are cut into chunks (matmul_float.c for f32 /
 *      f16 / bf16 weights, matmul_quant.c for Q8_0 / Q4_0): weight i's
 *      chunks are numbered after weight i-1's, and the pool runs them all
 *      as one parallel loop. A decode step then waits for the slowest
 *      thread once per call instead of once per weight (q/k/v, gate/up);
 *   4. an output that is added to (the residual, fs_linear.add) is
 *      computed into reserved scratch and added to y by the chunk that
 *      computed it, while its rows are in cache: the same f32 additions as
 *      the separate add (add_cpu.c), spread over the threads.
 * So the results are bit for bit those of the separate ops.
 *
 * The scratch of step 4 holds max_T * max_K floats (backend_cpu.c says
 * why that is enough for a transformer); a call whose added outputs need
 * more is run in slabs of tokens, each slab a complete pass.
 *
 * Docs: docs/forward.md
 */
#include <string.h>

#include "cpu_backend.h"

typedef struct {
    fs_cpu *f;
    int n, T;
    int first[FS_MATMUL_MAX + 1];   /* weight i has chunks [first[i], first[i + 1]) */
    fs_cpu_job job[FS_MATMUL_MAX];
    int N[FS_MATMUL_MAX];
    const float *sum[FS_MATMUL_MAX];   /* NULL, or where weight i's output is computed before y += it */
    float *y[FS_MATMUL_MAX];
} pass;

static void pass_chunk(void *arg, int c, int tid) {
    const pass *p = arg;
    int i = 0;
    while (c >= p->first[i + 1]) i++;
    c -= p->first[i];
    p->job[i].fn(p->job[i].arg, c, tid);
    if (!p->sum[i]) return;
    int N = p->N[i], n0 = c * p->job[i].rows, n1 = n0 + p->job[i].rows < N ? n0 + p->job[i].rows : N;
    for (int t = 0; t < p->T; t++) {
        size_t o = (size_t)t * (size_t)N + (size_t)n0;
        fs_cpu_add(p->f->isa, p->y[i] + o, p->sum[i] + o, (size_t)(n1 - n0));
    }
}

/* The rows of thread t's share when the chunks of R rows of weights N[0
 * .. n) (in that order, `chunks` of them) are split by count among nth
 * threads. */
static long share_rows(const int *N, int n, long R, int chunks, int nth, int t) {
    int lo, hi;
    fs_split_range(chunks, 1, t, nth, &lo, &hi);
    long rows = 0;
    for (int i = 0, first = 0; i < n; i++) {   /* weight i's chunks are [first, first + c) */
        int c = (int)((N[i] + R - 1) / R), a = lo > first ? lo : first, b = hi < first + c ? hi : first + c;
        if (a < b) rows += ((long)(b - first) * R < N[i] ? (long)(b - first) * R : N[i]) - (long)(a - first) * R;
        first += c;
    }
    return rows;
}

/* The choice: every multiple of FS_DECODE_ALIGN from half the row count
 * that makes chunks of FS_DECODE_CHUNK_BYTES or less (a multiple of the
 * threads, at least two a thread) up to that count, scored in bytes:
 * half the gap between the fullest and the emptiest share (one thread
 * waits for the other that long, counted in what it could have read),
 * plus FS_DECODE_RESTART for each chunk a thread runs (the call and the
 * kernel's restart; a guess that keeps the long lm_head pass from being
 * cut twice as fine to even out its last quarter chunk). */
#define FS_DECODE_RESTART 2048
int fs_cpu_pass_rows(const int *N, int n, size_t row_bytes, int nth) {
    long total = 0;
    for (int i = 0; i < n; i++) total += N[i];
    if (nth < 1) nth = 1;
    if (row_bytes < 1) row_bytes = 1;
    long per = nth, bytes = total * (long)row_bytes, cap = per * FS_DECODE_CHUNK_BYTES;
    long m = (bytes + cap - 1) / cap;   /* chunks a thread at FS_DECODE_CHUNK_BYTES or less */
    if (m < 2) m = 2;
    long target = (total + per * m - 1) / (per * m), A = FS_DECODE_ALIGN, best = -1;
    double best_cost = 0;
    for (long R = (target / 2 + A - 1) / A * A; R <= (target + A - 1) / A * A; R += A) {
        if (R < A) continue;
        long lo = -1, hi = 0, chunks = 0;
        for (int i = 0; i < n; i++) chunks += (N[i] + R - 1) / R;
        if (chunks < 2 * per && R > A) continue;   /* too few to steal from */
        for (int t = 0; t < nth; t++) {
            long r = share_rows(N, n, R, (int)chunks, nth, t);
            if (lo < 0 || r < lo) lo = r;
            if (r > hi) hi = r;
        }
        double cost = 0.5 * (double)(hi - lo) * (double)row_bytes +
                      (double)((chunks + per - 1) / per) * FS_DECODE_RESTART;
        if (best < 0 || cost < best_cost) best = R, best_cost = cost;
    }
    return best > 0 ? (int)best : (int)A;
}

/* The decode chunks' rows for this pass's weights (one count for the
 * pass, cpu_backend.h), remembered per shape: a model has a handful of
 * passes, each run once a layer. */
static int pass_rows(fs_cpu *f, int K, const fs_linear *out, int n) {
    int N[FS_MATMUL_MAX] = {0};
    size_t row_bytes = 0;
    for (int i = 0; i < n; i++) {
        N[i] = out[i].N;
        size_t rb = fs_dtype_row_bytes(out[i].W->dtype, K);
        if (rb > row_bytes) row_bytes = rb;
    }
    for (int c = 0; c < FS_PASS_SHAPES && f->pass_shapes[c].rows; c++) {
        const struct fs_pass_shape *p = &f->pass_shapes[c];
        if (p->n == n && p->row_bytes == row_bytes && !memcmp(p->N, N, sizeof N)) return p->rows;
    }
    int rows = fs_cpu_pass_rows(N, n, row_bytes, f->nth);
    struct fs_pass_shape *p = &f->pass_shapes[f->n_pass_shapes++ % FS_PASS_SHAPES];   /* the oldest goes */
    p->n = n, p->row_bytes = row_bytes, p->rows = rows;
    memcpy(p->N, N, sizeof N);
    return rows;
}

/* Tokens [t0, t0 + T) of the call. */
static void slab(fs_cpu *f, const fs_mm_in *in, int t0, int T, int K, const fs_linear *out, int n) {
    size_t off = (size_t)t0 * (size_t)K;
    const float *x = buf_f32(in->x) + off;
    if (in->norm) {
        fs_cpu_rmsnorm_rows(f->isa, x, in->norm, f->ref.x_in, T, K, in->eps);
        x = f->ref.x_in;
    } else if (in->up) {
        fs_cpu_swiglu(f, x, buf_f32(in->up) + off, f->ref.x_in, (size_t)T * (size_t)K);
        x = f->ref.x_in;
    }
    int split = 0;
    unsigned quant = 0;   /* the quantized dtypes, a bit each */
    for (int i = 0; i < n; i++) {
        if (fs_dtype_is_quant(out[i].W->dtype)) quant |= 1u << out[i].W->dtype;
        split |= fs_cpu_wants_split(f, out[i].W->dtype, T);
    }
    if (quant) fs_cpu_quantize_input(f, x, T, K, quant);
    if (split) fs_cpu_split_input(f, x, T, K);
    f->decode_rows = pass_rows(f, K, out, n);   /* for the jobs that cut rows like a decode */
    pass p = {.f = f, .n = n, .T = T};
    union {
        fs_float_job fl;
        fs_quant_job q;
    } args[FS_MATMUL_MAX];
    float *sum = f->y_add;
    for (int i = 0; i < n; i++) {
        const fs_linear *o = &out[i];
        p.N[i] = o->N;
        p.y[i] = buf_f32_mut(o->y) + (size_t)t0 * (size_t)o->N;
        p.sum[i] = NULL;
        float *y = p.y[i];
        if (o->add) {
            p.sum[i] = y = sum;
            sum += (size_t)T * (size_t)o->N;
        }
        if (fs_dtype_is_quant(o->W->dtype)) fs_cpu_quant_job(f, &args[i].q, o->W, y, T, K, o->N, &p.job[i]);
        else fs_cpu_float_job(f, &args[i].fl, o->W, x, y, T, K, o->N, &p.job[i]);
        p.first[i + 1] = p.first[i] + p.job[i].chunks;
    }
    if (n == 1 && !p.sum[0]) fs_threadpool_for(f->pool, p.first[1], p.job[0].fn, p.job[0].arg);
    else fs_threadpool_for(f->pool, p.first[n], pass_chunk, &p);
}

void fs_cpu_matmul(fs_backend *b, const fs_mm_in *in, int T, int K, const fs_linear *out, int n) {
    fs_cpu *f = cpu_ctx(b);
    size_t added = 0;   /* floats of one token's outputs that are added */
    for (int i = 0; i < n; i++)
        if (out[i].add) added += (size_t)out[i].N;
    int step = T;
    if (added && (size_t)T * added > f->y_add_n) step = (int)(f->y_add_n / added);
    for (int t0 = 0; t0 < T; t0 += step) slab(f, in, t0, T - t0 < step ? T - t0 : step, K, out, n);
}
