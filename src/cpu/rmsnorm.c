/* rmsnorm.c - root-mean-square normalisation, per row.
 *
 *   y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w      x, y: [rows, n]   w: [n]
 *
 * Qwen3 uses it in four places: input_layernorm and post_attention_layernorm
 * (rows = T, n = H; fused into the matmul that reads the result, matmul.c),
 * the final model.norm, and QK-norm - q_norm / k_norm normalise every head
 * of q and k separately before RoPE, which is the same op seen as T*Hq (or
 * T*Hkv) rows of n = D (fused into rope_kv, rope_kv.c).
 *
 * Order of operations follows Hugging Face's Qwen3RMSNorm in float32:
 * scale = rsqrt(mean + eps); y = w * (x * scale). The mean is accumulated in
 * double (see ref.h); x * scale is rounded to f32 before multiplying by w,
 * as PyTorch does. eps inside the sqrt keeps an all-zero row finite.
 *
 * Docs: docs/forward.md
 */
#include <math.h>

#include "ref.h"

void fs_ref_rmsnorm_row(const float *x, const fs_buf *w, float *y, int n, float eps) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    float var = (float)(ss / n) + eps;   /* f32 add, as PyTorch */
    float scale = (float)(1.0 / sqrt((double)var));
    for (int i = 0; i < n; i++) {
        float normed = x[i] * scale;
        y[i] = buf_get(w, (size_t)i) * normed;
    }
}

void fs_ref_rmsnorm(fs_backend *b, const fs_buf *x, const fs_buf *w, fs_buf *y, int rows, int n, float eps) {
    (void)b;
    for (int r = 0; r < rows; r++)
        fs_ref_rmsnorm_row(buf_f32(x) + (size_t)r * (size_t)n, w, buf_f32_mut(y) + (size_t)r * (size_t)n, n, eps);
}
