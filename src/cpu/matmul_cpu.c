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
    size_t bytes = 0;   /* the decode chunks' size: one for the pass (cpu_backend.h) */
    for (int i = 0; i < n; i++) bytes += fs_dtype_row_bytes(out[i].W->dtype, K) * (size_t)out[i].N;
    f->decode_chunk = fs_cpu_pass_chunk(bytes, f->nth);
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
