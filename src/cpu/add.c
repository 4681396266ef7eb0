/* add.c - the residual connection.
 *
 *   x[i] += y[i]      x, y: [n]  (n = T*H)
 *
 * Each block adds its output back onto the residual stream x instead of
 * replacing it, so the signal from the embedding reaches the last layer
 * unchanged unless a block decides otherwise.
 *
 * Docs: docs/forward.md
 */
#include "cpu.h"

void fs_cpu_add(fs_backend *b, fs_buf *x, const fs_buf *y, size_t n) {
    (void)b;
    float *xs = cpu_f32_mut(x);
    const float *ys = cpu_f32(y);
    for (size_t i = 0; i < n; i++) xs[i] += ys[i];
}
