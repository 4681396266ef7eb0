/* matmul.c - every linear layer: y = x W^T.
 *
 *   y[t, n] = sum_k x[t, k] * W[n, k]      x: [T, K] f32   W: [N, K] bf16/f16/f32/Q8_0/Q4_0   y: [T, N] f32
 *
 * This is where nearly all the time goes (q/k/v/o, gate/up/down, lm_head).
 * W is stored [out, in] as in PyTorch's nn.Linear, so one output feature is
 * one contiguous weight row.
 *
 * Loop order: blocks of ROWS weight rows outermost, then all T tokens for
 * that block, then k. A weight row is read from memory once per call and
 * reused T times while it sits in cache, so a prefill of T tokens streams
 * the weights once instead of T times. Within a block, the ROWS dot
 * products are independent, so the CPU overlaps their additions instead of
 * waiting on one chain (about 3x faster than one row at a time), while
 * every y[t, n] is still the same sum in the same order.
 *
 * Numerics: each dot product is accumulated in double, k = 0 .. K-1 in
 * order (see cpu.h), so the result does not depend on T, on ROWS or on the
 * row's position in a block: a decode step gives exactly the numbers a
 * prefill gives. bf16 widens to f32 with a 16-bit shift (util.h), f16
 * through fs_f16_to_f32; both are exact. Q8_0 / Q4_0 weights are
 * dequantized element by element (d * q, quant.h) and the activations stay
 * f32, so this path measures the error of the weight format alone; the fast
 * backend quantizes the activations too.
 *
 * Docs: docs/forward.md
 */
#include "cpu.h"
#include "quant.h"

#define ROWS 4

/* W element i as f32. dt is a constant at each call site below, so the
 * compiler removes the switch from the inner loop. */
static inline float w_at(const void *W, fs_dtype dt, size_t i) {
    switch (dt) {
    case FS_DTYPE_BF16: return fs_bf16_to_f32(((const uint16_t *)W)[i]);
    case FS_DTYPE_F16: return fs_f16_to_f32(((const uint16_t *)W)[i]);
    /* Block formats: K % 32 == 0, so flattened element i = n*K + k sits in
     * block i / 32 at position i % 32. The value is d * q rounded to f32,
     * bit for bit what fs_dequantize_row_* gives. */
    case FS_DTYPE_Q8_0: {
        const fs_block_q8_0 *blk = (const fs_block_q8_0 *)W + i / FS_QK;
        return fs_f16_to_f32(blk->d) * (float)blk->qs[i % FS_QK];
    }
    case FS_DTYPE_Q4_0: {
        const fs_block_q4_0 *blk = (const fs_block_q4_0 *)W + i / FS_QK;
        size_t j = i % FS_QK;
        int q = j < FS_QK / 2 ? blk->qs[j] & 15 : blk->qs[j - FS_QK / 2] >> 4;
        return fs_f16_to_f32(blk->d) * (float)(q - 8);
    }
    case FS_DTYPE_F32: break;
    }
    return ((const float *)W)[i];
}

static inline void matmul_dt(const float *xs, const void *W, fs_dtype dt, float *ys, int T, int K, int N) {
    for (int n0 = 0; n0 < N; n0 += ROWS) {
        int rows = N - n0 < ROWS ? N - n0 : ROWS;
        for (int t = 0; t < T; t++) {
            const float *xt = xs + (size_t)t * (size_t)K;
            double acc[ROWS] = {0};
            if (rows == ROWS) {
                size_t w0 = (size_t)n0 * (size_t)K;
                for (int k = 0; k < K; k++) {
                    double xk = xt[k];
                    acc[0] += xk * w_at(W, dt, w0 + (size_t)k);
                    acc[1] += xk * w_at(W, dt, w0 + (size_t)K + (size_t)k);
                    acc[2] += xk * w_at(W, dt, w0 + 2 * (size_t)K + (size_t)k);
                    acc[3] += xk * w_at(W, dt, w0 + 3 * (size_t)K + (size_t)k);
                }
            } else {   /* the last N % ROWS rows, one at a time */
                for (int r = 0; r < rows; r++) {
                    size_t w0 = (size_t)(n0 + r) * (size_t)K;
                    for (int k = 0; k < K; k++) acc[r] += (double)xt[k] * w_at(W, dt, w0 + (size_t)k);
                }
            }
            for (int r = 0; r < rows; r++) ys[(size_t)t * (size_t)N + (size_t)(n0 + r)] = (float)acc[r];
        }
    }
}

void fs_cpu_matmul(fs_backend *b, const fs_buf *x, const fs_buf *W, fs_buf *y, int T, int K, int N) {
    (void)b;
    switch (W->dtype) {
    case FS_DTYPE_BF16: matmul_dt(cpu_f32(x), W->data, FS_DTYPE_BF16, cpu_f32_mut(y), T, K, N); break;
    case FS_DTYPE_F16: matmul_dt(cpu_f32(x), W->data, FS_DTYPE_F16, cpu_f32_mut(y), T, K, N); break;
    case FS_DTYPE_F32: matmul_dt(cpu_f32(x), W->data, FS_DTYPE_F32, cpu_f32_mut(y), T, K, N); break;
    case FS_DTYPE_Q8_0: matmul_dt(cpu_f32(x), W->data, FS_DTYPE_Q8_0, cpu_f32_mut(y), T, K, N); break;
    case FS_DTYPE_Q4_0: matmul_dt(cpu_f32(x), W->data, FS_DTYPE_Q4_0, cpu_f32_mut(y), T, K, N); break;
    }
}
