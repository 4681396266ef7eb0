/* matmul.c - every linear layer: y = x W^T, with its neighbours folded in.
 *
 *   y[t, n] (+)= sum_k in[t, k] * W[n, k]
 *       in: [T, K] f32   W: [N, K] bf16/f16/f32/Q8_0/Q4_0   y: [T, N] f32
 *
 * This is where nearly all the time goes (q/k/v/o, gate/up/down, lm_head).
 * W is stored [out, in] as in PyTorch's nn.Linear, so one output feature is
 * one contiguous weight row. One call computes up to FS_MATMUL_MAX linear
 * layers that read the same input (q/k/v; gate/up), and the input can be
 * read through the step before it (backend.h, fs_mm_in):
 *   norm  in = rmsnorm(x, norm)       the block's input_layernorm
 *   up    in = silu(x) * up           SwiGLU: x is gate_proj's output
 * and an output can be added to instead of overwritten (fs_linear.add):
 * the residual connection, x += block(x). Each block adds its output back
 * onto the residual stream instead of replacing it, so the signal from the
 * embedding reaches the last layer unchanged unless a block decides
 * otherwise.
 *
 * The reference computes exactly the unfused sequence: the transformed
 * input is stored as f32 rows (rmsnorm.c, swiglu.c), and with add each dot
 * product is rounded to f32 and then added to y in f32 - what a matmul into
 * a scratch row followed by y += row computes.
 *
 * Loop order: blocks of FS_REF_ROWS weight rows outermost, converted to
 * f32 once (exact: fs_row_to_f32), then all T tokens for that block, then
 * k. A weight row is read from memory once per call and reused T times
 * while it sits in cache, so a prefill of T tokens streams the weights once
 * instead of T times. Within a block, the ROWS dot products are
 * independent, so the CPU overlaps their additions instead of waiting on
 * one chain, while every y[t, n] is still the same sum in the same order.
 *
 * Numerics: each dot product is accumulated in double, k = 0 .. K-1 in
 * order (see ref.h), so the result does not depend on T, on ROWS or on the
 * row's position in a block: a decode step gives exactly the numbers a
 * prefill gives. Q8_0 / Q4_0 weights are dequantized (d * q, quant.h) and
 * the activations stay f32, so this path measures the error of the weight
 * format alone; the CPU backend quantizes the activations too.
 *
 * Docs: docs/forward.md
 */
#include "quant.h"
#include "ref.h"

_Static_assert(FS_REF_ROWS == 4, "linear() below computes 4 rows at a time");

/* The input as the linear layers read it: x itself, or x transformed into
 * the reserved rows r->x_in. */
static const float *input(fs_ref *r, const fs_mm_in *in, int T, int K) {
    const float *x = buf_f32(in->x);
    if (in->norm) {
        for (int t = 0; t < T; t++)
            fs_ref_rmsnorm_row(x + (size_t)t * (size_t)K, in->norm, r->x_in + (size_t)t * (size_t)K, K, in->eps);
        return r->x_in;
    }
    if (in->up) {
        fs_ref_swiglu(x, buf_f32(in->up), r->x_in, (size_t)T * (size_t)K);
        return r->x_in;
    }
    return x;
}

static void linear(fs_ref *r, const float *x, const fs_linear *o, int T, int K) {
    const fs_buf *W = o->W;
    float *y = buf_f32_mut(o->y), *w = r->w_rows;
    size_t row_bytes = fs_dtype_row_bytes(W->dtype, K);
    for (int n0 = 0; n0 < o->N; n0 += FS_REF_ROWS) {
        int rows = o->N - n0 < FS_REF_ROWS ? o->N - n0 : FS_REF_ROWS;
        for (int i = 0; i < rows; i++)
            fs_row_to_f32(W->dtype, (const uint8_t *)W->data + (size_t)(n0 + i) * row_bytes, K, w + (size_t)i * (size_t)K);
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * (size_t)K;
            double acc[FS_REF_ROWS] = {0};
            if (rows == FS_REF_ROWS) {
                const float *w0 = w, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
                for (int k = 0; k < K; k++) {
                    double xk = xt[k];
                    acc[0] += xk * w0[k];
                    acc[1] += xk * w1[k];
                    acc[2] += xk * w2[k];
                    acc[3] += xk * w3[k];
                }
            } else {   /* the last N % ROWS rows, one at a time */
                for (int i = 0; i < rows; i++)
                    for (int k = 0; k < K; k++) acc[i] += (double)xt[k] * w[(size_t)i * (size_t)K + (size_t)k];
            }
            float *yt = y + (size_t)t * (size_t)o->N + (size_t)n0;
            for (int i = 0; i < rows; i++) yt[i] = o->add ? yt[i] + (float)acc[i] : (float)acc[i];
        }
    }
}

void fs_ref_matmul(fs_backend *b, const fs_mm_in *in, int T, int K, const fs_linear *out, int n) {
    fs_ref *r = ref_ctx(b);
    const float *x = input(r, in, T, K);
    for (int i = 0; i < n; i++) linear(r, x, &out[i], T, K);
}
