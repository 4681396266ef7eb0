/* rope_fast.c - rotary position embedding, threaded over tokens.
 *
 *   x: [T, heads, D], in place; for i < D/2 the pair (x[i], x[i + D/2]) of
 *   every head of token t is rotated by angle (pos0 + t) * theta^(-2i/D).
 *
 * The arithmetic is exactly the reference's (rope.c: HF's f32 chain for
 * inv_freq and the angle, cos/sin of that f32 in double, separate f32
 * products), so results are bit-identical to it. Two savings: inv_freq
 * depends only on i, so it is computed once per call instead of once per
 * token; and tokens are split across threads.
 *
 * Docs: docs/forward.md
 */
#include <math.h>

#include "fast.h"

#define MAX_HALF 512   /* D <= 1024 uses the stack table; larger D: reference */

typedef struct {
    float *x;
    const float *inv_freq;
    int T, heads, D, pos0;
} rope_job;

/* One chunk = one token. */
static void rope_chunk(void *arg, int t, int tid) {
    (void)tid;
    const rope_job *j = arg;
    int half = j->D / 2;
    float p = (float)(j->pos0 + t);
    for (int i = 0; i < half; i++) {
        float angle = p * j->inv_freq[i];
        float c = (float)cos((double)angle), s = (float)sin((double)angle);
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
    float inv_freq[MAX_HALF];
    for (int i = 0; i < half; i++) {   /* as rope.c */
        float expo = (float)(2 * i) / (float)D;
        float base_pow = (float)pow((float)theta, (double)expo);
        inv_freq[i] = 1.0f / base_pow;
    }
    rope_job j = {cpu_f32_mut(x), inv_freq, T, heads, D, pos0};
    fs_threadpool_for(fast_ctx(b)->pool, T, rope_chunk, &j);
}
