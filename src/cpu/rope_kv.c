/* rope_kv.c - the attention inputs of a step, made ready: QK-norm, rotary
 * position embedding (RoPE, Hugging Face / NeoX layout), and the store of
 * K and V into the cache.
 *
 *   q: [T, Hq, D]   k, v: [T, Hkv, D]   q_norm, k_norm: [D] (or NULL)
 *   bias (or NULL): q_bias [Hq*D], k_bias, v_bias [Hkv*D]
 *   for each token t (position p = pos[t] of sequence seq[t], from the
 *   step): q, k, v += their bias (Qwen2), then each head of q and of k:
 *     x = rmsnorm(x, q_norm or k_norm)                  (rmsnorm.c, per head)
 *     for i < D/2, with a = x[i], b = x[i + D/2], angle = p * inv_freq[i]:
 *       x[i]       = a cos(angle) - b sin(angle)
 *       x[i + D/2] = b cos(angle) + a sin(angle)
 *   then position p of caches[seq[t]] holds k[t] and v[t].
 *
 * The biases are nn.Linear's "+ b" of q_proj, k_proj, v_proj: added here,
 * the first op to read q, k, v after their matmul, rather than in every
 * matmul kernel (only Qwen2 has them, and only these three).
 *
 * QK-norm (Qwen3): every head of q and k is normalised on its own before
 * the rotation, which keeps the attention logits in a sane range.
 *
 * Rotating q and k by an angle proportional to the position makes q . k
 * depend only on the distance between the two tokens. HF pairs element i
 * with i + D/2 ("rotate_half"), not the neighbours (2i, 2i+1) of the
 * original paper; the checkpoint's q/k weights were trained for this layout.
 *
 * The angles follow HF's float32 arithmetic step by step, because at large
 * positions an angle of ~4e4 radians keeps only ~3 decimals in f32, and
 * computing it more precisely would *disagree* with the model's reference:
 *   inv_freq = 1 / theta^(float(2i) / D)   each step rounded to f32 (forward.c)
 *   angle    = float(p) * inv_freq         one f32 product
 *   cos, sin of that f32 angle             computed in double, rounded once
 * The cos and sin of every position are tabulated once, by reserve
 * (backend_ref.c); here q*cos + rotate_half(q)*sin is evaluated in f32, as
 * PyTorch does.
 *
 * The cache is written here, not by the caller, because its layout is the
 * backend's (ref.h: keys then values, kv_stride elements per position).
 * An f16 cache (reserve's kv_dtype, `--kv f16`) stores each element rounded
 * to the nearest f16: a relative error of at most 2^-11 per element,
 * which attention then sees as slightly moved keys and values (the
 * tolerance is tested in test_backend.c and test_forward.c; docs/kv-cache.md).
 *
 * Docs: docs/forward.md, docs/kv-cache.md
 */
#include <string.h>

#include "ref.h"

void fs_ref_rope_pairs(float *x, const float *c, const float *s, int i0, int half) {
    for (int i = i0; i < half; i++) {
        float a = x[i], b = x[i + half];
        /* rotate_half(x) = [-x2, x1]: separate f32 products then the sum */
        float a_cos = a * c[i], b_sin = b * s[i];
        float b_cos = b * c[i], a_sin = a * s[i];
        x[i] = a_cos - b_sin;
        x[i + half] = b_cos + a_sin;
    }
}

/* x[i] += bias[i], i < n: nn.Linear's bias, one f32 add per element. */
void fs_ref_add_bias(float *x, const fs_buf *bias, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += buf_get(bias, i);
}

/* heads consecutive heads of D floats at x: norm (if w), then rotate. */
static void heads(float *x, int heads, int D, const fs_buf *w, float eps, const float *c, const float *s) {
    for (int h = 0; h < heads; h++) {
        float *head = x + (size_t)h * (size_t)D;
        if (w) fs_ref_rmsnorm_row(head, w, head, D, eps);
        fs_ref_rope_pairs(head, c, s, 0, D / 2);
    }
}

void fs_ref_rope_kv(fs_backend *b, fs_buf *q, fs_buf *k, fs_buf *v, const fs_buf *q_norm, const fs_buf *k_norm,
                    float eps, fs_buf *const *caches, int Hq, int Hkv, int D, const fs_qkv_bias *bias) {
    const fs_ref *r = ref_ctx(b);
    size_t q_row = (size_t)Hq * (size_t)D, kv_row = (size_t)Hkv * (size_t)D;
    for (int t = 0; t < r->T; t++) {
        int p = r->pos[t];
        fs_buf *cache = caches[r->seq[t]];
        const float *c = r->rope + (size_t)p * (size_t)D, *s = c + D / 2;
        float *kt = buf_f32_mut(k) + (size_t)t * kv_row;
        if (bias) {
            fs_ref_add_bias(buf_f32_mut(q) + (size_t)t * q_row, bias->q, q_row);
            fs_ref_add_bias(kt, bias->k, kv_row);
            fs_ref_add_bias(buf_f32_mut(v) + (size_t)t * kv_row, bias->v, kv_row);
        }
        heads(buf_f32_mut(q) + (size_t)t * q_row, Hq, D, q_norm, eps, c, s);
        heads(kt, Hkv, D, k_norm, eps, c, s);
        fs_ref_kv_store(cache, 0, (size_t)p * cache->kv_stride, kt, kv_row);
        fs_ref_kv_store(cache, 1, (size_t)p * cache->kv_stride, buf_f32(v) + (size_t)t * kv_row, kv_row);
    }
}

void fs_ref_kv_store(fs_buf *cache, int values, size_t off, const float *src, size_t n) {
    if (cache->dtype == FS_DTYPE_F16) {   /* rounded to nearest even; beyond 65504 becomes inf */
        uint16_t *dst = (values ? kv_values16(cache) : kv_keys16(cache)) + off;
        for (size_t i = 0; i < n; i++) dst[i] = fs_f32_to_f16(src[i]);
    } else {
        memcpy((values ? kv_values(cache) : kv_keys(cache)) + off, src, n * sizeof(float));
    }
}
