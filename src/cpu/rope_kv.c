/* rope.c - rotary position embedding (RoPE), Hugging Face / NeoX layout.
 *
 *   for each token t (position p = pos0 + t), head h, and i < D/2:
 *     a = x[t,h,i], b = x[t,h,i + D/2], f_i = theta^(-2i/D), angle = p * f_i
 *     x[t,h,i]       = a cos(angle) - b sin(angle)
 *     x[t,h,i + D/2] = b cos(angle) + a sin(angle)
 *   x: [T, heads, D], rotated in place (q with heads = Hq, k with Hkv)
 *
 * Rotating q and k by an angle proportional to the position makes q . k
 * depend only on the distance between the two tokens. HF pairs element i
 * with i + D/2 ("rotate_half"), not the neighbours (2i, 2i+1) of the
 * original paper; the checkpoint's q/k weights were trained for this layout.
 *
 * The angles follow HF's float32 arithmetic step by step, because at large
 * positions an angle of ~4e4 radians keeps only ~3 decimals in f32, and
 * computing it more precisely would *disagree* with the model's reference:
 *   inv_freq = 1 / theta^(float(2i) / D)   each step rounded to f32
 *   angle    = float(p) * inv_freq         one f32 product
 *   cos, sin of that f32 angle             computed in double, rounded once
 * then q*cos + rotate_half(q)*sin in f32, as PyTorch evaluates it.
 *
 * Docs: docs/forward.md
 */
#include <math.h>

#include "cpu.h"

void fs_cpu_rope(fs_backend *b, fs_buf *x, int T, int heads, int D, int pos0, double theta) {
    (void)b;
    int half = D / 2;
    float *xs = cpu_f32_mut(x);
    for (int t = 0; t < T; t++) {
        float p = (float)(pos0 + t);
        for (int i = 0; i < half; i++) {
            float expo = (float)(2 * i) / (float)D;
            float base_pow = (float)pow((float)theta, (double)expo);
            float inv_freq = 1.0f / base_pow;
            float angle = p * inv_freq;
            float c = (float)cos((double)angle);
            float s = (float)sin((double)angle);
            for (int h = 0; h < heads; h++) {
                float *head = xs + ((size_t)t * (size_t)heads + (size_t)h) * (size_t)D;
                float a = head[i], bb = head[i + half];
                /* rotate_half(x) = [-x2, x1]: separate f32 products then the sum */
                float a_cos = a * c, b_sin = bb * s;
                float b_cos = bb * c, a_sin = a * s;
                head[i] = a_cos - b_sin;
                head[i + half] = b_cos + a_sin;
            }
        }
    }
}
