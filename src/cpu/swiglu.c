/* swiglu.c - the gated activation of Qwen3's MLP.
 *
 *   out[i] = silu(gate[i]) * up[i],   silu(x) = x * sigmoid(x) = x / (1 + e^-x)
 *   gate, up, out: [n]  (n = T*I; out may alias gate)
 *
 * The MLP is down_proj(swiglu(gate_proj(h), up_proj(h))): gate decides how
 * much of each of the I features passes. silu is computed in double and
 * rounded once; PyTorch rounds silu(gate) to f32 before the product, so we
 * do too.
 *
 * Docs: docs/forward.md
 */
#include <math.h>

#include "cpu.h"

void fs_cpu_swiglu(fs_backend *b, const fs_buf *gate, const fs_buf *up, fs_buf *out, size_t n) {
    (void)b;
    const float *g = cpu_f32(gate), *u = cpu_f32(up);
    float *o = cpu_f32_mut(out);
    for (size_t i = 0; i < n; i++) {
        double gi = g[i];
        float silu = (float)(gi / (1.0 + exp(-gi)));
        o[i] = silu * u[i];
    }
}
