/* attention.c - grouped-query causal self-attention against the KV cache.
 *
 *   q:   [T, Hq, D]   the step's queries; token t sits at position pos[t]
 *        of sequence seq[t] (the step)
 *   caches[seq[t]]: that sequence's keys and values, positions 0 .. pos[t]
 *        filled (ref.h: position j's head g at j * kv_stride + g * D of the
 *        keys, and of the values; f32, or f16 widened exactly to f32)
 *   out: [T, Hq, D]
 *
 *   for each token t, query head h, with kv head g = h / (Hq / Hkv), and
 *   k, v of caches[seq[t]]:
 *     s_j   = (q[t,h] . k[j,g]) / sqrt(D)        for j = 0 .. pos[t]
 *     a_j   = exp(s_j - max s) / sum_j' exp(s_j' - max s)
 *     out[t,h] = sum_j a_j v[j,g]
 *
 * Causal: the loop over keys stops at the token's own position, so a token
 * never sees a later one - also within a prefill chunk, whose later rows are
 * already in the cache. Tokens of different sequences (a batched step)
 * read different caches, so they never see each other. Grouped-query
 * attention (GQA): Hq / Hkv consecutive query heads share one key/value
 * head, which shrinks the cache by that factor (Qwen3-0.6B: 16 query
 * heads, 8 kv heads).
 *
 * Softmax subtracts the row maximum first so exp never overflows; it does not
 * change the result. Scores and then probabilities are stored as f32 in
 * the row reserve() set aside (as PyTorch holds them); the dot products,
 * the sum of exponentials and the weighted sum of values are accumulated
 * in double and rounded once (see ref.h). exp is evaluated twice per score
 * rather than keeping a second scratch row: this is the reference, not the
 * CPU backend's path (attention_cpu.c).
 *
 * Docs: docs/forward.md, docs/kv-cache.md
 */
#include <math.h>

#include "ref.h"

void fs_ref_attention(fs_backend *b, const fs_buf *q, fs_buf *const *caches, fs_buf *out, int Hq, int Hkv, int D) {
    const fs_ref *r = ref_ctx(b);
    int T = r->T, group = Hq / Hkv;
    double scale = 1.0 / sqrt((double)D);
    const float *qs = buf_f32(q);
    float *os = buf_f32_mut(out);
    float *scores = r->scores;

    for (int t = 0; t < T; t++) {
        const fs_buf *cache = caches[r->seq[t]];
        size_t kv_row = cache->kv_stride;   /* one position in the cache */
        int n_keys = r->pos[t] + 1;         /* causal: positions 0 .. pos[t] */
        for (int h = 0; h < Hq; h++) {
            int g = h / group;
            const float *qh = qs + ((size_t)t * (size_t)Hq + (size_t)h) * (size_t)D;
            float *oh = os + ((size_t)t * (size_t)Hq + (size_t)h) * (size_t)D;

            float smax = -INFINITY;
            for (int j = 0; j < n_keys; j++) {
                size_t kj = (size_t)j * kv_row + (size_t)g * (size_t)D;   /* key j, head g */
                double dot = 0.0;
                for (int d = 0; d < D; d++) dot += (double)qh[d] * (double)kv_get(cache, 0, kj + (size_t)d);
                scores[j] = (float)(dot * scale);
                if (scores[j] > smax) smax = scores[j];
            }

            double sum = 0.0;
            for (int j = 0; j < n_keys; j++) sum += exp((double)scores[j] - (double)smax);
            for (int j = 0; j < n_keys; j++)   /* probabilities, rounded to f32 like PyTorch's softmax */
                scores[j] = (float)(exp((double)scores[j] - (double)smax) / sum);

            for (int d = 0; d < D; d++) {
                double acc = 0.0;
                for (int j = 0; j < n_keys; j++)
                    acc += (double)scores[j] * (double)kv_get(cache, 1, (size_t)j * kv_row + (size_t)g * (size_t)D + (size_t)d);
                oh[d] = (float)acc;
            }
        }
    }
}
