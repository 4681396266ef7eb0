/* attention_fast.c - grouped-query causal attention, threaded, one pass.
 *
 *   q: [T, Hq, D]   k_cache, v_cache: [n_ctx, Hkv, D]   out: [T, Hq, D]
 *   out[t,h] = sum_{j <= pos0+t} softmax_j(q[t,h] . k[j,g] / sqrt(D)) v[j,g],
 *   g = h / (Hq / Hkv)
 *
 * Same math as attention.c (the reference); three differences for speed:
 *
 * Threads. The T * Hq (token, head) pairs are independent chunks of the
 * pool's parallel loop; threads take them one at a time, which balances
 * the causal triangle (later tokens have more keys) by itself.
 *
 * Online softmax (one pass, no scores row). Keys are processed in blocks of
 * BLOCK: compute the block's scores, and if the block's maximum m_b exceeds
 * the running maximum m, rescale what is accumulated so far (the output
 * row o and the sum of exponentials l) by exp(m - m_b). At the end
 * out = o / l. This equals the two-pass softmax up to rounding, reads each
 * key and value once, and needs only BLOCK floats of scores on the stack,
 * so threads need no shared scratch (the backend's scratch row is unused).
 *
 * f32 throughout: per block, SIMD scores for 4 keys at a time
 * (fs_vdot_rows), expf, then the probability-weighted sum of the block's
 * values with o held in registers (fs_vmix_rows, vec_fast.c).
 *
 * Docs: docs/forward.md, docs/kv-cache.md
 */
#include <math.h>

#include "fast.h"

#define BLOCK 64

typedef struct {
    fs_isa isa;
    const float *q, *k, *v;
    float *out;
    int T, pos0, Hq, Hkv, D;
} attn_job;

/* One chunk = one (token, head) pair: it = t * Hq + h. */
static void attn_chunk(void *arg, int it, int tid) {
    (void)tid;
    const attn_job *j = arg;
    int group = j->Hq / j->Hkv, D = j->D;
    float scale = (float)(1.0 / sqrt((double)D));
    size_t kv_row = (size_t)j->Hkv * (size_t)D;   /* one position in the cache */
    int t = it / j->Hq, h = it % j->Hq, g = h / group;
    int n_keys = j->pos0 + t + 1;                 /* causal: positions 0 .. pos0 + t */
    const float *qh = j->q + (size_t)it * (size_t)D;
    float *o = j->out + (size_t)it * (size_t)D;
    const float *kg = j->k + (size_t)g * (size_t)D, *vg = j->v + (size_t)g * (size_t)D;

    for (int d = 0; d < D; d++) o[d] = 0.0f;
    float m = -INFINITY, l = 0.0f, s[BLOCK];   /* running max, running sum of exp */
    for (int j0 = 0; j0 < n_keys; j0 += BLOCK) {
        int nb = n_keys - j0 < BLOCK ? n_keys - j0 : BLOCK;
        fs_vdot_rows(j->isa, qh, kg + (size_t)j0 * kv_row, kv_row, nb, D, s);
        float bmax = -INFINITY;
        for (int b = 0; b < nb; b++) {
            s[b] *= scale;
            if (s[b] > bmax) bmax = s[b];
        }
        if (bmax > m) {   /* new maximum: rescale what we have */
            float corr = expf(m - bmax);   /* exp(-inf) = 0 on the first block */
            if (l > 0.0f) fs_vscale(j->isa, o, corr, D);
            l *= corr;
            m = bmax;
        }
        for (int b = 0; b < nb; b++) {
            s[b] = expf(s[b] - m);   /* scores become (unnormalised) probabilities */
            l += s[b];
        }
        fs_vmix_rows(j->isa, o, s, vg + (size_t)j0 * kv_row, kv_row, nb, D);
    }
    fs_vscale(j->isa, o, 1.0f / l, D);
}

void fs_fast_attention(fs_backend *b, const fs_buf *q, const fs_buf *k_cache, const fs_buf *v_cache,
                       fs_buf *out, fs_buf *scratch, int T, int pos0, int Hq, int Hkv, int D) {
    (void)scratch;
    fs_fast *f = fast_ctx(b);
    attn_job j = {f->isa, cpu_f32(q), cpu_f32(k_cache), cpu_f32(v_cache), cpu_f32_mut(out), T, pos0, Hq, Hkv, D};
    fs_threadpool_for(f->pool, T * Hq, attn_chunk, &j);
}
