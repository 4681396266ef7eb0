/* rope_fast.c - rotary position embedding, threaded over tokens.
 *
 *   x: [T, heads, D], in place; for i < D/2 the pair (x[i], x[i + D/2]) of
 *   every head of token t is rotated by angle (pos0 + t) * theta^(-2i/D).
 *
 * The arithmetic is exactly the reference's (rope.c: HF's f32 chain for
 * inv_freq and the angle, cos/sin of that f32 in double, separate f32
 * products), so results are bit-identical to it. Three savings: the cos
 * and sin of every (token, i) are computed once per (pos0, T, D, theta) and
 * kept - a forward pass rotates q and k of every layer at the same
 * positions, 2 L calls with one table (56 x 64 sin/cos pairs saved per
 * decoded token of Qwen3-0.6B); inv_freq is computed once per table; and
 * tokens are split across threads.
 *
 * Docs: docs/forward.md
 */
#include <math.h>
#include <stdlib.h>

#include "fast.h"

#define MAX_HALF 512   /* D <= 1024 uses the stack table; larger D: reference */

typedef struct {
    float *x;
    const float *cs;   /* [T][half][2]: cos, sin */
    int T, heads, D;
} rope_job;

/* One chunk = one token. */
static void rope_chunk(void *arg, int t, int tid) {
    (void)tid;
    const rope_job *j = arg;
    int half = j->D / 2;
    const float *cs = j->cs + (size_t)t * (size_t)half * 2;
    for (int i = 0; i < half; i++) {
        float c = cs[2 * i], s = cs[2 * i + 1];
        for (int h = 0; h < j->heads; h++) {
            float *head = j->x + ((size_t)t * (size_t)j->heads + (size_t)h) * (size_t)j->D;
            float a = head[i], bb = head[i + half];
            /* rotate_half(x) = [-x2, x1]: separate f32 products then the sum */
            float a_cos = a * c, b_sin = bb * s;
            float b_cos = bb * c, a_sin = a * s;
            head[i] = a_cos - b_sin;
            head[i + half] = b_cos + a_sin;
        }
    }
}

void fs_fast_rope(fs_backend *b, fs_buf *x, int T, int heads, int D, int pos0, double theta) {
    int half = D / 2;
    if (half > MAX_HALF) {
        fs_cpu_rope(b, x, T, heads, D, pos0, theta);
        return;
    }
    fs_fast *f = fast_ctx(b);
    if (f->rope_pos0 != pos0 || f->rope_T != T || f->rope_D != D || f->rope_theta != theta) {
        size_t need = (size_t)T * (size_t)half * 2 * sizeof(float);
        if (need > f->rope_bytes) {   /* grows on the first long prefill, never in decode */
            free(f->rope_cs);
            f->rope_cs = fs_xmalloc(need);
            f->rope_bytes = need;
        }
        float inv_freq[MAX_HALF];
        for (int i = 0; i < half; i++) {   /* as rope.c */
            float expo = (float)(2 * i) / (float)D;
            float base_pow = (float)pow((float)theta, (double)expo);
            inv_freq[i] = 1.0f / base_pow;
        }
        for (int t = 0; t < T; t++) {
            float p = (float)(pos0 + t), *cs = f->rope_cs + (size_t)t * (size_t)half * 2;
            for (int i = 0; i < half; i++) {
                float angle = p * inv_freq[i];
                cs[2 * i] = (float)cos((double)angle);
                cs[2 * i + 1] = (float)sin((double)angle);
            }
        }
        f->rope_pos0 = pos0, f->rope_T = T, f->rope_D = D, f->rope_theta = theta;
    }
    rope_job j = {cpu_f32_mut(x), f->rope_cs, T, heads, D};
    fs_threadpool_for(fast_ctx(b)->pool, T, rope_chunk, &j);
}
