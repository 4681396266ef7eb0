/* swiglu.c - the gated activation of Qwen3's MLP.
 *
 *   out[i] = silu(gate[i]) * up[i],   silu(x) = x * sigmoid(x) = x / (1 + e^-x)
 *   gate, up, out: [n]  (n = T*I; out may alias gate)
 *
 * The MLP is down_proj(swiglu(gate_proj(h), up_proj(h))): gate decides how
 * much of each of the I features passes. It is not an op of its own: the
 * down_proj matmul reads its input through it (fs_mm_in.up, matmul.c).
 * silu is computed in double and rounded once; PyTorch rounds silu(gate)
 * to f32 before the product, so we do too.
 *
 * Docs: docs/forward.md
 */
#include <math.h>

#include "ref.h"

void fs_ref_swiglu(const float *g, const float *u, float *o, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double gi = g[i];
        float silu = (float)(gi / (1.0 + exp(-gi)));
        o[i] = silu * u[i];
    }
}
