/* argmax.c - the index of the largest logit: greedy decoding's choice.
 *
 *   argmax(x) = the lowest i < n with x[i] = max x;   -1 if any x[i] is NaN
 *
 * Lowest on ties, so every backend picks the same token from the same
 * logits; a NaN anywhere means the forward pass went wrong, and the caller
 * is told instead of being handed an arbitrary token. Both CPU backends use
 * this loop: one pass over V floats (151936 for Qwen3) is a few tens of
 * microseconds, next to milliseconds for the step that made them.
 *
 * Docs: docs/forward.md
 */
#include "ref.h"

int fs_ref_argmax(fs_backend *b, const fs_buf *x, int n) {
    (void)b;
    const float *v = buf_f32(x);
    int best = 0;
    for (int i = 0; i < n; i++) {
        if (v[i] != v[i]) return -1;   /* NaN */
        if (v[i] > v[best]) best = i;
    }
    return n > 0 ? best : -1;
}
