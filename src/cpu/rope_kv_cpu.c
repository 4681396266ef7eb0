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
 * decoded token of Qwen3-0.6B); inv_freq is computed once per table;
 * heads are rotated 8 pairs at a time with AVX2 (the loop runs over i
 * inside a head, contiguous; 1.6 -> ~0.3 us for q of one decode step on
 * the dev VM); and tokens are split across threads.
 *
 * Docs: docs/forward.md
 */
#include <math.h>
#include <stdlib.h>

#include "fast.h"

#define MAX_HALF 512   /* D <= 1024 uses the stack table; larger D: reference */

typedef struct {
    float *x;
    const float *cs;   /* [T][2][half]: the cos row, then the sin row */
    int T, heads, D, avx2;
} rope_job;

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
/* One head, 8 pairs at a time: the same products and sums as below. */
static __attribute__((target("avx2"))) int rope_head_avx2(float *head, const float *c, const float *s, int half) {
    int i = 0;
    for (; i + 8 <= half; i += 8) {
        __m256 a = _mm256_loadu_ps(head + i), bb = _mm256_loadu_ps(head + half + i);
        __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(s + i);
        _mm256_storeu_ps(head + i, _mm256_sub_ps(_mm256_mul_ps(a, cv), _mm256_mul_ps(bb, sv)));
        _mm256_storeu_ps(head + half + i, _mm256_add_ps(_mm256_mul_ps(bb, cv), _mm256_mul_ps(a, sv)));
    }
    return i;
}
#endif

/* One chunk = one token: head after head, i contiguous (vectors). */
static void rope_chunk(void *arg, int t, int tid) {
    (void)tid;
    const rope_job *j = arg;
    int half = j->D / 2;
    const float *c = j->cs + (size_t)t * (size_t)half * 2, *s = c + half;
    for (int h = 0; h < j->heads; h++) {
        float *head = j->x + ((size_t)t * (size_t)j->heads + (size_t)h) * (size_t)j->D;
        int i = 0;
#if defined(__x86_64__) || defined(__i386__)
        if (j->avx2) i = rope_head_avx2(head, c, s, half);
#endif
        for (; i < half; i++) {
            float a = head[i], bb = head[i + half];
            /* rotate_half(x) = [-x2, x1]: separate f32 products then the sum */
            float a_cos = a * c[i], b_sin = bb * s[i];
            float b_cos = bb * c[i], a_sin = a * s[i];
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
                cs[i] = (float)cos((double)angle);
                cs[half + i] = (float)sin((double)angle);
            }
        }
        f->rope_pos0 = pos0, f->rope_T = T, f->rope_D = D, f->rope_theta = theta;
    }
    rope_job j = {cpu_f32_mut(x), f->rope_cs, T, heads, D, f->isa == FS_ISA_AVX2};
    fs_threadpool_for(fast_ctx(b)->pool, T, rope_chunk, &j);
}
